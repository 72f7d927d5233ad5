"""Wrong arguments of the join methods fail when the join is defined, with Pathway's exception
type (``ValueError``) that is also a ``TypeError`` (an unknown keyword) in deltaflow."""

from __future__ import annotations

import inspect
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


@pytest.mark.parametrize("name", ["join", "join_inner", "join_left", "join_right", "join_outer"])
def test_a_join_result_refuses_unknown_keywords_as_a_table_does(
    tables: tuple[pw.Table, pw.Table], name: str
) -> None:
    # Pathway raises ValueError for both; ours is also a TypeError, as Python's own would be.
    left, right = tables
    joined = left.join(right, left.a == right.b)
    with pytest.raises(ValueError, match=rf"^JoinResult\.{name}\(\): .*'colour'") as raised:
        getattr(joined, name)(left, colour="red")
    assert isinstance(raised.value, TypeError)


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


_OPTIONS = ["id", "left_instance", "right_instance", "left_exactly_once", "right_exactly_once"]
_JOINS = ["join", "join_inner", "join_left", "join_right", "join_outer"]


@pytest.mark.parametrize("name", _JOINS)
def test_the_three_forms_of_a_join_have_pathways_parameters(name: str) -> None:
    """``Table.join*``, a join result's ``join*`` and ``pw.join*`` run one piece of code; each
    keeps its own parameter names (``pw.join_left(left, right, ...)``)."""
    options = [*_OPTIONS[:1], "how", *_OPTIONS[1:]] if name == "join" else _OPTIONS
    for owner, first in ((pw.Table, ["self", "other"]), (pw.JoinResult, ["self", "other"])):
        assert list(inspect.signature(getattr(owner, name)).parameters) == [*first, "on", *options]
    assert list(inspect.signature(getattr(pw, name)).parameters) == [
        "left",
        "right",
        "on",
        *options,
    ]


@pytest.mark.parametrize("name", _JOINS)
def test_argument_errors_name_the_form_called(tables: tuple[pw.Table, pw.Table], name: str) -> None:
    left, right = tables
    joined = left.join(right, left.a == right.b)
    for call, called in (
        (lambda: getattr(left, name)(), f"Table.{name}()"),
        (lambda: getattr(joined, name)(), f"JoinResult.{name}()"),
        (lambda: getattr(pw, name)(left), f"{name}()"),
    ):
        with pytest.raises(TypeError) as caught:
            call()
        assert str(caught.value).startswith(f"{called} missing 1 required positional argument")


def test_pw_join_takes_its_sides_by_keyword(tables: tuple[pw.Table, pw.Table]) -> None:
    left, right = tables
    result = pw.join_left(left=left, right=right).select(a=pw.left.a, b=pw.right.b)
    pairs = sorted(pw.debug.table_to_dicts(result)[1]["b"].values())
    assert pairs == [2, 2, 3, 3]
