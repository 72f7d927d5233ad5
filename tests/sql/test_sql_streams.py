"""pw.sql over update streams: insertions, deletions and updates flow through every clause,
and (hypothesis) the update stream equals from-scratch recomputation at every time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from tests._util import snapshot, stream
from tests.test_stateful_properties import SETTINGS, Event, check, update_streams

import deltaflow as pw

T = pw.debug.table_from_markdown


def _orders() -> pw.Table:
    return T("""
       | customer | amount | __time__ | __diff__
     1 | alice    | 10     | 2        | 1
     2 | bob      | 5      | 2        | 1
     3 | alice    | 7      | 4        | 1
     2 | bob      | 5      | 6        | -1
     2 | bob      | 50     | 6        | 1
     1 | alice    | 10     | 8        | -1
    """)


def test_where_follows_updates_across_the_condition() -> None:
    result = pw.sql("SELECT customer, amount FROM o WHERE amount > 6", o=_orders())
    assert stream(result) == [
        (2, "alice", 10, 1),
        (4, "alice", 7, 1),
        (6, "bob", 50, 1),
        (8, "alice", 10, -1),
    ]


def test_group_by_updates_only_the_touched_groups() -> None:
    result = pw.sql(
        "SELECT customer, SUM(amount) AS total, COUNT(*) AS n FROM o GROUP BY customer", o=_orders()
    )
    assert stream(result) == [
        (2, "alice", 10, 1, 1),
        (2, "bob", 5, 1, 1),
        (4, "alice", 10, 1, -1),
        (4, "alice", 17, 2, 1),
        (6, "bob", 5, 1, -1),
        (6, "bob", 50, 1, 1),
        (8, "alice", 7, 1, 1),
        (8, "alice", 17, 2, -1),
    ]


def test_having_lets_groups_in_and_out() -> None:
    result = pw.sql(
        "SELECT customer FROM o GROUP BY customer HAVING SUM(amount) >= 17", o=_orders()
    )
    assert stream(result) == [(4, "alice", 1), (6, "bob", 1), (8, "alice", -1)]


def test_join_with_a_late_right_row_and_a_deletion() -> None:
    names = T("""
       | customer | city   | __time__ | __diff__
    10 | alice    | Paris  | 2        | 1
    11 | bob      | Oslo   | 6        | 1
    10 | alice    | Paris  | 8        | -1
    """)
    result = pw.sql(
        "SELECT o.customer, amount, city FROM o JOIN n ON o.customer = n.customer",
        o=_orders(),
        n=names,
    )
    assert stream(result) == [
        (2, "alice", 10, "Paris", 1),
        (4, "alice", 7, "Paris", 1),
        (6, "bob", 50, "Oslo", 1),
        (8, "alice", 7, "Paris", -1),
        (8, "alice", 10, "Paris", -1),
    ]


def test_scalar_subquery_reevaluates_every_row_when_it_changes() -> None:
    result = pw.sql(
        "SELECT customer, amount FROM o WHERE amount >= (SELECT MAX(amount) FROM o)", o=_orders()
    )
    assert stream(result) == [(2, "alice", 10, 1), (6, "alice", 10, -1), (6, "bob", 50, 1)]


def test_union_removes_a_row_when_its_last_copy_goes() -> None:
    extra = T("""
       | customer | __time__ | __diff__
    20 | carol    | 2        | 1
    21 | bob      | 4        | 1
    21 | bob      | 10       | -1
    """)
    result = pw.sql("SELECT customer FROM o UNION SELECT customer FROM e", o=_orders(), e=extra)
    assert stream(result) == [(2, "alice", 1), (2, "bob", 1), (2, "carol", 1)]
    assert snapshot(result) == [("alice",), ("bob",), ("carol",)]


# --- incremental == recomputation ------------------------------------------------------------

_ONE_TABLE_QUERIES = [
    "SELECT k, v * 2 AS w, v / 2 AS half FROM t WHERE v > 0 OR k = 1",
    "SELECT k, COUNT(*) AS n, SUM(v) AS s, MIN(v) AS lo, MAX(v) AS hi, AVG(v) AS mean "
    "FROM t GROUP BY k",
    "SELECT k, SUM(v) AS s FROM t WHERE v <> 0 GROUP BY k HAVING COUNT(*) > 1",
    "SELECT COUNT(*) AS n, SUM(v) AS s FROM t",
    "SELECT k, v FROM t WHERE v >= (SELECT AVG(v) FROM t)",
    "SELECT DISTINCT k FROM t WHERE v < 2",
    "SELECT CASE WHEN v > 0 THEN 'pos' WHEN v < 0 THEN 'neg' END AS sign, COUNT(*) AS n "
    "FROM t GROUP BY 1",
]

_TWO_TABLE_QUERIES = [
    "SELECT a.k, a.v AS av, b.v AS bv FROM a JOIN b ON a.k = b.k",
    "SELECT a.k, a.v AS av, b.v AS bv FROM a LEFT JOIN b ON a.k = b.k",
    "SELECT b.k, a.v AS av, b.v AS bv FROM a RIGHT JOIN b ON a.k = b.k",
    "SELECT k, a.v AS av, b.v AS bv FROM a FULL OUTER JOIN b USING (k)",
    "SELECT a.k, b.v AS bv FROM a, b WHERE a.k = b.k AND a.v < b.v",
    "SELECT a.k, a.v AS av, b.v AS bv FROM a LEFT JOIN b ON a.k = b.k "
    "WHERE a.v > 0 AND (b.v IS NULL OR b.v < 2)",
    "SELECT a.k, SUM(b.v) AS s FROM a JOIN b ON a.k = b.k GROUP BY a.k",
    "SELECT k, v FROM a UNION SELECT k, v FROM b",
    "SELECT k, v FROM a UNION ALL SELECT k, v FROM b",
    "SELECT k, v FROM a INTERSECT SELECT k, v FROM b",
    "SELECT k, v FROM a EXCEPT SELECT k, v FROM b",
    "SELECT k, v FROM a WHERE k IN (SELECT k FROM b WHERE v > 0)",
    "SELECT k, v FROM a WHERE EXISTS (SELECT * FROM b WHERE v > 2)",
    "SELECT k, v FROM a WHERE EXISTS (SELECT * FROM b WHERE b.k = a.k AND b.v > 0)",
    "SELECT k, v FROM a WHERE v >= ALL (SELECT v FROM b) OR k < ANY (SELECT k FROM b)",
    "SELECT k, v FROM a WHERE v IN (SELECT b.v FROM b WHERE b.k = a.k)",
    "SELECT k, (SELECT COUNT(*) FROM b WHERE b.k = a.k) AS n, "
    "(SELECT SUM(v) FROM b WHERE b.k = a.k) AS s FROM a",
]


# Each query shape gets its own examples (fewer than SETTINGS' 25 to keep the file fast).
_PER_QUERY = settings(SETTINGS, max_examples=12)


@pytest.mark.parametrize("query", _ONE_TABLE_QUERIES)
@_PER_QUERY
@given(events=update_streams())
def test_one_table_queries_match_recomputation(query: str, events: list[Event]) -> None:
    check(lambda t: pw.sql(query, t=t), events)


@pytest.mark.parametrize("query", _TWO_TABLE_QUERIES)
@_PER_QUERY
@given(left=update_streams(), right=update_streams(label_base=100))
def test_two_table_queries_match_recomputation(
    query: str, left: list[Event], right: list[Event]
) -> None:
    check(lambda a, b: pw.sql(query, a=a, b=b), left, right)
