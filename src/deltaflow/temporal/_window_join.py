"""Window joins: a join on (window, key) of the two sides' window assignments.

Each side's rows get their tumbling/sliding windows (one row per window, as in ``windowby``);
the sides are then equi-joined on window start, end and ``_pw_window`` plus the ``on``
conditions, with the usual join modes. A pair in several common windows appears once per
window. For sessions, the events of both sides are put together and cut into sessions per
value of the ``on`` columns (and instance), so a session can be opened by a row of either
side; each side's rows then carry their session and the join is on it.

:class:`WindowJoinResult` is a :class:`~deltaflow.table_join.JoinResult` over the
window-assigned sides: ``pw.left``/``pw.right`` name those, and references to the original
tables are read from them (``left_table.id`` is the original row's id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow.expressions.base import (
    BinaryOp,
    ColumnExpression,
    ColumnReference,
    Scope,
    wrap_value,
)
from deltaflow.expressions.evaluate import CompiledProjection
from deltaflow.expressions.functions import make_tuple
from deltaflow.expressions.placeholders import AllColumns, left, right, this
from deltaflow.table_groupby import _table_class
from deltaflow.table_join import JoinMode, JoinResult, _owns
from deltaflow.temporal._timetypes import time_kind
from deltaflow.temporal._window import (
    END,
    KEY,
    START,
    WINDOW,
    Window,
    _check_types,
    _IntervalsOverWindow,
    _SessionWindow,
    _SlidingWindow,
)
from deltaflow.temporal._windowed_table import _none

if TYPE_CHECKING:
    from deltaflow.table import Table

ORIGINAL_ID = "_pw_original_id"


class WindowJoinResult(JoinResult):
    """The result of a window join; ``select`` (and ``filter``/``groupby``) as on a join,
    with ``pw.left``/``pw.right`` naming the window-assigned sides."""

    def __init__(
        self,
        left_original: Table,
        right_original: Table,
        left_new: Table,
        right_new: Table,
        on: tuple[Any, ...],
        mode: JoinMode,
    ) -> None:
        self._originals = ((left_original, left_new), (right_original, right_new))
        super().__init__(left_new, right_new, tuple(self._substituted(c) for c in on), mode)

    def _substitute(self, ref: ColumnReference) -> ColumnReference:
        """A reference to an original side as a reference to its window-assigned table."""
        for original, new in self._originals:
            if _owns(original, ref.table):
                return ColumnReference(new, ORIGINAL_ID if ref.name == "id" else ref.name)
        return ref

    def _substituted(self, condition: Any) -> Any:
        if isinstance(condition, BinaryOp) and condition.op == "==":
            lhs, rhs = condition.left, condition.right
            if isinstance(lhs, ColumnReference):
                lhs = self._substitute(lhs)
            if isinstance(rhs, ColumnReference):
                rhs = self._substitute(rhs)
            return BinaryOp("==", lhs, rhs)
        return condition

    def _resolve(self, ref: ColumnReference) -> tuple[str, t.DType]:
        return super()._resolve(self._substitute(ref))

    def _expand(self, args: Any, operation: str) -> list[tuple[str, ColumnExpression]]:
        mapped = []
        for arg in args:
            if isinstance(arg, AllColumns):
                for original, _ in self._originals:
                    if _owns(original, arg.source):
                        arg = AllColumns(
                            left if original is self._originals[0][0] else right, arg.excluded
                        )
                        break
            mapped.append(arg)
        return super()._expand(mapped, operation)


def _side_scope(table: Table, placeholder: Any) -> Scope:
    """References to one side in its time expression: the table, ``pw.this`` or the side's
    placeholder (``pw.left`` / ``pw.right``)."""

    def resolve(ref: ColumnReference) -> tuple[str, t.DType]:
        if ref.table is placeholder or ref.table is this or _owns(table, ref.table):
            if ref.name == "id":
                return "_id", t.POINTER
            if ref.name in table._columns:
                return ref.name, table._columns[ref.name]
            raise table._missing(ref.name)
        raise ValueError(f"{ref!r} does not belong to {table._description}")

    return Scope("window_join", resolve)


def _time_kind(table: Table, time: ColumnExpression, placeholder: Any, what: str) -> str:
    return time_kind(_side_scope(table, placeholder).dtype_of(time), what)


def _with_time(table: Table, time: ColumnExpression, placeholder: Any) -> Table:
    """``table`` with its time expression as a plain column and its id kept in a column."""
    from deltaflow import plan
    from deltaflow.table import Table as TableClass

    outputs: list[tuple[str, ColumnExpression]] = [
        (name, ColumnReference(this, name)) for name in table._columns
    ]
    outputs.append(("__pw_time", time))
    outputs.append((ORIGINAL_ID, ColumnReference(this, "id")))
    projection = CompiledProjection(_side_scope(table, placeholder), outputs)
    node = plan.SelectNode(
        columns=dict(projection.types),
        inputs=(table._node,),
        projection=projection,
        label="window_join",
    )
    return TableClass(node, table._universe)


def _sliding_side(
    window: _SlidingWindow, table: Table, time: ColumnExpression, placeholder: Any, where: str
) -> Table:
    timed = _with_time(table, time, placeholder)
    carried = [*table._columns, ORIGINAL_ID]
    assigned = window.assign(timed, ColumnReference(timed, "__pw_time"), None, carried, where)
    return assigned.with_columns(**{WINDOW: make_tuple(_none(), this[START], this[END])}).without(
        KEY
    )


def _on_side(
    expr: ColumnExpression, timed: Table, table: Table, placeholder: Any
) -> ColumnExpression:
    if isinstance(expr, ColumnReference) and (
        expr.table is placeholder or expr.table is this or _owns(table, expr.table)
    ):
        return ColumnReference(timed, expr.name)
    return expr


def _split_conditions(
    on: tuple[Any, ...], left_table: Table, right_table: Table, where: str
) -> tuple[list[ColumnExpression], list[ColumnExpression]]:
    left_on: list[ColumnExpression] = []
    right_on: list[ColumnExpression] = []
    for condition in on:
        if not (isinstance(condition, BinaryOp) and condition.op == "=="):
            raise TypeError(
                f"{where}: join conditions must be equalities "
                f"left_column == right_column, got {condition!r}"
            )
        lhs, rhs = condition.left, condition.right
        if _belongs(lhs, right_table, right) and _belongs(rhs, left_table, left):
            lhs, rhs = rhs, lhs
        left_on.append(lhs)
        right_on.append(rhs)
    return left_on, right_on


def _belongs(expr: Any, table: Table, placeholder: Any) -> bool:
    return isinstance(expr, ColumnReference) and (
        expr.table is placeholder or _owns(table, expr.table)
    )


def window_join(
    self: Table,
    other: Table,
    self_time: Any,
    other_time: Any,
    window: Window,
    *on: Any,
    how: JoinMode = JoinMode.INNER,
    left_instance: Any = None,
    right_instance: Any = None,
) -> WindowJoinResult:
    """Join the rows of ``self`` and ``other`` that fall in a common window and satisfy the
    ``on`` conditions (``how``: inner, left, right or outer).

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        window: ``tumbling``, ``sliding`` or ``session``: rows join when they share a window.
        *on: equality conditions ``left_column == right_column``.
        left_instance, right_instance: columns that must also match.
        how: ``pw.JoinMode.INNER``, ``LEFT``, ``RIGHT`` or ``OUTER``.

    Examples:
        >>> import deltaflow as pw
        >>> a = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 2
        ... 1 | 7
        ... ''')
        >>> b = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 3
        ... 2 | 4
        ... ''')
        >>> r = a.window_join(b, a.t, b.t, pw.temporal.tumbling(5), a.k == b.k).select(
        ...     left_t=a.t, right_t=b.t)
        >>> pw.debug.compute_and_print(r, include_id=False)
        left_t | right_t
        2      | 3
    """
    Table = _table_class()
    for side in (self, other):
        if not isinstance(side, Table):
            raise TypeError(f"window_join: expected two tables, got {side!r}")
    if isinstance(how, int) and not isinstance(how, JoinMode):
        how = JoinMode(how)
    where = f"window_join of {self._description} with {other._description}"
    if (left_instance is None) != (right_instance is None):
        raise ValueError(f"{where}: give both left_instance and right_instance, or neither")
    if left_instance is not None:
        on = (*on, BinaryOp("==", wrap_value(left_instance), wrap_value(right_instance)))
    left_time, right_time = wrap_value(self_time), wrap_value(other_time)
    left_kind = _time_kind(self, left_time, left, f"{where}: the left time")
    right_kind = _time_kind(other, right_time, right, f"{where}: the right time")
    if isinstance(window, _SlidingWindow):
        params = [
            ("window.hop", window.hop),
            ("window.duration", window.duration),
            ("window.origin", window.origin),
        ]
    elif isinstance(window, _SessionWindow):
        params = [("window.max_gap", window.max_gap)]
    else:
        kind = "intervals_over" if isinstance(window, _IntervalsOverWindow) else repr(window)
        raise NotImplementedError(
            f"{where}: window_join supports tumbling, sliding and session windows, not {kind}"
        )
    _check_join_types(where, left_kind, right_kind, params)
    if isinstance(window, _SlidingWindow):
        window.check(left_kind, where)
        left_new = _sliding_side(window, self, left_time, left, where)
        right_new = _sliding_side(window, other, right_time, right, where)
    else:
        left_on, right_on = _split_conditions(on, self, other, where)
        left_new, right_new = _session_join_sides(
            window, self, other, left_time, right_time, left_on, right_on, where
        )
    conditions = (
        ColumnReference(left_new, START) == ColumnReference(right_new, START),
        ColumnReference(left_new, END) == ColumnReference(right_new, END),
        ColumnReference(left_new, WINDOW) == ColumnReference(right_new, WINDOW),
        *on,
    )
    return WindowJoinResult(self, other, left_new, right_new, conditions, how)


def _check_join_types(
    where: str, left_kind: str, right_kind: str, params: list[tuple[str, Any]]
) -> None:
    """Both times of one kind, and the window's lengths fitting it (Pathway's message)."""
    numeric = ("int", "float")
    same = left_kind == right_kind or (left_kind in numeric and right_kind in numeric)
    if same:
        try:
            _check_types(where, left_kind, params)
            return
        except TypeError:
            pass
    names = {
        "int": "INT",
        "float": "FLOAT",
        "DateTimeNaive": "DATE_TIME_NAIVE",
        "DateTimeUtc": "DATE_TIME_UTC",
    }
    from deltaflow.temporal._window import _type_name

    given = [(n, v) for n, v in params if v is not None]
    arg_names = ", ".join(["left_time_expression", "right_time_expression", *[n for n, _ in given]])
    types = ", ".join([names[left_kind], names[right_kind], *[_type_name(v) for _, v in given]])
    raise TypeError(
        f"{where}: Arguments ({arg_names}) have to be of types (INT, INT, ...) "
        f"or (FLOAT, FLOAT, ...) or (DATE_TIME_NAIVE, DATE_TIME_NAIVE, DURATION) "
        f"or (DATE_TIME_UTC, DATE_TIME_UTC, DURATION) but are of types ({types}): "
        f"both times must be of one kind, with numeric lengths for numbers and "
        f"datetime.timedelta for datetimes"
    )


def _session_join_sides(
    window: _SessionWindow,
    left_table: Table,
    right_table: Table,
    left_time: ColumnExpression,
    right_time: ColumnExpression,
    left_on: list[ColumnExpression],
    right_on: list[ColumnExpression],
    where: str,
) -> tuple[Table, Table]:
    """Each side with the session (window, start, end) of its rows, the sessions cut from
    both sides' events together, per value of the ``on`` columns."""
    left_timed = _with_time(left_table, left_time, left)
    right_timed = _with_time(right_table, right_time, right)

    def events(
        timed: Table, table: Table, placeholder: Any, keys: list[ColumnExpression], is_left: bool
    ) -> Table:
        columns: dict[str, Any] = {
            "__pw_time": this["__pw_time"],
            "__pw_left": is_left,
            "__pw_row": this.id,
        }
        if keys:
            rebound = [_on_side(k, timed, table, placeholder) for k in keys]
            columns["__pw_inst"] = timed.pointer_from(*rebound)
        return timed.select(**columns)

    both = events(left_timed, left_table, left, left_on, True).concat_reindex(
        events(right_timed, right_table, right, right_on, False)
    )
    instance = this["__pw_inst"] if left_on else None
    sessions = window.assign(both, this["__pw_time"], instance, ["__pw_left", "__pw_row"], where)
    sides = []
    for timed, is_left in ((left_timed, True), (right_timed, False)):
        mine = sessions.filter(this["__pw_left"] == is_left).with_id(this["__pw_row"])
        mine = mine.with_universe_of(timed)
        sides.append(
            timed.with_columns(
                **{WINDOW: mine[WINDOW], START: mine[START], END: mine[END]}
            ).without("__pw_time")
        )
    return sides[0], sides[1]


def window_join_inner(
    self: Table,
    other: Table,
    self_time: Any,
    other_time: Any,
    window: Window,
    *on: Any,
    left_instance: Any = None,
    right_instance: Any = None,
) -> WindowJoinResult:
    """:func:`window_join` keeping only matched pairs.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        window: ``tumbling``, ``sliding`` or ``session``: rows join when they share a window.
        *on: equality conditions ``left_column == right_column``.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> a = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 2
        ... 1 | 7
        ... ''')
        >>> b = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 3
        ... 2 | 4
        ... ''')
        >>> r = a.window_join_inner(b, a.t, b.t, pw.temporal.tumbling(5)).select(
        ...     left_t=a.t, right_t=b.t)
        >>> pw.debug.compute_and_print(r, include_id=False)
        left_t | right_t
        2      | 3
        2      | 4
    """
    return window_join(
        self,
        other,
        self_time,
        other_time,
        window,
        *on,
        how=JoinMode.INNER,
        left_instance=left_instance,
        right_instance=right_instance,
    )


def window_join_left(
    self: Table,
    other: Table,
    self_time: Any,
    other_time: Any,
    window: Window,
    *on: Any,
    left_instance: Any = None,
    right_instance: Any = None,
) -> WindowJoinResult:
    """:func:`window_join` keeping every left row (with None when unmatched).

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        window: ``tumbling``, ``sliding`` or ``session``: rows join when they share a window.
        *on: equality conditions ``left_column == right_column``.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> a = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 2
        ... 1 | 7
        ... ''')
        >>> b = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 3
        ... 2 | 4
        ... ''')
        >>> r = a.window_join_left(b, a.t, b.t, pw.temporal.tumbling(5), a.k == b.k).select(
        ...     left_t=a.t, right_t=b.t)
        >>> pw.debug.compute_and_print(r, include_id=False)
        left_t | right_t
        2      | 3
        7      |
    """
    return window_join(
        self,
        other,
        self_time,
        other_time,
        window,
        *on,
        how=JoinMode.LEFT,
        left_instance=left_instance,
        right_instance=right_instance,
    )


def window_join_right(
    self: Table,
    other: Table,
    self_time: Any,
    other_time: Any,
    window: Window,
    *on: Any,
    left_instance: Any = None,
    right_instance: Any = None,
) -> WindowJoinResult:
    """:func:`window_join` keeping every right row (with None when unmatched).

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        window: ``tumbling``, ``sliding`` or ``session``: rows join when they share a window.
        *on: equality conditions ``left_column == right_column``.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> a = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 2
        ... 1 | 7
        ... ''')
        >>> b = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 3
        ... 2 | 4
        ... ''')
        >>> r = a.window_join_right(b, a.t, b.t, pw.temporal.tumbling(5), a.k == b.k).select(
        ...     left_t=a.t, right_t=b.t)
        >>> pw.debug.compute_and_print(r, include_id=False)
        left_t | right_t
               | 4
        2      | 3
    """
    return window_join(
        self,
        other,
        self_time,
        other_time,
        window,
        *on,
        how=JoinMode.RIGHT,
        left_instance=left_instance,
        right_instance=right_instance,
    )


def window_join_outer(
    self: Table,
    other: Table,
    self_time: Any,
    other_time: Any,
    window: Window,
    *on: Any,
    left_instance: Any = None,
    right_instance: Any = None,
) -> WindowJoinResult:
    """:func:`window_join` keeping every row of both sides.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        window: ``tumbling``, ``sliding`` or ``session``: rows join when they share a window.
        *on: equality conditions ``left_column == right_column``.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> a = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 2
        ... 1 | 7
        ... ''')
        >>> b = pw.debug.table_from_markdown('''
        ... k | t
        ... 1 | 3
        ... 2 | 4
        ... ''')
        >>> r = a.window_join_outer(b, a.t, b.t, pw.temporal.tumbling(5), a.k == b.k).select(
        ...     left_t=a.t, right_t=b.t)
        >>> pw.debug.compute_and_print(r, include_id=False)
        left_t | right_t
               | 4
        2      | 3
        7      |
    """
    return window_join(
        self,
        other,
        self_time,
        other_time,
        window,
        *on,
        how=JoinMode.OUTER,
        left_instance=left_instance,
        right_instance=right_instance,
    )


__all__ = [
    "WindowJoinResult",
    "window_join",
    "window_join_inner",
    "window_join_left",
    "window_join_outer",
    "window_join_right",
]
