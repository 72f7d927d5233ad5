"""``ix``/``ix_ref``/``pointer_from`` on ``pw.this``: resolved by the operation using them."""

from __future__ import annotations

from tests._util import snapshot, stream

import deltaflow as pw


def _animals() -> pw.Table:
    return pw.debug.table_from_markdown(
        """
            | genus      | epithet
        1   | upupa      | epops
        2   | acherontia | atropos
        """
    )


def test_ix_with_a_pointer_on_this_in_select() -> None:
    animals = _animals()
    birds = pw.debug.table_from_markdown(
        """
            | desc   | ptr
        1   | hoopoe | 1
        2   | owl    | 2
        """
    ).with_columns(ptr=animals.pointer_from(pw.this.ptr))
    latin = birds.select(pw.this.desc, genus=animals.ix(pw.this.ptr).genus)
    assert snapshot(latin) == [("hoopoe", "upupa"), ("owl", "acherontia")]
    both = birds.select(*animals.ix(pw.this.ptr)[["genus", "epithet"]])
    assert snapshot(both) == [("acherontia", "atropos"), ("upupa", "epops")]


def test_this_pointer_from_and_self_ix() -> None:
    t = pw.debug.table_from_markdown(
        """
          | foo | v
        1 | 1   | 10
        2 | 1   | 20
        """
    ).with_columns(foo=pw.this.pointer_from(pw.this.foo))
    assert snapshot(t.select(w=pw.this.ix(pw.this.foo).v)) == [(10,), (10,)]


def test_ix_of_an_argmax_inside_reduce_follows_updates() -> None:
    pets = pw.debug.table_from_markdown(
        """
          | pet | owner | age | __time__ | __diff__
        1 | dog | Alice | 10  | 2        | 1
        2 | dog | Bob   | 9   | 2        | 1
        3 | cat | Alice | 8   | 2        | 1
        4 | cat | Bob   | 7   | 2        | 1
        1 | dog | Alice | 10  | 4        | -1
        """
    )
    oldest = pets.groupby(pets.pet).reduce(
        pets.pet,
        age=pw.reducers.max(pw.this.age),
        owner=pw.this.ix(pw.reducers.argmax(pw.this.age)).owner,
    )
    assert oldest.column_names() == ["pet", "age", "owner"]
    assert snapshot(oldest) == [("cat", 8, "Alice"), ("dog", 9, "Bob")]
    changes = [row for row in stream(oldest) if row[0] == 4]
    assert changes == [(4, "dog", 9, "Bob", 1), (4, "dog", 10, "Alice", -1)]


def test_ix_ref_on_this_with_optional_misses() -> None:
    animals = _animals()
    birds = pw.debug.table_from_markdown(
        """
        desc
        hoopoe
        """
    )
    found = birds.select(g=animals.ix_ref(pw.this.desc, optional=True).genus)
    assert snapshot(found) == [(None,)]
