"""Streaming latency and throughput of a Python source through select + groupby + subscribe.

Latency: a ConnectorSubject emits BENCH_RATE rows/s (default 20,000) in commits of 100 rows
for BENCH_SECONDS (default 5) with ``autocommit_duration_ms=10``; the pipeline is a select, a
groupby over 1,000 keys (count, sum, max of the commit number) and ``pw.io.subscribe``. A
commit's latency is the time from its ``commit()`` to the end of the first time whose
subscribed changes show a commit number at least as large (every commit up to that number is
then fully reflected). p50/p95/p99 are reported, skipping the first second (warm-up).

Throughput: the same pipeline, the subject pushing BENCH_ROWS rows (default 2,000,000) as fast
as it can, committing every 10,000 rows; rows/s from the first row sent to the end of the run.

Commit per row: the same pipeline, the subject committing after every one of BENCH_ROW_COMMITS
rows (default 50,000) as fast as it can (a common way to write a subject); rows/s as above.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS, BENCH_ROW_COMMITS, BENCH_RATE,
BENCH_COMMIT_ROWS (rows per latency commit, default 100), BENCH_SECONDS,
BENCH_REPEAT (default 1: latency runs in one process; each percentile reported is the median of
the runs' values, which damps the noise of a shared machine).
"""

from __future__ import annotations

import threading
import time

from _harness import banner, env_float, env_int, load_pw, report

KEYS = 1000


def build(pw, subject, *, autocommit_ms: int) -> dict:
    class Event(pw.Schema):
        k: int
        v: int
        seq: int

    state = {"max_seq": -1, "rows": 0}
    table = pw.io.python.read(subject, schema=Event, autocommit_duration_ms=autocommit_ms)
    doubled = table.select(pw.this.k, pw.this.seq, w=pw.this.v * 2)
    totals = doubled.groupby(pw.this.k).reduce(
        pw.this.k,
        n=pw.reducers.count(),
        total=pw.reducers.sum(pw.this.w),
        last=pw.reducers.max(pw.this.seq),
    )

    def on_change(key, row, time, is_addition) -> None:
        if is_addition and row["last"] > state["max_seq"]:
            state["max_seq"] = row["last"]

    def on_time_end(time_) -> None:
        callback = state.get("on_time_end")
        if callback is not None:
            callback(state["max_seq"])

    pw.io.subscribe(totals, on_change, on_time_end=on_time_end)
    return state


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(pw) -> None:
    repeat = max(1, env_int("BENCH_REPEAT", 1))
    runs = []
    for run in range(repeat):
        if run:
            clear_graph(pw)
        runs.append(latency_run(pw))
    for name in ("p50", "p95", "p99"):
        values = sorted(r[name] for r in runs)
        report(f"latency_{name}_ms", values[len(values) // 2] * 1000, "ms", "lower")


def clear_graph(pw) -> None:
    if hasattr(pw, "clear_graph"):
        pw.clear_graph()
    else:
        pw.internals.parse_graph.G.clear()


def latency_run(pw) -> dict[str, float]:
    """One latency measurement: the p50/p95/p99 commit latencies in seconds."""
    rate = env_int("BENCH_RATE", 20_000)
    seconds = env_float("BENCH_SECONDS", 5.0)
    per_commit = env_int("BENCH_COMMIT_ROWS", 100)
    period = per_commit / rate
    commit_times: list[float] = []
    latencies: list[float] = []
    done_upto = [-1]
    lock = threading.Lock()

    class Paced(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            start = time.perf_counter()
            seq = 0
            while time.perf_counter() - start < seconds:
                delay = start + seq * period - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # not a busy-wait: that would hold the GIL
                base = seq * per_commit
                for i in range(per_commit):
                    self.next(k=(base + i) % KEYS, v=i, seq=seq)
                with lock:
                    commit_times.append(time.perf_counter())
                self.commit()
                seq += 1

    state = build(pw, Paced(), autocommit_ms=10)

    def on_time_end(max_seq: int) -> None:
        now = time.perf_counter()
        with lock:
            for seq in range(done_upto[0] + 1, max_seq + 1):
                if seq < len(commit_times):
                    latencies.append(now - commit_times[seq])
        done_upto[0] = max(done_upto[0], max_seq)

    state["on_time_end"] = on_time_end
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    warm = int(rate / per_commit)  # skip the first second
    measured = latencies[warm:] or latencies
    if len(latencies) < 0.9 * len(commit_times):
        raise SystemExit(f"only {len(latencies)} of {len(commit_times)} commits were seen")
    return {
        name: percentile(measured, q) for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
    }


def throughput(pw) -> None:
    rows = env_int("BENCH_ROWS", 2_000_000)
    started = [0.0]

    class Flood(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            started[0] = time.perf_counter()
            for i in range(rows):
                self.next(k=i % KEYS, v=i % 7, seq=i // 10_000)
                if i % 10_000 == 9_999:
                    self.commit()

    state = build(pw, Flood(), autocommit_ms=1500)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    elapsed = time.perf_counter() - started[0]
    if state["max_seq"] != (rows - 1) // 10_000:
        raise SystemExit(f"wrong result: last commit seen {state['max_seq']}")
    report("throughput_rows_per_s", rows / elapsed, "rows/s", "higher")
    report("throughput_seconds", elapsed, "s", "lower")


def commit_per_row(pw) -> None:
    rows = env_int("BENCH_ROW_COMMITS", 50_000)
    started = [0.0]

    class Chatty(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            started[0] = time.perf_counter()
            for i in range(rows):
                self.next(k=i % KEYS, v=i % 7, seq=i)
                self.commit()

    state = build(pw, Chatty(), autocommit_ms=1500)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    elapsed = time.perf_counter() - started[0]
    if state["max_seq"] != rows - 1:
        raise SystemExit(f"wrong result: last row seen {state['max_seq']}")
    report("commit_per_row_rows_per_s", rows / elapsed, "rows/s", "higher")


def main() -> None:
    banner("streaming: python subject -> select -> groupby(1000 keys) -> subscribe")
    pw = load_pw()
    latency(pw)
    clear_graph(pw)
    throughput(pw)
    clear_graph(pw)
    commit_per_row(pw)


if __name__ == "__main__":
    main()
