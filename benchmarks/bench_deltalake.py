"""pw.io.deltalake: write and read BENCH_ROWS rows (int, float, str) of a local Delta table.

Figures (for the implementation in ``BENCH_IMPL``):

* ``write``: a table from ``table_from_pandas`` written with ``pw.io.deltalake.write``
  (stream_of_changes, one commit), end to end (``pw.run``).
  ``deltalake_write`` (deltaflow runs only): the same rows (plus time/diff) written by
  ``deltalake.write_deltalake`` directly, the floor any writer pays.
* ``read``: that table read with ``pw.io.deltalake.read(mode="static")`` and counted with a
  reduce, end to end.

Pathway 0.33 needs a license key for pw.io.deltalake (its run fails at once without one), so
the Pathway side of this benchmark reports nothing on a machine without a key.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS (default 1_000_000).
"""

from __future__ import annotations

import os
import sys
import tempfile
from time import perf_counter

import numpy as np
import pandas as pd

from _harness import banner, env_int, impl, load_pw, report


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    names = np.array([f"name{i:05d}" for i in range(10_000)], dtype=object)
    return pd.DataFrame(
        {
            "a": np.arange(rows, dtype=np.int64),
            "x": rng.random(rows),
            "s": names[rng.integers(0, len(names), size=rows)],
        }
    )


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    banner(f"deltalake: {rows} rows")
    pw = load_pw()
    frame = make_frame(rows)
    folder = tempfile.mkdtemp(prefix="bench-deltalake-")
    path = os.path.join(folder, "lake")

    table = pw.debug.table_from_pandas(frame)
    try:
        pw.io.deltalake.write(table, path, min_commit_frequency=None)
    except RuntimeError as exc:  # Pathway 0.33 without a license key refuses here
        print(f"pw.io.deltalake cannot run here: {str(exc).splitlines()[0]}", file=sys.stderr)
        return
    start = perf_counter()
    pw.run()
    seconds = perf_counter() - start
    report("write_seconds", seconds, "s", "lower")
    report("write_rows_per_s", rows / seconds, "rows/s", "higher")

    from deltalake import DeltaTable, write_deltalake

    written = DeltaTable(path).to_pyarrow_table().num_rows
    if written != rows:
        raise SystemExit(f"write: {written} rows in the table, expected {rows}")

    pw.clear_graph() if hasattr(pw, "clear_graph") else None

    class Row(pw.Schema):
        a: int
        x: float
        s: str

    read = pw.io.deltalake.read(path, Row, mode="static")
    counted = read.reduce(n=pw.reducers.count())
    result: list[int] = []
    pw.io.subscribe(
        counted,
        lambda key, row, time, is_addition: result.append(row["n"]) if is_addition else None,
    )
    start = perf_counter()
    pw.run()
    seconds = perf_counter() - start
    if not result or result[-1] != rows:
        raise SystemExit(f"read: counted {result[-1:]} rows, expected {rows}")
    report("read_seconds", seconds, "s", "lower")
    report("read_rows_per_s", rows / seconds, "rows/s", "higher")

    if impl() == "deltaflow":
        data = frame.assign(time=0, diff=1)
        start = perf_counter()
        write_deltalake(os.path.join(folder, "plain"), data)
        seconds = perf_counter() - start
        report("polars_write_rows_per_s", rows / seconds, "rows/s", "higher")


if __name__ == "__main__":
    main()
