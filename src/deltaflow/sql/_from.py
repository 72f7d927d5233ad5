"""FROM clauses: tables, subqueries and joins, flattened into one relation.

Joins are built with the Table API (``join_inner``/``join_left``/``join_right``/
``join_outer``): the equalities of an ON clause between the two sides become the join's
conditions, other terms of an inner join filter its result (an outer join cannot take them).
Equalities of the WHERE clause between the tables of a comma join are moved into the join
as well: the result, row ids included, is the same as filtering the cross product, at the
cost of the matches instead of the product. For the same reason, WHERE terms about one
table alone filter it before the join (unless an outer join may give it NULL rows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from deltaflow.expressions import coalesce, left, right, this
from deltaflow.expressions.placeholders import Placeholder
from deltaflow.sql._expressions import (
    conjuncts,
    is_aggregate,
    translate,
    walk_outside_subqueries,
)
from deltaflow.sql._parse import (
    MissingFromError,
    UnsupportedSqlAssertion,
    reject_unhandled,
    sqlglot_modules,
    unsupported,
)
from deltaflow.sql._scope import Relation, Source
from deltaflow.table import Table

if TYPE_CHECKING:
    from deltaflow.sql._query import QueryTranslator

_, exp = sqlglot_modules()

_JOIN_METHODS = {
    "inner": "join_inner",
    "left": "join_left",
    "right": "join_right",
    "outer": "join_outer",
}


def join_mode(join: Any) -> str:
    """inner / left / right / outer for a sqlglot Join node."""
    if join.args.get("natural"):
        raise unsupported(join, "NATURAL JOIN")
    side = (join.args.get("side") or "").upper()
    kind = (join.args.get("kind") or "").upper()
    if side == "LEFT":
        return "left"
    if side == "RIGHT":
        return "right"
    if side == "FULL" or kind == "OUTER":
        return "outer"
    if kind in ("", "INNER", "CROSS"):
        return "inner"
    raise unsupported(join, f"{kind} JOIN")


def build_from(
    translator: QueryTranslator, select: Any, where_terms: list[Any]
) -> tuple[Relation, list[Any]]:
    """The relation of ``select``'s FROM clause, and the WHERE terms it did not absorb."""
    from_clause = select.args.get("from")
    if from_clause is None:
        raise unsupported(select, "SELECT without FROM", MissingFromError)
    items = list(from_clause.expressions)
    joins = list(select.args.get("joins") or [])
    if len(items) == 1 and isinstance(items[0], exp.Subquery) and _is_join_group(items[0]):
        # "FROM (t1 JOIN t2)": the parentheses only group the join.
        grouped = items[0].this
        joins = list(grouped.args.get("joins") or []) + joins
        first = grouped.copy()
        first.set("joins", None)
        items = [first]
    relations = [item_relation(translator, item) for item in items]
    joined = [(join_mode(j), item_relation(translator, j.this), j) for j in joins]
    pushdown = all(mode in ("inner", "left") for mode, _, _ in joined)
    name_counts = Counter(
        name for r in relations + [r for _, r, _ in joined] for s in r.sources for name in s.columns
    )
    remaining = list(where_terms)

    def absorb(current: Relation, other: Relation) -> list[Any]:
        """WHERE equalities that can serve as the conditions of joining these two."""
        if not pushdown:
            return []
        taken = [
            term
            for term in remaining
            if _unique_names(term, name_counts) and split_equality(term, current, other) is not None
        ]
        for term in taken:
            remaining.remove(term)
        return taken

    def restrict(item: Relation, null_supplied: bool) -> Relation:
        """``item`` filtered by the WHERE terms about it alone, before it is joined."""
        if not pushdown or null_supplied or len(relations) + len(joined) == 1:
            return item
        taken = [
            term
            for term in remaining
            if _unique_names(term, name_counts) and _only_about(term, item)
        ]
        for term in taken:
            remaining.remove(term)
        return translator.filtered(item, taken) if taken else item

    relations = [restrict(item, False) for item in relations]
    joined = [(mode, restrict(item, mode == "left"), node) for mode, item, node in joined]
    relation = relations[0]
    for other in relations[1:]:
        relation = join_relations(translator, relation, other, "inner", absorb(relation, other), [])
    for mode, other, node in joined:
        on = node.args.get("on")
        using = [u.name for u in node.args.get("using") or []]
        terms = conjuncts(on) if on is not None else []
        if mode == "inner":
            terms += absorb(relation, other)
        elif not terms and not using:
            raise unsupported(node, "an outer join without ON or USING")
        relation = join_relations(translator, relation, other, mode, terms, using)
    return relation, remaining


def _is_join_group(node: Any) -> bool:
    return isinstance(node.this, exp.Table) and bool(node.this.args.get("joins"))


def _only_about(term: Any, relation: Relation) -> bool:
    """Whether ``term`` uses columns of ``relation`` only (at least one; no subquery)."""
    columns = 0
    for sub in walk_outside_subqueries(term):
        if isinstance(sub, exp.Subquery | exp.Subqueryable | exp.Exists) or is_aggregate(sub):
            return False
        if isinstance(sub, exp.Column):
            if not relation.can_resolve(sub.name, sub.table or None):
                return False
            columns += 1
    return columns > 0


def _unique_names(term: Any, name_counts: Counter) -> bool:
    """Whether every unqualified column of ``term`` names one column of the whole FROM."""
    return all(
        column.table or name_counts[column.name] == 1 for column in term.find_all(exp.Column)
    )


def item_relation(translator: QueryTranslator, item: Any) -> Relation:
    """The relation of one FROM item: a named table, a CTE or a subquery."""
    if isinstance(item, exp.Table):
        if item.args.get("joins"):
            raise unsupported(item, "nested join")
        reject_unhandled(item, {"this", "alias"})
        name = item.name
        table = translator.lookup(name)
        alias = item.alias or name
        relation = Relation.of_table(table, alias)
        return _with_column_aliases(relation, item.args.get("alias"))
    if isinstance(item, exp.Subquery):
        reject_unhandled(item, {"this", "alias"})
        if _is_join_group(item):
            raise unsupported(item, "a parenthesized join among other FROM items")
        table = translator.subquery_translator().query(item.this)
        relation = Relation.of_table(table, item.alias or None, derived=True)
        return _with_column_aliases(relation, item.args.get("alias"))
    raise unsupported(item, "FROM item")


def _with_column_aliases(relation: Relation, alias: Any) -> Relation:
    """Apply ``AS name(col1, col2, ...)``: the columns get new SQL names, in order."""
    names = [c.name for c in (alias.args.get("columns") or [])] if alias is not None else []
    if not names:
        return relation
    source = relation.sources[0]
    current = list(source.columns.items())
    if len(names) > len(current):
        raise ValueError(
            f"pw.sql: {len(names)} column aliases given for table "
            f"{source.name!r}, which has {len(current)} columns"
        )
    renamed = {new: internal for new, (_, internal) in zip(names, current)}
    renamed.update({old: internal for old, internal in current[len(names) :]})
    star = tuple((name, internal) for name, internal in renamed.items())
    return Relation(
        relation.table,
        (Source(source.name, renamed, source.derived, source.id_column),),
        star,
        relation.equated,
    )


def _sides(node: Any, left_relation: Relation, right_relation: Relation) -> set[str] | None:
    """Which sides the columns of ``node`` come from ({"L"}, {"R"}, both), None if unclear."""
    sides: set[str] = set()
    for sub in walk_outside_subqueries(node):
        if isinstance(sub, exp.Subquery | exp.Subqueryable | exp.Exists):
            return None
        if isinstance(sub, exp.Column):
            qualifier = sub.table or None
            on_left = left_relation.can_resolve(sub.name, qualifier)
            on_right = right_relation.can_resolve(sub.name, qualifier)
            if on_left == on_right:
                return None
            sides.add("L" if on_left else "R")
    return sides


def split_equality(
    term: Any, left_relation: Relation, right_relation: Relation
) -> tuple[Any, Any] | None:
    """``(left operand, right operand)`` if ``term`` equates the two sides, else None."""
    while isinstance(term, exp.Paren):
        term = term.this
    if not isinstance(term, exp.EQ):
        return None
    first = _sides(term.this, left_relation, right_relation)
    second = _sides(term.expression, left_relation, right_relation)
    if first == {"L"} and second == {"R"}:
        return term.this, term.expression
    if first == {"R"} and second == {"L"}:
        return term.expression, term.this
    return None


def join_relations(
    translator: QueryTranslator,
    left_relation: Relation,
    right_relation: Relation,
    mode: str,
    terms: list[Any],
    using: list[str],
) -> Relation:
    """The relation of ``left JOIN right`` in ``mode`` on the ON ``terms`` / USING names."""
    conditions: list[Any] = []
    equated: list[tuple[str, str]] = []
    residual: list[Any] = []
    for term in terms:
        pair = split_equality(term, left_relation, right_relation)
        if pair is None:
            residual.append(term)
            continue
        left_operand, right_operand = pair
        conditions.append(
            translate(left_operand, translator.row_context(left_relation, left))
            == translate(right_operand, translator.row_context(right_relation, right))
        )
        if isinstance(left_operand, exp.Column) and isinstance(right_operand, exp.Column):
            equated.append(
                (
                    translator.row_context(left_relation, left).internal(left_operand),
                    translator.row_context(right_relation, right).internal(right_operand),
                )
            )
    if residual and mode != "inner":
        raise UnsupportedSqlAssertion(
            f"pw.sql: the ON clause of a {mode.upper()} JOIN may only equate columns of the "
            f"two sides; move {' AND '.join(t.sql() for t in residual)} to WHERE if that "
            "is what is meant"
        )
    using_pairs = [
        (left_relation.resolve(name, None), right_relation.resolve(name, None)) for name in using
    ]
    for left_column, right_column in using_pairs:
        conditions.append(left[left_column] == right[right_column])
    equated += using_pairs

    right_table = right_relation.table
    if right_table._node is left_relation.table._node:
        right_table = right_table.copy()  # a table cannot be joined with itself (as in Pathway)
    joined = getattr(left_relation.table, _JOIN_METHODS[mode])(right_table, *conditions)
    left_names = {c: translator.fresh() for c in left_relation.table.column_names()}
    right_names = {c: translator.fresh() for c in right_relation.table.column_names()}
    columns: dict[str, Any] = {new: left[old] for old, new in left_names.items()}
    columns.update({new: right[old] for old, new in right_names.items()})
    merged: dict[str, str] = {}  # USING column of the left side -> what SELECT * shows
    for left_column, right_column in using_pairs:
        if mode == "outer":
            name = translator.fresh()
            columns[name] = coalesce(left[left_column], right[right_column])
            merged[left_names[left_column]] = name
        elif mode == "right":
            merged[left_names[left_column]] = right_names[right_column]
    if translator.uses_id:
        _carry_ids(translator, left_relation, left, left_names, columns)
        _carry_ids(translator, right_relation, right, right_names, columns)
    table = joined.select(**columns)

    renamed_left = _with_ids(left_relation.renamed(left_names), left_names)
    renamed_right = _with_ids(right_relation.renamed(right_names), right_names)
    using_right = {right_names[r] for _, r in using_pairs}
    star = tuple((name, merged.get(column, column)) for name, column in renamed_left.star)
    star += tuple(entry for entry in renamed_right.star if entry[1] not in using_right)
    standing_for = {**renamed_left.equated, **renamed_right.equated}
    if mode == "outer":
        # Unqualified, a USING column of a full join is the value of whichever side is there.
        for left_column, right_column in using_pairs:
            shown = merged[left_names[left_column]]
            standing_for[left_names[left_column]] = shown
            standing_for[right_names[right_column]] = shown
    else:
        for left_column, right_column in equated:
            kept, dropped = left_names[left_column], right_names[right_column]
            if mode == "right":
                kept, dropped = dropped, kept
            kept = standing_for.get(kept, kept)
            standing_for[dropped] = kept
            for column, target in list(standing_for.items()):
                if target == dropped:
                    standing_for[column] = kept
    relation = Relation(table, renamed_left.sources + renamed_right.sources, star, standing_for)
    if residual:
        relation = translator.filtered(relation, residual)
    return relation


def _carry_ids(
    translator: QueryTranslator,
    relation: Relation,
    side: Placeholder,
    names: dict[str, str],
    columns: dict[str, Any],
) -> None:
    """Add to a join's ``columns`` the row ids of the side's sources not yet held in one.

    ``names`` gets an entry ``"<id of source i>"`` for each, so ``_with_ids`` can find it.
    """
    for index, source in enumerate(relation.sources):
        if source.id_column is None and len(relation.sources) == 1:
            name = translator.fresh()
            columns[name] = side.id
            names[f"<id of source {index}>"] = name


def _with_ids(relation: Relation, names: dict[str, str]) -> Relation:
    """The relation with each source's ``id_column`` set from what ``_carry_ids`` added."""
    sources = tuple(
        replace(source, id_column=names[f"<id of source {index}>"])
        if f"<id of source {index}>" in names
        else source
        for index, source in enumerate(relation.sources)
    )
    return replace(relation, sources=sources)


def attach_column(
    table: Table,
    other: Table,
    column: str,
    new_name: str,
    value: Callable[[Placeholder], Any] | None = None,
) -> Table:
    """``table`` with ``other``'s single row's ``column`` added to every row as ``new_name``.

    The rows keep their ids; if ``other`` is empty, so is the result.
    """
    added = right[column] if value is None else value(right)
    return table.join(other, id=left.id).select(*left, **{new_name: added})


def distinct(table: Table, names: list[str] | None = None) -> Table:
    """The distinct rows of ``table``, grouped on ``names`` (default: all columns, in order)."""
    names = table.column_names() if names is None else names
    return table.groupby(*(this[n] for n in names)).reduce(**{n: this[n] for n in names})
