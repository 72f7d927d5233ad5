"""Windows: the kinds made by ``tumbling``, ``sliding``, ``session`` and ``intervals_over``
(those functions and ``windowby`` are in :mod:`._window_functions`).

A window is a key assignment: each row gets its window(s) — by arithmetic on the time column
for tumbling/sliding windows (:mod:`deltaflow.engine.temporal_window`), from a time-ordered
index per instance for sessions (:mod:`deltaflow.engine.stateful.temporal_session`), from an
interval join with the ``at`` points for ``intervals_over`` — and the ordinary grouped reduce
runs over (window, instance). Behaviors (delay, cutoff, exactly once) gate the assigned rows
with the event-time operators of :mod:`deltaflow.temporal._behaviors`.

``windowby`` returns a :class:`WindowedGroupedTable` (:mod:`._windowed_table`); its
``reduce`` builds the assignment with only the columns the reducers use, so no other column
is copied per window.
"""

from __future__ import annotations

import dataclasses
import datetime
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from deltaflow import _types as t
from deltaflow.engine.temporal_window import END, INSTANCE, KEY, START, WindowAssignNode
from deltaflow.expressions.base import ColumnExpression, ColumnReference
from deltaflow.expressions.evaluate import CompiledProjection
from deltaflow.expressions.functions import coalesce, if_else
from deltaflow.expressions.placeholders import this
from deltaflow.temporal import _behaviors as behaviors
from deltaflow.temporal._timetypes import check_length, check_origin, time_kind
from deltaflow.temporal._windowed_table import LOCATION, WINDOW, WindowedGroupedTable

if TYPE_CHECKING:
    from deltaflow.table import Table

IntervalType = int | float | datetime.timedelta
TimeType = int | float | datetime.datetime


class Window(ABC):
    """A way of assigning rows to windows (see :func:`tumbling`, :func:`sliding`,
    :func:`session`, :func:`intervals_over`)."""

    @abstractmethod
    def _apply(
        self, table: Table, key: ColumnExpression, behavior: Any, instance: ColumnExpression | None
    ) -> WindowedGroupedTable:
        """The grouped table of ``table`` by this window."""


# ------------------------------------------------------------------------------------------
# Window kinds
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _SlidingWindow(Window):
    hop: IntervalType
    duration: IntervalType | None
    ratio: int | None
    origin: TimeType | None

    def length(self) -> IntervalType:
        """The duration of each window."""
        if self.duration is not None:
            return self.duration
        assert self.ratio is not None, "a sliding window has a duration or a ratio"
        return self.ratio * self.hop

    def check(self, kind: str, where: str) -> None:
        _check_types(
            where,
            kind,
            [
                ("window.hop", self.hop),
                ("window.duration", self.duration),
                ("window.origin", self.origin),
            ],
        )
        check_length(self.hop, kind, f"{where}: window hop", allow_none=False)
        check_length(self.length(), kind, f"{where}: window duration", allow_none=False)
        check_origin(self.origin, kind, f"{where}: window origin")

    def value_kind(self, kind: str) -> str:
        """The kind of the window bounds: float when an int time meets a float length."""
        if kind == "int" and any(
            isinstance(v, float) for v in (self.hop, self.duration, self.origin)
        ):
            return "float"
        return kind

    def assign(
        self,
        table: Table,
        key: ColumnExpression,
        instance: ColumnExpression | None,
        carried: list[str],
        where: str,
        *,
        derive_ids: bool = True,
    ) -> Table:
        """``table``'s rows with their windows (``_pw_key``, start, end, instance); with
        ``derive_ids`` a row in several windows gets an id per window, else keeps its id."""
        from deltaflow.table import Table

        outputs: list[tuple[str, ColumnExpression]] = [(KEY, key)]
        if instance is not None:
            outputs.append((INSTANCE, instance))
        projection = CompiledProjection(table._scope("windowby"), outputs)
        _refuse_futures(projection.types, where)
        kind = time_kind(projection.types[KEY], f"{where}: {_time_label(key)}")
        self.check(kind, where)
        columns = {name: table._columns[name] for name in carried}
        time_type = projection.types[KEY].strip_optional()
        columns[KEY] = time_type
        if instance is not None:
            columns[INSTANCE] = projection.types[INSTANCE]
        bounds_kind = self.value_kind(kind)
        bound_type = t.FLOAT if bounds_kind == "float" else time_type
        columns[START] = bound_type
        columns[END] = bound_type
        node = WindowAssignNode(
            columns=columns,
            inputs=(table._node,),
            pre=projection,
            carried=carried,
            hop=_units(self.hop),
            duration=_units(self.length()),
            origin=_units(self.origin),
            kind=bounds_kind,
            has_instance=instance is not None,
            ratio=self.ratio,
            derive_ids=derive_ids,
            label="windowby",
        )
        from deltaflow import plan

        return Table(node, plan.Universe())

    def _apply(
        self, table: Table, key: ColumnExpression, behavior: Any, instance: ColumnExpression | None
    ) -> WindowedGroupedTable:
        where = f"windowby on {table._description}"
        kind = time_kind(table._scope("windowby").dtype_of(key), f"{where}: {_time_label(key)}")
        self.check(kind, where)
        behavior = _common(behavior, self, kind, where)

        def build(carried: list[str], lookups: dict[str, Any] | None = None) -> Table:
            source = _with_lookups(table, lookups)
            target = self.assign(
                source,
                _rebind(key, table, source),
                None if instance is None else _rebind(instance, table, source),
                carried,
                where,
                derive_ids=False,
            )
            return _with_behavior(target, behavior)

        keys = [START, END] + ([INSTANCE] if instance is not None else [])
        panes = (self, table, key, instance, kind) if behavior is None else None
        return WindowedGroupedTable(
            table,
            build,
            keys,
            window_kind="sliding",
            has_instance=instance is not None,
            instance_name=_name_of(instance),
            forgetting_marked=behavior is not None
            and behavior.cutoff is not None
            and behavior.keep_results,
            panes=panes,
            one_window_per_row=self.ratio == 1
            # mixed kinds (an int hop, a timedelta duration) fail
            # here with Python's TypeError, as they would later
            or bool(self.length() <= self.hop),  # type: ignore[operator]
        )


@dataclasses.dataclass
class _SessionWindow(Window):
    predicate: Callable[[Any, Any], bool] | None
    max_gap: IntervalType | None

    def _apply(
        self, table: Table, key: ColumnExpression, behavior: Any, instance: ColumnExpression | None
    ) -> WindowedGroupedTable:
        where = f"windowby on {table._description}"

        def build(carried: list[str]) -> Table:
            return self.assign(table, key, instance, carried, where)

        kind = time_kind(table._scope("windowby").dtype_of(key), f"{where}: {_time_label(key)}")
        _check_types(where, kind, [("window.max_gap", self.max_gap)])
        check_length(self.max_gap, kind, f"{where}: session max_gap")
        keys = [WINDOW, START, END] + ([INSTANCE] if instance is not None else [])
        return WindowedGroupedTable(
            table,
            build,
            keys,
            window_kind="session",
            has_instance=instance is not None,
            instance_name=_name_of(instance),
            one_window_per_row=True,
        )

    def assign(
        self,
        table: Table,
        key: ColumnExpression,
        instance: ColumnExpression | None,
        carried: list[str],
        where: str,
    ) -> Table:
        """``table``'s rows with their sessions."""
        from deltaflow import plan
        from deltaflow.engine.stateful.temporal_session import SessionNode
        from deltaflow.table import Table

        outputs: list[tuple[str, ColumnExpression]] = [(KEY, key)]
        if instance is not None:
            outputs.append((INSTANCE, instance))
        projection = CompiledProjection(table._scope("windowby"), outputs)
        _refuse_futures(projection.types, where)
        kind = time_kind(projection.types[KEY], f"{where}: {_time_label(key)}")
        check_length(self.max_gap, kind, f"{where}: session max_gap")
        time_type = projection.types[KEY].strip_optional()
        columns = {name: table._columns[name] for name in carried}
        columns[KEY] = time_type
        if instance is not None:
            columns[INSTANCE] = projection.types[INSTANCE]
        columns[WINDOW] = t.POINTER
        columns[START] = time_type
        columns[END] = time_type
        node = SessionNode(
            columns=columns,
            inputs=(table._node,),
            pre=projection,
            carried=carried,
            max_gap=self.max_gap,
            predicate=self.predicate,
            has_instance=instance is not None,
            label="windowby(session)",
        )
        return Table(node, plan.Universe())


@dataclasses.dataclass
class _IntervalsOverWindow(Window):
    at: ColumnReference
    lower_bound: IntervalType
    upper_bound: IntervalType
    is_outer: bool

    def _apply(
        self, table: Table, key: ColumnExpression, behavior: Any, instance: ColumnExpression | None
    ) -> WindowedGroupedTable:
        from deltaflow.expressions.placeholders import left, right
        from deltaflow.table import Table
        from deltaflow.temporal._interval_join import interval, interval_join

        where = f"windowby on {table._description}"
        at_table = self.at.table
        if not isinstance(at_table, Table) or at_table._node is table._node:
            at_table = table.copy()
        at = at_table[self.at.name]
        kind = time_kind(table._scope("windowby").dtype_of(key), f"{where}: {_time_label(key)}")
        at_kind = time_kind(
            at_table._scope("windowby").dtype_of(at), f"{where}: the window's at column"
        )
        if at_kind != kind:
            raise TypeError(
                f"{where}: the time column is {kind} but intervals_over's at "
                f"column {self.at.name!r} is {at_kind}"
            )
        check_length(
            self.lower_bound, kind, f"{where}: lower_bound", positive=False, allow_none=False
        )
        check_length(
            self.upper_bound, kind, f"{where}: upper_bound", positive=False, allow_none=False
        )
        from deltaflow.table_stateful import JoinMode

        def build(carried: list[str], lookups: dict[str, Any] | None = None) -> Table:
            source = _with_lookups(table, lookups)
            joined = interval_join(
                at_table,
                source,
                at,
                _rebind(key, table, source),
                interval(self.lower_bound, self.upper_bound),
                how=JoinMode.LEFT if self.is_outer else JoinMode.INNER,
            )
            extra: dict[str, Any] = {
                LOCATION: left[self.at.name],
                START: left[self.at.name] + self.lower_bound,
                END: left[self.at.name] + self.upper_bound,
                KEY: _rebind(key, table, right),
            }
            if instance is not None:
                extra[INSTANCE] = _rebind(instance, table, right)
            extra.update({name: right[name] for name in carried})
            # Each row keeps its own id in every window (arg reducers return it, as in
            # Pathway); a point without rows (is_outer) lends its id to its empty row.
            extra["__pw_row"] = coalesce(right.id, left.id)
            return joined.select(**extra).with_id(this["__pw_row"]).without("__pw_row")

        keys = [LOCATION, START, END] + ([INSTANCE] if instance is not None else [])
        return WindowedGroupedTable(
            table,
            build,
            keys,
            window_kind="intervals_over",
            has_instance=instance is not None,
            instance_name=_name_of(instance),
        )


_TYPE_NAMES = {int: "INT", float: "FLOAT", str: "STR", bool: "BOOL"}


def _type_name(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return "DATE_TIME_UTC" if value.tzinfo is not None else "DATE_TIME_NAIVE"
    if isinstance(value, datetime.timedelta):
        return "DURATION"
    return _TYPE_NAMES.get(type(value), type(value).__name__.upper())


def _check_types(where: str, kind: str, params: list[tuple[str, Any]]) -> None:
    """A ``TypeError`` listing the window's parameters when their types do not fit the time
    column's (numbers go with numbers, datetimes with timedeltas and datetime origins)."""
    given = [(name, value) for name, value in params if value is not None]
    numeric = kind in ("int", "float")

    def fits(name: str, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if name.endswith("origin"):
            if numeric:
                return isinstance(value, (int, float))
            return isinstance(value, datetime.datetime) and (
                (value.tzinfo is not None) == (kind == "DateTimeUtc")
            )
        return isinstance(value, (int, float)) if numeric else isinstance(value, datetime.timedelta)

    if all(fits(name, value) for name, value in given):
        return
    time_name = {
        "int": "INT",
        "float": "FLOAT",
        "DateTimeNaive": "DATE_TIME_NAIVE",
        "DateTimeUtc": "DATE_TIME_UTC",
    }[kind]
    names = ", ".join(["time_expr", *[name for name, _ in given]])
    types = ", ".join([time_name, *[_type_name(value) for _, value in given]])
    raise TypeError(
        f"{where}: Arguments ({names}) have to be of types (INT, INT) or "
        f"(FLOAT, FLOAT) or (DATE_TIME_NAIVE, DURATION) or (DATE_TIME_UTC, "
        f"DURATION) but are of types ({types}): the time column is {kind}, "
        f"so window lengths must be numbers for a numeric time and "
        f"datetime.timedelta for a datetime one"
    )


def _time_label(key: ColumnExpression) -> str:
    """How messages name the time column (or expression) of a windowby."""
    if isinstance(key, ColumnReference):
        return f"the time column {key.name!r}"
    return f"the time expression {key!r}"


def _name_of(instance: ColumnExpression | None) -> str | None:
    """The column name of an instance given as a plain column reference."""
    return instance.name if isinstance(instance, ColumnReference) else None


def _with_lookups(table: Table, lookups: dict[str, Any] | None) -> Table:
    """``table`` with the ``ix`` lookups of a windowed reduce as columns: looked up once per
    row, before the row is copied into each of its windows (see ``WindowedGroupedTable``)."""
    return table.with_columns(**lookups) if lookups else table


def _rebind(expression: ColumnExpression, table: Table, placeholder: Any) -> Any:
    """A plain column reference of ``table`` (or ``pw.this``) as a reference through
    ``placeholder`` (``pw.right``) in a join's select."""
    if isinstance(expression, ColumnReference) and (
        expression.table is this or expression.table is table
    ):
        return placeholder[expression.name]
    return expression


# ------------------------------------------------------------------------------------------
# Behaviors
# ------------------------------------------------------------------------------------------


def _common(
    behavior: Any, window: _SlidingWindow, kind: str, where: str
) -> behaviors.CommonBehavior | None:
    """The behavior as a checked :class:`CommonBehavior` (exactly once is a delay of one
    window length plus the shift, with the shift as cutoff)."""
    if behavior is None:
        return None
    if isinstance(behavior, behaviors.ExactlyOnceBehavior):
        check_length(behavior.shift, kind, f"{where}: exactly_once_behavior shift", positive=False)
        shift = behavior.shift if behavior.shift is not None else _zero(kind)
        return behaviors.CommonBehavior(
            window.length() + shift,  # type: ignore[operator]
            shift,
            True,
        )
    if not isinstance(behavior, behaviors.CommonBehavior):
        raise ValueError(
            f"{where}: behavior {behavior!r} is not supported by tumbling/sliding windows"
        )
    check_length(behavior.delay, kind, f"{where}: behavior delay", positive=False)
    check_length(behavior.cutoff, kind, f"{where}: behavior cutoff", positive=False)
    return behavior


def _zero(kind: str) -> IntervalType:
    return datetime.timedelta(0) if kind.startswith("DateTime") else 0


def _with_behavior(target: Table, behavior: behaviors.CommonBehavior | None) -> Table:
    """Gate the assigned rows as the behavior asks: late rows dropped (cutoff), rows held
    until event time passes window start + delay, windows forgotten past end + cutoff."""
    if behavior is None:
        return target
    if behavior.cutoff is not None:
        target = behaviors.freeze_after(target, this[END] + behavior.cutoff, this[KEY])
    if behavior.delay is not None:
        release = this[START] + behavior.delay
        target = behaviors.buffer_until(target, release, this[KEY])
        # Forgetting sees the time a held row was let out at.
        target = target.with_columns(**{KEY: if_else(this[KEY] > release, this[KEY], release)})
    if behavior.cutoff is not None:
        target = behaviors.forget_after(
            target, this[END] + behavior.cutoff, this[KEY], behavior.keep_results
        )
    return target


def _units(value: Any) -> Any:
    """A length or origin in the engine's units (nanoseconds for datetimes)."""
    if isinstance(value, datetime.timedelta):
        return int(pd.Timedelta(value).value)
    if isinstance(value, datetime.datetime):
        return int(pd.Timestamp(value).value)
    return value


def _refuse_futures(types: dict[str, t.DType], where: str) -> None:
    """The time and instance of a window cannot be a fully asynchronous UDF's result."""
    from deltaflow.udfs.future import refuse_futures

    refuse_futures(
        [("the time" if name == KEY else "the instance", dtype) for name, dtype in types.items()],
        "windowby",
        where,
    )
