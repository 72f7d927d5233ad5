"""pw.io.postgres.write: a stream of changes of 1M rows, and a snapshot of a 1M-row word count.

Figures (each for the implementation in ``BENCH_IMPL``):

* ``soc_write``: a BENCH_ROWS-row CSV file (int, float, str) read with ``pw.io.csv.read``
  (static) and written with ``pw.io.postgres.write`` (stream_of_changes,
  ``init_mode="replace"``), end to end (``pw.run()``; imports are not timed). A CSV input,
  because Pathway's ``table_from_pandas`` alone takes longer than its write.
* ``snapshot_wordcount``: BENCH_ROWS words over about BENCH_KEYS distinct ones, grouped and
  counted, written with ``output_table_type="snapshot"`` and ``primary_key=[word]``.

The server: ``BENCH_POSTGRES`` holds the connection settings as JSON (libpq keywords), so that
deltaflow and Pathway write to the same server in one ``run.py`` call; without it the script
starts a throwaway server itself (``tests/io/postgres_server.py``, needs psycopg, so deltaflow
only). Results are checked with ``psql`` (PostgreSQL's client, present wherever the server is).

Environment: BENCH_IMPL, BENCH_ROWS (default 1_000_000), BENCH_KEYS (default 50_000),
BENCH_POSTGRES, BENCH_PART (all | soc | snapshot; each part in its own process).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_int, impl, load_pw, report

PARTS = ("soc", "snapshot")


def _psql(settings: dict[str, Any], sql: str) -> str:
    """The first row of ``sql``'s result, as psql prints it unaligned."""
    binary = shutil.which("psql") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None
    )
    if binary is None:
        raise SystemExit("psql not found (install PostgreSQL's client)")
    env = {**os.environ, "PGPASSWORD": str(settings.get("password", ""))}
    command = [
        binary,
        "-X",
        "-A",
        "-t",
        "-h",
        str(settings["host"]),
        "-p",
        str(settings["port"]),
        "-U",
        str(settings["user"]),
        "-d",
        str(settings["dbname"]),
        "-c",
        sql,
    ]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


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


def bench_soc(rows: int, settings: dict[str, Any]) -> None:
    pw = load_pw()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.csv")
        make_frame(rows).to_csv(path, index=False)

        class Row(pw.Schema):
            a: int
            x: float
            s: str

        table = pw.io.csv.read(path, schema=Row, mode="static")
        _soc_run(pw, table, rows, settings)
        if impl() == "deltaflow":
            _copy_floor(path, rows, settings)


def _copy_floor(path: str, rows: int, settings: dict[str, Any]) -> None:
    """The floor any writer pays on this server at this moment: the same CSV rows sent by
    plain psycopg with one ``COPY ... (FORMAT csv)`` (plus ``time``/``diff``), one
    transaction. Reported as ``psycopg_copy_rows_per_s`` (deltaflow runs only)."""
    import polars as pl
    import psycopg

    frame = pl.read_csv(path).with_columns(
        pl.lit(0).alias("time"), pl.lit(1, dtype=pl.Int16).alias("diff")
    )
    conninfo = " ".join(f"{key}={value}" for key, value in settings.items())
    with psycopg.connect(conninfo) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_copy_floor")
        connection.execute(
            "CREATE TABLE bench_copy_floor (a BIGINT NOT NULL, x DOUBLE "
            "PRECISION NOT NULL, s TEXT NOT NULL, time BIGINT NOT NULL, "
            "diff SMALLINT NOT NULL)"
        )
        connection.commit()
        start = perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY bench_copy_floor FROM STDIN (FORMAT csv)") as copy,
        ):
            copy.write(frame.write_csv(include_header=False).encode())
        connection.commit()
        seconds = perf_counter() - start
    report("psycopg_copy_rows_per_s", rows / seconds, "rows/s", "higher")


def _soc_run(pw: Any, table: Any, rows: int, settings: dict[str, Any]) -> None:
    name = f"bench_soc_{impl()}"
    pw.io.postgres.write(table, settings, name, init_mode="replace")
    start = perf_counter()
    pw.run()
    seconds = perf_counter() - start
    count = int(_psql(settings, f"SELECT count(*) FROM {name}"))
    if count != rows:
        raise SystemExit(f"soc_write: {count} rows written, expected {rows}")
    report("soc_write_seconds", seconds, "s", "lower")
    report("soc_write_rows_per_s", rows / seconds, "rows/s", "higher")


def bench_snapshot(rows: int, keys: int, settings: dict[str, Any]) -> None:
    pw = load_pw()
    rng = np.random.default_rng(7)
    vocabulary = np.array([f"word{i}" for i in range(keys)], dtype=object)
    words = pd.DataFrame({"word": vocabulary[rng.integers(0, keys, size=rows)]})
    expected = f"{words['word'].nunique()}|{rows}"
    table = pw.debug.table_from_pandas(words)
    counts = table.groupby(table.word).reduce(table.word, n=pw.reducers.count())
    name = f"bench_counts_{impl()}"
    pw.io.postgres.write(
        counts,
        settings,
        name,
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[counts.word],
    )
    start = perf_counter()
    pw.run()
    seconds = perf_counter() - start
    got = _psql(settings, f"SELECT count(*), sum(n) FROM {name}")
    if got != expected:
        raise SystemExit(f"snapshot_wordcount: table holds {got}, expected {expected}")
    report("snapshot_wordcount_seconds", seconds, "s", "lower")
    report("snapshot_wordcount_rows_per_s", rows / seconds, "rows/s", "higher")


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    keys = env_int("BENCH_KEYS", 50_000)
    part = os.environ.get("BENCH_PART", "all")
    if part == "all":
        banner(f"postgres rows={rows} keys={keys}")
        server = None
        env = dict(os.environ)
        if not env.get("BENCH_POSTGRES"):
            sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "io"))
            from postgres_server import PostgresServer  # needs psycopg: deltaflow's venv

            server = PostgresServer()
            server.start()
            env["BENCH_POSTGRES"] = json.dumps(server.settings())
        failed = False
        try:
            for name in PARTS:
                result = subprocess.run(
                    [sys.executable, __file__], env={**env, "BENCH_PART": name}, check=False
                )
                failed = failed or result.returncode != 0
        finally:
            if server is not None:
                server.stop()
        raise SystemExit(1 if failed else 0)
    settings = json.loads(os.environ["BENCH_POSTGRES"])
    if part == "soc":
        bench_soc(rows, settings)
    elif part == "snapshot":
        bench_snapshot(rows, keys, settings)
    else:
        raise SystemExit(f"BENCH_PART must be all or one of {PARTS}, got {part!r}")


if __name__ == "__main__":
    main()
