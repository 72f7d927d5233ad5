"""A child forked after deltaflow ran gets a clear error instead of hanging in Polars.

The scenario runs in a fresh interpreter (so the test process's own threads do not matter):
it runs a pipeline, then starts children with multiprocessing's ``fork`` and ``spawn``
methods. The whole scenario has a timeout: a hang fails the test instead of blocking it.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


def _run_scenario(tmp_path: Path, name: str, scenario: str, *args: Path) -> str:
    """Run a scenario script in a fresh interpreter; its last line of output (it must exit 0)."""
    script = tmp_path / name
    script.write_text(scenario)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


SCENARIO = textwrap.dedent("""
    import json, multiprocessing as mp, sys
    import deltaflow as pw


    def pipeline():
        rows = "a | b\\n" + "\\n".join(f"{i} | {i % 7}" for i in range(5000))
        t = pw.debug.table_from_markdown(rows)
        r = t.groupby(t.b).reduce(t.b, s=pw.reducers.sum(t.a))
        return sorted(pw.debug.table_to_pandas(r)["s"].tolist())


    def child(queue):
        try:
            queue.put(["ok", pipeline()])
        except Exception as exc:
            queue.put(["error", type(exc).__name__, str(exc)])


    def start(method):
        context = mp.get_context(method)
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,))
        process.start()
        process.join(90)
        if process.is_alive():
            process.kill()
            return ["hung"]
        return queue.get(timeout=10)


    if __name__ == "__main__":
        expected = pipeline()
        results = {"fork": start("fork"), "spawn": start("spawn"), "expected": expected}
        print(json.dumps(results))
""")


def test_forked_child_raises_a_clear_error_and_spawn_works(tmp_path: Path) -> None:
    script = tmp_path / "scenario.py"
    script.write_text(SCENARIO)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    results = json.loads(done.stdout.strip().splitlines()[-1])
    fork = results["fork"]
    assert fork[0] == "error", fork
    assert fork[1] == "ForkedAfterPolarsError"
    assert "spawn" in fork[2] and "fork" in fork[2]
    assert results["spawn"] == ["ok", results["expected"]]


def test_check_not_forked_is_silent_in_an_ordinary_process() -> None:
    from deltaflow import _fork

    _fork.check_not_forked()
    assert not _fork.forked_after_polars()


EMPTY_RUN = textwrap.dedent("""
    import multiprocessing as mp
    import polars as pl
    import deltaflow as pw

    if __name__ == "__main__":
        pl.DataFrame({"a": [1, 2]}).select(pl.col("a").sum())  # the pool runs from here on
        child = mp.get_context("fork").Process(target=pw.run)
        child.start()
        child.join(60)
        print(child.exitcode)
""")


def test_a_forked_child_may_run_an_empty_pipeline(tmp_path: Path) -> None:
    """pw.run with nothing defined uses no Polars, so a forked child may call it."""
    script = tmp_path / "empty.py"
    script.write_text(EMPTY_RUN)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0"


RERUN_SCENARIO = textwrap.dedent("""
    import multiprocessing as mp, sys
    import deltaflow as pw

    OUT = sys.argv[1]


    class Row(pw.Schema):
        word: str


    def warm_up():
        # Polars' threads start in this process before any fork.
        t = pw.debug.table_from_markdown("n\\n1\\n2")
        return pw.debug.table_to_pandas(t.reduce(s=pw.reducers.sum(t.n)))["s"].tolist()


    def child(words):
        t = pw.debug.table_from_rows(Row, [(w,) for w in words])
        counted = t.groupby(t.word).reduce(t.word, n=pw.reducers.count())
        pw.io.csv.write(counted, OUT)
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        raise SystemExit(7)  # never reached in the forked child: it exits with the rerun's code


    if __name__ == "__main__":
        assert warm_up() == [3]
        process = mp.get_context("fork").Process(target=child, args=(["a", "b", "a"],))
        process.start()
        process.join(120)
        print("exit", process.exitcode)
""")


def test_forked_multiprocessing_child_reruns_its_target_in_a_fresh_interpreter(
    tmp_path: Path,
) -> None:
    pytest.importorskip("cloudpickle")
    out = tmp_path / "out.csv"
    # The rerun ran the whole target: the pipeline's output, then the target's own exit code
    # (the forked child never ran past pw.run).
    assert _run_scenario(tmp_path, "rerun.py", RERUN_SCENARIO, out) == "exit 7"
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((row["word"], row["n"]) for row in rows) == [("a", "2"), ("b", "1")]


CARRIED_GRAPH_SCENARIO = textwrap.dedent("""
    import multiprocessing as mp, sys
    import deltaflow as pw

    DIRECTORY, OUT = sys.argv[1], sys.argv[2]


    class Row(pw.Schema):
        word: str


    @pw.udf
    def shout(word: str) -> str:
        return word.upper()


    if __name__ == "__main__":
        # Polars' threads start here; then the parent defines a pipeline and forks a child
        # whose target is pw.run itself: it must run what the parent defined.
        assert pw.debug.table_to_pandas(pw.debug.table_from_markdown("n\\n1"))["n"].tolist() == [1]
        words = pw.io.csv.read(DIRECTORY, schema=Row, mode="static")
        static = pw.debug.table_from_rows(Row, [("c",)])  # a Polars frame in the graph
        both = words.concat_reindex(static).select(w=shout(pw.this.word))
        counted = both.groupby(both.w).reduce(both.w, n=pw.reducers.count())
        pw.io.csv.write(counted, OUT)
        process = mp.get_context("fork").Process(target=pw.run)
        process.start()
        process.join(120)
        print("exit", process.exitcode)
""")


def test_a_forked_pw_run_runs_the_graph_its_parent_defined(tmp_path: Path) -> None:
    pytest.importorskip("cloudpickle")
    words = tmp_path / "words"
    words.mkdir()
    (words / "a.csv").write_text("word\na\nb\na\n")
    out = tmp_path / "out.csv"
    assert _run_scenario(tmp_path, "carried.py", CARRIED_GRAPH_SCENARIO, words, out) == "exit 0"
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((row["w"], row["n"]) for row in rows) == [("A", "2"), ("B", "1"), ("C", "1")]


def test_carried_values_get_fresh_locks_and_keep_their_data() -> None:
    import pickle
    import queue
    import threading

    import cloudpickle
    import polars as pl

    from deltaflow import _fork

    held = threading.Lock()
    held.acquire()
    event = threading.Event()
    event.set()
    value = {
        "lock": held,
        "event": event,
        "condition": threading.Condition(),
        "queue": queue.Queue(5),
        "series": pl.Series("id", [2**100, None], dtype=pl.UInt128),
        "frame": pl.DataFrame({"a": [1, 2], "o": pl.Series([(1,), None], dtype=pl.Object)}),
    }
    with pytest.raises(TypeError):
        pickle.dumps(value)
    back = cloudpickle.loads(_fork._dumps_with_fresh_locks(value))
    assert back["lock"].acquire(blocking=False)  # a new, unlocked lock
    assert back["event"].is_set()
    assert back["queue"].maxsize == 5 and back["queue"].empty()
    with back["condition"]:
        pass
    assert back["series"].dtype == pl.UInt128
    assert back["series"].to_list() == [2**100, None]
    assert back["frame"]["a"].to_list() == [1, 2]
    assert back["frame"]["o"].to_list() == [(1,), None]


TERMINATE_SCENARIO = textwrap.dedent("""
    import multiprocessing as mp, os, sys, time
    import deltaflow as pw

    DIRECTORY, OUT, PIDS = sys.argv[1], sys.argv[2], sys.argv[3]


    class Row(pw.Schema):
        word: str


    def child():
        with open(PIDS, "a") as pids:  # the forked child, then the fresh interpreter
            pids.write(f"{os.getpid()}\\n")
        words = pw.io.csv.read(DIRECTORY, schema=Row)  # streaming: runs until stopped
        counted = words.groupby(words.word).reduce(words.word, n=pw.reducers.count())
        pw.io.csv.write(counted, OUT)
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)


    if __name__ == "__main__":
        assert pw.debug.table_to_pandas(pw.debug.table_from_markdown("n\\n1"))["n"].tolist() == [1]
        process = mp.get_context("fork").Process(target=child)
        process.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
            os.path.exists(OUT) and "a" in open(OUT).read()
        ):
            time.sleep(0.1)
        process.terminate()
        process.join(60)
        print("exit", process.exitcode)
""")


def test_terminating_a_forked_child_stops_its_rerun(tmp_path: Path) -> None:
    """``Process.terminate()`` of a rescued child reaches the fresh interpreter running its
    target: no pipeline is left running on its own (a second run would then race it)."""
    pytest.importorskip("cloudpickle")
    words = tmp_path / "words"
    words.mkdir()
    (words / "a.csv").write_text("word\na\nb\na\n")
    out, pids = tmp_path / "out.csv", tmp_path / "pids"
    # The rerun stops gracefully and exits 143 (128 + SIGTERM), and the child exits as it did.
    last = _run_scenario(tmp_path, "terminate.py", TERMINATE_SCENARIO, words, out, pids)
    assert last == "exit 143"
    forked, rerun = (int(line) for line in pids.read_text().split())
    assert forked != rerun
    gone = False
    for _ in range(100):
        try:
            os.kill(rerun, 0)
        except ProcessLookupError:
            gone = True
            break
        time.sleep(0.1)
    assert gone, "the fresh interpreter outlived the terminated child"
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((row["word"], row["n"]) for row in rows) == [("a", "2"), ("b", "1")]


def test_a_carried_join_select_keeps_its_placeholders() -> None:
    """A graph pickled for a fresh interpreter (what a forked child carries) still knows
    pw.left / pw.right / pw.this: operations recognise them by identity."""
    cloudpickle = pytest.importorskip("cloudpickle")
    import deltaflow as pw

    prices = pw.debug.table_from_markdown("item | price\nink | 3\npen | 5")
    stock = pw.debug.table_from_markdown("item | qty\nink | 10\npen | 2")
    value = prices.join(stock, pw.left.item == pw.right.item).select(
        pw.left.item, total=pw.left.price * pw.right.qty
    )
    carried = cloudpickle.loads(cloudpickle.dumps(value.filter(pw.this.total > 0)))
    for placeholder in (pw.this, pw.left, pw.right):
        assert cloudpickle.loads(cloudpickle.dumps(placeholder)) is placeholder
    frame = pw.debug.table_to_pandas(carried)
    assert sorted(zip(frame["item"], frame["total"], strict=True)) == [("ink", 30), ("pen", 10)]
