"""pw.sql on static tables: results, column names and types, row ids, and errors."""

from __future__ import annotations

import pathlib
import re
import sys
from typing import Any

import pytest

import deltaflow as pw
from _util import snapshot, snapshot_by_id

T = pw.debug.table_from_markdown


@pytest.fixture
def people() -> pw.Table:
    return T("""
        | name  | dept  | age | salary
    1   | Ada   | eng   | 36  | 120
    2   | Brian | eng   | 41  | 100
    3   | Chen  | sales | 29  | 70
    4   | Dana  | sales | 52  | 90
    5   | Eve   | hr    | 45  | 60
    """)


@pytest.fixture
def depts() -> pw.Table:
    return T("""
        | dept  | floor
    10  | eng   | 3
    11  | sales | 1
    12  | legal | 2
    """)


def ids(table: pw.Table) -> set[Any]:
    return set(snapshot_by_id(table))


def types(table: pw.Table) -> dict[str, Any]:
    return dict(table.schema.typehints())


# --- SELECT and WHERE --------------------------------------------------------------------------


def test_select_columns_expressions_and_literals(people: pw.Table) -> None:
    result = pw.sql("SELECT name, age + 1 AS next, age * 2, 7, 'x', 2.5 FROM p", p=people)
    assert result.column_names() == ["name", "next", "_col_2", "7", "x", "2.5"]
    assert types(result) == {
        "name": str,
        "next": int,
        "_col_2": int,
        "7": int,
        "x": str,
        "2.5": float,
    }
    assert snapshot(result)[0] == ("Ada", 37, 72, 7, "x", 2.5)
    assert ids(result) == ids(people)


def test_star_and_qualified_star(people: pw.Table) -> None:
    assert snapshot(pw.sql("SELECT * FROM p", p=people)) == snapshot(people)
    both = pw.sql("SELECT p.*, age - 1 FROM p", p=people)
    # unnamed expressions are numbered by their position after the stars are expanded
    assert both.column_names() == ["name", "dept", "age", "salary", "_col_4"]
    assert ids(both) == ids(people)


def test_row_ids_as_id(people: pw.Table, depts: pw.Table) -> None:
    own = pw.sql("SELECT name, p.id AS key FROM p WHERE id IS NOT NULL", p=people)
    assert {row[1] for row in snapshot_by_id(own).values()} == ids(people)
    joined = pw.sql(
        "SELECT p.id AS pk, d.id AS dk, id AS jk FROM p JOIN d ON p.dept = d.dept",
        p=people,
        d=depts,
    )
    rows = snapshot_by_id(joined)
    assert {r[0] for r in rows.values()} <= ids(people)
    assert {r[1] for r in rows.values()} == ids(depts) - ids(depts.filter(pw.this.floor == 2))
    assert {r[2] for r in rows.values()} == set(rows)  # a bare id is the join's own row id


def test_literals_are_named_by_their_text(people: pw.Table) -> None:
    result = pw.sql("SELECT 1.50, 007, -1 FROM p", p=people)
    assert result.column_names() == ["1.50", "007", "_col_2"]
    assert snapshot(result)[0] == (1.5, 7, -1)


def test_star_lists_subqueries_after_tables(people: pw.Table, depts: pw.Table) -> None:
    result = pw.sql(
        "SELECT * FROM (SELECT name AS who, dept AS unit FROM p) AS s JOIN d ON s.unit = d.dept",
        p=people,
        d=depts,
    )
    assert result.column_names() == ["dept", "floor", "who", "unit"]


def test_duplicate_output_names_keep_the_last_value(people: pw.Table) -> None:
    result = pw.sql("SELECT name, age AS name FROM p", p=people)
    assert result.column_names() == ["name"]
    assert snapshot(result)[0] == (29,)


def test_where_keeps_row_ids(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT name FROM p WHERE age > 40 AND NOT dept = 'hr' OR salary < 71", p=people
    )
    assert snapshot(result) == [("Brian",), ("Chen",), ("Dana",), ("Eve",)]
    assert ids(result) == ids(people.filter(pw.this.name != "Ada"))


def test_between_in_and_comparisons(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT name, age >= 45 AS old, age <> 36 AS other FROM p "
        "WHERE age BETWEEN 36 AND 45 AND dept IN ('eng', 'hr')",
        p=people,
    )
    assert snapshot(result) == [("Ada", False, False), ("Brian", False, True), ("Eve", True, True)]


def test_division_is_true_division_and_div_is_integer(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT salary / age AS ratio, salary DIV 7 AS whole, salary % 7 AS rest, "
        "-age AS minus FROM p WHERE name = 'Ada'",
        p=people,
    )
    assert types(result) == {"ratio": float, "whole": int, "rest": int, "minus": int}
    assert snapshot(result) == [(120 / 36, 17, 1, -36)]


def test_null_handling() -> None:
    table = T("""
      | a | b
    1 | 1 | 10
    2 | 2 |
    3 |   | 30
    """)
    assert snapshot(pw.sql("SELECT a FROM t WHERE b IS NULL", t=table)) == [(2,)]
    assert snapshot(pw.sql("SELECT b FROM t WHERE a IS NOT NULL", t=table)) == [(None,), (10,)]
    # comparing with NULL is never true, as in SQL
    assert snapshot(pw.sql("SELECT a FROM t WHERE b = NULL", t=table)) == []
    result = pw.sql("SELECT COALESCE(b, 0) AS b0 FROM t", t=table)
    assert types(result) == {"b0": int}
    assert snapshot(result) == [(0,), (10,), (30,)]


def test_case_expressions(people: pw.Table) -> None:
    result = pw.sql(
        """
        SELECT name,
               CASE WHEN age < 35 THEN 'young' WHEN age < 50 THEN 'mid' ELSE 'senior' END
                   AS band,
               CASE dept WHEN 'eng' THEN 1 END AS code,
               CASE WHEN salary > 95 THEN 1.5 ELSE 1 END AS factor
        FROM p""",
        p=people,
    )
    assert types(result) == {"name": str, "band": str, "code": int | None, "factor": float}
    assert snapshot(result) == [
        ("Ada", "mid", 1, 1.5),
        ("Brian", "mid", 1, 1.5),
        ("Chen", "young", None, 1.0),
        ("Dana", "senior", None, 1.0),
        ("Eve", "mid", None, 1.0),
    ]


def test_string_functions_and_cast(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT UPPER(name) AS up, LENGTH(dept) AS n, CAST(age AS FLOAT) AS f, "
        "name || '!' AS shout FROM p WHERE name = 'Eve'",
        p=people,
    )
    assert types(result) == {"up": str, "n": int, "f": float, "shout": str}
    assert snapshot(result) == [("EVE", 2, 45.0, "Eve!")]


def test_like_substring_and_round(people: pw.Table) -> None:
    result = pw.sql("SELECT name FROM p WHERE name LIKE '_a%' OR name ILIKE 'e%'", p=people)
    assert snapshot(result) == [("Dana",), ("Eve",)]
    assert snapshot(pw.sql("SELECT name FROM p WHERE name NOT LIKE '%a%'", p=people)) == [
        ("Chen",),
        ("Eve",),
    ]
    parts = pw.sql(
        "SELECT SUBSTRING(name, 2, 2) AS mid, SUBSTRING(name, 3) AS tail, "
        "ROUND(salary / 7, 1) AS r FROM p WHERE dept = 'hr'",
        p=people,
    )
    assert snapshot(parts) == [("ve", "e", 8.6)]


def test_table_and_column_names_are_case_sensitive(people: pw.Table) -> None:
    with pytest.raises(KeyError):
        pw.sql("SELECT NAME FROM p", p=people)
    with pytest.raises(KeyError):
        pw.sql("SELECT name FROM P", p=people)
    assert snapshot(pw.sql("select name from p where age = 29", p=people)) == [("Chen",)]


# --- GROUP BY, HAVING, aggregates ---------------------------------------------------------------


def test_group_by_aggregates_types_and_ids(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT dept, COUNT(*) AS n, SUM(salary) AS total, AVG(age) AS mean, "
        "MIN(name) AS first, MAX(age) FROM p GROUP BY dept",
        p=people,
    )
    assert types(result) == {
        "dept": str,
        "n": int,
        "total": int,
        "mean": float,
        "first": str,
        "_col_5": int,
    }
    assert snapshot(result) == [
        ("eng", 2, 220, 38.5, "Ada", 41),
        ("hr", 1, 60, 45.0, "Eve", 45),
        ("sales", 2, 160, 40.5, "Chen", 52),
    ]
    assert ids(result) == ids(people.groupby(pw.this.dept).reduce())


def test_group_by_several_columns_uses_their_order(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT dept, age > 40 AS older, COUNT(*) AS n FROM p GROUP BY dept, age > 40", p=people
    )
    assert snapshot(result) == [
        ("eng", False, 1),
        ("eng", True, 1),
        ("hr", True, 1),
        ("sales", False, 1),
        ("sales", True, 1),
    ]
    by_two = pw.sql("SELECT name, dept FROM p GROUP BY dept, name", p=people)
    assert ids(by_two) == ids(people.groupby(pw.this.dept, pw.this.name).reduce())


def test_group_by_alias_and_position(people: pw.Table) -> None:
    by_alias = pw.sql("SELECT age DIV 10 AS decade, COUNT(*) AS n FROM p GROUP BY decade", p=people)
    by_position = pw.sql("SELECT age DIV 10 AS decade, COUNT(*) AS n FROM p GROUP BY 1", p=people)
    expected = [(2, 1), (3, 1), (4, 2), (5, 1)]
    assert snapshot(by_alias) == expected
    assert snapshot(by_position) == expected


def test_expressions_over_groups(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT dept || '/' AS label, SUM(salary) * 2 AS double, "
        "MAX(age) - MIN(age) AS spread, SUM(salary * age) AS weighted "
        "FROM p GROUP BY dept",
        p=people,
    )
    assert snapshot(result) == [
        ("eng/", 440, 5, 120 * 36 + 100 * 41),
        ("hr/", 120, 0, 2700),
        ("sales/", 320, 23, 70 * 29 + 90 * 52),
    ]


def test_having_on_aggregates_aliases_and_group_columns(people: pw.Table) -> None:
    def run(query: str) -> list[tuple]:
        return snapshot(pw.sql(query, p=people))

    assert run("SELECT dept FROM p GROUP BY dept HAVING COUNT(*) > 1") == [("eng",), ("sales",)]
    assert run("SELECT dept, SUM(salary) AS total FROM p GROUP BY dept HAVING total < 200") == [
        ("hr", 60),
        ("sales", 160),
    ]
    assert run("SELECT dept, COUNT(*) AS n FROM p GROUP BY dept HAVING dept = 'hr'") == [("hr", 1)]
    # an alias shadowing a non-grouped column
    assert run("SELECT dept, SUM(salary) AS salary FROM p GROUP BY dept HAVING salary > 150") == [
        ("eng", 220),
        ("sales", 160),
    ]
    having = pw.sql(
        "SELECT dept, COUNT(*) AS n FROM p GROUP BY dept HAVING MAX(age) > 45", p=people
    )
    assert ids(having) <= ids(people.groupby(pw.this.dept).reduce())


def test_aggregates_without_group_by(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT COUNT(*), SUM(salary) AS total, AVG(age) AS mean FROM p WHERE dept <> 'hr'",
        p=people,
    )
    assert result.column_names() == ["_col_0", "total", "mean"]
    assert snapshot(result) == [(4, 380, 39.5)]
    assert ids(result) == ids(people.reduce())


def test_count_distinct(people: pw.Table) -> None:
    result = pw.sql("SELECT COUNT(DISTINCT dept) AS depts, COUNT(dept) AS rows FROM p", p=people)
    assert snapshot(result) == [(3, 5)]


def test_count_of_a_column_counts_null_rows_like_pathway() -> None:
    table = T("""
    a | b
    1 | 10
    1 |
    """)
    assert snapshot(pw.sql("SELECT COUNT(b) AS n FROM t", t=table)) == [(2,)]


def test_select_distinct(people: pw.Table) -> None:
    result = pw.sql("SELECT DISTINCT dept FROM p WHERE age > 30", p=people)
    assert snapshot(result) == [("eng",), ("hr",), ("sales",)]


# --- joins -------------------------------------------------------------------------------------


def test_inner_join_on_keeps_join_ids(people: pw.Table, depts: pw.Table) -> None:
    result = pw.sql("SELECT p.name, d.floor FROM p JOIN d ON p.dept = d.dept", p=people, d=depts)
    assert snapshot(result) == [("Ada", 3), ("Brian", 3), ("Chen", 1), ("Dana", 1)]
    expected = people.join(depts, people.dept == depts.dept).select()
    assert ids(result) == ids(expected)


def test_join_star_shows_a_shared_name_once(people: pw.Table, depts: pw.Table) -> None:
    result = pw.sql("SELECT * FROM p INNER JOIN d ON p.dept = d.dept", p=people, d=depts)
    assert result.column_names() == ["name", "dept", "age", "salary", "floor"]
    using = pw.sql("SELECT * FROM p JOIN d USING (dept)", p=people, d=depts)
    assert using.column_names() == ["name", "dept", "age", "salary", "floor"]
    assert snapshot(using) == snapshot(result)
    # the equated column can be used unqualified
    assert (
        len(snapshot(pw.sql("SELECT dept FROM p JOIN d ON p.dept = d.dept", p=people, d=depts)))
        == 4
    )


def test_comma_join_with_where_equality(people: pw.Table, depts: pw.Table) -> None:
    result = pw.sql(
        "SELECT name, floor FROM p, d WHERE p.dept = d.dept AND floor > 1", p=people, d=depts
    )
    assert snapshot(result) == [("Ada", 3), ("Brian", 3)]
    cross = (
        people.join(depts).filter(pw.left.dept == pw.right.dept).filter(pw.right.floor > 1).select()
    )
    assert ids(result) == ids(cross)


def test_cross_join(people: pw.Table, depts: pw.Table) -> None:
    result = pw.sql("SELECT name, floor FROM p CROSS JOIN d", p=people, d=depts)
    assert len(snapshot(result)) == 15
    assert ids(result) == ids(people.join(depts).select())


def test_outer_joins(people: pw.Table, depts: pw.Table) -> None:
    left = pw.sql("SELECT name, floor FROM p LEFT JOIN d ON p.dept = d.dept", p=people, d=depts)
    assert types(left) == {"name": str, "floor": int | None}
    assert ("Eve", None) in snapshot(left)
    assert ids(left) == ids(people.join_left(depts, people.dept == depts.dept).select())
    right = pw.sql("SELECT name, floor FROM p RIGHT JOIN d ON p.dept = d.dept", p=people, d=depts)
    assert types(right) == {"name": str | None, "floor": int}
    assert (None, 2) in snapshot(right) and len(snapshot(right)) == 5
    full = pw.sql(
        "SELECT name, floor FROM p FULL OUTER JOIN d ON p.dept = d.dept", p=people, d=depts
    )
    assert (None, 2) in snapshot(full) and ("Eve", None) in snapshot(full)
    assert len(snapshot(full)) == 6
    using = pw.sql("SELECT dept, name FROM p FULL JOIN d USING (dept)", p=people, d=depts)
    assert sorted(r[0] for r in snapshot(using)) == ["eng", "eng", "hr", "legal", "sales", "sales"]


def test_inner_join_on_other_conditions(people: pw.Table, depts: pw.Table) -> None:
    result = pw.sql(
        "SELECT name, floor FROM p JOIN d ON p.dept = d.dept AND age > 40", p=people, d=depts
    )
    assert snapshot(result) == [("Brian", 3), ("Dana", 1)]
    unequal = pw.sql("SELECT name, floor FROM p JOIN d ON p.age > d.floor * 15", p=people, d=depts)
    assert ("Chen", 1) in snapshot(unequal) and ("Chen", 2) not in snapshot(unequal)


def test_outer_join_with_non_equality_on_raises(people: pw.Table, depts: pw.Table) -> None:
    with pytest.raises(NotImplementedError, match="LEFT JOIN"):
        pw.sql("SELECT * FROM p LEFT JOIN d ON p.dept = d.dept AND d.floor > 1", p=people, d=depts)
    with pytest.raises(AssertionError):  # the exception type Pathway raises here
        pw.sql("SELECT * FROM p LEFT JOIN d ON p.dept = d.dept AND d.floor > 1", p=people, d=depts)


def test_self_join_with_aliases_and_three_tables(people: pw.Table, depts: pw.Table) -> None:
    pairs = pw.sql(
        "SELECT a.name AS first, b.name AS second FROM p a JOIN p b "
        "ON a.dept = b.dept WHERE a.age < b.age",
        p=people,
    )
    assert snapshot(pairs) == [("Ada", "Brian"), ("Chen", "Dana")]
    three = pw.sql(
        "SELECT a.name, d.floor FROM p a JOIN p b ON a.dept = b.dept "
        "JOIN d ON d.dept = b.dept WHERE a.name <> b.name",
        p=people,
        d=depts,
    )
    assert snapshot(three) == [("Ada", 3), ("Brian", 3), ("Chen", 1), ("Dana", 1)]


def test_ambiguous_column_raises(people: pw.Table, depts: pw.Table) -> None:
    with pytest.raises(KeyError, match="ambiguous"):
        pw.sql("SELECT dept FROM p, d", p=people, d=depts)


def test_group_by_over_a_join(people: pw.Table, depts: pw.Table) -> None:
    result = pw.sql(
        "SELECT floor, SUM(salary) AS total FROM p JOIN d ON p.dept = d.dept "
        "GROUP BY floor HAVING COUNT(*) = 2",
        p=people,
        d=depts,
    )
    assert snapshot(result) == [(1, 160), (3, 220)]


# --- subqueries, WITH, set operations ---------------------------------------------------------


def test_subquery_in_from_and_column_aliases(people: pw.Table) -> None:
    result = pw.sql(
        "SELECT s.who FROM (SELECT name AS who, age FROM p WHERE age > 40) AS s WHERE s.age < 50",
        p=people,
    )
    assert snapshot(result) == [("Brian",), ("Eve",)]
    assert ids(result) <= ids(people)
    renamed = pw.sql("SELECT x FROM (SELECT name, age FROM p) AS s(x, y) WHERE y = 29", p=people)
    assert snapshot(renamed) == [("Chen",)]


def test_with_clauses_chain(people: pw.Table) -> None:
    result = pw.sql(
        """
        WITH eng AS (SELECT name, age FROM p WHERE dept = 'eng'),
             older AS (SELECT name FROM eng WHERE age > 40)
        SELECT name FROM older""",
        p=people,
    )
    assert snapshot(result) == [("Brian",)]
    assert ids(result) <= ids(people)


def test_scalar_subqueries(people: pw.Table) -> None:
    above = pw.sql("SELECT name FROM p WHERE salary > (SELECT AVG(salary) FROM p)", p=people)
    assert snapshot(above) == [("Ada",), ("Brian",), ("Dana",)]
    assert ids(above) <= ids(people)
    with_max = pw.sql(
        "SELECT name, (SELECT MAX(age) FROM p) - age AS gap FROM p WHERE dept = 'eng'", p=people
    )
    assert snapshot(with_max) == [("Ada", 16), ("Brian", 11)]
    grouped = pw.sql(
        "SELECT dept FROM p GROUP BY dept HAVING MAX(age) = (SELECT MAX(age) FROM p)", p=people
    )
    assert snapshot(grouped) == [("sales",)]


def test_in_and_exists_subqueries(people: pw.Table, depts: pw.Table) -> None:
    inside = pw.sql(
        "SELECT name FROM p WHERE dept IN (SELECT dept FROM d WHERE floor > 1)", p=people, d=depts
    )
    assert snapshot(inside) == [("Ada",), ("Brian",)]
    assert ids(inside) <= ids(people)
    outside = pw.sql("SELECT name FROM p WHERE dept NOT IN (SELECT dept FROM d)", p=people, d=depts)
    assert snapshot(outside) == [("Eve",)]
    exists = pw.sql(
        "SELECT name FROM p WHERE EXISTS (SELECT * FROM d WHERE floor > 2)", p=people, d=depts
    )
    assert len(snapshot(exists)) == 5
    empty = pw.sql(
        "SELECT name FROM p WHERE EXISTS (SELECT * FROM d WHERE floor > 9)", p=people, d=depts
    )
    assert snapshot(empty) == []


def test_any_and_all_subqueries(people: pw.Table, depts: pw.Table) -> None:
    def names(query: str) -> list[tuple]:
        return snapshot(pw.sql(query, p=people, d=depts))

    assert names("SELECT name FROM p WHERE age < ALL (SELECT age FROM p WHERE dept = 'eng')") == [
        ("Chen",)
    ]
    assert names("SELECT name FROM p WHERE age > ANY (SELECT age FROM p WHERE dept = 'eng')") == [
        ("Brian",),
        ("Dana",),
        ("Eve",),
    ]
    assert names("SELECT name FROM p WHERE dept = ANY (SELECT dept FROM d)") == [
        ("Ada",),
        ("Brian",),
        ("Chen",),
        ("Dana",),
    ]
    assert names("SELECT name FROM p WHERE dept <> ALL (SELECT dept FROM d)") == [("Eve",)]
    # over no rows, ALL holds and ANY does not
    assert len(names("SELECT name FROM p WHERE age > ALL (SELECT age FROM p WHERE age > 99)")) == 5
    assert names("SELECT name FROM p WHERE age > ANY (SELECT age FROM p WHERE age > 99)") == []


def test_correlated_exists_and_in(people: pw.Table, depts: pw.Table) -> None:
    exists = pw.sql(
        "SELECT name FROM p WHERE EXISTS (SELECT * FROM d WHERE d.dept = p.dept AND floor > 1)",
        p=people,
        d=depts,
    )
    assert snapshot(exists) == [("Ada",), ("Brian",)]
    assert ids(exists) <= ids(people)
    missing = pw.sql(
        "SELECT name FROM p WHERE NOT EXISTS (SELECT * FROM d WHERE d.dept = dept)",
        p=people,
        d=depts,
    )
    # unqualified "dept" is the subquery's own column: d.dept = d.dept holds for every row
    assert snapshot(missing) == []
    juniors = pw.sql(
        "SELECT q.name FROM p q WHERE q.name IN "
        "(SELECT o.name FROM p o WHERE o.dept = q.dept AND o.age < 40)",
        p=people,
    )
    assert snapshot(juniors) == [("Ada",), ("Chen",)]


def test_correlated_scalar_aggregates(people: pw.Table, depts: pw.Table) -> None:
    above = pw.sql(
        "SELECT name FROM p e WHERE salary > (SELECT AVG(salary) FROM p o WHERE o.dept = e.dept)",
        p=people,
    )
    assert snapshot(above) == [("Ada",), ("Dana",)]
    counts = pw.sql(
        "SELECT dept, (SELECT COUNT(*) FROM p WHERE p.dept = d.dept) AS n FROM d", p=people, d=depts
    )
    assert types(counts) == {"dept": str, "n": int}
    assert snapshot(counts) == [("eng", 2), ("legal", 0), ("sales", 2)]


def test_subquery_of_a_grouped_query_must_be_one_value_per_group(
    people: pw.Table, depts: pw.Table
) -> None:
    per_group = pw.sql(
        "SELECT dept, (SELECT COUNT(*) FROM d WHERE d.dept = p.dept) AS n FROM p GROUP BY dept",
        p=people,
        d=depts,
    )
    assert snapshot(per_group) == [("eng", 1), ("hr", 0), ("sales", 1)]
    per_row = pw.sql(
        "SELECT dept FROM p GROUP BY dept "
        "HAVING EXISTS (SELECT * FROM d WHERE d.floor * 12 = p.age)",
        p=people,
        d=depts,
    )
    with pytest.raises(ValueError, match="unique"):
        snapshot(per_row)


def test_other_correlated_subqueries_raise_syntax_error(people: pw.Table, depts: pw.Table) -> None:
    with pytest.raises(SyntaxError, match="correlated"):
        pw.sql(
            "SELECT name FROM p WHERE 1 = (SELECT COUNT(*) FROM d WHERE d.floor > p.age)",
            p=people,
            d=depts,
        )
    with pytest.raises(SyntaxError, match="correlated"):
        pw.sql(
            "SELECT name FROM p WHERE EXISTS (SELECT dept FROM d WHERE d.dept = p.dept "
            "GROUP BY dept)",
            p=people,
            d=depts,
        )


def test_union_intersect_except() -> None:
    first = T("""
    k | v
    1 | a
    1 | a
    2 | b
    """)
    second = T("""
    k | v
    2 | b
    3 | c
    """)

    def run(query: str) -> list[tuple]:
        return snapshot(pw.sql(query, x=first, y=second))

    assert run("SELECT * FROM x UNION ALL SELECT * FROM y") == [
        (1, "a"),
        (1, "a"),
        (2, "b"),
        (2, "b"),
        (3, "c"),
    ]
    assert run("SELECT * FROM x UNION SELECT * FROM y") == [(1, "a"), (2, "b"), (3, "c")]
    assert run("SELECT * FROM x INTERSECT SELECT * FROM y") == [(2, "b")]
    assert run("SELECT * FROM x EXCEPT SELECT * FROM y") == [(1, "a")]
    # columns are matched by name
    assert run("SELECT k, v FROM x INTERSECT SELECT v, k FROM y") == [(2, "b")]
    with pytest.raises(ValueError):
        pw.sql("SELECT k FROM x UNION SELECT v FROM y", x=first, y=second)
    with pytest.raises(NotImplementedError, match="INTERSECT ALL"):
        pw.sql("SELECT * FROM x INTERSECT ALL SELECT * FROM y", x=first, y=second)


def test_union_ids_are_those_of_concat_reindex_then_groupby() -> None:
    first = T("""
    k
    1
    2
    """)
    second = T("""
    k
    2
    """)
    union_all = pw.sql("SELECT k FROM x UNION ALL SELECT k FROM y", x=first, y=second)
    assert ids(union_all) == ids(first.concat_reindex(second))
    union = pw.sql("SELECT k FROM x UNION SELECT k FROM y", x=first, y=second)
    assert ids(union) == ids(first.concat_reindex(second).groupby(pw.this.k).reduce())


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, construct",
    [
        ("SELECT name FROM p ORDER BY name", "ORDER BY"),
        ("SELECT name FROM p LIMIT 2", "LIMIT"),
        ("CREATE TABLE q (a INT)", "CREATE"),
        ("SELECT name, ROW_NUMBER() OVER (ORDER BY age) FROM p", "OVER"),
        ("SELECT dept FROM p GROUP BY ROLLUP (dept)", "ROLLUP"),
        ("SELECT name FROM other.p", "other.p"),
        ("SELECT name FROM p UNION SELECT dept FROM p ORDER BY name", "ORDER"),
        ("SELECT MID(name, 1, 2) FROM p", "MID"),
        ("SELECT name FROM p WHERE name LIKE dept", "LIKE"),
        ("SELECT * FROM p NATURAL JOIN p", "NATURAL"),
        ("WITH RECURSIVE r AS (SELECT name FROM p) SELECT * FROM r", "RECURSIVE"),
        ("SELECT STDDEV(age) FROM p", "STDDEV"),
    ],
)
def test_unsupported_constructs_are_named(people: pw.Table, query: str, construct: str) -> None:
    with pytest.raises(NotImplementedError, match=construct):
        pw.sql(query, p=people)


def test_errors_when_the_query_is_defined(people: pw.Table) -> None:
    with pytest.raises(KeyError, match="nope"):
        pw.sql("SELECT nope FROM p", p=people)
    with pytest.raises(KeyError, match="q"):
        pw.sql("SELECT name FROM q", p=people)
    with pytest.raises(KeyError):
        pw.sql("SELECT name FROM (SELECT name AS n FROM p)", p=people)
    with pytest.raises(KeyError):
        pw.sql("SELECT 1")
    with pytest.raises(ValueError, match="GROUP BY"):
        pw.sql("SELECT name, COUNT(*) FROM p GROUP BY dept", p=people)
    with pytest.raises(ValueError, match="WHERE"):
        pw.sql("SELECT dept FROM p WHERE COUNT(*) > 1 GROUP BY dept", p=people)
    with pytest.raises(ValueError, match="'id'"):
        pw.sql("SELECT age AS id FROM p", p=people)
    with pytest.raises(TypeError, match="'p'"):
        pw.sql("SELECT * FROM p", p=[1, 2])
    with pytest.raises(TypeError):
        pw.sql(b"SELECT * FROM p", p=people)  # type: ignore[arg-type]


def test_parse_errors_are_sqlglot_parse_errors(people: pw.Table) -> None:
    from sqlglot.errors import ParseError

    with pytest.raises(ParseError):
        pw.sql("SELECT FROM WHERE", p=people)
    with pytest.raises(ParseError):
        pw.sql("", p=people)


def test_only_the_first_statement_runs(people: pw.Table, caplog: pytest.LogCaptureFixture) -> None:
    result = pw.sql("SELECT name FROM p WHERE age = 29; SELECT age FROM p", p=people)
    assert snapshot(result) == [("Chen",)]
    assert "first of the 2 statements" in caplog.text


def test_missing_sqlglot_says_how_to_install(
    people: pw.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name == "sqlglot" or name.startswith(("sqlglot.", "deltaflow.sql._")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sqlglot", None)
    with pytest.raises(ImportError, match=re.escape("deltaflow[sql]")):
        pw.sql("SELECT * FROM p", p=people)


def test_result_is_an_ordinary_table(people: pw.Table) -> None:
    result = pw.sql("SELECT dept, COUNT(*) AS n FROM p GROUP BY dept", p=people)
    followed = result.filter(pw.this.n > 1).select(pw.this.dept)
    assert snapshot(followed) == [("eng",), ("sales",)]
    again = pw.sql("SELECT dept FROM r WHERE n = 1", r=result)
    assert snapshot(again) == [("hr",)]


# --- the examples of docs/sql.md --------------------------------------------------------------


def _doc_examples() -> list[tuple[str, str]]:
    text = (pathlib.Path(__file__).parent.parent / "docs" / "sql.md").read_text()
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_doc_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = _doc_examples()[index]
    exec(compile(code, f"docs/sql.md example {index}", "exec"), {})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]
