"""Joins: modes, ids, pw.left/pw.right/pw.this, updates of partners, errors."""

from __future__ import annotations

import pytest
from tests._util import snapshot

import deltaflow as pw


def _tables() -> tuple[pw.Table, pw.Table]:
    left = pw.debug.table_from_markdown("""
          | k | a
        1 | 1 | 10
        2 | 2 | 20
        3 | 3 | 30
    """)
    right = pw.debug.table_from_markdown("""
          | k | b
        4 | 1 | 100
        5 | 1 | 101
        6 | 4 | 400
    """)
    return left, right


def _values(table: pw.Table, *names: str) -> list[tuple]:
    _, columns = pw.debug.table_to_dicts(table)
    ids = list(columns[names[0]])
    return sorted(
        (tuple(columns[n][i] for n in names) for i in ids),
        key=lambda row: tuple((v is None, v or 0) for v in row),
    )


def test_modes() -> None:
    left, right = _tables()
    inner = left.join(right, left.k == right.k).select(left.a, right.b)
    assert _values(inner, "a", "b") == [(10, 100), (10, 101)]
    lj = left.join_left(right, left.k == right.k).select(left.a, right.b)
    assert _values(lj, "a", "b") == [(10, 100), (10, 101), (20, None), (30, None)]
    rj = pw.join_right(left, right, left.k == right.k).select(pw.left.a, pw.right.b)
    assert _values(rj, "a", "b") == [(10, 100), (10, 101), (None, 400)]
    oj = left.join(right, left.k == right.k, how=pw.JoinMode.OUTER).select(
        pw.this.k, pw.left.a, pw.right.b
    )
    assert _values(oj, "k", "a", "b") == [
        (1, 10, 100),
        (1, 10, 101),
        (2, 20, None),
        (3, 30, None),
        (4, None, 400),
    ]
    assert oj.typehints()["a"] == int | None


def test_ids_follow_pairs_and_id_argument() -> None:
    left, right = _tables()
    inner_ids, _ = pw.debug.table_to_dicts(left.join(right, left.k == right.k).select(left.a))
    left_ids, _columns = pw.debug.table_to_dicts(
        left.join_left(right, left.k == right.k).select(left.a)
    )
    assert set(inner_ids) <= set(left_ids) and len(left_ids) == 4
    unique_right = right.groupby(right.k).reduce(right.k, b=pw.reducers.max(right.b))
    kept, _ = pw.debug.table_to_dicts(
        left.join_left(unique_right, left.k == unique_right.k, id=left.id).select(left.a)
    )
    original, _ = pw.debug.table_to_dicts(left)
    assert set(kept) == set(original)
    with pytest.raises(KeyError, match="ids would repeat"):
        pw.debug.table_to_dicts(left.join(right, left.k == right.k, id=left.id).select(left.a))


def test_star_expansion_and_without() -> None:
    left, right = _tables()
    result = left.join(right, left.k == right.k).select(*pw.left, *pw.right.without("k"))
    assert result.column_names() == ["k", "a", "b"]
    with pytest.raises(KeyError, match="ambiguous"):
        left.join(right, left.a == right.b).select(pw.this.k)


def test_partner_changes_update_unmatched_rows() -> None:
    left = pw.debug.table_from_markdown("""
          | k | a | __time__ | __diff__
        1 | 1 | 10 | 2       | 1
        2 | 2 | 20 | 2       | 1
    """)
    right = pw.debug.table_from_markdown("""
          | k | b   | __time__ | __diff__
        7 | 2 | 200 | 4        | 1
        8 | 9 | 900 | 4        | 1
        7 | 2 | 200 | 6        | -1
        8 | 9 | 900 | 6        | -1
    """)
    result = left.join_outer(right, left.k == right.k).select(pw.left.a, pw.right.b)
    stream = sorted(
        (time, row["a"] or 0, row["b"] or 0, diff)
        for time, row, diff in pw.debug.table_to_stream(result)
    )
    assert stream == [
        (2, 10, 0, 1),
        (2, 20, 0, 1),
        (4, 0, 900, 1),
        (4, 20, 0, -1),
        (4, 20, 200, 1),
        (6, 0, 900, -1),
        (6, 20, 0, 1),
        (6, 20, 200, -1),
    ]


def test_join_then_reduce_and_filter() -> None:
    left, right = _tables()
    joined = left.join(right, left.k == right.k)
    total = joined.reduce(s=pw.reducers.sum(pw.right.b), n=pw.reducers.count())
    assert _values(total, "s", "n") == [(201, 2)]
    grouped = pw.groupby(joined, pw.left.k).reduce(pw.left.k, n=pw.reducers.count())
    assert _values(grouped, "k", "n") == [(1, 2)]
    filtered = joined.filter(pw.right.b > 100).select(pw.right.b)
    assert _values(filtered, "b") == [(101,)]


def test_definition_errors() -> None:
    left, right = _tables()
    with pytest.raises(ValueError, match="equalities"):
        left.join(right, left.k < right.k)
    with pytest.raises(ValueError, match="goes on the left"):
        left.join(right, right.k == left.k)
    with pytest.raises(TypeError, match="unexpected keyword"):
        left.join(right, left.k == right.k, lefft_instance=left.k)
    strings = pw.debug.table_from_markdown("""
        s
        x
    """)
    with pytest.raises(TypeError, match="cannot join"):
        left.join(strings, left.k == strings.s)
    # As in Pathway: id= of a non-id column fails an assertion, an expression is refused.
    with pytest.raises(AssertionError, match="id="):
        left.join(right, left.k == right.k, id=left.a)
    with pytest.raises(ValueError, match="id="):
        left.join(right, left.k == right.k, id=left.a + 1)


def test_instances_only_match_within_an_instance() -> None:
    left = pw.debug.table_from_markdown("""
        k | inst | a
        1 | x    | 10
        1 | y    | 20
    """)
    right = pw.debug.table_from_markdown("""
        k | inst | b
        1 | x    | 100
        1 | z    | 300
    """)
    joined = left.join(
        right, left.k == right.k, left_instance=left.inst, right_instance=right.inst
    ).select(left.a, right.b)
    assert snapshot(joined) == [(10, 100)]
    with pytest.raises(ValueError, match="both left_instance and right_instance"):
        left.join(right, left.k == right.k, left_instance=left.inst)


def test_grouping_a_join_by_a_side_column_reduces_with_pw_this() -> None:
    # In an inner join on left.k == right.k, pw.this.k is left.k: grouping by one and
    # reducing with the other is allowed (as in Pathway); other join modes refuse it.
    t = pw.debug.table_from_markdown(
        """
        k | a
        1 | 1
        1 | 2
        3 | 3
        """
    )
    u = pw.debug.table_from_markdown(
        """
        k | b
        1 | 10
        3 | 30
        4 | 40
        """
    )
    j = t.join(u, t.k == u.k)
    by_left = j.groupby(pw.left.k).reduce(pw.this.k, s=pw.reducers.sum(pw.right.b))
    by_this = j.groupby(pw.this.k).reduce(pw.left.k, n=pw.reducers.count())
    assert by_left.schema.typehints() == {"k": int, "s": int}
    assert sorted(pw.debug.table_to_pandas(by_left).values.tolist()) == [[1, 20], [3, 30]]
    assert sorted(pw.debug.table_to_pandas(by_this).values.tolist()) == [[1, 2], [3, 1]]
    with pytest.raises(ValueError, match="not a grouping column"):
        j.groupby(pw.right.k).reduce(pw.this.k)  # pw.this.k is the left side's k
    with pytest.raises(ValueError, match="not a grouping column"):
        t.join_left(u, t.k == u.k).groupby(pw.left.k).reduce(pw.this.k)
