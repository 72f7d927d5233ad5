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
* With deltaflow and Ray installed (``BENCH_WORKERS_RAY=0`` skips it), the same runs with
  the two workers as Ray actors (``spawn --ray ADDRESS -n 2``) on a one-node Ray cluster
  started here with 2 CPUs: ``ray2_run_seconds``, ``ray2_process_seconds``,
  ``streaming_ray2_rows_per_s`` and ``ray_over_plain`` (Ray's run time over the plain
  processes'). The variants run interleaved, one repeat of each after the other, so that
  they share the machine's load.
* ``time_ms_<variant>``: the round trip of one time: a Python subject commits one row, waits
  until the output saw it, then commits the next (BENCH_LATENCY_TIMES times, default 200):
  milliseconds per time (worker 0 -> the reduce's owner -> worker 0 and the output).

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


LATENCY = textwrap.dedent("""
    import json, os, sys, threading, time
    import IMPL as pw

    TIMES = int(sys.argv[2])
    seen = threading.Event()

    class Words(pw.Schema):
        word: str
        n: int

    class Subject(pw.io.python.ConnectorSubject):
        def run(self):
            for i in range(TIMES):  # one row a time, the next once the output saw it
                seen.clear()
                self.next(word=f"w{i % 100}", n=i)
                self.commit()
                if not seen.wait(60):
                    raise RuntimeError(f"no output for commit {i}")

    words = pw.io.python.read(Subject(), schema=Words)
    counts = words.groupby(words.word).reduce(words.word, c=pw.reducers.count())
    outputs = []

    def on_change(key, row, time, is_addition):
        if is_addition:
            outputs.append(row["c"])
            seen.set()

    pw.io.subscribe(counts, on_change=on_change)
    started = time.perf_counter()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    seconds = time.perf_counter() - started
    if os.environ.get("PATHWAY_PROCESS_ID", "0") == "0":
        with open(os.path.join(sys.argv[1], "latency.json"), "w") as out:
            json.dump({"seconds": seconds, "outputs": len(outputs)}, out)
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


#: Ray uses the loopback address (as on a laptop): the benchmark talks to no other address.
RAY_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def spawn_command(workers: int, program: str, *args: str, ray: str | None = None) -> list[str]:
    if impl() == "pathway":
        cli = os.path.join(os.path.dirname(sys.executable), "pathway")
        return [cli, "spawn", "-n", str(workers), sys.executable, program, *args]
    options = ["--ray", ray] if ray else []
    return [sys.executable, "-m", "deltaflow", "spawn", *options, "-n", str(workers),
            sys.executable, program, *args]  # fmt: skip


#: (name, workers, whether on Ray) of each variant measured.
Variant = tuple[str, int, bool]


def variants(ray: str | None) -> list[Variant]:
    plain: list[Variant] = [("workers1", 1, False), ("workers2", 2, False)]
    if impl() == "deltaflow" and env_int("BENCH_WORKERS_LOCKSTEP", 0):
        plain.append(("lockstep2", 2, False))
    return plain + ([("ray2", 2, True)] if ray else [])


def variant_env(name: str) -> dict[str, str]:
    """The environment of a variant's run: ``lockstep2`` is two workers with one time in
    flight at once (the progress protocol's lock step), for comparison."""
    env = dict(os.environ)
    if name == "lockstep2":
        env["DELTAFLOW_WORKERS_TIMES_IN_FLIGHT"] = "1"
    return env


def start_ray() -> tuple[object | None, str | None]:
    """A one-node Ray cluster with 2 CPUs (None when not measured or Ray is missing)."""
    if impl() != "deltaflow" or not env_int("BENCH_WORKERS_RAY", 1):
        return None, None
    try:
        from ray.cluster_utils import Cluster
    except ImportError:
        print("Ray is not installed: no Ray figures (pip install 'deltaflow[ray]')")
        return None, None
    os.environ.update(RAY_LOOPBACK)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    cluster.wait_for_nodes()
    return cluster, cluster.address


def run_once(
    workers: int, program: str, words: str, rows: int, ray: str | None = None, name: str = ""
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        # Run beside the files, which are read by relative paths: which worker reads a file
        # depends on its path, so the split is the same in every run.
        done = subprocess.run(
            spawn_command(workers, program, os.path.basename(words), out, ray=ray),
            capture_output=True,
            text=True,
            cwd=os.path.dirname(words),
            env=variant_env(name),
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
        cluster, ray = start_ray()
        try:
            measured = variants(ray)
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in measured}
            for _ in range(repeats):  # interleaved: every variant under the same load
                for name, workers, on_ray in measured:
                    address = ray if on_ray else None
                    runs[name].append(run_once(workers, program, words, rows, address, name))
            medians = {}
            for name, _, _ in measured:
                medians[name] = statistics.median(r[0] for r in runs[name])
                report(f"{name}_run_seconds", medians[name], "s", "lower")
                process = statistics.median(r[1] for r in runs[name])
                report(f"{name}_process_seconds", process, "s", "lower")
            report("speedup_2_over_1", medians["workers1"] / medians["workers2"], "x", "higher")
            if ray:
                report("ray_over_plain", medians["ray2"] / medians["workers2"], "x", "lower")
            if env_int("BENCH_WORKERS_STREAMING", 1):
                streaming(tmp, repeats, ray)
                latency(tmp, repeats, ray)
        finally:
            if cluster is not None:
                cluster.shutdown()  # type: ignore[attr-defined]
    report("load_average_end", os.getloadavg()[0], "", "lower")


def run_streaming(
    program: str,
    workers: int,
    rows: int,
    commit: int,
    vocabulary: int,
    ray: str | None,
    name: str = "",
) -> float:
    """One streaming run: the seconds of the longest ``pw.run()``, the counts checked."""
    with tempfile.TemporaryDirectory() as out:
        args = (out, str(rows), str(commit), str(vocabulary))
        done = subprocess.run(
            spawn_command(workers, program, *args, ray=ray),
            capture_output=True,
            text=True,
            env=variant_env(name),
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
    return max(r["seconds"] for r in results)


def streaming_program(tmp: str) -> str:
    program = os.path.join(tmp, "stream.py")
    with open(program, "w") as out:
        out.write(STREAMING.replace("IMPL", impl()))
    return program


def streaming(tmp: str, repeats: int, ray: str | None = None) -> None:
    """Python subject -> groupby(word).reduce(count, sum) -> subscribe, in commits of
    BENCH_COMMIT rows (default 1,000): rows per second of the whole run on 1 and 2 workers
    (and on 2 Ray actors)."""
    rows = env_int("BENCH_STREAM_ROWS", 200_000)
    commit = env_int("BENCH_COMMIT", 1_000)
    vocabulary = env_int("BENCH_STREAM_VOCABULARY", 10_000)
    program = streaming_program(tmp)
    measured = variants(ray)
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in measured}
    for _ in range(repeats):
        for name, workers, on_ray in measured:
            address = ray if on_ray else None
            seconds[name].append(
                run_streaming(program, workers, rows, commit, vocabulary, address, name)
            )
    rates = {name: rows / statistics.median(seconds[name]) for name in seconds}
    for name, rate in rates.items():
        report(f"streaming_{name}_rows_per_s", rate, "rows/s", "higher")
    report("streaming_speedup_2_over_1", rates["workers2"] / rates["workers1"], "x", "higher")


def latency(tmp: str, repeats: int, ray: str | None = None) -> None:
    """One row a time, each committed once the output saw the last (see ``LATENCY``):
    milliseconds per time, the round trip of the progress protocol and the exchange."""
    times = env_int("BENCH_LATENCY_TIMES", 200)
    if times <= 0:
        return
    program = os.path.join(tmp, "latency.py")
    with open(program, "w") as out:
        out.write(LATENCY.replace("IMPL", impl()))
    measured = variants(ray)
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in measured}
    for _ in range(repeats):
        for name, workers, on_ray in measured:
            with tempfile.TemporaryDirectory() as out:
                command = spawn_command(
                    workers, program, out, str(times), ray=ray if on_ray else None
                )
                done = subprocess.run(
                    command, capture_output=True, text=True, env=variant_env(name)
                )
                if done.returncode != 0:
                    raise SystemExit(f"latency, {name}:\n{done.stderr[-3000:]}")
                with open(os.path.join(out, "latency.json")) as result:
                    measured_run = json.load(result)
            if measured_run["outputs"] != times:
                raise SystemExit(f"latency, {name}: {measured_run['outputs']} outputs, not {times}")
            seconds[name].append(measured_run["seconds"])
    for name, values in seconds.items():
        report(f"time_ms_{name}", 1000 * statistics.median(values) / times, "ms", "lower")


if __name__ == "__main__":
    main()
