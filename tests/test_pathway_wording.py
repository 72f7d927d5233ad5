"""Failures worded so that programs written for Pathway, which may match Pathway's messages,
keep working: deltaflow's own message comes first, Pathway's sentence is part of it."""

from __future__ import annotations

import re

import pytest

import deltaflow as pw


class _Boxes(pw.Schema):
    size: int
    label: str
    note: pw.Json


def _boxes() -> pw.Table:
    return pw.debug.table_from_rows(
        _Boxes, [(3, "small", pw.Json([1, 2])), (9, "large", pw.Json(None))]
    ).with_columns(
        pair=pw.make_tuple(pw.this.size, pw.this.size),
        mixed=pw.make_tuple(pw.this.size, pw.this.label),
        maybe=pw.if_else(pw.this.size > 5, pw.this.size, None),
    )


@pytest.mark.parametrize(
    ("build", "name", "types"),
    [
        (lambda t: t.size + t.label, "add", "<class 'int'>, <class 'str'>"),
        (lambda t: t.label // t.size, "floordiv", "<class 'str'>, <class 'int'>"),
        (lambda t: t.label & t.label, "and_", "<class 'str'>, <class 'str'>"),
        (lambda t: t.size >= t.label, "ge", "<class 'int'>, <class 'str'>"),
        (lambda t: t.pair != t.mixed, "ne", "tuple[int, int], tuple[int, str]"),
        (lambda t: t.maybe - t.label, "sub", "int | None, <class 'str'>"),
        (
            lambda t: pw.make_tuple(t.maybe) < pw.make_tuple(t.maybe),
            "lt",
            "tuple[int | None], tuple[int | None]",
        ),
    ],
)
def test_unsupported_operator_names_python_operator_and_type_hints(
    build: object, name: str, types: str
) -> None:
    t = _boxes()
    sentence = f"Pathway does not support using binary operator {name} on columns of types {types}."
    with pytest.raises(TypeError, match=re.escape(sentence)) as failure:
        t.select(z=build(t))  # type: ignore[operator]
    # our own account of the failure stays first: the table and the expression
    assert str(failure.value).startswith("select on table with_columns")


def test_unwrap_of_none_says_it_cannot_unwrap() -> None:
    t = _boxes()
    t.select(v=pw.unwrap(t.maybe))
    with pytest.raises(ValueError, match="pw.unwrap: cannot unwrap a None value"):
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)


def test_json_conversion_of_null_with_unwrap_says_it_cannot_unwrap() -> None:
    t = _boxes().filter(pw.this.size > 5)  # the row whose note is a Json null
    t.select(v=t.note.as_int(unwrap=True))
    with pytest.raises(ValueError, match=r"as_int\(unwrap=True\): cannot unwrap a None value"):
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)


def test_flatten_of_a_json_that_is_not_a_list() -> None:
    t = _boxes()
    t.flatten(t.note)
    with pytest.raises(ValueError, match="Pathway can't flatten this Json: null"):
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)
