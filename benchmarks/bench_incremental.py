"""Per-update cost of a groupby and of a join holding large state.

For each state size N (BENCH_STATES, default 100k,1M,5M rows) the script runs each program
twice: once on the initial N rows only, and once on the initial rows concatenated with a table of
BENCH_UPDATES updates, one per time (a new row enters under a random key and the previous
update's row leaves). The difference of the two wall times divided by the number of updates is the cost
of one update, loading and output conversion excluded. A flat figure across N means an update
does not scan the state.

Programs: groupby(k).reduce(count, sum) with N/10 groups; join of N rows with N/10 rows on k.

Environment: BENCH_IMPL, BENCH_STATES, BENCH_UPDATES (default 1000).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_int, load_pw, report


def make_base(state: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "k": rng.integers(0, max(state // 10, 1), size=state, dtype=np.int64),
            "v": rng.integers(0, 100, size=state, dtype=np.int64),
        }
    )


def make_updates(state: int, updates: int) -> pd.DataFrame:
    """At each time, one new row enters and the previous update's row leaves (another key)."""
    rng = np.random.default_rng(5)
    keys = rng.integers(0, max(state // 10, 1), size=updates, dtype=np.int64)
    values = rng.integers(0, 100, size=updates, dtype=np.int64)
    times = 4 + 2 * np.arange(updates, dtype=np.int64)
    ids = np.arange(updates, dtype=np.int64) + 2 * state  # disjoint from the base rows' ids
    inserts = pd.DataFrame(
        {"k": keys, "v": values, "__time__": times, "__diff__": np.ones(updates, dtype=np.int64)},
        index=ids,
    )
    deletes = inserts.iloc[:-1].assign(__time__=times[1:], __diff__=-1)
    return pd.concat([inserts, deletes]).sort_values("__time__", kind="stable")


def run(
    pw: Any, program: str, base: pd.DataFrame, updates: pd.DataFrame | None, right: pd.DataFrame
) -> float:
    if hasattr(pw, "clear_graph"):
        pw.clear_graph()
    started = time.perf_counter()
    table = pw.debug.table_from_pandas(base)
    if updates is not None:
        extra = pw.debug.table_from_pandas(updates)
        table = table.promise_universes_are_disjoint(extra).concat(extra)
    if program == "groupby":
        result = table.groupby(table.k).reduce(
            table.k, n=pw.reducers.count(), s=pw.reducers.sum(table.v)
        )
    else:
        other = pw.debug.table_from_pandas(right)
        result = table.join(other, table.k == other.k).select(table.v, other.w)
    pw.debug.table_to_pandas(result)
    return time.perf_counter() - started


def main() -> None:
    states = [
        int(float(s)) for s in os.environ.get("BENCH_STATES", "100000,1000000,5000000").split(",")
    ]
    updates = env_int("BENCH_UPDATES", 1000)
    banner(f"incremental states={states} updates={updates}")
    pw = load_pw()
    for state in states:
        base_rows = make_base(state)
        stream = make_updates(state, updates)
        right = pd.DataFrame(
            {
                "k": np.arange(state // 10, dtype=np.int64),
                "w": np.arange(state // 10, dtype=np.int64) % 7,
            }
        )
        right.index = right.index + 10 * state  # ids distinct from the left side's
        for program in ("groupby", "join"):
            base = run(pw, program, base_rows, None, right)
            full = run(pw, program, base_rows, stream, right)
            per_update_ms = max(full - base, 0.0) / updates * 1000
            label = f"{state // 1000}k" if state < 1_000_000 else f"{state // 1_000_000}M"
            report(f"{program}_{label}_ms_per_update", per_update_ms, "ms", "lower")
            report(f"{program}_{label}_load_seconds", base, "s", "lower")


if __name__ == "__main__":
    main()
