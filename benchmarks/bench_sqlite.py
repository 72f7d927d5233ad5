"""pw.io.sqlite: stream_of_changes write, snapshot write of a word count, initial read.

Figures (each for the implementation in ``BENCH_IMPL``):

* ``soc_write``: a BENCH_ROWS-row table (int, float, str) from ``table_from_pandas`` written
  with ``pw.io.sqlite.write`` (stream_of_changes, ``init_mode="replace"``), end to end.
  ``sqlite3_executemany`` (deltaflow runs only): the same rows inserted by plain ``sqlite3``
  ``executemany`` in one transaction, the floor any writer pays.
* ``snapshot_wordcount``: BENCH_ROWS words over about BENCH_KEYS distinct ones, grouped and
  counted, written in snapshot mode with ``primary_key=[word]``, end to end.
* ``initial_read``: a BENCH_ROWS-row table read with ``pw.io.sqlite.read`` (streaming, as
  Pathway only has that) and counted with a reduce; timed until the count reaches every row.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS (default 1_000_000), BENCH_KEYS
(default 50_000), BENCH_PART (all | soc | snapshot | read; each part runs in its own process
when the script re-invokes itself, so that one part's memory does not weigh on the next).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from time import perf_counter

import numpy as np
import pandas as pd

from _harness import banner, env_int, impl, load_pw, report

PARTS = ("soc", "snapshot", "read")


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    keys = np.array([f"name{i:05d}" for i in range(10_000)], dtype=object)
    return pd.DataFrame(
        {
            "a": np.arange(rows, dtype=np.int64),
            "x": rng.random(rows),
            "s": keys[rng.integers(0, len(keys), size=rows)],
        }
    )


def bench_soc(rows: int, folder: str) -> None:
    pw = load_pw()
    frame = make_frame(rows)
    path = os.path.join(folder, "soc.db")
    table = pw.debug.table_from_pandas(frame)
    pw.io.sqlite.write(table, path, "out", init_mode="replace")
    start = perf_counter()
    pw.run()
    seconds = perf_counter() - start
    count = sqlite3.connect(path).execute("SELECT count(*) FROM out").fetchone()[0]
    if count != rows:
        raise SystemExit(f"soc_write: {count} rows written, expected {rows}")
    report("soc_write_seconds", seconds, "s", "lower")
    report("soc_write_rows_per_s", rows / seconds, "rows/s", "higher")

    if impl() == "deltaflow":
        base = os.path.join(folder, "plain.db")
        values = list(
            zip(
                frame["a"].tolist(),
                frame["x"].tolist(),
                frame["s"].tolist(),
                [0] * rows,
                [1] * rows,
                strict=True,
            )
        )
        connection = sqlite3.connect(base)
        connection.execute(
            "CREATE TABLE out (a INTEGER NOT NULL, x REAL NOT NULL, "
            "s TEXT NOT NULL, time INTEGER NOT NULL, diff INTEGER NOT NULL)"
        )
        start = perf_counter()
        with connection:
            connection.executemany("INSERT INTO out VALUES (?, ?, ?, ?, ?)", values)
        seconds = perf_counter() - start
        report("sqlite3_executemany_rows_per_s", rows / seconds, "rows/s", "higher")


def bench_snapshot(rows: int, keys: int, folder: str) -> None:
    pw = load_pw()
    rng = np.random.default_rng(7)
    vocabulary = np.array([f"word{i}" for i in range(keys)], dtype=object)
    words = pd.DataFrame({"word": vocabulary[rng.integers(0, keys, size=rows)]})
    expected = words["word"].nunique()
    path = os.path.join(folder, "snapshot.db")
    table = pw.debug.table_from_pandas(words)
    counts = table.groupby(table.word).reduce(table.word, n=pw.reducers.count())
    pw.io.sqlite.write(
        counts,
        path,
        "counts",
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[counts.word],
    )
    start = perf_counter()
    pw.run()
    seconds = perf_counter() - start
    got = sqlite3.connect(path).execute("SELECT count(*), sum(n) FROM counts").fetchone()
    if got != (expected, rows):
        raise SystemExit(f"snapshot_wordcount: table holds {got}, expected {(expected, rows)}")
    report("snapshot_wordcount_seconds", seconds, "s", "lower")
    report("snapshot_wordcount_rows_per_s", rows / seconds, "rows/s", "higher")


def bench_read(rows: int, folder: str) -> None:
    path = os.path.join(folder, "source.db")
    frame = make_frame(rows)
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE src (a INTEGER NOT NULL, x REAL NOT NULL, s TEXT NOT NULL)")
    with connection:
        connection.executemany(
            "INSERT INTO src VALUES (?, ?, ?)",
            zip(frame["a"].tolist(), frame["x"].tolist(), frame["s"].tolist(), strict=True),
        )
    connection.close()
    del frame

    pw = load_pw()

    class Source(pw.Schema):
        a: int
        x: float
        s: str

    table = pw.io.sqlite.read(path, "src", Source, autocommit_duration_ms=100)
    total = table.reduce(n=pw.reducers.count())
    done = threading.Event()
    start = [0.0]

    def on_change(key, row, time, is_addition):  # noqa: ANN001, ANN202 - Pathway's callback
        if is_addition and row["n"] == rows:
            seconds = perf_counter() - start[0]
            report("initial_read_seconds", seconds, "s", "lower")
            report("initial_read_rows_per_s", rows / seconds, "rows/s", "higher")
            done.set()
            sys.stdout.flush()
            os._exit(0)  # the streaming read never ends by itself

    pw.io.subscribe(total, on_change)
    threading.Timer(600, lambda: os._exit(3)).start()
    start[0] = perf_counter()
    pw.run()


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    keys = env_int("BENCH_KEYS", 50_000)
    part = os.environ.get("BENCH_PART", "all")
    if part == "all":
        banner(f"sqlite rows={rows} keys={keys}")
        failed = False
        for name in PARTS:
            result = subprocess.run(
                [sys.executable, __file__], env={**os.environ, "BENCH_PART": name}, check=False
            )
            failed = failed or result.returncode != 0
        raise SystemExit(1 if failed else 0)
    with tempfile.TemporaryDirectory() as folder:
        if part == "soc":
            bench_soc(rows, folder)
        elif part == "snapshot":
            bench_snapshot(rows, keys, folder)
        elif part == "read":
            bench_read(rows, folder)
        else:
            raise SystemExit(f"BENCH_PART must be all or one of {PARTS}, got {part!r}")


if __name__ == "__main__":
    main()
