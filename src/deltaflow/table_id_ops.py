"""``Table`` operations on row ids: ``update_rows``, ``update_cells`` (``<<``), ``restrict``,
``intersect``, ``difference``, ``ix`` and ``ix_ref``.

Each combines rows of several tables by their ids (and ``ix`` looks rows up by pointer), which
makes them stateful like groupby and joins but otherwise unlike them; so they form their own
mixin, :class:`IdOperationMethods`, which :class:`deltaflow.table_stateful.StatefulMethods`
(and so ``Table``) inherits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from deltaflow import _types as t
from deltaflow import plan, universe_checks
from deltaflow.engine.stateful.nodes import IdOpNode
from deltaflow.error_display import user_calls
from deltaflow.expressions.base import (
    BinaryOp,
    ColumnExpression,
    ColumnReference,
    DeclareType,
    PythonNode,
    Require,
    Scope,
    wrap_value,
)
from deltaflow.expressions.deferred import DeferredIx
from deltaflow.expressions.placeholders import Placeholder, right
from deltaflow.table_groupby import _table_class
from deltaflow.table_join import JoinMode, JoinResult
from deltaflow.table_join_entry import _join

if TYPE_CHECKING:
    from deltaflow.table import Table


@user_calls
class IdOperationMethods:
    """Mixin of ``Table``'s operations on row ids."""

    def _id_op(
        self,
        kind: str,
        others: tuple[Table, ...],
        columns: dict[str, t.DType],
        inputs: tuple[Table, ...],
    ) -> Table:
        node = IdOpNode(
            columns=columns, inputs=tuple(tb._node for tb in inputs), kind=kind, label=kind
        )
        return _table_class()(node, plan.Universe())

    def update_rows(self, other: Table) -> Table:
        """This table with the rows of ``other`` added, replacing rows with the same id.

        Parameters:
            other: a table with the same columns.

        Examples:
            >>> import deltaflow as pw
            >>> old = pw.debug.table_from_markdown('''
            ...   | item | qty
            ... 1 | pen  | 2
            ... 2 | ink  | 6
            ... ''')
            >>> new = pw.debug.table_from_markdown('''
            ...   | item | qty
            ... 2 | ink  | 7
            ... 3 | pad  | 1
            ... ''')
            >>> pw.debug.compute_and_print(old.update_rows(new), include_id=False)
            item | qty
            ink  | 7
            pad  | 1
            pen  | 2
        """
        table = cast("Table", self)  # a mixin of Table only
        _check_table(other, "update_rows")
        if set(other._columns) != set(table._columns):
            raise ValueError(
                f"update_rows: {other._description} has columns "
                f"{list(other._columns)}, but {table._description} has "
                f"{list(table._columns)}"
            )
        columns = {}
        for name, dtype in table._columns.items():
            common = t.common_supertype(dtype, other._columns[name])
            if common is None:
                raise TypeError(
                    f"update_rows: column {name!r} has type {dtype!r} in one table "
                    f"and {other._columns[name]!r} in the other"
                )
            columns[name] = common
        if universe_checks.update_rows_is_other(table, other):
            return other
        result = self._id_op("update_rows", (other,), columns, (table, other))
        if universe_checks.known_subset(other._universe, table._universe):
            result._universe = table._universe  # no row is added: the same rows
        else:
            result._universe = plan.Universe()
            universe_checks.promise_subset(table._universe, result._universe)
            universe_checks.promise_subset(other._universe, result._universe)
        return result

    def update_cells(self, other: Table, _stacklevel: int = 1) -> Table:
        """This table with the cells of ``other``'s columns replaced where ``other`` has the
        row (``other``'s ids must be ids of this table).

        Parameters:
            other: a table with some of this table's columns, whose ids are ids of this table.

        Examples:
            >>> import deltaflow as pw
            >>> old = pw.debug.table_from_markdown('''
            ...   | item | qty
            ... 1 | pen  | 2
            ... 2 | ink  | 6
            ... ''')
            >>> fix = pw.debug.table_from_markdown('''
            ...   | qty
            ... 2 | 7
            ... ''')
            >>> pw.debug.compute_and_print(old.update_cells(fix.promise_universe_is_subset_of(old)),
            ...                            include_id=False)
            item | qty
            ink  | 7
            pen  | 2
        """
        table = cast("Table", self)  # a mixin of Table only
        _check_table(other, "update_cells")
        columns = dict(table._columns)
        for name, dtype in other._columns.items():
            if name not in columns:
                raise ValueError(
                    f"update_cells: {other._description} has column {name!r} that "
                    f"{table._description} does not have"
                )
            common = t.common_supertype(columns[name], dtype)
            if common is None:
                raise TypeError(
                    f"update_cells: column {name!r} has type {columns[name]!r} "
                    f"here and {dtype!r} in the update"
                )
            columns[name] = common
        if universe_checks.check_update_cells(table, other):
            return table.with_columns(**{name: other[name] for name in other._columns})
        result = self._id_op("update_cells", (other,), columns, (table, other))
        result._universe = table._universe  # cells change, the rows stay
        return result

    def __lshift__(self, other: Table) -> Table:
        return self.update_cells(other)

    def restrict(self, other: Any) -> Table:
        """The rows of this table whose ids are in ``other``.

        Parameters:
            other: a table whose ids are ids of this table.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... shop | item | qty
            ... a    | pen  | 2
            ... a    | ink  | 6
            ... b    | pen  | 5
            ... ''')
            >>> big = t.filter(t.qty > 4)
            >>> pw.debug.compute_and_print(t.select(t.item).restrict(big), include_id=False)
            item
            ink
            pen
        """
        table = cast("Table", self)  # a mixin of Table only
        if isinstance(other, JoinResult):  # the rows of a join (its wide table's ids)
            other = other._wide
        _check_table(other, "restrict")
        universe_checks.check_restrict(table, other)
        result = self._id_op("restrict", (other,), dict(table._columns), (table, other))
        result._universe = other._universe
        return result

    def intersect(self, *tables: Table) -> Table:
        """The rows of this table whose ids are in every one of ``tables``.

        Parameters:
            *tables: the tables whose ids are kept.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... shop | item | qty
            ... a    | pen  | 2
            ... a    | ink  | 6
            ... b    | pen  | 5
            ... ''')
            >>> pens, big = t.filter(t.item == "pen"), t.filter(t.qty > 4)
            >>> pw.debug.compute_and_print(t.intersect(pens, big), include_id=False)
            shop | item | qty
            b    | pen  | 5
        """
        table = cast("Table", self)  # a mixin of Table only
        for other in tables:
            _check_table(other, "intersect")
        if not tables:
            return table
        result = self._id_op("intersect", tables, dict(table._columns), (table, *tables))
        result._universe = plan.Universe(parent=table._universe)
        for other in tables:  # the rows kept are rows of every table
            universe_checks.promise_subset(result._universe, other._universe)
        return result

    def difference(self, other: Table) -> Table:
        """The rows of this table whose ids are not in ``other``.

        Parameters:
            other: the table whose ids are left out.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... shop | item | qty
            ... a    | pen  | 2
            ... a    | ink  | 6
            ... b    | pen  | 5
            ... ''')
            >>> pw.debug.compute_and_print(t.difference(t.filter(t.item == "pen")),
            ...                            include_id=False)
            shop | item | qty
            a    | ink  | 6
        """
        table = cast("Table", self)  # a mixin of Table only
        _check_table(other, "difference")
        result = self._id_op("difference", (other,), dict(table._columns), (table, other))
        result._universe = plan.Universe(parent=table._universe)
        return result

    def ix(
        self,
        expression: Any,
        *,
        optional: bool = False,
        context: Any = None,
        allow_misses: bool = False,
    ) -> Table:
        """For each row of the table ``expression`` belongs to, the row of this table whose id
        is the value of ``expression`` (a Pointer).

        Parameters:
            expression: a Pointer expression (ids of this table), over the rows of another table.
            optional: give a row of None where the pointer is None (else None is an error).
            context: the table whose rows the result has (default: the one of ``expression``).
            allow_misses: give a row of None where no row has the id (else it is an error).

        Examples:
            >>> import deltaflow as pw
            >>> prices = pw.debug.table_from_markdown('''
            ... item | price
            ... pen  | 1.5
            ... ink  | 4.0
            ... ''').with_id_from(pw.this.item)
            >>> orders = pw.debug.table_from_markdown('''
            ... item | n
            ... ink  | 3
            ... pen  | 1
            ... ''')
            >>> found = prices.ix(prices.pointer_from(orders.item))
            >>> pw.debug.compute_and_print(orders.select(orders.n, cost=orders.n * found.price),
            ...                            include_id=False)
            n | cost
            1 | 1.5
            3 | 12.0
        """
        table = cast("Table", self)  # a mixin of Table only
        expression = wrap_value(expression)
        ctx = context if context is not None else _context_of(expression)
        if ctx is None or isinstance(ctx, Placeholder):
            # context=pw.this: the rows of the operation using the columns (a select on a
            # join result, a reduce) are only known there.
            # The pointer is on pw.this (or is a reducer): resolved by the operation using it.
            return DeferredIx(
                table,
                expression,
                optional=optional,  # type: ignore[return-value]
                allow_misses=allow_misses,
            )
        lenient = optional or allow_misses
        _check_pointer_type(ctx, expression, table)
        result = _join(
            ctx,
            table,
            (BinaryOp("==", expression, ColumnReference(table, "id")),),
            JoinMode.LEFT,
            ColumnReference(ctx, "id"),
            allow_self=True,
        )
        if lenient:
            out = result.select(*[ColumnReference(right, n) for n in table._columns])
        else:
            # Every pointer must find its row: a miss stops the run (as in Pathway) rather than
            # silently dropping the row; the columns keep the table's own (non-Optional) types.
            check = _PointerFound(ColumnReference(right, "id"), expression, table._description)
            # With terminate_on_error=False a miss is an Error in every looked-up column
            # (each value requires the check), never a None.
            out = result.select(
                __found=check,
                **{
                    n: DeclareType(d, Require(ColumnReference(right, n), check))
                    for n, d in table._columns.items()
                },
            ).without("__found")
        out._universe = ctx._universe
        return out

    def ix_ref(
        self,
        *args: Any,
        optional: bool = False,
        context: Any = None,
        instance: Any = None,
        allow_misses: bool = False,
    ) -> Table:
        """``ix`` with the pointer computed from key values, like ``pointer_from``.

        Parameters:
            *args: the key values of the rows looked up, as given to ``with_id_from``.
            optional: give a row of None where a key value is None.
            context: the table whose rows the result has (default: the one of the key expressions).
            instance: the instance column of the key, as given to ``with_id_from``.
            allow_misses: give a row of None where no row has the key (else it is an error).

        Examples:
            >>> import deltaflow as pw
            >>> prices = pw.debug.table_from_markdown('''
            ... item | price
            ... pen  | 1.5
            ... ink  | 4.0
            ... ''').with_id_from(pw.this.item)
            >>> orders = pw.debug.table_from_markdown('''
            ... item | n
            ... ink  | 3
            ... ''')
            >>> r = orders.select(orders.n, price=prices.ix_ref(orders.item).price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            n | price
            3 | 4.0
        """
        table = cast("Table", self)  # a mixin of Table only
        wrapped = [wrap_value(a) for a in args]
        ctx = context
        if ctx is None:
            for arg in [*wrapped, *([wrap_value(instance)] if instance is not None else [])]:
                ctx = _context_of(arg)
                if ctx is not None:
                    break
        pointer = table.pointer_from(*wrapped, optional=optional, instance=instance)
        return table.ix(pointer, optional=optional, context=ctx, allow_misses=allow_misses)


def _check_pointer_type(context: Table, pointer: ColumnExpression, target: Table) -> None:
    """``ix`` fails when the pointers are ids of another kind of rows than ``target``'s
    (``pointer_from(a, b)`` to look up a table whose ids come from one key column)."""
    dtype = context._project("ix", [("__p", pointer)]).types["__p"]
    if not isinstance(dtype.strip_optional(), t.PointerType):
        return  # other checks (the join's) report what is wrong
    if not t.pointers_compatible(dtype, target._id_dtype):
        raise TypeError(
            f"ix on {target._description}: the pointers have type "
            f"{t.describe(dtype)} but the table's ids are "
            f"{t.describe(target._id_dtype)}; the keys used to compute them "
            f"differ from the table's key"
        )


class _PointerFound(PythonNode):
    """``ix``'s check that every pointer names an existing row (a miss raises KeyError)."""

    label = "ix"

    def __init__(self, found: ColumnExpression, pointer: ColumnExpression, target: str) -> None:
        super().__init__()
        self.found = found
        self.pointer = pointer
        self.target = target

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.found, self.pointer)

    def _infer(self, scope: Scope) -> t.DType:
        scope.dtype_of(self.pointer)
        return scope.dtype_of(self.found)

    def compute(self, args: list[Any], size: int, dtype: t.DType) -> Any:
        found, pointers = args
        if found.null_count():
            missing = pointers.filter(found.is_null())
            shown = t.values_from_series(missing.head(1))[0]
            raise KeyError(
                f"ix: no row with id {shown!r} in {self.target} "
                f"({missing.len()} pointer(s) missing; use optional=True or "
                f"allow_misses=True to get None instead)"
            )
        return found


def _check_table(other: Any, operation: str) -> None:
    if not isinstance(other, _table_class()):
        raise TypeError(f"{operation}: expected a table, got {other!r}")


def _context_of(expression: ColumnExpression) -> Table | None:
    Table = _table_class()
    for node in expression.walk():
        if isinstance(node, ColumnReference) and isinstance(node.table, Table):
            return node.table
        if hasattr(node, "args"):
            for arg in getattr(node, "args", ()):
                if isinstance(arg, ColumnExpression):
                    found = _context_of(arg)
                    if found is not None:
                        return found
    return None
