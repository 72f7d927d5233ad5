"""Persistence: checkpoints on a real directory, restarts in this process and in a killed one."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.engine.runtime import stop_all_runs
from deltaflow.persistence import run as persistence_run
from deltaflow.persistence.checkpoints import CheckpointError, CheckpointStore, current_rows
from deltaflow.persistence.storage import FilesystemStorage


class KV(pw.Schema):
    k: str
    v: int


def _config(store: Path, **kwargs: Any) -> Any:
    return pw.persistence.Config(pw.persistence.Backend.filesystem(store), **kwargs)


def _groupby_run(
    inputs: Path,
    out: Path,
    store: Path,
    *,
    name: str | None = "src",
    mode: str = "static",
    fmt: str = "csv",
) -> None:
    pw.clear_graph()
    if fmt == "csv":
        table = pw.io.csv.read(inputs, schema=KV, mode=mode, name=name)
    else:
        table = pw.io.jsonlines.read(inputs, schema=KV, mode=mode, name=name)
    result = table.groupby(table.k).reduce(
        table.k, s=pw.reducers.sum(table.v), c=pw.reducers.count()
    )
    pw.io.csv.write(result, out)
    pw.run(persistence_config=_config(store), monitoring_level=pw.MonitoringLevel.NONE)


def _changes(out: Path) -> Counter[tuple[Any, ...]]:
    """The output file's rows without their time, as a multiset of (columns..., diff)."""
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return Counter(tuple(v for k, v in row.items() if k != "time") for row in rows)


def _apply(state: Counter[tuple[Any, ...]], changes: Counter[tuple[Any, ...]]) -> None:
    for row, count in changes.items():
        state[row[:-1]] += int(row[-1]) * count
        assert state[row[:-1]] in (0, 1), f"row {row[:-1]} now occurs {state[row[:-1]]} times"
    for row in [r for r, n in state.items() if n == 0]:
        del state[row]


def _write(path: Path, rows: list[tuple[str, int]]) -> None:
    text = "k,v\n" + "".join(f"{k},{v}\n" for k, v in rows)
    before = path.stat().st_mtime_ns if path.exists() else None
    path.write_text(text)
    # Coarse clocks could give a rewritten file its old modification time.
    while before is not None and path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def _expected(files: dict[str, list[tuple[str, int]]]) -> Counter[tuple[Any, ...]]:
    sums: dict[str, list[int]] = {}
    for rows in files.values():
        for k, v in rows:
            entry = sums.setdefault(k, [0, 0])
            entry[0] += v
            entry[1] += 1
    return Counter((k, str(s), str(c)) for k, (s, c) in sums.items())


def test_restarts_emit_only_the_changes_since_the_checkpoint(tmp_path: Path) -> None:
    inputs, out, store = tmp_path / "in", tmp_path / "out.csv", tmp_path / "store"
    inputs.mkdir()
    _write(inputs / "1.csv", [("a", 1), ("b", 2)])
    _groupby_run(inputs, out, store)
    assert _changes(out) == Counter({("a", "1", "1", "1"): 1, ("b", "2", "1", "1"): 1})

    _groupby_run(inputs, out, store)  # nothing new: nothing is output again
    assert _changes(out) == Counter()

    _write(inputs / "2.csv", [("a", 10), ("c", 3)])
    _groupby_run(inputs, out, store)  # the state of run 1 was rebuilt from the snapshot
    assert _changes(out) == Counter(
        {("a", "1", "1", "-1"): 1, ("a", "11", "2", "1"): 1, ("c", "3", "1", "1"): 1}
    )

    _write(inputs / "1.csv", [("a", 1), ("b", 5)])  # modified: old rows retracted
    _groupby_run(inputs, out, store)
    assert _changes(out) == Counter({("b", "2", "1", "-1"): 1, ("b", "5", "1", "1"): 1})

    (inputs / "2.csv").unlink()  # deleted: its rows retracted
    _groupby_run(inputs, out, store)
    assert _changes(out) == Counter(
        {("a", "11", "2", "-1"): 1, ("c", "3", "1", "-1"): 1, ("a", "1", "1", "1"): 1}
    )


def test_unnamed_connector_and_jsonlines_resume(tmp_path: Path) -> None:
    inputs, out, store = tmp_path / "in", tmp_path / "out.csv", tmp_path / "store"
    inputs.mkdir()
    (inputs / "1.jsonl").write_text('{"k": "a", "v": 1}\n')
    _groupby_run(inputs, out, store, name=None, fmt="json")
    (inputs / "2.jsonl").write_text('{"k": "a", "v": 2}\n')
    _groupby_run(inputs, out, store, name=None, fmt="json")
    assert _changes(out) == Counter({("a", "1", "1", "-1"): 1, ("a", "3", "2", "1"): 1})


def test_torn_checkpoint_is_ignored(tmp_path: Path) -> None:
    inputs, out, store = tmp_path / "in", tmp_path / "out.csv", tmp_path / "store"
    inputs.mkdir()
    _write(inputs / "1.csv", [("a", 1)])
    _groupby_run(inputs, out, store)
    _write(inputs / "2.csv", [("a", 2)])
    _groupby_run(inputs, out, store)
    manifests = sorted((store / "checkpoints").iterdir())
    assert len(manifests) == 2
    # The second checkpoint's chunks are there but its manifest never was (killed between
    # the two phases): the restart must use the first one and read 2.csv again.
    manifests[-1].unlink()
    _groupby_run(inputs, out, store)
    assert _changes(out) == Counter({("a", "1", "1", "-1"): 1, ("a", "3", "2", "1"): 1})
    # A manifest cut short is as good as absent.
    newest = sorted((store / "checkpoints").iterdir())[-1]
    newest.write_bytes(newest.read_bytes()[:20])
    _groupby_run(inputs, out, store)
    assert _changes(out) == Counter({("a", "1", "1", "-1"): 1, ("a", "3", "2", "1"): 1})


def test_frontiers_of_several_workers_are_merged(tmp_path: Path) -> None:
    inputs, out, store = tmp_path / "in", tmp_path / "out.csv", tmp_path / "store"
    inputs.mkdir()
    _write(inputs / "1.csv", [("a", 1)])
    _groupby_run(inputs, out, store)
    manifest = sorted((store / "checkpoints").iterdir())[-1]
    document = json.loads(manifest.read_text())
    entry = document["inputs"]["src"]
    [(path, mtime)] = entry["frontiers"][0]
    entry["frontiers"] = [[[path, mtime - 5]], [[path, mtime]], [["other", 7]]]
    manifest.write_text(json.dumps(document))
    loaded = CheckpointStore(FilesystemStorage(str(store))).load_latest()
    assert loaded is not None
    assert loaded.inputs["src"].frontier == {path: mtime, "other": 7}


def test_changed_schema_fails_clearly(tmp_path: Path) -> None:
    inputs, out, store = tmp_path / "in", tmp_path / "out.csv", tmp_path / "store"
    inputs.mkdir()
    _write(inputs / "1.csv", [("a", 1)])
    _groupby_run(inputs, out, store)

    class Other(pw.Schema):
        k: str
        w: int

    pw.clear_graph()
    table = pw.io.csv.read(inputs, schema=Other, mode="static", name="src")
    pw.io.csv.write(table, out)
    with pytest.raises(CheckpointError, match="'src' was checkpointed with columns"):
        pw.run(persistence_config=_config(store), monitoring_level=pw.MonitoringLevel.NONE)


def test_bad_configuration_fails_when_built(tmp_path: Path) -> None:
    backend = pw.persistence.Backend.filesystem(tmp_path)
    with pytest.raises(TypeError, match="backend must be"):
        pw.persistence.Config(str(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="snapshot_interval_ms"):
        pw.persistence.Config(backend, snapshot_interval_ms=-1)
    with pytest.raises(NotImplementedError, match="OPERATOR_PERSISTING"):
        pw.persistence.Config(
            backend, persistence_mode=pw.persistence.PersistenceMode.OPERATOR_PERSISTING
        )
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        pw.persistence.Backend.filesystem(tmp_path / "file")
    with pytest.raises(TypeError, match="persistence_config"):
        pw.run(persistence_config="nope")


def test_sqlite_input_is_refused_under_persistence(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "db.sqlite"
    with sqlite3.connect(db) as connection:
        connection.execute("create table t (k text, v integer)")
        connection.execute("insert into t values ('a', 1)")

    table = pw.io.sqlite.read(db, "t", KV, mode="static", name="sq")
    pw.io.csv.write(table, tmp_path / "out.csv")
    with pytest.raises(pw.ConnectorError, match="persistence is not supported by this connector"):
        pw.run(
            persistence_config=_config(tmp_path / "store"), monitoring_level=pw.MonitoringLevel.NONE
        )


def test_python_connector_replays_and_runs_its_subject_again(tmp_path: Path) -> None:
    """As in Pathway: the snapshot is replayed, then the subject runs from its start."""
    store, out = tmp_path / "store", tmp_path / "out.csv"

    def run(count: int) -> None:
        pw.clear_graph()

        class Subject(pw.io.python.ConnectorSubject):
            def run(self) -> None:
                for i in range(count):
                    self.next(k="x", v=i)

        table = pw.io.python.read(Subject(), schema=KV, name="py")
        pw.io.csv.write(table.reduce(s=pw.reducers.sum(table.v), c=pw.reducers.count()), out)
        pw.run(persistence_config=_config(store), monitoring_level=pw.MonitoringLevel.NONE)

    run(3)
    run(5)
    assert _changes(out) == Counter({("3", "3", "-1"): 1, ("13", "8", "1"): 1})


def _run_collecting(store: Path, errors: list[BaseException]) -> None:
    try:
        pw.run(persistence_config=_config(store), monitoring_level=pw.MonitoringLevel.NONE)
    except BaseException as exc:  # noqa: BLE001 - the test checks the list
        errors.append(exc)


def test_streaming_restart_with_compaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persistence_run, "COMPACT_AFTER_CHUNKS", 2)
    inputs, store = tmp_path / "in", tmp_path / "store"
    inputs.mkdir()
    files: dict[str, list[tuple[str, int]]] = {}
    state: Counter[tuple[Any, ...]] = Counter()
    for run in range(3):
        out = tmp_path / f"out{run}.csv"
        pw.clear_graph()
        table = pw.io.csv.read(
            inputs, schema=KV, mode="streaming", name="src", autocommit_duration_ms=10
        )
        result = table.groupby(table.k).reduce(
            table.k, s=pw.reducers.sum(table.v), c=pw.reducers.count()
        )
        pw.io.csv.write(result, out)
        errors: list[BaseException] = []
        thread = threading.Thread(target=_run_collecting, args=(store, errors), daemon=True)
        thread.start()
        for step in range(2):  # one file added at a time, each checkpointed on its own
            name = f"{run}-{step}.csv"
            files[name] = [(f"k{step}", run * 10 + step), ("z", 1)]
            _write(inputs / name, files[name])
            expected_total = sum(v for rows in files.values() for _, v in rows)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                current = Counter(state)
                if out.exists():
                    with contextlib.suppress(AssertionError, ValueError):
                        _apply(current, _changes(out))  # fails on a half-written line
                if sum(int(r[1]) for r in current) == expected_total:
                    break
                time.sleep(0.02)
        stop_all_runs()
        thread.join(10)
        assert not errors
        _apply(state, _changes(out))
        assert state == _expected(files)
    chunks = list((store / "chunks").rglob("*.ipc"))
    assert any(c.name.endswith("-compact.ipc") for c in chunks)


_CHILD = """
import sys
import deltaflow as pw

class KV(pw.Schema):
    k: str
    v: int

inputs, out, store, mode = sys.argv[1:5]
table = pw.io.csv.read(inputs, schema=KV, mode=mode, name="src", autocommit_duration_ms=5)
pw.io.csv.write(table.select(table.k, table.v), out)
pw.run(persistence_config=pw.persistence.Config(pw.persistence.Backend.filesystem(store)),
       monitoring_level=pw.MonitoringLevel.NONE)
"""


def test_killed_process_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    inputs, store = tmp_path / "in", tmp_path / "store"
    inputs.mkdir()
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    all_rows: Counter[tuple[str, str]] = Counter()

    def add(index: int) -> None:
        rows = [(f"f{index}", i) for i in range(3)]
        _write(inputs / f"{index:02d}.csv", rows)
        all_rows.update((k, str(v)) for k, v in rows)

    child = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(inputs),
            str(tmp_path / "o1.csv"),
            str(store),
            "streaming",
        ]
    )
    try:
        for index in range(8):
            add(index)
            if index == 3:  # let some checkpoints happen, then go on while it runs
                deadline = time.monotonic() + 20
                # (A run writes a checkpoint of its start at once: wait for one with rows.)
                while len(list((store / "checkpoints").glob("*.json"))) < 2 or not list(
                    (store / "chunks").glob("*/*.ipc")
                ):
                    assert time.monotonic() < deadline, "no checkpoint was written"
                    time.sleep(0.02)
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    for index in range(8, 12):
        add(index)
    # What the restart resumes from: the newest complete checkpoint at this point.
    checkpoint = CheckpointStore(FilesystemStorage(str(store))).load_latest()
    assert checkpoint is not None
    snapshot_rows = CheckpointStore(FilesystemStorage(str(store))).read_rows(
        checkpoint.inputs["src"]
    )
    assert snapshot_rows is not None
    state: Counter[tuple[str, str]] = Counter(
        (k, str(v)) for k, v in current_rows(snapshot_rows).select("k", "v").iter_rows()
    )
    done = subprocess.run(
        [sys.executable, str(script), str(inputs), str(tmp_path / "o2.csv"), str(store), "static"],
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for (k, v, diff), count in _changes(tmp_path / "o2.csv").items():
        state[(k, v)] += int(diff) * count
    # Snapshot + what the restart output = every input row exactly once.
    assert +state == all_rows


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 9)), max_size=3),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.integers(0, 5), min_size=1, max_size=3),
)
def test_files_spread_over_runs_equal_one_run(
    tmp_path_factory: pytest.TempPathFactory, contents: list[list[tuple[str, int]]], cuts: list[int]
) -> None:
    base = tmp_path_factory.mktemp("prop")
    inputs, store, out = base / "in", base / "store", base / "out.csv"
    inputs.mkdir()
    files: dict[str, list[tuple[str, int]]] = {}
    state: Counter[tuple[Any, ...]] = Counter()
    boundaries = sorted({min(c, len(contents)) for c in cuts} | {len(contents)})
    start = 0
    for end in boundaries:
        for index in range(start, end):
            files[f"{index}.csv"] = contents[index]
            _write(inputs / f"{index}.csv", contents[index])
        start = end
        _groupby_run(inputs, out, store)
        _apply(state, _changes(out))
    assert state == _expected(files)


class KeyedKV(pw.Schema):
    k: str = pw.column_definition(primary_key=True)
    v: int


def test_current_rows_keeps_each_distinct_row_of_an_id() -> None:
    """Several rows may share an id (a primary key in two files, or twice in one): the
    snapshot keeps each of them, not only the last one with their summed multiplicity."""
    from deltaflow.engine.batch import DIFF, ID
    from deltaflow.persistence.checkpoints import SOURCE

    frame = pl.DataFrame(
        {
            ID: pl.Series([1, 1, 1, 1, 2, 2, 2, 1], dtype=pl.UInt128),
            "v": [3, 4, 5, 5, 7, 7, 8, 5],
            SOURCE: ["f1", "f2", "f2", "f2", "f1", "f1", "f1", "f2"],
            DIFF: [1, 1, 1, 1, 1, -1, 1, -1],
        }
    )
    alive = current_rows(frame)
    assert sorted(alive.select("v", SOURCE, DIFF).iter_rows()) == [
        (3, "f1", 1),
        (4, "f2", 1),
        (5, "f2", 1),
        (8, "f1", 1),
    ]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.dictionaries(
            st.integers(0, 3),
            st.none() | st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 3)), max_size=3),
            min_size=1,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_keyed_files_changed_between_runs_equal_their_current_rows(
    tmp_path_factory: pytest.TempPathFactory, runs: list[dict[int, list[tuple[str, int]] | None]]
) -> None:
    """Files whose rows share primary keys, written, rewritten and deleted between restarts:
    the changes written by all the runs add up to the rows of the files there now (a
    multiset: rows with one key in two files are both there, as in Pathway)."""
    base = tmp_path_factory.mktemp("keyed")
    inputs, store, out = base / "in", base / "store", base / "out.csv"
    inputs.mkdir()
    files: dict[str, list[tuple[str, int]]] = {}
    state: Counter[tuple[str, str]] = Counter()
    for changes in runs:
        for index, rows in changes.items():
            name = f"{index}.csv"
            if rows is None:
                files.pop(name, None)
                (inputs / name).unlink(missing_ok=True)
            else:
                files[name] = rows
                _write(inputs / name, rows)
        pw.clear_graph()
        table = pw.io.csv.read(inputs, schema=KeyedKV, mode="static", name="keyed")
        pw.io.csv.write(table, out)
        pw.run(persistence_config=_config(store), monitoring_level=pw.MonitoringLevel.NONE)
        for (k, v, diff), count in _changes(out).items():
            state[(k, v)] += int(diff) * count
            assert state[(k, v)] >= 0, f"row {(k, v)} retracted more often than inserted"
    expected = Counter((k, str(v)) for rows in files.values() for k, v in rows)
    assert +state == expected
