"""Joins whose sides are join results (chains such as ``t1.join(t2).join(t3)``), and groupby /
reduce on a join result.

Expected values were checked against Pathway 0.33 on the same inputs (see the notes in the
task report); ids are compared structurally: a chained row's id is the id the same join gives
when its join-result side is first materialised with ``select`` (the pair-id rule applied to
the inner pair id), which is what Pathway does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.expressions.base import ColumnNotFoundError, ExpressionError
from test_stateful_properties import SETTINGS, Event, check, update_streams


def _tables() -> tuple[pw.Table, pw.Table, pw.Table]:
    t1 = pw.debug.table_from_markdown("""
          | a | b  | x
        1 | 1 | 10 | x1
        2 | 2 | 20 | x2
        3 | 3 | 30 | x3
    """)
    t2 = pw.debug.table_from_markdown("""
          | a | y
        1 | 1 | y1
        2 | 2 | y2
        4 | 4 | y4
    """)
    t3 = pw.debug.table_from_markdown("""
          | b  | z
        1 | 10 | z1
        2 | 30 | z3
        3 | 10 | z1b
    """)
    return t1, t2, t3


def _dicts(table: pw.Table) -> list[dict[str, Any]]:
    """The final rows, each with its ``id``."""
    keys, columns = pw.debug.table_to_dicts(table)
    return [{"id": key, **{name: values[key] for name, values in columns.items()}} for key in keys]


def _rows(table: pw.Table, *names: str) -> list[tuple[Any, ...]]:
    rows = [tuple(row[n] for n in names) for row in _dicts(table)]
    return sorted(rows, key=lambda row: tuple((v is not None, v) for v in row))  # None first


def _ids(table: pw.Table, *names: str) -> dict[tuple[Any, ...], Any]:
    return {tuple(row[n] for n in names): row["id"] for row in _dicts(table)}


# --- results ---------------------------------------------------------------------------------


def test_inner_chain_resolves_every_table() -> None:
    t1, t2, t3 = _tables()
    result = t1.join(t2, t1.a == t2.a).join(t3, t1.b == t3.b).select(t1.x, t2.y, t3.z)
    assert result.column_names() == ["x", "y", "z"]
    assert _rows(result, "x", "y", "z") == [("x1", "y1", "z1"), ("x1", "y1", "z1b")]


def test_left_and_outer_chains_fill_missing_sides_with_none() -> None:
    t1, t2, t3 = _tables()
    left = t1.join_left(t2, t1.a == t2.a).join_left(t3, t1.b == t3.b).select(t1.x, t2.y, t3.z)
    assert _rows(left, "x", "y", "z") == [
        ("x1", "y1", "z1"),
        ("x1", "y1", "z1b"),
        ("x2", "y2", None),
        ("x3", None, "z3"),
    ]
    assert left.schema.typehints() == {"x": str, "y": str | None, "z": str | None}
    outer = t1.join_outer(t2, t1.a == t2.a).join_outer(t3, t1.b == t3.b).select(t1.x, t2.y, t3.z)
    assert _rows(outer, "x", "y", "z") == [
        (None, "y4", None),
        ("x1", "y1", "z1"),
        ("x1", "y1", "z1b"),
        ("x2", "y2", None),
        ("x3", None, "z3"),
    ]
    mixed = t1.join_outer(t2, t1.a == t2.a).join(t3, t1.b == t3.b).select(t2.y, t3.z)
    assert _rows(mixed, "y", "z") == [(None, "z3"), ("y1", "z1"), ("y1", "z1b")]
    right = t1.join(t2, t1.a == t2.a).join_right(t3, t1.b == t3.b).select(t1.x, t3.z)
    assert _rows(right, "x", "z") == [(None, "z3"), ("x1", "z1"), ("x1", "z1b")]


def test_placeholders_name_the_inner_join_as_a_whole() -> None:
    t1, t2, t3 = _tables()
    chained = t1.join(t2, t1.a == t2.a).join(t3, pw.left.b == pw.right.b)
    result = chained.select(pw.left.x, pw.left.y, pw.right.z, pw.this.a, pw.this.b)
    assert _rows(result, "x", "y", "z", "a", "b") == [
        ("x1", "y1", "z1", 1, 10),
        ("x1", "y1", "z1b", 1, 10),
    ]
    # *pw.left is the inner join's pw.this; *pw.this adds the right side's new names.
    assert chained.select(*pw.left).column_names() == ["a", "b", "x", "y"]
    assert chained.select(*pw.this).column_names() == ["a", "b", "x", "y", "z"]
    assert chained.select(*pw.this.without("a")).column_names() == ["b", "x", "y", "z"]


def test_join_result_on_the_right_and_free_functions() -> None:
    t1, t2, t3 = _tables()
    right = t3.join(t1.join(t2, t1.a == t2.a), pw.left.b == pw.right.b)
    assert _rows(right.select(pw.right.x, pw.left.z, t2.y), "x", "z", "y") == [
        ("x1", "z1", "y1"),
        ("x1", "z1b", "y1"),
    ]
    free = pw.join(t1.join(t2, t1.a == t2.a), t3, t1.b == t3.b).select(t1.x, t3.z)
    assert _rows(free, "x", "z") == [("x1", "z1"), ("x1", "z1b")]
    free_left = pw.join_left(t1.join(t2, t1.a == t2.a), t3, t1.b == t3.b).select(t1.x, t3.z)
    assert _rows(free_left, "x", "z") == [("x1", "z1"), ("x1", "z1b"), ("x2", None)]


def test_two_join_results_and_four_way_chains() -> None:
    t1, t2, t3 = _tables()
    t4 = pw.debug.table_from_markdown("""
          | z   | w
        1 | z1  | 100
        2 | z1b | 200
        3 | z3  | 300
    """)
    four = (
        t1.join(t2, t1.a == t2.a)
        .join(t3, t1.b == t3.b)
        .join_left(t4, t3.z == t4.z)
        .select(t1.x, t2.y, t4.w, pw.this.z)
    )
    assert _rows(four, "x", "y", "w", "z") == [("x1", "y1", 100, "z1"), ("x1", "y1", 200, "z1b")]
    both = t1.join_left(t2, t1.a == t2.a).join(t3.join(t4, t3.z == t4.z), t1.b == t3.b)
    assert _rows(both.select(t1.x, t2.y, t4.w), "x", "y", "w") == [
        ("x1", "y1", 100),
        ("x1", "y1", 200),
        ("x3", None, 300),
    ]


def test_condition_mixing_tables_of_the_inner_join() -> None:
    t1, t2, _ = _tables()
    t5 = pw.debug.table_from_markdown("""
          | s  | label
        1 | 11 | one
        2 | 22 | two
    """)
    # The condition's left expression uses columns of two tables of the inner join.
    result = t1.join(t2, t1.a == t2.a).join(t5, t1.b + t2.a == t5.s).select(t1.x, t5.label)
    assert _rows(result, "x", "label") == [("x1", "one"), ("x2", "two")]


def test_filter_before_and_after_chaining() -> None:
    t1, t2, t3 = _tables()
    inner = t1.join_left(t2, t1.a == t2.a).filter(t1.b > 10)
    assert _rows(inner.join(t3, t1.b == t3.b).select(t1.x, t3.z), "x", "z") == [("x3", "z3")]
    after = t1.join(t2, t1.a == t2.a).join(t3, t1.b == t3.b).filter(t3.z == "z1b")
    assert _rows(after.select(t1.x), "x") == [("x1",)]


def test_chained_ids_are_pair_ids_of_the_inner_pair_ids() -> None:
    t1, t2, t3 = _tables()
    for how in (pw.JoinMode.INNER, pw.JoinMode.LEFT, pw.JoinMode.OUTER):
        pw.clear_graph()
        t1, t2, t3 = _tables()
        inner = t1.join(t2, t1.a == t2.a, how=how)
        chained = inner.join(t3, t1.b == t3.b, how=how).select(t1.x, t3.z)
        materialised = (
            inner.select(t1.x, t1.b).join(t3, pw.left.b == t3.b, how=how).select(pw.left.x, t3.z)
        )
        got = _ids(chained, "x", "z")
        assert got == _ids(materialised, "x", "z")
        assert len(set(got.values())) == len(got)
    t1, t2, t3 = _tables()
    inner = t1.join(t2, t1.a == t2.a)
    sides = inner.join(t3, t1.b == t3.b).select(
        t3.z, i=pw.this.id, l=pw.left.id, r=pw.right.id, i1=t1.id
    )
    rows = _dicts(sides)
    inner_ids = {row["id"] for row in _dicts(inner.select(t1.x))}
    t3_ids = {row["z"]: row["id"] for row in _dicts(t3)}
    t1_ids = {row["id"] for row in _dicts(t1)}
    for row in rows:
        assert row["i"] == row["id"]
        assert row["l"] in inner_ids and row["r"] == t3_ids[row["z"]] and row["i1"] in t1_ids
    # Side order matters, as for a plain join.
    flipped = t3.join(inner, t3.b == t1.b).select(t3.z)
    assert set(_ids(flipped, "z").values()).isdisjoint(_ids(sides, "z").values())


def test_id_of_a_whole_side() -> None:
    t1, t2, _t3 = _tables()
    t6 = pw.debug.table_from_markdown("""
          | b  | q
        1 | 10 | q1
    """)
    inner = t1.join(t2, t1.a == t2.a)
    result = inner.join(t6, t1.b == t6.b, id=pw.left.id).select(t6.q)
    inner_ids = {row["x"]: row["id"] for row in _dicts(inner.select(t1.x))}
    assert list(_ids(result, "q").values()) == [inner_ids["x1"]]


def test_coalesced_and_ambiguous_names() -> None:
    t1 = pw.debug.table_from_markdown("""
          | a | b  | c
        1 | 1 | 10 | c1
        2 | 2 | 20 | c2
    """)
    t2 = pw.debug.table_from_markdown("""
          | a | c
        1 | 1 | d1
        4 | 4 | d4
    """)
    t3 = pw.debug.table_from_markdown("""
          | b  | a
        1 | 10 | 7
        2 | 99 | 8
    """)
    chained = t1.join_outer(t2, t1.a == t2.a).join(t3, pw.left.b == pw.right.b)
    # c is ambiguous inside the inner join, a is on both sides of the outer one.
    assert chained.select(*pw.this).column_names() == ["b"]
    assert chained.select(*pw.left).column_names() == ["a", "b"]
    assert _rows(
        chained.select(pw.left.a, a3=pw.right.a, c1=t1.c, c2=t2.c), "a", "a3", "c1", "c2"
    ) == [(1, 7, "c1", "d1")]
    # An ambiguous name is a KeyError (not found as one column), as in Pathway.
    with pytest.raises(KeyError, match=r"pw.this.a is ambiguous"):
        chained.select(pw.this.a)
    with pytest.raises(KeyError, match=r"pw.this.c is ambiguous"):
        chained.select(pw.left.c)
    with pytest.raises(ColumnNotFoundError, match="no column 'c'"):
        chained.select(pw.this.c)


def test_left_join_coalesced_key_keeps_the_left_type() -> None:
    t1, t2, _ = _tables()
    result = t1.join_left(t2, t1.a == t2.a).select(*pw.this)
    assert result.schema.typehints() == {"a": int, "b": int, "x": str, "y": str | None}


# --- groupby / reduce on a join result ---------------------------------------------------------


def test_groupby_and_reduce_on_join_results() -> None:
    t1, t2, t3 = _tables()
    joined = t1.join_left(t2, t1.a == t2.a)
    by_y = joined.groupby(t2.y).reduce(t2.y, n=pw.reducers.count(), s=pw.reducers.sum(t1.b))
    assert _rows(by_y, "y", "n", "s") == [(None, 1, 30), ("y1", 1, 10), ("y2", 1, 20)]
    free = pw.groupby(joined, pw.this.a).reduce(pw.this.a, n=pw.reducers.count())
    assert _rows(free, "a", "n") == [(1, 1), (2, 1), (3, 1)]
    chained = joined.join(t3, t1.b == t3.b)
    by_b = chained.groupby(pw.this.b).reduce(pw.this.b, zs=pw.reducers.sorted_tuple(t3.z))
    assert _rows(by_b, "b", "zs") == [(10, ("z1", "z1b")), (30, ("z3",))]
    total = chained.reduce(n=pw.reducers.count(), m=pw.reducers.max(pw.left.b))
    assert _rows(total, "n", "m") == [(3, 30)]


def test_groupby_on_join_result_ids_follow_the_key() -> None:
    t1, t2, _ = _tables()
    joined = t1.join(t2, t1.a == t2.a)
    grouped = joined.groupby(t1.b).reduce(t1.b)
    plain = t1.groupby(t1.b).reduce(t1.b)
    assert _ids(grouped, "b") == {k: v for k, v in _ids(plain, "b").items() if k in {(10,), (20,)}}


# --- incremental updates ---------------------------------------------------------------------


def test_chain_updates_match_recomputation_example() -> None:
    def program(t1: pw.Table, t2: pw.Table, t3: pw.Table) -> pw.Table:
        return (
            t1.join_left(t2, t1.k == t2.k)
            .join_outer(t3, t1.v == t3.v)
            .select(a=t1.v, b=t2.v, c=t3.k)
        )

    s1: list[Event] = [(1, 0, 1, 2, 1), (2, 1, 2, 2, 1), (1, 0, 1, 4, -1), (1, 0, 2, 4, 1)]
    s2: list[Event] = [(11, 0, 5, 2, 1), (12, 1, 6, 4, 1), (11, 0, 5, 6, -1)]
    s3: list[Event] = [(21, 3, 2, 4, 1), (22, 4, 1, 6, 1)]
    check(program, s1, s2, s3)


CHAINS = {
    "inner-inner": (pw.JoinMode.INNER, pw.JoinMode.INNER),
    "left-outer": (pw.JoinMode.LEFT, pw.JoinMode.OUTER),
    "outer-left": (pw.JoinMode.OUTER, pw.JoinMode.LEFT),
    "right-inner": (pw.JoinMode.RIGHT, pw.JoinMode.INNER),
}


def join_chain(
    chain: str, right_nested: bool
) -> Callable[[pw.Table, pw.Table, pw.Table], pw.Table]:
    """Two joins of the kinds ``CHAINS[chain]`` over three tables, the second joining the
    first's result on the right (``right_nested``) or on the left."""
    first, second = CHAINS[chain]

    def program(t1: pw.Table, t2: pw.Table, t3: pw.Table) -> pw.Table:
        inner = t1.join(t2, t1.k == t2.k, how=first)
        if right_nested:
            outer = t3.join(inner, t3.k == t2.v, how=second)
        else:
            outer = inner.join(t3, t2.v == t3.k, how=second)
        return outer.select(a=t1.v, b=t2.v, c=t3.v, k=t1.k)

    return program


@SETTINGS
@given(
    update_streams(0, max_times=3),
    update_streams(100, max_times=3),
    update_streams(200, max_times=3),
    st.sampled_from(sorted(CHAINS)),
    st.booleans(),
)
def test_chain_updates_match_recomputation(
    s1: list[Event], s2: list[Event], s3: list[Event], chain: str, right_nested: bool
) -> None:
    check(join_chain(chain, right_nested), s1, s2, s3)


@SETTINGS
@given(
    update_streams(0, max_times=3),
    update_streams(100, max_times=3),
    update_streams(200, max_times=3),
)
def test_groupby_on_chain_updates_match_recomputation(
    s1: list[Event], s2: list[Event], s3: list[Event]
) -> None:
    def program(t1: pw.Table, t2: pw.Table, t3: pw.Table) -> pw.Table:
        chained = t1.join_left(t2, t1.k == t2.k).join(t3, pw.left.k == pw.right.k)
        return chained.groupby(t3.v).reduce(t3.v, n=pw.reducers.count(), s=pw.reducers.sum(t1.v))

    check(program, s1, s2, s3)


# --- definition-time errors ------------------------------------------------------------------


def test_bad_arguments_fail_at_definition() -> None:
    t1, t2, t3 = _tables()
    joined = t1.join(t2, t1.a == t2.a)
    with pytest.raises(TypeError, match="expected tables or join results"):
        joined.join(5, t1.a == t3.b)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected tables or join results"):
        pw.join(t1, "t2", t1.a == t2.a)  # type: ignore[arg-type]
    stranger = t1.copy()
    with pytest.raises(ExpressionError, match="does not belong to"):
        joined.join(t3, stranger.b == t3.b)
    # A table that is not joined may be used only if it has the join's rows (as in Pathway).
    with pytest.raises(ValueError, match="rows are not known to include"):
        joined.join(t3, t1.b == t3.b).select(stranger.x)
    with pytest.raises(Exception, match="no column 'nope'"):
        joined.join(t3, pw.left.nope == t3.b)
    with pytest.raises(ValueError, match="equalities"):
        joined.join(t3, t1.b < t3.b)
    with pytest.raises(TypeError, match="cannot join"):
        joined.join(t3, t1.x == t3.b)
    with pytest.raises(ValueError, match=r"id= must be the id of a whole side"):
        joined.join(t3, t1.b == t3.b, id=t1.id)
    with pytest.raises(ExpressionError, match="joined on both sides"):
        joined.join(t1, pw.left.b == pw.right.b).select(t1.x)
    with pytest.raises(TypeError, match=r"got the string 'b'; use pw.this.b"):
        joined.groupby("b")
    with pytest.raises(TypeError, match="must be column references"):
        joined.groupby(t1.a + 1)
    with pytest.raises(ExpressionError, match="does not belong to"):
        joined.groupby(t3.b)
    with pytest.raises(ValueError, match="given twice"):
        joined.join(t3, t1.b == t3.b).select(pw.left.x, x=t3.z)
