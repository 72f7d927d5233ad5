"""select + filter over an in-memory table, end to end.

pandas DataFrame -> pw.debug.table_from_pandas -> select (arithmetic) -> filter
-> pw.debug.table_to_pandas, timed as one block; the same work in plain Polars is the baseline.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS (default 1_000_000).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _harness import banner, env_int, load_pw, report, timed


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    a = np.arange(rows, dtype=np.int64)
    b = rng.integers(0, 1_000, size=rows, dtype=np.int64)
    keys = np.array([f"key{i:04d}" for i in range(1_000)], dtype=object)
    s = keys[rng.integers(0, len(keys), size=rows)]
    return pd.DataFrame({"a": a, "b": b, "s": s})


def expected_rows(df: pd.DataFrame) -> int:
    c = df["a"].to_numpy() * 2 + df["b"].to_numpy()
    return int(((c % 3) != 0).sum())


def run_pw(df: pd.DataFrame) -> int:
    pw = load_pw()
    t = pw.debug.table_from_pandas(df)
    t = t.select(pw.this.s, c=pw.this.a * 2 + pw.this.b, d=pw.this.b * 0.5 - 1)
    t = t.filter(pw.this.c % 3 != 0)
    out = pw.debug.table_to_pandas(t)
    return len(out)


def run_polars(df: pd.DataFrame) -> int | None:
    try:
        import polars as pl
    except ImportError:  # the Pathway interpreter need not have Polars
        return None
    out = (
        pl.from_pandas(df)
        .select(pl.col("s"), c=pl.col("a") * 2 + pl.col("b"), d=pl.col("b") * 0.5 - 1)
        .filter(pl.col("c") % 3 != 0)
        .to_pandas()
    )
    return len(out)


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    banner(f"select_filter rows={rows}")
    df = make_frame(rows)
    want = expected_rows(df)

    with timed("end_to_end", rows=rows):
        got = run_pw(df)
    if got != want:
        raise SystemExit(f"wrong result: {got} rows, expected {want}")
    report("output_rows", got, "rows", "higher")

    try:
        import polars  # noqa: F401
    except ImportError:
        return
    with timed("polars_end_to_end", rows=rows):
        got = run_polars(df)
    if got != want:
        raise SystemExit(f"polars baseline wrong: {got} rows, expected {want}")


if __name__ == "__main__":
    main()
