"""Behaviors applied by windowby: delay, cutoff, keep_results, exactly once.

The expected update streams are those Pathway 0.33 prints for the same program (a stream with
late rows, a deletion and rows that arrive after their window was closed).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

import deltaflow as pw
from deltaflow.engine.runtime import FINAL_TIME as FINAL

EVENTS = """
  | t  | v | __time__ | __diff__
1 | 1  | 1 | 2  | 1
2 | 4  | 2 | 2  | 1
3 | 7  | 3 | 4  | 1
4 | 2  | 4 | 6  | 1
5 | 13 | 5 | 8  | 1
6 | 3  | 6 | 10 | 1
2 | 4  | 2 | 12 | -1
7 | 9  | 7 | 12 | 1
8 | 22 | 8 | 14 | 1
9 | 8  | 9 | 16 | 1
"""

BEHAVIORS = {
    "delay2": pw.temporal.common_behavior(delay=2),
    "cutoff2": pw.temporal.common_behavior(cutoff=2),
    "cutoff2 nokeep": pw.temporal.common_behavior(cutoff=2, keep_results=False),
    "delay3 cutoff1": pw.temporal.common_behavior(delay=3, cutoff=1),
    "delay3 cutoff1 nokeep": pw.temporal.common_behavior(delay=3, cutoff=1,
                                                         keep_results=False),
    "exactly once": pw.temporal.exactly_once_behavior(),
    "exactly once 1": pw.temporal.exactly_once_behavior(shift=1),
}

#: (time, window start, sum, diff) of every change, per behavior (and with sliding windows).
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "delay2": [
        (2, 0, 3, 1), (4, 5, 3, 1), (6, 0, 3, -1), (6, 0, 7, 1), (8, 10, 5, 1),
        (10, 0, 7, -1), (10, 0, 13, 1), (12, 0, 13, -1), (12, 5, 3, -1), (12, 0, 11, 1),
        (12, 5, 10, 1), (14, 20, 8, 1), (16, 5, 10, -1), (16, 5, 19, 1)],
    "delay2 sliding": [
        (2, -3, 1, 1), (2, 0, 3, 1), (4, 3, 5, 1), (6, -3, 1, -1), (6, 0, 3, -1),
        (6, -3, 5, 1), (6, 0, 7, 1), (8, 6, 3, 1), (8, 9, 5, 1), (10, 0, 7, -1),
        (10, 3, 5, -1), (10, 0, 13, 1), (10, 3, 11, 1), (12, 0, 13, -1), (12, 3, 11, -1),
        (12, 6, 3, -1), (12, 9, 5, -1), (12, 0, 11, 1), (12, 3, 9, 1), (12, 6, 10, 1),
        (12, 9, 12, 1), (14, 12, 5, 1), (14, 18, 8, 1), (16, 3, 9, -1), (16, 6, 10, -1),
        (16, 3, 18, 1), (16, 6, 19, 1), (FINAL, 21, 8, 1)],
    "cutoff2": [
        (2, 0, 3, 1), (4, 5, 3, 1), (8, 10, 5, 1), (14, 20, 8, 1)],
    "cutoff2 sliding": [
        (2, -3, 1, 1), (2, 0, 3, 1), (2, 3, 2, 1), (4, 3, 2, -1), (4, 3, 5, 1),
        (4, 6, 3, 1), (6, 0, 3, -1), (6, 0, 7, 1), (8, 9, 5, 1), (8, 12, 5, 1),
        (12, 6, 3, -1), (12, 9, 5, -1), (12, 6, 10, 1), (12, 9, 12, 1), (14, 18, 8, 1),
        (14, 21, 8, 1)],
    "cutoff2 nokeep": [
        (2, 0, 3, 1), (4, 5, 3, 1), (8, 0, 3, -1), (8, 10, 5, 1), (14, 5, 3, -1),
        (14, 20, 8, 1)],
    "cutoff2 nokeep sliding": [
        (2, -3, 1, 1), (2, 0, 3, 1), (2, 3, 2, 1), (4, 3, 2, -1), (4, 3, 5, 1),
        (4, 6, 3, 1), (6, -3, 1, -1), (6, 0, 3, -1), (6, 0, 7, 1), (8, 9, 5, 1),
        (8, 12, 5, 1), (12, 0, 7, -1), (12, 3, 5, -1), (12, 6, 3, -1), (12, 9, 5, -1),
        (12, 6, 10, 1), (12, 9, 12, 1), (14, 18, 8, 1), (14, 21, 8, 1)],
    "delay3 cutoff1": [
        (2, 0, 3, 1), (8, 5, 3, 1), (8, 10, 5, 1), (FINAL, 20, 8, 1)],
    "delay3 cutoff1 sliding": [
        (2, -3, 1, 1), (2, 0, 3, 1), (4, 3, 5, 1), (8, 6, 3, 1), (8, 9, 5, 1),
        (12, 9, 5, -1), (12, 9, 12, 1), (14, 12, 5, 1), (14, 18, 8, 1), (FINAL, 21, 8, 1)],
    "delay3 cutoff1 nokeep": [
        (2, 0, 3, 1), (8, 5, 3, 1), (8, 10, 5, 1), (FINAL, 0, 3, -1), (FINAL, 5, 3, -1),
        (FINAL, 20, 8, 1)],
    "delay3 cutoff1 nokeep sliding": [
        (2, -3, 1, 1), (2, 0, 3, 1), (4, -3, 1, -1), (4, 3, 5, 1), (8, 0, 3, -1),
        (8, 6, 3, 1), (8, 9, 5, 1), (12, 3, 5, -1), (12, 6, 3, -1), (12, 9, 5, -1),
        (12, 9, 12, 1), (14, 12, 5, 1), (14, 18, 8, 1), (FINAL, 9, 12, -1),
        (FINAL, 12, 5, -1), (FINAL, 21, 8, 1)],
    "exactly once": [
        (4, 0, 3, 1), (8, 5, 3, 1), (14, 10, 5, 1), (FINAL, 20, 8, 1)],
    "exactly once sliding": [
        (2, -3, 1, 1), (4, 0, 3, 1), (8, 3, 5, 1), (8, 6, 3, 1), (14, 9, 12, 1),
        (14, 12, 5, 1), (FINAL, 18, 8, 1), (FINAL, 21, 8, 1)],
    "exactly once 1": [
        (4, 0, 3, 1), (8, 5, 3, 1), (14, 10, 5, 1), (FINAL, 20, 8, 1)],
    "exactly once 1 sliding": [
        (2, -3, 1, 1), (4, 0, 3, 1), (8, 3, 5, 1), (8, 6, 3, 1), (14, 9, 12, 1),
        (14, 12, 5, 1), (FINAL, 18, 8, 1), (FINAL, 21, 8, 1)],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_behavior_streams_are_pathways(name: str) -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    behavior = BEHAVIORS[name.removesuffix(" sliding")]
    window = pw.temporal.sliding(hop=3, duration=6) if name.endswith("sliding") else \
        pw.temporal.tumbling(5)
    result = t.windowby(t.t, window=window, behavior=behavior).reduce(
        pw.this._pw_window_start, s=pw.reducers.sum(pw.this.v))
    got = sorted((time, row["_pw_window_start"], row["s"], diff)
                 for time, row, diff in pw.debug.table_to_stream(result))
    assert got == sorted(EXPECTED[name])


def test_bad_behaviors_fail_when_defined() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    with pytest.raises(TypeError, match="behavior"):
        t.windowby(t.t, window=pw.temporal.tumbling(5), behavior="late")
    with pytest.raises(TypeError, match="delay"):
        t.windowby(t.t, window=pw.temporal.tumbling(5),
                   behavior=pw.temporal.common_behavior(delay=datetime.timedelta(1)))
