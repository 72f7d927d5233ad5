"""Pipelines on several worker processes (``deltaflow spawn -n N``) give exactly the update
streams of one worker: the same changes at the same times, consolidated per time.

Every run here is real: ``deltaflow spawn`` starts N Python processes that connect over
local sockets and exchange batches. To keep the file fast, one run evaluates many cases (one
graph, one ``pw.run()``), and the property test draws a list of cases per example.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.engine.operators import InputOperator
from deltaflow.engine.runtime import Runtime
from deltaflow.engine.workers.placement import Placement, partition_hashers, place_operators
from test_stateful_properties import update_streams

PYTHON = sys.executable
PROGRAM = Path(__file__).with_name("workers_program.py")
SRC = str(Path(__file__).resolve().parents[1] / "src")

TWO_INPUTS = {
    "join_groupby",
    "outer_join",
    "reduce_then_join",
    "two_keys_and_sort",
    "concat_and_filter",
    "udf_key_and_update_rows",
    "id_updates",
    "id_filters",
    "lookups",
    "temporal_joins",
}
ONE_INPUT = {
    "groupby",
    "global_reduce",
    "windows",
    "counts_and_sums",
    "deduplicate_by_instance",
    "sort_by_instance",
    "sessions",
    "sliding_windows",
    "behaviors",
}


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.pop("PATHWAY_PROCESSES", None)
    env.pop("PATHWAY_PROCESS_ID", None)
    # Reduces of counts and sums combine every delta before the exchange, however small.
    env["DELTAFLOW_WORKERS_COMBINE_ROWS"] = "0"
    return env


def spawn(workers: int, *args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "deltaflow", "spawn", "-n", str(workers), PYTHON, *args],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cases(cases: list[dict[str, Any]], workers: int, tmp: Path) -> list[list[Any]]:
    spec = tmp / "cases.json"
    spec.write_text(json.dumps(cases))
    out = tmp / f"out{workers}.json"
    done = spawn(workers, str(PROGRAM), str(spec), str(out), cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def per_time(changes: list[list[Any]]) -> dict[int, Counter]:
    """Each time's changes as a multiset; a row twice in one time would be unconsolidated."""
    times: dict[int, Counter] = {}
    for time, key, row, diff in changes:
        entry = (key, json.dumps(row), diff)
        counter = times.setdefault(time, Counter())
        assert counter[entry] == 0, f"{entry} twice at time {time}"
        counter[entry] += 1
    for time, counter in times.items():
        for key, row, diff in counter:
            assert (key, row, -diff) not in counter, f"{row} inserted and retracted at {time}"
    return times


def assert_same_on_workers(cases: list[dict[str, Any]], tmp: Path, counts: tuple[int, ...]) -> None:
    reference = run_cases(cases, 1, tmp)
    assert len(reference) == len(cases)
    for workers in counts:
        got = run_cases(cases, workers, tmp)
        for case, expected, produced in zip(cases, reference, got, strict=True):
            assert per_time(produced) == per_time(expected), (
                f"{case['pipeline']} on {workers} workers differs from one worker"
            )


# Hand-written streams: insertions, deletions and updates over several times, many keys (so
# that every worker owns some), a late row for an old key.
LEFT = [
    *[[label, label % 7, label, 2, 1] for label in range(1, 30)],
    [3, 3, 3, 4, -1],
    [3, 4, 33, 4, 1],
    [8, 1, 8, 6, -1],
    [40, 0, -5, 6, 1],
    [41, 6, 2, 8, 1],
    [12, 5, 12, 8, -1],
]
RIGHT = [
    *[[label, label % 5, label * 2, 2, 1] for label in range(1, 12)],
    [2, 2, 4, 4, -1],
    [20, 6, 1, 4, 1],
    [21, 9, 9, 6, 1],
    [5, 0, 10, 8, -1],
    [5, 3, 10, 8, 1],
]


def _cases() -> list[dict[str, Any]]:
    cases = [{"pipeline": name, "streams": [LEFT]} for name in sorted(ONE_INPUT)]
    cases += [{"pipeline": name, "streams": [LEFT, RIGHT]} for name in sorted(TWO_INPUTS)]
    return cases


def test_update_streams_are_the_same_on_one_two_and_three_workers(tmp_path: Path) -> None:
    assert_same_on_workers(_cases(), tmp_path, (2, 3))


def test_the_reference_run_is_not_empty(tmp_path: Path) -> None:
    reference = run_cases(_cases(), 1, tmp_path)
    for case, produced in zip(_cases(), reference, strict=True):
        assert len({change[0] for change in produced}) >= 2, case["pipeline"]


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(ONE_INPUT | TWO_INPUTS)),
            update_streams(max_times=4, max_key=6),
            update_streams(100, max_times=4, max_key=6),
        ),
        min_size=4,
        max_size=8,
    )
)
def test_random_update_streams_are_the_same_on_two_and_three_workers(
    drawn: list[tuple[str, list[Any], list[Any]]],
) -> None:
    import tempfile

    cases = [
        {
            "pipeline": name,
            "streams": [list(map(list, left))]
            + ([list(map(list, right))] if name in TWO_INPUTS else []),
        }
        for name, left, right in drawn
    ]
    with tempfile.TemporaryDirectory() as tmp:
        assert_same_on_workers(cases, Path(tmp), (2, 3))


_STREAMING = textwrap.dedent("""
    import json, os, sys, time
    import deltaflow as pw

    class Words(pw.Schema):
        word: str
        n: int

    class Subject(pw.io.python.ConnectorSubject):
        def run(self):
            for step in range(6):
                for i in range(40):
                    self.next(word=f"w{(i * 7 + step) % 23}", n=i + step)
                self.commit()
                time.sleep(0.05)

    words = pw.io.python.read(Subject(), schema=Words)
    counts = words.groupby(words.word).reduce(
        words.word, c=pw.reducers.count(), s=pw.reducers.sum(words.n)
    )
    state, times = {}, {}

    def on_change(key, row, time, is_addition):
        entry = (row["word"], row["c"], row["s"])
        times.setdefault(time, []).append((entry, is_addition))
        if is_addition:
            state[row["word"]] = entry
        elif state.get(row["word"]) == entry:
            del state[row["word"]]

    pw.io.subscribe(counts, on_change=on_change)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    if os.environ.get("PATHWAY_PROCESS_ID", "0") == "0":
        json.dump({"state": sorted(state.values()), "times": list(times.values())},
                  open(sys.argv[1], "w"))
""")


def test_a_streaming_python_input_gives_the_same_results_on_two_workers(tmp_path: Path) -> None:
    program = tmp_path / "stream.py"
    program.write_text(_STREAMING)
    results = []
    for workers in (1, 2):
        out = tmp_path / f"stream{workers}.json"
        done = spawn(workers, str(program), str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        results.append(json.loads(out.read_text()))
    one, two = results
    assert one["state"] == two["state"]
    assert len(one["state"]) == 23
    for changes in two["times"]:  # each time's changes consolidated: a group changes once
        inserted = [entry[0] for entry, added in changes if added]
        assert len(inserted) == len(set(inserted))


_SLOW_WORKER = textwrap.dedent("""
    import json, os, sys, time
    import deltaflow as pw

    class S(pw.Schema):
        k: int
        v: int

    # Twelve times; the reduce is partitioned, and the UDF below it sleeps on worker 1 only,
    # so worker 1 finishes every time late while worker 0 announces the next ones.
    lines = ["k | v | __time__ | __diff__"]
    for step in range(12):
        lines += [f"{(step * 5 + i) % 17} | {step * 10 + i} | {2 * step + 2} | 1" for i in range(9)]
        if step:
            lines.append(f"{(step * 5 - 5) % 17} | {step * 10 - 10} | {2 * step + 2} | -1")
    t = pw.debug.table_from_markdown("\\n".join(lines), schema=S)
    sums = t.groupby(t.k).reduce(t.k, n=pw.reducers.count(), s=pw.reducers.sum(t.v))

    @pw.udf
    def slow(s: int) -> int:
        if os.environ.get("PATHWAY_PROCESS_ID") == "1":
            time.sleep(0.01)
        return s * 2

    doubled = sums.select(sums.k, sums.n, d=slow(sums.s))
    both = doubled + doubled.sort(key=doubled.d)  # sort: gathered on worker 0
    events = []

    def on_change(key, row, time, is_addition):
        row = {name: value for name, value in row.items() if name != "prev" and name != "next"}
        events.append(["change", time, sorted(row.items()), 1 if is_addition else -1])

    def on_time_end(time):
        events.append(["end", time])

    pw.io.subscribe(both, on_change=on_change, on_time_end=on_time_end)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    if os.environ.get("PATHWAY_PROCESS_ID", "0") == "0":
        json.dump(events, open(sys.argv[1], "w"))
""")


def test_a_slow_worker_keeps_every_time_whole_and_in_order(tmp_path: Path) -> None:
    """Worker 0 runs ahead of a slow worker 1 (several times in flight), yet the output gets
    each time's changes, all of them, only after every worker finished the time, and the
    times in order: the same per-time stream as one worker."""
    program = tmp_path / "slow.py"
    program.write_text(_SLOW_WORKER)
    runs = []
    for workers in (1, 2):
        out = tmp_path / f"slow{workers}.json"
        done = spawn(workers, str(program), str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append((json.loads(out.read_text()), done.stderr))
    streams = []
    for events, _ in runs:
        ends = [event[1] for event in events if event[0] == "end"]
        assert ends == sorted(set(ends)), "times ended out of order or twice"
        by_time: dict[int, list[Any]] = {}
        current = None  # the time whose changes are being delivered
        for event in events:
            if event[0] == "change":
                assert current is None or event[1] == current, "changes of two times mixed"
                current = event[1]
                by_time.setdefault(event[1], []).append(json.dumps(event[2:]))
            else:
                assert current in (None, event[1]), "a time ended before its changes came"
                current = None
        assert list(by_time) == sorted(by_time)
        streams.append({time: sorted(rows) for time, rows in by_time.items()})
    one, two = streams
    assert len(one) == 12
    assert two == one
    # The run really had times in flight on worker 0 while worker 1 was behind.
    flight = re.search(r"worker 0 of 2: \d+ times \(at most (\d+) in flight\)", runs[1][1])
    assert flight is not None, runs[1][1]
    assert int(flight.group(1)) > 1


def test_partitioned_operators_share_the_rows(tmp_path: Path) -> None:
    cases = [{"pipeline": "join_groupby", "streams": [LEFT, RIGHT]}]
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    done = spawn(2, str(PROGRAM), str(spec), str(tmp_path / "out.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "rows into partitioned" in line]
    assert len(lines) == 2, done.stderr
    for line in lines:  # both workers ran the join and the reduce on some of the rows
        assert "reduce" in line and "join_left" in line, line
        rows = int(line.split(" rows into partitioned")[0].rsplit(" ", 1)[1])
        assert rows > 0, line


def _placements(
    split: set[int] | None = None, *, all_split: bool = False
) -> dict[tuple[str, str], set[Placement]]:
    """Where the operators of the current graph run on several workers, by (operator class,
    description); ``split``: the inputs read on every worker (default: those that can be;
    ``all_split``: every input, as if each were read on every worker)."""
    from deltaflow.plan import REGISTRY

    runtime = Runtime(REGISTRY.outputs)
    if all_split:
        split = {p for p, op in enumerate(runtime.operators) if isinstance(op, InputOperator)}
    if split is None:
        split = {
            position
            for position, op in enumerate(runtime.operators)
            if getattr(getattr(op.node, "source", None), "splits", False)
        }
    hashers = [partition_hashers(op, False) for op in runtime.operators]
    placement, _ = place_operators(runtime.operators, hashers, runtime._inputs_of, split)
    found: dict[tuple[str, str], set[Placement]] = {}
    for op, where in zip(runtime.operators, placement, strict=True):
        name = getattr(getattr(op, "sink", None), "name", None) or op.describe()
        found.setdefault((type(op).__name__, name), set()).add(where)
    return found


def test_id_operations_instances_and_windows_are_placed_by_key() -> None:
    import workers_program as programs

    for name in sorted(TWO_INPUTS | ONE_INPUT):
        tables = [programs._table(LEFT)] + ([programs._table(RIGHT)] if name in TWO_INPUTS else [])
        pw.io.subscribe(programs.PIPELINES[name](*tables), on_change=lambda **_: None)
    placed = _placements(set())
    partitioned = {Placement.PARTITIONED}
    for kind in ("update_rows", "update_cells", "restrict", "intersect", "difference"):
        assert placed[("IdOpOperator", kind)] == partitioned, kind
    assert placed[("DeduplicateOperator", "deduplicate")] == partitioned
    # sort_by_instance has a sort per instance and one of the whole table.
    assert placed[("SortOperator", "sort")] == {Placement.PARTITIONED, Placement.SINGLE}
    assert placed[("SessionOperator", "windowby(session)")] == partitioned
    assert placed[("IntervalJoinOperator", "interval_join_left")] == partitioned
    assert placed[("AsofJoinOperator", "asof_join_left")] == partitioned
    assert placed[("WindowAssignOperator", "windowby")] == {Placement.LOCAL}
    assert placed[("WindowIdOperator", "windowby ids")] == {Placement.LOCAL}
    # The behaviors' gates of rows all on worker 0 (debug tables) stay there; of rows read
    # on every worker, they share the frontier of every worker: the first takes the rows by
    # id, the ones below it find them there.
    for kind in ("buffer", "forget", "ignore_late"):
        assert placed[("TimeGateOperator", kind)] == {Placement.SINGLE}, kind
    spread = _placements(all_split=True)
    assert spread[("TimeGateOperator", "ignore_late")] == partitioned
    for kind in ("buffer", "forget"):
        assert spread[("TimeGateOperator", kind)] == {Placement.LOCAL}, kind
    forgetting = ("ForgettingFilterOperator", "filter_out_results_of_forgetting")
    assert placed[forgetting] == partitioned  # by row id
    # A persisted deduplicate keeps its saved state on worker 0; a run keeping errors runs
    # the key projections once, on worker 0.
    from deltaflow.plan import REGISTRY

    for op in Runtime(REGISTRY.outputs).operators:
        if type(op).__name__ in ("DeduplicateOperator", "IdOpOperator", "SortOperator"):
            assert partition_hashers(op, True) is None
        if type(op).__name__ == "DeduplicateOperator":
            assert partition_hashers(op, False, persisted=True) is None


def test_partitioned_outputs_of_id_operations_and_windows_are_written_where_they_are() -> None:
    settings = {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}
    schema = pw.schema_from_types(word=str, at=int)
    words = pw.io.kafka.read(settings, "in", schema=schema, format="json")
    other = pw.io.kafka.read(settings, "in2", schema=schema, format="json")
    pw.io.kafka.write(words.update_rows(other), settings, "u", name="update_rows")

    def newer(new: int, old: int) -> bool:
        return new > old

    deduplicated = words.deduplicate(value=words.at, instance=words.word, acceptor=newer)
    pw.io.kafka.write(deduplicated, settings, "d", name="deduplicate")
    single = words.deduplicate(value=words.at, acceptor=newer)
    pw.io.kafka.write(single, settings, "d1", name="deduplicate without instance")
    links = words.sort(key=words.at, instance=words.word)
    pw.io.kafka.write(links, settings, "s", name="sort")
    counts = words.windowby(
        words.at, window=pw.temporal.sliding(hop=2, duration=5), instance=words.word
    ).reduce(pw.this._pw_instance, n=pw.reducers.count())
    pw.io.kafka.write(counts, settings, "w", name="windows")
    gated = words.windowby(
        words.at,
        window=pw.temporal.tumbling(duration=5),
        behavior=pw.temporal.common_behavior(delay=2, cutoff=4, keep_results=False),
    ).reduce(n=pw.reducers.count())
    pw.io.kafka.write(gated, settings, "g", name="gated windows")
    placed = _placements()
    # Each Kafka message (so each row id) is read by one worker: the behaviors' gates run
    # where the rows are read, sharing the frontier; nothing moves before the reduce.
    for kind in ("ignore_late", "buffer", "forget"):
        assert placed[("TimeGateOperator", kind)] == {Placement.LOCAL}, kind
    assert placed[("OutputOperator", "gated windows")] == {Placement.EVERY_WORKER}
    assert placed[("OutputOperator", "update_rows")] == {Placement.EVERY_WORKER}
    assert placed[("OutputOperator", "deduplicate")] == {Placement.EVERY_WORKER}
    assert placed[("OutputOperator", "windows")] == {Placement.EVERY_WORKER}
    # A row whose instance changes moves to another worker: sort's rows are gathered.
    assert placed[("OutputOperator", "sort")] == {Placement.SINGLE}
    assert placed[("OutputOperator", "deduplicate without instance")] == {Placement.SINGLE}
    assert placed[("DeduplicateOperator", "deduplicate")] == {
        Placement.PARTITIONED,
        Placement.SINGLE,
    }


FILES_PROGRAM = Path(__file__).with_name("workers_files_program.py")


def _write_inputs(data: Path) -> None:
    """Several files per input, so that every worker of 2 or 3 owns some of them."""
    for name in ("a", "b", "text"):
        (data / name).mkdir(parents=True)
    for file in range(9):
        rows = [((file * 5 + i) % 13, file * 50 + i) for i in range(25 + file)]
        (data / "a" / f"part{file}.csv").write_text(
            "k,v\n" + "".join(f"{k},{v}\n" for k, v in rows)
        )
        (data / "b" / f"part{file}.jsonl").write_text(
            "".join(json.dumps({"k": (file + i) % 13, "w": i}) + "\n" for i in range(4))
        )
        words = [f"w{(file * 3 + i) % 17}" for i in range(20)]
        (data / "text" / f"part{file}.txt").write_text("\n".join(words) + "\n")


def run_files(mode: str, workers: int, data: Path, tmp: Path) -> tuple[dict[str, Any], str]:
    out = tmp / f"{mode}{workers}.json"
    # Paths relative to the data directory: row ids (from the connector's name and each
    # file's path) are then the same whatever the directory.
    done = spawn(workers, str(FILES_PROGRAM), mode, ".", str(out), cwd=data)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stderr


def ranked(changes: list[list[Any]]) -> dict[int, Counter]:
    """:func:`per_time` with times replaced by their rank (file inputs get clock times)."""
    times = per_time(changes)
    return {rank: times[time] for rank, time in enumerate(sorted(times))}


def rows_read(stderr: str, workers: int) -> list[int]:
    """Per worker, the rows it read from split inputs (its log line)."""
    found = {}
    for line in stderr.splitlines():
        match = re.search(r"worker (\d+) of \d+: .* (\d+) rows read here", line)
        if match:
            found[int(match.group(1))] = int(match.group(2))
    assert sorted(found) == list(range(workers)), stderr[-3000:]
    return [found[w] for w in range(workers)]


def final_state(changes: list[list[Any]]) -> Counter:
    state: Counter = Counter()
    for _, key, row, diff in changes:
        state[(key, json.dumps(row))] += diff
    return +state


def test_static_files_are_split_by_path_with_the_same_results(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_inputs(data)
    reference, _ = run_files("static", 1, data, tmp_path)
    assert {name: len(changes) > 5 for name, changes in reference.items()} == dict.fromkeys(
        ("counts", "join", "words", "rows"), True
    )
    for workers in (2, 3):
        produced, stderr = run_files("static", workers, data, tmp_path)
        for name, changes in reference.items():
            assert ranked(produced[name]) == ranked(changes), f"{name} on {workers} workers"
        read = rows_read(stderr, workers)
        assert all(rows > 0 for rows in read), read  # every worker read its share
        assert sum(read) == sum(25 + f for f in range(9)) + 9 * 4 + 9 * 20


def test_streaming_files_are_split_by_path_with_the_same_results(tmp_path: Path) -> None:
    results = []
    for workers in (1, 2, 3):
        data = tmp_path / f"data{workers}"
        (data / "a").mkdir(parents=True)
        for file in range(3):  # read at once; more come while running (see the program)
            rows = [((file * 7 + i) % 11, file * 100 + i) for i in range(30)]
            (data / "a" / f"part{file}.csv").write_text(
                "k,v\n" + "".join(f"{k},{v}\n" for k, v in rows)
            )
        produced, stderr = run_files("streaming", workers, data, tmp_path)
        results.append(produced)
        if workers > 1:
            assert all(rows > 0 for rows in rows_read(stderr, workers))
    one = results[0]
    assert len(per_time(one["counts"])) >= 3  # files kept coming: several times
    for produced in results[1:]:
        for name in ("counts", "rows"):
            per_time(produced[name])  # each time consolidated
            assert final_state(produced[name]) == final_state(one[name]), name


def test_reduces_of_counts_and_sums_send_partial_sums(tmp_path: Path) -> None:
    """A reduce of counts and integer sums exchanges at most a row or two per group and
    worker (counted in the workers' log lines), with the results of one worker."""
    many = [[label, label % 4, label % 9, 2 + 2 * (label % 3), 1] for label in range(1, 400)]
    many += [[label, label % 4, label % 9, 8, -1] for label in range(1, 400, 7)]
    cases = [{"pipeline": "counts_and_sums", "streams": [many]}]
    assert_same_on_workers(cases, tmp_path, (2,))
    spec = tmp_path / "cases.json"
    done = spawn(2, str(PROGRAM), str(spec), str(tmp_path / "out.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    combined = re.findall(r"(\d+) rows combined into (\d+)", done.stderr)
    assert len(combined) == 2, done.stderr[-3000:]
    before = sum(int(b) for b, _ in combined)
    after = sum(int(a) for _, a in combined)
    # Worker 0 holds the input: per time, 4 + 9 groups of at most 2 rows instead of ~100 rows.
    assert before >= 2 * 400 and after <= 4 * 2 * (4 + 9), combined


def test_combining_keeps_the_update_streams_of_one_worker(tmp_path: Path) -> None:
    cases = [
        {"pipeline": "counts_and_sums", "streams": [LEFT]},
        {"pipeline": "counts_and_sums", "streams": [RIGHT]},
        {"pipeline": "join_groupby", "streams": [LEFT, RIGHT]},
    ]
    assert_same_on_workers(cases, tmp_path, (2, 3))


_FAILING = textwrap.dedent("""
    import os
    import deltaflow as pw

    t = pw.debug.table_from_markdown(
        "k | v\\n" + "\\n".join(f"{i} | {i}" for i in range(40))
    )
    sums = t.groupby(t.k).reduce(t.k, s=pw.reducers.sum(t.v))

    @pw.udf
    def check(s: int) -> int:
        if os.environ["PATHWAY_PROCESS_ID"] != "0":
            raise RuntimeError("a failure on a worker other than 0")
        return s

    pw.io.null.write(sums.select(s=check(sums.s)))
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
""")


def test_a_failure_on_another_worker_fails_the_run_without_hanging(tmp_path: Path) -> None:
    program = tmp_path / "fail.py"
    program.write_text(_FAILING)
    done = spawn(2, str(program), cwd=tmp_path, timeout=60)
    assert done.returncode != 0
    assert "a failure on a worker other than 0" in done.stderr
    assert "worker 1 failed" in done.stderr  # worker 0 says which worker failed


_DIFFERENT = textwrap.dedent("""
    import os
    import deltaflow as pw

    t = pw.debug.table_from_markdown("k | v\\n1 | 2\\n3 | 4")
    if os.environ["PATHWAY_PROCESS_ID"] == "1":
        t = t.filter(t.v > 2)
    pw.io.null.write(t.groupby(t.k).reduce(t.k, s=pw.reducers.sum(t.v)))
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
""")


def test_a_worker_building_another_pipeline_is_a_clear_error(tmp_path: Path) -> None:
    program = tmp_path / "different.py"
    program.write_text(_DIFFERENT)
    done = spawn(2, str(program), cwd=tmp_path, timeout=60)
    assert done.returncode != 0
    assert "worker 1 built a different pipeline than worker 0" in done.stderr


def test_spawn_starts_one_process_per_worker(tmp_path: Path) -> None:
    program = tmp_path / "env.py"
    program.write_text(
        "import json, os, sys\n"
        "keys = ('PATHWAY_PROCESSES', 'PATHWAY_PROCESS_ID', 'PATHWAY_RUN_ID',"
        " 'PATHWAY_FIRST_PORT', 'PYTHONHASHSEED')\n"
        "path = os.path.join(sys.argv[1], os.environ['PATHWAY_PROCESS_ID'] + '.json')\n"
        "json.dump({k: os.environ[k] for k in keys}, open(path, 'w'))\n"
    )
    done = spawn(3, str(program), str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(3)]
    assert [s["PATHWAY_PROCESS_ID"] for s in seen] == ["0", "1", "2"]
    assert {s["PATHWAY_PROCESSES"] for s in seen} == {"3"}
    assert len({s["PATHWAY_RUN_ID"] for s in seen}) == 1
    assert len({s["PATHWAY_FIRST_PORT"] for s in seen}) == 1
    assert len({s["PYTHONHASHSEED"] for s in seen}) == 1  # the same graph on every worker


def test_spawn_returns_the_failing_worker_status(tmp_path: Path) -> None:
    code = "import os, sys; sys.exit(5 if os.environ['PATHWAY_PROCESS_ID'] == '1' else 0)"
    done = spawn(2, "-c", code, cwd=tmp_path)
    assert done.returncode == 5


def test_a_worker_index_beyond_the_count_is_a_clear_error(tmp_path: Path) -> None:
    env = _environment()
    env.update({"PATHWAY_PROCESSES": "2", "PATHWAY_PROCESS_ID": "2"})
    done = subprocess.run(
        [
            PYTHON,
            "-c",
            "import deltaflow as pw; pw.debug.compute_and_print("
            "pw.debug.table_from_markdown('a\\n1'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "PATHWAY_PROCESS_ID=2 must be below PATHWAY_PROCESSES=2" in done.stderr


def test_spawn_ray_without_ray_installed_says_how_to_install_it(tmp_path: Path) -> None:
    # The interpreter finds no ``ray`` module (None in sys.modules: an import fails at once).
    code = (
        "import sys; sys.modules['ray'] = None; from deltaflow.cli import main; "
        "sys.exit(main(['spawn', '--ray', 'auto', '-n', '2', 'python', 'program.py']))"
    )
    done = subprocess.run(
        [PYTHON, "-c", code], cwd=tmp_path, env=_environment(), capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "pip install 'deltaflow[ray]'" in done.stderr
