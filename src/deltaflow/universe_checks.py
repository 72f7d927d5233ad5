"""What the plan knows about row sets (universes), checked when operations are defined.

Operations that match rows by id need to know how the row sets of their tables relate:
``update_cells`` and ``restrict`` need the other table's ids to be ids of the table, ``concat``
needs disjoint ids. Like Pathway, deltaflow refuses such an operation with a ``ValueError``
when the relation is not known, and warns when the operation is pointless (it would return one
of its inputs). A relation is known from the plan (a filter's rows are a subset of its input's,
a ``with_universe_of`` result has the other table's rows, promises made with
``promise_universe_is_subset_of`` and friends) or, beyond what Pathway accepts, from the ids of
static tables when both are known.

Promises are not proofs: the operators check them on the data and report every broken one
(see :mod:`deltaflow.engine.stateful.idops`).
"""

from __future__ import annotations

import warnings
from typing import Any

from deltaflow import plan
from deltaflow.error_display import user_stacklevel


def known_subset(smaller: plan.Universe, larger: plan.Universe) -> bool:
    """Whether every id of ``smaller`` is known to be an id of ``larger``."""
    if smaller is larger or smaller.is_subset_of(larger):
        return True
    if smaller.static_ids is not None and larger.static_ids is not None:
        return bool(smaller.static_ids.is_in(larger.static_ids.implode()).all())
    return False


def known_equal(first: plan.Universe, second: plan.Universe) -> bool:
    """Whether the two universes are known to hold the same ids."""
    return known_subset(first, second) and known_subset(second, first)


def promise_subset(smaller: plan.Universe, larger: plan.Universe) -> None:
    """Record the promise that ``smaller``'s ids are ids of ``larger``."""
    smaller.parent = larger  # adds ``larger`` to the universes ``smaller`` is a subset of


def promise_equal(first: plan.Universe, second: plan.Universe) -> None:
    """Record the promise that the two universes hold the same ids."""
    promise_subset(first, second)
    promise_subset(second, first)


def promise_disjoint(first: Any, second: Any) -> None:
    """Record that the tables ``first`` and ``second`` share no id; warn when one's rows are
    known to be among the other's (then both are always empty, which is most likely a
    mistake)."""
    a, b = first._universe, second._universe
    if _same_rows(a, b) or a.is_subset_of(b) or b.is_subset_of(a):
        empty = (a.static_ids is not None and a.static_ids.len() == 0) or (
            b.static_ids is not None and b.static_ids.len() == 0
        )
        if not empty:
            warnings.warn(
                f"promise_universes_are_disjoint: the rows of {first._description} and "
                f"{second._description} are known to overlap (one table's rows are among the "
                f"other's), so the promise means both are always empty; check the promise",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
    a.disjoint_from.add(id(b))
    b.disjoint_from.add(id(a))


def check_update_cells(table: Any, other: Any) -> bool:
    """Refuse ``table.update_cells(other)`` unless ``other``'s rows are known to be rows of
    ``table``; return True (after a warning) when both have the very same rows, so that the
    update is a plain ``with_columns``."""
    if not known_subset(other._universe, table._universe):
        raise ValueError(
            f"update_cells on {table._description}: the rows of {other._description} are not "
            f"known to be rows of this table; use update_rows to add rows, or promise it "
            f"with promise_universe_is_subset_of"
        )
    if _same_rows(table._universe, other._universe):
        warnings.warn(
            f"update_cells on {table._description}: {other._description} has exactly the "
            f"rows of this table, so every row is updated; computed as with_columns",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return True
    return False


def _same_rows(first: plan.Universe, second: plan.Universe) -> bool:
    """The very same rows: one universe, or static tables with the same ids (promises of
    equality do not count, as in Pathway: the operation then still checks the ids)."""
    if first is second:
        return True
    if first.static_ids is None or second.static_ids is None:
        return False
    return first.static_ids.len() == second.static_ids.len() and bool(
        first.static_ids.is_in(second.static_ids.implode()).all()
    )


def check_restrict(table: Any, other: Any) -> None:
    """Refuse ``table.restrict(other)`` unless ``other``'s rows are known to be rows of
    ``table``; warn when both are known to have the same rows."""
    if not known_subset(other._universe, table._universe):
        raise ValueError(
            f"restrict on {table._description}: the rows of {other._description} are not "
            f"known to be rows of this table; use intersect (which checks the ids), or "
            f"promise it with promise_universe_is_subset_of"
        )
    if known_subset(table._universe, other._universe):
        warnings.warn(
            f"restrict on {table._description}: {other._description} is known to have the "
            f"same rows, so restrict changes nothing; with_universe_of says so without a "
            f"check of the ids",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def update_rows_is_other(table: Any, other: Any) -> bool:
    """Whether ``table.update_rows(other)`` is just ``other`` (every row of ``table`` is
    known to be replaced); warns when it is."""
    if not known_subset(table._universe, other._universe):
        return False
    warnings.warn(
        f"update_rows on {table._description}: its rows are known to be rows of "
        f"{other._description}, which replaces every one of them; the result is that table",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return True
