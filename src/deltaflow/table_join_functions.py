"""``pw.join`` and ``pw.join_inner`` / ``_left`` / ``_right`` / ``_outer``: the join entry
points taking both sides as arguments (``Table.join`` and ``JoinResult.join`` are the method
forms).

They only hand their arguments to :func:`deltaflow.table_join._join`; they are here, above
:mod:`deltaflow.table_join`, so that module holds the join result alone.
"""

from __future__ import annotations

from typing import Any

from deltaflow.table_join import Joinable, JoinResult, _join
from deltaflow.table_join_keys import JoinMode


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
