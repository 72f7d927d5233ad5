"""Starting a join: :func:`_join`, which checks ``how`` and the instances and builds the
:class:`~deltaflow.table_join.JoinResult`, and the forms that call it with both sides as
arguments: ``pw.join`` / ``pw.join_inner`` / ``_left`` / ``_right`` / ``_outer``, and
``JoinResult.join*`` (a chain of joins, :class:`JoinChainMethods`). ``Table.join*`` are in
:mod:`deltaflow.table_stateful`.

Kept apart from :mod:`deltaflow.table_join`, which holds the join result itself (its columns,
``select``, ``filter``, ``groupby``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from deltaflow.error_display import user_calls
from deltaflow.expressions.base import BinaryOp, wrap_value
from deltaflow.table_join_keys import JoinMode

if TYPE_CHECKING:
    from deltaflow.table import Table
    from deltaflow.table_join import Joinable, JoinResult


def _join(
    left_side: Joinable,
    right_side: Joinable,
    on: tuple[Any, ...],
    mode: JoinMode,
    id: Any,
    left_instance: Any = None,  # noqa: A002
    right_instance: Any = None,
    left_exactly_once: bool = False,
    right_exactly_once: bool = False,
    *,
    allow_self: bool = False,
) -> JoinResult:
    if not isinstance(mode, JoinMode):
        # Pathway refuses anything but a JoinMode here (a string such as "left" included).
        from deltaflow.argument_errors import ArgumentError

        raise ArgumentError(
            f"join: how={mode!r} is not a join mode; use pw.JoinMode.INNER, pw.JoinMode.LEFT, "
            f"pw.JoinMode.RIGHT or pw.JoinMode.OUTER"
        )
    if (left_instance is None) != (right_instance is None):
        raise ValueError("join: give both left_instance and right_instance, or neither")
    if left_instance is not None:
        # Rows only ever match within the same instance: one more equality condition.
        on = (*on, BinaryOp("==", wrap_value(left_instance), wrap_value(right_instance)))
    from deltaflow.table_join import JoinResult  # table_join's JoinResult inherits from here

    return JoinResult(
        left_side,
        right_side,
        on,
        mode,
        id,
        left_exactly_once=left_exactly_once,
        right_exactly_once=right_exactly_once,
        allow_self=allow_self,
    )


def join(
    left: Joinable,
    right: Joinable,
    *on: Any,
    id: Any = None,  # noqa: A002
    how: JoinMode = JoinMode.INNER,
    left_instance: Any = None,
    right_instance: Any = None,
    left_exactly_once: bool = False,
    right_exactly_once: bool = False,
) -> JoinResult:
    """Join two tables (or join results) on equality conditions (``how`` chooses inner/left/right/outer)."""
    return _join(
        left,
        right,
        on,
        how,
        id,
        left_instance,
        right_instance,
        left_exactly_once,
        right_exactly_once,
    )


def join_inner(
    left: Joinable,
    right: Joinable,
    *on: Any,
    id: Any = None,  # noqa: A002
    left_instance: Any = None,
    right_instance: Any = None,
    left_exactly_once: bool = False,
    right_exactly_once: bool = False,
) -> JoinResult:
    return _join(
        left,
        right,
        on,
        JoinMode.INNER,
        id,
        left_instance,
        right_instance,
        left_exactly_once,
        right_exactly_once,
    )


def join_left(
    left: Joinable,
    right: Joinable,
    *on: Any,
    id: Any = None,  # noqa: A002
    left_instance: Any = None,
    right_instance: Any = None,
    left_exactly_once: bool = False,
    right_exactly_once: bool = False,
) -> JoinResult:
    return _join(
        left,
        right,
        on,
        JoinMode.LEFT,
        id,
        left_instance,
        right_instance,
        left_exactly_once,
        right_exactly_once,
    )


def join_right(
    left: Joinable,
    right: Joinable,
    *on: Any,
    id: Any = None,  # noqa: A002
    left_instance: Any = None,
    right_instance: Any = None,
    left_exactly_once: bool = False,
    right_exactly_once: bool = False,
) -> JoinResult:
    return _join(
        left,
        right,
        on,
        JoinMode.RIGHT,
        id,
        left_instance,
        right_instance,
        left_exactly_once,
        right_exactly_once,
    )


def join_outer(
    left: Joinable,
    right: Joinable,
    *on: Any,
    id: Any = None,  # noqa: A002
    left_instance: Any = None,
    right_instance: Any = None,
    left_exactly_once: bool = False,
    right_exactly_once: bool = False,
) -> JoinResult:
    return _join(
        left,
        right,
        on,
        JoinMode.OUTER,
        id,
        left_instance,
        right_instance,
        left_exactly_once,
        right_exactly_once,
    )


@user_calls
class JoinChainMethods:
    """Mixin of :class:`~deltaflow.table_join.JoinResult`'s joins with a further table."""

    def join(
        self,
        other: Table | JoinResult,
        *on: Any,
        id: Any = None,  # noqa: A002
        how: JoinMode = JoinMode.INNER,
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """Join these joined rows with ``other`` (a table or another join result)."""
        return _join(
            cast("Table", self),
            other,
            on,
            how,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )

    def join_inner(
        self,
        other: Table | JoinResult,
        *on: Any,
        id: Any = None,  # noqa: A002
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        return _join(
            cast("Table", self),
            other,
            on,
            JoinMode.INNER,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )

    def join_left(
        self,
        other: Table | JoinResult,
        *on: Any,
        id: Any = None,  # noqa: A002
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """Every joined row, with its partners in ``other`` or with None on the right."""
        return _join(
            cast("Table", self),
            other,
            on,
            JoinMode.LEFT,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )

    def join_right(
        self,
        other: Table | JoinResult,
        *on: Any,
        id: Any = None,  # noqa: A002
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """Every row of ``other``, with its partners here or with None on the left."""
        return _join(
            cast("Table", self),
            other,
            on,
            JoinMode.RIGHT,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )

    def join_outer(
        self,
        other: Table | JoinResult,
        *on: Any,
        id: Any = None,  # noqa: A002
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """Every joined row and every row of ``other``, matched where possible."""
        return _join(
            cast("Table", self),
            other,
            on,
            JoinMode.OUTER,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )
