"""Row ids: the documented definitions, fixed values, and agreement between id sources."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw
import deltaflow._ids as ids_module
from deltaflow import _types as t
from deltaflow._ids import (
    ID_DTYPE,
    K1,
    K2,
    MISSING,
    combine_id_values,
    combine_ids,
    combine_ids_expr,
    fmix_int,
    hash_columns,
    id_expr,
    id_of_int_key_code,
    ids_of_int_key_codes,
    int_key_code,
    int_key_codes,
    pointer_from_values,
    sequence_ids,
    text_digest,
    with_derived_ids,
)

M = (1 << 128) - 1


def reference_fmix(x: int) -> int:
    """The module docstring's definition, step by step with Python integers."""
    x ^= x >> 64
    x = (x * K1) & M
    x ^= x >> 64
    x = (x * K2) & M
    return x ^ (x >> 64)


def test_fmix_is_the_documented_function_and_a_bijection_on_samples() -> None:
    samples = [0, 1, 2, M, 1 << 64, (1 << 64) - 1, 123456789 << 70]
    assert [fmix_int(v) for v in samples] == [reference_fmix(v) for v in samples]
    assert len({fmix_int(v) for v in range(10_000)}) == 10_000
    assert K1 % 2 == 1 and K2 % 2 == 1  # odd multipliers: multiplication is invertible


def test_ids_are_fixed_values() -> None:
    # These numbers are the contract with stored data and other processes: they must never
    # change. If this test fails, ids changed between versions.
    assert (
        hash_columns(pl.DataFrame({"a": ["a"]}), [("a", t.STR)])[0]
        == 48679811028374996927659455095862748903
    )
    assert (
        hash_columns(pl.DataFrame({"a": [5]}), [("a", t.INT)])[0]
        == 160126607773527643713616090699187863138
    )
    assert sequence_ids("s", 0, 2).to_list() == [
        143805280132950862413922624627751284819,
        216057891054669746320513340319845233046,
    ]
    frame = pl.DataFrame({"a": pl.Series([1], dtype=ID_DTYPE), "b": pl.Series([2], dtype=ID_DTYPE)})
    assert (
        frame.select(combine_ids_expr(pl.col("a"), pl.col("b"), salt="j")).item()
        == 237509026510722854135849740621304162862
    )


def test_vectorised_ids_follow_their_definitions() -> None:
    values = [0, 1, -1, 2**63 - 1, -(2**63), None]
    ids = hash_columns(
        pl.DataFrame({"a": values}, schema={"a": pl.Int64}), [("a", t.Optional(t.INT))]
    ).to_list()
    base = text_digest("k|int")
    expected = [
        text_digest("k|1:n") if v is None else fmix_int(base + (v & (2**64 - 1))) for v in values
    ]
    assert ids == expected
    # The null key's id is what the text encoding gives a None: "k|1:n".
    assert hash_columns(
        pl.DataFrame({"a": [None]}, schema={"a": pl.String}), [("a", t.Optional(t.STR))]
    )[0] == text_digest("k|1:n")
    pointers = pl.Series("p", [7, 2**127], dtype=ID_DTYPE)
    assert hash_columns(pointers.to_frame(), [("p", t.POINTER)]).to_list() == [
        fmix_int(text_digest("k|ptr") + v) for v in (7, 2**127)
    ]
    assert sequence_ids("src", 5, 3).to_list() == [
        fmix_int(text_digest("qsrc") + p) for p in (5, 6, 7)
    ]
    assert sequence_ids("src", 0, 0).len() == 0
    left = pl.Series([1, None, 3], dtype=ID_DTYPE)
    right = pl.Series([4, 5, None], dtype=pl.Int64)

    def combined(values: tuple, salt: str) -> int:
        h = text_digest("c" + salt)
        for v in values:
            h = fmix_int(h ^ (MISSING if v is None else v))
        return h

    assert combine_ids([left, right], salt="x").to_list() == [
        combined(p, "x") for p in zip(left.to_list(), right.to_list(), strict=True)
    ]


def test_text_keys_separate_values_by_construction() -> None:
    frame = pl.DataFrame({"a": ["a", "ab", None], "b": ["b", "", "n"]})
    ids = hash_columns(frame, [("a", t.Optional(t.STR)), ("b", t.STR)])
    assert ids.n_unique() == 3
    assert hash_columns(pl.DataFrame({"x": ["ab"]}), [("x", t.STR)])[0] not in ids.to_list()
    expected = text_digest("k|2:sa|2:sb")
    assert ids[0] == expected
    # The expression form gives the same ids as the frame form.
    exprs = [(pl.col("a"), t.Optional(t.STR)), (pl.col("b"), t.STR)]
    assert frame.select(id_expr(exprs)).to_series().to_list() == ids.to_list()


def test_derived_ids_agree_in_every_form() -> None:
    left = pl.Series("l", [1, None, 2**127 + 5, 0], dtype=ID_DTYPE)
    right = pl.Series("r", [None, 7, 3, 0], dtype=ID_DTYPE)
    expected = combine_ids([left, right], salt="s").to_list()
    frame = pl.DataFrame([left, right]).lazy()
    assert (
        with_derived_ids(frame, ["l", "r"], salt="s", name="x").collect()["x"].to_list() == expected
    )
    assert [
        combine_id_values(a, b, salt="s")
        for a, b in zip(left.to_list(), right.to_list(), strict=True)
    ] == expected


def test_join_row_ids_derive_from_the_pair_of_ids() -> None:
    def derived(left: pw.Pointer | None, right: pw.Pointer | None) -> pw.Pointer:
        h = text_digest("cjoin")
        for v in (left, right):
            h = fmix_int(h ^ (MISSING if v is None else int(v)))
        return pw.Pointer(h)

    left = pw.debug.table_from_markdown("""
          | k | a
        1 | 1 | x
        2 | 2 | y
    """)
    right = pw.debug.table_from_markdown("""
          | k | b
        7 | 1 | u
    """)
    joined = left.join_left(right, left.k == right.k).select(left.a, right.b)
    ids, columns = pw.debug.table_to_dicts(joined)
    l1, l2, r7 = (pointer_from_values(v) for v in (1, 2, 7))
    assert sorted(ids) == sorted([derived(l1, r7), derived(l2, None)])
    assert columns["b"][derived(l1, r7)] == "u" and columns["b"][derived(l2, None)] is None


def test_ids_are_unique_over_many_positions_and_pairs() -> None:
    ids = sequence_ids("file.csv", 0, 200_000)
    assert ids.n_unique() == 200_000
    other = sequence_ids("other.csv", 0, 200_000)
    assert pl.concat([ids, other]).n_unique() == 400_000
    pairs = pl.DataFrame(
        {
            "l": ids.head(1000).to_list() * 1000,
            "r": [v for v in other.head(1000).to_list() for _ in range(1000)],
        },
        schema={"l": ID_DTYPE, "r": ID_DTYPE},
    )
    assert (
        pairs.select(combine_ids_expr(pl.col("l"), pl.col("r"))).to_series().n_unique() == 1_000_000
    )


def test_int_key_expression_broadcasts_literals() -> None:
    frame = pl.DataFrame({"a": [1, 2, 3]})
    out = frame.with_columns(id_expr([(pl.lit(5), t.INT)]).alias("p"))
    assert out.height == 3 and out["p"].n_unique() == 1
    assert out["p"][0] == int(pointer_from_values(5))
    columns = frame.select(id_expr([(pl.col("a"), t.INT)])).to_series().to_list()
    assert columns == [int(pointer_from_values(v)) for v in (1, 2, 3)]


def test_ids_agree_across_markdown_pandas_polars_and_pointer_from() -> None:
    marked = pw.debug.table_from_markdown("""
          | v
        3 | a
        4 | b
    """)
    frame = pd.DataFrame({"v": ["a", "b"]}, index=[3, 4])
    ranged = pd.DataFrame({"v": ["a", "b"]}, index=pd.RangeIndex(3, 5))
    from_pandas = pw.debug.table_from_pandas(frame)
    from_range = pw.debug.table_from_pandas(ranged)
    keys, _ = pw.debug.table_to_dicts(marked)
    assert sorted(keys) == sorted(pw.debug.table_to_dicts(from_pandas)[0])
    assert sorted(keys) == sorted(pw.debug.table_to_dicts(from_range)[0])
    assert sorted(keys) == sorted([pointer_from_values(3), pointer_from_values(4)])
    looked = marked.select(p=marked.pointer_from(3))
    assert set(pw.debug.table_to_pandas(looked)["p"]) == {pointer_from_values(3)}
    unlabelled = pw.debug.table_from_polars(pl.DataFrame({"v": ["a", "b"]}))
    assert sorted(pw.debug.table_to_dicts(unlabelled)[0]) == sorted(
        [pointer_from_values(0), pointer_from_values(1)]
    )
    keyed = pw.debug.table_from_markdown(
        """
        k | v
        3 | a
    """,
        id_from=["k"],
    )
    assert pw.debug.table_to_dicts(keyed)[0] == [pointer_from_values(3)]


def test_ids_are_equal_in_another_process() -> None:
    code = (
        "import polars as pl; from deltaflow import _types as t; "
        "from deltaflow._ids import hash_columns, sequence_ids; "
        "print(hash_columns(pl.DataFrame({'a': ['x', 'y']}), [('a', t.STR)]).to_list(), "
        "hash_columns(pl.DataFrame({'a': [1, 2]}), [('a', t.INT)]).to_list(), "
        "sequence_ids('s', 3, 2).to_list())"
    )
    here = str(
        [
            hash_columns(pl.DataFrame({"a": ["x", "y"]}), [("a", t.STR)]).to_list(),
            hash_columns(pl.DataFrame({"a": [1, 2]}), [("a", t.INT)]).to_list(),
            sequence_ids("s", 3, 2).to_list(),
        ]
    )
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert there == here[1:-1].replace("], [", "] [")


def test_derived_ids_reject_non_id_columns() -> None:
    with pytest.raises(TypeError, match="ids or integers"):
        combine_ids([pl.Series([1.5])])
    with pytest.raises(TypeError, match="ids or integers"):
        combine_ids([pl.Series(["12"]), pl.Series(["7"])])


# --- keys of small frames are encoded in Python: the same ids as the query ----------------

_KEY_VALUES = {
    "int": (t.INT, st.integers(-(2**63), 2**63 - 1)),
    "str": (t.STR, st.text(max_size=6)),
    "bool": (t.BOOL, st.booleans()),
    "pointer": (t.POINTER, st.integers(0, 2**128 - 1)),
}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), kinds=st.lists(st.sampled_from(sorted(_KEY_VALUES)), min_size=1, max_size=3))
def test_small_keys_hashed_in_python_match_the_query(data: st.DataObject, kinds: list[str]) -> None:
    rows = data.draw(st.integers(1, 6))
    series = []
    columns = []
    for i, kind in enumerate(kinds):
        dtype, values = _KEY_VALUES[kind]
        optional = data.draw(st.booleans())
        drawn = data.draw(
            st.lists(st.none() | values if optional else values, min_size=rows, max_size=rows)
        )
        typed = t.Optional(dtype) if optional else dtype
        series.append(t.series_from_values(f"c{i}", drawn, typed))
        columns.append((f"c{i}", typed))
    frame = pl.DataFrame(series)
    in_python = hash_columns(frame, columns)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ids_module, "PYTHON_KEY_ROWS", 0)
        by_query = hash_columns(frame, columns)
    assert in_python.to_list() == by_query.to_list()


# Texts around the length where a part's head stops coming from a table (256 bytes), in
# ASCII and in multi-byte characters.
_EDGE_TEXTS = st.sampled_from([254, 255, 256, 257, 300]).flatmap(
    lambda size: st.sampled_from(["a" * size, "é" * (size // 2) + "x" * (size % 2)])
)


@settings(max_examples=60, deadline=None)
@given(
    first=st.lists(st.none() | st.text(max_size=4) | _EDGE_TEXTS, min_size=1, max_size=8),
    second=st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), min_size=8, max_size=8),
)
def test_text_keys_of_any_length_hash_their_documented_text(
    first: list[str | None], second: list[int | None]
) -> None:
    # The query builds each part's head from a table for short texts and by casting lengths
    # otherwise; either way the ids are the digests of the documented key text.
    frame = pl.DataFrame(
        {
            "s": pl.Series(first, dtype=pl.String),
            "i": pl.Series(second[: len(first)], dtype=pl.Int64),
        }
    )
    keys = [("s", t.Optional(t.STR)), ("i", t.Optional(t.INT))]
    texts = ids_module.key_texts([(first, t.STR), (second[: len(first)], t.INT)])
    assert texts is not None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ids_module, "PYTHON_KEY_ROWS", 0)
        assert hash_columns(frame, keys).to_list() == [text_digest(x) for x in texts]
        assert hash_columns(frame, keys[:1]).to_list() == [
            text_digest("k|1:n") if v is None else text_digest("k|" + ids_module.part_text("s", v))
            for v in first
        ]
    exprs = [(pl.col(name), dtype) for name, dtype in keys]
    assert frame.select(id_expr(exprs)).to_series().to_list() == [text_digest(x) for x in texts]


def test_text_held_in_a_column_of_another_type_hashes_its_own_text() -> None:
    # A str column's values are its key texts; an Any column's text is a repr, longer than
    # the value (quotes, escapes): its length is not the column's, and must not be taken so.
    values = ["\\" * 200, "a", None]
    frame = pl.DataFrame({"x": pl.Series(values, dtype=pl.String)})
    keys = [("x", t.Optional(t.ANY)), ("x", t.Optional(t.STR))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ids_module, "PYTHON_KEY_ROWS", 0)
        fast = hash_columns(frame, keys).to_list()
        # The reference: every head built by casting lengths to text.
        patch.setattr(ids_module, "_short_texts", lambda column, dtype: False)
        assert hash_columns(frame, keys).to_list() == fast


def test_key_expressions_of_literals_broadcast() -> None:
    # pointer_from("a", 5) in a select: the key's parts are scalars (as constants reach
    # Polars: one-value Series, first()), the id one per row.
    frame = pl.DataFrame({"x": [1, 2, 3]})
    a, five = (pl.lit(pl.Series([v])).first() for v in ("a", 5))
    keys = [(a, t.STR), (five, t.INT), (pl.col("x"), t.INT)]
    ids = frame.select(id_expr(keys).alias("_id")).to_series().to_list()
    texts = ids_module.key_texts([(["a"] * 3, t.STR), ([5] * 3, t.INT), ([1, 2, 3], t.INT)])
    assert texts is not None and ids == [text_digest(x) for x in texts]
    one = frame.with_columns(id_expr([(a, t.STR)]).alias("_id"))["_id"]
    assert one.to_list() == [text_digest("k|2:sa")] * 3


def test_an_empty_key_hashes_as_the_query_does() -> None:
    frame = pl.DataFrame({"x": [1, 2, 3]})
    in_python = hash_columns(frame, []).to_list()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ids_module, "PYTHON_KEY_ROWS", 0)
        assert hash_columns(frame, []).to_list() == in_python == [text_digest("k")]


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=12),
    st.integers(0, 2**40),
    st.integers(1, ids_module.PYTHON_KEY_ROWS),
    st.integers(0, 100),
)
def test_few_sequence_ids_computed_in_python_equal_the_query(
    seed: str, start: int, count: int, offset: int
) -> None:
    # More than PYTHON_KEY_ROWS ids take the Polars query; a few are computed in Python.
    many = sequence_ids(seed, start, ids_module.PYTHON_KEY_ROWS + 101).to_list()
    few = sequence_ids(seed, start + offset, count)
    assert few.dtype == ID_DTYPE
    assert few.to_list() == many[offset : offset + count]


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(t.INT64_MIN, t.INT64_MAX), min_size=1, max_size=80),
    others=st.lists(st.integers(0, (1 << 128) - 1), max_size=80),
)
def test_int_key_codes_are_the_keys_and_give_the_ids_back(
    keys: list[int], others: list[int]
) -> None:
    # The code of an int key's id is the key (as unsigned 64 bits); codes of other ids are a
    # bijection too: every id comes back from its code, in Python and in Polars alike.
    key_ids = hash_columns(pl.DataFrame({"k": keys}), [("k", t.INT)])
    codes = int_key_codes(key_ids)
    assert codes.to_list() == [k & ((1 << 64) - 1) for k in keys]
    ids = pl.Series("_id", [*key_ids.to_list(), *others], dtype=ID_DTYPE)
    codes = int_key_codes(ids)
    assert codes.to_list() == [int_key_code(i) for i in ids.to_list()]
    assert ids_of_int_key_codes(codes).to_list() == ids.to_list()
    assert [id_of_int_key_code(c) for c in codes.to_list()] == ids.to_list()
