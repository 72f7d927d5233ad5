"""Row filters: the rows holding the largest or smallest value of each group."""

from __future__ import annotations

from typing import Any

from deltaflow import reducers


def _arg_rows(table: Any, on: tuple[Any, ...], what: Any, pick: Any) -> Any:
    winners = table.groupby(*on).reduce(row=pick(what))
    keyed = winners.with_id(winners.row).promise_universe_is_subset_of(table)
    return table.restrict(keyed)


def argmax_rows(table: Any, *on: Any, what: Any) -> Any:
    """For each group of ``on``, the row with the largest ``what`` (ties: the smallest id)."""
    return _arg_rows(table, on, what, reducers.argmax)


def argmin_rows(table: Any, *on: Any, what: Any) -> Any:
    """For each group of ``on``, the row with the smallest ``what`` (ties: the smallest id)."""
    return _arg_rows(table, on, what, reducers.argmin)
