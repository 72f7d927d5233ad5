"""pw.io.deltalake.write across crashes (issue #15): no checkpoint covers changes that still
wait for ``min_commit_frequency``, and a resumed run removes what the crashed run committed
after its checkpoint."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from deltaflow import _types as t
from deltaflow.io.deltalake._storage import Location
from deltaflow.io.deltalake._writer import DeltaWriter, WriteSpec

deltalake = pytest.importorskip("deltalake")


def _writer(path: Path, *, every_s: float | None) -> DeltaWriter:
    spec = WriteSpec(
        location=Location(str(path)),
        columns={"k": t.INT},
        primary_key=[],
        snapshot=False,
        partition_columns=[],
        min_commit_frequency_s=every_s,
        connector="pw.io.deltalake.write(test)",
    )
    return DeltaWriter(spec)


def _batch(keys: list[int], time: int) -> pa.Table:
    n = len(keys)
    return pa.table(
        {
            "k": pa.array(keys, pa.int64()),
            "time": pa.array([time] * n, pa.int64()),
            "diff": pa.array([1] * n, pa.int64()),
        }
    )


def _rows(path: Path) -> list[tuple[int, int]]:
    table = deltalake.DeltaTable(str(path)).to_pyarrow_table(columns=["k", "time"])
    return sorted(zip(table.column("k").to_pylist(), table.column("time").to_pylist()))


def test_changes_waiting_for_a_commit_are_not_durable(tmp_path: Path) -> None:
    # Before, flush() returned with the rows still in memory and the checkpoint of that
    # time covered them: a crash lost them for good (1,560 of 7,960 rows in a 10-kill sweep).
    writer = _writer(tmp_path / "out", every_s=3600)
    writer.open()
    writer.write(_batch([1, 2], 10))
    writer.flush(10)  # waits for the next commit (an hour after the start)
    writer.flush(11)  # still waiting: not durable
    assert writer.durable_time() is None
    assert writer.position() == 11
    assert not deltalake.DeltaTable(str(tmp_path / "out")).to_pyarrow_table().num_rows
    writer.close()  # the end of the run commits the rest
    assert writer.durable_time() == 11
    assert _rows(tmp_path / "out") == [(1, 10), (2, 10)]


def test_each_flush_is_durable_when_every_flush_commits(tmp_path: Path) -> None:
    writer = _writer(tmp_path / "out", every_s=None)
    writer.open()
    writer.write(_batch([1], 10))
    writer.flush(10)
    assert writer.durable_time() == 10
    writer.flush(11)
    assert writer.durable_time() == 11
    writer.close()


def test_a_resumed_run_removes_rows_committed_after_the_checkpoint(tmp_path: Path) -> None:
    crashed = _writer(tmp_path / "out", every_s=None)
    crashed.open()
    assert crashed.position() == -1  # a fresh start on a new table: every row is later
    for time in (10, 11, 12):
        crashed.write(_batch([time], time))
        crashed.flush(time)
    # The process dies here; its checkpoint recorded position 10.
    restarted = _writer(tmp_path / "out", every_s=None)
    restarted.resume(10)
    restarted.open()
    assert _rows(tmp_path / "out") == [(10, 10)]
    # A fresh run's start position is the latest time already in the table.
    fresh = _writer(tmp_path / "out", every_s=None)
    fresh.open()
    assert fresh.position() == 10


def _load_harness() -> Any:
    script = Path(__file__).resolve().parents[2] / "scripts" / "crash_sweep.py"
    spec = importlib.util.spec_from_file_location("crash_sweep", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_sweep"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("interval_ms", [100, 60_000], ids=["periodic", "first-checkpoint"])
def test_kills_lose_and_double_nothing(tmp_path: Path, interval_ms: int) -> None:
    harness = _load_harness()
    result = harness.sweep(
        "deltalake",
        python=sys.executable,
        engine="deltaflow",
        kills=2,
        seed=5,
        workdir=tmp_path / "deltalake",
        rows_per_file=10,
        period_s=0.1,
        kill_after=(1.0, 2.5),
        final_timeout_s=120,
        snapshot_interval_ms=interval_ms,
    )
    assert not result.failures, result.failures
    assert result.complete, result.row()
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.row()
