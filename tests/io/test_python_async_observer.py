"""pw.io.python.write with an AsyncConnectorObserver: ordering, concurrency, errors, ends."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from _io_helpers import BackgroundRun

import deltaflow as pw


class Plain(pw.Schema):
    v: str


def _run() -> None:
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def _two_times() -> Any:
    return pw.debug.table_from_markdown(
        """
          | v | __time__ | __diff__
        1 | a | 2        | 1
        2 | b | 2        | 1
        3 | c | 2        | 1
        1 | a | 4        | -1
        4 | d | 4        | 1
        """
    )


class Recorder(pw.io.python.AsyncConnectorObserver):
    """Records starts/completions of on_change and the ends, with how many calls were active."""

    def __init__(self, delays: dict[str, float] | None = None) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.active = 0
        self.max_active = 0
        self.threads: set[str] = set()
        self.delays = delays or {}

    async def on_change(self, key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        self.threads.add(threading.current_thread().name)
        asyncio.get_running_loop()  # raises unless called on a running loop
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.events.append(("start", row["v"], time, is_addition))
        await asyncio.sleep(self.delays.get(row["v"], 0))
        self.events.append(("done", row["v"], time, is_addition))
        self.active -= 1

    def on_time_end(self, time: int) -> None:
        self.events.append(("time_end", time, self.active))

    def on_end(self) -> None:
        self.events.append(("end", self.active))


def test_changes_of_a_time_complete_before_its_time_end_and_the_next_time() -> None:
    # "a" finishes last among time 2's calls: on_time_end(2) must still wait for it.
    observer = Recorder(delays={"a": 0.05, "b": 0.01})
    pw.io.python.write(_two_times(), observer)
    _run()
    events = observer.events
    time_end_2 = events.index(("time_end", 2, 0))
    time_end_4 = events.index(("time_end", 4, 0))
    assert events[-1] == ("end", 0)
    assert [e for e in events if e[0] == "end"] == [("end", 0)]
    assert time_end_2 < time_end_4
    time_2, time_4 = events[:time_end_2], events[time_end_2 + 1 : time_end_4]
    assert sorted(e[1] for e in time_2 if e[0] == "done") == ["a", "b", "c"]
    assert {e[2] for e in time_2} == {2}
    # Deletions of a time start before its insertions; every call completes inside its time.
    assert [e for e in time_4 if e[0] == "start"] == [
        ("start", "a", 4, False),
        ("start", "d", 4, True),
    ]
    assert sorted(e[1] for e in time_4 if e[0] == "done") == ["a", "d"]
    # The time's three calls were all started before the first of them completed.
    assert [e[0] for e in time_2[:3]] == ["start"] * 3
    assert observer.max_active == 3


def test_calls_of_one_time_overlap_on_an_event_loop_off_the_engine_thread() -> None:
    rows = 25
    started = 0
    all_started: asyncio.Event | None = None
    observer_threads: set[str] = set()

    class Gate(pw.io.python.AsyncConnectorObserver):
        async def on_change(
            self, key: Any, row: dict[str, Any], time: int, is_addition: bool
        ) -> None:
            # Every call waits until all of them have started: this completes only if the
            # calls of the time run concurrently (a sequential runner would time out).
            nonlocal started, all_started
            observer_threads.add(threading.current_thread().name)
            if all_started is None:
                all_started = asyncio.Event()
            started += 1
            if started == rows:
                all_started.set()
            await asyncio.wait_for(all_started.wait(), timeout=10)

    table = pw.debug.table_from_rows(Plain, [(str(i),) for i in range(rows)])
    pw.io.python.write(table, Gate(), name="gate")
    _run()
    assert started == rows
    assert len(observer_threads) == 1
    assert threading.current_thread().name not in observer_threads


def test_an_exception_in_on_change_stops_the_run_naming_the_connector() -> None:
    cancelled: list[str] = []
    ended: list[bool] = []

    class Failing(pw.io.python.AsyncConnectorObserver):
        async def on_change(
            self, key: Any, row: dict[str, Any], time: int, is_addition: bool
        ) -> None:
            if row["v"] == "b":
                raise ValueError("cannot store b")
            try:
                await asyncio.sleep(30)  # the failure must cancel this, not wait for it
            except asyncio.CancelledError:
                cancelled.append(row["v"])
                raise

        def on_end(self) -> None:
            ended.append(True)

    pw.io.python.write(_two_times(), Failing(), name="remote-store")
    with pytest.raises(pw.ConnectorError, match="remote-store") as info:
        _run()
    message = str(info.value)
    assert "on_change" in message and "ValueError" in message and "cannot store b" in message
    assert isinstance(info.value.__cause__, ValueError)
    assert sorted(cancelled) == ["a", "c"]
    assert ended == []


def test_an_exception_in_on_time_end_or_on_end_stops_the_run() -> None:
    class BadTimeEnd(pw.io.python.AsyncConnectorObserver):
        async def on_change(
            self, key: Any, row: dict[str, Any], time: int, is_addition: bool
        ) -> None:
            return None

        def on_time_end(self, time: int) -> None:
            raise RuntimeError(f"time {time} rejected")

    pw.io.python.write(_two_times(), BadTimeEnd())
    with pytest.raises(pw.ConnectorError, match=r"on_time_end.*time 2 rejected"):
        _run()

    pw.clear_graph()

    class BadEnd(pw.io.python.AsyncConnectorObserver):
        async def on_change(
            self, key: Any, row: dict[str, Any], time: int, is_addition: bool
        ) -> None:
            return None

        async def on_end(self) -> None:
            raise OSError("cannot close")

    pw.io.python.write(_two_times(), BadEnd(), name="closing")
    with pytest.raises(pw.ConnectorError, match=r"'closing'.*on_end.*OSError: cannot close"):
        _run()


def test_wrong_definitions_fail_early() -> None:
    with pytest.raises(TypeError, match=r"Sync\.on_change must be a coroutine function"):

        class Sync(pw.io.python.AsyncConnectorObserver):
            def on_change(
                self,
                key: Any,
                row: dict[str, Any],
                time: int,  # type: ignore
                is_addition: bool,
            ) -> None:
                return None

    class Fine(pw.io.python.AsyncConnectorObserver):
        async def on_change(
            self, key: Any, row: dict[str, Any], time: int, is_addition: bool
        ) -> None:
            return None

    table = _two_times()
    with pytest.raises(ValueError, match="sort_by"):
        pw.io.python.write(table, Fine(), sort_by=[table.v])
    with pytest.raises(TypeError, match="AsyncConnectorObserver"):
        pw.io.python.write(table, object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="abstract"):

        class NoChange(pw.io.python.AsyncConnectorObserver):
            pass

        NoChange()  # type: ignore[abstract]


def test_streaming_subject_and_coroutine_ends() -> None:
    time_ended = threading.Semaphore(0)

    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for batch in range(3):
                for i in range(4):
                    self.next(v=f"{batch}-{i}")
                self.commit()
                # The next batch waits until the observer has ended this one's time, so that
                # each batch gets a time of its own (back-to-back commits may share one).
                assert time_ended.acquire(timeout=10)

    log: list[tuple[Any, ...]] = []
    background: list[asyncio.Task[None]] = []

    class Observer(pw.io.python.AsyncConnectorObserver):
        async def on_change(
            self, key: Any, row: dict[str, Any], time: int, is_addition: bool
        ) -> None:
            await asyncio.sleep(0)
            log.append(("change", row["v"], time, is_addition))

        async def on_time_end(self, time: int) -> None:
            await asyncio.sleep(0)
            log.append(("time_end", time))
            time_ended.release()

        async def on_end(self) -> None:
            # A task left running in the background is cancelled when the run ends.
            background.append(asyncio.ensure_future(asyncio.sleep(3600)))
            log.append(("end",))

    table = pw.io.python.read(Subject(), schema=Plain, autocommit_duration_ms=None)
    pw.io.python.write(table, Observer())
    _run()
    time_ends = [e[1] for e in log if e[0] == "time_end"]
    assert len(time_ends) == 3 and time_ends == sorted(time_ends)
    assert log[-1] == ("end",) and log.count(("end",)) == 1
    for batch, time in enumerate(time_ends):
        end = log.index(("time_end", time))
        changes = [e for e in log[:end] if e[0] == "change" and e[2] == time]
        assert sorted(e[1] for e in changes) == [f"{batch}-{i}" for i in range(4)]
        assert all(e[3] for e in changes)
    # Nothing of a time comes after its time end.
    for index, event in enumerate(log):
        if event[0] == "change":
            assert index < log.index(("time_end", event[2]))
    assert background and background[0].cancelled()


def test_a_stopped_streaming_run_waits_for_calls_in_flight() -> None:
    class Endless(pw.io.python.ConnectorSubject):
        def __init__(self) -> None:
            super().__init__()
            self.stopped = threading.Event()

        def run(self) -> None:
            self.next(v="only")
            self.commit()
            self.stopped.wait()  # sends nothing more until the run stops

        def on_stop(self) -> None:
            self.stopped.set()

    entered = threading.Event()
    log: list[str] = []

    class Slow(pw.io.python.AsyncConnectorObserver):
        async def on_change(
            self, key: Any, row: dict[str, Any], time: int, is_addition: bool
        ) -> None:
            entered.set()
            await asyncio.sleep(0.2)  # still running when the run is asked to stop
            log.append("completed")

        def on_end(self) -> None:
            log.append("end")

    table = pw.io.python.read(Endless(), schema=Plain)
    pw.io.python.write(table, Slow())
    with BackgroundRun():
        assert entered.wait(10)
    assert log == ["completed", "end"]


def test_a_connector_observer_with_a_coroutine_on_change_is_awaited() -> None:
    """As in Pathway, a coroutine ``on_change`` is awaited whatever the observer's base."""
    seen: list[str] = []

    class Observer(pw.io.python.ConnectorObserver):
        async def on_change(
            self,
            key: Any,
            row: dict[str, Any],
            time: int,  # type: ignore
            is_addition: bool,
        ) -> None:
            await asyncio.sleep(0)
            seen.append(row["v"])

    pw.io.python.write(_two_times(), Observer())
    _run()
    assert sorted(seen) == ["a", "a", "b", "c", "d"]
