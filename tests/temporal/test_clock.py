"""Wall-clock functions: ``pw.temporal.utc_now``, ``Table.inactivity_detection`` and
``Table.add_update_timestamp_utc``.

Deterministic tests replace the clock (``time_utils.utc_now``) by a stream of fake ticks and
the arrival time of rows (``time_utils._get_now_timestamp_utc``) by a table lookup, exactly
the hooks the functions look up when called. Live tests run the real clock with short
refresh rates and stop the run themselves.
"""

from __future__ import annotations

import datetime
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import deltaflow as pw
from deltaflow.engine.runtime import stop_all_runs
from deltaflow.temporal import time_utils

UTC = datetime.UTC


def fake_clock(until_ms: int) -> Callable[..., pw.Table]:
    """A replacement for ``utc_now``: a tick every refresh_rate, at the time of its value."""

    def clock(refresh_rate: datetime.timedelta, **_: Any) -> pw.Table:
        step = int(refresh_rate.total_seconds() * 1000)
        rows = [(ms, ms, 1) for ms in range(0, until_ms, step)]
        ticks = pw.debug.table_from_rows(pw.schema_from_types(ms=int), rows, is_stream=True)
        return ticks.select(timestamp_utc=pw.this.ms.dt.utc_from_timestamp(unit="ms"))

    return clock


def ms(value: int | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value, unit="ms", tz=UTC)


def as_ms(value: Any) -> int | None:
    return None if value is None else int(pd.Timestamp(value).value // 1_000_000)


def changes(table: pw.Table) -> list[tuple[Any, ...]]:
    """(time, values..., diff) with timestamps in milliseconds, sorted."""
    names = table.column_names()
    out = []
    for when, row, diff in pw.debug.table_to_stream(table):
        values = [as_ms(row[n]) if "timestamp" in n else row[n] for n in names]
        out.append((when, *values, diff))
    return sorted(out, key=repr)


@pytest.fixture
def arrivals(monkeypatch: pytest.MonkeyPatch) -> Callable[[pw.Table, str, int], None]:
    """Fake the clock and make each row arrive at the time in its ``column``."""

    def install(table: pw.Table, column: str, until_ms: int) -> None:
        keys, columns = pw.debug.table_to_dicts(table)
        times = {key: columns[column][key] for key in keys}
        monkeypatch.setattr(time_utils, "utc_now", fake_clock(until_ms))
        monkeypatch.setattr(
            time_utils,
            "_get_now_timestamp_utc",
            lambda row: ms(times[row] if row is not None else 0),
        )

    return install


def test_inactivity_detection_reports_and_resumes(arrivals: Any) -> None:
    table = pw.debug.table_from_markdown("""
        | at   | __time__
      1 | 0    | 0
      2 | 100  | 100
      3 | 200  | 200
      4 | 900  | 900
      5 | 1000 | 1000
    """)
    arrivals(table, "at", 1500)
    found = table.inactivity_detection(
        pw.Duration(milliseconds=300), refresh_rate=pw.Duration(milliseconds=50)
    )
    assert found.column_names() == ["inactivity_timestamp_utc", "resumed_activity_timestamp_utc"]
    assert changes(found) == sorted(
        [
            (550, 200, None, 1),
            (900, 200, None, -1),
            (900, 200, 900, 1),
            (1350, 1000, None, 1),
        ],
        key=repr,
    )


def test_inactivity_detection_per_instance(arrivals: Any) -> None:
    table = pw.debug.table_from_markdown("""
        | who | at   | __time__
      1 | A   | 0    | 0
      2 | B   | 0    | 0
      3 | B   | 400  | 400
      4 | A   | 600  | 600
    """)
    arrivals(table, "at", 1000)
    found = table.inactivity_detection(
        pw.Duration(milliseconds=300),
        refresh_rate=pw.Duration(milliseconds=100),
        instance=pw.this.who,
    )
    assert found.schema.typehints()["instance"] == (str | None)
    assert changes(found) == sorted(
        [
            (400, "A", 0, None, 1),
            (600, "A", 0, None, -1),
            (600, "A", 0, 600, 1),
            (800, "B", 400, None, 1),
        ],
        key=repr,
    )


def test_inactivity_detection_without_rows_reports_the_start(arrivals: Any) -> None:
    table = pw.Table.empty(value=int)
    arrivals(pw.debug.table_from_markdown("at\n0"), "at", 500)
    found = table.inactivity_detection(
        pw.Duration(milliseconds=300), refresh_rate=pw.Duration(milliseconds=50)
    )
    assert changes(found) == [(350, 0, None, 1)]


def test_add_update_timestamp_utc_uses_the_latest_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time_utils, "utc_now", fake_clock(500))
    table = pw.debug.table_from_markdown("""
        | value | __time__ | __diff__
      1 | 10    | 0        | 1
      2 | 20    | 0        | 1
      1 | 10    | 130      | -1
      1 | 110   | 130      | 1
      2 | 20    | 330      | -1
    """)
    result = table.add_update_timestamp_utc(refresh_rate=pw.Duration(milliseconds=100))
    assert result.column_names() == ["value", "updated_timestamp_utc"]
    assert changes(result) == sorted(
        [
            (0, 10, 0, 1),
            (0, 20, 0, 1),
            (130, 10, 0, -1),
            (130, 110, 100, 1),
            (330, 20, 0, -1),
        ],
        key=repr,
    )
    named = table.add_update_timestamp_utc(pw.Duration(milliseconds=100), "seen")
    assert named.column_names() == ["value", "seen"]


def test_clock_functions_check_their_arguments() -> None:
    table = pw.debug.table_from_markdown("v\n1")
    with pytest.raises(TypeError, match="allowed_inactivity_period"):
        table.inactivity_detection(5)
    with pytest.raises(TypeError, match="refresh_rate"):
        table.add_update_timestamp_utc(refresh_rate=1)
    with pytest.raises(ValueError, match="refresh_rate"):
        pw.temporal.utc_now(refresh_rate=datetime.timedelta(0))
    with pytest.raises(TypeError, match="update_timestamp_column_name"):
        table.add_update_timestamp_utc(pw.Duration(seconds=1), 3)


# --- live runs on the real clock ----------------------------------------------------------


def run_until(done: threading.Event, timeout: float = 30.0) -> None:
    """pw.run() until ``done`` is set (by a callback), or fail after ``timeout`` seconds."""
    watchdog = threading.Timer(timeout, stop_all_runs)
    watcher = threading.Thread(target=lambda: done.wait(timeout) and stop_all_runs(), daemon=True)
    watchdog.start()
    watcher.start()
    try:
        pw.run()
    finally:
        watchdog.cancel()
    assert done.is_set(), f"the run did not reach its goal within {timeout} s"


def test_utc_now_ticks_with_the_wall_clock() -> None:
    clock = pw.temporal.utc_now(refresh_rate=datetime.timedelta(milliseconds=40))
    assert pw.temporal.utc_now(refresh_rate=datetime.timedelta(milliseconds=40)) is clock
    assert clock.schema.typehints() == {"timestamp_utc": pw.DateTimeUtc}
    ticks: list[pd.Timestamp] = []
    done = threading.Event()

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        assert is_addition
        ticks.append(row["timestamp_utc"])
        if len(ticks) >= 4:
            done.set()

    started = pd.Timestamp.now(tz=UTC)
    pw.io.subscribe(clock, on_change)
    run_until(done)
    assert started <= ticks[0] <= pd.Timestamp.now(tz=UTC)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ticks)]
    assert all(gap >= 0.03 for gap in gaps), gaps
    # The clock has run: the next call makes a fresh one.
    assert pw.temporal.utc_now(refresh_rate=datetime.timedelta(milliseconds=40)) is not clock


class Bursts(pw.io.python.ConnectorSubject):
    """Two rows, a pause, then one more row."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.pause = pause

    def run(self) -> None:
        self.next(v=1)
        self.next(v=2)
        self.commit()
        time.sleep(self.pause)
        self.next(v=3)
        self.commit()
        time.sleep(5)  # keep the input open: the test stops the run


def test_live_inactivity_and_update_times() -> None:
    rows = pw.io.python.read(Bursts(pause=0.4), schema=pw.schema_from_types(v=int))
    found = rows.inactivity_detection(
        datetime.timedelta(milliseconds=150), refresh_rate=datetime.timedelta(milliseconds=20)
    )
    stamped = rows.add_update_timestamp_utc(refresh_rate=datetime.timedelta(milliseconds=20))
    reports: list[dict[str, Any]] = []
    stamps: dict[int, pd.Timestamp] = {}
    done = threading.Event()

    def check_done() -> None:
        if len(stamps) == 3 and any(r["resumed_activity_timestamp_utc"] for r in reports):
            done.set()

    def on_report(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        if is_addition:
            reports.append(row)
            check_done()

    def on_stamp(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        stamps[row["v"]] = row["updated_timestamp_utc"]
        check_done()

    started = pd.Timestamp.now(tz=UTC)
    pw.io.subscribe(found, on_report)
    pw.io.subscribe(stamped, on_stamp)
    run_until(done)
    resumed = [r for r in reports if r["resumed_activity_timestamp_utc"] is not None]
    assert resumed
    gap = resumed[0]["resumed_activity_timestamp_utc"] - resumed[0]["inactivity_timestamp_utc"]
    assert gap >= pd.Timedelta(milliseconds=300)
    assert started - pd.Timedelta(seconds=1) <= stamps[1] <= stamps[3]
    assert stamps[3] - stamps[1] >= pd.Timedelta(milliseconds=250)
