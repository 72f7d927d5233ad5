"""When commits become minibatches: one per commit while the engine keeps up, merged (and
nothing lost, times in order) when commits come faster than it can process them."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import deltaflow as pw


class Event(pw.Schema):
    k: int
    seq: int


def test_slow_commits_each_become_their_own_minibatch() -> None:
    commits, per_commit = 10, 5

    class Slow(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for seq in range(commits):
                for i in range(per_commit):
                    self.next(k=i, seq=seq)
                self.commit()
                time.sleep(0.02)  # one commit every 20 ms: far slower than the engine

    # A long autocommit: only the subject's own commits close minibatches.
    events = pw.io.python.read(Slow(), schema=Event, autocommit_duration_ms=60_000)
    doubled = events.select(pw.this.k, seq2=pw.this.seq * 2)
    by_time: dict[int, list[int]] = defaultdict(list)
    pw.io.subscribe(
        doubled, lambda key, row, time, is_addition: by_time[time].append(row["seq2"] // 2)
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert len(by_time) == commits
    for rows in by_time.values():
        assert len(rows) == per_commit and len(set(rows)) == 1  # exactly one commit each
    assert sorted(rows[0] for rows in by_time.values()) == list(range(commits))


def test_a_few_commits_back_to_back_stay_separate_times() -> None:
    """Commits waiting for the engine are merged only past a backlog of several, so a
    subject's explicit commits keep their boundaries even if all arrive before the engine
    looks (as they do in Pathway)."""
    commits = 2  # times.MERGE_BACKLOG_ABOVE

    class Burst(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for seq in range(commits):
                self.next(k=seq, seq=seq)
                self.next(k=seq + 100, seq=seq)
                self.commit()

    for _ in range(5):  # the burst lands at a different moment of the engine's start each run
        pw.clear_graph()
        events = pw.io.python.read(Burst(), schema=Event, autocommit_duration_ms=None)
        by_time: dict[int, set[int]] = defaultdict(set)

        def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
            by_time[time].add(row["seq"])  # noqa: B023 - called within this iteration's run

        pw.io.subscribe(events, on_change)
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        assert sorted(by_time.values(), key=min) == [{seq} for seq in range(commits)]


def test_fast_commits_merge_without_losing_rows_or_reordering_times() -> None:
    commits, per_commit, keys = 300, 40, 7

    class Fast(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for seq in range(commits):
                for i in range(per_commit):
                    self.next(k=(seq * per_commit + i) % keys, seq=seq)
                self.commit()  # no pause: faster than the engine processes them

    events = pw.io.python.read(Fast(), schema=Event, autocommit_duration_ms=60_000)
    totals = events.groupby(pw.this.k).reduce(
        pw.this.k, n=pw.reducers.count(), last=pw.reducers.max(pw.this.seq)
    )
    state: dict[int, dict[str, Any]] = {}
    change_times: list[int] = []
    ended: list[int] = []

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        change_times.append(time)
        if is_addition:
            state[row["k"]] = row
        elif state.get(row["k"]) == row:
            del state[row["k"]]

    pw.io.subscribe(totals, on_change, on_time_end=ended.append)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    expected = defaultdict(int)
    for index in range(commits * per_commit):
        expected[index % keys] += 1
    assert {k: row["n"] for k, row in state.items()} == dict(expected)
    assert all(row["last"] == commits - 1 for row in state.values())
    assert ended == sorted(set(ended))  # each time ends once, in increasing order
    assert change_times == sorted(change_times)
    assert set(change_times) <= set(ended)


def test_commits_of_every_size_are_never_split() -> None:
    """Commits of 1 to 300 rows, sent faster than the engine takes them: the subject's reader
    finds each commit among thousands of buffered items, and every commit's rows come out at
    one time (times may hold several commits, never part of one)."""
    sizes = [1] * 400 + [2, 15, 16, 17, 63, 64, 65, 255, 256, 300] * 3 + [1] * 100

    class Mixed(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for seq, size in enumerate(sizes):
                for _ in range(size):
                    self.next(k=seq, seq=seq)
                self.commit()

    events = pw.io.python.read(Mixed(), schema=Event, autocommit_duration_ms=None)
    times: dict[int, set[int]] = defaultdict(set)
    counts: dict[int, int] = defaultdict(int)

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        times[row["seq"]].add(time)
        counts[row["seq"]] += 1

    pw.io.subscribe(events, on_change)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert dict(counts) == dict(enumerate(sizes))
    assert all(len(at) == 1 for at in times.values())
    firsts = [min(times[seq]) for seq in range(len(sizes))]
    assert firsts == sorted(firsts)  # commits keep their order
