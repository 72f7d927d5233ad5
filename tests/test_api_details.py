"""Smaller parts of Pathway's API: schema printing and type names, Table + Table,
pw.Table[Schema], universes, stdlib.utils helpers, load_yaml, schema_from_csv, settings."""

from __future__ import annotations

import sys
import types
import typing
import warnings

import numpy as np
import pytest
from tests._util import snapshot

import deltaflow as pw


def _table() -> pw.Table:
    return pw.debug.table_from_markdown(
        """
          | g | v | w
        1 | a | 1 | 5
        2 | a | 3 | 5
        3 | b | 2 | 7
        4 | a | 3 | 1
        """
    )


def test_schema_prints_as_a_table_of_engine_type_names() -> None:
    class S(pw.Schema):
        a: int = pw.column_definition(primary_key=True)
        b: str | None
        c: list[int]
        d: tuple[int, str]

    lines = str(S).splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["id", "a", "b", "c", "d"]
    assert [c.strip() for c in lines[1].split("|")] == [
        "Pointer(INT)",
        "INT",
        "Optional(STR)",
        "List(INT)",
        "Tuple(INT, STR)",
    ]
    assert "types=" in repr(S)


def test_schema_from_dict_takes_type_names_as_text() -> None:
    s = pw.schema_from_dict(
        {"a": "int", "b": {"dtype": "Optional[str]"}, "c": "DateTimeUtc", "d": "list[float]"}
    )
    assert s.typehints()["a"] is int
    assert [c.strip() for c in str(s).splitlines()[1].split("|")][1:] == [
        "INT",
        "Optional(STR)",
        "DATE_TIME_UTC",
        "List(FLOAT)",
    ]
    with pytest.raises(TypeError, match="'blah' is not a type name"):
        pw.schema_from_dict({"a": "blah"})


def test_table_plus_table_puts_columns_side_by_side() -> None:
    t = _table()
    doubled = t.select(d=t.v * 2)
    both = t + doubled
    assert both.column_names() == ["g", "v", "w", "d"]
    assert snapshot(both) == [("a", 1, 5, 2), ("a", 3, 1, 6), ("a", 3, 5, 6), ("b", 2, 7, 4)]
    both += doubled.select(e=doubled.d + 1)
    assert snapshot(both.select(both.e)) == [(3,), (5,), (7,), (7,)]


def test_table_plus_unrelated_table_fails_when_defined() -> None:
    other = pw.debug.table_from_markdown(
        """
          | x
        1 | 1
        9 | 2
        """
    )
    with pytest.raises(ValueError, match="same rows"):
        _ = _table() + other


def test_static_tables_with_the_same_ids_share_their_rows() -> None:
    t = _table()
    same_ids = pw.debug.table_from_markdown(
        """
          | x
        1 | 10
        2 | 20
        3 | 30
        4 | 40
        """
    )
    assert snapshot(t.select(t.g, same_ids.x)) == [("a", 10), ("a", 20), ("a", 40), ("b", 30)]


def test_markdown_table_without_columns() -> None:
    t = pw.debug.table_from_markdown(
        """
            |
        1   |
        2   |
        """
    )
    assert t.column_names() == []
    assert len(pw.debug.table_to_dicts(t)[0]) == 2


def test_table_subscript_makes_an_annotation() -> None:
    class S(pw.Schema):
        a: int

    alias = pw.Table[S]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__args__ == (S,)


def test_unpack_col_by_names_and_by_schema() -> None:
    from deltaflow.stdlib.utils.col import unpack_col

    t = _table()
    pairs = t.select(p=pw.make_tuple(t.g, t.v))
    assert snapshot(unpack_col(pairs.p, "x", "y")) == [("a", 1), ("a", 3), ("a", 3), ("b", 2)]

    class S(pw.Schema):
        x: str
        y: int

    unpacked = unpack_col(pairs.p, schema=S)
    assert unpacked.typehints() == {"x": str, "y": int}


def test_apply_all_rows_sees_whole_columns_and_keeps_ids() -> None:
    from deltaflow.stdlib.utils.col import apply_all_rows

    t = _table()
    calls: list[int] = []

    def product(a: list[int], b: list[int]) -> list[int]:
        calls.append(len(a))
        return [x * y for x, y in zip(a, b)]

    result = apply_all_rows(t.v, t.w, fun=product, result_col_name="prod")
    joined = t + result
    assert snapshot(joined.select(joined.v, joined.w, joined.prod)) == [
        (1, 5, 5),
        (2, 7, 14),
        (3, 1, 3),
        (3, 5, 15),
    ]
    assert calls == [4]


def test_majority_and_argmax_rows() -> None:
    from deltaflow.stdlib.utils.col import groupby_reduce_majority
    from deltaflow.stdlib.utils.filtering import argmax_rows, argmin_rows

    t = _table()
    assert snapshot(groupby_reduce_majority(t.g, t.v)) == [("a", 3), ("b", 2)]
    assert snapshot(argmin_rows(t, t.g, what=t.v)) == [("a", 1, 5), ("b", 2, 7)]
    top = snapshot(argmax_rows(t, t.g, what=t.v))
    assert top[1] == ("b", 2, 7) and top[0][:2] == ("a", 3)


def test_universes_promises() -> None:
    t = _table()
    other = pw.debug.table_from_markdown(
        """
          | x
        1 | 10
        2 | 20
        3 | 30
        4 | 40
        """
    )
    pw.universes.promise_are_equal(t, other)
    assert snapshot((t + other).select(pw.this.v, pw.this.x)) == [
        (1, 10),
        (2, 30),
        (3, 20),
        (3, 40),
    ]


class _Thing:
    def __init__(self, a: int, b: object = None) -> None:
        self.a, self.b = a, b


def test_load_yaml_builds_objects_and_shares_variables() -> None:
    module = types.ModuleType("yaml_test_targets")
    module.Thing = _Thing  # type: ignore[attr-defined]
    sys.modules["yaml_test_targets"] = module
    loaded = pw.load_yaml(
        """
$shared: !yaml_test_targets.Thing
  a: 1
outer: !yaml_test_targets.Thing
  a: 2
  b: $shared
also: [$shared]
"""
    )
    assert set(loaded) == {"outer", "also"}
    assert loaded["outer"].b is loaded["also"][0] and loaded["outer"].b.a == 1
    with pytest.raises(KeyError, match=r"\$missing"):
        pw.load_yaml("x: $missing")
    with pytest.raises(TypeError):
        pw.load_yaml("x: !yaml_test_targets.Thing\n  nope: 1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("17", 17), ("-2.5", -2.5), ("0x1f", 31), ("yes", True), ("False", False)]
    + [(t, t) for t in ("plain", "null", "1e3", "k: v", "[1, 2]", "$OTHER", "2020-01-01")],
)
def test_load_yaml_reads_undefined_variables_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: object
) -> None:
    monkeypatch.setenv("DF_YAML_VALUE", text)
    monkeypatch.setenv("OTHER", "not to be followed")
    loaded = pw.load_yaml("x: $DF_YAML_VALUE\ny: [$DF_YAML_VALUE]\n")
    assert loaded["x"] == expected and type(loaded["x"]) is type(expected)
    assert loaded["y"] == [expected]
    # A top-level definition wins over the environment.
    assert pw.load_yaml("$DF_YAML_VALUE: 5\nx: $DF_YAML_VALUE\n") == {"x": 5}


def test_load_yaml_bare_tag_warns_and_still_calls() -> None:
    module = types.ModuleType("yaml_bare_targets")
    module.make = lambda: "made"  # type: ignore[attr-defined]
    sys.modules["yaml_bare_targets"] = module
    with pytest.warns(DeprecationWarning, match="no value"):
        assert pw.load_yaml("x: !yaml_bare_targets.make\n") == {"x": "made"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit empty mapping is the quiet form
        assert pw.load_yaml("x: !yaml_bare_targets.make {}\n") == {"x": "made"}


def test_load_yaml_pw_tags_fall_back_to_a_pathway_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    alias = types.ModuleType("pathway")
    alias.__path__ = []  # type: ignore[attr-defined]
    only_there = types.ModuleType("pathway.only_there")
    only_there.value = lambda: 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pathway", alias)
    monkeypatch.setitem(sys.modules, "pathway.only_there", only_there)
    loaded = pw.load_yaml(
        'a: !pw.only_there.value {}\nb: !pw.debug.table_from_markdown\n  table_def: "x\\n1"\n'
    )
    assert loaded["a"] == 3  # not in deltaflow: found under the alias
    assert pw.debug.table_to_pandas(loaded["b"])["x"].tolist() == [1]  # deltaflow first
    with pytest.raises(ImportError, match="deltaflow.nowhere"):
        pw.load_yaml("a: !pw.nowhere.thing {}\n")


def test_schema_from_csv_infers_types(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("a,b,c,e\n1,2.5,x,\n3,4,y,7\n")
    schema = pw.schema_from_csv(str(path))
    assert schema.typehints() == {"a": int, "b": float, "c": str, "e": str}
    assert set(pw.schema_from_csv(str(path), num_parsed_rows=0).typehints().values()) == {
        pw.schema_from_dict({"x": "Any"}).typehints()["x"]
    }


def test_license_key_and_monitoring_config_are_accepted() -> None:
    pw.set_license_key("demo-key")
    pw.set_monitoring_config(server_endpoint=None)


def test_run_all_computes_tables_without_outputs() -> None:
    t = pw.debug.table_from_markdown(
        """
        a
        1
        0
        """
    )
    t.select(b=pw.apply(lambda a: 1 // a, t.a))
    pw.run()  # no outputs: nothing is computed, so nothing fails
    with pytest.raises(pw.UdfError, match="ZeroDivisionError"):
        pw.run_all()


def test_table_slice_renames_and_unpacks() -> None:
    t = pw.debug.table_from_markdown(
        """
        a | b
        1 | 2
        """
    )
    assert list(t.slice.keys()) == ["a", "b"]
    renamed = t.select(**t.slice.with_suffix("_l").with_prefix("t"))
    assert renamed.column_names() == ["ta_l", "tb_l"]
    assert snapshot(renamed) == [(1, 2)]
    assert list(t.slice.without("a").keys()) == ["b"]
    assert list(t.slice.rename({"a": "z"}).keys()) == ["b", "z"]
    assert t.C.a.name == "a" and t.slice.b.name == "b"


def test_this_without_and_positional_reducers() -> None:
    t = pw.debug.table_from_markdown(
        """
        a | b
        1 | 2
        3 | 4
        """
    )
    assert t.select(pw.this.without("a").b).column_names() == ["b"]
    with pytest.raises(KeyError):
        t.select(pw.this.without(pw.this.a).a)
    reduced = t.reduce(pw.reducers.max(t.a), pw.reducers.sum(t.b))
    assert reduced.column_names() == ["a", "b"]
    assert snapshot(reduced) == [(3, 6)]


def test_markdown_id_column_labels_rows() -> None:
    by_column = pw.debug.table_from_markdown(
        """
        id | a
        1  | x
        2  | y
        """
    )
    by_label = pw.debug.table_from_markdown(
        """
          | a
        1 | x
        2 | y
        """
    )
    assert by_column.column_names() == ["a"]
    assert pw.debug.table_to_dicts(by_column)[1] == pw.debug.table_to_dicts(by_label)[1]


def test_str_to_bool_cast_and_unicode_json_and_optional_ints_in_pandas() -> None:
    class S(pw.Schema):
        s: str

    t = pw.debug.table_from_rows(S, [("true",), ("False",), ("",)])
    assert snapshot(t.select(pw.this.s, b=pw.cast(bool, pw.this.s))) == [
        ("", False),
        ("False", True),
        ("true", True),
    ]
    assert str(pw.Json({"name": "żółć"})) == '{"name": "żółć"}'
    frame = pw.debug.table_to_pandas(
        pw.debug.table_from_markdown(
            """
        a
        1
        None
        """
        )
    )
    assert str(frame["a"].dtype) == "Int64"
    assert sorted(v for v in frame["a"].tolist() if v is not pd_na()) == [1]


def pd_na() -> object:
    import pandas as pd

    return pd.NA


def test_column_namespace_on_this_and_schema_equality() -> None:
    tab = pw.Table.empty(select=int, C=float)
    copied = tab.select(pw.this.C.select, pw.this.C.C)
    assert copied.schema == tab.schema
    assert tab.select(pw.this["C"]).schema != tab.schema
    assert pw.Table.empty(select=int).schema != pw.Table.empty(select=str).schema


def test_connector_subject_delete_removes_a_sent_row() -> None:
    class S(pw.Schema):
        k: int = pw.column_definition(primary_key=True)
        v: str

    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(k=1, v="a")
            self.next(k=2, v="b")
            self.commit()
            self.delete(k=1, v="a")

    table = pw.io.python.read(Subject(), schema=S)
    assert snapshot(table) == [(2, "b")]


def test_concat_of_tables_sharing_ids_is_refused_unless_promised() -> None:
    first = pw.debug.table_from_markdown(
        """
          | v
        1 | a
        2 | b
        """
    )
    clashing = pw.debug.table_from_markdown(
        """
          | v
        1 | c
        """
    )
    with pytest.raises(ValueError, match="same ids"):
        first.concat(clashing)
    pw.universes.promise_are_pairwise_disjoint(first, clashing)
    with pytest.raises(KeyError, match="several rows"):
        pw.debug.table_to_dicts(first.concat(clashing))
    separate = pw.debug.table_from_markdown(
        """
          | v
        3 | c
        """
    )
    assert snapshot(first.concat(separate)) == [("a",), ("b",), ("c",)]


def test_a_column_of_only_none_widens_to_the_other_type() -> None:
    empty = pw.debug.table_from_markdown(
        """
          | x | y
        1 | 1 |
        """
    )
    full = pw.debug.table_from_markdown(
        """
          | x | y
        2 | 2 | 5
        """
    )
    assert str(empty.schema).split()[-1] == "NONE"
    both = empty.concat(full)
    assert both.typehints()["y"] == int | None
    assert empty.update_types(y=int | None).typehints()["y"] == int | None
    assert snapshot(both) == [(1, None), (2, 5)]


def test_placeholders_spread_into_select_keywords() -> None:
    left = pw.debug.table_from_markdown("""
     a | x
     0 | 1
     6 | 1
    """)
    right = pw.debug.table_from_markdown("""
     b | y
     5 | 2
    """)
    joined = left.asof_join(right, left.a, right.b, how=pw.JoinMode.LEFT).select(
        **pw.left, **pw.right
    )
    assert joined.column_names() == ["a", "x", "b", "y"]
    rows = sorted(pw.debug.table_to_dicts(joined)[1]["b"].values(), key=repr)
    assert rows == [5, None]
    # keys() is a method, as in Pathway: a column named "keys" is pw.this["keys"].
    assert callable(pw.this.keys) and len(pw.left.keys()) == 1
    spread = left.select(**pw.this, doubled=pw.this.a * 2)
    assert spread.column_names() == ["a", "x", "doubled"]


def test_join_result_groupby_takes_only_id_by_keyword() -> None:
    left = pw.debug.table_from_markdown("""
    k | v
    1 | 2
    1 | 3
    """)
    right = pw.debug.table_from_markdown("""
    k | w
    1 | 10
    """)
    joined = left.join(right, left.k == right.k)
    totals = joined.groupby(pw.left.k).reduce(pw.left.k, s=pw.reducers.sum(pw.left.v + pw.right.w))
    assert list(pw.debug.table_to_dicts(totals)[1]["s"].values()) == [25]
    for keyword in ("sort_by", "instance", "nope"):
        with pytest.raises(TypeError, match=keyword):
            joined.groupby(pw.left.k, **{keyword: pw.left.v})


def test_optional_typehints_are_spelled_with_a_bar() -> None:
    # Pathway's typehints() gives ``int | None`` (types.UnionType), not typing.Optional[int]
    t = pw.debug.table_from_markdown(
        """
        a | b
        1 | x
        """
    )
    r = t.select(
        i=pw.if_else(t.a > 0, t.a, None),
        tup=pw.if_else(t.a > 0, pw.make_tuple(t.a, t.b), None),
        p=pw.if_else(t.a > 0, t.pointer_from(t.a), None),
    )
    hints = r.schema.typehints()
    assert repr(hints["i"]) == "int | None"
    assert repr(hints["tup"]) == "tuple[int, str] | None"
    assert hints["p"] == (pw.Pointer[int] | None)
    # the hints still name the same types when a schema is built from them
    assert pw.schema_from_types(**hints).typehints() == hints


def test_array_annotations_keep_element_type_and_dimensions() -> None:
    class Arrays(pw.Schema):
        f: np.ndarray[typing.Any, np.dtype[np.float64]]
        m: np.ndarray[tuple[int, int], np.dtype[np.int64]]
        v: np.ndarray[tuple[int], np.dtype[np.int64]]
        a: np.ndarray

    t = pw.debug.table_from_rows(
        Arrays, [(np.array([1.5, 2.5]), np.array([[1, 2], [3, 4]]), np.array([7]), np.array([0]))]
    )
    # Pathway prints the element type and the dimensions when they are known ...
    assert "Array(FLOAT) | Array(2, INT) | Array(1, INT) | Array" in str(t.schema)
    # ... and gives hints of any shape with the element type
    hints = t.schema.typehints()
    assert hints["f"] == np.ndarray[tuple[int, ...], np.dtype[float]]
    assert hints["m"] == np.ndarray[tuple[int, ...], np.dtype[int]]
    assert hints["a"] == np.ndarray[tuple[int, ...], np.dtype[typing.Any]]
    # indexing: one dimension less; a 1-d array gives its elements; unknown stays an array
    r = t.select(f0=t.f[0], m0=t.m[0], m00=t.m[0][0], v0=t.v[0])
    assert r.schema.typehints() == {"f0": hints["f"], "m0": hints["m"], "m00": int, "v0": int}
    assert pw.debug.table_to_pandas(r)[["m00", "v0"]].iloc[0].tolist() == [1, 7]
    assert r.select(x=pw.this.m0.get(1)).schema.typehints()["x"] is int
    with pytest.raises(TypeError, match="element type"):
        pw.schema_from_types(x=np.ndarray[typing.Any, np.dtype[np.uint8]])


def test_argument_errors_name_the_table_method_not_its_mixin() -> None:
    """Table's methods live in mixins (table_rows, table_id_ops ...); a TypeError about their
    arguments still names ``Table.<method>``, as the user called it."""
    table = pw.debug.table_from_markdown("a\n1")
    for call, name in [
        (lambda: table.flatten(), "Table.flatten()"),  # type: ignore[call-arg]
        (lambda: table.filter(), "Table.filter()"),  # type: ignore[call-arg]
        (lambda: table.update_rows(), "Table.update_rows()"),  # type: ignore[call-arg]
        (lambda: table.ix(), "Table.ix()"),  # type: ignore[call-arg]
    ]:
        with pytest.raises(TypeError) as caught:
            call()
        assert str(caught.value).startswith(f"{name} missing 1 required positional argument")
