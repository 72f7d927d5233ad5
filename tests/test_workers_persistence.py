"""Persistence on several workers: checkpoints per worker and one manifest, restarts on
another number of workers, a worker crashing in the middle of a checkpoint.

Every run is a real ``deltaflow spawn`` of ``workers_persist_program.py`` (a streaming CSV
directory -> groupby -> join -> JSON lines outputs, a checkpoint after every time). The
program's paths are relative to the data directory, so which worker reads which file is the
same in every test run (``path_owner``, checked below).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

from deltaflow.engine.workers.inputs import path_owner
from test_workers import rows_read, spawn
from workers_persist_program import consolidated, expected, rows_of, write_csv

PROGRAM = str(Path(__file__).with_name("workers_persist_program.py"))


def _data(root: Path, parts: list[int]) -> Path:
    data = root / "data"
    (data / "a").mkdir(parents=True)
    (data / "b").mkdir()
    for n in parts:
        write_csv(data / "a" / f"part{n}.csv", ["k", "v"], rows_of(n))
    write_csv(data / "b" / "b1.csv", ["k", "w"], [(k, k * 10) for k in range(0, 11, 2)])
    return data


def _run(workers: int, data: Path, state: Path, out: Path, prior: list[Path], **env: str) -> str:
    old = dict(os.environ)
    os.environ.update(PRIOR=",".join(str(p) for p in prior), **env)
    try:
        done = spawn(workers, PROGRAM, ".", str(state), str(out), cwd=data, timeout=150)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def test_restarts_on_two_one_and_three_workers_output_each_change_once(tmp_path: Path) -> None:
    # Under two workers, worker 1 reads part4 and part5; under one, worker 0 reads them.
    assert [path_owner(f"a/part{n}.csv", 2) for n in (4, 5)] == [1, 1]
    assert path_owner("a/part2.csv", 3) == 2
    data, state = _data(tmp_path, [1, 2, 3, 4, 5]), tmp_path / "state"
    outs = [tmp_path / f"run{i}" for i in range(4)]
    _run(2, data, state, outs[0], [])
    assert consolidated(outs[:1]) == expected(data)

    # Worker 1's files change hands: one rewritten, one deleted, new ones added.
    write_csv(data / "a" / "part4.csv", ["k", "v"], rows_of(24, 12))
    (data / "a" / "part5.csv").unlink()
    for n in (6, 7):
        write_csv(data / "a" / f"part{n}.csv", ["k", "v"], rows_of(n))
    log = _run(1, data, state, outs[1], outs[:1])
    assert "resuming from checkpoint" in log
    assert consolidated(outs[:2]) == expected(data)

    write_csv(data / "a" / "part2.csv", ["k", "v"], rows_of(22, 5))  # worker 2's of three
    write_csv(data / "b" / "b2.csv", ["k", "w"], [(k, k * 100) for k in range(0, 11, 3)])
    for n in (8, 9):
        write_csv(data / "a" / f"part{n}.csv", ["k", "v"], rows_of(n))
    log = _run(3, data, state, outs[2], outs[:2])
    assert consolidated(outs[:3]) == expected(data)
    # The split inputs' rows the workers processed: the replay of the checkpoint (part1-3,
    # the rewritten part4, part6-7 and b1: 118 rows), part2's old rows retracted (20), its
    # new ones (5), part8-9 (40) and b2 (4). A file read twice would show here.
    assert sum(rows_read(log, 3)) == 118 + 20 + 5 + 40 + 4

    write_csv(data / "a" / "part10.csv", ["k", "v"], rows_of(10))
    log = _run(2, data, state, outs[3], outs[:3])
    assert sum(rows_read(log, 2)) == 147 + 20  # the replay, then part10 only
    final = consolidated(outs)
    assert final == expected(data)
    # The last run updated the groups it restored (a retraction for every insertion),
    # rather than starting from nothing.
    diffs = Counter(
        json.loads(line)["diff"]
        for line in Path(f"{outs[3]}.counts.jsonl").read_text().splitlines()
    )
    assert diffs[1] == diffs[-1] > 0

    # The same as one uninterrupted run on one worker.
    fresh = tmp_path / "fresh"
    shutil.copytree(data, fresh)
    _run(1, fresh, tmp_path / "fresh-state", tmp_path / "once", [])
    assert consolidated([tmp_path / "once"]) == final


def test_a_worker_dying_in_the_middle_of_a_checkpoint_leaves_the_previous_one(
    tmp_path: Path,
) -> None:
    assert all(path_owner(f"a/part{n}.csv", 2) == 1 for n in (4, 8, 9, 12))
    data, state, out = _data(tmp_path, [1, 2, 3, 4]), tmp_path / "state", tmp_path / "out"
    os.environ.update(PRIOR="", ADD="8,9,12", CRASH_AFTER="2")
    try:
        crashed = spawn(2, PROGRAM, ".", str(state), str(out), cwd=data, timeout=150)
    finally:
        for name in ("PRIOR", "ADD", "CRASH_AFTER"):
            os.environ.pop(name, None)
    assert crashed.returncode != 0
    assert "worker 1" in crashed.stderr
    manifests = [int(p.stem) for p in (state / "checkpoints").iterdir()]
    chunks = [p.name for p in (state / "chunks").rglob("*-w1.ipc")]
    numbers = [int(re.match(r"(\d+)", name).group(1)) for name in chunks]  # type: ignore[union-attr]
    # Worker 1 stored its chunks of a checkpoint whose manifest was never written.
    assert max(numbers) > max(manifests)
    assert len(numbers) >= 2

    # (Static mode: the run ends once it has read everything; the checkpoint is the same.)
    log = _run(2, data, state, out, [], ADD="8,9,12", MODE="static")
    assert "resuming from checkpoint" in log
    assert consolidated([out]) == expected(data)
