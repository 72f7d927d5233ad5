"""Operators partitioned by row id or instance on 1 and 2 worker processes.

BENCH_ROWS rows (default 2,000,000; columns ``key`` distinct, ``g = key % 50``, a time ``t``
and a value ``v``) in 32 CSV files, and a quarter as many updates in 8 files, are read by
``pw.io.csv.read(directory, mode="static")`` (one commit) on every worker, each its share of
the files, and run through one of these pipelines (BENCH_KEYED_CASES, comma-separated):

* ``update_rows``: both tables reindexed by ``key``, ``update_rows`` (partitioned by row id),
  then a reduce by ``g``;
* ``deduplicate``: ``deduplicate(value=t, instance=key % 500)`` with a Python acceptor
  (partitioned by the instance);
* ``windows``: tumbling windows of 1,000 by ``t`` with instance ``g`` and a count and sum
  (window assignment local, the reduce partitioned by window and instance);
* ``behaviors``: the same windows with ``common_behavior(delay=500, cutoff=2000)``: the
  behaviors' gates (``ignore_late``, ``buffer``, ``forget``) run on every worker with the
  frontier they agree on (the first by row id, the others where the rows are), then the
  reduce (``keep_results=True``: the forgotten windows' results stay);
* ``gates_by_instance``: Pathway's private gates with an instance, ``_buffer`` (until the
  frontier of the row's ``g`` passes ``t + 500``) then ``_forget`` (past ``t + 2000``), both
  partitioned by ``g``, then a sum per ``g``;
* ``sort``: ``sort(key=t, instance=g)`` of the updates' rows (a quarter of BENCH_ROWS: the
  sort's state is Python lists, about 45 µs a row here), then the count of rows without
  ``prev`` (partitioned by the instance).

Figures, each the median of BENCH_REPEATS runs (default 3), run interleaved with
``spawn -n 1`` and ``spawn -n 2``: ``<case>_workers<N>_run_seconds`` (the longest
``pw.run()`` among the workers) and ``<case>_speedup_2_over_1``; and the machine's 1-minute
load average before and after (``load_average_start`` / ``_end``: the machine is shared, and
on a loaded one the ratios mean little). Every run's result (the number of output rows and
the sum of one column) must be the one-worker run's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

from _harness import banner, env_int, report

PROGRAM = textwrap.dedent("""
    import json, os, sys, time
    import deltaflow as pw

    class Rows(pw.Schema):
        key: int
        g: int
        t: int
        v: int

    case, rows_dir, updates_dir, out_dir = sys.argv[1:5]
    source = updates_dir if case == "sort" else rows_dir
    rows = pw.io.csv.read(source, schema=Rows, mode="static", autocommit_duration_ms=None)
    if case == "update_rows":
        updates = pw.io.csv.read(
            updates_dir, schema=Rows, mode="static", autocommit_duration_ms=None
        )
        both = rows.with_id_from(rows.key).update_rows(updates.with_id_from(updates.key))
        result = both.groupby(both.g).reduce(both.g, s=pw.reducers.sum(both.v))
    elif case == "sort":
        links = rows.sort(key=rows.t, instance=rows.g)
        result = links.filter(links.prev.is_none()).reduce(s=pw.reducers.count())
    elif case == "gates_by_instance":
        held = rows._buffer(rows.t + 500, rows.t, instance_column=rows.g)
        kept = held._forget(held.t + 2000, held.t, False, instance_column=held.g)
        result = kept.groupby(kept.g).reduce(kept.g, s=pw.reducers.sum(kept.v))
    elif case == "deduplicate":
        kept = rows.deduplicate(
            value=rows.t, instance=rows.key % 500, acceptor=lambda new, old: new > old
        )
        result = kept.select(s=kept.t)
    else:
        behavior = None
        if case == "behaviors":
            behavior = pw.temporal.common_behavior(delay=500, cutoff=2000)
        result = rows.windowby(
            rows.t, window=pw.temporal.tumbling(duration=1000), instance=rows.g,
            behavior=behavior,
        ).reduce(n=pw.reducers.count(), s=pw.reducers.sum(pw.this.v))
    got = {}

    def on_change(key, row, time, is_addition):
        if is_addition:
            got[repr(key)] = row["s"]
        elif got.get(repr(key)) == row["s"]:
            del got[repr(key)]

    pw.io.subscribe(result, on_change=on_change)
    started = time.perf_counter()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    seconds = time.perf_counter() - started
    process = os.environ.get("PATHWAY_PROCESS_ID", "0")
    with open(os.path.join(out_dir, f"out-{process}.json"), "w") as out:
        json.dump({"seconds": seconds, "rows": len(got), "sum": sum(got.values())}, out)
""")


def write_rows(directory: str, rows: int, distinct: int, files: int, seed: int) -> None:
    """``rows`` rows over ``files`` CSV files; ``key`` drawn from ``distinct`` values, each at
    most once."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory)
    key = rng.permutation(distinct)[:rows]
    columns = [key, key % 50, rng.integers(0, 200_000, rows), rng.integers(0, 100, rows)]
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for file in range(files):
        part = slice(bounds[file], bounds[file + 1])
        with open(os.path.join(directory, f"part-{file:03d}.csv"), "w") as out:
            out.write("key,g,t,v\n")
            out.write("\n".join(",".join(map(str, r)) for r in zip(*(c[part] for c in columns))))
            out.write("\n")


def run_once(workers: int, program: str, case: str, tmp: str) -> tuple[float, tuple[int, int]]:
    """The longest ``pw.run()`` of the workers, and worker 0's result (rows, sum)."""
    out = tempfile.mkdtemp(dir=tmp)
    command = [sys.executable, "-m", "deltaflow", "spawn", "-n", str(workers), sys.executable,
               program, case, os.path.join(tmp, "rows"), os.path.join(tmp, "updates"), out]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PATHWAY_PROCESSES",)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{case} on {workers} workers failed:\n{done.stderr[-3000:]}")
    results = []
    for name in sorted(os.listdir(out)):
        with open(os.path.join(out, name)) as file:
            results.append(json.load(file))
    return max(r["seconds"] for r in results), (results[0]["rows"], results[0]["sum"])


def main() -> None:
    rows = env_int("BENCH_ROWS", 2_000_000)
    repeats = env_int("BENCH_REPEATS", 3)
    cases = os.environ.get(
        "BENCH_KEYED_CASES", "update_rows,deduplicate,windows,behaviors,gates_by_instance,sort"
    ).split(",")
    banner(f"workers keyed operators rows={rows} repeats={repeats} cases={','.join(cases)}")
    report("load_average_start", os.getloadavg()[0], "", "lower")
    with tempfile.TemporaryDirectory() as tmp:
        write_rows(os.path.join(tmp, "rows"), rows, rows, 32, 1)
        write_rows(os.path.join(tmp, "updates"), rows // 4, rows, 8, 2)
        program = os.path.join(tmp, "program.py")
        with open(program, "w") as out:
            out.write(PROGRAM)
        for case in cases:
            seconds: dict[int, list[float]] = {1: [], 2: []}
            expected = None
            for _ in range(repeats):
                for workers in (1, 2):
                    took, result = run_once(workers, program, case, tmp)
                    expected = expected or result
                    if result != expected:
                        raise SystemExit(f"{case}: {workers} workers gave {result}, not {expected}")
                    seconds[workers].append(took)
            medians = {w: statistics.median(v) for w, v in seconds.items()}
            for workers, median in medians.items():
                report(f"{case}_workers{workers}_run_seconds", median, "s", "lower")
            report(f"{case}_speedup_2_over_1", medians[1] / medians[2], "x", "higher")
    report("load_average_end", os.getloadavg()[0], "", "lower")


if __name__ == "__main__":
    main()
