"""``pw.stdlib.ordered``: operations that follow the order of a column.

:func:`diff` (also ``Table.diff``) subtracts from each value the value of the row before it
in timestamp order. The order comes from an incremental neighbours operator
(:mod:`deltaflow.engine.stateful.neighbours`), the previous row's values from ``ix``; both
are incremental, so an inserted, deleted or updated row changes only its own difference and
that of the row after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow.engine.stateful.neighbours import NeighbourMode, NeighboursNode
from deltaflow.expressions.base import ColumnExpression, ColumnReference
from deltaflow.expressions.functions import require, unwrap

if TYPE_CHECKING:
    from deltaflow.table import Table

__all__ = ["diff"]


def check_reference(value: Any, function: str, parameter: str, *, allow_none: bool = False) -> None:
    """A ``TypeError`` unless ``value`` is a column reference (``pw.this.x``, ``t.x``)."""
    if value is None and allow_none:
        return
    if isinstance(value, ColumnReference):
        return
    hint = f"; did you mean pw.this.{value} instead of {value!r}?" if isinstance(value, str) else ""
    what = "an expression" if isinstance(value, ColumnExpression) else type(value).__name__
    raise TypeError(
        f"{function}(): {parameter} must be a column reference such as "
        f"pw.this.<name>, not {what} ({value!r}){hint}"
    )


def neighbours(
    table: Table,
    key: ColumnReference,
    *,
    instance: ColumnReference | None = None,
    anchor: ColumnExpression | None = None,
    mode: NeighbourMode,
    operation: str,
) -> Table:
    """A table with the ids of ``table`` and ``prev``/``next`` pointers in ``key`` order
    (see :class:`~deltaflow.engine.stateful.neighbours.NeighbourMode`)."""
    from deltaflow.table import Table as TableClass

    outputs: list[tuple[str, ColumnExpression]] = [("__key", table[key])]
    if instance is not None:
        outputs.append(("__inst", table[instance]))
    if anchor is not None:
        outputs.append(("__anchor", anchor))
    pre = table._project(operation, outputs)
    columns: dict[str, t.DType] = {"prev": t.Optional(t.POINTER), "next": t.Optional(t.POINTER)}
    node = NeighboursNode(
        columns=columns, inputs=(table._node,), pre=pre, mode=mode, label=operation
    )
    return TableClass(node, table._universe)


def diff(
    self: Table,
    timestamp: ColumnReference,
    *values: ColumnReference,
    instance: ColumnReference | None = None,
) -> Table:
    """For every row, each of ``values`` minus the same column's value in the row just
    before it in ``timestamp`` order (within its ``instance``, if given).

    The result has the ids of ``self`` and one column ``diff_<name>`` per value column. The
    first row of each instance gets None, and so does a row whose own value is None; a None
    in the previous row's value stops the run (as in Pathway). Rows with equal timestamps are
    ordered by their ids.

    Parameters:
        timestamp: the column ordering the rows.
        *values: the columns whose differences are computed.
        instance: rows are ordered and compared only within equal values of this column.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t | v
        ... 1 | 10
        ... 2 | 13
        ... 3 | 11
        ... ''')
        >>> pw.debug.compute_and_print(t + t.diff(t.t, t.v), include_id=False)
        t | v  | diff_v
        1 | 10 |
        2 | 13 | 3
        3 | 11 | -2
    """
    check_reference(timestamp, "diff", "timestamp")
    for value in values:
        check_reference(value, "diff", "each value")
    check_reference(instance, "diff", "instance", allow_none=True)
    timestamp = self[timestamp]
    links = neighbours(
        self,
        timestamp,
        instance=self[instance] if instance is not None else None,
        mode=NeighbourMode.ADJACENT,
        operation="diff",
    )
    previous = self.ix(links.prev, optional=True)
    differences: dict[str, ColumnExpression] = {}
    for value in values:
        column = self[value]
        differences[f"diff_{column.name}"] = require(
            column - unwrap(previous[column.name]), column, links.prev
        )
    return links.select(**differences)
