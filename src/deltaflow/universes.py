"""``pw.universes``: promises about the row sets (universes) of tables.

A promise is not checked against the data: it tells the planner that, for example, two tables
always have the same rows, so that columns of one may be used in operations on the other.
"""

from __future__ import annotations

from typing import Any

from deltaflow.error_display import user_call


@user_call
def promise_is_subset_of(self: Any, *others: Any) -> None:
    """Promise that every row id of ``self`` is also a row id of each of ``others``."""
    for other in others:
        self.promise_universe_is_subset_of(other)


@user_call
def promise_are_equal(self: Any, *others: Any) -> None:
    """Promise that ``self`` and ``others`` all have exactly the same row ids."""
    for other in others:
        self.promise_universe_is_equal_to(other)


@user_call
def promise_are_pairwise_disjoint(self: Any, *others: Any) -> None:
    """Promise that no two of the tables share a row id (so ``concat`` keeps their ids)."""
    tables = [self, *others]
    for i, first in enumerate(tables):
        for second in tables[i + 1 :]:
            first.promise_universes_are_disjoint(second)


def table_of_columns(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Table.from_columns``: one table of columns taken from tables with the same rows
    (the same universe, or promised equal); the ids are those rows' ids."""
    from deltaflow import universe_checks
    from deltaflow.expressions.base import ColumnReference
    from deltaflow.table import Table

    named: list[tuple[str, Any]] = [(str(getattr(a, "name", "")), a) for a in args]
    named += list(kwargs.items())
    if not named:
        raise ValueError("from_columns: give at least one column")
    seen: set[str] = set()
    for name, column in named:
        if not isinstance(column, ColumnReference) or not isinstance(column.table, Table):
            raise TypeError(
                f"from_columns: expected columns of tables (table.column), got {column!r}"
            )
        if name in seen:
            raise ValueError(f"from_columns: column {name!r} is given twice")
        seen.add(name)
    first = named[0][1].table
    for _, column in named[1:]:
        other = column.table
        if not universe_checks.known_equal(first._universe, other._universe):
            raise ValueError(
                f"from_columns: {first._description} and {other._description} are not known "
                f"to have the same rows; promise it with pw.universes.promise_are_equal (or "
                f"join the tables)"
            )
    return first.select(**dict(named))
