"""Input synchronization groups: ``pw.io.register_input_synchronization_group``.

A group ties together one column of several connector input tables (typically an event
timestamp). While a run goes on, the group lets a source's rows into the engine only while their
value stays within ``max_difference`` of how far every other active source of the group has got,
so that replaying history from a dense and a sparse source interleaves them as they happened
instead of loading the sparse one at once and the dense one slowly.

How it works: every :class:`~deltaflow.io._core.input_session.InputSession` of a group hands
each committed batch to :meth:`SynchronizationGroup.admit` instead of pushing it directly. The
group returns the longest leading part of the batch that may enter now; the rest is held back,
in order, and the session's thread waits (so its reader pauses, which is the backpressure) until
the other sources catch up, finish, go idle or the run stops.

The position of a source is the first value it holds back if it holds any (everything before it
was let through), else the largest value let through; a source that has not committed a value
yet blocks the others, as it would in Pathway. A row of source ``s`` with value ``v`` may enter
when, for every other active source ``o``:

* ``v <= position(o) + max_difference`` if ``o`` has the same or a higher priority (a source
  of lower priority never holds back one of higher priority), and
* if ``o`` has a higher priority: ``v <= largest value of o let through`` or
  ``v < first value o holds back`` (the higher-priority source has already read past ``v``).

The rows of one file (a source part of a file connector) enter the engine at one time: their
values pass the group one by one, but none of them is pushed before the last one has passed.

A source stops constraining the others when it has finished, or when it has an
``idle_duration``, holds nothing back and committed no row for that long. The source holding
the smallest value (highest priority on ties) can always proceed, so the group never deadlocks.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time as _time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.engine.boundary import SourceHandle
from deltaflow.expressions.base import ColumnReference
from deltaflow.io._core.input_session import InputSession

logger = logging.getLogger("deltaflow.io")

_NUMERIC = (t.INT,)
_TEMPORAL = (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC, t.DURATION)
_SUPPORTED = _NUMERIC + _TEMPORAL
_POLL_S = 0.02  # how often a waiting session re-checks finish / idle / stop (no event for them)
# A source not running when the group's first commit of a run happens may still be about to
# start (the runtime starts sources one by one); after this long it is taken as not in the run.
_START_GRACE_S = 0.5

__all__ = ["SynchronizedColumn", "register_input_synchronization_group"]


@dataclass(frozen=True)
class SynchronizedColumn:
    """A column of a synchronization group with its settings.

    ``priority``: a source may not get ahead of any source of higher priority (it waits until
    those have read past its values). ``idle_duration`` (seconds as int/float, or a timedelta):
    after that long without new rows the source stops holding the others back, until it has
    rows again. A plain column reference means priority 0 and no idle duration.
    """

    column: ColumnReference
    priority: int = 0
    idle_duration: int | float | datetime.timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.column, ColumnReference):
            raise TypeError(
                f"pw.io.SynchronizedColumn: column must be a column of an input "
                f"table (table.column), got {self.column!r}"
            )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise TypeError(
                f"pw.io.SynchronizedColumn: priority must be an int, got {self.priority!r}"
            )
        if self.priority < 0:
            raise ValueError(
                f"pw.io.SynchronizedColumn: priority must be non-negative, got {self.priority!r}"
            )
        _idle_seconds(self.idle_duration)  # fails now rather than when the run starts


def _idle_seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"pw.io.SynchronizedColumn: idle_duration must be a number of seconds "
            f"(int or float) or a datetime.timedelta, got {type(value).__name__}"
        )
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(
            f"pw.io.SynchronizedColumn: idle_duration must be non-negative, got {value!r}"
        )
    return seconds


_NULL = t.INT64_MIN  # a missing value: it passes and does not move the source


def _comparable(series: pl.Series) -> np.ndarray:
    """The column as int64 in the unit ``max_difference`` is kept in (ns for times)."""
    if isinstance(series.dtype, pl.Datetime | pl.Duration):
        series = series.dt.cast_time_unit("ns").to_physical()
    return series.cast(pl.Int64).fill_null(_NULL).to_numpy()


def _timedelta_ns(value: datetime.timedelta) -> int:
    if isinstance(value, pd.Timedelta):
        return int(value.value)
    return ((value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds) * 1_000


@dataclass(eq=False)
class _Member:
    """One source of a group and what the group knows of it in the current run."""

    session: InputSession
    column: str
    label: str
    priority: int
    idle_s: float | None
    handle: SourceHandle | None = None
    reached: int | None = None  # largest value let through
    head: int | None = None  # first value held back (None: nothing is held)
    last_data: float = field(default_factory=_time.monotonic)

    def position(self) -> int | None:
        return self.head if self.head is not None else self.reached


class SynchronizationGroup:
    """The shared, thread-safe state of one named group (see the module docstring)."""

    def __init__(self, name: str, dtype: t.DType, max_difference: int) -> None:
        self.name = name
        self.dtype = dtype
        self.max_difference = max_difference  # in the column's physical unit (ns for times)
        self.members: list[_Member] = []
        self._cond = threading.Condition()
        self._run_started = _time.monotonic()

    def describe_difference(self) -> str:
        if self.dtype in _TEMPORAL:
            return str(datetime.timedelta(microseconds=self.max_difference / 1000))
        return str(self.max_difference)

    # --- called by the input sessions ---------------------------------------------------
    def seen(self, session: InputSession, handle: SourceHandle) -> None:
        """``session`` commits in the run that owns ``handle``. A member whose recorded handle
        is no longer its session's was started again by a new run: its old state is void."""
        with self._cond:
            now = _time.monotonic()
            for other in self.members:
                if other.handle is not None and other.handle is not other.session.current_handle:
                    other.handle, other.reached, other.head = None, None, None
            if all(other.handle is None for other in self.members):
                # A run begins: idle durations count from here.
                self._run_started = now
                for other in self.members:
                    other.last_data = now
            member = self._member(session)
            if member.handle is not handle:
                member.handle = handle
                self._cond.notify_all()

    def admit(
        self,
        session: InputSession,
        handle: SourceHandle,
        batch: pl.DataFrame,
        stop: threading.Event,
        spans: Sequence[tuple[int, int]] = (),
    ) -> Iterator[tuple[pl.DataFrame, bool]]:
        """Yield ``(part, is_last)`` for consecutive parts of ``batch`` as the group lets them
        through, waiting in between. Ends early (without ``is_last``) when ``stop`` is set.

        ``spans``: sorted, disjoint ``(start, end)`` row ranges of ``batch`` that must enter the
        engine at one time (the rows of one file). Their rows pass the group one by one (so
        the other sources see this one advance), but a part never ends inside a span: the
        span is yielded once its last row has passed. Static inputs give no spans: the
        engine's first time waits for their first commit, so holding one of their files
        whole could hold the whole group."""
        self.seen(session, handle)
        member = self._member(session)
        values = _comparable(batch.get_column(member.column))
        start = 0  # rows that passed the group
        pushed = 0  # rows yielded
        with self._cond:
            member.last_data = _time.monotonic()
        while start < batch.height:
            with self._cond:
                while True:
                    count = self._admissible(member, values[start:])
                    if count:
                        break
                    if member.head != values[start]:
                        member.head = int(values[start])
                        self._cond.notify_all()
                    if stop.is_set():
                        return
                    self._cond.wait(_POLL_S)
                end = start + count
                top = int(values[start:end].max())
                if top != _NULL:
                    member.reached = top if member.reached is None else max(member.reached, top)
                member.head = int(values[end]) if end < batch.height else None
                self._cond.notify_all()
            if end < batch.height:
                logger.debug(
                    "sync group %r: %s holds back %d row(s) from value %s",
                    self.name,
                    member.label,
                    batch.height - end,
                    values[end],
                )
            cut = _cut_before_span(end, spans)
            if cut > pushed:
                yield (
                    batch
                    if pushed == 0 and cut == batch.height
                    else batch.slice(pushed, cut - pushed),
                    cut == batch.height,
                )
                pushed = cut
            start = end

    # --- the rule ------------------------------------------------------------------------
    def _member(self, session: InputSession) -> _Member:
        for member in self.members:
            if member.session is session:
                return member
        raise KeyError(f"{session.name} is not in synchronization group {self.name!r}")

    def _constrains(self, other: _Member, now: float) -> bool:
        """Whether ``other`` currently holds the rest of the group back."""
        if (
            other.head is None
            and other.idle_s is not None
            and now - other.last_data >= other.idle_s
        ):
            return False
        handle = other.handle
        if handle is not None:  # it committed in this run
            return other.head is not None or not (handle.finished or handle.failure is not None)
        # It has not committed yet: it holds the others back while it runs (waiting for its
        # first value), or while it may still be starting.
        session = other.session
        current = session.current_handle
        running = session.is_reading and current is not None and not current.finished
        return running or now - self._run_started < _START_GRACE_S

    def _admissible(self, member: _Member, values: np.ndarray) -> int:
        """How many leading ``values`` of ``member`` may enter now (called with the lock)."""
        now = _time.monotonic()
        allowed = np.ones(len(values), dtype=bool)
        for other in self.members:
            # Sources of lower priority never hold this one back: they follow it.
            if (
                other is member
                or other.priority < member.priority
                or not self._constrains(other, now)
            ):
                continue
            position = other.position()
            if position is None:
                return 0  # it has not read anything yet: wait for its first value
            allowed &= values <= min(position + self.max_difference, t.INT64_MAX)
            if other.priority > member.priority:
                ahead = (
                    values < other.head
                    if other.head is not None
                    else np.zeros(len(values), dtype=bool)
                )
                if other.reached is not None:
                    ahead |= values <= other.reached
                allowed &= ahead
        if allowed.all():
            return len(values)
        return int(np.argmin(allowed))


def _cut_before_span(end: int, spans: Sequence[tuple[int, int]]) -> int:
    """``end``, or the start of the span ``end`` falls strictly inside of."""
    for first, last in spans:
        if first < end < last:
            return first
        if first >= end:
            break
    return end


_GROUPS: dict[str, SynchronizationGroup] = {}
_GROUPS_LOCK = threading.Lock()


def _forget_groups() -> None:
    with _GROUPS_LOCK:
        _GROUPS.clear()


plan.on_clear_graph(_forget_groups)


def _input_session(column: ColumnReference, where: str) -> InputSession:
    table = column.table
    node = getattr(table, "_node", None)
    if not isinstance(node, plan.InputNode) or not isinstance(node.source, InputSession):
        raise ValueError(
            f"{where}: column {column.name!r} must belong to a table read by an "
            f"input connector (pw.io.*.read), not to a transformed or debug "
            f"table; got {table!r}"
        )
    if column.name not in node.columns:
        raise ValueError(f"{where}: {column.name!r} is not a column of {table!r}")
    return node.source


def register_input_synchronization_group(
    *columns: ColumnReference | SynchronizedColumn, max_difference: Any, name: str = "default"
) -> None:
    """Read the tables of ``columns`` in step: no source's column gets further than
    ``max_difference`` ahead of the others' (see the module docstring for the exact rule).

    ``columns``: at least two, each of a different connector input table, all of the same type:
    ``int`` (``max_difference`` an int) or ``DateTimeNaive``/``DateTimeUtc``/``Duration``
    (``max_difference`` a ``datetime.timedelta``/``pw.Duration``). Registering again under the
    same ``name`` adds the columns to that group.

    Parameters:
        *columns: columns of different connector input tables (or ``pw.io.SynchronizedColumn``
            objects with their own limits).
        max_difference: how far one source's column may get ahead of the others'.
        name: the group's name; registering again under it adds columns to the group.

    Examples:
        >>> import deltaflow as pw, pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.csv").write_text("t,v\\n1,x\\n5,y\\n")
        >>> _ = (folder / "b.csv").write_text("t,v\\n2,z\\n")
        >>> class Event(pw.Schema):
        ...     t: int
        ...     v: str
        >>> a = pw.io.csv.read(folder / "a.csv", schema=Event, mode="static")
        >>> b = pw.io.csv.read(folder / "b.csv", schema=Event, mode="static")
        >>> pw.io.register_input_synchronization_group(a.t, b.t, max_difference=10)
        >>> pw.debug.compute_and_print(a.concat_reindex(b), include_id=False)
        t | v
        1 | x
        2 | z
        5 | y
    """
    where = "pw.io.register_input_synchronization_group"
    if not isinstance(name, str):
        raise TypeError(f"{where}: name must be a str, got {name!r}")
    if len(columns) < 2:
        raise ValueError(
            f"{where}: give at least two columns (of different input tables), got {len(columns)}"
        )
    specs: list[SynchronizedColumn] = []
    for column in columns:
        if isinstance(column, SynchronizedColumn):
            specs.append(column)
        elif isinstance(column, ColumnReference):
            specs.append(SynchronizedColumn(column))
        else:
            raise TypeError(
                f"{where}: columns must be column references (table.column) or "
                f"pw.io.SynchronizedColumn, got {column!r}"
            )
    sessions: list[InputSession] = []
    dtypes: list[tuple[str, t.DType]] = []
    for position, spec in enumerate(specs):
        session = _input_session(spec.column, where)
        label = f"#{position + 1} ({spec.column.name!r} of {session.name!r})"
        if session in sessions or session.sync_group is not None:
            raise ValueError(
                f"{where}: only one column of a table can be synchronized, and a "
                f"table belongs to one group at most; column {label} repeats a "
                f"table"
            )
        sessions.append(session)
        dtype = session.columns[spec.column.name]
        if dtype not in _SUPPORTED:
            raise ValueError(
                f"{where}: column {label} has type {dtype!r}; synchronization "
                f"groups support int, DateTimeNaive, DateTimeUtc and Duration "
                f"columns (not optional ones)"
            )
        dtypes.append((label, dtype))
    if len({dtype for _, dtype in dtypes}) > 1:
        found = ", ".join(f"column {label}: {dtype!r}" for label, dtype in dtypes)
        raise ValueError(f"{where}: all columns must have the same type; found {found}")
    label, dtype = dtypes[0]
    difference = _check_max_difference(max_difference, dtype, label, where)
    with _GROUPS_LOCK:
        group = _GROUPS.get(name)
        if group is not None and (group.dtype != dtype or group.max_difference != difference):
            raise ValueError(
                f"{where}: group {name!r} already exists with type "
                f"{group.dtype!r} and max_difference "
                f"{group.describe_difference()}; use another name or the same "
                f"settings"
            )
        if group is None:
            group = _GROUPS[name] = SynchronizationGroup(name, dtype, difference)
        for spec, session in zip(specs, sessions, strict=True):
            group.members.append(
                _Member(
                    session,
                    spec.column.name,
                    session.name,
                    spec.priority,
                    _idle_seconds(spec.idle_duration),
                )
            )
            session.sync_group = group


def _check_max_difference(value: Any, dtype: t.DType, label: str, where: str) -> int:
    """``max_difference`` in the physical unit of ``dtype`` (ns for times), checked."""
    if dtype in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"{where}: max_difference must be an int for int columns (such as "
                f"column {label}), got {value!r}"
            )
        difference = value
    else:
        if not isinstance(value, datetime.timedelta):
            raise ValueError(
                f"{where}: max_difference must be a datetime.timedelta or "
                f"pw.Duration for {dtype!r} columns (such as column {label}), got "
                f"{value!r}"
            )
        difference = _timedelta_ns(value)
    if difference < 0:
        raise ValueError(f"{where}: max_difference must be non-negative, got {value!r}")
    return difference
