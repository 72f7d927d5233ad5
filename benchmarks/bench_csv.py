"""CSV read -> CSV write, static, end to end.

A CSV file of BENCH_ROWS rows (int, str, float, bool) is read with ``pw.io.csv.read(...,
mode="static")`` and written back with ``pw.io.csv.write``; ``pw.run()`` is timed. The plain
Polars baseline reads and writes the same file with ``pl.read_csv`` / ``write_csv``. Each
measurement runs in a fresh interpreter (the first heavy work of its process); pipeline and
Polars runs alternate BENCH_REPEATS times and the medians are reported.

The output is checked: one row per input row, all insertions at one time (a static file is
one transaction in Pathway, whatever its size, and so in deltaflow).

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS (default 1_000_000),
BENCH_REPEATS (default 5).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile

from _harness import banner, env_int, report, write_lines


def make_file(path: str, rows: int) -> None:
    rng = random.Random(42)
    names = [f"name{i:04d}" for i in range(1000)]
    write_lines(
        path,
        itertools.chain(
            ["id,name,value,flag\n"],
            (
                f"{i},{names[rng.randrange(1000)]},{rng.random() * 100:.4f},"
                f"{'true' if i % 3 else 'false'}\n"
                for i in range(rows)
            ),
        ),
    )


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


_PIPELINE = """
import resource, sys, time
sys.path.insert(0, sys.argv[3])
from _harness import load_pw
pw = load_pw()


class Row(pw.Schema):
    id: int
    name: str
    value: float
    flag: bool


table = pw.io.csv.read(sys.argv[1], schema=Row, mode="static")
pw.io.csv.write(table, sys.argv[2])
start = time.perf_counter()
pw.run(monitoring_level=pw.MonitoringLevel.NONE)
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: the latter also counts the parent's pages shared before the exec.
try:
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak_kb / 1024, seconds)
"""

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


def _timed_child(code: str, *args: str) -> float:
    """Seconds reported by ``code`` run in a fresh interpreter (its last stdout line)."""
    return _child_figures(code, *args)[-1]


def _child_figures(code: str, *args: str) -> list[float]:
    """The numbers on the last stdout line of ``code`` run in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return [float(x) for x in done.stdout.strip().splitlines()[-1].split()]


def main() -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    repeats = max(1, env_int("BENCH_REPEATS", 5))
    banner(f"csv read->write rows={rows} repeats={repeats}")
    try:
        import polars  # noqa: F401 - only to know whether the baseline can run here

        have_polars = True
    except ImportError:  # the Pathway interpreter need not have Polars
        have_polars = False
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "in.csv")
        target = os.path.join(tmp, "out.csv")
        make_file(source, rows)
        # Every measurement is a fresh interpreter doing this work first, and the pipeline
        # and Polars runs alternate, so that both see the same machine; medians are reported
        # (single runs on a shared 2-core machine vary by +-40%).
        ours: list[float] = []
        rss: list[float] = []
        plain: list[float] = []
        same: list[float] = []
        for _ in range(repeats):
            peak_mb, seconds = _child_figures(_PIPELINE, source, target, here)
            ours.append(seconds)
            rss.append(peak_mb)
            written = check_output(target, rows)
            if written != rows:
                raise SystemExit(f"wrong result: {written} rows written, expected {rows}")
            if have_polars:
                plain.append(_timed_child(_BASELINE, source, target, "0"))
                same.append(_timed_child(_BASELINE, source, target, "1"))
        seconds = statistics.median(ours)
        report("end_to_end_seconds", seconds, "s", "lower")
        report("end_to_end_rows_per_s", rows / seconds, "rows/s", "higher")
        report("output_rows", rows, "rows", "higher")
        report("pipeline_peak_rss_mb", statistics.median(rss), "MiB", "lower")
        # Our output quotes every field and adds time/diff (as Pathway's does): about twice the
        # bytes of a plain write_csv. This figure pairs the same runs with Polars producing that
        # same output.
        report("same_output_end_to_end_seconds", seconds, "s", "lower")
        if have_polars:
            report("polars_end_to_end_seconds", statistics.median(plain), "s", "lower")
            report(
                "polars_end_to_end_rows_per_s", rows / statistics.median(plain), "rows/s", "higher"
            )
            report("polars_same_output_end_to_end_seconds", statistics.median(same), "s", "lower")
            # Each pipeline run over the Polars run right after it: a paired figure, less
            # sensitive than the ratio of the two medians to the machine drifting meanwhile.
            ratios = sorted(a / b for a, b in zip(ours, plain, strict=True))
            report("paired_ratio_to_polars", statistics.median(ratios), "x", "lower")
            logging.info(
                "per-pair ratios to plain Polars: %s", " ".join(f"{r:.2f}" for r in ratios)
            )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
