"""CSV read -> CSV write, static, end to end.

A CSV file of BENCH_ROWS rows (int, str, float, bool) is read with ``pw.io.csv.read(...,
mode="static")`` and written back with ``pw.io.csv.write``; ``pw.run()`` is timed. The plain
Polars baseline reads and writes the same file with ``pl.read_csv`` / ``write_csv``, timed in a
fresh interpreter (like the pipeline, the first heavy work of its process).

The output is checked: one row per input row, all insertions at one time (a static file is
one transaction in Pathway, whatever its size, and so in deltaflow).

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS (default 1_000_000).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
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


def check_output(path: str, rows: int) -> int:
    """The number of data rows written; exits if they are not all insertions at one time."""
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.count(b"\n") - 1
    if lines <= 0:
        return max(lines, 0)
    first = data.split(b"\n", 2)[1]
    time_start = first.rfind(b',"', 0, first.rfind(b',"'))
    suffix = first[time_start:] + b"\n"  # ,"<time>","1" ending every line
    if not suffix.endswith(b',"1"\n') or data.count(suffix) != lines:
        raise SystemExit(f"wrong result: the {lines} rows are not all insertions at one time")
    return lines


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
        with timed("end_to_end", rows=rows) as run_timer:
            pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        written = check_output(target, rows)
        if written != rows:
            raise SystemExit(f"wrong result: {written} rows written, expected {rows}")
        report("output_rows", written, "rows", "higher")
        # Our output quotes every field and adds time/diff (as Pathway's does): about twice the
        # bytes of a plain write_csv. This figure pairs the same run with Polars producing that
        # same output (see polars_baseline).
        report("same_output_end_to_end_seconds", run_timer.seconds, "s", "lower")

        try:
            import polars as pl
        except ImportError:  # the Pathway interpreter need not have Polars
            return
        # The baseline runs in a fresh interpreter, as the pipeline above did: in this process
        # the run has already warmed the memory allocator, which makes Polars' first call up
        # to twice as fast on this machine (reported too, as warm_end_to_end).
        polars_baseline(source, target, rows)
        with timed("polars_warm_end_to_end", rows=rows):
            pl.read_csv(source).write_csv(target)


_BASELINE = """
import sys, time
import polars as pl
source, target, same_output = sys.argv[1:4]
start = time.perf_counter()
if same_output == "1":
    frame = pl.read_csv(source).with_columns(time=pl.lit(0), diff=pl.lit(1))
    frame.write_csv(target, quote_style="always")
else:
    pl.read_csv(source).write_csv(target)
print(time.perf_counter() - start)
"""


def polars_baseline(source: str, target: str, rows: int) -> None:
    """Polars reading and writing the file directly, timed in a fresh interpreter."""
    for same_output, figure in (("0", "end_to_end"), ("1", "same_output_end_to_end")):
        done = subprocess.run([sys.executable, "-c", _BASELINE, source, target, same_output],
                              check=True, capture_output=True, text=True)
        seconds = float(done.stdout.strip().splitlines()[-1])
        report(f"polars_{figure}_seconds", seconds, "s", "lower")
        if figure == "end_to_end":
            report(f"polars_{figure}_rows_per_s", rows / seconds, "rows/s", "higher")


if __name__ == "__main__":
    main()
