"""``pw.run(udf_cache_directory=...)``: the values non-deterministic UDFs remember per row
live in files of that directory during the run (deltaflow.udfs.row_store)."""

from __future__ import annotations

import os
import pathlib
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.udfs.row_store import DiskRowValues, ShardedRowValues, sweep

STREAM = """
  | a | __time__ | __diff__
1 | 1 |     2    |     1
2 | 2 |     4    |     1
1 | 1 |     6    |    -1
3 | 3 |     8    |     1
2 | 2 |    10    |    -1
"""


def _run_counting_udf(directory: pathlib.Path | None) -> tuple[list[tuple], set[str]]:
    """A UDF whose value changes on every call, over insertions and deletions; the updates
    of its column and the value files seen while it ran."""
    calls: dict[int, int] = {}
    seen: set[str] = set()

    @pw.udf
    def stamp(a: int) -> int:
        if directory is not None:
            seen.update(path.name for path in directory.glob("*.sqlite"))
        calls[a] = calls.get(a, 0) + 1
        return 100 * a + calls[a]

    table = pw.debug.table_from_markdown(STREAM)
    result = table.select(v=stamp(pw.this.a))
    updates: list[tuple] = []
    pw.io.subscribe(
        result,
        on_change=lambda key, row, time, is_addition: updates.append((time, row["v"], is_addition)),
    )
    options = {} if directory is None else {"udf_cache_directory": str(directory)}
    pw.run(monitoring_level=pw.MonitoringLevel.NONE, **options)
    assert calls == {1: 1, 2: 1, 3: 1}  # deletions retract the remembered value, no new call
    return sorted(updates), seen


def test_values_kept_in_files_give_the_same_stream(tmp_path: pathlib.Path) -> None:
    in_memory, _ = _run_counting_udf(None)
    pw.clear_graph()
    directory = tmp_path / "values"
    on_disk, seen = _run_counting_udf(directory)
    assert on_disk == in_memory
    assert (6, 101, False) in on_disk and (10, 201, False) in on_disk
    assert seen == {f"run-{os.getpid()}-worker-0-op-0.sqlite"}
    assert list(directory.glob("*.sqlite")) == []  # removed when the run ended


def test_leftovers_of_dead_runs_and_of_this_pid_are_removed(tmp_path: pathlib.Path) -> None:
    dead = tmp_path / "run-999999999-worker-0-op-0.sqlite"  # above any pid: not alive
    dead.write_bytes(b"garbage")
    mine = tmp_path / f"run-{os.getpid()}-worker-0-op-3.sqlite"
    mine.write_bytes(b"not a database")
    alive = tmp_path / f"run-{os.getppid()}-worker-0-op-0.sqlite"  # a live process's file
    alive.write_bytes(b"someone else's")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("kept")
    sweep(str(tmp_path))
    assert not dead.exists() and not mine.exists()
    assert alive.exists() and unrelated.exists()


def test_a_run_never_reads_a_leftover_file_under_its_own_name(tmp_path: pathlib.Path) -> None:
    (tmp_path / f"run-{os.getpid()}-worker-0-op-0.sqlite").write_bytes(b"not a database")
    updates, _ = _run_counting_udf(tmp_path)
    assert (2, 101, True) in updates
    assert list(tmp_path.glob("*.sqlite")) == []


def test_disk_row_values_mapping(tmp_path: pathlib.Path) -> None:
    values = DiskRowValues(str(tmp_path / "v.sqlite"))
    assert not values
    big = 2**127 + 5  # row ids are unsigned 128-bit integers
    values.update([(1, "a"), (big, (1, [2.5]))])
    values[3] = None
    assert values and len(values) == 3 and big in values and 7 not in values and "x" not in values
    assert values[big] == (1, [2.5]) and values[3] is None
    assert values.pop(1) == "a" and values.pop(1, "gone") == "gone"
    assert not values.keys().isdisjoint([3, 9]) and values.keys().isdisjoint([9])
    assert sorted(values) == [3, big]
    with pytest.raises(KeyError):
        del values[42]
    with pytest.raises(TypeError):
        values.update(x=1)
    values.close()
    assert not (tmp_path / "v.sqlite").exists()


def test_values_split_over_pathway_threads_files(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PATHWAY_THREADS=3: the node's values live in three files, one per worker slot, all there
    # from the first call; the stream is the one of a run keeping them in memory.
    in_memory, _ = _run_counting_udf(None)
    pw.clear_graph()
    monkeypatch.setenv("PATHWAY_THREADS", "3")
    directory = tmp_path / "values"
    on_disk, seen = _run_counting_udf(directory)
    assert on_disk == in_memory
    assert seen == {f"run-{os.getpid()}-worker-{w}-op-0.sqlite" for w in range(3)}
    assert list(directory.glob("*.sqlite")) == []


def test_sharded_row_values_mapping(tmp_path: pathlib.Path) -> None:
    shards = [DiskRowValues(str(tmp_path / f"s{i}.sqlite")) for i in range(2)]
    values = ShardedRowValues(shards)
    assert not values
    values.update({4: "even", 7: "odd", 9: "odd too"})
    values[2**127 + 1] = "big"
    assert len(values) == 4 and len(shards[0]) == 1 and len(shards[1]) == 3
    assert values[7] == "odd" and 9 in values and 8 not in values and "7" not in values
    del values[9]
    assert sorted(values) == [4, 7, 2**127 + 1]
    with pytest.raises(KeyError):
        del values[9]
    with pytest.raises(TypeError):
        values.update(x=1)
    values.close()
    assert not list(tmp_path.glob("*.sqlite"))
    with pytest.raises(ValueError):
        ShardedRowValues([])


_OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["set", "update", "delete"]),
        st.integers(min_value=0, max_value=2**128 - 2) | st.integers(0, 20),  # +1 stays an id
        st.integers(),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(_OPERATIONS, st.integers(min_value=1, max_value=4))
def test_sharded_values_behave_like_a_dict(operations: list[tuple[str, int, int]], k: int) -> None:
    # Any sequence of stores and deletions leaves the files holding what a dict would.
    with tempfile.TemporaryDirectory() as directory:
        values = ShardedRowValues(
            [DiskRowValues(os.path.join(directory, f"{i}.sqlite")) for i in range(k)]
        )
        model: dict[int, int] = {}
        for kind, row_id, value in operations:
            if kind == "set":
                values[row_id] = model[row_id] = value
            elif kind == "update":
                values.update([(row_id, value), (row_id + 1, -value)])
                model.update([(row_id, value), (row_id + 1, -value)])
            elif row_id in model:
                del values[row_id]
                del model[row_id]
            assert bool(values) == bool(model)
        assert dict(values.items()) == model and len(values) == len(model)
        values.close()
