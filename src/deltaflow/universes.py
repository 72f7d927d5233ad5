"""``pw.universes``: promises about the row sets (universes) of tables.

A promise is not checked against the data: it tells the planner that, for example, two tables
always have the same rows, so that columns of one may be used in operations on the other.
"""

from __future__ import annotations

from typing import Any


def promise_is_subset_of(self: Any, *others: Any) -> None:
    """Promise that every row id of ``self`` is also a row id of each of ``others``."""
    for other in others:
        self.promise_universe_is_subset_of(other)


def promise_are_equal(self: Any, *others: Any) -> None:
    """Promise that ``self`` and ``others`` all have exactly the same row ids."""
    for other in others:
        self.promise_universe_is_equal_to(other)


def promise_are_pairwise_disjoint(self: Any, *others: Any) -> None:
    """Promise that no two of the tables share a row id (so ``concat`` keeps their ids)."""
    tables = [self, *others]
    for i, first in enumerate(tables):
        for second in tables[i + 1:]:
            first.promise_universes_are_disjoint(second)
