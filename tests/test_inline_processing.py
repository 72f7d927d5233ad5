"""Commits processed on the source's thread while the engine is idle (``process_inline``):
the same results, errors and failures as on the engine's thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import deltaflow as pw

ENGINE = threading.current_thread().name  # pw.run() runs the engine on the calling thread


class Event(pw.Schema):
    k: int
    v: int


def _paced(rows: list[tuple[int, int]], pause: float = 0.01) -> pw.io.python.ConnectorSubject:
    """A subject committing one row at a time, slower than the engine."""

    class Paced(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for k, v in rows:
                time.sleep(pause)
                self.next(k=k, v=v)
                self.commit()

    return Paced()


def _run_counting_threads(
    table: pw.Table, on_row: Callable[[dict[str, Any], int, bool], None] | None = None, **run: Any
) -> list[str]:
    """Run, and return the name of the thread that delivered each change."""
    threads: list[str] = []

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        threads.append(threading.current_thread().name)
        if on_row is not None:
            on_row(row, time, is_addition)

    pw.io.subscribe(table, on_change)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE, **run)
    return threads


@pytest.mark.parametrize("inline", ["1", "0"])
def test_idle_engine_processes_commits_where_they_are_pushed(
    inline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_INLINE_ENGINE", inline)
    rows = [(i % 3, i) for i in range(12)]
    events = pw.io.python.read(_paced(rows), schema=Event, autocommit_duration_ms=None)
    totals = events.groupby(pw.this.k).reduce(pw.this.k, s=pw.reducers.sum(pw.this.v))
    final: dict[int, int] = {}

    def keep(row: dict[str, Any], _time: int, is_addition: bool) -> None:
        if is_addition:
            final[row["k"]] = row["s"]

    threads = _run_counting_threads(totals, keep)
    assert final == {k: sum(v for kk, v in rows if kk == k) for k in range(3)}
    on_sources = [name for name in threads if name.startswith("deltaflow-input")]
    if inline == "1":
        # Each commit comes 10 ms after the last: the engine waits for it, so (almost) every
        # one is processed by the input's thread; the engine's thread may take one now and
        # then (when it looks at the moment of a push).
        assert len(on_sources) >= len(threads) // 2
    else:
        assert on_sources == [] and set(threads) == {ENGINE}


def test_error_values_are_kept_when_processed_on_the_source_thread() -> None:
    rows = [(1, 1), (0, 2), (2, 3)]  # k == 0: division by zero
    events = pw.io.python.read(_paced(rows), schema=Event, autocommit_duration_ms=None)
    divided = events.select(pw.this.k, q=pw.this.v // pw.this.k)
    logged: list[str] = []
    pw.io.subscribe(
        pw.global_error_log(),
        lambda key, row, time, is_addition: logged.append(row["message"]),
    )
    seen: dict[int, Any] = {}

    def keep(row: dict[str, Any], _time: int, is_addition: bool) -> None:
        if is_addition:
            seen[row["k"]] = row["q"]

    threads = _run_counting_threads(
        divided.select(pw.this.k, q=pw.fill_error(pw.this.q, -1)), keep, terminate_on_error=False
    )
    assert seen == {1: 1, 0: -1, 2: 1}
    assert any("division by zero" in message for message in logged)
    assert any(name.startswith("deltaflow-input") for name in threads)


def test_a_callback_failing_on_the_source_thread_fails_the_run() -> None:
    events = pw.io.python.read(_paced([(1, 1), (2, 2)]), schema=Event, autocommit_duration_ms=None)
    threads: list[str] = []

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        threads.append(threading.current_thread().name)
        raise RuntimeError("callback broke")

    pw.io.subscribe(events, on_change)
    with pytest.raises(pw.errors.ConnectorError, match="callback broke"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert len(threads) == 1  # the run stopped at the first failure


def test_debug_output_is_printed_when_processed_on_the_source_thread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = pw.io.python.read(_paced([(1, 5), (2, 6)]), schema=Event, autocommit_duration_ms=None)
    events.debug("ev")
    threads = _run_counting_threads(events, debug=True)
    printed = capsys.readouterr().out
    assert "[ev]" in printed and "v=Int(5)" in printed and "v=Int(6)" in printed
    assert any(name.startswith("deltaflow-input") for name in threads)
