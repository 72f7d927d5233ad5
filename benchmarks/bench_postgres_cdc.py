"""Change data capture latency of ``pw.io.postgres.read`` (issue #14, "How fast").

A thread commits single-row INSERT transactions into a PostgreSQL table at a fixed rate
(``BENCH_RATE``, default 1000/s) for ``BENCH_ROWS`` rows (default 5000); the pipeline reads
the table in streaming mode and a ``pw.io.subscribe`` callback notes, for every row, the time
between the start of its INSERT and its arrival. Reported: p50/p95/p99 of that latency over
the rows after the first 10% (warm-up), and the rate actually held.

The server: ``BENCH_PG_SETTINGS`` (a JSON object of libpq settings; the database must allow
logical replication), or else a throwaway server started with the test fixture's code
(``tests/io/postgres_server.py``: Debian's PostgreSQL, ``wal_level=logical``). The inserting
session uses ``synchronous_commit=on`` (PostgreSQL's default): with it off, logical decoding
sees a commit only once the WAL writer flushed it, up to 3 x ``wal_writer_delay`` later.

Pathway 0.33's ``pw.io.postgres.read`` needs a license key (``PATHWAY_LICENSE_KEY``, feature
"postgres-wal-reader"); without one the Pathway run reports nothing and says why.

Environment: BENCH_IMPL, BENCH_ROWS, BENCH_RATE, BENCH_AUTOCOMMIT_MS (default 10),
BENCH_PG_SETTINGS.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from time import time as wall_clock
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import env_int, impl, load_pw, report  # noqa: E402


def _server() -> tuple[dict[str, str], Any]:
    raw = os.environ.get("BENCH_PG_SETTINGS")
    if raw:
        return json.loads(raw), None
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "io"))
    from postgres_server import PostgresServer

    server = PostgresServer()
    server.start()
    return server.settings(server.create_database()), server


def _conninfo(settings: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items())


def main() -> None:
    if impl() == "pathway" and not os.environ.get("PATHWAY_LICENSE_KEY"):
        print(
            "Pathway 0.33's pw.io.postgres.read needs a license key (PATHWAY_LICENSE_KEY); "
            "not measured"
        )
        return
    import psycopg

    rows = env_int("BENCH_ROWS", 5000)
    rate = env_int("BENCH_RATE", 1000)
    autocommit_ms = env_int("BENCH_AUTOCOMMIT_MS", 10)
    settings, server = _server()
    try:
        with psycopg.connect(_conninfo(settings), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS cdc_bench")
            conn.execute("DROP PUBLICATION IF EXISTS cdc_bench_pub")
            conn.execute("CREATE TABLE cdc_bench (id BIGINT PRIMARY KEY, sent_at DOUBLE PRECISION)")
            conn.execute("CREATE PUBLICATION cdc_bench_pub FOR TABLE cdc_bench")
        latencies = _measure(settings, rows, rate, autocommit_ms)
    finally:
        if server is not None:
            server.stop()
    warm = latencies[len(latencies) // 10 :]
    warm.sort()

    def pct(q: float) -> float:
        return warm[min(len(warm) - 1, int(q * len(warm)))] * 1000

    report("cdc_latency_p50", pct(0.50), "ms", "lower")
    report("cdc_latency_p95", pct(0.95), "ms", "lower")
    report("cdc_latency_p99", pct(0.99), "ms", "lower")


_INSERTER = """
import sys, time, psycopg
conninfo, rows, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with psycopg.connect(conninfo, autocommit=True) as conn:
    conn.execute("SET synchronous_commit = on")
    started = time.perf_counter()
    for index in range(rows):
        pause = started + index / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        conn.execute("INSERT INTO cdc_bench VALUES (%s, %s)", (index, time.time()))
    print(rows / (time.perf_counter() - started))
"""


def _measure(settings: dict[str, str], rows: int, rate: int, autocommit_ms: int) -> list[float]:
    """Latencies in seconds. The INSERTs come from another process (as they would from
    another program), each carrying its wall-clock send time."""
    pw = load_pw()

    class Row(pw.Schema):
        id: int = pw.column_definition(primary_key=True)
        sent_at: float

    latencies: list[float] = []
    done = threading.Event()

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:  # noqa: A002 - the callback keyword
        if is_addition:
            latencies.append(wall_clock() - row["sent_at"])
            if len(latencies) >= rows:
                done.set()

    table = pw.io.postgres.read(
        settings,
        "cdc_bench",
        Row,
        publication_name="cdc_bench_pub",
        autocommit_duration_ms=autocommit_ms,
    )
    pw.io.subscribe(table, on_change)
    runner = threading.Thread(
        target=lambda: pw.run(monitoring_level=pw.MonitoringLevel.NONE), daemon=True
    )
    runner.start()
    time.sleep(3.0)  # let the reader create its slot and read the (empty) snapshot
    import subprocess

    inserter = subprocess.run(
        [sys.executable, "-c", _INSERTER, _conninfo(settings), str(rows), str(rate)],
        capture_output=True,
        text=True,
        check=True,
    )
    report("insert_rate_held", float(inserter.stdout.strip()), "rows/s", "higher")
    if not done.wait(60):
        raise SystemExit(f"only {len(latencies)} of {rows} rows arrived")
    _stop(pw)
    return latencies


def _stop(pw: Any) -> None:
    if impl() == "deltaflow":
        from deltaflow.engine.runtime import stop_all_runs

        stop_all_runs()


if __name__ == "__main__":
    main()
