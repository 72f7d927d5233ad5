"""pw.io.python: ConnectorSubject sessions and formats, ConnectorObserver."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable

import pytest
from _io_helpers import BackgroundRun, Changes

import deltaflow as pw
from deltaflow.engine import times
from deltaflow.io import _python_subject
from deltaflow.io._core.base import Commit, Data


class KV(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    v: str


class Plain(pw.Schema):
    v: str
    n: int = pw.column_definition(default_value=0)


def test_native_session_next_variants_and_commit_times() -> None:
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(v="a", n=1)
            self.next_json({"v": "b"})
            self.commit()
            self.next_str('{"v": "c", "n": 3}')
            self.next_bytes(b'{"v": "d", "n": 4}')

    table = pw.io.python.read(Subject(), schema=Plain, autocommit_duration_ms=None)
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert changes.state() == [
        {"n": 0, "v": "b"},
        {"n": 1, "v": "a"},
        {"n": 3, "v": "c"},
        {"n": 4, "v": "d"},
    ]
    times = {row["v"]: time for row, time, _ in changes.rows}
    assert times["a"] == times["b"] < times["c"] == times["d"]  # one time per commit
    assert changes.ended


def test_commits_cut_blocks_wherever_they_fall(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session takes the subject's messages in blocks (here of 3); a commit in the middle
    of a block, a mix of insertions and deletions, and the end each cut it where they are."""
    monkeypatch.setattr(_python_subject, "_BLOCK_ROWS", 3)
    # Commits arriving faster than the engine may merge; here every one must stay its own.
    monkeypatch.setattr(times, "MERGE_BACKLOG_ABOVE", 100)
    sent = [["a", "b"], ["c", "d", "e", "f", "g"], ["h"], ["i", "j", "k", "l"]]

    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for commit in sent:
                for v in commit:
                    self.next(v=v)
                self.commit()
            self.delete(v="a")
            self.next(v="m")

    table = pw.io.python.read(Subject(), schema=Plain, autocommit_duration_ms=None)
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    by_time: dict[int, list[tuple[str, bool]]] = {}
    for row, time, is_addition in changes.rows:
        by_time.setdefault(time, []).append((row["v"], is_addition))
    assert [sorted(rows) for _, rows in sorted(by_time.items())] == [
        *([(v, True) for v in commit] for commit in sent),
        [("a", False), ("m", True)],
    ]


def test_upsert_session_replaces_and_removes() -> None:
    def seen(row: dict[str, str]) -> Callable[[Changes], bool]:
        return lambda c: any(r == row and added for r, _, added in c.rows)

    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            # Each commit waits for the previous one's output: commits that pile up may
            # share an engine time (see docs/architecture.md), and then cancel out.
            self.next(k=1, v="a")
            self.next(k=2, v="b")
            self.commit()
            changes.wait_for(seen({"k": 2, "v": "b"}))
            self.next(k=1, v="c")
            self.commit()
            changes.wait_for(seen({"k": 1, "v": "c"}))
            self._remove(None, {"k": 2, "v": "b"})

    table = pw.io.python.read(
        Subject(session_type="upsert"), schema=KV, autocommit_duration_ms=None
    )
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert changes.state() == [{"k": 1, "v": "c"}]
    assert [(r["v"], added) for r, _, added in changes.rows] == [
        ("a", True),
        ("b", True),
        ("a", False),
        ("c", True),
        ("b", False),
    ]


class _Kind(enum.Enum):
    NATIVE = 0
    UPSERT = 1


@pytest.mark.parametrize("kind", ["upsert", _Kind.UPSERT])
def test_subclass_property_sets_the_session_type(kind: object) -> None:
    class Subject(pw.io.python.ConnectorSubject):
        @property
        def _session_type(self) -> object:  # as Pathway's subjects may declare it
            return kind

        def run(self) -> None:
            self.next(k=1, v="a")
            self.commit()
            self.next(k=1, v="b")

    table = pw.io.python.read(Subject(), schema=KV, autocommit_duration_ms=None)
    assert pw.debug.table_to_dicts(table)[1]["v"].popitem()[1] == "b"  # "a" was replaced


def test_subclass_property_with_an_unknown_session_type_fails_at_definition() -> None:
    class Subject(pw.io.python.ConnectorSubject):
        @property
        def _session_type(self) -> str:
            return "append"

        def run(self) -> None:
            self.next(k=1, v="a")

    with pytest.raises(ValueError, match="_session_type must be 'native' or 'upsert'"):
        pw.io.python.read(Subject(), schema=KV)


def test_native_session_deletion_with_key() -> None:
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(k=1, v="a")
            self.commit()
            key = pw.debug.table_from_markdown("k\n1").with_id_from(pw.this.k)
            del key
            self._remove(None, '{"k": 1, "v": "a"}')

    table = pw.io.python.read(Subject(), schema=KV, autocommit_duration_ms=None)
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert changes.state() == []
    assert [added for _, _, added in changes.rows] == [True, False]


def test_raw_and_binary_formats() -> None:
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next_str("hi")
            self.next_bytes(b"yo")

    raw = pw.io.python.read(Subject(), format="raw")
    assert raw.schema.dtypes()["data"] == pw.schema_from_types(d=str).dtypes()["d"]
    assert sorted(pw.debug.table_to_pandas(raw)["data"]) == ["hi", "yo"]
    binary = pw.io.python.read(Subject(), format="binary")
    assert sorted(pw.debug.table_to_pandas(binary)["data"]) == [b"hi", b"yo"]


def test_bad_messages_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(v="ok")
            self.next(v=5)
            self.next_str("{not json")
            self.next(v="fine", n=2)

    table = pw.io.python.read(Subject(), schema=Plain)
    assert sorted(pw.debug.table_to_pandas(table)["v"]) == ["fine", "ok"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert "message 2" in errors[0] and "5 is not a str" in errors[0]
    assert "message 3" in errors[1] and "invalid JSON" in errors[1]


def test_failing_subject_stops_run_naming_connector() -> None:
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(v="a")
            raise ValueError("sensor unplugged")

    pw.io.null.write(pw.io.python.read(Subject(), schema=Plain, name="sensor"))
    with pytest.raises(pw.ConnectorError, match="sensor.*sensor unplugged"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def test_streaming_subject_stopped_by_run_stop() -> None:
    stopped = threading.Event()

    class Endless(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(v="first")
            self.commit()
            stopped.wait(10)

        def on_stop(self) -> None:
            stopped.set()

    changes = Changes().subscribe(pw.io.python.read(Endless(), schema=Plain))
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 1)
    assert stopped.is_set()
    assert changes.ended


def test_schema_without_columns_counts_its_rows_and_stops_the_subject() -> None:
    """A subject run for its side effects may have a schema without columns (as in Pathway):
    each message is still a row, and the subject's on_stop runs at the end."""

    class Pings(pw.io.python.ConnectorSubject):
        stopped = False

        def run(self) -> None:
            self.next()
            self.next()
            self.next()

        def on_stop(self) -> None:
            Pings.stopped = True

    class Nothing(pw.Schema):
        pass

    pings = pw.io.python.read(Pings(), schema=Nothing)
    counted = pings.reduce(n=pw.reducers.count())
    assert pw.debug.table_to_pandas(counted)["n"].tolist() == [3]
    assert Pings.stopped


def test_definition_time_errors() -> None:
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            pass

    with pytest.raises(ValueError, match="give a schema"):
        pw.io.python.read(Subject())
    with pytest.raises(ValueError, match="format must be"):
        pw.io.python.read(Subject(), schema=Plain, format="xml")
    with pytest.raises(ValueError, match="autocommit_duration_ms"):
        pw.io.python.read(Subject(), schema=Plain, autocommit_duration_ms=-5)
    with pytest.raises(ValueError, match="primary key"):
        pw.io.python.read(Subject(session_type="upsert"), schema=Plain)
    with pytest.raises(ValueError, match="session_type"):
        Subject(session_type="append")
    with pytest.raises(TypeError, match="ConnectorSubject"):
        pw.io.python.read(object(), schema=Plain)


def test_observer_receives_changes_time_ends_and_end() -> None:
    events: list = []

    class Observer(pw.io.python.ConnectorObserver):
        def on_change(self, key, row, time, is_addition) -> None:
            events.append(("change", row["v"], time, is_addition))

        def on_time_end(self, time) -> None:
            events.append(("time_end", time))

        def on_end(self) -> None:
            events.append(("end",))

    table = pw.debug.table_from_markdown(
        """
          | v | __time__ | __diff__
        1 | a | 2        | 1
        1 | a | 4        | -1
        2 | b | 4        | 1
        """
    )
    pw.io.python.write(table, Observer())
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert events == [
        ("change", "a", 2, True),
        ("time_end", 2),
        ("change", "a", 4, False),
        ("change", "b", 4, True),
        ("time_end", 4),
        ("end",),
    ]
    with pytest.raises(TypeError, match="ConnectorObserver"):
        pw.io.python.write(table, object())


def test_subject_waits_for_room_when_the_session_falls_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subject sending far more than its buffer holds is paused, then resumed, losing
    nothing (the session signals room as it takes blocks)."""
    monkeypatch.setattr(_python_subject, "_BUFFER_LIMIT", 8)
    monkeypatch.setattr(_python_subject, "_BLOCK_ROWS", 3)

    class Flood(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for i in range(500):
                self.next(v=str(i), n=i)
                if i % 50 == 49:
                    self.commit()

    table = pw.io.python.read(Flood(), schema=Plain, autocommit_duration_ms=None)
    result = table.reduce(count=pw.reducers.count(), total=pw.reducers.sum(table.n))
    assert pw.debug.table_to_pandas(result).to_dict("records") == [
        {"count": 500, "total": sum(range(500))}
    ]


def test_rows_waiting_in_a_subject_are_not_tracked_by_the_garbage_collector() -> None:
    """A backlog of rows sent with next() must not be scanned by every full cyclic collection
    (with 200k tracked rows waiting, each one stalled all threads for ~60 ms)."""
    import gc

    class Idle(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            pass

    subject = Idle()
    subject.next(v="text", n=1)
    subject.next(v="other", n=None)
    subject.next_json({"v": "json"})
    plain, nullable, _ = subject._buffer
    assert not gc.is_tracked(plain) and not gc.is_tracked(nullable)
    assert plain == {"v": "text", "n": 1}


def test_streaming_commit_reaches_subscriber_before_the_next_commit() -> None:
    """Each commit of a live subject is processed on its own, as soon as it is pushed: the
    subscriber sees commit n before the subject sends commit n + 1."""
    seen = threading.Event()

    class Paced(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for i in range(5):
                seen.clear()
                for j in range(100):
                    self.next(v=f"{i}.{j}", n=i)
                self.commit()
                assert seen.wait(10), f"commit {i} was not delivered"

    table = pw.io.python.read(Paced(), schema=Plain, autocommit_duration_ms=10)
    totals = table.groupby(table.n).reduce(
        table.n, c=pw.reducers.count(), top=pw.reducers.max(table.v)
    )
    counts: dict[int, int] = {}

    def on_change(key, row, time, is_addition) -> None:
        if is_addition:
            counts[row["n"]] = row["c"]
            if row["c"] == 100:
                seen.set()

    pw.io.subscribe(totals, on_change)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert counts == {i: 100 for i in range(5)}


def test_reader_behind_a_backlog_keeps_only_unread_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subject that stays ahead of its reader (more than MERGE_BACKLOG_ABOVE commits always
    waiting) has its commits read merged, in order, none lost, while the reader holds only
    the messages it has not read: it used to keep every message read since the backlog began
    (its block was topped up before all of it was read, and only cleared when it was)."""
    monkeypatch.setattr(_python_subject, "_MERGE_ROWS", 1000)  # blocks of 1,000 when behind
    release = threading.Event()

    class Ahead(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            release.wait(30)  # the test sends, from its own thread

    subject = Ahead()
    reader = _python_subject._SubjectReader(subject)
    sent: list[int] = []
    read: list[int] = []
    commits = 0
    held = 0
    try:
        for round_ in range(300):
            for commit in range(4):  # the backlog grows by 4 commits a round ...
                for row in range(50):
                    value = (round_ * 4 + commit) * 50 + row
                    subject.next(v=str(value), n=value)
                    sent.append(value)
                subject.commit()
            for _ in range(2):  # ... and 2 reads take at most a block each
                event = reader.read()
                held = max(held, len(reader._taken))
                if isinstance(event, Data):
                    read.extend(row["n"] for row in event.context.rows)
                elif isinstance(event, Commit):
                    commits += 1
        assert subject._commits_sent - commits > times.MERGE_BACKLOG_ABOVE  # still behind
        while (event := reader.read()) is not None:
            if isinstance(event, Data):
                read.extend(row["n"] for row in event.context.rows)
    finally:
        release.set()
        subject._stop()
    assert read == sent
    # 1,200 commits of 51 messages, the reader behind all along: it held at most a block of
    # unread messages and half a block of read ones (it held 61,200 before).
    assert held <= 1500
