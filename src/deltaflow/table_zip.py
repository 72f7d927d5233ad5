"""Columns of other tables with the same rows, used in an operation on a table.

Pathway lets an operation on ``t`` use the columns of any table whose rows include ``t``'s
(its universe is ``t``'s or a superset of it): ``t.select(t.a, t2.b)`` with
``t2 = t.select(...)``, ``t.groupby(t2.k)``, ``t.filter(t2.flag)``. :class:`ForeignColumns`
finds those columns, types them for the operation, and builds the table they are read from:
``t`` with the foreign columns brought next to its own by inner joins on the row id (keeping
``t``'s ids).

A column that is only a copy of one of ``t``'s columns (``b = a.select(*pw.this)`` makes
``b.pet`` a copy of ``a.pet``: the same rows, the same values) needs no join at all: it is
read from ``t``'s own column. That also makes ``a.groupby(b.pet).reduce(a.pet)`` work, as
both references then name the same grouping column.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow import plan, universe_checks
from deltaflow.expressions.base import ColumnExpression, ColumnReference, Scope
from deltaflow.expressions.placeholders import left

if TYPE_CHECKING:
    from deltaflow.table import Table
    from deltaflow.table_stateful import JoinResult


def column_origin(node: plan.Node, column: str) -> tuple[int, str]:
    """The (node uid, column) that ``column`` of ``node`` copies unchanged, following the
    selects that pass a column on as it is (a select keeps the ids and the rows, so the
    copy holds the same value in every row)."""
    while isinstance(node, plan.SelectNode) and len(node.inputs) == 1:
        projection = node.projection
        expression = next((e for n, e in projection.outputs if n == column), None)
        if type(expression) is not ColumnReference:
            break
        try:
            source, _ = projection.scope.resolve(expression)
        except (KeyError, ValueError, TypeError, AttributeError):
            break
        parent = node.inputs[0]
        if source not in parent.columns:
            break
        node, column = parent, source
    return node.uid, column


def _table_class() -> type[Table]:
    from deltaflow.table import Table

    return Table


def is_foreign(table: Table, owner: Any) -> bool:
    """Whether ``owner`` (a reference's table) is a table other than ``table`` itself."""
    return (
        isinstance(owner, _table_class()) and owner is not table and owner._node is not table._node
    )


class ForeignColumns:
    """The columns of other tables that an operation on ``table`` reads.

    ``columns`` maps ``(id(owner), name)`` to the column of the zipped table holding it and
    its type; :meth:`scope` types expressions with them, :meth:`build` gives the zipped
    table (``table`` itself when every foreign column is a copy of one of its own).
    """

    def __init__(
        self,
        table: Table,
        refs: Iterable[ColumnReference],
        operation: str,
        description: str | None = None,
    ) -> None:
        self.table = table
        self.operation = operation
        self.description = description or table._description
        self.columns: dict[tuple[int, str], tuple[str, t.DType]] = {}
        # The tables to bring in by a join on the id, with {zipped column: their column}.
        self._brought: list[tuple[Table, dict[str, str]]] = []
        self._built: Table | None = None
        origins: dict[tuple[int, str], str] | None = None
        for ref in refs:
            owner = ref.table
            key = (id(owner), ref.name)
            if not is_foreign(table, owner) or key in self.columns:
                continue
            if ref.name == "id":
                self._check_universe(owner)
                self.columns[key] = ("_id", getattr(owner, "_id_dtype", t.POINTER))
                continue
            if ref.name not in owner._columns:
                raise owner._missing(ref.name)
            if origins is None:
                origins = {column_origin(table._node, n): n for n in table._columns}
            own = origins.get(column_origin(owner._node, ref.name))
            if own is not None:  # a copy of this table's column: no join needed
                self.columns[key] = (own, table._columns[own])
                continue
            self._check_universe(owner)
            index = next((i for i, (o, _) in enumerate(self._brought) if o is owner), None)
            if index is None:
                index = len(self._brought)
                self._brought.append((owner, {}))
            column = f"__zip{index}_{ref.name}"
            self._brought[index][1][column] = ref.name
            self.columns[key] = (column, owner._columns[ref.name])

    def _check_universe(self, other: Table) -> None:
        table = self.table
        if not universe_checks.known_subset(table._universe, other._universe):
            raise ValueError(
                f"{self.operation} on {self.description}: it uses columns of "
                f"{other._description}, whose rows are not known to include this table's "
                f"rows; join the tables (or promise it with promise_universe_is_subset_of / "
                f"with_universe_of)"
            )

    def __bool__(self) -> bool:
        return bool(self.columns)

    @property
    def needs_join(self) -> bool:
        """Whether some column comes from another table's rows (not a copy of our own)."""
        return bool(self._brought)

    def resolve(self, ref: ColumnReference) -> tuple[str, t.DType] | None:
        """Where a foreign reference is read from, or None when ``ref`` is not foreign."""
        return self.columns.get((id(ref.table), ref.name))

    def scope(self, operation: str) -> Scope:
        """``table``'s scope for ``operation`` that also resolves the foreign columns."""
        base = self.table._scope(operation)

        def resolve(ref: ColumnReference) -> tuple[str, t.DType]:
            found = self.resolve(ref)
            return found if found is not None else base.resolve(ref)

        return Scope(base.description, resolve)

    def build(self) -> Table:
        """``table`` with the foreign columns added (same ids, same rows)."""
        if self._built is not None:
            return self._built
        zipped = self.table
        for other, columns in self._brought:
            extra = {column: ColumnReference(other, name) for column, name in columns.items()}
            zipped = zipped.join(other, zipped.id == other.id, id=zipped.id).select(*left, **extra)
        self._built = zipped
        return zipped


def all_references(expression: ColumnExpression) -> list[ColumnReference]:
    """Every column reference in ``expression``, including those inside reducers' arguments
    (which are not children of the reducer node)."""
    from deltaflow.reducers import ReducerExpression

    found: list[ColumnReference] = []
    for node in expression.walk():
        if isinstance(node, ReducerExpression):
            for arg in node.args:
                if isinstance(arg, ColumnExpression):
                    found += all_references(arg)
        if isinstance(node, ColumnReference):
            found.append(node)
    return found


def join_inputs(
    joined: JoinResult, outputs: list[tuple[str, ColumnExpression]], operation: str
) -> tuple[JoinResult, list[tuple[str, ColumnExpression]]]:
    """What an operation on a join result computes from: ``ix(...)`` columns (from
    ``table.ix(pointer, context=pw.this)``) turned into columns of real ``ix`` tables, and
    the columns of tables with the join's rows (a select of the same join result, an ``ix``
    over it, a ``restrict`` to it) brought into a copy of the join result's wide table.
    Returns ``joined`` itself when neither is used."""
    outputs = _join_ix_columns(joined, outputs)
    Table = _table_class()
    wide = joined._wide

    def resolves(ref: ColumnReference) -> bool:
        # Subclasses (window joins) resolve references to tables they joined in another form.
        try:
            joined._resolve(ref)
        except (KeyError, ValueError, TypeError, AttributeError):
            return False
        return True

    refs = [
        ref
        for _, e in outputs
        for ref in all_references(e)
        if isinstance(ref.table, Table)
        and ref.table._node is not wide._node
        and not joined._joins_table(ref.table)
        and not resolves(ref)
    ]
    if not refs:
        return joined, outputs
    foreign = ForeignColumns(wide, refs, operation, joined._description)
    copy = joined._copy()
    copy._wide = foreign.build() if foreign.needs_join else wide
    copy._foreign = foreign
    return copy, outputs


def _join_ix_columns(
    joined: JoinResult, outputs: list[tuple[str, ColumnExpression]]
) -> list[tuple[str, ColumnExpression]]:
    """``outputs`` with each ``ix(...)`` column read from a real ``ix`` table whose rows are
    the join's (the pointer computed by a select on the join result)."""
    from deltaflow.expressions.deferred import IxColumn, has_ix_columns, transform

    if not any(has_ix_columns(e) for _, e in outputs):
        return outputs
    looked_up: dict[int, Table] = {}

    def replace(node: ColumnExpression) -> ColumnExpression | None:
        if not isinstance(node, IxColumn):
            return None
        request = node.request
        if id(request) not in looked_up:
            if not isinstance(request.target, _table_class()):
                raise TypeError(
                    f"{joined._description}: {request.target!r}.ix(...) cannot be "
                    f"used on a join result; use <table>.ix(pointer, "
                    f"context=pw.this) with the table to look rows up in"
                )
            pointers = joined.select(__pointer=request.pointer)
            looked_up[id(request)] = request.target.ix(
                pointers["__pointer"],
                optional=request.optional,
                context=pointers,
                allow_misses=request.allow_misses,
            )
        return ColumnReference(looked_up[id(request)], node.name)

    return [(name, transform(e, replace)) for name, e in outputs]


__all__ = ["ForeignColumns", "all_references", "column_origin", "is_foreign", "join_inputs"]
