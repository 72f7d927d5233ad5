"""update_rows, update_cells, ix, ix_ref, restrict, difference, intersect, sort, deduplicate."""

from __future__ import annotations

import pytest

import deltaflow as pw


def _base() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | a | b
        1 | 1 | 10
        2 | 2 | 20
    """)


def _other() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | b
        1 | 11
        3 | 33
    """)


def _sorted(table: pw.Table, *names: str) -> list[tuple]:
    _, columns = pw.debug.table_to_dicts(table)
    ids = list(columns[names[0]])
    return sorted(
        (tuple(columns[n][i] for n in names) for i in ids),
        key=lambda r: tuple((v is None, v or 0) for v in r),
    )


def test_update_rows_and_cells() -> None:
    t, u = _base(), _other()
    assert _sorted(t.update_rows(u.select(a=5, b=u.b)), "a", "b") == [(2, 20), (5, 11), (5, 33)]
    cells = t.update_cells(u.intersect(t))
    assert _sorted(cells, "a", "b") == [(1, 11), (2, 20)]
    assert _sorted(t << u.intersect(t), "a", "b") == [(1, 11), (2, 20)]
    with pytest.raises(ValueError, match="columns"):
        t.update_rows(u)
    with pytest.raises(ValueError, match="does not have"):
        u.update_cells(t)


def test_restrict_difference_intersect() -> None:
    t, u = _base(), _other()
    assert _sorted(t.restrict(u.intersect(t)), "a") == [(1,)]
    assert _sorted(t.difference(u), "a") == [(2,)]
    assert _sorted(t.intersect(u), "a") == [(1,)]


def test_ix_and_ix_ref() -> None:
    t = _base()
    keyed = t.with_id_from(t.a)
    refs = pw.debug.table_from_markdown("""
          | p
        7 | 1
        8 | 3
    """)
    assert _sorted(keyed.ix_ref(refs.p, allow_misses=True), "a", "b") == [(1, 10), (None, None)]
    with pytest.raises(KeyError, match="ix: no row with id"):
        _sorted(keyed.ix_ref(refs.p), "a")  # key 3 has no row: an error, as in Pathway
    pointers = refs.select(ptr=keyed.pointer_from(refs.p))
    looked = keyed.ix(pointers.ptr, optional=True)
    assert looked.typehints()["b"] == int | None
    ids, _ = pw.debug.table_to_dicts(looked)
    ref_ids, _ = pw.debug.table_to_dicts(refs)
    assert set(ids) == set(ref_ids)


def test_ix_ref_of_constants_looks_up_one_row_for_every_row() -> None:
    # The key's parts are constants (a number and a text): its id is computed once and
    # broadcast to every row of the select.
    indexed = pw.debug.table_from_markdown("""
          | a  | b
        1 | 10 | A
        2 | 20 | B
    """).with_id_from(pw.this.a, pw.this.b)
    rows = pw.debug.table_from_markdown("""
        c
        7
        8
    """)
    got = rows.select(pw.this.c, a=indexed.ix_ref(20, "B").a, b=indexed.ix_ref(10, "A").b)
    assert _sorted(got, "c", "a", "b") == [(7, 20, "A"), (8, 20, "A")]


def test_sort_prev_next() -> None:
    t = pw.debug.table_from_markdown("""
          | v | __time__ | __diff__
        1 | 3 | 2        | 1
        2 | 1 | 2        | 1
        3 | 2 | 4        | 1
        2 | 1 | 6        | -1
    """)
    s = t.sort(key=t.v)
    ids, columns = pw.debug.table_to_dicts(s)
    _, values = pw.debug.table_to_dicts(t)
    by_value = {values["v"][i]: i for i in values["v"]}
    assert columns["prev"][by_value[2]] is None and columns["next"][by_value[2]] == by_value[3]
    assert columns["prev"][by_value[3]] == by_value[2] and columns["next"][by_value[3]] is None
    assert len(ids) == 2


def test_deduplicate() -> None:
    t = pw.debug.table_from_markdown("""
          | g | v | __time__
        1 | a | 3 | 2
        2 | a | 1 | 2
        3 | b | 2 | 4
        4 | a | 5 | 4
    """)
    d = t.deduplicate(value=t.v, instance=t.g, acceptor=lambda new, old: new > old + 1)
    stream = sorted(
        (time, row["g"], row["v"], diff) for time, row, diff in pw.debug.table_to_stream(d)
    )
    assert stream == [(2, "a", 3, 1), (4, "a", 3, -1), (4, "a", 5, 1), (4, "b", 2, 1)]
    with pytest.raises(TypeError, match="acceptor"):
        t.deduplicate(value=t.v, acceptor=None)  # type: ignore[arg-type]


def test_ix_miss_raises_unless_optional() -> None:
    t = pw.debug.table_from_markdown("""
          | v
        1 | a
    """)
    refs = pw.debug.table_from_markdown("k\n1\n2").select(p=t.pointer_from(pw.this.k))
    with pytest.raises(KeyError, match="ix: no row with id"):
        pw.debug.table_to_pandas(t.ix(refs.p))
    _, lenient = pw.debug.table_to_dicts(t.ix(refs.p, optional=True))
    assert sorted(lenient["v"].values(), key=str) == ["None", "a"] or sorted(
        map(str, lenient["v"].values())
    ) == ["None", "a"]
