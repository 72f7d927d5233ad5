"""Columns of other tables with the same rows in joins, groupby/reduce and selects; ``ix``
with ``context=pw.this``; ``from_columns``; typing rules of filters and ``id``."""

from __future__ import annotations

import pytest
from hypothesis import given
from tests._util import snapshot, stream
from tests.test_stateful_properties import SETTINGS, Event, check, update_streams

import deltaflow as pw
from deltaflow import _types as t
from deltaflow.engine.stateful.nodes import JoinNode
from deltaflow.plan import topological_order


def _people() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | city | age
        1 | 1    | 30
        2 | 2    | 40
        3 | 3    | 50
    """)


def _cities() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | name
        1 | rome
        2 | oslo
        7 | lima
    """)


def _joins_in(table: pw.Table) -> int:
    return sum(isinstance(n, JoinNode) for n in topological_order([table._node]))


# --- join results -----------------------------------------------------------------------------


def test_columns_of_a_select_of_the_same_join() -> None:
    people, cities = _people(), _cities()
    joined = people.join(cities, people.id == cities.id)
    doubled = joined.select(twice=people.age * 2)
    total = joined.select(cities.name, total=people.age + doubled.twice)
    assert snapshot(total) == [("oslo", 120), ("rome", 90)]
    # A column passed on unchanged is read from the join itself: no join on the ids.
    copied = joined.select(people.age)
    plus = joined.select(more=copied.age + 1)
    assert snapshot(plus) == [(31,), (41,)]
    assert _joins_in(plus) == 1


def test_foreign_columns_in_a_join_filter() -> None:
    people, cities = _people(), _cities()
    joined = people.join(cities, people.id == cities.id)
    flags = joined.select(old=people.age > 35)
    kept = joined.filter(flags.old).select(cities.name)
    assert snapshot(kept) == [("oslo",)]


def test_a_table_without_the_join_rows_is_refused() -> None:
    people, cities = _people(), _cities()
    joined = people.join(cities, people.id == cities.id)
    with pytest.raises(ValueError, match="not known to include"):
        joined.select(x=people.copy().age)


def test_ix_with_context_this_in_a_join_select() -> None:
    people, cities = _people(), _cities()
    keyed = people.with_columns(city=cities.pointer_from(people.city))
    # The pointer is computed on the join's rows; the looked-up rows are cities'.
    pairs = keyed.join(cities, keyed.city == cities.id, id=keyed.id).select(
        keyed.age,
        name=cities.ix(keyed.city, context=pw.this).name,
        upper=cities.ix(keyed.city, context=pw.this).name.str.upper(),
    )
    assert snapshot(pairs) == [(30, "rome", "ROME"), (40, "oslo", "OSLO")]


def test_ix_with_context_this_in_a_join_select_on_a_stream() -> None:
    people = pw.debug.table_from_markdown("""
          | city | age | __time__ | __diff__
        1 | 1    | 30  | 2        | 1
        2 | 2    | 40  | 4        | 1
        1 | 1    | 30  | 6        | -1
    """)
    cities = _cities()
    keyed = people.with_columns(city=cities.pointer_from(people.city))
    pairs = keyed.join(cities, keyed.city == cities.id, id=keyed.id).select(
        keyed.age, name=cities.ix(keyed.city, context=pw.this).name
    )
    assert stream(pairs) == [(2, 30, "rome", 1), (4, 40, "oslo", 1), (6, 30, "rome", -1)]


# --- groupby / reduce ---------------------------------------------------------------------


def test_ix_with_context_this_in_reduce() -> None:
    ages = pw.debug.table_from_markdown("""
          | team | age | name
        1 | a    | 20  | ann
        2 | a    | 25  | bob
        3 | b    | 30  | cid
    """)
    oldest = ages.groupby(ages.team).reduce(
        ages.team, name=ages.ix(pw.reducers.argmax(ages.age), context=pw.this).name
    )
    assert snapshot(oldest) == [("a", "bob"), ("b", "cid")]


def test_groupby_on_a_copy_of_the_table() -> None:
    pets = pw.debug.table_from_markdown("""
          | kind | age
        1 | dog  | 3
        2 | cat  | 5
        3 | dog  | 9
    """)
    same = pets.select(*pw.this)
    first = pets.groupby(same.kind).reduce(pets.kind, oldest=pw.reducers.max(same.age))
    second = same.groupby(pets.kind).reduce(same.kind, youngest=pw.reducers.min(pets.age))
    assert snapshot(first) == [("cat", 5), ("dog", 9)]
    assert snapshot(second) == [("cat", 5), ("dog", 3)]
    assert _joins_in(first) == 0


def test_reduce_over_looked_up_values() -> None:
    prices = pw.debug.table_from_markdown("""
          | price
        1 | 10
        2 | 25
    """)
    sales = pw.debug.table_from_markdown("""
          | shop | item | __time__ | __diff__
        1 | x    | 1    | 2        | 1
        2 | x    | 2    | 2        | 1
        3 | y    | 2    | 4        | 1
        2 | x    | 2    | 6        | -1
    """).select(pw.this.shop, item=prices.pointer_from(pw.this.item))
    totals = sales.groupby(sales.shop).reduce(
        sales.shop, total=pw.reducers.sum(prices.ix(sales.item).price)
    )
    assert stream(totals) == [(2, "x", 35, 1), (4, "y", 25, 1), (6, "x", 10, 1), (6, "x", 35, -1)]


def test_groupby_key_from_a_table_with_other_rows_is_refused() -> None:
    pets = _people()
    with pytest.raises(ValueError, match="not known to include"):
        pets.groupby(_cities().name)


# --- from_columns, empty tables, id ----------------------------------------------------------


def test_from_columns_of_tables_with_the_same_rows() -> None:
    first = pw.debug.table_from_markdown("""
        a | b
        1 | x
        2 | y
    """)
    second = pw.debug.table_from_markdown("""
        c
        10
        20
    """)
    both = pw.Table.from_columns(first.a, second.c, label=first.b)
    assert snapshot(both) == [(1, 10, "x"), (2, 20, "y")]
    with pytest.raises(ValueError, match="given twice"):
        pw.Table.from_columns(first.a, first.a)
    with pytest.raises(ValueError, match="same rows"):
        pw.Table.from_columns(first.a, _cities().name)


def test_empty_static_tables_have_the_same_rows() -> None:
    empty = pw.debug.table_from_markdown("""
        | a | b
    """)
    other = pw.debug.table_from_markdown("""
        | b | c
    """)
    merged = empty.with_columns(**other)
    assert merged.column_names() == ["a", "b", "c"]
    assert snapshot(merged) == []


def test_id_is_not_a_column_name() -> None:
    people = _people()
    for make in (
        lambda: people.select(id=people.id),
        lambda: people.with_columns(id=1),
        lambda: people.reduce(id=pw.reducers.count()),
        lambda: people.join(_cities(), people.id == pw.right.id).select(id=1),
    ):
        with pytest.raises(ValueError, match="'id' cannot be a column name"):
            make()


# --- filters that narrow types ----------------------------------------------------------------


def test_is_not_none_filter_drops_optional() -> None:
    values = pw.debug.table_from_markdown("""
        x | y
        1 | 2
          | 3
    """)
    assert values.schema.typehints()["x"] == int | None
    kept = values.filter(values.x.is_not_none())
    assert kept._columns["x"] == t.INT
    assert kept.filter(pw.this.y > 0)._columns["x"] == t.INT
    assert values.filter(pw.this.x != None)._columns["x"] == t.INT  # noqa: E711
    # Anything else leaves the types as they are.
    combined = values.filter(values.x.is_not_none() & (values.y > 2))
    assert combined._columns["x"] == t.Optional(t.INT)
    assert snapshot(kept) == [(1, 2)]


def test_is_not_none_filter_on_an_outer_join() -> None:
    left = pw.debug.table_from_markdown("""
        v
        1
        2
    """)
    right = pw.debug.table_from_markdown("""
        v
        2
        3
    """)
    both = (
        left.join_outer(right, left.v == right.v)
        .filter(pw.left.v.is_not_none())
        .filter(pw.right.v.is_not_none())
        .select(a=pw.left.v, b=pw.right.v, c=pw.this.v)
    )
    assert both._columns == {"a": t.INT, "b": t.INT, "c": t.Optional(t.INT)}
    assert snapshot(both) == [(2, 2, 2)]


# --- property: plans over same-row columns update like their recomputation ------------------


@SETTINGS
@given(update_streams(), update_streams(label_base=100))
def test_same_row_columns_match_recomputation(left: list[Event], right: list[Event]) -> None:
    def grouped(a: pw.Table) -> pw.Table:
        doubled = a.select(w=a.v * 2)  # computed: brought in by a join on the ids
        same = a.select(*pw.this)  # a copy: read from a itself
        return a.groupby(same.k).reduce(
            a.k, s=pw.reducers.sum(doubled.w), m=pw.reducers.max(same.v)
        )

    def joined(a: pw.Table, b: pw.Table) -> pw.Table:
        pairs = a.join(b, a.k == b.k)
        sums = pairs.select(s=pw.left.v + pw.right.v)
        return pairs.filter(sums.s > 0).select(a.k, lv=a.v, s=sums.s)

    check(grouped, left)
    check(joined, left, right)
