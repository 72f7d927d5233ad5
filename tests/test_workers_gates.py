"""The behaviors' gates with an instance on several workers (``deltaflow spawn -n N``).

Such a gate keeps a frontier per instance, so each worker runs it over the instances it owns
(placement ``PARTITIONED`` by the instance). What a ``buffer`` holds and what a marked
``forget`` forgets then differ between the workers, but the times they ask for (the final
time, the odd time after forgetting) must be those of one worker: the update streams of 2
and 3 workers are compared with one worker's, time by time.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.engine.runtime import Runtime
from deltaflow.engine.workers.placement import (
    Placement,
    is_summarized_gate,
    partition_hashers,
    place_operators,
)
from deltaflow.plan import REGISTRY
from test_workers import LEFT, spawn
from test_workers_properties import SETTINGS, assert_same_on_one_two_and_three_workers
from workers_program import _table
from workers_props_program import GATES_BY_INSTANCE, PIPELINES, spread

#: The pipelines with gates by instance: over debug tables (rows on worker 0), spread over
#: the workers first, and below a reduce (each id on one worker, instances on several).
BY_INSTANCE = {
    name: PIPELINES[name]
    for name in PIPELINES
    if name.removeprefix("spread_").removeprefix("reduced_") in GATES_BY_INSTANCE
    or name.startswith("reduced_by_instance")
}


@settings(SETTINGS, phases=[Phase.explicit, Phase.generate])  # no shrinking: spawns are slow
@given(st.data())
def test_gates_by_instance_give_the_update_streams_of_one_worker(data: st.DataObject) -> None:
    assert len(BY_INSTANCE) >= 2 * len(GATES_BY_INSTANCE) + 2
    assert_same_on_one_two_and_three_workers(data, BY_INSTANCE, terminate_on_error=True)


def _placements(
    tables: dict[str, pw.Table], *, keeping_errors: bool = False, persisted: bool = False
) -> dict[str, tuple[Placement, bool]]:
    """Where the gate computing each of ``tables`` runs, and whether its workers exchange
    summaries (for the gates only; subscribed so that they are compiled)."""
    for table in tables.values():
        pw.io.subscribe(table, on_change=lambda **_: None)
    runtime = Runtime(REGISTRY.outputs)
    ops = runtime.operators
    hashers = [partition_hashers(op, keeping_errors, persisted=persisted) for op in ops]
    placement, _ = place_operators(ops, hashers, runtime._inputs_of, set(), persisted=persisted)
    where = {op.node.uid: (placement[p], is_summarized_gate(op)) for p, op in enumerate(ops)}
    return {name: where[table._node.uid] for name, table in tables.items()}


def _gates(t: pw.Table) -> dict[str, pw.Table]:
    e = t.select(t.k, t.v, at=t.v * 2 + t.k)
    return {
        "buffer": e._buffer(e.at + 3, e.at, instance_column=e.k),
        "ignore_late": e._freeze(e.at + 1, e.at, instance_column=e.k),
        "forget": e._forget(e.at + 2, e.at, False, instance_column=e.k),
        "forget_marked": e._forget(e.at + 2, e.at, True, instance_column=e.k),
        "no_instance": e.buffer(e.at, 3),
    }


#: The workers exchange summaries at a buffer (whether rows are held anywhere) and a marked
#: forget (whether rows were forgotten anywhere); the others need nothing from each other.
SUMMARIZED = {
    "buffer": True,
    "ignore_late": False,
    "forget": False,
    "forget_marked": True,
    "no_instance": True,
}


@pytest.mark.parametrize("persisted", [False, True])
def test_a_gate_with_an_instance_is_partitioned_by_its_instance(persisted: bool) -> None:
    # In a persisted run too: a restart rebuilds the gates' state by replaying the rows.
    placed = _placements(_gates(spread(_table(LEFT))), persisted=persisted)
    assert placed == {
        name: (Placement.PARTITIONED, summarized) for name, summarized in SUMMARIZED.items()
    }


def test_below_a_reduce_a_gate_with_an_instance_still_takes_its_instances() -> None:
    # Each id stays on one worker there (a gate without an instance runs where its rows
    # are), but the rows of one instance are on several workers.
    t = _table(LEFT)
    placed = _placements(_gates(t.groupby(t.k).reduce(t.k, v=pw.reducers.max(t.v))))
    assert placed["no_instance"] == (Placement.LOCAL, True)
    for kind in ("buffer", "ignore_late", "forget", "forget_marked"):
        assert placed[kind] == (Placement.PARTITIONED, SUMMARIZED[kind])


@pytest.mark.parametrize(("rows", "keeping_errors"), [("on worker 0", False), ("spread", True)])
def test_gates_of_rows_on_worker_0_or_keeping_errors_stay_there(
    rows: str, keeping_errors: bool
) -> None:
    t = _table(LEFT)
    placed = _placements(
        _gates(spread(t) if rows == "spread" else t), keeping_errors=keeping_errors
    )
    assert {where for where, _ in placed.values()} == {Placement.SINGLE}


def test_a_partitioned_gate_with_an_instance_runs_on_every_worker(tmp_path: Path) -> None:
    """The workers' log lines name the gates among their partitioned operators, and each
    ran some of the rows; the marked forget's odd times and the buffer's final time come
    out as with one worker."""
    from test_workers import per_time

    streams = [[[label, label % 5, label % 7 - 3, 2 * (1 + label // 6), 1] for label in range(40)]]
    cases = [
        {"pipeline": name, "streams": streams}
        for name in ("spread_by_instance_buffer", "spread_by_instance_forget_marked_reduced")
    ]
    (tmp_path / "cases.json").write_text(json.dumps({"cases": cases, "terminate_on_error": True}))
    produced = []
    for workers in (1, 3):
        out = tmp_path / f"out{workers}.json"
        program = str(Path(__file__).with_name("workers_props_program.py"))
        done = spawn(workers, program, str(tmp_path / "cases.json"), str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        produced.append(json.loads(out.read_text()))
        if workers > 1:
            lines = re.findall(
                r"worker \d+ of \d+: .*? rows into partitioned operators \((.*?)\)", done.stderr
            )
            assert len(lines) == workers
            assert all("buffer" in line and "forget" in line for line in lines), lines
    for one, three in zip(*produced, strict=True):
        assert one  # something came out (held rows at the final time, forgotten sums)
        assert per_time(three) == per_time(one)
    final = max(time for time, *_ in produced[0][0])
    assert final > 2**63  # the buffer's held rows came out at the final time
    assert any(time % 2 for time, *_ in produced[0][1])  # the marked forgetting's odd times


# --- persisted runs --------------------------------------------------------------------------

PERSIST_PROGRAM = str(Path(__file__).with_name("workers_gates_persist_program.py"))


def _change(data: Path, run: int) -> None:
    """The files of ``DATA/a`` before run ``run``: some added, one rewritten (its old rows
    retracted, late ones in their place), one deleted."""
    from workers_gates_persist_program import rows_of, write_rows

    folder = data / "a"
    folder.mkdir(parents=True, exist_ok=True)
    added = {0: (1, 2, 3, 4), 1: (5, 6), 2: (7,), 3: (8, 9)}[run]
    for n in added:
        write_rows(folder / f"part{n}.csv", rows_of(n))
    if run == 1:
        write_rows(folder / "part2.csv", rows_of(1, 7))
    if run == 2:
        (folder / "part4.csv").unlink()


def _streams(prefix: Path) -> dict[str, dict[int, Counter[tuple[str, int]]]]:
    """What each output of one run wrote: per time (numbered in order: the runs' times are
    clock times), its changes."""
    from workers_gates_persist_program import GATES

    lines = {
        name: [json.loads(line) for line in Path(f"{prefix}.{name}.jsonl").read_text().splitlines()]
        for name in GATES
    }
    times = sorted({row["time"] for rows in lines.values() for row in rows})
    streams: dict[str, dict[int, Counter[tuple[str, int]]]] = {}
    for name, rows in lines.items():
        per_time: dict[int, Counter[tuple[str, int]]] = {}
        for row in rows:
            fields = json.dumps({k: v for k, v in row.items() if k not in ("time", "diff")})
            per_time.setdefault(times.index(row["time"]), Counter())[(fields, row["diff"])] += 1
        streams[name] = per_time
    return streams


def _restarted_runs(workers: tuple[int, ...], root: Path) -> tuple[list[Any], list[str]]:
    """Run the persisted program once per entry of ``workers`` (on that many workers), the
    files changing before each run; what each run wrote, and its log."""
    data, state = root / "data", root / "state"
    streams, logs = [], []
    for run, count in enumerate(workers):
        _change(data, run)
        out = root / f"run{run}"
        done = spawn(count, PERSIST_PROGRAM, ".", str(state), str(out), cwd=data, timeout=150)
        assert done.returncode == 0, done.stderr[-3000:]
        streams.append(_streams(out))
        logs.append(done.stderr)
    return streams, logs


def test_persisted_gates_restart_on_other_worker_counts_as_on_one(tmp_path: Path) -> None:
    """The gates of a persisted run are shared by the workers too: restarts replay the
    checkpoint through them on 2 and 3 workers, and every run writes what the same runs on
    one worker write, time by time."""
    from concurrent.futures import ThreadPoolExecutor

    sequences = ((1, 1, 1, 1), (2, 3, 1, 2))
    with ThreadPoolExecutor(2) as pool:
        (one, _), (several, logs) = pool.map(
            lambda counts: _restarted_runs(counts, tmp_path / "-".join(map(str, counts))),
            sequences,
        )
    for run, (expected, got) in enumerate(zip(one, several, strict=True)):
        for name, stream in expected.items():
            assert got[name] == stream, f"{name} differs in run {run} ({sequences[1][run]} workers)"
    assert all("resuming from checkpoint" in log for log in logs[1:])
    # The restarts retracted rows the gates let through in earlier runs, and marked
    # forgetting made its odd times.
    assert any(diff < 0 for _, diff in sum(one[1]["by_instance_forget"].values(), Counter()))
    assert len(one[2]["by_instance_marked"]) >= 2
    for log, count in zip(logs, sequences[1], strict=True):
        if count > 1:
            lines = re.findall(r"rows into partitioned operators \((.*?)\)", log)
            assert len(lines) == count
            assert all(line.count("buffer") == 2 and "forget" in line for line in lines), lines
