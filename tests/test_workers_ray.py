"""Workers as Ray actors (``deltaflow spawn --ray ADDRESS -n N``) on a simulated cluster of two
nodes on this machine (``ray.cluster_utils.Cluster``: a head node and a second node, each a
raylet with its own object store, one CPU each, so that the two workers' actors must go to
different nodes). The same programs as ``test_workers.py`` give the same results as one plain
worker; a worker whose actor is killed fails the run, naming it, without hanging; a
persisted run whose worker died resumes from its last checkpoint.

One cluster serves the whole module (starting one takes a few seconds). Ray is told to use
the loopback address (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, as on a laptop), so that
nothing here talks to another address than 127.0.0.1.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import workers_persist_program as persisted  # noqa: E402 - after the guard
from test_workers import (  # noqa: E402
    PROGRAM,
    _cases,
    _environment,
    per_time,
    rows_read,
    run_cases,
)
from test_workers_persistence import _data  # noqa: E402

PYTHON = sys.executable
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """The address of a Ray cluster of two nodes of one CPU each."""
    from ray.cluster_utils import Cluster

    saved = {name: os.environ.get(name) for name in LOOPBACK}
    os.environ.update(LOOPBACK)
    node = {"num_cpus": 1, "include_dashboard": False}
    simulated = Cluster(initialize_head=True, head_node_args=node)
    try:
        simulated.add_node(num_cpus=1)
        simulated.wait_for_nodes()
        yield simulated.address
    finally:
        simulated.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def spawn_ray(
    address: str, workers: int, *args: str, cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    environment = {**_environment(), **LOOPBACK, **env}
    ray_option = ["--ray", address] if address else []
    return subprocess.run(
        [PYTHON, "-m", "deltaflow", "spawn", *ray_option, "-n", str(workers), PYTHON, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def actor_nodes(stderr: str) -> dict[int, str]:
    """Per worker, the Ray node its actor ran on (the driver's log lines)."""
    return {
        int(worker): node
        for worker, node in re.findall(r"worker (\d+): Ray actor on node (\w+)", stderr)
    }


def test_pipelines_on_two_nodes_match_one_plain_worker(cluster: str, tmp_path: Path) -> None:
    cases = _cases()
    reference = run_cases(cases, 1, tmp_path)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    out = tmp_path / "ray.json"
    done = spawn_ray(cluster, 2, str(PROGRAM), "cases.json", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    nodes = actor_nodes(done.stderr)
    assert sorted(nodes) == [0, 1] and nodes[0] != nodes[1], done.stderr[-3000:]
    produced = json.loads(out.read_text())
    for case, expected, got in zip(cases, reference, produced, strict=True):
        assert per_time(got) == per_time(expected), f"{case['pipeline']} differs on Ray"
    # Both workers ran the partitioned operators on some of the rows (their log lines).
    partitioned = re.findall(r"worker (\d) of 2: .* (\d+) rows into partitioned", done.stderr)
    assert sorted(w for w, _ in partitioned) == ["0", "1"], done.stderr[-3000:]
    assert all(int(rows) > 0 for _, rows in partitioned), partitioned


FILES = textwrap.dedent("""
    import sys
    import deltaflow as pw

    class A(pw.Schema):
        k: int
        v: int
        t: int

    class B(pw.Schema):
        k: int
        w: int

    a = pw.io.csv.read("a", schema=A, mode="static")
    b = pw.io.csv.read("b", schema=B, mode="static")
    joined = a.join_left(b, a.k == b.k).select(a.k, a.t, x=a.v * pw.coalesce(b.w, 1))
    totals = joined.groupby(joined.k).reduce(
        joined.k, n=pw.reducers.count(), s=pw.reducers.sum(joined.x)
    )
    windows = joined.windowby(
        joined.t, window=pw.temporal.tumbling(duration=10), instance=joined.k % 3
    ).reduce(
        start=pw.this._pw_window_start,
        instance=pw.this._pw_instance,
        n=pw.reducers.count(),
        top=pw.reducers.max(pw.this.x),
    )
    pw.io.csv.write(totals, sys.argv[1] + "/totals.csv")
    pw.io.csv.write(windows, sys.argv[1] + "/windows.csv")
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
""")


def _write_files(data: Path) -> None:
    for name in ("a", "b"):
        (data / name).mkdir(parents=True)
    for file in range(8):
        rows = [((file * 5 + i) % 13, file * 40 + i, (file * 17 + i * 3) % 60) for i in range(30)]
        (data / "a" / f"part{file}.csv").write_text(
            "k,v,t\n" + "".join(f"{k},{v},{t}\n" for k, v, t in rows)
        )
        (data / "b" / f"part{file}.csv").write_text(
            "k,w\n" + "".join(f"{(file + i) % 11},{i + 2}\n" for i in range(3))
        )


def final_rows(path: Path) -> Counter:
    """The rows a CSV output holds at the end: each row's diffs summed (times dropped)."""
    state: Counter = Counter()
    with open(path) as handle:
        for row in csv.DictReader(handle):
            diff = int(row.pop("diff"))
            row.pop("time")
            state[tuple(sorted(row.items()))] += diff
    return +state


def test_files_in_and_out_on_two_nodes_match_one_plain_worker(cluster: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_files(data)
    program = tmp_path / "files.py"
    program.write_text(FILES)
    outputs = {}
    for name, address in (("plain", ""), ("ray", cluster)):
        out = tmp_path / name
        out.mkdir()
        workers = 1 if name == "plain" else 2
        done = spawn_ray(address, workers, str(program), str(out), cwd=data)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs[name] = {table: final_rows(out / f"{table}.csv") for table in ("totals", "windows")}
        if name == "ray":
            nodes = actor_nodes(done.stderr)
            assert len(set(nodes.values())) == 2, done.stderr[-3000:]
            read = rows_read(done.stderr, 2)  # each worker read its share of the files
            assert all(rows > 0 for rows in read) and sum(read) == 8 * 30 + 8 * 3, read
    assert len(outputs["plain"]["totals"]) == 13
    assert len(outputs["plain"]["windows"]) > 10
    assert outputs["ray"] == outputs["plain"]


KILLED = textwrap.dedent("""
    import os, sys, time
    import deltaflow as pw

    with open(os.path.join(sys.argv[1], "pid-" + os.environ["PATHWAY_PROCESS_ID"]), "w") as f:
        f.write(str(os.getpid()))

    class Numbers(pw.Schema):
        k: int
        v: int

    class Subject(pw.io.python.ConnectorSubject):
        def run(self):
            for step in range(3000):  # about 2.5 minutes: killed long before
                for i in range(20):
                    self.next(k=i % 7, v=step)
                self.commit()
                time.sleep(0.05)

    numbers = pw.io.python.read(Subject(), schema=Numbers)
    sums = numbers.groupby(numbers.k).reduce(numbers.k, s=pw.reducers.sum(numbers.v))

    def on_change(key, row, time, is_addition):
        with open(os.path.join(sys.argv[1], "progress"), "a") as f:
            f.write(".")

    pw.io.subscribe(sums, on_change=on_change)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
""")


@pytest.mark.parametrize("killed", [1, 0])
def test_a_killed_worker_fails_the_run_naming_it(cluster: str, tmp_path: Path, killed: int) -> None:
    program = tmp_path / "killed.py"
    program.write_text(KILLED)
    environment = {
        **_environment(),
        **LOOPBACK,
        "DELTAFLOW_RAY_ADDRESS": cluster,  # the address from the environment, not --ray
    }
    command = [PYTHON, "-m", "deltaflow", "spawn", "-n", "2", PYTHON, str(program), str(tmp_path)]
    started = time.monotonic()
    with subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    ) as driver:  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            pid = tmp_path / f"pid-{killed}"
            progress = tmp_path / "progress"
            while not (pid.exists() and progress.exists()) and time.monotonic() < deadline:
                assert driver.poll() is None, driver.communicate()[1][-3000:]
                time.sleep(0.1)
            assert progress.exists(), "the run did not start"
            os.kill(int(pid.read_text()), signal.SIGKILL)  # the worker's actor, mid-run
            _, stderr = driver.communicate(timeout=60)
        finally:
            if driver.poll() is None:
                driver.kill()
    assert driver.returncode != 0
    assert time.monotonic() - started < 150  # no hang
    assert f"worker {killed} failed: its Ray actor died" in stderr, stderr[-3000:]
    # The other worker stopped with an error naming the killed one (raised by its engine loop).
    other = 1 - killed
    pattern = (
        rf"worker {other} failed: WorkerError: worker {other}: worker {killed} (exited|is gone)"
    )
    assert re.search(pattern, stderr), stderr[-3000:]


def test_spawn_returns_the_failing_worker_status_on_ray(cluster: str, tmp_path: Path) -> None:
    code = "import os, sys; sys.exit(5 if os.environ['PATHWAY_PROCESS_ID'] == '1' else 0)"
    done = spawn_ray(cluster, 2, "-c", code, cwd=tmp_path)
    assert done.returncode == 5, done.stderr[-3000:]
    assert "worker 1 failed: exit status 5" in done.stderr


def test_non_python_commands_are_refused_with_ray(cluster: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "deltaflow", "spawn", "--ray", cluster, "-n", "2", "sh", "-c", "true"],
        cwd=tmp_path,
        env={**_environment(), **LOOPBACK},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--ray runs Python programs in Ray actors" in done.stderr


def test_a_run_whose_worker_died_resumes_from_its_checkpoint(cluster: str, tmp_path: Path) -> None:
    """Worker 1's actor dies right after storing its part of a checkpoint (before answering
    worker 0, so that checkpoint is never completed); ``spawn --ray`` run again resumes from
    the previous one, and the outputs of both runs add up to every change exactly once."""
    program = str(Path(__file__).with_name("workers_persist_program.py"))
    data, state, out = _data(tmp_path, [1, 2, 3, 4]), tmp_path / "state", tmp_path / "out"
    args = (program, ".", str(state), str(out))
    crashed = spawn_ray(cluster, 2, *args, cwd=data, PRIOR="", ADD="8,9,12", CRASH_AFTER="2")
    assert crashed.returncode != 0
    assert "worker 1 failed: its Ray actor died" in crashed.stderr, crashed.stderr[-3000:]
    assert len(list((state / "checkpoints").iterdir())) >= 1  # an earlier checkpoint is there
    resumed = spawn_ray(cluster, 2, *args, cwd=data, PRIOR="", ADD="8,9,12", MODE="static")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from checkpoint" in resumed.stderr, resumed.stderr[-3000:]
    assert persisted.consolidated([out]) == persisted.expected(data)
