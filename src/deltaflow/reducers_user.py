"""The reducers a program defines from its own functions: ``pw.reducers.stateful_many``,
``stateful_single`` and ``udf_reducer`` (a :class:`~deltaflow.reducers_stateful.BaseCustomAccumulator`
subclass).

Each builds, from the user's function or class, a reducer function returning a
:class:`~deltaflow.reducers_kinds.ReducerExpression` whose reducer keeps a state per group; how
that state follows the group's changes is in :mod:`deltaflow.reducers_stateful`. Kept apart
from :mod:`deltaflow.reducers` (the built-in reducers), which exports them.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from deltaflow import _types as t
from deltaflow.reducers_kinds import ReducerExpression, Stateful
from deltaflow.reducers_stateful import (
    AccumulatorFold,
    BaseCustomAccumulator,
    ManyFold,
    SingleFold,
)


def _return_type(fun: Callable[..., Any]) -> t.DType:
    from deltaflow.expressions.base import _annotated_return

    return _annotated_return(fun)


def stateful_many(
    combine_many: Callable[[Any, list[builtins.tuple[list[Any], int]]], Any],
) -> Callable[..., ReducerExpression]:
    """A reducer from ``combine_many(state, [(values, count), ...]) -> state``.

    Each group keeps its state; whenever the group's rows change, ``combine_many`` gets the
    state and the change (the rows' values with their count changes, negative for removals).

    Parameters:
        combine_many: a function of the state (None at first) and a list of
            ``(values, count)`` pairs, returning the new state (the group's value); its return
            annotation gives the column type.

    Examples:
        >>> import deltaflow as pw
        >>> @pw.reducers.stateful_many
        ... def net_total(state: int | None, changes: list) -> int:
        ...     total = state or 0
        ...     for (qty,), count in changes:
        ...         total += qty * count
        ...     return total
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.groupby(t.shop).reduce(t.shop, total=net_total(t.qty))
        >>> pw.debug.compute_and_print(r, include_id=False)
        shop | total
        a    | 8
        b    | 5
    """
    return_type = _return_type(combine_many)
    name = getattr(combine_many, "__name__", "stateful_many")

    def reducer(*args: Any) -> ReducerExpression:
        return ReducerExpression(Stateful(name, return_type, ManyFold(combine_many)), *args)

    return reducer


def stateful_single(combine_single: Callable[..., Any]) -> Callable[..., ReducerExpression]:
    """A reducer from ``combine_single(state, *values) -> state``, applied row after row (it
    cannot take removals: a group losing a row is an error).

    Parameters:
        combine_single: a function of the state (None at first) and one row's values,
            returning the new state; its return annotation gives the column type.

    Examples:
        >>> import deltaflow as pw
        >>> @pw.reducers.stateful_single
        ... def longest(state: str | None, word: str) -> str:
        ...     return word if state is None or len(word) > len(state) else state
        >>> t = pw.debug.table_from_markdown('''
        ... word
        ... ink
        ... marker
        ... pen
        ... ''')
        >>> pw.debug.compute_and_print(t.reduce(w=longest(t.word)), include_id=False)
        w
        marker
    """
    return_type = _return_type(combine_single)
    name = getattr(combine_single, "__name__", "stateful_single")

    def reducer(*args: Any) -> ReducerExpression:
        return ReducerExpression(Stateful(name, return_type, SingleFold(combine_single)), *args)

    return reducer


def udf_reducer(reducer_cls: type[BaseCustomAccumulator]) -> Callable[..., ReducerExpression]:
    """A reducer from a :class:`BaseCustomAccumulator` subclass.

    Parameters:
        reducer_cls: the accumulator class: ``from_row(row)`` makes one from a row's values,
            ``update(other)`` merges another into it, ``compute_result()`` gives the value
            (its return annotation gives the column type); ``retract(other)``, if defined,
            lets the group lose rows without being recomputed.

    Examples:
        >>> import deltaflow as pw
        >>> class Spread(pw.BaseCustomAccumulator):
        ...     def __init__(self, low, high):
        ...         self.low, self.high = low, high
        ...     @classmethod
        ...     def from_row(cls, row):
        ...         return cls(row[0], row[0])
        ...     def update(self, other):
        ...         self.low = other.low if other.low < self.low else self.low
        ...         self.high = other.high if other.high > self.high else self.high
        ...     def compute_result(self) -> int:
        ...         return self.high - self.low
        >>> spread = pw.reducers.udf_reducer(Spread)
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> pw.debug.compute_and_print(t.reduce(spread=spread(t.qty)), include_id=False)
        spread
        4
    """
    if not (isinstance(reducer_cls, type) and issubclass(reducer_cls, BaseCustomAccumulator)):
        raise TypeError(
            f"pw.reducers.udf_reducer expects a subclass of "
            f"pw.BaseCustomAccumulator, got {reducer_cls!r}"
        )
    return_type = _return_type(reducer_cls.compute_result)

    def reducer(*args: Any) -> ReducerExpression:
        return ReducerExpression(
            Stateful(reducer_cls.__name__, return_type, AccumulatorFold(reducer_cls)), *args
        )

    return reducer
