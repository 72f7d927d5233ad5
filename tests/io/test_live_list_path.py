"""A Python subject's commits of a few exactly typed rows cross the live path as Python lists
(ListFrame: parse, ids, upserts, the reduce's fold, the callbacks); any commit the lists
cannot carry takes the frames. Both give the same changes, and the expected final table."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.io._core import json_parsing

# A commit: rows of (id, key, value); in upsert mode an id sent again replaces its row.
_commits = st.lists(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(-5, 5)), min_size=1, max_size=4
    ),
    min_size=1,
    max_size=6,
)


@contextmanager
def _list_rows(limit: int) -> Iterator[None]:
    saved = json_parsing.LIST_ROWS
    json_parsing.LIST_ROWS = limit
    try:
        yield
    finally:
        json_parsing.LIST_ROWS = saved


def _run(commits: list[list[tuple[int, int, int]]], upsert: bool) -> Counter[tuple]:
    """The changes (key, count, sum, diff) of a groupby over the subject's commits."""
    pw.clear_graph()
    if upsert:

        class Row(pw.Schema):
            id: int = pw.column_definition(primary_key=True)
            k: int
            v: int
    else:

        class Row(pw.Schema):  # type: ignore[no-redef]
            id: int
            k: int
            v: int

    ended = threading.Event()

    class Commits(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for rows in commits:
                ended.clear()
                for row_id, key, value in rows:
                    self.next(id=row_id, k=key, v=value)
                self.commit()
                assert ended.wait(10)  # one commit at a time: one minibatch each

    table = pw.io.python.read(
        Commits(session_type="upsert" if upsert else "native"),
        schema=Row,
        autocommit_duration_ms=None,
    )
    counts = table.groupby(table.k).reduce(
        table.k, n=pw.reducers.count(), s=pw.reducers.sum(table.v)
    )
    changes: Counter[tuple] = Counter()

    def on_change(key, row, time, is_addition) -> None:
        changes[(row["k"], row["n"], row["s"])] += 1 if is_addition else -1

    pw.io.subscribe(counts, on_change=on_change, on_time_end=lambda time: ended.set())
    pw.run()
    return changes


def _expected(commits: list[list[tuple[int, int, int]]], upsert: bool) -> Counter[tuple]:
    rows: list[tuple[int, int]] = []
    by_id: dict[int, tuple[int, int]] = {}
    for commit in commits:
        for row_id, key, value in commit:
            if upsert:
                by_id[row_id] = (key, value)
            else:
                rows.append((key, value))
    final = list(by_id.values()) if upsert else rows
    groups: dict[int, list[int]] = {}
    for key, value in final:
        groups.setdefault(key, []).append(value)
    return Counter({(k, len(vs), sum(vs)): 1 for k, vs in groups.items()})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_commits, st.booleans())
def test_lists_and_frames_give_the_same_changes(commits, upsert: bool) -> None:
    with _list_rows(0):  # every commit through frames
        by_frames = _run(commits, upsert)
    by_lists = _run(commits, upsert)
    assert by_lists == by_frames
    final = +by_lists  # what is left after the retractions: the final table
    assert all(diff == 1 for diff in final.values())
    assert final == _expected(commits, upsert)
