"""``Table`` methods that change which rows there are: ``filter``, ``split`` and
``remove_errors`` keep some rows, ``await_futures`` the rows whose asynchronous results are
ready, ``concat``/``concat_reindex`` put the rows of several tables together and ``flatten``
makes one row per element.

Kept apart from :mod:`deltaflow.table` (the table's columns, scopes and projections) so that
each module has one job; ``Table`` inherits :class:`RowMethods`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.error_display import user_calls
from deltaflow.expressions.base import (
    Cast,
    ColumnExpression,
    ColumnReference,
    DeclareType,
    ExpressionError,
    wrap_value,
)
from deltaflow.narrowing import narrowed_columns
from deltaflow.table_groupby import _table_class

if TYPE_CHECKING:
    from deltaflow.table import Table


@user_calls
class RowMethods:
    """Mixin of ``Table``'s operations on the set of rows."""

    def filter(self, filter_expression: Any) -> Table:
        """The rows for which ``filter_expression`` (a bool expression) is true.

        Parameters:
            filter_expression: a bool expression over this table's columns.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> pw.debug.compute_and_print(t.filter(pw.this.qty > 3), include_id=False)
            item | qty | price
            ink  | 6   | 4.0
        """
        table = cast("Table", self)  # a mixin of Table only
        expression = wrap_value(filter_expression)
        projection, source = table._project_zipped("filter", [("__keep", expression)])
        dtype = projection.types["__keep"]
        if dtype.strip_optional() != t.BOOL:
            raise ExpressionError(
                f"filter on {table._description}: the condition must be a "
                f"bool expression, got {dtype!r}"
            )
        # A condition `column.is_not_none()` leaves that column without Optional.
        node = plan.FilterNode(
            columns=narrowed_columns(source.columns, projection.outputs[0][1], projection.scope),
            inputs=(source,),
            predicate=projection,
            label="filter",
        )
        return table._derive(
            table._trimmed(node, "filter"), universe=plan.Universe(parent=table._universe)
        )

    def remove_errors(self) -> Table:
        """The rows none of whose cells is an error (errors exist in runs with
        ``terminate_on_error=False``; see docs/errors.md).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... a | b
            ... 6 | 2
            ... 1 | 0
            ... ''')
            >>> r = t.select(ratio=t.a // t.b).remove_errors()
            >>> pw.debug.compute_and_print(r, include_id=False, terminate_on_error=False)
            ratio
            3
        """
        table = cast("Table", self)  # a mixin of Table only
        from deltaflow.expressions.base import NoErrors

        return table.filter(NoErrors(*(ColumnReference(table, n) for n in table._columns)))

    def await_futures(self) -> Table:
        """The rows whose fully asynchronous UDF results are ready, their ``Future[T]``
        columns typed ``T``. deltaflow computes those results in the minibatch of their row
        (docs/udfs.md), so this is every row.

        Examples:
            >>> import deltaflow as pw
            >>> @pw.udf(executor=pw.udfs.fully_async_executor())
            ... async def double(x: int) -> int:
            ...     return 2 * x
            >>> t = pw.debug.table_from_markdown('''
            ... x
            ... 3
            ... ''')
            >>> r = t.select(y=double(t.x)).await_futures()
            >>> pw.debug.compute_and_print(r, include_id=False)
            y
            6
        """
        table = cast("Table", self)  # a mixin of Table only
        from deltaflow.udfs.future import awaited_column

        return table._select_node(
            [
                (n, awaited_column(ColumnReference(table, n), dtype))
                for n, dtype in table._columns.items()
            ],
            "await_futures",
        )

    def split(self, split_expression: Any) -> tuple[Table, Table]:
        """Two tables: the rows where the expression holds, and the rest.

        Parameters:
            split_expression: a bool expression over this table's columns.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> cheap, dear = t.split(t.price < 2)
            >>> pw.debug.compute_and_print(cheap, dear, include_id=False)
            item | qty | price
            pen  | 2   | 1.5
            item | qty | price
            ink  | 6   | 4.0
        """
        table = cast("Table", self)  # a mixin of Table only
        expression = wrap_value(split_expression)
        return table.filter(expression), table.filter(~expression)

    def concat(self, *others: Table) -> Table:
        """The union of tables with the same columns and disjoint ids.

        Parameters:
            *others: tables with the same column names and types, whose ids are not this table's.

        Examples:
            >>> import deltaflow as pw
            >>> a = pw.debug.table_from_markdown('''
            ...   | item
            ... 1 | pen
            ... ''')
            >>> b = pw.debug.table_from_markdown('''
            ...   | item
            ... 2 | ink
            ... ''')
            >>> pw.universes.promise_are_pairwise_disjoint(a, b)
            >>> pw.debug.compute_and_print(a.concat(b), include_id=False)
            item
            ink
            pen
        """
        table = cast("Table", self)  # a mixin of Table only
        return table._concat(others, reindex=False)

    def concat_reindex(self, *tables: Table) -> Table:
        """The union of tables with the same columns; ids are recomputed so they never clash.

        Parameters:
            *tables: tables with the same column names and types.

        Examples:
            >>> import deltaflow as pw
            >>> a = pw.debug.table_from_markdown('''
            ... item
            ... pen
            ... ''')
            >>> pw.debug.compute_and_print(a.concat_reindex(a), include_id=False)
            item
            pen
            pen
        """
        table = cast("Table", self)  # a mixin of Table only
        return table._concat(tables, reindex=True)

    def _concat(self, others: Iterable[Table], *, reindex: bool) -> Table:
        table = cast("Table", self)  # a mixin of Table only
        tables = [table, *others]
        operation = "concat_reindex" if reindex else "concat"
        names = table.column_names()
        columns = dict(table._columns)
        for other in tables[1:]:
            if not isinstance(other, _table_class()):
                raise TypeError(f"{operation}: expected tables, got {other!r}")
            if set(other.column_names()) != set(names):
                raise ValueError(
                    f"{operation}: {other._description} has columns {other.column_names()}, "
                    f"but {table._description} has {names}"
                )
            for name in names:
                merged = t.common_supertype(columns[name], other._columns[name])
                if merged is None:
                    raise TypeError(
                        f"{operation}: column {name!r} has type {columns[name]!r} "
                        f"in one table and {other._columns[name]!r} in another"
                    )
                columns[name] = merged
        id_dtype: t.DType = t.POINTER
        if not reindex:
            id_dtype = _concat_id_dtype(tables)
            for i, first in enumerate(tables):
                for second in tables[i + 1 :]:
                    if first._universe.known_disjoint(second._universe) is False:
                        raise ValueError(
                            f"concat: {first._description} and {second._description} have "
                            f"rows with the same ids; use concat_reindex (new ids), or "
                            f"promise_universes_are_disjoint if they can never meet"
                        )
        aligned = [
            tb
            if tb.column_names() == names and tb._columns == columns
            else tb._select_node([(n, _coerced(tb, n, columns[n])) for n in names], operation)
            for tb in tables
        ]
        node = plan.ConcatNode(
            columns=columns,
            inputs=tuple(tb._node for tb in aligned),
            reindex=reindex,
            label=operation,
        )
        return _table_class()(node, plan.Universe(), id_dtype=id_dtype)

    def flatten(self, to_flatten: ColumnReference | str, *, origin_id: str | None = None) -> Table:
        """One row per element of the ``to_flatten`` column (other columns are repeated).

        Parameters:
            to_flatten: a column of tuples, lists, arrays, strings or Json arrays.
            origin_id: the name of a column to hold the id of each element's original row.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... order | items
            ... 1     | pen,ink
            ... ''')
            >>> t = t.select(t.order, items=pw.apply_with_type(lambda s: tuple(s.split(",")),
            ...                                                tuple[str, ...], t.items))
            >>> pw.debug.compute_and_print(t.flatten(t.items), include_id=False)
            items | order
            ink   | 1
            pen   | 1
        """
        table = cast("Table", self)  # a mixin of Table only
        name = to_flatten.name if isinstance(to_flatten, ColumnReference) else to_flatten
        if name not in table._columns:
            raise table._missing(name)
        dtype = table._columns[name]
        from deltaflow.udfs.future import refuse_futures

        refuse_futures([(f"column {name!r}", dtype)], "flatten", f"flatten on {table._description}")
        base = dtype.strip_optional()
        if isinstance(base, t.List):
            element = base.arg
        elif isinstance(base, t.Tuple):
            element = (
                base.args[0] if base.args and all(a == base.args[0] for a in base.args) else t.ANY
            )
        elif base == t.STR:
            element = t.STR
        elif base in (t.JSON,):
            element = t.JSON
        elif isinstance(base, t.Array):
            element = base.element()
        elif base == t.ANY:
            element = t.ANY
        else:
            raise TypeError(
                f"flatten on {table._description}: column {name!r} of type "
                f"{dtype!r} is not a list, tuple, array, string or Json"
            )
        # The flattened column comes first, the others keep their order (as in Pathway).
        columns = {name: element, **{n: d for n, d in table._columns.items() if n != name}}
        if origin_id is not None:
            if origin_id in columns:
                raise ValueError(f"flatten: origin_id column {origin_id!r} already exists")
            columns[origin_id] = t.POINTER
        node = plan.FlattenNode(
            columns=columns,
            inputs=(table._node,),
            column=name,
            origin_id=origin_id,
            label="flatten",
        )
        return _table_class()(node, plan.Universe())


def _coerced(table: Table, name: str, target: t.DType) -> ColumnExpression:
    ref = ColumnReference(table, name)
    source = table._columns[name]
    if source == target:
        return ref
    if source.strip_optional() == t.INT and target.strip_optional() == t.FLOAT:
        return Cast(target, ref)
    return DeclareType(target, ref)


def _concat_id_dtype(tables: list[Table]) -> t.DType:
    """The id type of ``concat(*tables)``; a ``TypeError`` when the tables' ids are pointers
    to different kinds of rows (ids of ``int`` keys and of ``str`` keys, say)."""
    merged = tables[0]._id_dtype
    for other in tables[1:]:
        combined = t.common_supertype(merged, other._id_dtype)
        if combined is None:
            raise TypeError(
                f"concat: the ids of {tables[0]._description} are "
                f"{t.describe(merged)} but those of {other._description} are "
                f"{t.describe(other._id_dtype)}; concatenating rows keyed so "
                f"differently is most likely a mistake (update_id_type("
                f"pw.Pointer) on both says it is not)"
            )
        merged = combined
    return merged
