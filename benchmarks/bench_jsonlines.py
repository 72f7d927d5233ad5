"""JSON lines read -> JSON lines write, static, end to end.

A file of BENCH_ROWS JSON objects (int, str, float, bool fields) is read with
``pw.io.jsonlines.read(..., mode="static")`` and written back with ``pw.io.jsonlines.write``;
``pw.run()`` is timed. The plain Polars baseline is ``pl.read_ndjson(...).write_ndjson(...)``
of the same file. The output is checked: one insertion per input row.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS (default 1_000_000).
"""

from __future__ import annotations

import json
import os
import random
import tempfile

from _harness import banner, env_int, load_pw, report, timed, write_lines


def make_file(path: str, rows: int) -> None:
    rng = random.Random(7)
    write_lines(
        path,
        (
            json.dumps(
                {
                    "id": i,
                    "name": f"name{rng.randrange(1000):04d}",
                    "value": round(rng.random() * 100, 4),
                    "flag": i % 3 == 0,
                },
                separators=(",", ":"),
            )
            + "\n"
            for i in range(rows)
        ),
    )


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    banner(f"jsonlines read->write rows={rows}")
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "in.jsonl")
        target = os.path.join(tmp, "out.jsonl")
        make_file(source, rows)
        pw = load_pw()

        class Row(pw.Schema):
            id: int
            name: str
            value: float
            flag: bool

        table = pw.io.jsonlines.read(source, schema=Row, mode="static")
        pw.io.jsonlines.write(table, target)
        with timed("end_to_end", rows=rows):
            pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        with open(target, "rb") as handle:
            written = sum(1 for line in handle if line.rstrip().endswith(b"}"))
        if written != rows:
            raise SystemExit(f"wrong result: {written} rows written, expected {rows}")
        report("output_rows", written, "rows", "higher")
        try:
            import polars as pl
        except ImportError:  # the Pathway interpreter need not have Polars
            return
        with timed("polars_end_to_end", rows=rows):
            pl.read_ndjson(source).write_ndjson(target)


if __name__ == "__main__":
    main()
