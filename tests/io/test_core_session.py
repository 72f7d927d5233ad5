"""Input sessions: event kinds, ids, blocks under autocommit, backpressure, offsets, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import polars as pl
import pytest
from _io_helpers import Changes

import deltaflow as pw
from deltaflow._ids import hash_columns, sequence_ids
from deltaflow.engine.boundary import ConnectorError, SourceHandle
from deltaflow.io._core.base import (
    Commit,
    Data,
    DictsContext,
    Finished,
    FinishedSource,
    NewSource,
    Reader,
    ReadEvent,
    RowsContext,
)
from deltaflow.io._core.formats import TypedRowsParser, column_specs
from deltaflow.io._core.input_session import InputSession
from deltaflow.io._core.offsets import OffsetFrontier, merge_frontiers
from deltaflow.io._core.read_table import reader_table


class Keyed(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    v: str


class Plain(pw.Schema):
    v: str


class ScriptReader(Reader):
    """Plays a list of events (callables are run when reached, for synchronisation)."""

    poll_interval_s = 0.001

    def __init__(self, script: Iterable[ReadEvent | Callable[[], None]]) -> None:
        self.script = list(script)
        self.reads = 0

    def read(self) -> ReadEvent | None:
        while (
            self.script and callable(self.script[0]) and not isinstance(self.script[0], ReadEvent)
        ):
            self.script.pop(0)()
        self.reads += 1
        return self.script.pop(0) if self.script else Finished()


def rows(*values: tuple, kinds: str | list[str] = "insert") -> Data:
    return Data(
        DictsContext([{"k": k, "v": v} for k, v in values], kinds=kinds),
        offset=("part", values[-1][0] if values else 0),
    )


def run_session(schema: type[pw.Schema], script: list, **options) -> list:
    """Run an InputSession against a real SourceHandle; returns what it pushed."""
    return run_reader(schema, ScriptReader(script), **options).take()


def run_reader(
    schema: type[pw.Schema],
    reader: Reader,
    handle_class: type[SourceHandle] = SourceHandle,
    **options,
) -> SourceHandle:
    """Run an InputSession over ``reader`` until it finishes; returns its handle."""
    return run_reader_session(schema, reader, handle_class, **options)[1]


def run_reader_session(
    schema: type[pw.Schema],
    reader: Reader,
    handle_class: type[SourceHandle] = SourceHandle,
    **options,
) -> tuple[InputSession, SourceHandle]:
    """:func:`run_reader`, returning the session too."""
    session = InputSession(
        "test",
        lambda: reader,
        TypedRowsParser(column_specs(schema)),
        columns=schema.dtypes(),
        primary_key=schema.primary_key_columns(),
        **options,
    )
    done = threading.Event()
    handle = handle_class("test", done.set)
    session.start(handle)
    deadline = time.monotonic() + 10
    while not handle._finished and time.monotonic() < deadline:
        done.wait(0.05)
        done.clear()
    session.stop()
    if handle.failure is not None:
        raise handle.failure
    return session, handle


def as_rows(batch: pl.DataFrame) -> list[tuple]:
    return sorted(
        zip(batch["k"].to_list(), batch["v"].to_list(), batch["_diff"].to_list(), strict=True)
    )


def test_insert_rows_get_primary_key_ids_and_offsets() -> None:
    pushed = run_session(Keyed, [rows((1, "a"), (2, "b"))], autocommit_duration_ms=None)
    assert len(pushed) == 1
    batch, time_, offsets, _more = pushed[0]
    assert time_ is None
    assert offsets == {"part": 2}
    assert as_rows(batch) == [(1, "a", 1), (2, "b", 1)]
    expected = hash_columns(batch, [("k", pw.schema_from_types(k=int).dtypes()["k"])])
    assert batch["_id"].to_list() == expected.to_list()


def test_rows_without_key_get_position_ids() -> None:
    script = [Data(DictsContext([{"v": "a"}, {"v": "b"}])), Data(DictsContext([{"v": "c"}]))]
    pushed = run_session(Plain, script, autocommit_duration_ms=None)
    ids = pl.concat([b for b, *_ in pushed])["_id"].to_list()
    assert ids == sequence_ids("test", 0, 3).to_list()


def test_delete_event_retracts_given_row() -> None:
    pushed = run_session(
        Keyed,
        [rows((1, "a")), Commit(), rows((1, "a"), kinds="delete")],
        autocommit_duration_ms=None,
    )
    assert [as_rows(b) for b, *_ in pushed] == [[(1, "a", 1)], [(1, "a", -1)]]


def test_upsert_retracts_previous_row_and_delete_by_key_uses_state() -> None:
    script = [
        rows((1, "a"), (2, "b"), kinds="upsert"),
        Commit(),
        rows((1, "c"), kinds="upsert"),
        Commit(),
        # a deletion whose value is stale: the stored row is what gets retracted
        rows((2, "stale"), kinds="delete"),
    ]
    pushed = run_session(Keyed, script, autocommit_duration_ms=None, keep_row_state=True)
    assert [as_rows(b) for b, *_ in pushed] == [
        [(1, "a", 1), (2, "b", 1)],
        [(1, "a", -1), (1, "c", 1)],
        [(2, "b", -1)],
    ]


def test_per_row_kinds_apply_in_order() -> None:
    script = [rows((1, "a"), (1, "b"), (1, "b"), kinds=["upsert", "upsert", "delete"])]
    pushed = run_session(Keyed, script, autocommit_duration_ms=None, keep_row_state=True)
    net: dict[tuple, int] = {}
    for k, v, d in as_rows(pushed[0][0]):
        net[(k, v)] = net.get((k, v), 0) + d
    assert {key: n for key, n in net.items() if n} == {}


def test_upsert_without_state_fails_naming_connector() -> None:
    with pytest.raises(ConnectorError, match="'test'.*keep_row_state"):
        run_session(Keyed, [rows((1, "a"), kinds="upsert")], autocommit_duration_ms=None)


def test_rows_context_is_accepted() -> None:
    frame = pl.DataFrame({"k": [5], "v": ["x"]})
    pushed = run_session(Keyed, [Data(RowsContext(frame))], autocommit_duration_ms=None)
    assert as_rows(pushed[0][0]) == [(5, "x", 1)]


def test_autocommit_never_splits_a_block() -> None:
    # autocommit_duration_ms=0 commits after every event outside a block.
    script = [
        rows((1, "a")),
        rows((2, "b")),
        NewSource({"path": "f"}),
        rows((3, "c")),
        rows((4, "d")),
        rows((5, "e")),
        FinishedSource(),
        rows((6, "f")),
    ]
    pushed = run_session(Keyed, script, autocommit_duration_ms=0)
    assert [sorted(b["k"].to_list()) for b, *_ in pushed] == [[1], [2], [3, 4, 5], [6]]


def test_block_with_forbidden_commit_joins_next_block() -> None:
    script = [
        NewSource({"path": "a"}),
        rows((1, "a")),
        FinishedSource(commit_possibility=False),
        NewSource({"path": "b"}),
        rows((2, "b")),
        FinishedSource(),
        rows((3, "c")),
    ]
    pushed = run_session(Keyed, script, autocommit_duration_ms=0)
    assert [sorted(b["k"].to_list()) for b, *_ in pushed] == [[1, 2], [3]]


def test_explicit_commit_inside_block_is_ignored() -> None:
    script = [
        NewSource({"path": "a"}),
        rows((1, "a")),
        Commit(),
        rows((2, "b")),
        FinishedSource(),
        Commit(),
    ]
    pushed = run_session(Keyed, script, autocommit_duration_ms=None)
    assert [sorted(b["k"].to_list()) for b, *_ in pushed] == [[1, 2]]


def test_block_rows_enter_engine_at_one_time() -> None:
    script = [
        rows((1, "a")),
        NewSource({"path": "f"}),
        rows((2, "b")),
        rows((3, "c")),
        FinishedSource(),
    ]
    table = reader_table(
        schema=Keyed,
        reader_factory=lambda: ScriptReader(script),
        parser=TypedRowsParser(column_specs(Keyed)),
        name="blocks",
        autocommit_duration_ms=0,
        max_backlog_size=None,
    )
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    times = {row["k"]: time_ for row, time_, _ in changes.rows}
    assert times[2] == times[3]
    assert times[1] <= times[2]  # the engine may take both commits at once
    assert changes.ended


def test_backpressure_pauses_reading_and_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine's own thread stalls here while the reader goes on: a commit processed on
    # the reader's thread (Runtime.process_inline) would stall the reader itself.
    monkeypatch.setenv("DELTAFLOW_INLINE_ENGINE", "0")
    release = threading.Event()
    reader = ScriptReader([rows(*((i * 10 + j, "x") for j in range(10))) for i in range(10)])
    table = reader_table(
        schema=Keyed,
        reader_factory=lambda: reader,
        parser=TypedRowsParser(column_specs(Keyed)),
        name="bp",
        autocommit_duration_ms=0,
        max_backlog_size=20,
    )
    seen: list[int] = []

    def on_change(key, row, time, is_addition) -> None:
        seen.append(row["k"])
        release.wait(10)  # the engine stalls on the first row it delivers

    pw.io.subscribe(table, on_change)
    thread = threading.Thread(target=pw.run, kwargs={"monitoring_level": pw.MonitoringLevel.NONE})
    thread.start()
    deadline = time.monotonic() + 10
    while reader.reads < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.3)  # give a reader that ignores backpressure time to go on
    paused_at = reader.reads
    release.set()
    thread.join(10)
    assert paused_at == 3  # two batches of 10 fill the backlog; the third waits
    assert sorted(seen) == list(range(100))


def test_reader_failure_stops_run_naming_connector() -> None:
    def boom() -> None:
        raise OSError("disk on fire")

    table = reader_table(
        schema=Keyed,
        reader_factory=lambda: ScriptReader([rows((1, "a")), boom]),
        parser=TypedRowsParser(column_specs(Keyed)),
        name="burning",
        autocommit_duration_ms=0,
        max_backlog_size=None,
    )
    pw.io.null.write(table)
    with pytest.raises(ConnectorError, match="burning.*disk on fire"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def test_bad_rows_are_reported_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    script = [Data(DictsContext([{"k": 1, "v": "a"}, {"k": "x", "v": "b"}, {"v": "c"}]))]
    pushed = run_session(Keyed, script, autocommit_duration_ms=None)
    assert as_rows(pushed[0][0]) == [(1, "a", 1)]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert "row 2" in errors[0] and "'x' is not an int" in errors[0]
    assert "row 3" in errors[1] and "missing required field 'k'" in errors[1]


def test_offsets_frontier_and_merge() -> None:
    frontier = OffsetFrontier({"a": 1})
    frontier.advance("b", 5)
    frontier.advance("a", 3)
    assert frontier.snapshot() == {"a": 3, "b": 5}
    merged = merge_frontiers([{"p0": 10, "p1": 3}, {"p0": 7, "p2": 1}, {"p1": 9}])
    assert merged == {"p0": 10, "p1": 9, "p2": 1}


def test_small_commits_take_position_ids_from_blocks_computed_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ids of many small commits equal the ids of the same positions computed at once."""
    from deltaflow.io._core import position_ids

    monkeypatch.setattr(position_ids, "ID_BLOCK", 4)  # cross block boundaries quickly
    sizes = [1, 3, 2, 5, 1, 4, 3]
    script: list = []
    for number, size in enumerate(sizes):
        script.append(Data(DictsContext([{"v": f"{number}.{i}"} for i in range(size)])))
        script.append(Commit())
    pushed = run_session(Plain, script, autocommit_duration_ms=None)
    assert [b.height for b, *_ in pushed] == sizes
    ids = pl.concat([b for b, *_ in pushed])["_id"].to_list()
    assert ids == sequence_ids("test", 0, sum(sizes)).to_list()
    assert len(set(ids)) == sum(sizes)


def test_position_id_blocks_of_many_parts_stay_few(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small parts, interleaved and many, get the ids of their own positions, and the
    session keeps precomputed ids for only a few of them (a directory of many small files
    must not hold a block of ids per file)."""
    from deltaflow.io._core import position_ids

    monkeypatch.setattr(position_ids, "ID_BLOCK", 4)
    parts = [f"file{n}" for n in range(3 * position_ids.ID_BLOCKS_KEPT)]
    script: list = []
    expected: dict[str, list[str]] = {part: [] for part in parts}
    for round_number in range(3):  # each part comes back: its positions go on
        for part in parts:
            values = [f"{part}/{round_number}.{i}" for i in range(1 + round_number)]
            expected[part].extend(values)
            script += [NewSource(key=part), Data(DictsContext([{"v": v} for v in values]))]
            script += [FinishedSource(), Commit()]
    session, handle = run_reader_session(Plain, ScriptReader(script), autocommit_duration_ms=None)
    assert len(session._position_ids.blocks) <= position_ids.ID_BLOCKS_KEPT
    got = pl.concat([batch for batch, *_ in handle.take()])
    by_value = dict(zip(got["v"].to_list(), got["_id"].to_list(), strict=True))
    for part, values in expected.items():
        ids = sequence_ids(f"test|{part}", 0, len(values)).to_list()
        assert [by_value[v] for v in values] == ids


class PromiseHandle(SourceHandle):
    """A real handle that also keeps, per push, whether the batch was promised consolidated."""

    def __init__(self, name: str, notify: Callable[[], None]) -> None:
        super().__init__(name, notify)
        self.promises: list[tuple[pl.DataFrame, bool]] = []

    def push(
        self,
        batch: pl.DataFrame,
        *,
        time: int | None = None,
        offsets=None,
        consolidated: bool = False,
        more: bool = False,
    ) -> None:
        self.promises.append((batch, consolidated))
        super().push(batch, time=time, offsets=offsets, consolidated=consolidated, more=more)


class RetractingScript(ScriptReader):
    retracts_sources = True


def promises(schema: type[pw.Schema], reader: Reader) -> list[tuple[pl.DataFrame, bool]]:
    handle = run_reader(schema, reader, PromiseHandle, autocommit_duration_ms=None)
    assert isinstance(handle, PromiseHandle)
    return [(b, c) for b, c in handle.promises if b.height]


def test_inserts_with_position_ids_are_pushed_as_consolidated() -> None:
    def plain(*values: str, kinds: str = "insert") -> Data:
        return Data(DictsContext([{"v": v} for v in values], kinds=kinds))

    script = [
        plain("a", "a"),
        plain("b"),
        Commit(),  # distinct positions (equal rows)
        NewSource({"path": "f"}),
        plain("c", "d"),
        FinishedSource(),
        Commit(),
        NewSource({"path": "f"}, replaces=True),
        plain("e"),
        FinishedSource(),
        Commit(),
        plain("a", kinds="delete"),
    ]
    pushed = promises(Plain, RetractingScript(script))
    assert [(b.height, c) for b, c in pushed] == [(3, True), (2, True), (3, False), (1, False)]
    for batch, consolidated in pushed:
        if consolidated:  # the promise holds
            assert batch["_id"].n_unique() == batch.height and (batch["_diff"] == 1).all()
    # The replacing block reuses the positions of the rows it retracts: ids repeat.
    assert pushed[2][0]["_id"].n_unique() == 2
    # Primary keys may repeat in the source: never promised.
    keyed = promises(Keyed, ScriptReader([rows((1, "a"), (1, "b"))]))
    assert [(b.height, c) for b, c in keyed] == [(2, False)]


class _RecordsReader(ScriptReader):
    """A source of independent records (as queue messages are)."""

    commits_when_idle = True


class _IdleEngine(SourceHandle):
    """An engine that has processed each push by the time the next read comes."""

    def push(self, batch: pl.DataFrame, **options) -> None:  # type: ignore[override]
        super().push(batch, **options)
        self.mark_processed(batch.height)


def test_records_are_committed_at_once_while_the_engine_is_idle() -> None:
    script = [rows((1, "a")), None, rows((2, "b")), rows((3, "c")), None, None]
    handle = run_reader(Keyed, _RecordsReader(script), _IdleEngine, autocommit_duration_ms=60_000)
    # No 60 s wait: every block went to the idle engine as soon as it was read.
    assert [as_rows(batch) for batch, *_ in handle.take()] == [
        [(1, "a", 1)],
        [(2, "b", 1)],
        [(3, "c", 1)],
    ]


def test_records_read_while_the_engine_is_busy_wait_for_it_together() -> None:
    script = [rows((1, "a")), None, rows((2, "b")), None, rows((3, "c")), None]
    # A plain handle is an engine that never catches up after the first push.
    handle = run_reader(Keyed, _RecordsReader(script), autocommit_duration_ms=60_000)
    assert [as_rows(batch) for batch, *_ in handle.take()] == [
        [(1, "a", 1)],
        [(2, "b", 1), (3, "c", 1)],
    ]


def test_other_readers_keep_to_the_autocommit_clock() -> None:
    script = [rows((1, "a")), None, rows((2, "b")), None]
    handle = run_reader(Keyed, ScriptReader(script), _IdleEngine, autocommit_duration_ms=60_000)
    assert [as_rows(batch) for batch, *_ in handle.take()] == [[(1, "a", 1), (2, "b", 1)]]
