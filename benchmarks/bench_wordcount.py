"""Static word count: groupby(word).reduce(count), end to end, from two inputs.

1. pandas DataFrame of words -> pw.debug.table_from_pandas -> groupby/reduce(count)
   -> pw.debug.table_to_pandas (figures ``end_to_end_*``);
2. the same words in a CSV file -> pw.io.csv.read(mode="static") -> groupby/reduce(count)
   -> pw.debug.table_to_pandas (figures ``csv_end_to_end_*``).

The same work in plain Polars (from_pandas or read_csv, group_by + len, to_pandas) is the
baseline of each.

Every figure is the median of BENCH_REPEATS runs (default 3; the graph is cleared between
them); ``*_first_seconds`` is the first run alone. The first run of a process is slower for
every library: the memory it works in is touched for the first time (page faults), later runs
reuse what the allocator kept. Imports happen before any timing.

Environment: BENCH_IMPL, BENCH_ROWS (default 1_000_000), BENCH_VOCABULARY (default 100_000),
BENCH_REPEATS (default 3).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_int, load_pw, report


def clear(pw: Any) -> None:
    """Forget the tables of the previous repetition."""
    if hasattr(pw, "clear_graph"):
        pw.clear_graph()
    else:  # Pathway keeps its graph in a module-level object
        from pathway.internals.parse_graph import G

        G.clear()


def measure(name: str, rows: int, repeats: int, work: Callable[[], Any], pw: Any = None) -> Any:
    """Run ``work`` ``repeats`` times; report the median in seconds (and, for ``pw``'s work,
    the first run: a Polars baseline runs after it, in memory that is no longer fresh, so its
    first run would not compare)."""
    seconds = []
    result = None
    for _ in range(repeats):
        if pw is not None:
            clear(pw)
        started = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    report(f"{name}_seconds", median, "s", "lower")
    report(f"{name}_rows_per_s", rows / median, "rows/s", "higher")
    if repeats > 1 and pw is not None:
        report(f"{name}_first_seconds", seconds[0], "s", "lower")
    return result


def make_frame(rows: int, vocabulary: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    words = np.array([f"w{i}" for i in range(vocabulary)], dtype=object)
    # Zipf-like frequencies, as in text.
    ranks = np.minimum(rng.zipf(1.2, size=rows), vocabulary) - 1
    return pd.DataFrame({"word": words[ranks]})


def run_pw(pw: Any, df: pd.DataFrame) -> pd.DataFrame:
    return count_words(pw, pw.debug.table_from_pandas(df))


def count_words(pw: Any, words: Any) -> pd.DataFrame:
    counts = words.groupby(words.word).reduce(words.word, count=pw.reducers.count())
    return pw.debug.table_to_pandas(counts)


def check(out: pd.DataFrame, expected: pd.Series, rows: int) -> None:
    if len(out) != len(expected) or int(out["count"].sum()) != rows:
        raise SystemExit(f"wrong result: {len(out)} words, {out['count'].sum()} total")
    got = dict(zip(out["word"], out["count"], strict=True))
    for word, count in expected.head(10).items():
        if got.get(word) != count:
            raise SystemExit(f"wrong count for {word!r}: {got.get(word)} != {count}")


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    vocabulary = env_int("BENCH_VOCABULARY", 100_000)
    repeats = max(1, env_int("BENCH_REPEATS", 3))
    banner(f"wordcount rows={rows} vocabulary={vocabulary} repeats={repeats}")
    df = make_frame(rows, vocabulary)
    expected = df["word"].value_counts()

    pw = load_pw()  # imports are not part of the measured work
    out = measure("end_to_end", rows, repeats, lambda: run_pw(pw, df), pw)
    check(out, expected, rows)
    report("distinct_words", len(out), "rows", "higher")

    try:
        import polars as pl
    except ImportError:
        pl = None

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "words.csv")
        df.to_csv(path, index=False)

        class Words(pw.Schema):
            word: str

        out = measure(
            "csv_end_to_end",
            rows,
            repeats,
            lambda: count_words(pw, pw.io.csv.read(path, schema=Words, mode="static")),
            pw,
        )
        check(out, expected, rows)

        if pl is None:
            return
        result = measure(
            "polars_csv_end_to_end",
            rows,
            repeats,
            lambda: pl.read_csv(path).group_by("word").agg(pl.len().alias("count")).to_pandas(),
        )
        if len(result) != len(expected):
            raise SystemExit("polars baseline wrong")

    result = measure(
        "polars_end_to_end",
        rows,
        repeats,
        lambda: pl.from_pandas(df).group_by("word").agg(pl.len().alias("count")).to_pandas(),
    )
    if len(result) != len(expected):
        raise SystemExit("polars baseline wrong")


if __name__ == "__main__":
    main()
