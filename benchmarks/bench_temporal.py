"""Temporal operators: windows, temporal joins, streaming windows and memory with a cutoff.

One script, six figures (issue #11), each the same program on deltaflow and on Pathway:

* ``tumbling``: BENCH_ROWS events (default 1,000,000) over one hour of int seconds, tumbling
  1-minute windows per key (1,000 keys), count + sum, static.
* ``sliding``: BENCH_ROWS events over one hour, sliding windows hop 1 s, duration 60 s (each
  event in 60 windows), count + sum per window, static.
* ``asof``: BENCH_ROWS trades x BENCH_ROWS quotes over 1,000 symbols, asof join (left,
  backward) on the symbol, then count + sum of the matched prices.
* ``interval``: BENCH_INTERVAL_ROWS x BENCH_INTERVAL_ROWS (default 200,000) over 1,000 keys,
  interval join within [-100, 100] on the key, then count.
* ``streaming``: a Python subject emits BENCH_RATE events/s (default 20,000) in commits of
  100 for BENCH_SECONDS (default 5) into tumbling 1-second windows per key (1,000 keys);
  p50/p95/p99 of the time from a commit to the end of the first time whose output shows it
  (as bench_streaming.py measures), the first second skipped.
* ``memory``: BENCH_MEMORY_ROWS events (default 10,000,000) with increasing times (one event
  per key and time unit) through tumbling windows of 100 units per key (100 events each) with
  ``common_behavior(cutoff=100)``, and the same
  pipeline without a behavior; the process's peak RSS (VmHWM) when 1/10, 1/2 and all of the
  events have been processed (at 10M: 1M, 5M, 10M). Each variant runs in its own process.

BENCH_TEMPORAL selects figures (comma-separated names, default all). The static figures are the
median of BENCH_REPEATS runs (default 1).

Environment: BENCH_IMPL, BENCH_ROWS, BENCH_INTERVAL_ROWS, BENCH_RATE, BENCH_SECONDS,
BENCH_MEMORY_ROWS, BENCH_TEMPORAL, BENCH_REPEATS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_float, env_int, impl, load_pw, report
from bench_streaming import clear_graph, percentile
from bench_wordcount import measure

KEYS = 1_000
HOUR = 3_600
FIGURES = ("tumbling", "sliding", "asof", "interval", "streaming", "memory")


# --- static figures ------------------------------------------------------------------------


def events_frame(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "t": rng.integers(0, HOUR, size=rows, dtype=np.int64),
            "k": rng.integers(0, KEYS, size=rows, dtype=np.int64),
            "v": rng.integers(0, 100, size=rows, dtype=np.int64),
        }
    )


def tumbling(pw: Any, rows: int, repeats: int) -> None:
    frame = events_frame(rows)

    def work() -> pd.DataFrame:
        events = pw.debug.table_from_pandas(frame)
        windows = events.windowby(
            pw.this.t, window=pw.temporal.tumbling(duration=60), instance=pw.this.k
        ).reduce(
            k=pw.this._pw_instance,
            start=pw.this._pw_window_start,
            n=pw.reducers.count(),
            total=pw.reducers.sum(pw.this.v),
        )
        return pw.debug.table_to_pandas(windows)

    out = measure("tumbling", rows, repeats, work, pw)
    expected = frame.groupby([frame.t // 60, frame.k]).size()
    if (
        len(out) != len(expected)
        or int(out["n"].sum()) != rows
        or int(out["total"].sum()) != int(frame["v"].sum())
    ):
        raise SystemExit(f"tumbling: wrong result ({len(out)} windows, {out['n'].sum()} rows)")
    report("tumbling_windows", len(out), "rows", "higher")


def sliding(pw: Any, rows: int, repeats: int) -> None:
    frame = events_frame(rows, seed=4)

    def work() -> pd.DataFrame:
        events = pw.debug.table_from_pandas(frame)
        windows = events.windowby(pw.this.t, window=pw.temporal.sliding(hop=1, duration=60)).reduce(
            start=pw.this._pw_window_start, n=pw.reducers.count(), total=pw.reducers.sum(pw.this.v)
        )
        return pw.debug.table_to_pandas(windows)

    out = measure("sliding", rows, repeats, work, pw)
    if int(out["n"].sum()) != 60 * rows:
        raise SystemExit(f"sliding: wrong result ({out['n'].sum()} window rows)")
    report("sliding_windows", len(out), "rows", "higher")


def asof(pw: Any, rows: int, repeats: int) -> None:
    rng = np.random.default_rng(5)
    # Quote times are distinct and even, trade times odd: no ties, so that both libraries
    # must find exactly the same quotes (ties are broken by row ids, which differ).
    trades = pd.DataFrame(
        {
            "sym": rng.integers(0, KEYS, size=rows, dtype=np.int64),
            "t": 2 * rng.integers(0, rows, size=rows, dtype=np.int64) + 1,
            "qty": rng.integers(1, 10, size=rows, dtype=np.int64),
        }
    )
    quotes = pd.DataFrame(
        {
            "sym": rng.integers(0, KEYS, size=rows, dtype=np.int64),
            "t": 2 * rng.permutation(rows).astype(np.int64),
            "price": rng.integers(100, 200, size=rows, dtype=np.int64),
        }
    )

    def work() -> pd.DataFrame:
        left = pw.debug.table_from_pandas(trades)
        right = pw.debug.table_from_pandas(quotes)
        joined = left.asof_join(
            right,
            left.t,
            right.t,
            left.sym == right.sym,
            how=pw.JoinMode.LEFT,
            defaults={right.price: 0},
        ).select(qty=left.qty, price=right.price)
        totals = joined.reduce(n=pw.reducers.count(), total=pw.reducers.sum(pw.this.price))
        return pw.debug.table_to_pandas(totals)

    out = measure("asof", 2 * rows, repeats, work, pw)
    if int(out["n"].iloc[0]) != rows:
        raise SystemExit(f"asof: wrong result ({out['n'].iloc[0]} rows)")
    report("asof_price_total", float(out["total"].iloc[0]), "", "higher")


def interval(pw: Any, rows: int, repeats: int) -> None:
    rng = np.random.default_rng(6)
    span = 20_000
    left_frame = pd.DataFrame(
        {
            "k": rng.integers(0, KEYS, size=rows, dtype=np.int64),
            "t": rng.integers(0, span, size=rows, dtype=np.int64),
        }
    )
    right_frame = pd.DataFrame(
        {
            "k": rng.integers(0, KEYS, size=rows, dtype=np.int64),
            "t": rng.integers(0, span, size=rows, dtype=np.int64),
        }
    )

    def work() -> pd.DataFrame:
        left = pw.debug.table_from_pandas(left_frame)
        right = pw.debug.table_from_pandas(right_frame)
        joined = left.interval_join(
            right, left.t, right.t, pw.temporal.interval(-100, 100), left.k == right.k
        ).select(lt=left.t, rt=right.t)
        return pw.debug.table_to_pandas(joined.reduce(n=pw.reducers.count()))

    out = measure("interval", 2 * rows, repeats, work, pw)
    report("interval_matches", int(out["n"].iloc[0]), "rows", "higher")


# --- streaming latency ---------------------------------------------------------------------


def streaming(pw: Any) -> None:
    rate = env_int("BENCH_RATE", 20_000)
    seconds = env_float("BENCH_SECONDS", 5.0)
    per_commit = 100
    period = per_commit / rate
    commit_times: list[float] = []
    latencies: list[float] = []
    state = {"max_seq": -1, "done_upto": -1}
    lock = threading.Lock()

    class Event(pw.Schema):
        k: int
        t: int
        v: int
        seq: int

    class Paced(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            start = time.perf_counter()
            seq = 0
            while time.perf_counter() - start < seconds:
                delay = start + seq * period - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                base = seq * per_commit
                # Event time in milliseconds follows the wall clock of the schedule.
                event_ms = int(seq * period * 1000)
                for i in range(per_commit):
                    self.next(k=(base + i) % KEYS, t=event_ms, v=i, seq=seq)
                with lock:
                    commit_times.append(time.perf_counter())
                self.commit()
                seq += 1

    events = pw.io.python.read(Paced(), schema=Event, autocommit_duration_ms=10)
    windows = events.windowby(
        pw.this.t, window=pw.temporal.tumbling(duration=1000), instance=pw.this.k
    ).reduce(
        k=pw.this._pw_instance,
        n=pw.reducers.count(),
        total=pw.reducers.sum(pw.this.v),
        last=pw.reducers.max(pw.this.seq),
    )

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        if is_addition and row["last"] > state["max_seq"]:
            state["max_seq"] = row["last"]

    def on_time_end(time_: int) -> None:
        now = time.perf_counter()
        with lock:
            for seq in range(state["done_upto"] + 1, state["max_seq"] + 1):
                if seq < len(commit_times):
                    latencies.append(now - commit_times[seq])
        state["done_upto"] = max(state["done_upto"], state["max_seq"])

    pw.io.subscribe(windows, on_change, on_time_end=on_time_end)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    if len(latencies) < 0.9 * len(commit_times):
        raise SystemExit(
            f"streaming: only {len(latencies)} of {len(commit_times)} commits were seen"
        )
    measured = latencies[int(rate / per_commit) :] or latencies
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        report(f"streaming_latency_{name}_ms", percentile(measured, q) * 1000, "ms", "lower")


# --- memory with and without a cutoff ------------------------------------------------------


def peak_rss_mb() -> float:
    """The process's peak resident set so far (VmHWM), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_variant(pw: Any, rows: int, cutoff: bool) -> dict[int, float]:
    """Run the pipeline once; the peak RSS when each checkpoint count of rows was done."""
    batch = 50_000
    checkpoints = sorted({max(batch, rows // 10), max(batch, rows // 2), rows})
    reached: dict[int, float] = {}
    sent = [0]
    seen = [0]

    class Event(pw.Schema):
        k: int
        t: int
        v: int

    class Flood(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for start in range(0, rows, batch):
                for i in range(start, min(rows, start + batch)):
                    # One event per key and unit of time: times only grow.
                    self.next(k=i % KEYS, t=i // KEYS, v=i % 7)
                self.commit()
                sent[0] = min(rows, start + batch)
                # Stay at most a few batches ahead: the figure is the pipeline's memory,
                # not a queue of unprocessed input.
                while sent[0] - seen[0] > 2 * batch:
                    time.sleep(0.001)

    events = pw.io.python.read(Flood(), schema=Event, autocommit_duration_ms=50)
    behavior = pw.temporal.common_behavior(cutoff=100) if cutoff else None
    windows = events.windowby(
        pw.this.t, window=pw.temporal.tumbling(duration=100), instance=pw.this.k, behavior=behavior
    ).reduce(k=pw.this._pw_instance, n=pw.reducers.count(), last=pw.reducers.max(pw.this.t))

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        if is_addition:
            seen[0] = max(seen[0], (row["last"] + 1) * KEYS)

    def on_time_end(time_: int) -> None:
        for mark in checkpoints:
            if mark not in reached and seen[0] >= mark - KEYS:
                reached[mark] = peak_rss_mb()

    pw.io.subscribe(windows, on_change, on_time_end=on_time_end)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    for mark in checkpoints:
        reached.setdefault(mark, peak_rss_mb())
    return reached


def memory(pw: Any) -> None:
    """Each variant in a fresh process (peak RSS never goes down)."""
    for variant in ("cutoff", "no_behavior"):
        env = dict(os.environ, BENCH_MEMORY_VARIANT=variant)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, __file__], env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            raise SystemExit(f"memory ({variant}) failed")
        for line in result.stdout.splitlines():
            if line.startswith("MEMORY "):
                _, mark, megabytes = line.split()
                report(
                    f"memory_{variant}_peak_rss_at_{_count(int(mark))}_mb",
                    float(megabytes),
                    "MB",
                    "lower",
                )
        report(f"memory_{variant}_seconds", time.perf_counter() - started, "s", "lower")


def _count(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def memory_child(variant: str) -> None:
    pw = load_pw()
    rows = env_int("BENCH_MEMORY_ROWS", 10_000_000)
    for mark, megabytes in sorted(memory_variant(pw, rows, variant == "cutoff").items()):
        print(f"MEMORY {mark} {megabytes:.1f}", flush=True)


# --- entry point ---------------------------------------------------------------------------


def main() -> None:
    variant = os.environ.get("BENCH_MEMORY_VARIANT")
    if variant:
        memory_child(variant)
        return
    selected = [
        f.strip()
        for f in os.environ.get("BENCH_TEMPORAL", ",".join(FIGURES)).split(",")
        if f.strip()
    ]
    unknown = sorted(set(selected) - set(FIGURES))
    if unknown:
        raise SystemExit(f"BENCH_TEMPORAL: unknown figures {unknown}; choose from {FIGURES}")
    rows = env_int("BENCH_ROWS", 1_000_000)
    interval_rows = env_int("BENCH_INTERVAL_ROWS", 200_000)
    repeats = max(1, env_int("BENCH_REPEATS", 1))
    banner(f"temporal figures={','.join(selected)} rows={rows} interval_rows={interval_rows}")
    pw = load_pw()
    static = {
        "tumbling": lambda: tumbling(pw, rows, repeats),
        "sliding": lambda: sliding(pw, rows, repeats),
        "asof": lambda: asof(pw, rows, repeats),
        "interval": lambda: interval(pw, interval_rows, repeats),
    }
    for figure in selected:
        started = time.perf_counter()
        if figure in static:
            static[figure]()
        elif figure == "streaming":
            clear_graph(pw)
            streaming(pw)
        else:
            memory(pw)
        print(f"# {figure} on {impl()}: {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
