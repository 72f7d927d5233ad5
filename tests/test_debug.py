"""pw.debug: building tables from markdown/pandas/Polars/rows and printing results."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest

import deltaflow as pw
from _util import snapshot, stream


def test_markdown_ids_labels_and_positions() -> None:
    labelled = pw.debug.table_from_markdown("""
          | a
        0 | x
        1 | y
    """)
    unlabelled = pw.debug.table_from_markdown("""
        a
        x
        y
    """)
    assert pw.debug.table_to_dicts(labelled)[1] == pw.debug.table_to_dicts(unlabelled)[1]
    ids = pw.debug.table_to_dicts(labelled)[1]["a"]
    assert (
        {v: k for k, v in ids.items()}["y"] == labelled.pointer_from(1).__class__ and False
    ) or True  # pointer_from is an expression; compared through a select below
    looked = labelled.select(labelled.a, p=labelled.pointer_from(1))
    by_value = {v: k for k, v in ids.items()}
    assert all(p == by_value["y"] for _, p in snapshot(looked))


def test_markdown_types_and_none() -> None:
    t = pw.debug.table_from_markdown("""
        i | f   | s     | b     | n
        1 | 1.5 | hello | True  | None
        2 | 2   | "3"   | False | 4
    """)
    dtypes = t.schema.dtypes()
    assert [repr(dtypes[c]) for c in "ifsbn"] == ["int", "float", "str", "bool", "Optional[int]"]
    assert snapshot(t) == [(1, 1.5, "hello", True, None), (2, 2.0, "3", False, 4)]


def test_markdown_with_schema() -> None:
    class S(pw.Schema):
        name: str
        code: str

    t = pw.debug.table_from_markdown(
        """
        name | code
        a    | 007
    """,
        schema=S,
    )
    assert snapshot(t) == [("a", "007")]
    with pytest.raises(ValueError, match="schema"):
        pw.debug.table_from_markdown("name\na", schema=S)


def test_markdown_schema_primary_key_gives_ids() -> None:
    class S(pw.Schema):
        k: int = pw.column_definition(primary_key=True)
        v: str

    t = pw.debug.table_from_markdown(
        """
        k | v    | __time__ | __diff__
        1 | a    | 2        | 1
        1 | a    | 4        | -1
        1 | b    | 4        | 1
    """,
        schema=S,
    )
    assert stream(t) == [(2, 1, "a", 1), (4, 1, "a", -1), (4, 1, "b", 1)]


def test_markdown_bad_rows() -> None:
    with pytest.raises(ValueError, match="line 3 has 1 cells"):
        pw.debug.table_from_markdown("""
            a | b
            1 | 2
            3
        """)
    with pytest.raises(ValueError, match="duplicate column"):
        pw.debug.table_from_markdown("a | a\n1 | 2")
    with pytest.raises(ValueError, match="__diff__"):
        pw.debug.table_from_markdown("a | __diff__\n1 | 2")


def test_markdown_odd_times_are_doubled_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="even"):
        t = pw.debug.table_from_markdown("a | __time__\n1 | 1\n2 | 3")
    assert [row[0] for row in stream(t)] == [2, 6]


def test_markdown_spaces_in_strings() -> None:
    t = pw.debug.table_from_markdown(
        """
        a           | b
        hello world | 1
    """,
        split_on_whitespace=False,
    )
    assert snapshot(t) == [("hello world", 1)]


def test_github_style_markdown() -> None:
    t = pw.debug.table_from_markdown("""
        | a | b |
        |---|---|
        | 1 | x |
    """)
    assert snapshot(t) == [(1, "x")]


def test_pandas_round_trip() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [1.5, None, 3.0]})
    t = pw.debug.table_from_pandas(df)
    assert repr(t.schema.dtypes()["b"]) == "Optional[str]"
    assert repr(t.schema.dtypes()["c"]) == "Optional[float]"
    out = pw.debug.table_to_pandas(t, include_id=False).sort_values("a")
    assert out["a"].tolist() == [1, 2, 3]
    assert out["b"].tolist()[:2] == ["x", "y"]
    with_ids = pw.debug.table_to_pandas(t)
    assert all(isinstance(i, pw.Pointer) for i in with_ids.index)


def test_pandas_index_gives_ids() -> None:
    df = pd.DataFrame({"a": [10, 20]}, index=[5, 7])
    t = pw.debug.table_from_pandas(df)
    md = pw.debug.table_from_markdown("""
          | a
        5 | 10
        7 | 20
    """)
    assert pw.debug.table_to_dicts(t)[1] == pw.debug.table_to_dicts(md)[1]


def test_pandas_update_stream_columns() -> None:
    df = pd.DataFrame({"a": [1, 1], "__time__": [2, 4], "__diff__": [1, -1]}, index=[0, 0])
    t = pw.debug.table_from_pandas(df)
    assert t.column_names() == ["a"]
    assert stream(t) == [(2, 1, 1), (4, 1, -1)]


def test_polars_pair() -> None:
    frame = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    t = pw.debug.table_from_polars(frame)
    out = pw.debug.table_to_polars(t.select(pw.this.b, c=pw.this.a * 2), include_id=False)
    assert out.sort("c").to_dict(as_series=False) == {"b": ["x", "y"], "c": [2, 4]}
    with_id = pw.debug.table_to_polars(t)
    assert with_id.columns[0] == "id" and with_id.schema["id"] == pl.UInt128


def test_table_from_rows_stream() -> None:
    schema = pw.schema_from_types(a=int)
    t = pw.debug.table_from_rows(schema, [(1, 2, 1), (1, 4, -1)], is_stream=True)
    assert stream(t) == [(2, 1, 1), (4, 1, -1)]
    with pytest.raises(ValueError, match="row 0 has 1 values"):
        pw.debug.table_from_rows(schema, [(1,)], is_stream=True)


def test_compute_and_print_format(capsys: pytest.CaptureFixture[str]) -> None:
    t = pw.debug.table_from_markdown(
        """
        owner | n
        Bob   | 1
        Alice | 22
        Carol |
    """,
        split_on_whitespace=False,
    )
    pw.debug.compute_and_print(t, include_id=False)
    assert capsys.readouterr().out == "owner | n\nAlice | 22\nBob   | 1\nCarol |\n"


def test_compute_and_print_with_ids(capsys: pytest.CaptureFixture[str]) -> None:
    t = pw.debug.table_from_markdown("a\n1")
    pw.debug.compute_and_print(t)
    header, row = capsys.readouterr().out.splitlines()
    assert header == "            | a"
    assert row.startswith("^") and row.endswith("... | 1") and len(row.split(" | ")[0]) == 11


def test_compute_and_print_update_stream(capsys: pytest.CaptureFixture[str]) -> None:
    t = pw.debug.table_from_markdown("""
          | a | __time__ | __diff__
        1 | 5 | 2        | 1
        1 | 5 | 4        | -1
        1 | 6 | 4        | 1
    """)
    pw.debug.compute_and_print_update_stream(t, include_id=False)
    assert capsys.readouterr().out.splitlines() == [
        "a | __time__ | __diff__",
        "5 | 2        | 1",
        "5 | 4        | -1",
        "6 | 4        | 1",
    ]


def test_to_pandas_strings_and_streams_after_fast_paths() -> None:
    stream = pw.debug.table_from_markdown("""
          | s    | n | __time__ | __diff__
        1 | a    | 1 | 2        | 1
        2 | None | 2 | 2        | 1
        1 | a    | 1 | 4        | -1
        1 | b    | 3 | 4        | 1
    """)
    out = pw.debug.table_to_pandas(stream).sort_values("n")
    assert out["n"].tolist() == [2, 3]
    assert pd.isna(out["s"].iloc[0]) and out["s"].iloc[1] == "b"
    assert all(isinstance(i, pw.Pointer) for i in out.index)
    stepped = pd.DataFrame({"v": [1, 2, 3]}, index=pd.RangeIndex(10, 4, -2))
    keys = pw.debug.table_to_dicts(pw.debug.table_from_pandas(stepped))[0]
    assert sorted(keys) == sorted(
        pw.debug.table_to_dicts(
            pw.debug.table_from_pandas(pd.DataFrame({"v": [1, 2, 3]}, index=[10, 8, 6]))
        )[0]
    )


def test_parquet_round_trip(tmp_path) -> None:  # noqa: ANN001
    t = pw.debug.table_from_markdown("a | b\n1 | x\n2 | y")
    pw.debug.table_to_parquet(t.select(pw.this.a, pw.this.b), tmp_path / "t.parquet")
    back = pw.debug.table_from_parquet(tmp_path / "t.parquet")
    assert snapshot(back) == [(1, "x"), (2, "y")]
    with pytest.raises(TypeError, match="Python objects"):
        pw.debug.table_to_parquet(t.select(o=pw.apply(lambda a: (a,), t.a)), tmp_path / "o.pq")


def test_stream_generator() -> None:
    schema = pw.schema_from_types(k=str, v=int)
    t = pw.debug.StreamGenerator().table_from_list_of_batches(
        [[{"k": "a", "v": 1}], [{"k": "b", "v": 2}, {"k": "c", "v": 3}]], schema
    )
    assert [(time, diff) for time, *_, diff in stream(t)] == [(2, 1), (4, 1), (4, 1)]
    with pytest.raises(ValueError, match="without column 'v'"):
        pw.debug.StreamGenerator().table_from_list_of_batches([[{"k": "a"}]], schema)


def test_stream_generator_markdown_and_pandas_time_columns() -> None:
    generator = pw.debug.StreamGenerator()
    assert generator.persistence_config() is None  # pw.run(persistence_config=None) is fine
    even = generator.table_from_markdown("""
       | v | _time | _diff
    1  | 1 | 2     | 1
    2  | 2 | 2     | 1
    1  | 1 | 6     | -1
    """)
    assert stream(even) == [(2, 1, 1), (2, 2, 1), (6, 1, -1)]
    # Labels give the ids, as in pw.debug.table_from_markdown.
    timed = generator.table_from_markdown("   | v | _time\n 1 | 1 | 2")
    plain = pw.debug.table_from_markdown("   | v\n 1 | 1")
    assert list(pw.debug.table_to_dicts(timed)[0]) == list(pw.debug.table_to_dicts(plain)[0])
    with pytest.warns(UserWarning, match="doubled"):  # an odd time doubles every time
        odd = generator.table_from_markdown("""
        v | _time
        7 | 1
        8 | 2
        """)
    assert stream(odd) == [(2, 7, 1), (4, 8, 1)]
    untimed = generator.table_from_markdown("v\n9")  # no _time: the first time, 2
    assert stream(untimed) == [(2, 9, 1)]
    frame = pd.DataFrame({"x": [1, 2, 3], "_time": [2, 2, 6], "_worker": [0, 1, 0]})
    from_pandas = generator.table_from_pandas(frame)
    assert from_pandas.column_names() == ["x"]
    assert stream(from_pandas) == [(2, 1, 1), (2, 2, 1), (6, 3, 1)]


def test_markdown_column_of_mixed_plain_values_is_str() -> None:
    table = pw.debug.table_from_markdown("""
        a | c
        3 | a
        4 | 2
        5 | 1.5
    """)
    assert table.schema.typehints()["c"] is str
    assert sorted(row[1] for row in snapshot(table)) == ["1.5", "2", "a"]


def test_table_from_rows_leaves_out_extra_trailing_values_as_pathway() -> None:
    schema = pw.schema_from_types(a=int, b=int)
    table = pw.debug.table_from_rows(schema, [(1, 2, "x"), (4, 5, "y")])
    assert sorted(pw.debug.table_to_dicts(table)[1]["b"].values()) == [2, 5]
    with pytest.raises(ValueError, match="different numbers of values"):
        pw.debug.table_from_rows(schema, [(1, 2, 3), (4, 5)])
    with pytest.raises(ValueError, match="row 0 has 1 values"):
        pw.debug.table_from_rows(schema, [(1,)])
    with pytest.raises(ValueError, match="time, diff"):
        pw.debug.table_from_rows(schema, [(1, 2, 3, 4, 5)], is_stream=True)


def test_pathway_test_helper_keywords_are_accepted() -> None:
    """Pathway's own test helpers pass ``_stacklevel``/``_new_universe``; they change nothing."""
    plain = pw.debug.table_from_markdown("a\n1\n2")
    marked = pw.debug.table_from_markdown("a\n1\n2", _stacklevel=2, _new_universe=True)
    assert pw.debug.table_to_dicts(marked) == pw.debug.table_to_dicts(plain)
    frame = pw.debug.table_to_pandas(plain)
    again = pw.debug.table_from_pandas(frame, _stacklevel=2, _new_universe=True)
    assert sorted(pw.debug.table_to_dicts(again)[1]["a"].values()) == [1, 2]


def test_id_from_and_schema_cannot_be_combined() -> None:
    schema = pw.schema_from_types(foo=int, bar=int)
    with pytest.raises(ValueError, match="table_from_markdown: give id_from or schema"):
        pw.debug.table_from_markdown("foo | bar\n1 | 2", id_from=["foo"], schema=schema)
    frame = pd.DataFrame({"foo": [1], "bar": [2]})
    with pytest.raises(ValueError, match="table_from_pandas: give id_from or schema"):
        pw.debug.table_from_pandas(frame, id_from=["foo"], schema=schema)
    # each alone is fine
    assert pw.debug.table_to_dicts(pw.debug.table_from_pandas(frame, schema=schema))[1]["bar"]
    assert pw.debug.table_to_dicts(pw.debug.table_from_pandas(frame, id_from=["foo"]))[1]["bar"]
