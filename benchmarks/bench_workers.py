"""Static word count on 1 and 2 worker processes (``spawn -n 1`` against ``spawn -n 2``).

BENCH_ROWS words (default 5,000,000; Zipf-like over BENCH_VOCABULARY words, default 100,000)
split over BENCH_FILES CSV files of one directory (default 64) are counted by
``pw.io.csv.read(directory, mode="static")`` -> ``groupby(word)`` -> ``reduce(count)`` ->
``pw.io.subscribe``, run by the implementation's own ``spawn`` command with 1 and then 2
processes. Figures, each the median of BENCH_REPEATS runs (default 3):

* ``workers<N>_run_seconds``: the longest ``pw.run()`` among the N processes (what the
  pipeline costs, without interpreter start-up and imports);
* ``workers<N>_process_seconds``: the whole ``spawn`` command, start-up included;
* ``speedup_2_over_1``: ``workers1_run_seconds / workers2_run_seconds``;
* ``streaming_workers<N>_rows_per_s`` and ``streaming_speedup_2_over_1``: a Python subject
  pushing BENCH_STREAM_ROWS rows (default 200,000) in commits of BENCH_COMMIT (default 1,000)
  into ``groupby(word).reduce(count, sum)`` -> ``subscribe`` (BENCH_WORKERS_STREAMING=0
  skips it).

* BENCH_AUTOCOMMIT_MS (default 1500, the connectors' default; ``none``: commit only at the
  end) is the static read's ``autocommit_duration_ms``. On one worker, a read taking longer
  than that is cut into several times, each updating the counts; on several workers a
  static file input is one time (``docs/scaling.md``). ``none`` makes both one time.
* ``load_average_start`` / ``load_average_end``: the machine's 1-minute load average before
  and after the runs (the machine is shared: ratios mean little on a loaded one).

Every process writes the counts it received; the script checks that together they count every
word exactly once. With deltaflow, each worker reads its share of the files, combines its
counts and sends partial counts to the worker owning each word (``docs/scaling.md``); the
workers' log lines give the rows read, combined and exchanged. ``run.py workers
--pathway-python PYTHON`` runs Pathway right after deltaflow, under the same load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

from _harness import banner, env_int, impl, report

PROGRAM = textwrap.dedent("""
    import json, os, sys, time
    import IMPL as pw

    class Words(pw.Schema):
        word: str

    autocommit = os.environ.get("BENCH_AUTOCOMMIT_MS", "1500")
    words = pw.io.csv.read(
        sys.argv[1],
        schema=Words,
        mode="static",
        autocommit_duration_ms=None if autocommit == "none" else int(autocommit),
    )
    counts = words.groupby(words.word).reduce(words.word, n=pw.reducers.count())
    got = {}

    def on_change(key, row, time, is_addition):
        if is_addition:
            got[row["word"]] = row["n"]
        elif got.get(row["word"]) == row["n"]:
            del got[row["word"]]

    pw.io.subscribe(counts, on_change=on_change)
    started = time.perf_counter()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    seconds = time.perf_counter() - started
    process = os.environ.get("PATHWAY_PROCESS_ID", "0")
    with open(os.path.join(sys.argv[2], f"out-{process}.json"), "w") as out:
        json.dump({"seconds": seconds, "counts": got}, out)
""")


STREAMING = textwrap.dedent("""
    import json, os, sys, time
    import IMPL as pw

    ROWS, COMMIT, VOCABULARY = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    class Words(pw.Schema):
        word: str
        n: int

    class Subject(pw.io.python.ConnectorSubject):
        def run(self):
            for start in range(0, ROWS, COMMIT):
                for i in range(start, min(start + COMMIT, ROWS)):
                    self.next(word=f"w{(i * 7919) % VOCABULARY}", n=i)
                self.commit()

    words = pw.io.python.read(Subject(), schema=Words)
    counts = words.groupby(words.word).reduce(
        words.word, c=pw.reducers.count(), s=pw.reducers.sum(words.n)
    )
    got = {}

    def on_change(key, row, time, is_addition):
        if is_addition:
            got[row["word"]] = row["c"]

    pw.io.subscribe(counts, on_change=on_change)
    started = time.perf_counter()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    seconds = time.perf_counter() - started
    process = os.environ.get("PATHWAY_PROCESS_ID", "0")
    with open(os.path.join(sys.argv[1], f"out-{process}.json"), "w") as out:
        json.dump({"seconds": seconds, "counts": got}, out)
""")


def write_words(directory: str, rows: int, vocabulary: int, files: int) -> None:
    """``rows`` words over ``files`` CSV files of ``directory`` (one header each)."""
    rng = np.random.default_rng(7)
    ranks = np.minimum(rng.zipf(1.2, size=rows), vocabulary) - 1
    os.makedirs(directory)
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for file in range(files):
        with open(os.path.join(directory, f"part-{file:03d}.csv"), "w") as out:
            out.write("word\n")
            for start in range(bounds[file], bounds[file + 1], 500_000):
                end = min(start + 500_000, bounds[file + 1])
                out.write("\n".join(f"w{r}" for r in ranks[start:end]))
                out.write("\n")


def spawn_command(workers: int, program: str, *args: str) -> list[str]:
    if impl() == "pathway":
        cli = os.path.join(os.path.dirname(sys.executable), "pathway")
        return [cli, "spawn", "-n", str(workers), sys.executable, program, *args]
    return [sys.executable, "-m", "deltaflow", "spawn", "-n", str(workers), sys.executable,
            program, *args]  # fmt: skip


def run_once(workers: int, program: str, words: str, rows: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        # Run beside the files, which are read by relative paths: which worker reads a file
        # depends on its path, so the split is the same in every run.
        done = subprocess.run(
            spawn_command(workers, program, os.path.basename(words), out),
            capture_output=True,
            text=True,
            cwd=os.path.dirname(words),
        )
        process_seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{workers} workers failed:\n{done.stderr[-3000:]}")
        for line in done.stderr.splitlines():
            if "rows into partitioned" in line and workers > 1:
                print(line.split("deltaflow.workers: ")[-1], file=sys.stderr)
        results = []
        for name in sorted(os.listdir(out)):
            with open(os.path.join(out, name)) as result:
                results.append(json.load(result))
    counts: dict[str, int] = {}
    for result in results:
        for word, n in result["counts"].items():
            if word in counts:
                raise SystemExit(f"{word!r} counted by two workers")
            counts[word] = n
    if sum(counts.values()) != rows:
        raise SystemExit(f"wrong total: {sum(counts.values())} != {rows}")
    return max(r["seconds"] for r in results), process_seconds


def main() -> None:
    rows = env_int("BENCH_ROWS", 5_000_000)
    vocabulary = env_int("BENCH_VOCABULARY", 100_000)
    repeats = max(1, env_int("BENCH_REPEATS", 3))
    files = max(1, env_int("BENCH_FILES", 64))
    banner(f"workers wordcount rows={rows} files={files} vocabulary={vocabulary} repeats={repeats}")
    report("load_average_start", os.getloadavg()[0], "", "lower")
    with tempfile.TemporaryDirectory() as tmp:
        words = os.path.join(tmp, "words")
        write_words(words, rows, vocabulary, files)
        program = os.path.join(tmp, "count.py")
        with open(program, "w") as out:
            out.write(PROGRAM.replace("IMPL", impl()))
        medians = {}
        for workers in (1, 2):
            runs = [run_once(workers, program, words, rows) for _ in range(repeats)]
            medians[workers] = statistics.median(r[0] for r in runs)
            report(f"workers{workers}_run_seconds", medians[workers], "s", "lower")
            report(
                f"workers{workers}_process_seconds",
                statistics.median(r[1] for r in runs),
                "s",
                "lower",
            )
        report("speedup_2_over_1", medians[1] / medians[2], "x", "higher")
        if env_int("BENCH_WORKERS_STREAMING", 1):
            streaming(tmp, repeats)
    report("load_average_end", os.getloadavg()[0], "", "lower")


def streaming(tmp: str, repeats: int) -> None:
    """Python subject -> groupby(word).reduce(count, sum) -> subscribe, in commits of
    BENCH_COMMIT rows (default 1,000): rows per second of the whole run on 1 and 2 workers."""
    rows = env_int("BENCH_STREAM_ROWS", 200_000)
    commit = env_int("BENCH_COMMIT", 1_000)
    vocabulary = env_int("BENCH_STREAM_VOCABULARY", 10_000)
    program = os.path.join(tmp, "stream.py")
    with open(program, "w") as out:
        out.write(STREAMING.replace("IMPL", impl()))
    rates = {}
    for workers in (1, 2):
        seconds = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as out:
                args = (out, str(rows), str(commit), str(vocabulary))
                done = subprocess.run(
                    spawn_command(workers, program, *args), capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise SystemExit(f"streaming, {workers} workers:\n{done.stderr[-3000:]}")
                results = []
                for name in sorted(os.listdir(out)):
                    with open(os.path.join(out, name)) as result:
                        results.append(json.load(result))
            total = sum(sum(r["counts"].values()) for r in results)
            if total != rows:
                raise SystemExit(f"streaming, {workers} workers: {total} rows counted, not {rows}")
            seconds.append(max(r["seconds"] for r in results))
        rates[workers] = rows / statistics.median(seconds)
        report(f"streaming_workers{workers}_rows_per_s", rates[workers], "rows/s", "higher")
    report("streaming_speedup_2_over_1", rates[2] / rates[1], "x", "higher")


if __name__ == "__main__":
    main()
