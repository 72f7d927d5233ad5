"""Float sums (``pw.reducers.sum`` / ``avg``) add a minibatch's values without losing small
terms next to big ones that cancel, on every path of the reduce operator."""

from __future__ import annotations

import math
import sys

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests._util import snapshot, stream

import deltaflow as pw
from deltaflow import _types as t
from deltaflow._float_sums import exact_sum, sum_expr

_BIG = 10.1**21


def _floats(values: list[float], groups: list[int] | None = None) -> pw.Table:
    groups = groups or [0] * len(values)
    frame = pl.DataFrame({"g": groups, "v": [float(v) for v in values]})
    return pw.debug.table_from_polars(frame)


def test_cancelling_terms_keep_the_small_ones() -> None:
    t1 = _floats([-_BIG, -_BIG, 1.0, 1.0, _BIG, _BIG])
    result = t1.reduce(s=pw.reducers.sum(pw.this.v), a=pw.reducers.avg(pw.this.v))
    assert snapshot(result) == [(2.0, 2.0 / 6)]


def test_per_group_and_with_a_recomputed_reducer() -> None:
    values = [1e16, 0.5, -1e16, 3.0, 0.1, 0.2]
    groups = [1, 1, 1, 2, 2, 2]
    t1 = _floats(values, groups)
    invertible = t1.groupby(pw.this.g).reduce(pw.this.g, s=pw.reducers.sum(pw.this.v))
    assert snapshot(invertible) == [(1, 0.5), (2, math.fsum([3.0, 0.1, 0.2]))]
    # max makes the reduce keep the rows (folded / recomputed paths)
    mixed = t1.groupby(pw.this.g).reduce(
        pw.this.g,
        s=pw.reducers.sum(pw.this.v),
        m=pw.reducers.max(pw.this.v),
        k=pw.reducers.tuple(pw.this.v),
    )
    assert [row[:3] for row in snapshot(mixed)] == [(1, 0.5, 1e16), (2, 3.3, 3.0)]


@pytest.mark.parametrize("with_max", [False, True])
def test_big_minibatch(with_max: bool) -> None:
    # more rows than the Python path takes: the Polars aggregation
    values = [1e16] + [0.5] * 3000 + [-1e16]
    t1 = _floats(values)
    reducers = {"s": pw.reducers.sum(pw.this.v), "a": pw.reducers.avg(pw.this.v)}
    if with_max:
        reducers["m"] = pw.reducers.max(pw.this.v)
    [row] = snapshot(t1.reduce(**reducers))
    assert row[0] == 1500.0
    assert row[1] == pytest.approx(1500.0 / 3002, rel=1e-15)


def test_deletions_in_the_same_minibatch() -> None:
    t1 = pw.debug.table_from_markdown(
        """
          | v     | __time__ | __diff__
        1 | 3.0   |    2     |    1
        1 | 3.0   |    4     |   -1
        2 | 1e16  |    4     |    1
        3 | 0.5   |    4     |    1
        4 | -1e16 |    4     |    1
        """
    )
    result = t1.reduce(s=pw.reducers.sum(pw.this.v))
    assert stream(result) == [(2, 3.0, 1), (4, 0.5, 1), (4, 3.0, -1)]
    with_max = t1.reduce(s=pw.reducers.sum(pw.this.v), m=pw.reducers.max(pw.this.v))
    assert stream(with_max) == [(2, 3.0, 3.0, 1), (4, 0.5, 1e16, 1), (4, 3.0, 3.0, -1)]


def test_ints_and_special_values() -> None:
    ints = pw.debug.table_from_markdown(
        """
        v
        9007199254740993
        1
        """
    )
    assert snapshot(ints.reduce(s=pw.reducers.sum(pw.this.v))) == [(9007199254740994,)]
    infinite = _floats([math.inf, 1.0, 2.0])
    assert snapshot(infinite.reduce(s=pw.reducers.sum(pw.this.v))) == [(math.inf,)]
    both = _floats([math.inf, -math.inf])
    [(value,)] = snapshot(both.reduce(s=pw.reducers.sum(pw.this.v)))
    assert math.isnan(value)
    huge = _floats([sys.float_info.max, sys.float_info.max, -sys.float_info.max])
    [(value,)] = snapshot(huge.reduce(s=pw.reducers.sum(pw.this.v)))
    assert value == math.inf or value == sys.float_info.max  # no crash, an IEEE answer
    zeros = _floats([0.0, -0.0, 0.0])
    assert snapshot(zeros.reduce(s=pw.reducers.sum(pw.this.v))) == [(0.0,)]


def test_helpers() -> None:
    assert exact_sum([1e16, 0.5, -1e16]) == 0.5
    assert exact_sum([1, 2, 3]) == 6 and isinstance(exact_sum([1, 2]), int)
    assert exact_sum([]) == 0
    assert exact_sum([math.inf, -math.inf]) != exact_sum([math.inf, -math.inf])  # NaN
    frame = pl.DataFrame({"g": [1, 1, 1, 2], "x": [1e16, 0.5, -1e16, 7.0]})
    out = frame.group_by("g").agg(sum_expr(pl.col("x"), t.FLOAT).alias("s")).sort("g")
    assert out["s"].to_list() == [0.5, 7.0]
    ints = pl.DataFrame({"x": [2**62, 2**62 - 1]})
    assert ints.select(sum_expr(pl.col("x").cast(pl.Int128), t.INT))["x"].to_list() == [2**63 - 1]


_MIXED = st.lists(
    st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([1e16, -1e16, 1e20, -1e20, 2.0**-30])
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(_MIXED)
def test_small_minibatch_sum_is_correctly_rounded(values: list[float]) -> None:
    [(value,)] = snapshot(_floats(values).reduce(s=pw.reducers.sum(pw.this.v)))
    assert value == math.fsum(values)


@settings(max_examples=20, deadline=None)
@given(_MIXED)
def test_polars_aggregation_is_accurate(values: list[float]) -> None:
    frame = pl.DataFrame({"x": values * 50})
    got = frame.select(sum_expr(pl.col("x"), t.FLOAT))["x"][0]
    exact = math.fsum(values * 50)
    # Only the sum of the small remainders rounds: far below one ulp of the largest term.
    bound = 4 * sys.float_info.epsilon * abs(exact) + len(
        frame
    ) * sys.float_info.epsilon**2 * math.fsum(abs(v) for v in values * 50)
    assert abs(got - exact) <= bound


def test_docs_example(capsys: pytest.CaptureFixture[str]) -> None:
    import pathlib

    text = (pathlib.Path(__file__).parent.parent / "docs" / "reducers.md").read_text()
    section = text.split("### Float sums", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/reducers.md float sums example", "exec"), {})  # noqa: S102
    assert capsys.readouterr().out.split() == shown.split()


def test_big_minibatch_with_deletions_recomputes_accurately() -> None:
    # 1500 rows deleted at time 4 (more than the Python path takes): with max, the touched
    # group is recomputed from its rows by Polars aggregations.
    inserted = [(i, 0.5, 2, 1) for i in range(3000)] + [(3000, 1e16, 2, 1), (3001, -1e16, 2, 1)]
    deleted = [(i, 0.5, 4, -1) for i in range(1500)]
    lines = "\n".join(f"{i} | {v} | {time} | {diff}" for i, v, time, diff in inserted + deleted)
    t1 = pw.debug.table_from_markdown(f"  | v | __time__ | __diff__\n{lines}\n")
    result = t1.reduce(
        s=pw.reducers.sum(pw.this.v), m=pw.reducers.max(pw.this.v), c=pw.reducers.count()
    )
    assert snapshot(result) == [(750.0, 1e16, 1502)]


def test_live_int_sums_near_the_64_bit_limit_are_exact() -> None:
    # One-row deltas take the Python fold; one whose running sum could leave the 64-bit
    # range is recomputed from the group's rows instead (2**62 + 2**62 - 5 fits, barely).
    big = 2**62
    table = pw.debug.table_from_markdown(
        f"""
        k | v        | __time__
        1 | {big}     | 2
        1 | {big - 5} | 4
        1 | -{big}    | 6
        2 | 3        | 6
        """
    )
    sums = table.groupby(table.k).reduce(table.k, s=pw.reducers.sum(table.v))
    assert stream(sums) == [
        (2, 1, big, 1),
        (4, 1, big, -1),
        (4, 1, 2 * big - 5, 1),
        (6, 1, big - 5, 1),
        (6, 1, 2 * big - 5, -1),
        (6, 2, 3, 1),
    ]


def test_int_sums_wrap_around_at_64_bits_as_pathway() -> None:
    # Pathway's (and Polars') int sums wrap; the Python paths (a few rows, recomputed
    # groups) do the same instead of failing or giving None.
    big = 2**62
    static = pw.debug.table_from_markdown(
        f"""
        k | v
        1 | {big}
        1 | {big}
        2 | 5
        """
    )
    grouped = static.groupby(static.k).reduce(static.k, s=pw.reducers.sum(static.v))
    assert sorted(snapshot(grouped)) == [(1, -(2**63)), (2, 5)]
    assert snapshot(static.reduce(s=pw.reducers.sum(static.v))) == [(-(2**63) + 5,)]
    live = pw.debug.table_from_markdown(
        f"""
        k | v     | __time__
        1 | {big} | 2
        1 | {big} | 4
        1 | -{big} | 6
        """
    )
    sums = live.groupby(live.k).reduce(live.k, s=pw.reducers.sum(live.v))
    assert stream(sums) == [
        (2, 1, big, 1),
        (4, 1, -(2**63), 1),
        (4, 1, big, -1),
        (6, 1, -(2**63), -1),
        (6, 1, big, 1),
    ]
