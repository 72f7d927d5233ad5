"""Stateless Table operations, on static data and on update streams."""

from __future__ import annotations

import pytest

import deltaflow as pw
from _util import snapshot, snapshot_by_id, stream

STREAM = """
    | name  | age | city   | __time__ | __diff__
  1 | Alice | 10  | Paris  | 2        | 1
  2 | Bob   | 9   | Berlin | 2        | 1
  3 | Carol | 30  | Rome   | 4        | 1
  1 | Alice | 10  | Paris  | 6        | -1
  1 | Alice | 11  | Paris  | 6        | 1
  2 | Bob   | 9   | Berlin | 8        | -1
"""

STATIC = """
  name  | age | city
  Alice | 10  | Paris
  Bob   | 9   | Berlin
  Carol | 30  | Rome
"""


def people(update_stream: bool = False) -> pw.Table:
    return pw.debug.table_from_markdown(STREAM if update_stream else STATIC)


def test_select_static() -> None:
    t = people()
    r = t.select(t.name, pw.this.age, older=t["age"] + 1)
    assert r.column_names() == ["name", "age", "older"]
    assert snapshot(r) == [("Alice", 10, 11), ("Bob", 9, 10), ("Carol", 30, 31)]


def test_select_keeps_ids() -> None:
    t = people()
    before = snapshot_by_id(t)
    after = snapshot_by_id(t.select(n=t.name))
    assert set(before) == set(after)
    assert all(after[k] == (before[k][0],) for k in before)


def test_select_update_stream() -> None:
    t = people(update_stream=True)
    r = t.select(t.name, older=t.age + 1)
    assert stream(r) == [
        (2, "Alice", 11, 1),
        (2, "Bob", 10, 1),
        (4, "Carol", 31, 1),
        (6, "Alice", 11, -1),
        (6, "Alice", 12, 1),
        (8, "Bob", 10, -1),
    ]


def test_select_update_that_does_not_change_the_projection_is_silent() -> None:
    t = people(update_stream=True)
    r = t.select(t.city)
    # Alice's update at time 6 changes only the age: the projected row is unchanged.
    assert [row for row in stream(r) if row[0] == 6] == []


def test_filter_static_and_stream() -> None:
    assert snapshot(people().filter(pw.this.age >= 10)) == [
        ("Alice", 10, "Paris"),
        ("Carol", 30, "Rome"),
    ]
    r = people(update_stream=True).filter(pw.this.age > 10)
    assert stream(r) == [(4, "Carol", 30, "Rome", 1), (6, "Alice", 11, "Paris", 1)]


def test_filter_requires_bool() -> None:
    t = people()
    with pytest.raises(TypeError, match="bool"):
        t.filter(t.age + 1)


def test_with_columns_and_without() -> None:
    t = people()
    r = t.with_columns(age=t.age * 2, country="?")
    assert r.column_names() == ["name", "age", "city", "country"]
    assert snapshot(r)[0] == ("Alice", 20, "Paris", "?")
    w = r.without("city", pw.this.country)
    assert w.column_names() == ["name", "age"]
    with pytest.raises(KeyError, match="nope"):
        t.without("nope")


def test_with_columns_update_stream() -> None:
    r = people(update_stream=True).with_columns(age=pw.this.age * 10)
    assert (6, "Alice", 110, "Paris", 1) in stream(r)
    assert (6, "Alice", 100, "Paris", -1) in stream(r)


def test_renames() -> None:
    t = people()
    # Renamed columns go last, in the order of the mapping (as in Pathway).
    assert t.rename_columns(who=t.name).column_names() == ["age", "city", "who"]
    assert t.rename_by_dict({"age": "years"}).column_names() == ["name", "city", "years"]
    assert t.rename({"city": "town"}).column_names() == ["name", "age", "town"]
    assert t.rename(town="city").column_names() == ["name", "age", "town"]
    assert t.with_prefix("p_").column_names() == ["p_name", "p_age", "p_city"]
    assert t.with_suffix("_s").column_names() == ["name_s", "age_s", "city_s"]
    assert snapshot(t.with_prefix("p_")) == snapshot(t)
    with pytest.raises(ValueError, match="twice"):
        t.rename_by_dict({"age": "name"})


def test_concat_static_and_stream() -> None:
    a = pw.debug.table_from_markdown("""
        | x | __time__ | __diff__
      1 | 1 | 2        | 1
      2 | 2 | 2        | 1
      1 | 1 | 4        | -1
    """)
    b = pw.debug.table_from_markdown("""
        | x
      3 | 3
    """)
    r = a.concat(b)
    assert snapshot(r) == [(2,), (3,)]
    assert stream(r) == [(0, 3, 1), (2, 1, 1), (2, 2, 1), (4, 1, -1)]


def test_concat_checks_columns() -> None:
    a = pw.debug.table_from_markdown("x\n1")
    b = pw.debug.table_from_markdown("y\n1")
    with pytest.raises(ValueError, match="columns"):
        a.concat(b)
    c = pw.debug.table_from_markdown("x\nfoo")
    with pytest.raises(TypeError, match="'x'"):
        a.concat(c)


def test_concat_reindex_keeps_clashing_ids_apart() -> None:
    a = pw.debug.table_from_markdown("x\n1\n2")
    b = pw.debug.table_from_markdown("x\n1\n2")
    r = a.concat_reindex(b)
    assert snapshot(r) == [(1,), (1,), (2,), (2,)]
    assert len(snapshot_by_id(r)) == 4


def test_concat_int_and_float_columns_merge_to_float() -> None:
    a = pw.debug.table_from_markdown("x\n1")
    b = pw.debug.table_from_markdown("x\n2.5")
    r = a.concat_reindex(b)
    assert r.schema.dtypes()["x"] == pw._types.FLOAT  # type: ignore[attr-defined]
    assert snapshot(r) == [(1.0,), (2.5,)]


def test_flatten() -> None:
    t = pw.debug.table_from_markdown("""
        | k | __time__ | __diff__
      1 | a | 2        | 1
      2 | b | 2        | 1
      1 | a | 4        | -1
    """).select(k=pw.this.k, items=pw.apply(lambda k: (k, k + "!"), pw.this.k))
    r = t.flatten(pw.this.items, origin_id="origin")
    assert r.column_names() == ["items", "k", "origin"]  # flattened column first
    rows = stream(r.without("origin"))
    assert rows == [
        (2, "a", "a", 1),
        (2, "a!", "a", 1),
        (2, "b", "b", 1),
        (2, "b!", "b", 1),
        (4, "a", "a", -1),
        (4, "a!", "a", -1),
    ]
    origins = {row[2] for row in snapshot(r)}
    assert origins == set(snapshot_by_id(t)) - {
        k for k, v in snapshot_by_id(t).items() if v[0] == "a"
    }


def test_flatten_rejects_scalars() -> None:
    t = pw.debug.table_from_markdown("x\n1")
    with pytest.raises(TypeError, match="not a list"):
        t.flatten(t.x)


def test_split() -> None:
    big, small = people(update_stream=True).split(pw.this.age >= 10)
    assert snapshot(big) == [("Alice", 11, "Paris"), ("Carol", 30, "Rome")]
    assert snapshot(small) == []
    assert (8, "Bob", 9, "Berlin", -1) in stream(small)


def test_cast_to_types_and_update_types() -> None:
    t = people()
    r = t.cast_to_types(age=float)
    assert r.typehints()["age"] is float
    assert snapshot(r)[0] == ("Alice", 10.0, "Paris")
    u = t.update_types(age=int | None)
    assert u.schema.dtypes()["age"].is_optional
    with pytest.raises(TypeError):
        t.update_types(age=str)


def test_copy() -> None:
    t = people(update_stream=True)
    assert stream(t.copy()) == stream(t)


def test_with_id_from_and_pointer_from() -> None:
    t = people()
    r = t.with_id_from(t.name)
    ids = snapshot_by_id(r)
    looked_up = t.select(t.name, p=t.pointer_from(t.name))
    for name, pointer in snapshot(looked_up):
        assert ids[pointer][0] == name


def test_with_id() -> None:
    t = people()
    keyed = t.select(t.name, key=t.pointer_from(t.city))
    r = keyed.with_id(keyed.key)
    ids = snapshot_by_id(r)
    assert set(ids) == {v[1] for v in ids.values()}
    with pytest.raises(TypeError, match="Pointer"):
        t.with_id(t.age)


def test_with_id_from_update_stream_follows_the_key() -> None:
    t = people(update_stream=True).with_id_from(pw.this.name)
    assert snapshot(t) == [("Alice", 11, "Paris"), ("Carol", 30, "Rome")]


def test_introspection() -> None:
    t = people()
    assert t.column_names() == ["name", "age", "city"]
    assert t.typehints() == {"name": str, "age": int, "city": str}
    assert t.schema.column_names() == ["name", "age", "city"]
    assert list(t.keys()) == ["name", "age", "city"]


def test_empty_table() -> None:
    e = pw.Table.empty(a=int, b=str)
    assert e.column_names() == ["a", "b"]
    assert snapshot(e) == []
    assert snapshot(e.select(c=e.a + 1)) == []


def test_unknown_column_errors_name_table_and_column() -> None:
    t = people()
    with pytest.raises(AttributeError, match="no column 'nope'"):
        _ = t.nope
    with pytest.raises(KeyError, match="no column 'nope'"):
        _ = t["nope"]
    with pytest.raises(KeyError, match="nope"):
        t.select(x=pw.this.nope)
    with pytest.raises(TypeError, match="'\\+'|\\+"):
        t.select(x=t.name + t.age)


def test_duplicate_columns_rejected() -> None:
    t = people()
    with pytest.raises(ValueError, match="twice"):
        t.select(t.name, name=t.city)


def test_other_tables_columns_rejected_clearly() -> None:
    t = people()
    other = pw.debug.table_from_markdown("x\n1")
    with pytest.raises((ValueError, TypeError), match="another table|join"):
        t.select(other.x)


def test_star_expansion() -> None:
    t = people()
    assert t.select(*pw.this).column_names() == ["name", "age", "city"]
    assert t.select(*pw.this.without("age")).column_names() == ["name", "city"]
    assert t.select(*t, extra=1).column_names() == ["name", "age", "city", "extra"]


def test_run_writes_registered_outputs() -> None:
    seen: list[tuple] = []

    class Collect(pw.engine.boundary.Sink):  # type: ignore[name-defined]
        name = "collect"

        def on_batch(self, time: int, batch) -> None:  # noqa: ANN001
            seen.extend((time, *r) for r in batch.drop("_id").iter_rows())

    from deltaflow.table import add_output

    add_output(people(update_stream=True).select(pw.this.name), Collect())
    pw.run()
    assert sorted(seen) == [(2, "Alice", 1), (2, "Bob", 1), (4, "Carol", 1), (8, "Bob", -1)]


def test_columns_of_tables_with_the_same_ids() -> None:
    t = people(update_stream=True)
    doubled = t.select(age2=t.age * 2)
    tagged = t.with_columns(tag=t.city + "!")
    r = t.select(t.name, doubled.age2, x=tagged.tag, same=doubled.id == t.id)
    assert stream(r) == [
        (2, "Alice", 20, "Paris!", True, 1),
        (2, "Bob", 18, "Berlin!", True, 1),
        (4, "Carol", 60, "Rome!", True, 1),
        (6, "Alice", 20, "Paris!", True, -1),
        (6, "Alice", 22, "Paris!", True, 1),
        (8, "Bob", 18, "Berlin!", True, -1),
    ]
    adults = t.filter(t.age >= 10)
    # a subset of t's rows may use t's columns; filtering by another table's column works too
    assert snapshot(adults.select(adults.name, d=doubled.age2)) == [("Alice", 22), ("Carol", 60)]
    assert snapshot(t.filter(doubled.age2 > 40)) == [("Carol", 30, "Rome")]
    with pytest.raises(ValueError, match="not known to include"):
        doubled.select(adults.name)


def test_numpy_array_columns_know_their_element_type() -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "a": [np.array([1, 2, 3]), np.array([4, 5])],
            "f": [np.array([1.5]), np.array([2.5, 3.5])],
            "i": [1, -1],
        }
    )
    t = pw.debug.table_from_pandas(frame)
    picked = t.select(x=t.a[t.i], y=t.f.get(0))
    assert picked.typehints() == {"x": int, "y": float}
    assert sorted(snapshot(picked)) == [(2, 1.5), (5, 2.5)]
    flat = t.flatten(t.f)
    assert flat.column_names() == ["f", "a", "i"] and flat.typehints()["f"] is float
    assert sorted(row[0] for row in snapshot(flat)) == [1.5, 2.5, 3.5]


def test_markdown_true_false_and_labels_without_a_header_cell() -> None:
    t = pw.debug.table_from_markdown(
        """
           flag  | n
        1  | true  | 1
        2  | false | 2
        """
    )
    assert t.typehints() == {"flag": bool, "n": int}
    labelled = pw.debug.table_from_markdown(
        """
          | flag
        1 | true
        2 | false
        """
    )
    assert snapshot_by_id(t).keys() == snapshot_by_id(labelled).keys()
