"""Throughput of a Python subject's upserts against its plain inserts (issue #13).

A subject sends BENCH_ROWS rows (default 1,000,000) as fast as it can, committing every 10,000,
into ``groupby(k).reduce(count)`` (1,000 groups) + ``pw.io.subscribe``. BENCH_MODE ``insert``:
rows without a primary key. ``keyed``: inserts whose schema's ``id`` is the primary key (the
ids are the key's hash, and nothing is stored). ``upsert``: an upsert session
(``session_type="upsert"``) keyed by ``id``. Row ``i`` has key ``i % BENCH_KEYS`` (default:
as many keys as rows, so every row is new; fewer keys make most rows replace an earlier one).
BENCH_KEY_TYPE ``int`` (default: serial int keys) or ``str`` (each key's decimal text: an
upsert session then hashes text keys, and its id table cannot index serial keys directly).

Reported: rows/s from the first row sent to the end of the run, the process's CPU time
(user + system, every thread) per row in microseconds, steadier than rows/s on a shared
machine, and the process's peak resident memory (an upsert session keeps the current row of
every key).
Environment: BENCH_IMPL, BENCH_ROWS, BENCH_KEYS, BENCH_MODE, BENCH_KEY_TYPE.
"""

from __future__ import annotations

import os
import resource
import time

from _harness import banner, env_int, load_pw, report

COMMIT_ROWS = 10_000


def main() -> None:
    pw = load_pw()
    rows = env_int("BENCH_ROWS", 1_000_000)
    keys = env_int("BENCH_KEYS", rows)
    mode = os.environ.get("BENCH_MODE", "upsert")
    if mode not in ("insert", "keyed", "upsert"):
        raise SystemExit("BENCH_MODE must be insert, keyed or upsert")
    key_type = os.environ.get("BENCH_KEY_TYPE", "int")
    if key_type not in ("int", "str"):
        raise SystemExit("BENCH_KEY_TYPE must be int or str")
    banner(f"{rows:,} {mode}s through a Python subject ({keys:,} {key_type} keys)")
    key_of = str if key_type == "str" else int

    # Built from a dict: a class body's annotations are strings here (future annotations).
    key = pw.column_definition(dtype=key_of, primary_key=mode != "insert")
    Row = pw.schema_builder(
        {"id": key, "k": pw.column_definition(dtype=int), "v": pw.column_definition(dtype=int)}
    )

    started = [0.0]

    class Rows(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            started[0] = time.perf_counter()
            for i in range(rows):
                self.next(id=key_of(i % keys), k=i % 1000, v=i)
                if i % COMMIT_ROWS == COMMIT_ROWS - 1:
                    self.commit()

    session = {"session_type": "upsert"} if mode == "upsert" else {}
    table = pw.io.python.read(Rows(**session), schema=Row, autocommit_duration_ms=1500)
    counts = table.groupby(table.k).reduce(table.k, n=pw.reducers.count())
    pw.io.subscribe(counts, lambda **_: None)
    cpu = time.process_time()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    elapsed = time.perf_counter() - started[0]
    cpu = time.process_time() - cpu
    report(f"{mode}_rows_per_s", rows / elapsed, "rows/s")
    report(f"{mode}_cpu_us_per_row", cpu / rows * 1e6, "us/row", better="lower")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    report(f"{mode}_peak_rss_mb", peak_mb, "MB", better="lower")


if __name__ == "__main__":
    main()
