"""The behaviors' gates with an instance on several workers (``deltaflow spawn -n N``).

Such a gate keeps a frontier per instance, so each worker runs it over the instances it owns
(placement ``PARTITIONED`` by the instance). What a ``buffer`` holds and what a marked
``forget`` forgets then differ between the workers, but the times they ask for (the final
time, the odd time after forgetting) must be those of one worker: the update streams of 2
and 3 workers are compared with one worker's, time by time.
"""

from __future__ import annotations

import re
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


@settings(SETTINGS, max_examples=2, phases=[Phase.explicit, Phase.generate])
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


def test_a_gate_with_an_instance_is_partitioned_by_its_instance() -> None:
    placed = _placements(_gates(spread(_table(LEFT))))
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


@pytest.mark.parametrize(
    ("rows", "options"),
    [
        ("on worker 0", {}),
        ("spread", {"keeping_errors": True}),
        ("spread", {"persisted": True}),
    ],
)
def test_gates_with_an_instance_stay_on_worker_0(rows: str, options: dict[str, Any]) -> None:
    t = _table(LEFT)
    placed = _placements(_gates(spread(t) if rows == "spread" else t), **options)
    assert {where for where, _ in placed.values()} == {Placement.SINGLE}


def test_a_partitioned_gate_with_an_instance_runs_on_every_worker(tmp_path: Path) -> None:
    """The workers' log lines name the gates among their partitioned operators, and each
    ran some of the rows; the marked forget's odd times and the buffer's final time come
    out as with one worker."""
    import json

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
