"""Wrong arguments of the join methods fail when the join is defined, with Pathway's exception
type (``ValueError``) that is also a ``TypeError`` (an unknown keyword) in deltaflow."""

from __future__ import annotations

from typing import Any

import pytest

import deltaflow as pw


@pytest.fixture
def tables() -> tuple[pw.Table, pw.Table]:
    left = pw.debug.table_from_markdown(
        """
        a
        1
        2
        """
    )
    right = pw.debug.table_from_markdown(
        """
        b
        2
        3
        """
    )
    return left, right


@pytest.mark.parametrize("method", ["join_inner", "join_left", "join_right", "join_outer"])
def test_mode_specific_joins_refuse_how(tables: tuple[pw.Table, pw.Table], method: str) -> None:
    left, right = tables
    join = getattr(left, method)
    with pytest.raises(ValueError, match="how") as raised:
        join(right, left.a == right.b, how=pw.JoinMode.LEFT)
    assert isinstance(raised.value, TypeError)
    with pytest.raises(ValueError, match="colour"):
        join(right, left.a == right.b, colour="red")


@pytest.mark.parametrize("how", ["left", 1, None])
def test_join_how_must_be_a_join_mode(tables: tuple[pw.Table, pw.Table], how: Any) -> None:
    left, right = tables
    with pytest.raises(ValueError, match="JoinMode"):
        left.join(right, left.a == right.b, how=how)


def test_join_with_a_join_mode_still_works(tables: tuple[pw.Table, pw.Table]) -> None:
    left, right = tables
    result = left.join(right, left.a == right.b, how=pw.JoinMode.LEFT).select(left.a, b=right.b)
    rows = sorted(pw.debug.table_to_dicts(result)[1]["b"].values(), key=repr)
    assert rows == [2, None]
