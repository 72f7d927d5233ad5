"""A join of BENCH_ROWS x BENCH_RIGHT rows followed by a groupby, end to end.

orders(k, v) joined with customers(k, region) on k, then per region: sum(v) and count.
Plain Polars (join + group_by) is the baseline.

Every figure is the median of BENCH_REPEATS runs (default 3), ``*_first_seconds`` the first
run alone (slower for every library: its memory is touched for the first time).

Environment: BENCH_IMPL, BENCH_ROWS (default 1_000_000), BENCH_RIGHT (default 100_000),
BENCH_GROUPS (default 1_000), BENCH_REPEATS (default 3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_int, load_pw, report
from bench_wordcount import measure


def make_frames(rows: int, right: int, groups: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    orders = pd.DataFrame(
        {
            "k": rng.integers(0, right, size=rows, dtype=np.int64),
            "v": rng.integers(0, 100, size=rows, dtype=np.int64),
        }
    )
    customers = pd.DataFrame(
        {
            "k": np.arange(right, dtype=np.int64),
            "region": rng.integers(0, groups, size=right, dtype=np.int64),
        }
    )
    return orders, customers


def run_pw(pw: Any, orders: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    left = pw.debug.table_from_pandas(orders)
    right = pw.debug.table_from_pandas(customers)
    joined = left.join(right, left.k == right.k).select(right.region, left.v)
    totals = joined.groupby(joined.region).reduce(
        joined.region, total=pw.reducers.sum(joined.v), n=pw.reducers.count()
    )
    return pw.debug.table_to_pandas(totals)


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    right = env_int("BENCH_RIGHT", 100_000)
    groups = env_int("BENCH_GROUPS", 1_000)
    repeats = max(1, env_int("BENCH_REPEATS", 3))
    banner(f"join_groupby rows={rows} right={right} groups={groups} repeats={repeats}")
    orders, customers = make_frames(rows, right, groups)

    pw = load_pw()  # imports are not part of the measured work
    out = measure("end_to_end", rows + right, repeats, lambda: run_pw(pw, orders, customers), pw)
    if int(out["n"].sum()) != rows or int(out["total"].sum()) != int(orders["v"].sum()):
        raise SystemExit(f"wrong result: n={out['n'].sum()} total={out['total'].sum()}")
    report("output_rows", len(out), "rows", "higher")

    try:
        import polars as pl
    except ImportError:
        return
    result = measure(
        "polars_end_to_end",
        rows + right,
        repeats,
        lambda: (
            pl.from_pandas(orders)
            .join(pl.from_pandas(customers), on="k")
            .group_by("region")
            .agg(pl.col("v").sum().alias("total"), pl.len().alias("n"))
            .to_pandas()
        ),
    )
    if int(result["n"].sum()) != rows:
        raise SystemExit("polars baseline wrong")


if __name__ == "__main__":
    main()
