"""Subqueries inside expressions: scalar values, ``IN (SELECT ...)`` and ``EXISTS``.

Each subquery becomes a column added to the rows of the query around it (their ids kept),
by a join with the subquery's result:

- an uncorrelated scalar subquery is joined to every row (a cross join with its one row);
- ``x IN (SELECT c ...)`` is a left join of ``x`` with the distinct values of ``c``;
- ``EXISTS (SELECT ...)`` is a left join with the subquery's row count.

A *correlated* subquery, one whose WHERE equates its columns with columns of the query
around it (``WHERE inner.k = outer.k``), is decorrelated: its rows are grouped by the inner
side of those equalities and left-joined to the outer rows on the outer side. Any other
reference to the outer query raises ``SyntaxError`` as in Pathway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deltaflow import reducers
from deltaflow.expressions import coalesce, if_else, left, right, this
from deltaflow.sql._expressions import conjuncts, translate, walk_outside_subqueries
from deltaflow.sql._from import attach_column, build_from, distinct
from deltaflow.sql._parse import CorrelatedSubqueryError, sqlglot_modules
from deltaflow.sql._scope import Relation
from deltaflow.table import Table

if TYPE_CHECKING:
    from deltaflow.sql._query import QueryTranslator

_, exp = sqlglot_modules()


def attach_subqueries(
    translator: QueryTranslator, relation: Relation, nodes: list[Any]
) -> tuple[Table, dict[int, str]]:
    """The relation's table with a column for each subquery in ``nodes``.

    Returns the table and ``prepared``, which maps each subquery node (by ``id``) to the
    column holding its value (a bool for IN and EXISTS).
    """
    table = relation.table
    prepared: dict[int, str] = {}
    for node in nodes:
        for sub in walk_outside_subqueries(node):
            if isinstance(sub, exp.In) and sub.args.get("query") is not None:
                kind = "in"
            elif isinstance(sub, exp.Exists):
                kind = "exists"
            elif isinstance(getattr(sub, "expression", None), exp.Any | exp.All):
                kind = "quantified"
            elif isinstance(sub, exp.Subquery) and not isinstance(sub.parent, exp.In | exp.Exists):
                kind = "scalar"
            else:
                continue
            current = relation.with_table(table)
            try:
                table, prepared[id(sub)] = _ATTACH[kind](translator, current, sub, prepared)
            except CorrelatedSubqueryError:
                table, prepared[id(sub)] = _CORRELATED[kind](translator, current, sub, prepared)
    return table, prepared


def single_column(result: Table, node: Any) -> str:
    names = result.column_names()
    if len(names) != 1:
        raise ValueError(
            f"pw.sql: the subquery {node.sql()} must give one column, it gives {len(names)}"
        )
    return names[0]


# --- uncorrelated -----------------------------------------------------------------------------


def _scalar(
    translator: QueryTranslator, relation: Relation, node: Any, prepared: dict[int, str]
) -> tuple[Table, str]:
    result = translator.subquery_translator().query(node.this)
    column = translator.fresh()
    return attach_column(relation.table, result, single_column(result, node), column), column


def _in(
    translator: QueryTranslator, relation: Relation, node: Any, prepared: dict[int, str]
) -> tuple[Table, str]:
    query = node.args["query"]
    result = translator.subquery_translator().query(query)
    value = single_column(result, query)
    values = distinct(result.select(**{"value": this[value]})).select(this.value, hit=True)
    return _probe_join(translator, relation, [node.this], values, ["value"], prepared)


def _exists(
    translator: QueryTranslator, relation: Relation, node: Any, prepared: dict[int, str]
) -> tuple[Table, str]:
    result = translator.subquery_translator().query(node.this)
    counted = result.reduce(rows=reducers.count())
    present = translator.fresh()
    table = relation.table.join_left(counted, id=left.id).select(
        *left, **{present: coalesce(right["rows"], 0) > 0}
    )
    return table, present


def _probe_join(
    translator: QueryTranslator,
    relation: Relation,
    outer_keys: list[Any],
    keyed: Table,
    key_columns: list[str],
    prepared: dict[int, str],
    value: Any = None,
) -> tuple[Table, str]:
    """Left-join the relation's rows, on ``outer_keys`` (expressions over them), to
    ``keyed``'s rows on ``key_columns``; the new column is ``value(right)`` (default: whether
    a row of ``keyed`` matched, from its ``hit`` column). Each row matches at most one."""
    context = translator.row_context(relation, prepared=prepared)
    probes = {translator.fresh(): translate(key, context) for key in outer_keys}
    original = relation.table.column_names()
    table = relation.table.with_columns(**probes)
    conditions = [left[probe] == right[key] for probe, key in zip(probes, key_columns)]
    column = translator.fresh()
    added = coalesce(right["hit"], False) if value is None else value
    table = table.join_left(keyed, *conditions, id=left.id).select(
        *(left[c] for c in original), **{column: added}
    )
    return table, column


def _quantified(
    translator: QueryTranslator, relation: Relation, node: Any, prepared: dict[int, str]
) -> tuple[Table, str]:
    """``x <op> ALL|ANY (SELECT c ...)``, from the minimum, maximum and count of ``c``."""
    quantifier = node.expression
    query = quantifier.this
    result = translator.subquery_translator().query(query)
    value = single_column(result, query)
    is_all = isinstance(quantifier, exp.All)
    operation = type(node)
    if (operation is exp.EQ and not is_all) or (operation is exp.NEQ and is_all):
        values = distinct(result.select(**{"value": this[value]})).select(this.value, hit=True)
        table, member = _probe_join(translator, relation, [node.this], values, ["value"], prepared)
        if operation is exp.EQ:
            return table, member
        outside = translator.fresh()
        return table.with_columns(**{outside: ~this[member]}), outside
    stats = result.reduce(
        lo=reducers.min(this[value]), hi=reducers.max(this[value]), rows=reducers.count()
    )
    probe = translator.fresh()
    context = translator.row_context(relation, prepared=prepared)
    original = relation.table.column_names()
    table = relation.table.with_columns(**{probe: translate(node.this, context)})
    x, lo, hi = left[probe], right["lo"], right["hi"]
    # ALL: every value satisfies it (so does an empty subquery); ANY: at least one does.
    tests = {
        exp.LT: (x < lo, x < hi),
        exp.LTE: (x <= lo, x <= hi),
        exp.GT: (x > hi, x > lo),
        exp.GTE: (x >= hi, x >= lo),
        exp.EQ: ((x == lo) & (x == hi), None),
        exp.NEQ: (None, (x != lo) | (x != hi)),
    }
    holds = tests[operation][0 if is_all else 1]
    column = translator.fresh()
    empty = coalesce(right["rows"], 0) == 0
    added = if_else(empty, is_all, coalesce(holds, False))
    table = table.join_left(stats, id=left.id).select(
        *(left[c] for c in original), **{column: added}
    )
    return table, column


_ATTACH = {"scalar": _scalar, "in": _in, "exists": _exists, "quantified": _quantified}


# --- correlated -------------------------------------------------------------------------------


@dataclass
class _Decorrelated:
    """A correlated subquery's rows (local conditions applied) and its correlation keys."""

    translator: QueryTranslator
    relation: Relation
    outer_keys: list[Any]
    inner_keys: list[Any]

    def keyed(self, extra: dict[str, Any] | None = None) -> tuple[Table, list[str]]:
        """The subquery's rows with its keys (and ``extra`` nodes) as columns k0, k1, ..."""
        context = self.translator.row_context(self.relation)
        names = [f"k{i}" for i in range(len(self.inner_keys))]
        columns = {n: translate(k, context) for n, k in zip(names, self.inner_keys)}
        columns.update({n: translate(e, context) for n, e in (extra or {}).items()})
        return self.relation.table.select(**columns), names


def _decorrelate(translator: QueryTranslator, outer: Relation, select: Any) -> _Decorrelated:
    def refuse(reason: str) -> CorrelatedSubqueryError:
        return CorrelatedSubqueryError(
            f"pw.sql: correlated subqueries are supported only as {reason} ({select.sql()})"
        )

    if not isinstance(select, exp.Select):
        raise refuse("a single SELECT")
    for part in ("group", "having", "distinct", "with"):
        if select.args.get(part):
            raise refuse(f"a SELECT without {part.upper()}")
    inner_translator = translator.subquery_translator()
    where = select.args.get("where")
    relation, terms = build_from(
        inner_translator, select, conjuncts(where.this) if where is not None else []
    )
    inner_translator.current = relation

    def side(node: Any) -> set[str]:
        sides: set[str] = set()
        for sub in walk_outside_subqueries(node):
            if isinstance(sub, exp.Column):
                qualifier = sub.table or None
                if relation.can_resolve(sub.name, qualifier):
                    sides.add("inner")
                elif outer.can_resolve(sub.name, qualifier):
                    sides.add("outer")
                else:
                    relation.resolve(sub.name, qualifier)  # raises the KeyError
        return sides

    local: list[Any] = []
    outer_keys: list[Any] = []
    inner_keys: list[Any] = []
    for term in terms:
        sides = side(term)
        if "outer" not in sides:
            local.append(term)
            continue
        bare = term
        while isinstance(bare, exp.Paren):
            bare = bare.this
        if isinstance(bare, exp.EQ):
            first, second = side(bare.this), side(bare.expression)
            if first == {"outer"} and second == {"inner"}:
                outer_keys.append(bare.this)
                inner_keys.append(bare.expression)
                continue
            if first == {"inner"} and second == {"outer"}:
                outer_keys.append(bare.expression)
                inner_keys.append(bare.this)
                continue
        raise refuse(f"equalities between their columns and the outer query's, not {term.sql()},")
    if not outer_keys:
        raise refuse("WHERE equalities with the outer query's columns")
    if local:
        relation = inner_translator.filtered(relation, local)
        inner_translator.current = relation
    return _Decorrelated(inner_translator, relation, outer_keys, inner_keys)


def _correlated_exists(
    translator: QueryTranslator, relation: Relation, node: Any, prepared: dict[int, str]
) -> tuple[Table, str]:
    decorrelated = _decorrelate(translator, relation, node.this)
    return _correlated_exists_of(translator, relation, decorrelated, prepared)


def _correlated_in(
    translator: QueryTranslator, relation: Relation, node: Any, prepared: dict[int, str]
) -> tuple[Table, str]:
    query = node.args["query"]
    decorrelated = _decorrelate(translator, relation, query)
    if len(query.expressions) != 1:
        raise ValueError(f"pw.sql: the subquery {query.sql()} must give one column")
    decorrelated.outer_keys.append(node.this)
    decorrelated.inner_keys.append(_unaliased(query.expressions[0]))
    return _correlated_exists_of(translator, relation, decorrelated, prepared)


def _correlated_exists_of(
    translator: QueryTranslator,
    relation: Relation,
    decorrelated: _Decorrelated,
    prepared: dict[int, str],
) -> tuple[Table, str]:
    keyed, names = decorrelated.keyed()
    hits = distinct(keyed).select(*(this[n] for n in names), hit=True)
    return _probe_join(translator, relation, decorrelated.outer_keys, hits, names, prepared)


def _correlated_scalar(
    translator: QueryTranslator, relation: Relation, node: Any, prepared: dict[int, str]
) -> tuple[Table, str]:
    """A correlated aggregate (``(SELECT AVG(v) FROM t2 WHERE t2.k = t1.k)``), per key."""
    from deltaflow.sql._query import GroupContext

    select = node.this
    decorrelated = _decorrelate(translator, relation, select)
    if len(select.expressions) != 1:
        raise ValueError(f"pw.sql: the subquery {select.sql()} must give one column")
    item = _unaliased(select.expressions[0])
    inner = decorrelated.relation
    context = decorrelated.translator.row_context(inner)
    key_columns = {
        decorrelated.translator.fresh(): translate(k, context) for k in decorrelated.inner_keys
    }
    inner = inner.with_table(inner.table.with_columns(**key_columns))
    group_context = GroupContext(
        decorrelated.translator,
        inner,
        set(key_columns),
        {k.sql(): n for k, n in zip(decorrelated.inner_keys, key_columns)},
        {},
    )
    value = translate(item, group_context)
    grouped = inner.table.groupby(*(this[k] for k in key_columns)).reduce(
        *(this[k] for k in key_columns), value=value
    )
    # An aggregate over no rows: COUNT is 0, the others NULL (the left join's None).
    result = coalesce(right["value"], 0) if isinstance(item, exp.Count) else right["value"]
    return _probe_join(
        translator,
        relation,
        decorrelated.outer_keys,
        grouped,
        list(key_columns),
        prepared,
        value=result,
    )


def _unaliased(node: Any) -> Any:
    return node.this if isinstance(node, exp.Alias) else node


def _correlated_quantified(
    translator: QueryTranslator, relation: Relation, node: Any, prepared: dict[int, str]
) -> tuple[Table, str]:
    raise CorrelatedSubqueryError(
        f"pw.sql: correlated ANY/ALL subqueries are not supported ({node.sql()})"
    )


_CORRELATED = {
    "scalar": _correlated_scalar,
    "in": _correlated_in,
    "exists": _correlated_exists,
    "quantified": _correlated_quantified,
}
