"""Queries: SELECT (WHERE, GROUP BY, HAVING, DISTINCT), set operations, WITH and subqueries.

Each query becomes an ordinary Table built with the public Table API, so a query over
streaming tables updates incrementally like any other pipeline. Row ids follow the Table
API operation that computes each query: a SELECT keeps the ids of its FROM rows (a join's
ids for a join), a GROUP BY query has the ids of ``groupby(...).reduce(...)`` over the GROUP
BY columns in their order, UNION ALL those of ``concat_reindex``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deltaflow import reducers
from deltaflow.expressions import this
from deltaflow.expressions.placeholders import Placeholder
from deltaflow.sql._expressions import (
    ExpressionContext,
    conjuncts,
    contains_aggregate,
    translate,
    translate_aggregate,
)
from deltaflow.sql._from import build_from, distinct
from deltaflow.sql._parse import (
    CorrelatedSubqueryError,
    UnsupportedSqlAssertion,
    reject_unhandled,
    sqlglot_modules,
    unsupported,
)
from deltaflow.sql._scope import FreshNames, Relation
from deltaflow.sql._subqueries import attach_subqueries
from deltaflow.table import Table

_, exp = sqlglot_modules()

# Parts of a SELECT this translator handles; any other part present is reported as such.
_HANDLED_SELECT_PARTS = {
    "expressions",
    "from",
    "joins",
    "where",
    "group",
    "having",
    "distinct",
    "with",
}
_HAVING_COLUMN = "_sql_having"


class RowContext(ExpressionContext):
    """Expressions over the rows of a relation (WHERE, the SELECT list without grouping)."""

    def __init__(
        self,
        translator: QueryTranslator,
        relation: Relation,
        placeholder: Placeholder = this,
        prepared: Mapping[int, str] | None = None,
    ) -> None:
        self.translator = translator
        self.relation = relation
        self.placeholder = placeholder
        self.prepared = prepared or {}

    def internal(self, node: Any) -> str:
        """The relation's column holding column reference ``node``."""
        return self.relation.resolve(node.name, node.table or None)

    def column(self, node: Any) -> Any:
        qualifier = node.table or None
        try:
            return self.placeholder[self.internal(node)]
        except KeyError:
            if node.name == "id" and (qualifier is None or self.relation.has_source(qualifier)):
                return self._row_id(qualifier)
            if qualifier is not None and not self.relation.has_source(qualifier):
                if self.translator.in_outer_scope(node.name, qualifier):
                    raise CorrelatedSubqueryError(
                        f"pw.sql: correlated subqueries are not supported ({node.sql()} "
                        "refers to the query around the subquery)"
                    ) from None
                if self.translator.knows_table(qualifier):
                    # A table of the query's arguments used directly, as Pathway allows:
                    # its rows must include those of the relation.
                    return self.translator.lookup(qualifier)[node.name]
            elif qualifier is None and self.translator.in_outer_scope(node.name, None):
                raise CorrelatedSubqueryError(
                    f"pw.sql: correlated subqueries are not supported ({node.sql()} refers "
                    "to the query around the subquery)"
                ) from None
            raise

    def _row_id(self, qualifier: str | None) -> Any:
        """The row ids of a source: the table's own ids, or the column a join put them in."""
        if qualifier is None:
            # A bare id is the row id of the FROM rows (a join's own ids for a join).
            return self.placeholder.id
        source = self.relation.id_source(qualifier)
        if source.id_column is not None:
            return self.placeholder[source.id_column]
        if len(self.relation.sources) == 1:
            return self.placeholder.id
        raise KeyError(f"pw.sql: the row ids of {source.name!r} are not available here")

    def subquery(self, node: Any) -> Any:
        column = self.prepared.get(id(node))
        if column is None:
            raise unsupported(node, "subquery here")
        return self.placeholder[column]


class GroupContext(RowContext):
    """Expressions of a reduce: grouping columns, aggregates, and SELECT aliases (in HAVING)."""

    def __init__(
        self,
        translator: QueryTranslator,
        relation: Relation,
        keys: set[str],
        key_expressions: Mapping[str, str],
        prepared: Mapping[int, str],
        aliases: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(translator, relation, this, prepared)
        self.keys = keys
        self.key_expressions = key_expressions
        self.aliases = aliases or {}
        self.rows = RowContext(translator, relation, this, prepared)

    def column(self, node: Any) -> Any:
        try:
            internal = self.internal(node)
        except KeyError:
            alias = self.aliases.get(node.name)
            if alias is not None and not node.table:
                return translate(alias, self)
            raise
        if internal not in self.keys:
            alias = self.aliases.get(node.name)
            if alias is not None and not node.table:
                # HAVING total > 1 with "SUM(total) AS total": the alias is what is meant.
                return translate(alias, self)
            raise ValueError(
                f"pw.sql: column {node.sql()} is neither in GROUP BY nor inside "
                "an aggregate function"
            )
        return this[internal]

    def aggregate(self, node: Any) -> Any:
        return translate_aggregate(node, lambda argument: translate(argument, self.rows))

    def subquery(self, node: Any) -> Any:
        # A subquery outside aggregates must have one value per group (it is uncorrelated, or
        # correlated with grouping columns only); unique() fails the run if it has several.
        return reducers.unique(super().subquery(node))

    def override(self, node: Any) -> Any | None:
        if isinstance(node, exp.Column):
            return None
        key = self.key_expressions.get(node.sql())
        return None if key is None else this[key]


class QueryTranslator:
    """Translates the queries of one ``pw.sql`` call over the tables it was given."""

    def __init__(
        self,
        catalog: Mapping[str, Table],
        fresh: FreshNames | None = None,
        outer: tuple[Relation, ...] = (),
    ) -> None:
        self.catalog = dict(catalog)
        self.fresh = fresh or FreshNames()
        self.outer = outer
        self.current: Relation | None = None
        # Joins carry each table's row ids only when the query mentions a column "id".
        self.uses_id = False

    # --- names ----------------------------------------------------------------------------
    def knows_table(self, name: str) -> bool:
        return name in self.catalog

    def lookup(self, name: str) -> Table:
        if name not in self.catalog:
            raise KeyError(
                f"pw.sql: no table {name!r}; the query's tables are "
                f"{', '.join(sorted(self.catalog)) or '(none)'} (pass tables as "
                "keyword arguments: pw.sql(query, name=table))"
            )
        return self.catalog[name]

    def in_outer_scope(self, name: str, qualifier: str | None) -> bool:
        return any(r.can_resolve(name, qualifier) for r in self.outer)

    def subquery_translator(self) -> QueryTranslator:
        outer = self.outer if self.current is None else (self.current, *self.outer)
        translator = QueryTranslator(self.catalog, self.fresh, outer)
        translator.uses_id = self.uses_id
        return translator

    def row_context(
        self,
        relation: Relation,
        placeholder: Placeholder = this,
        prepared: Mapping[int, str] | None = None,
    ) -> RowContext:
        return RowContext(self, relation, placeholder, prepared)

    # --- queries --------------------------------------------------------------------------
    def query(self, node: Any) -> Table:
        """The table computed by a query (SELECT, set operation, parenthesized query)."""
        with_clause = node.args.get("with")
        if with_clause is not None:
            translator = self._with_ctes(with_clause)
            node = node.copy()
            node.set("with", None)
            return translator.query(node)
        if isinstance(node, exp.Subquery):
            return self.query(node.this)
        if isinstance(node, exp.Select):
            return self.select(node)
        if isinstance(node, exp.Union | exp.Intersect | exp.Except):
            return self._set_operation(node)
        raise unsupported(node)

    def _with_ctes(self, with_clause: Any) -> QueryTranslator:
        if with_clause.args.get("recursive"):
            raise unsupported(with_clause, "WITH RECURSIVE")
        translator = QueryTranslator(self.catalog, self.fresh, self.outer)
        translator.uses_id = self.uses_id
        for cte in with_clause.expressions:
            table = translator.query(cte.this)
            columns = [c.name for c in (cte.args["alias"].args.get("columns") or [])]
            if columns:
                current = table.column_names()
                if len(columns) != len(current):
                    raise ValueError(
                        f"pw.sql: WITH {cte.alias} names {len(columns)} columns "
                        f"but its query has {len(current)}"
                    )
                table = table.select(**{new: this[old] for new, old in zip(columns, current)})
            translator.catalog[cte.alias] = table
        return translator

    def _set_operation(self, node: Any) -> Table:
        reject_unhandled(node, {"this", "expression", "distinct", "with"})
        left_table = self.query(node.this)
        right_table = self.query(node.expression)
        keep_duplicates = not node.args.get("distinct")
        if not isinstance(node, exp.Intersect | exp.Except):  # both subclass Union
            combined = left_table.concat_reindex(right_table)
            return combined if keep_duplicates else distinct(combined)
        operation = "INTERSECT" if isinstance(node, exp.Intersect) else "EXCEPT"
        if keep_duplicates:
            raise unsupported(node, f"{operation} ALL", UnsupportedSqlAssertion)
        names = left_table.column_names()
        if sorted(names) != sorted(right_table.column_names()):
            raise ValueError(
                f"pw.sql: {operation} needs the same column names on both sides, "
                f"got {names} and {right_table.column_names()}"
            )
        left_rows, right_rows = distinct(left_table, names), distinct(right_table, names)
        if operation == "INTERSECT":
            return left_rows.intersect(right_rows)
        return left_rows.difference(right_rows)

    # --- SELECT ---------------------------------------------------------------------------
    def select(self, node: Any) -> Table:
        reject_unhandled(node, _HANDLED_SELECT_PARTS)
        if node.args.get("group") is not None:
            reject_unhandled(node.args["group"], {"expressions"})
        where = node.args.get("where")
        relation, where_terms = build_from(
            self, node, conjuncts(where.this) if where is not None else []
        )
        self.current = relation
        if where_terms:
            relation = self.filtered(relation, where_terms)
        self.current = relation
        items = self._select_items(node, relation)
        having = node.args.get("having")
        group = node.args.get("group")
        if (
            group is not None
            or having is not None
            or any(contains_aggregate(item) for _, item in items if not isinstance(item, str))
        ):
            table = self._aggregate(relation, items, group, having)
        else:
            table = self._project(relation, items)
        distinct_clause = node.args.get("distinct")
        if distinct_clause:
            if distinct_clause.args.get("on"):
                raise unsupported(distinct_clause, "DISTINCT ON")
            table = distinct(table)
        return table

    def filtered(self, relation: Relation, terms: list[Any]) -> Relation:
        """``relation`` restricted to the rows where every term holds."""
        table, prepared = attach_subqueries(self, relation, terms)
        relation = relation.with_table(table)
        context = self.row_context(relation, prepared=prepared)
        condition = None
        for term in terms:
            if contains_aggregate(term):
                raise ValueError(
                    f"pw.sql: aggregate functions are not allowed in WHERE "
                    f"({term.sql()}); use HAVING"
                )
            value = translate(term, context)
            condition = value if condition is None else condition & value
        return relation.with_table(relation.table.filter(condition))

    def _select_items(self, node: Any, relation: Relation) -> list[tuple[str, Any]]:
        """(output name, expression node or relation column) of the SELECT list, stars expanded.

        Unnamed expressions are called ``_col_<position>`` (position after star expansion),
        literals by their text, as Pathway names them.
        """
        expanded: list[Any] = []
        for item in node.expressions:
            if isinstance(item, exp.Star):
                expanded += relation.star_columns()
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                expanded += relation.star_of(item.table)
            else:
                expanded.append(item)
        items: list[tuple[str, Any]] = []
        for position, item in enumerate(expanded):
            if isinstance(item, tuple):
                items.append(item)
            elif isinstance(item, exp.Alias):
                items.append((item.alias, item.this))
            elif isinstance(item, exp.Column):
                items.append((item.name, item))
            elif isinstance(item, exp.Literal):
                items.append((item.this, item))  # named by its text, as written
            else:
                items.append((f"_col_{position}", item))
        for name, _ in items:
            if name == "id":
                raise ValueError(
                    "pw.sql: 'id' cannot name a result column (every table has "
                    "its row ids as id); choose another alias"
                )
        return items

    def _project(self, relation: Relation, items: list[tuple[str, Any]]) -> Table:
        nodes = [item for _, item in items if not isinstance(item, str)]
        table, prepared = attach_subqueries(self, relation, nodes)
        relation = relation.with_table(table)
        context = self.row_context(relation, prepared=prepared)
        outputs: dict[str, Any] = {}
        for name, item in items:
            outputs[name] = this[item] if isinstance(item, str) else translate(item, context)
        return table.select(**outputs)

    def _aggregate(
        self, relation: Relation, items: list[tuple[str, Any]], group: Any, having: Any
    ) -> Table:
        table = relation.table
        keys: list[str] = []
        key_expressions: dict[str, str] = {}
        aliases = {name: item for name, item in items if not isinstance(item, str)}
        row_context = self.row_context(relation)
        computed: dict[str, Any] = {}
        for key in group.expressions if group is not None else []:
            if isinstance(key, exp.Literal) and not key.is_string:
                position = int(key.this)
                if not 1 <= position <= len(items):
                    raise ValueError(f"pw.sql: GROUP BY {position} is not a SELECT position")
                key = items[position - 1][1]
                if isinstance(key, str):
                    keys.append(key)
                    continue
            if isinstance(key, exp.Column) and relation.can_resolve(key.name, key.table or None):
                keys.append(row_context.internal(key))
                continue
            if isinstance(key, exp.Column) and not key.table and key.name in aliases:
                key = aliases[key.name]
            if contains_aggregate(key):
                raise ValueError(f"pw.sql: GROUP BY cannot use an aggregate ({key.sql()})")
            name = self.fresh()
            computed[name] = translate(key, row_context)
            keys.append(name)
            key_expressions[key.sql()] = name
        if computed:
            table = table.with_columns(**computed)
            relation = relation.with_table(table)
        nodes = [item for _, item in items if not isinstance(item, str)]
        nodes += [having.this] if having is not None else []
        table, prepared = attach_subqueries(self, relation, nodes)
        relation = relation.with_table(table)
        key_set = set(keys)
        context = GroupContext(self, relation, key_set, key_expressions, prepared)
        outputs: dict[str, Any] = {}
        for name, item in items:
            if isinstance(item, str):
                if item not in key_set:
                    raise ValueError(
                        f"pw.sql: column {name!r} is neither in GROUP BY nor "
                        "inside an aggregate function"
                    )
                outputs[name] = this[item]
            else:
                outputs[name] = translate(item, context)
        reduced_columns = dict(outputs)
        if having is not None:
            having_context = GroupContext(
                self, relation, key_set, key_expressions, prepared, aliases
            )
            reduced_columns[_HAVING_COLUMN] = translate(having.this, having_context)
        grouped = table.groupby(*(this[k] for k in keys)) if keys else table
        reduced = grouped.reduce(**reduced_columns)
        if having is None:
            return reduced
        return reduced.filter(this[_HAVING_COLUMN]).select(**{n: this[n] for n in outputs})
