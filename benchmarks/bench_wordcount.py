"""Static word count: groupby(word).reduce(count), end to end, from two inputs.

1. pandas DataFrame of words -> pw.debug.table_from_pandas -> groupby/reduce(count)
   -> pw.debug.table_to_pandas (figures ``end_to_end_*``);
2. the same words in a CSV file -> pw.io.csv.read(mode="static") -> groupby/reduce(count)
   -> pw.debug.table_to_pandas (figures ``csv_end_to_end_*``).

The same work in plain Polars (from_pandas or read_csv, group_by + len, to_pandas) is the
baseline of each.

Environment: BENCH_IMPL, BENCH_ROWS (default 1_000_000), BENCH_VOCABULARY (default 100_000).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_int, load_pw, report, timed


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
    banner(f"wordcount rows={rows} vocabulary={vocabulary}")
    df = make_frame(rows, vocabulary)
    expected = df["word"].value_counts()

    pw = load_pw()  # imports are not part of the measured work
    with timed("end_to_end", rows=rows):
        out = run_pw(pw, df)
    check(out, expected, rows)
    report("distinct_words", len(out), "rows", "higher")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "words.csv")
        df.to_csv(path, index=False)

        class Words(pw.Schema):
            word: str

        with timed("csv_end_to_end", rows=rows):
            out = count_words(pw, pw.io.csv.read(path, schema=Words, mode="static"))
        check(out, expected, rows)

        try:
            import polars as pl
        except ImportError:
            return
        with timed("polars_csv_end_to_end", rows=rows):
            result = pl.read_csv(path).group_by("word").agg(pl.len().alias("count")).to_pandas()
        if len(result) != len(expected):
            raise SystemExit("polars baseline wrong")

    with timed("polars_end_to_end", rows=rows):
        result = pl.from_pandas(df).group_by("word").agg(pl.len().alias("count")).to_pandas()
    if len(result) != len(expected):
        raise SystemExit("polars baseline wrong")


if __name__ == "__main__":
    main()
