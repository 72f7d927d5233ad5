"""Latency of single-row updates against a large groupby state (issue #13).

A Python subject first loads BENCH_STATE rows (default 1,000,000; keys over BENCH_STATE / 10
groups) in commits of 100,000, then sends BENCH_UPDATES (default 1,000) single-row commits,
each BENCH_GAP_MS (default 3) after the previous update's result came out. The pipeline is
``groupby(k).reduce(count, sum)`` + ``pw.io.subscribe``. An update's latency is the time from its
``commit()`` to the end of the time that holds it (``on_time_end``); the subject waits for it
before the next update, so updates never queue behind each other.

BENCH_MODE: ``insert`` (each update inserts a new row) or ``upsert`` (the subject is an upsert
session with a primary key; each update replaces an existing row's value). BENCH_KEY_TYPE:
``int`` (the default) or ``str`` (each row's ``id`` is its number's decimal text: an upsert
session then hashes text keys and stores a text column).
BENCH_PIPELINE: ``groupby`` (the default, above) or ``passthrough``: the input table goes to
``pw.io.subscribe`` as it is, which measures the floor of a framework's commit-to-callback path
(hand-offs between threads, a time's fixed cost) with no operator work.

Reported: p50, p95, max and the number of updates over 10 ms, in milliseconds.
Environment: BENCH_IMPL, BENCH_STATE, BENCH_UPDATES, BENCH_GAP_MS, BENCH_MODE, BENCH_KEY_TYPE,
BENCH_PIPELINE.
"""

from __future__ import annotations

import os
import threading
import time

from _harness import banner, env_float, env_int, load_pw, report

LOAD_COMMIT = 100_000


def main() -> None:
    pw = load_pw()
    state_rows = env_int("BENCH_STATE", 1_000_000)
    updates = env_int("BENCH_UPDATES", 1000)
    gap = env_float("BENCH_GAP_MS", 3.0) / 1000
    mode = os.environ.get("BENCH_MODE", "insert")
    if mode not in ("insert", "upsert"):
        raise SystemExit("BENCH_MODE must be insert or upsert")
    pipeline = os.environ.get("BENCH_PIPELINE", "groupby")
    if pipeline not in ("groupby", "passthrough"):
        raise SystemExit("BENCH_PIPELINE must be groupby or passthrough")
    what = "a groupby" if pipeline == "groupby" else "a pass-through table"
    banner(f"single-row {mode}s against {what} over {state_rows:,} rows")
    groups = max(1, state_rows // 10)
    time_ended = threading.Event()
    latencies: list[float] = []

    key_type = os.environ.get("BENCH_KEY_TYPE", "int")
    if key_type not in ("int", "str"):
        raise SystemExit("BENCH_KEY_TYPE must be int or str")
    key_of = str if key_type == "str" else int
    # Built from a dict: a class body's annotations are strings here (future annotations).
    key = pw.column_definition(dtype=key_of, primary_key=mode == "upsert")
    Row = pw.schema_builder(
        {"id": key, "k": pw.column_definition(dtype=int), "v": pw.column_definition(dtype=int)}
    )

    class Updates(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for start in range(0, state_rows, LOAD_COMMIT):
                time_ended.clear()
                for i in range(start, min(state_rows, start + LOAD_COMMIT)):
                    self.next(id=key_of(i), k=i % groups, v=1)
                self.commit()
                time_ended.wait(120)
            time.sleep(1.0)  # let background work of the load settle
            for n in range(updates):
                row = n % state_rows if mode == "upsert" else state_rows + n
                time_ended.clear()
                committed = time.perf_counter()
                self.next(id=key_of(row), k=(n * 7919) % groups, v=2)
                self.commit()
                if not time_ended.wait(10):
                    raise SystemExit(f"update {n} never came out")
                latencies.append(time.perf_counter() - committed)
                time.sleep(gap)

    session = {"session_type": "upsert"} if mode == "upsert" else {}
    table = pw.io.python.read(Updates(**session), schema=Row, autocommit_duration_ms=None)
    if pipeline == "passthrough":
        totals = table
    else:
        totals = table.groupby(pw.this.k).reduce(
            pw.this.k, n=pw.reducers.count(), total=pw.reducers.sum(pw.this.v)
        )
    pw.io.subscribe(
        totals, lambda key, row, time, is_addition: None, on_time_end=lambda time: time_ended.set()
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    ordered = sorted(latencies)
    if len(ordered) != updates:
        raise SystemExit(f"only {len(ordered)} of {updates} updates measured")
    name = mode if pipeline == "groupby" else f"passthrough_{mode}"
    report(f"{name}_p50_ms", ordered[len(ordered) // 2] * 1000, "ms", "lower")
    report(f"{name}_p95_ms", ordered[int(0.95 * len(ordered))] * 1000, "ms", "lower")
    report(f"{name}_max_ms", ordered[-1] * 1000, "ms", "lower")
    report(f"{name}_over_10ms", sum(1 for v in ordered if v > 0.010), "updates", "lower")


if __name__ == "__main__":
    main()
