"""Join definitions checked as Pathway checks them: ``id=``, self-joins, ambiguous names,
duplicated ids at run time, and the universes of join results."""

from __future__ import annotations

import pytest
from tests._util import snapshot, stream

import deltaflow as pw


def _orders() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | cust | amount
        1 | 10   | 5
        2 | 20   | 7
        3 | 30   | 9
    """)


def _customers() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | cust | name
        4 | 10   | ann
        5 | 20   | bob
        6 | 40   | cid
    """)


# --- id= -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["join_outer", "join_left", "join_right"])
def test_id_of_a_side_not_kept_by_the_mode_is_a_key_error(mode: str) -> None:
    orders, customers = _orders(), _customers()
    # outer: no side keeps its ids; left: the right side's ids; right: the left side's.
    refused = {
        "join_outer": [orders.id, customers.id, pw.left.id, pw.right.id],
        "join_left": [customers.id, pw.right.id],
        "join_right": [orders.id, pw.left.id],
    }[mode]
    for id_column in refused:
        with pytest.raises(KeyError, match="cannot take the ids"):
            getattr(orders, mode)(customers, orders.cust == customers.cust, id=id_column)


def test_id_must_be_the_id_column_of_a_side() -> None:
    orders, customers = _orders(), _customers()
    with pytest.raises(AssertionError, match="not column 'cust'"):
        orders.join(customers, orders.cust == customers.cust, id=orders.cust)
    with pytest.raises(ValueError, match="column reference"):
        orders.join(customers, orders.cust == customers.cust, id=orders.cust + 1)


def test_id_of_the_side_a_left_join_keeps() -> None:
    orders, customers = _orders(), _customers()
    joined = orders.join_left(customers, orders.cust == customers.cust, id=orders.id).select(
        orders.amount, customers.name
    )
    assert pw.debug.table_to_dicts(joined)[0] == pw.debug.table_to_dicts(orders)[0]
    # The result has the orders' rows: their columns can be used directly.
    both = orders.select(orders.amount, name=joined.name)
    assert snapshot(both) == [(5, "ann"), (7, "bob"), (9, None)]


def test_pw_this_id_names_the_left_ids() -> None:
    orders, customers = _orders(), _customers()
    by_this = orders.join(customers, orders.cust == customers.cust, id=pw.this.id).select(
        orders.amount
    )
    by_left = orders.join(customers, orders.cust == customers.cust, id=orders.id).select(
        orders.amount
    )
    assert pw.debug.table_to_dicts(by_this)[0] == pw.debug.table_to_dicts(by_left)[0]


def test_repeated_ids_stop_the_run_with_a_key_error() -> None:
    orders = _orders()
    many = pw.debug.table_from_markdown("""
          | cust | tag
        7 | 10   | x
        8 | 10   | y
    """)
    joined = orders.join(many, orders.cust == many.cust, id=orders.id).select(many.tag)
    with pytest.raises(KeyError, match="ids would repeat"):
        pw.debug.table_to_dicts(joined)


def test_repeated_ids_in_an_update_stream() -> None:
    orders = _orders()
    late = pw.debug.table_from_markdown("""
          | cust | tag | __time__
        7 | 10   | x   | 2
        8 | 20   | y   | 2
        9 | 20   | z   | 4
    """)
    joined = orders.join(late, orders.cust == late.cust, id=orders.id).select(late.tag)
    with pytest.raises(KeyError, match="ids would repeat"):
        pw.debug.table_to_dicts(joined)


def test_a_replaced_partner_is_not_a_repeat() -> None:
    orders = _orders()
    # The partner of customer 10 changes twice: in one time (deletion and insertion) and
    # across times (deleted at 4, another row at 6); customer 20 has two rows but no order.
    partners = pw.debug.table_from_markdown("""
          | cust | tag | __time__ | __diff__
        7 | 10   | x   | 2        | 1
        7 | 10   | x   | 4        | -1
        8 | 10   | y   | 4        | 1
        8 | 10   | y   | 6        | -1
        9 | 10   | z   | 8        | 1
        5 | 40   | p   | 2        | 1
        6 | 40   | q   | 2        | 1
    """)
    joined = orders.join_left(partners, orders.cust == partners.cust, id=orders.id).select(
        orders.amount, partners.tag
    )
    changes = stream(joined)
    assert (8, 5, "z", 1) in changes and (4, 5, "y", 1) in changes
    assert set(snapshot(joined)) == {(5, "z"), (7, None), (9, None)}


# --- self-joins and names -------------------------------------------------------------------


def test_a_table_cannot_be_joined_with_itself() -> None:
    orders = _orders()
    with pytest.raises(ValueError, match="copy"):
        orders.join(orders, orders.cust == orders.amount)
    with pytest.raises(ValueError, match="copy"):
        orders.join_left(orders, pw.left.cust == pw.right.amount)
    other = orders.copy()
    pairs = orders.join(other, orders.cust == other.cust).select(a=orders.amount, b=other.amount)
    assert snapshot(pairs) == [(5, 5), (7, 7), (9, 9)]


def test_ix_on_the_same_table_is_not_a_self_join() -> None:
    chain = pw.debug.table_from_markdown("""
          | n | nxt
        1 | 1 | 2
        2 | 2 | 3
        3 | 3 | 1
    """)
    keyed = chain.with_id_from(chain.n)
    linked = keyed.select(keyed.n, after=keyed.ix(keyed.pointer_from(keyed.nxt)).n)
    assert snapshot(linked) == [(1, 2), (2, 3), (3, 1)]


def test_a_name_on_both_sides_is_a_key_error_for_pw_this() -> None:
    left = pw.debug.table_from_markdown("""
          | a | b | c
        1 | 1 | 2 | 3
    """)
    right = pw.debug.table_from_markdown("""
          | b | c | d
        1 | 2 | 3 | 4
    """)
    joined = left.join(right, pw.left.b == pw.right.b)
    # b is equated by the condition, so pw.this.b is one column; c is not.
    assert snapshot(joined.select(pw.left.a, pw.this.b, pw.right.c, pw.right.d)) == [(1, 2, 3, 4)]
    with pytest.raises(KeyError, match="ambiguous"):
        joined.select(pw.this.c)
    with pytest.raises(KeyError, match="ambiguous"):
        joined.filter(pw.this.c > 0)


# --- universes of join results ----------------------------------------------------------------


def test_promised_equal_join_results_share_columns() -> None:
    orders, customers = _orders(), _customers()
    first = orders.join_left(customers, orders.cust == customers.cust)
    second = orders.join_left(customers, orders.cust == customers.cust)
    pw.universes.promise_are_equal(first, second)
    amounts = first.select(orders.amount)
    names = second.select(customers.name)
    assert snapshot(amounts.select(amounts.amount, names.name)) == [
        (5, "ann"),
        (7, "bob"),
        (9, None),
    ]


def test_restrict_to_a_join_result_and_subset_promise() -> None:
    orders, customers = _orders(), _customers()
    matched = orders.join(customers, orders.cust == customers.cust, id=orders.id)
    kept = orders.restrict(matched)
    assert snapshot(kept) == [(10, 5), (20, 7)]
    labels = orders.select(label=orders.cust * 100)
    matched.promise_universe_is_subset_of(labels)
    assert snapshot(matched.select(customers.name, labels.label)) == [("ann", 1000), ("bob", 2000)]


def test_join_with_left_ids_on_an_update_stream() -> None:
    orders = pw.debug.table_from_markdown("""
          | cust | amount | __time__ | __diff__
        1 | 10   | 5      | 2        | 1
        2 | 20   | 7      | 2        | 1
        1 | 10   | 5      | 6        | -1
    """)
    customers = pw.debug.table_from_markdown("""
          | cust | name | __time__
        4 | 10   | ann  | 4
        5 | 20   | bob  | 2
    """)
    joined = orders.join_left(customers, orders.cust == customers.cust, id=orders.id).select(
        orders.amount, customers.name
    )
    assert stream(joined) == [
        (2, 5, None, 1),
        (2, 7, "bob", 1),
        (4, 5, None, -1),
        (4, 5, "ann", 1),
        (6, 5, "ann", -1),
    ]


# --- the examples of docs/joins.md ------------------------------------------------------------


def _doc_examples() -> list[tuple[str, str]]:
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "joins.md").read_text()
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)


def test_doc_has_its_examples() -> None:
    assert len(_doc_examples()) == 4


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_doc_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = _doc_examples()[index]
    exec(compile(code, f"docs/joins.md example {index}", "exec"), {})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]
