"""Which column types fit which: ``assert_table_has_schema``, ``Schema.assert_matches_schema``
and the types that annotations and ``None`` literals give, as in Pathway 0.33."""

# Optional[...] is spelled as Pathway programs spell it: the annotations are the test data.
# ruff: noqa: UP045

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pytest

import deltaflow as pw
from deltaflow import _types as t


def _fits(actual: Any, expected: Any, *, allow_subtype: bool = True) -> bool:
    """Whether a column annotated ``actual`` passes as one annotated ``expected``."""
    have = pw.schema_from_types(x=actual)
    want = pw.schema_from_types(x=expected)
    try:
        have.assert_matches_schema(want, allow_superset=False, allow_subtype=allow_subtype)
    except AssertionError:
        return False
    return True


P = pw.Pointer


@pytest.mark.parametrize(
    ("actual", "expected", "fits"),
    [
        # a pointer that says nothing of its key fits every pointer, both ways
        (P, P[int], True),
        (P[int], P, True),
        (P[int], P[int], True),
        # pointers with known keys fit only pointers with the same key types
        (P[int], P[str], False),
        (P[int], P[int, int], False),
        (P[int], P[float], False),  # keys never widen from int to float
        (Optional[P[int]], Optional[P], True),
        (Optional[P], P[int], False),
        (P[int], Optional[P[str]], False),
        # numbers widen; bool is not an int
        (int, float, True),
        (float, int, False),
        (bool, int, False),
        (Optional[int], int, False),
        (int, Optional[float], True),
        # tuples and lists, item by item
        (tuple[int, int], tuple[float, float], True),
        (tuple[int, int], list[int], True),
        (list[int], tuple[int, int], True),
        (list[float], tuple[int, int], False),
        (tuple[int, int], tuple[int, int, int], False),
        (tuple[P, P], list[P[int]], True),
        (tuple[int, int], tuple[Optional[int], int], True),
        (tuple[Optional[int], int], tuple[int, int], False),
        # a sequence of unknown shape fits every sequence
        (tuple, tuple[int, str], True),
        (tuple[int, str], list, True),
        (np.ndarray, np.ndarray, True),
        (np.ndarray, list[int], False),
        # a None-only column fits only optional columns
        (type(None), Optional[int], True),
        (type(None), int, False),
        (type(None), pw.Json, False),
        (Optional[Any], Any, True),
        (Any, int, False),
    ],
)
def test_subtype_rules(actual: Any, expected: Any, fits: bool) -> None:
    assert _fits(actual, expected) is fits


@pytest.mark.parametrize(
    ("actual", "expected", "fits"),
    [
        (P[int], P[int], True),
        (P[int], P[str], False),  # the key types count, not only "a pointer"
        (P, P[int], False),
        (int, float, False),
        (Optional[Any], Any, True),  # the same type, spelled twice
    ],
)
def test_exact_types_without_subtypes(actual: Any, expected: Any, fits: bool) -> None:
    assert _fits(actual, expected, allow_subtype=False) is fits


def test_table_ids_and_key_pointers_fit_each_other() -> None:
    t1 = pw.debug.table_from_markdown(
        """
        key
        3
        4
        """
    )
    table = t1.select(own=t1.id, keyed=t1.pointer_from(t1.key), pair=t1.pointer_from(t1.key, 1))
    assert table.schema.typehints() == {"own": P, "keyed": P[int], "pair": P[int, int]}
    pw.assert_table_has_schema(table, pw.schema_from_types(own=P[int], keyed=P, pair=P))
    with pytest.raises(AssertionError):
        pw.assert_table_has_schema(table, pw.schema_from_types(keyed=P[str]))
    with pytest.raises(AssertionError):
        pw.assert_table_has_schema(table, pw.schema_from_types(pair=P[int]))
    with pytest.raises(AssertionError):
        pw.assert_table_has_schema(table, pw.schema_from_types(keyed=P), allow_subtype=False)


def test_annotation_types() -> None:
    schema = pw.schema_from_types(
        seq=tuple, items=list, nothing=type(None), anything=Optional[Any], maybe=Optional[tuple]
    )
    assert schema.typehints() == {
        "seq": list[Any],
        "items": list[Any],
        "nothing": None,
        "anything": Any,
        "maybe": Optional[list[Any]],
    }


def test_none_literal_is_a_none_column_that_widens() -> None:
    table = pw.debug.table_from_markdown(
        """
        a
        1
        2
        """
    )
    result = table.select(
        nothing=None,
        either=pw.if_else(table.a > 1, table.a, None),
        pair=pw.make_tuple(None, table.a),
    )
    assert result.schema.typehints() == {
        "nothing": None,
        "either": Optional[int],
        "pair": tuple[None, int],
    }
    rows = sorted(pw.debug.table_to_dicts(result)[1]["either"].values(), key=repr)
    assert rows == [2, None]
    assert t.is_subtype(t.NONE, t.Optional(t.INT))
    assert not t.is_subtype(t.NONE, t.INT)
