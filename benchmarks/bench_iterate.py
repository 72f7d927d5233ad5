"""pw.iterate: connected components of a random graph, computed once and then kept up to date.

For each graph size N (BENCH_VERTICES, default 2000,20000 vertices, 1.25 N random edges) the
program (min-label propagation in ``pw.iterate``) runs twice: on the graph alone, and on the
graph followed by BENCH_UPDATES single-edge updates, one per time (alternately an edge
deleted and a new one inserted). Figures: the first run's time (the whole fixed point) and
the extra time per update of the second run, which is what keeping the fixed point up to date
costs (loading and output conversion are in both runs and cancel).

Environment: BENCH_IMPL, BENCH_VERTICES, BENCH_UPDATES (default 20).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_int, load_pw, report


def make_edges(vertices: int, updates: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    count = vertices * 5 // 4
    base = pd.DataFrame(
        {
            "u": rng.integers(0, vertices, count, dtype=np.int64),
            "v": rng.integers(0, vertices, count, dtype=np.int64),
        }
    )
    rows = []
    for step in range(updates):
        time_ = 4 + 2 * step
        if step % 2 == 0:  # delete a base edge
            index = int(rng.integers(0, count))
            rows.append((index, *base.iloc[index], time_, -1))
        else:  # insert a new edge
            index = 10 * count + step
            rows.append((index, *rng.integers(0, vertices, 2), time_, 1))
    stream = (
        pd.DataFrame(rows, columns=["id", "u", "v", "__time__", "__diff__"])
        .drop_duplicates("id")
        .set_index("id")
    )
    return base, stream


def components(pw: Any, edges: Any) -> Any:
    both = edges.concat_reindex(edges.select(u=pw.this.v, v=pw.this.u))
    labels = both.groupby(pw.this.u).reduce(vertex=pw.this.u, label=pw.this.u)

    def step(labels: Any, both: Any) -> Any:
        offered = both.join(labels, both.v == labels.vertex).select(
            vertex=pw.left.u, label=pw.right.label
        )
        best = offered.groupby(pw.this.vertex).reduce(
            pw.this.vertex, label=pw.reducers.min(pw.this.label)
        )
        joined = labels.join_left(best, labels.vertex == best.vertex, id=labels.id).select(
            labels.vertex, own=labels.label, offered=pw.coalesce(best.label, labels.label)
        )
        return {
            "labels": joined.select(
                pw.this.vertex,
                label=pw.if_else(pw.this.offered < pw.this.own, pw.this.offered, pw.this.own),
            )
        }

    return pw.iterate(step, labels=labels, both=both).labels


def run(pw: Any, base: pd.DataFrame, stream: pd.DataFrame | None) -> float:
    """Wall time of the program on the base edges (at time 2) and the update ``stream``."""
    if hasattr(pw, "clear_graph"):
        pw.clear_graph()
    started = time.perf_counter()
    rows = base.assign(__time__=2, __diff__=1)
    if stream is not None:  # deletions carry the base rows' ids
        rows = pd.concat([rows, stream])
    pw.debug.table_to_pandas(components(pw, pw.debug.table_from_pandas(rows)))
    return time.perf_counter() - started


def main() -> None:
    sizes = [int(float(s)) for s in os.environ.get("BENCH_VERTICES", "2000,20000").split(",")]
    updates = env_int("BENCH_UPDATES", 20)
    banner(f"iterate (connected components) vertices={sizes} updates={updates}")
    pw = load_pw()
    for vertices in sizes:
        base, stream = make_edges(vertices, updates)
        static = run(pw, base, None)
        full = run(pw, base, stream)
        per_update_ms = max(full - static, 0.0) / updates * 1000
        report(f"components_{vertices}_static_seconds", static, "s", "lower")
        report(f"components_{vertices}_per_update_ms", per_update_ms, "ms", "lower")


if __name__ == "__main__":
    main()
