"""User reducers that keep a state per group: ``udf_reducer``, ``stateful_many`` and
``stateful_single``.

The reduce operator hands such a reducer every row of a changed group (its argument values and
multiplicity) together with the state the group had. The group's rows are first consolidated
by value (two rows with equal argument values are the same entry, whatever their ids, so the
removal of a row whose values are present cancels one of them) and compared with the values the
state was built from: the difference is the *change* of the group, sorted by value (by the
accumulator's ``sort_by`` first, when it has one). The fold then applies the change:

- ``udf_reducer``: insertions are merged into the kept accumulator (``update``); removals are
  taken back with ``retract`` when the accumulator has one, else the accumulator is rebuilt
  from the group's current values (the values the change adds first, then the others in the
  order they were merged);
- ``stateful_many``: ``combine_many(state, change)``;
- ``stateful_single``: ``combine_single(state, *values)`` per inserted row (a removal is an
  error: such a reducer cannot take values back).

So an order-sensitive accumulator sees insertions in the order of the times they arrive, as
in Pathway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from deltaflow import _types as t

Values = tuple[Any, ...]
Entries = list[tuple[Values, int]]


class BaseCustomAccumulator:
    """Base class of user accumulators for ``pw.reducers.udf_reducer``.

    Subclasses implement ``from_row(cls, row)`` (a classmethod building an accumulator from one
    row's values), ``update(self, other)`` (merge another accumulator in) and
    ``compute_result(self)``. ``retract(self, other)`` (take a row back) is optional: without
    it, a group losing a row has its accumulator rebuilt from its remaining rows. A classmethod
    ``sort_by(cls, row)`` may give the order in which rows that arrive together are merged.
    """

    @classmethod
    def neutral(cls) -> BaseCustomAccumulator:
        raise NotImplementedError

    @classmethod
    def from_row(cls, row: list[Any]) -> BaseCustomAccumulator:
        raise NotImplementedError

    def update(self, other: BaseCustomAccumulator) -> None:
        raise NotImplementedError

    def retract(self, other: BaseCustomAccumulator) -> None:
        raise NotImplementedError

    def compute_result(self) -> Any:
        raise NotImplementedError


class GroupState:
    """What a group keeps: its current values with their counts (in the order they were
    merged) and the fold's own state."""

    __slots__ = ("counts", "user")

    def __init__(self, counts: dict[Any, list[Any]], user: Any) -> None:
        self.counts = counts  # canonical key -> [values, count], count > 0
        self.user = user


class Fold:
    """How one kind of user reducer applies a group's change to its state."""

    def order_key(self, values: Values) -> Any:
        """How values that change together are ordered."""
        return _value_order(values)

    def step(
        self, rows: Sequence[tuple[Values, int]], state: GroupState | None
    ) -> tuple[Any, GroupState | None]:
        """The group's value and new state, from all its rows and its old state (None for a
        new group). The state is None when the group has no rows left."""
        current: dict[Any, list[Any]] = {}
        for values, count in rows:
            key = _key(values)
            entry = current.get(key)
            if entry is None:
                current[key] = [values, count]
            else:
                entry[1] += count
        current = {k: e for k, e in current.items() if e[1] > 0}
        if not current:
            return None, None
        old = state.counts if state is not None else {}
        change: Entries = []
        for key, (values, count) in current.items():
            before = old[key][1] if key in old else 0
            if count != before:
                change.append((values, count - before))
        for key, (values, count) in old.items():
            if key not in current:
                change.append((values, -count))
        change.sort(key=lambda entry: _safe_order(self, entry[0]))
        if state is None:
            state = GroupState({}, None)
        elif not change:
            return self.result(state.user), state
        user, order = self.apply(state.user, change, state.counts, current)
        counts = {key: current[key] for key in order if key in current}
        counts.update((k, e) for k, e in current.items() if k not in counts)
        return self.result(user), GroupState(counts, user)

    def apply(
        self, user: Any, change: Entries, old: dict[Any, list[Any]], current: dict[Any, list[Any]]
    ) -> tuple[Any, list[Any]]:
        """The new fold state and the order of the group's values after the change."""
        raise NotImplementedError

    def result(self, user: Any) -> Any:
        return user


_PLAIN = frozenset([int, str, bool, bytes, type(None)])


def _key(values: Values) -> Any:
    """A hashable key equal exactly for equal values (plain values are their own key)."""
    for value in values:
        if type(value) not in _PLAIN:
            return t.canonical_key(values)
    return values


def _value_order(values: Values) -> Any:
    from deltaflow.reducers import sort_order

    return tuple(sort_order(v) for v in values)


def _safe_order(fold: Fold, values: Values) -> Any:
    """The order key of ``values``; values that do not compare with each other fall back to
    the text of their canonical form (still deterministic)."""
    key = fold.order_key(values)
    try:
        _ = key < key  # only checks that the key supports ordering
    except TypeError:
        return (1, repr(t.canonical_key(values)))
    return (0, key)


def _appended(old: dict[Any, list[Any]], change: Entries) -> list[Any]:
    """The old order of values, then the values the change adds."""
    order = list(old)
    order += [_key(values) for values, diff in change if diff > 0]
    return order


class AccumulatorFold(Fold):
    """``udf_reducer``: a :class:`BaseCustomAccumulator` per group."""

    def __init__(self, accumulator: type[BaseCustomAccumulator]) -> None:
        self.accumulator = accumulator
        self.retracts = accumulator.retract is not BaseCustomAccumulator.retract
        self.sort_by: Callable[[list[Any]], Any] | None = getattr(accumulator, "sort_by", None)

    def order_key(self, values: Values) -> Any:
        if self.sort_by is not None:
            return (self.sort_by(list(values)), _value_order(values))
        return _value_order(values)

    def _merge(
        self, accumulator: BaseCustomAccumulator | None, values: Values, times: int
    ) -> BaseCustomAccumulator | None:
        for _ in range(times):
            one = self.accumulator.from_row(list(values))
            if accumulator is None:
                accumulator = one
            else:
                accumulator.update(one)
        return accumulator

    def apply(
        self, user: Any, change: Entries, old: dict[Any, list[Any]], current: dict[Any, list[Any]]
    ) -> tuple[Any, list[Any]]:
        removes = any(diff < 0 for _, diff in change)
        if user is not None and (not removes or self.retracts):
            for values, diff in change:
                if diff > 0:
                    user = self._merge(user, values, diff)
                else:
                    for _ in range(-diff):
                        user.retract(self.accumulator.from_row(list(values)))
            return user, _appended(old, change)
        # Rebuild from the current values: the ones the change adds first, then the others
        # in the order they were merged.
        order = [_key(values) for values, diff in change if diff > 0]
        order += [key for key in old if key not in order]
        order += [key for key in current if key not in order]
        rebuilt = None
        for key in order:
            if key in current:
                values, count = current[key]
                rebuilt = self._merge(rebuilt, values, count)
        return rebuilt, order

    def result(self, user: Any) -> Any:
        return None if user is None else user.compute_result()


class ManyFold(Fold):
    """``stateful_many``: ``combine_many(state, [(values, count change), ...])``."""

    def __init__(self, combine_many: Callable[[Any, list[tuple[list[Any], int]]], Any]) -> None:
        self.combine_many = combine_many

    def apply(
        self, user: Any, change: Entries, old: dict[Any, list[Any]], current: dict[Any, list[Any]]
    ) -> tuple[Any, list[Any]]:
        user = self.combine_many(user, [(list(values), diff) for values, diff in change])
        return user, _appended(old, change)


class SingleFold(Fold):
    """``stateful_single``: ``combine_single(state, *values)`` per inserted row."""

    def __init__(self, combine_single: Callable[..., Any]) -> None:
        self.combine_single = combine_single

    def apply(
        self, user: Any, change: Entries, old: dict[Any, list[Any]], current: dict[Any, list[Any]]
    ) -> tuple[Any, list[Any]]:
        for values, diff in change:
            if diff < 0:
                name = getattr(self.combine_single, "__name__", "stateful_single")
                raise ValueError(
                    f"pw.reducers.stateful_single reducer {name!r}: a group lost "
                    f"a row {list(values)!r}, which a stateful_single reducer "
                    f"cannot take back; use stateful_many or udf_reducer with "
                    f"retract() for tables with deletions"
                )
            for _ in range(diff):
                user = self.combine_single(user, *values)
        return user, _appended(old, change)
