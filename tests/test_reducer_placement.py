"""A reducer outside ``reduce()`` is refused when the pipeline is defined, with a ValueError
(the type Pathway raises) that is also deltaflow's ExpressionError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import deltaflow as pw
from deltaflow.expressions.base import ExpressionError


def _table() -> pw.Table:
    return pw.debug.table_from_markdown(
        """
        a | b
        1 | 2
        3 | 4
        """
    )


@pytest.mark.parametrize(
    "misuse",
    [
        lambda t: t.select(s=pw.reducers.sum(pw.this.a)),
        lambda t: t.with_columns(m=pw.reducers.max(pw.this.a) + 1),
        lambda t: t.filter(pw.reducers.count() > 0),
        lambda t: t.groupby(pw.this.a).reduce(s=pw.reducers.sum(pw.reducers.sum(pw.this.b))),
    ],
    ids=["select", "with_columns", "filter", "nested"],
)
def test_reducer_outside_reduce_is_a_value_error(misuse: Callable[[pw.Table], Any]) -> None:
    t = _table()
    with pytest.raises(ValueError, match=r"can only be used in reduce\(\)") as info:
        misuse(t)
    assert isinstance(info.value, ExpressionError)
    assert "table_from_markdown" in str(info.value)  # names the table


def test_reducer_inside_reduce_still_works() -> None:
    t = _table()
    result = t.reduce(s=pw.reducers.sum(pw.this.a), m=pw.reducers.max(pw.this.b) + 1)
    _, columns = pw.debug.table_to_dicts(result)
    assert list(columns["s"].values()) == [4]
    assert list(columns["m"].values()) == [5]
