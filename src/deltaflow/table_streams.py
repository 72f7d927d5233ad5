"""``Table`` methods about a table's changes: streams of upserts and deletions, where
they go (``to``, ``debug``, ``show``), append-only checks and typing helpers.

Kept apart from :mod:`deltaflow.table` (one job per module); ``Table`` inherits them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.engine.stateful.snapshots import UnpackSnapshotsNode
from deltaflow.engine.stateful.streams import (
    AssertAppendOnlyNode,
    StreamToTableNode,
    ToStreamNode,
)
from deltaflow.error_display import user_calls
from deltaflow.expressions.base import ColumnExpression, wrap_value

if TYPE_CHECKING:
    from deltaflow.table import Table

# Plan nodes that never turn an append-only input into one that deletes rows.
_KEEPS_APPEND_ONLY = (plan.SelectNode, plan.FilterNode, plan.FlattenNode, plan.ReindexNode)


def is_append_only_node(node: plan.Node) -> bool:
    """Whether the plan can prove ``node``'s rows are never deleted or changed."""
    if isinstance(node, ToStreamNode | AssertAppendOnlyNode | UnpackSnapshotsNode):
        return True
    if isinstance(node, plan.InputNode):
        return bool(getattr(node.source, "append_only", False))
    if isinstance(node, (*_KEEPS_APPEND_ONLY, plan.ConcatNode)):
        return all(is_append_only_node(child) for child in node.inputs)
    return False


@user_calls
class StreamMethods:
    """Mixed into ``Table``."""

    @property
    def is_append_only(self) -> bool:
        """True when rows of this table are only ever inserted (as far as the plan knows)."""
        table: Table = self  # type: ignore[assignment]
        return is_append_only_node(table._node)

    def assert_append_only(self) -> Table:
        """This table, promised append-only: a deletion or update stops the run.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... v | __time__
            ... 1 | 2
            ... 2 | 4
            ... ''').assert_append_only()
            >>> t.is_append_only
            True
            >>> pw.debug.compute_and_print(t, include_id=False)
            v
            1
            2
        """
        table: Table = self  # type: ignore[assignment]
        node = AssertAppendOnlyNode(
            columns=dict(table._columns), inputs=(table._node,), label="assert_append_only"
        )
        return type(table)(node, table._universe, primary_key=table._primary_key)

    def to_stream(self, upsert_column_name: str = "is_upsert") -> Table:
        """Every change as an inserted row: new values with ``upsert_column_name`` True for
        an insertion or update, old values with False for a deletion.

        Parameters:
            upsert_column_name: the name of the added bool column.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ...   | qty | __time__ | __diff__
            ... 1 | 2   | 2        | 1
            ... 1 | 2   | 4        | -1
            ... ''')
            >>> pw.debug.compute_and_print_update_stream(t.to_stream(), include_id=False)
            qty | is_upsert | __time__ | __diff__
            2   | True      | 2        | 1
            2   | False     | 4        | 1
        """
        table: Table = self  # type: ignore[assignment]
        if upsert_column_name in table._columns:
            raise ValueError(
                f"to_stream on {table._description}: it already has a column "
                f"{upsert_column_name!r}; choose another upsert_column_name"
            )
        columns = {**table._columns, upsert_column_name: t.BOOL}
        node = ToStreamNode(
            columns=columns, inputs=(table._node,), flag=upsert_column_name, label="to_stream"
        )
        return type(table)(node, plan.Universe())

    def stream_to_table(self, is_upsert: Any) -> Table:
        """The table a stream of changes describes: a row with ``is_upsert`` true sets its
        id's row, one with false deletes it.

        Parameters:
            is_upsert: a bool column: True sets the row of the id, False deletes it.

        Examples:
            >>> import deltaflow as pw
            >>> s = pw.debug.table_from_markdown('''
            ...   | qty | up    | __time__
            ... 1 | 2   | True  | 2
            ... 1 | 5   | True  | 4
            ... 2 | 7   | True  | 4
            ... 2 | 7   | False | 6
            ... ''')
            >>> pw.debug.compute_and_print(s.stream_to_table(s.up).select(pw.this.qty),
            ...                            include_id=False)
            qty
            5
        """
        table: Table = self  # type: ignore[assignment]
        flag = table._project("stream_to_table", [("__upsert", wrap_value(is_upsert))])
        if flag.types["__upsert"].strip_optional() != t.BOOL:
            raise TypeError(
                f"stream_to_table on {table._description}: is_upsert must be a "
                f"bool expression, got {flag.types['__upsert']!r}"
            )
        node = StreamToTableNode(
            columns=dict(table._columns),
            inputs=(table._node,),
            upsert_flag=flag,
            label="stream_to_table",
        )
        return type(table)(node, plan.Universe())

    def from_streams(self, deletion_stream: Table) -> Table:
        """The table whose rows this stream inserts (or replaces) and ``deletion_stream``
        deletes, by row id. Only the ids of ``deletion_stream`` matter (its columns may be
        any); deleting an id that has no row is ignored.

        Parameters:
            deletion_stream: a table whose rows' ids are deleted when they come.

        Examples:
            >>> import deltaflow as pw
            >>> ups = pw.debug.table_from_markdown('''
            ...   | qty | __time__
            ... 1 | 2   | 2
            ... 2 | 7   | 2
            ... ''')
            >>> dels = pw.debug.table_from_markdown('''
            ...   | why  | __time__
            ... 2 | sold | 4
            ... ''')
            >>> pw.debug.compute_and_print(ups.from_streams(dels), include_id=False)
            qty
            2
        """
        from deltaflow.table import Table as TableClass

        table: Table = self  # type: ignore[assignment]
        if not isinstance(deletion_stream, TableClass):
            raise TypeError(
                f"from_streams on {table._description}: deletion_stream must be "
                f"a Table, not {type(deletion_stream).__name__}"
            )
        node = StreamToTableNode(
            columns=dict(table._columns),
            inputs=(table._node, deletion_stream._node),
            upsert_flag=None,
            label="from_streams",
        )
        return type(table)(node, plan.Universe())

    def debug(self, name: str) -> Table:
        """Print every change of this table when the program runs with
        ``pw.run(debug=True)``; returns the table.

        Parameters:
            name: the label printed before each change.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... qty
            ... 2
            ... ''')
            >>> t.debug("stock").column_names()
            ['qty']
        """
        from deltaflow.runner import debug_table

        table: Table = self  # type: ignore[assignment]
        debug_table(table, name)
        return table

    def to(self, sink: Any) -> None:
        """Send the changes of this table to ``sink`` when the pipeline runs.

        The ``pw.io.*.write`` functions are built on it; a program rarely calls it itself.

        Parameters:
            sink: an output of the engine, a subclass of
                ``deltaflow.engine.boundary.Sink`` (``on_batch(time, batch)`` receives
                each time's changes as a Polars DataFrame).

        Examples:
            >>> import deltaflow as pw
            >>> from deltaflow.engine.boundary import Sink
            >>> class PrintWords(Sink):
            ...     def on_batch(self, time, batch):
            ...         print(time, sorted(batch["word"].to_list()))
            >>> t = pw.debug.table_from_markdown('''
            ... word
            ... pear
            ... apple
            ... ''')
            >>> t.to(PrintWords())
            >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
            0 ['apple', 'pear']
        """
        from deltaflow.table import add_output

        table: Table = self  # type: ignore[assignment]
        add_output(table, sink)

    def live(self) -> Any:
        """Not supported (Pathway's interactive mode): raises ``NotImplementedError``.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... v
            ... 1
            ... ''')
            >>> t.live()
            Traceback (most recent call last):
            ...
            NotImplementedError: ...
        """
        raise NotImplementedError(
            "Table.live (interactive mode) is not supported by "
            "deltaflow; print results with pw.debug.compute_and_print"
        )

    def show(
        self,
        *,
        snapshot: bool = True,
        include_id: bool = True,
        short_pointers: bool = True,
        sorters: list[dict[str, str]] | None = None,
        page_size: int = 10,
        table_height: int = 400,
    ) -> Any:
        """Not supported (a notebook widget): raises ``NotImplementedError``.

        Parameters:
            snapshot, include_id, short_pointers, sorters, page_size, table_height: Pathway's widget
                options, accepted.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... v
            ... 1
            ... ''')
            >>> t.show()
            Traceback (most recent call last):
            ...
            NotImplementedError: ...
        """
        from deltaflow.stdlib.viz import show

        return show(
            self,
            snapshot=snapshot,
            include_id=include_id,
            short_pointers=short_pointers,
            sorters=sorters,
            page_size=page_size,
            table_height=table_height,
        )

    def plot(self, plotting_function: Any, sorting_col: Any = None) -> Any:
        """Not supported (a notebook widget): raises ``NotImplementedError``.

        Parameters:
            plotting_function: Pathway's plotting callback.
            sorting_col: the column ordering the plotted rows.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... v
            ... 1
            ... ''')
            >>> t.plot(lambda source: None)
            Traceback (most recent call last):
            ...
            NotImplementedError: ...
        """
        from deltaflow.stdlib.viz import plot

        return plot(self, plotting_function, sorting_col)

    def unpack_snapshots(self) -> Table:
        """Every state of this table: at each time at which it changes, all its rows are
        inserted again (with ids of their own), and nothing is ever deleted. An append-only
        table with one full snapshot per changing time, so large for big, busy tables.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ...   | v | __time__ | __diff__
            ... 1 | a | 2        | 1
            ... 2 | b | 4        | 1
            ... ''')
            >>> pw.debug.compute_and_print(t.unpack_snapshots(), include_id=False)
            v
            a
            a
            b
        """
        table: Table = self  # type: ignore[assignment]
        node = UnpackSnapshotsNode(
            columns=dict(table._columns), inputs=(table._node,), label="unpack_snapshots"
        )
        return type(table)(node, plan.Universe())

    def update_id_type(self, id_type: Any, *, id_append_only: bool | None = None) -> Table:
        """This table with its id type declared as ``id_type`` (a typing-only change).

        Parameters:
            id_type: the type declared for the ids (``pw.Pointer[...]``).
            id_append_only: accepted for compatibility.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... v
            ... 1
            ... ''')
            >>> pw.debug.compute_and_print(t.update_id_type(pw.Pointer[int]), include_id=False)
            v
            1
        """
        table: Table = self  # type: ignore[assignment]
        dtype = t.wrap(id_type)
        if not isinstance(dtype.strip_optional(), t.PointerType):
            raise TypeError(
                f"update_id_type on {table._description}: id_type must be a "
                f"pointer type (pw.Pointer or pw.Pointer[...]), got {id_type!r}"
            )
        copy = table.copy()
        copy._id_dtype = dtype.strip_optional()
        return copy

    def eval_type(self, expression: ColumnExpression) -> t.DType:
        """The type ``expression`` has when evaluated on this table.

        Parameters:
            expression: an expression over this table's columns.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... a | b
            ... 1 | 2.5
            ... ''')
            >>> t.eval_type(t.a + t.b), t.eval_type(t.a > 0)
            (float, bool)
        """
        table: Table = self  # type: ignore[assignment]
        return table._project("eval_type", [("__e", wrap_value(expression))]).types["__e"]
