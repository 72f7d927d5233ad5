"""CSV read -> CSV write, static, end to end.

A CSV file of BENCH_ROWS rows (int, str, float, bool) is read with ``pw.io.csv.read(...,
mode="static")`` and written back with ``pw.io.csv.write``; ``pw.run()`` is timed. The plain
Polars baseline reads and writes the same file with ``pl.read_csv`` / ``write_csv``.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS (default 1_000_000).
"""

from __future__ import annotations

import os
import random
import tempfile

from _harness import banner, env_int, load_pw, report, timed


def make_file(path: str, rows: int) -> None:
    rng = random.Random(42)
    names = [f"name{i:04d}" for i in range(1000)]
    with open(path, "w") as handle:
        handle.write("id,name,value,flag\n")
        chunk = []
        for i in range(rows):
            chunk.append(f"{i},{names[rng.randrange(1000)]},{rng.random() * 100:.4f},"
                         f"{'true' if i % 3 else 'false'}\n")
            if len(chunk) == 100_000:
                handle.write("".join(chunk))
                chunk = []
        handle.write("".join(chunk))


def count_lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    banner(f"csv read->write rows={rows}")
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "in.csv")
        target = os.path.join(tmp, "out.csv")
        make_file(source, rows)
        pw = load_pw()

        class Row(pw.Schema):
            id: int
            name: str
            value: float
            flag: bool

        table = pw.io.csv.read(source, schema=Row, mode="static")
        pw.io.csv.write(table, target)
        with timed("end_to_end", rows=rows):
            pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        written = count_lines(target) - 1
        if written != rows:
            raise SystemExit(f"wrong result: {written} rows written, expected {rows}")
        report("output_rows", written, "rows", "higher")

        try:
            import polars as pl
        except ImportError:  # the Pathway interpreter need not have Polars
            return
        with timed("polars_end_to_end", rows=rows):
            pl.read_csv(source).write_csv(target)


if __name__ == "__main__":
    main()
