"""The public connector SDK (deltaflow.io.connector): the example of docs/custom_connectors.md,
polling sources with persistence, batch writers and the common argument checks."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import types
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from _io_helpers import BackgroundRun, Changes

import deltaflow as pw
from deltaflow.engine.runtime import stop_all_runs
from deltaflow.io import connector
from deltaflow.io._core.base import Writer
from deltaflow.io._core.output_session import write_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom_connectors.md"
NO_MONITORING = pw.MonitoringLevel.NONE


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def _example() -> types.ModuleType:
    """The documented connector, run as a module of its own."""
    module = types.ModuleType("custom_connector_example")
    exec(compile(_doc_blocks()[0], str(DOC), "exec"), module.__dict__)  # noqa: S102
    return module


class Order(pw.Schema):
    id: int
    item: str
    price: float


def _database(path: Path, rows: list[tuple[int, str, float]]) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT, price REAL)"
        )
        db.executemany("INSERT INTO orders VALUES (?, ?, ?)", rows)
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _config(store: Path) -> Any:
    return pw.persistence.Config(pw.persistence.Backend.filesystem(store))


# --- the documented example -----------------------------------------------------------------


def test_documented_example_is_short_and_runs_as_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _doc_blocks()[0]
    assert len(code.splitlines()) < 60
    assert "_core" not in DOC.read_text()  # nothing private is needed
    monkeypatch.chdir(tmp_path)
    _database(tmp_path / "shop.db", [(1, "tea", 2.0), (2, "cake", 3.5), (3, "tea", 1.0)])
    namespace: dict[str, Any] = {}
    exec(compile(code + _doc_blocks()[1], str(DOC), "exec"), namespace)  # noqa: S102
    totals = {row["item"]: row["total"] for row in _lines(tmp_path / "totals.jsonl")}
    assert totals == {"tea": 3.0, "cake": 3.5}


def test_full_contract_example_is_the_one_the_docs_show() -> None:
    """examples/custom_connector.py (run by test_core_docs_example.py) is what connectors.md
    shows, and what custom_connectors.md quotes of it; it imports nothing private."""
    example = (DOC.parent.parent / "examples" / "custom_connector.py").read_text()
    assert "_core" not in example
    assert _doc_blocks()[2] in example
    shown = (DOC.parent / "connectors.md").read_text()
    block = shown[shown.index("## Writing a connector with the full contract") :]
    block = block[block.index("```python\n") + 10 :]
    assert example.endswith(block[: block.index("```")])


def test_documented_reader_streams_new_rows_and_updates(tmp_path: Path) -> None:
    example = _example()
    db = _database(tmp_path / "shop.db", [(1, "tea", 2.0)])
    out = tmp_path / "totals.jsonl"
    orders = example.read_new_rows(str(db), "orders", schema=Order, autocommit_duration_ms=5)
    totals = orders.groupby(orders.item).reduce(orders.item, total=pw.reducers.sum(orders.price))
    example.write_json_lines(totals, str(out))
    changes = Changes().subscribe(orders)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 1)
        _database(db, [(2, "tea", 1.5), (3, "cake", 4.0)])
        changes.wait_for(lambda c: len(c.rows) == 3)
    assert [row["id"] for row, _, _ in changes.rows] == [1, 2, 3]
    lines = _lines(out)
    # The tea total went from 2.0 to 3.5: its old row retracted in the time of the new one.
    tea = [(line["total"], line["diff"]) for line in lines if line["item"] == "tea"]
    assert tea[0] == (2.0, 1) and sorted(tea[1:]) == [(2.0, -1), (3.5, 1)]
    retract = next(line for line in lines if line["diff"] == -1)
    assert lines.index(retract) < lines.index(
        next(line for line in lines if line["total"] == 3.5)
    )  # deletions first within a time
    assert {line["time"] for line in lines if line["total"] in (3.5, 4.0)} == {retract["time"]}


def test_documented_reader_checks_its_arguments_when_defined(tmp_path: Path) -> None:
    example = _example()
    db = str(_database(tmp_path / "shop.db", []))
    with pytest.raises(TypeError, match="read_new_rows.*'autocommit'"):
        example.read_new_rows(db, "orders", schema=Order, autocommit=5)
    with pytest.raises(ValueError, match="read_new_rows.*mode"):
        example.read_new_rows(db, "orders", schema=Order, mode="batch")
    with pytest.raises(ValueError, match="read_new_rows.*autocommit_duration_ms"):
        example.read_new_rows(db, "orders", schema=Order, autocommit_duration_ms=-1)
    with pytest.raises(ValueError, match="read_new_rows.*max_backlog_size"):
        example.read_new_rows(db, "orders", schema=Order, max_backlog_size=0)
    with pytest.raises(ValueError, match="read_new_rows.*schema is required"):
        example.read_new_rows(db, "orders", schema=None)
    with pytest.raises(TypeError, match="read_new_rows.*pw.Schema"):
        example.read_new_rows(db, "orders", schema=dict)
    with pytest.raises(TypeError, match="read_new_rows.*name must be a str"):
        example.read_new_rows(db, "orders", schema=Order, name=3)
    with pytest.raises(FileNotFoundError):
        example.read_new_rows(str(tmp_path / "none.db"), "orders", schema=Order)
    table = example.read_new_rows(db, "orders", schema=Order, debug_data=[1], _stacklevel=2)
    with pytest.raises(TypeError, match="write_json_lines.*'format'"):
        example.write_json_lines(table, "out.jsonl", format="csv")
    with pytest.raises(TypeError, match="write_json_lines.*table must be a pw.Table"):
        example.write_json_lines([1], "out.jsonl")
    with pytest.raises(KeyError, match="nope"):
        example.write_json_lines(table, "out.jsonl", sort_by=["nope"])
    with pytest.raises(TypeError, match="write_json_lines.*name must be a str"):
        example.write_json_lines(table, "out.jsonl", name=b"x")


def test_persistent_id_is_the_old_spelling_of_name(tmp_path: Path) -> None:
    example = _example()
    db = str(_database(tmp_path / "shop.db", []))
    with pytest.warns(DeprecationWarning, match="persistent_id"):
        example.read_new_rows(db, "orders", schema=Order, persistent_id="orders")
    with pytest.raises(ValueError, match="name= only"):
        example.read_new_rows(db, "orders", schema=Order, persistent_id="a", name="b")
    checked = connector.check_read_options("r", default_name="d", schema=Order)
    assert (checked.name, checked.named, checked.streaming) == ("d", False, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        checked = connector.check_read_options(
            "r", default_name="d", schema=Order, persistent_id="p", mode="static"
        )
    assert (checked.name, checked.named, checked.streaming) == ("p", True, False)


# --- persistence --------------------------------------------------------------------------


class _Recorded:
    """The offsets the documented source was polled with, across runs."""

    def __init__(self, example: types.ModuleType) -> None:
        self.offsets: list[Any] = []
        recorded = self

        class RecordingRows(example.NewRows):  # type: ignore[name-defined, misc]
            def poll(self, offset: Any) -> Any:
                recorded.offsets.append(offset)
                return super().poll(offset)

        self.source_class = RecordingRows


def _persisted_run(
    example: types.ModuleType,
    recorded: _Recorded,
    db: Path,
    out: Path,
    store: Path,
    *,
    mode: str = "static",
) -> None:
    pw.clear_graph()
    orders = connector.read_polling(
        recorded.source_class(str(db), "orders"),
        schema=Order,
        mode=mode,
        name="orders",
        autocommit_duration_ms=5,
    )
    example.write_json_lines(orders, str(out))
    pw.run(persistence_config=_config(store), monitoring_level=NO_MONITORING)


def test_restart_resumes_from_the_returned_offset(tmp_path: Path) -> None:
    example = _example()
    recorded = _Recorded(example)
    db = _database(tmp_path / "shop.db", [(i, f"item{i}", float(i)) for i in range(1, 6)])
    store = tmp_path / "store"
    _persisted_run(example, recorded, db, tmp_path / "out1.jsonl", store)
    assert [line["id"] for line in _lines(tmp_path / "out1.jsonl")] == [1, 2, 3, 4, 5]
    assert recorded.offsets[0] is None

    recorded.offsets.clear()
    _database(db, [(i, f"item{i}", float(i)) for i in range(6, 9)])
    _persisted_run(example, recorded, db, tmp_path / "out2.jsonl", store)
    assert recorded.offsets[0] == 5  # restored from the checkpoint, not None
    assert [(line["id"], line["diff"]) for line in _lines(tmp_path / "out2.jsonl")] == [
        (6, 1),
        (7, 1),
        (8, 1),
    ]

    recorded.offsets.clear()
    _persisted_run(example, recorded, db, tmp_path / "out3.jsonl", store)
    assert recorded.offsets == [8]  # one poll finding nothing: the static input ends
    assert _lines(tmp_path / "out3.jsonl") == []


def test_stopped_stream_restarts_without_loss_or_duplicates(tmp_path: Path) -> None:
    example = _example()
    recorded = _Recorded(example)
    db = _database(tmp_path / "shop.db", [(1, "a", 1.0)])
    store, first, second = tmp_path / "store", tmp_path / "o1.jsonl", tmp_path / "o2.jsonl"
    inserted = [1]
    failures: list[BaseException] = []

    def streaming_run() -> None:
        try:
            _persisted_run(example, recorded, db, first, store, mode="streaming")
        except BaseException as exc:  # noqa: BLE001 - checked below
            failures.append(exc)

    run = threading.Thread(target=streaming_run, daemon=True)
    run.start()
    # Rows keep arriving while the stream is read; it is stopped in the middle of them.
    while inserted[-1] < 200:
        _database(db, [(inserted[-1] + 1, "a", 1.0), (inserted[-1] + 2, "b", 2.0)])
        inserted.extend([inserted[-1] + 1, inserted[-1] + 2])
        time.sleep(0.002)
    deadline = time.monotonic() + 10
    while run.is_alive() and time.monotonic() < deadline:
        stop_all_runs()
        run.join(timeout=0.05)
    assert not run.is_alive() and not failures, failures
    _database(db, [(1000, "c", 3.0)])  # added while nothing runs
    _persisted_run(example, recorded, db, second, store)
    seen = Counter(line["id"] for line in _lines(first) + _lines(second) if line["diff"] == 1)
    assert _lines(first) and _lines(second)  # each run wrote a part
    assert seen == Counter([*inserted, 1000])  # every row once: none lost, none twice


_CHILD = """
import sys
import deltaflow as pw
from example import read_new_rows, write_json_lines

class Order(pw.Schema):
    id: int
    item: str
    price: float

db, out, store, mode = sys.argv[1:5]
orders = read_new_rows(db, "orders", schema=Order, mode=mode, name="orders",
                       autocommit_duration_ms=5)
write_json_lines(orders, out)
pw.run(persistence_config=pw.persistence.Config(pw.persistence.Backend.filesystem(store)),
       monitoring_level=pw.MonitoringLevel.NONE)
"""


def test_killed_process_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    from deltaflow.persistence.checkpoints import CheckpointStore, current_rows
    from deltaflow.persistence.storage import FilesystemStorage

    (tmp_path / "example.py").write_text(_doc_blocks()[0])
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    db, store = _database(tmp_path / "shop.db", []), tmp_path / "store"
    inserted: list[int] = []

    def insert(count: int) -> None:
        start = len(inserted) + 1
        _database(db, [(i, "x", float(i)) for i in range(start, start + count)])
        inserted.extend(range(start, start + count))

    def child(out: str, mode: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(script), str(db), str(tmp_path / out), str(store), mode],
            cwd=tmp_path,
        )

    def checkpointed_ids() -> Counter[int]:
        """The rows the newest complete checkpoint holds (what a restart resumes from)."""
        checkpoints = CheckpointStore(FilesystemStorage(str(store)))
        checkpoint = checkpoints.load_latest()
        stored = checkpoint.inputs.get("orders") if checkpoint is not None else None
        rows = checkpoints.read_rows(stored) if stored is not None else None
        return Counter(current_rows(rows)["id"].to_list()) if rows is not None else Counter()

    running = child("o1.jsonl", "streaming")
    try:
        deadline = time.monotonic() + 30
        # Rows keep arriving; once a checkpoint holds some of them, the process is killed.
        while len(inserted) < 60 or not checkpointed_ids():
            assert time.monotonic() < deadline, "no checkpoint with rows was written"
            insert(3)
            time.sleep(0.01)
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait(10)
    insert(5)
    state = checkpointed_ids()
    assert 0 < len(state) < len(inserted)  # the restart has rows to read, and rows to skip
    restarted = child("o2.jsonl", "static")
    assert restarted.wait(60) == 0
    for line in _lines(tmp_path / "o2.jsonl"):
        state[line["id"]] += line["diff"]
    # The checkpoint's rows plus what the restart wrote: every row exactly once.
    assert +state == Counter(inserted)


# --- polling sources ------------------------------------------------------------------------


class ListSource(connector.PollingSource):
    """Hands out ``batches`` one per poll; the offset is the number of batches handed out."""

    poll_interval_s = 0.01

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches
        self.closed = 0

    def poll(self, offset: Any) -> Any:
        index = offset or 0
        if index >= len(self.batches):
            return None
        batch = self.batches[index]
        if isinstance(batch, connector.Polled):
            batch.offset = index + 1
            return batch
        return connector.Polled(batch, offset=index + 1)

    def close(self) -> None:
        self.closed += 1


class Keyed(pw.Schema):
    k: str = pw.column_definition(primary_key=True)
    v: int


class Plain(pw.Schema):
    k: str
    v: int


def _static_rows(
    source: connector.PollingSource, schema: type[pw.Schema]
) -> list[tuple[dict[str, Any], bool]]:
    changes = Changes().subscribe(connector.read_polling(source, schema=schema, mode="static"))
    pw.run(monitoring_level=NO_MONITORING)
    return [(row, added) for row, _, added in changes.rows]


class SlowStart(ListSource):
    """A static source whose first poll takes a while (a slow listing, a remote service)."""

    def poll(self, offset: Any) -> Any:
        if not offset:
            time.sleep(0.5)
        return super().poll(offset)


def test_static_inputs_start_at_one_time(tmp_path: Path) -> None:
    """The first time waits for the first commit of every static input: an ``ix`` across
    two of them finds its rows even when one is much slower to read than the other."""
    prices = connector.read_polling(
        SlowStart([[{"k": "a", "v": 30}, {"k": "b", "v": 50}]]), schema=Plain, mode="static"
    ).with_id_from(pw.this.k)
    source = tmp_path / "orders.csv"
    source.write_text("k,v\na,1\nb,2\n")
    orders = pw.io.csv.read(source, schema=Plain, mode="static")
    result = orders.select(orders.k, total=orders.v + prices.ix(prices.pointer_from(orders.k)).v)
    changes = Changes().subscribe(result)
    pw.run(monitoring_level=NO_MONITORING)
    assert sorted((row["k"], row["total"]) for row, _, _ in changes.rows) == [("a", 31), ("b", 52)]
    assert len({at for _, at, _ in changes.rows}) == 1


def test_rows_as_dicts_tuples_iterables_and_frames() -> None:
    source = ListSource(
        [
            [{"k": "a", "v": 1}],
            [("b", 2)],
            (row for row in [{"k": "c", "v": 3}]),
            pl.DataFrame({"k": ["d"], "v": [4]}),
        ]
    )
    rows = _static_rows(source, Plain)
    assert sorted(row["k"] + str(row["v"]) for row, _ in rows) == ["a1", "b2", "c3", "d4"]
    assert source.closed == 1


def test_bad_rows_are_reported_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    source = ListSource(
        [[{"k": "a", "v": 1}, {"k": "b"}, ("c", 3, 4), {"k": "d", "v": "x"}, ("e", 5)]]
    )
    rows = _static_rows(source, Plain)
    assert sorted(row["k"] for row, _ in rows) == ["a", "e"]
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "ListSource poll 1, row 2" in messages and "row 4" in messages


def test_upserts_and_deletions_by_key() -> None:
    class Upserting(ListSource):
        upserts = True

    source = Upserting(
        [
            [{"k": "a", "v": 1}, {"k": "b", "v": 2}],
            connector.Polled([{"k": "a", "v": 10}], kind="upsert"),
            connector.Polled([{"k": "b", "v": 0}], kind="delete"),
        ]
    )
    changes = Changes().subscribe(
        connector.read_polling(source, schema=Keyed, mode="static", autocommit_duration_ms=None)
    )
    pw.run(monitoring_level=NO_MONITORING)
    assert changes.state() == [{"k": "a", "v": 10}]
    with pytest.raises(ValueError, match="upserts needs a primary key"):
        connector.read_polling(Upserting([]), schema=Plain)


def test_upserts_need_the_source_to_declare_them() -> None:
    source = ListSource([connector.Polled([{"k": "a", "v": 1}], kind="upsert")])
    pw.io.null.write(connector.read_polling(source, schema=Keyed, mode="static"))
    with pytest.raises(pw.ConnectorError, match="upserts = True"):
        pw.run(monitoring_level=NO_MONITORING)


def test_offset_that_cannot_be_stored_fails_the_run() -> None:
    class BadOffset(connector.PollingSource):
        def poll(self, offset: Any) -> Any:
            return connector.Polled([{"k": "a", "v": 1}], offset=object())

    pw.io.null.write(connector.read_polling(BadOffset(), schema=Plain, mode="static"))
    with pytest.raises(pw.ConnectorError, match="BadOffset.*offset"):
        pw.run(monitoring_level=NO_MONITORING)


def test_failing_poll_stops_the_run_naming_the_connector() -> None:
    class Broken(connector.PollingSource):
        def poll(self, offset: Any) -> Any:
            raise OSError("the service is down")

    pw.io.null.write(
        connector.read_polling(Broken(), schema=Plain, mode="static", name="broken-feed")
    )
    with pytest.raises(pw.ConnectorError, match="broken-feed.*the service is down"):
        pw.run(monitoring_level=NO_MONITORING)


def test_offset_moving_without_rows_is_checkpointed(tmp_path: Path) -> None:
    class Skipping(connector.PollingSource):
        """Skips three empty pages before a row; records what it was polled with."""

        poll_interval_s = 0.01

        def __init__(self) -> None:
            self.offsets: list[Any] = []

        def poll(self, offset: Any) -> Any:
            self.offsets.append(offset)
            page = offset or 0
            if page < 3:
                return connector.Polled([], offset=page + 1)
            return connector.Polled([{"k": "a", "v": 1}], offset=4) if page == 3 else None

    for run, source in enumerate([Skipping(), Skipping()]):
        pw.clear_graph()
        changes = Changes().subscribe(
            connector.read_polling(source, schema=Plain, mode="static", name="pages")
        )
        pw.run(persistence_config=_config(tmp_path / "store"), monitoring_level=NO_MONITORING)
        if run == 0:
            assert source.offsets == [None, 1, 2, 3, 4]
            assert [row for row, _, _ in changes.rows] == [{"k": "a", "v": 1}]
        else:
            assert source.offsets == [4] and changes.rows == []


def test_backlog_limit_pauses_polling_without_losing_rows() -> None:
    source = ListSource([[{"k": f"{batch}-{i}", "v": i} for i in range(3)] for batch in range(40)])
    table = connector.read_polling(
        source, schema=Plain, mode="static", max_backlog_size=4, autocommit_duration_ms=None
    )
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=NO_MONITORING)
    assert len({row["k"] for row, _, _ in changes.rows}) == len(changes.rows) == 120
    assert len(changes.times) >= 20  # commits of at most a few rows, not one big one


def test_finished_ends_a_streaming_source() -> None:
    source = ListSource(
        [
            [{"k": "a", "v": 1}],
            connector.Polled([{"k": "b", "v": 2}], finished=True),
            [{"k": "never", "v": 0}],
        ]
    )
    changes = Changes().subscribe(connector.read_polling(source, schema=Plain))
    pw.run(monitoring_level=NO_MONITORING)  # returns: the source finished
    assert sorted(row["k"] for row, _, _ in changes.rows) == ["a", "b"]


def test_polling_arguments() -> None:
    with pytest.raises(TypeError, match="PollingSource"):
        connector.read_polling(object(), schema=Plain)  # type: ignore[arg-type]

    class TooFast(ListSource):
        poll_interval_s = -1  # type: ignore[assignment]

    with pytest.raises(ValueError, match="poll_interval_s"):
        connector.read_polling(TooFast([]), schema=Plain)
    table = connector.read_polling(ListSource([]), schema=Plain, label="my.read")
    assert isinstance(table, pw.Table)


# --- batch writers -------------------------------------------------------------------------


class Collect(connector.BatchWriter):
    def __init__(self) -> None:
        self.calls: list[tuple[int, list[connector.Change]]] = []
        self.closed = False

    def write_batch(self, time: int, changes: list[connector.Change]) -> None:
        self.calls.append((time, changes))

    def close(self) -> None:
        self.closed = True


def test_batch_writer_gets_one_call_per_time_deletions_first() -> None:
    table = pw.debug.table_from_markdown("""
        k | v | __time__ | __diff__
        a | 1 | 2        | 1
        b | 2 | 2        | 1
        a | 1 | 4        | -1
        a | 5 | 4        | 1
        c | 7 | 6        | 1
    """)
    writer = Collect()
    connector.write_batches(table, writer)
    pw.run(monitoring_level=NO_MONITORING)
    assert [time for time, _ in writer.calls] == sorted(time for time, _ in writer.calls)
    assert len(writer.calls) == 3 and writer.closed
    as_rows = [[(c.row["k"], c.row["v"], c.diff) for c in changes] for _, changes in writer.calls]
    assert sorted(as_rows[0]) == [("a", 1, 1), ("b", 2, 1)]
    assert as_rows[1] == [("a", 1, -1), ("a", 5, 1)]
    assert as_rows[2] == [("c", 7, 1)]
    assert all(isinstance(c.key, pw.Pointer) for _, changes in writer.calls for c in changes)


def test_batch_writer_sort_by_and_failure() -> None:
    table = pw.debug.table_from_markdown("""
        k | v
        b | 2
        a | 1
        c | 3
    """)
    writer = Collect()
    connector.write_batches(table, writer, sort_by=[table.k], name="collector")
    pw.run(monitoring_level=NO_MONITORING)
    assert [c.row["k"] for c in writer.calls[0][1]] == ["a", "b", "c"]

    class Failing(connector.BatchWriter):
        def write_batch(self, time: int, changes: list[connector.Change]) -> None:
            raise RuntimeError("disk full")

    pw.clear_graph()
    connector.write_batches(table, Failing(), name="failing-sink")
    with pytest.raises(pw.ConnectorError, match="failing-sink.*disk full"):
        pw.run(monitoring_level=NO_MONITORING)
    with pytest.raises(TypeError, match="BatchWriter"):
        connector.write_batches(table, Collect)  # type: ignore[arg-type]


class InlineRecorder(Writer):
    """A writer that says it never waits on its destination (``inline``)."""

    inline = True

    def __init__(self, fail_at: int | None = None) -> None:
        self.threads: set[str] = set()
        self.rows = 0
        self.flushed: list[int] = []
        self.closed = False
        self.fail_at = fail_at

    def write(self, payload: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.rows += payload.height
        if self.fail_at is not None and self.rows >= self.fail_at:
            raise RuntimeError("queue refused")

    def flush(self, time: int) -> None:
        self.flushed.append(time)

    def close(self) -> None:
        self.closed = True


def test_inline_writer_runs_in_the_engine_thread_and_fails_the_run() -> None:
    table = pw.debug.table_from_markdown("""
        k | __time__
        a | 2
        b | 4
        c | 4
    """)
    writer = InlineRecorder()
    write_table(table, writer, None, name="inline-sink")
    pw.run(monitoring_level=NO_MONITORING)
    assert writer.rows == 3 and writer.closed and writer.flushed == [2, 4]
    assert not any(name.startswith("deltaflow-output") for name in writer.threads)

    pw.clear_graph()
    table = pw.debug.table_from_markdown("""
        k | __time__
        a | 2
        b | 4
    """)
    failing = InlineRecorder(fail_at=2)
    write_table(table, failing, None, name="inline-sink")
    with pytest.raises(pw.ConnectorError, match="inline-sink.*queue refused"):
        pw.run(monitoring_level=NO_MONITORING)
    assert failing.rows == 2 and not failing.closed


# --- built-in connectors on the same checks -------------------------------------------------


def test_file_and_delta_connectors_use_the_common_checks(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("k,v\na,1\n")
    with pytest.raises(TypeError, match=r"pw.io.csv.read: .*'chunk_size'"):
        pw.io.csv.read(source, schema=Plain, chunk_size=10)
    with pytest.raises(TypeError, match=r"pw.io.fs.read: .*name must be a str"):
        pw.io.fs.read(source, format="csv", schema=Plain, name=1)  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning, match="persistent_id") as caught:
        table = pw.io.csv.read(source, schema=Plain, persistent_id="people", mode="static")
    assert caught[0].filename == __file__  # the warning names the user's line
    assert table._node.source.name == "people"
    with pytest.raises(TypeError, match=r"pw.io.jsonlines.write: table must be a pw.Table"):
        pw.io.jsonlines.write([1], tmp_path / "out.jsonl")
    with pytest.raises(KeyError, match="nope"):
        pw.io.csv.write(table, tmp_path / "out.csv", sort_by=["nope"])
    other = pw.io.csv.read(source, schema=Plain, mode="static")  # same columns, another table
    with pytest.raises(ValueError, match=r"sort_by: the column .*\.v belongs to another table"):
        pw.io.csv.write(table, tmp_path / "out.csv", sort_by=[other.v])
    with pytest.raises(ValueError, match="belongs to another table"):
        pw.io.subscribe(table, lambda **kwargs: None, sort_by=[other.k])
    pw.io.csv.write(table, tmp_path / "out.csv", sort_by=[table.v, pw.this.k])  # its own: fine
    pytest.importorskip("deltalake")
    with pytest.raises(TypeError, match=r"pw.io.deltalake.read\(.*\): .*'version'"):
        pw.io.deltalake.read(tmp_path / "lake", Plain, version=3)
    with pytest.raises(TypeError, match=r"pw.io.deltalake.write\(.*\): table must be"):
        pw.io.deltalake.write("table", tmp_path / "lake")
    with pytest.raises(TypeError, match=r"pw.io.deltalake.write\(.*\): name must be a str"):
        pw.io.deltalake.write(table, tmp_path / "lake", name=2)  # type: ignore[arg-type]


def test_http_client_connectors_use_the_common_checks() -> None:
    table = pw.debug.table_from_markdown("a\n1")
    with pytest.raises(TypeError, match=r"pw.io.http.write: table must be a pw.Table"):
        pw.io.http.write([1], "http://127.0.0.1:1/")
    with pytest.raises(TypeError, match=r"pw.io.http.write: name must be a str"):
        pw.io.http.write(table, "http://127.0.0.1:1/", name=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"pw.io.http.read: autocommit_duration_ms"):
        pw.io.http.read("http://127.0.0.1:1/", schema=Plain, autocommit_duration_ms=-1)
    with pytest.raises(TypeError, match=r"pw.io.http.read: schema must be a pw.Schema"):
        pw.io.http.read("http://127.0.0.1:1/", schema=int)  # type: ignore[arg-type]
    raw = pw.io.http.read("http://127.0.0.1:1/", format="raw", name="feed")
    assert list(raw.schema.columns()) == ["data"] and raw._node.source.name == "feed"
