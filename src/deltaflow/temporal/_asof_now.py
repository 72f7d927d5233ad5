"""``asof_now_join``: each change of the left table is answered once, against the right table
as it is at that moment, and the answer is never revised.

This is the join for queries against a changing table: a query (a left row) gets the right
rows it matches when it arrives (right changes of the same time included); later right
changes do not touch old answers. A deletion of a left row is answered the same way, against
the right table as it is when the deletion comes (so it retracts the pairs with the right
rows present then), exactly as in Pathway. Only the right table is kept in memory.
"""

from __future__ import annotations

from typing import Any

from deltaflow import plan
from deltaflow.engine.stateful.asof import AsofNowJoinNode
from deltaflow.expressions.base import ColumnReference
from deltaflow.expressions.placeholders import left, right
from deltaflow.table_join import JoinMode, _owns
from deltaflow.temporal._join_common import (
    TemporalJoinResult,
    check_sides,
    mode_name,
    project_sides,
)


class AsofNowJoinResult(TemporalJoinResult):
    """The result of an ``asof_now_join`` before ``select`` (``pw.left``, ``pw.right``,
    ``pw.this`` and the joined tables' columns are available)."""

    def __init__(
        self,
        left_table: Any,
        right_table: Any,
        on: tuple[Any, ...],
        how: Any,
        id: Any,
        left_instance: Any,
        right_instance: Any,
    ) -> None:  # noqa: A002
        operation = "asof_now_join"
        check_sides(left_table, right_table, operation)
        description = f"asof_now_join of {left_table._description} with {right_table._description}"
        mode = mode_name(how, operation)
        if mode not in ("inner", "left"):
            raise ValueError(
                f"{description}: how= must be pw.JoinMode.INNER or LEFT (each "
                f"left row is answered when it comes; right rows are never "
                f"answered), got {how!r}"
            )
        id_side = None
        if id is not None:
            if not (
                isinstance(id, ColumnReference)
                and id.name == "id"
                and (id.table is left or _owns(left_table, id.table))
            ):
                if (
                    isinstance(id, ColumnReference)
                    and id.name == "id"
                    and (id.table is right or _owns(right_table, id.table))
                ):
                    raise ValueError(
                        f"{description}: id= may only be the left table's id "
                        f"(pw.left.id): each left row is answered, right rows "
                        f"may be answered many times"
                    )
                raise TypeError(
                    f"{description}: id= must be pw.left.id (the left table's id), got {id!r}"
                )
            id_side = "left"
        sides = project_sides(
            left_table,
            right_table,
            None,
            None,
            on,
            left_instance,
            right_instance,
            mode,
            description,
        )
        self._init_result(
            left_table, right_table, sides.columns, mode, description, sides.coalesced
        )
        node = AsofNowJoinNode(
            columns=sides.columns,
            inputs=(left_table._node, right_table._node),
            left_pre=sides.left_pre,
            right_pre=sides.right_pre,
            keys=sides.keys,
            key_types=sides.key_types,
            mode=mode,
            id_side=id_side,
            coalesced=sides.coalesced,
            left_columns=sides.left_columns,
            right_columns=sides.right_columns,
            label=f"asof_now_join_{mode}",
        )
        universe = plan.Universe(parent=left_table._universe) if id_side else None
        if id_side and mode == "left":
            universe = left_table._universe
        self._set_wide(node, universe)


def asof_now_join(
    self: Any,
    other: Any,
    *on: Any,
    how: JoinMode = JoinMode.INNER,
    id: Any = None,
    left_instance: Any = None,  # noqa: A002
    right_instance: Any = None,
) -> AsofNowJoinResult:
    """Join each change of ``self`` with the rows of ``other`` present when it comes (``on``
    equalities); answers are never revised. ``how``: INNER or LEFT.

    Parameters:
        other: the table looked up (its current rows).
        *on: equality conditions ``left_column == right_column``.
        id: ``self.id`` to keep the left rows' ids.
        left_instance, right_instance: columns that must also match.
        how: ``pw.JoinMode.INNER`` or ``LEFT``.

    Examples:
        >>> import deltaflow as pw
        >>> prices = pw.debug.table_from_markdown('''
        ...   | item | price | __time__ | __diff__
        ... 1 | pen  | 2     | 2        | 1
        ... 1 | pen  | 2     | 6        | -1
        ... 1 | pen  | 3     | 6        | 1
        ... ''')
        >>> orders = pw.debug.table_from_markdown('''
        ... item | n | __time__
        ... pen  | 1 | 4
        ... pen  | 5 | 8
        ... ink  | 2 | 8
        ... ''')
        >>> r = orders.asof_now_join(prices, orders.item == prices.item).select(
        ...     orders.n, prices.price)
        >>> pw.debug.compute_and_print(r, include_id=False)
        n | price
        1 | 2
        5 | 3
    """
    return AsofNowJoinResult(self, other, on, how, id, left_instance, right_instance)


def asof_now_join_inner(
    self: Any,
    other: Any,
    *on: Any,
    id: Any = None,  # noqa: A002
    left_instance: Any = None,
    right_instance: Any = None,
) -> AsofNowJoinResult:
    """:func:`asof_now_join` with ``how=INNER``: left rows without a match give nothing.

    Parameters:
        other: the table looked up (its current rows).
        *on: equality conditions ``left_column == right_column``.
        id: ``self.id`` to keep the left rows' ids.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> prices = pw.debug.table_from_markdown('''
        ...   | item | price | __time__ | __diff__
        ... 1 | pen  | 2     | 2        | 1
        ... 1 | pen  | 2     | 6        | -1
        ... 1 | pen  | 3     | 6        | 1
        ... ''')
        >>> orders = pw.debug.table_from_markdown('''
        ... item | n | __time__
        ... pen  | 1 | 4
        ... pen  | 5 | 8
        ... ink  | 2 | 8
        ... ''')
        >>> r = orders.asof_now_join_inner(prices, orders.item == prices.item).select(
        ...     orders.n, cost=orders.n * prices.price)
        >>> pw.debug.compute_and_print(r, include_id=False)
        n | cost
        1 | 2
        5 | 15
    """
    return AsofNowJoinResult(self, other, on, JoinMode.INNER, id, left_instance, right_instance)


def asof_now_join_left(
    self: Any,
    other: Any,
    *on: Any,
    id: Any = None,  # noqa: A002
    left_instance: Any = None,
    right_instance: Any = None,
) -> AsofNowJoinResult:
    """:func:`asof_now_join` with ``how=LEFT``: a left row without a match gives one row with
    None on the right.

    Parameters:
        other: the table looked up (its current rows).
        *on: equality conditions ``left_column == right_column``.
        id: ``self.id`` to keep the left rows' ids.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> prices = pw.debug.table_from_markdown('''
        ...   | item | price | __time__ | __diff__
        ... 1 | pen  | 2     | 2        | 1
        ... 1 | pen  | 2     | 6        | -1
        ... 1 | pen  | 3     | 6        | 1
        ... ''')
        >>> orders = pw.debug.table_from_markdown('''
        ... item | n | __time__
        ... pen  | 1 | 4
        ... pen  | 5 | 8
        ... ink  | 2 | 8
        ... ''')
        >>> r = orders.asof_now_join_left(prices, orders.item == prices.item).select(
        ...     orders.item, prices.price)
        >>> pw.debug.compute_and_print(r, include_id=False)
        item | price
        ink  |
        pen  | 2
        pen  | 3
    """
    return AsofNowJoinResult(self, other, on, JoinMode.LEFT, id, left_instance, right_instance)
