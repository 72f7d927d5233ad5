"""``pw.reducers``: the aggregations usable in ``reduce``.

A reducer call such as ``pw.reducers.sum(t.a)`` builds a :class:`ReducerExpression`. The reduce
operator finds these nodes in the output expressions, computes each one per group into a column
and then evaluates the surrounding expression (``sum(a) / count()``) on those columns.

Each reducer is described by a :class:`Reducer`: its result type, whether it is *invertible*
(count, sum and avg are kept as running accumulators, so an update costs O(1) per group), a
Polars aggregation when one exists, and a Python fallback that computes the value from the rows
of one group (``Row`` tuples of id, argument values, multiplicity and insertion time). Those
classes are defined in ``deltaflow.reducers_kinds``; this module holds the public functions
(those building a reducer from a program's own function, ``stateful_many``, ``stateful_single``
and ``udf_reducer``, are in ``deltaflow.reducers_user``).
"""

from __future__ import annotations

from typing import Any

from deltaflow.expressions.placeholders import this

# The reducer classes are defined in reducers_kinds; the public and shared ones are importable
# from here as well (the reduce operators import Row, inverts and ReducerExpression from here).
from deltaflow.reducers_kinds import Reducer as Reducer
from deltaflow.reducers_kinds import (
    ReducerExpression,
    _Any,
    _ArgMinMax,
    _Avg,
    _Count,
    _CountDistinct,
    _CountDistinctApproximate,
    _EarliestLatest,
    _MinMax,
    _Ndarray,
    _Sum,
    _Tuple,
    _Unique,
)
from deltaflow.reducers_kinds import ReducerOutsideReduceError as ReducerOutsideReduceError
from deltaflow.reducers_kinds import Row as Row
from deltaflow.reducers_kinds import inverts as inverts
from deltaflow.reducers_kinds import sort_order as sort_order
from deltaflow.reducers_stateful import BaseCustomAccumulator as BaseCustomAccumulator
from deltaflow.reducers_user import stateful_many as stateful_many
from deltaflow.reducers_user import stateful_single as stateful_single
from deltaflow.reducers_user import udf_reducer as udf_reducer

# ------------------------------------------------------------------------------------------
# The public functions
# ------------------------------------------------------------------------------------------


def count(*args: Any) -> ReducerExpression:
    """The number of rows in the group.

    Parameters:
        *args: accepted for compatibility: ``count(t.x)`` counts every row, None values
            included, as ``count()`` does.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 1
        ... b    | pen  | 5
        ... ''')
        >>> r = t.groupby(t.shop).reduce(t.shop, rows=pw.reducers.count(),
        ...                              total=pw.reducers.sum(t.qty),
        ...                              items=pw.reducers.sorted_tuple(t.item))
        >>> pw.debug.compute_and_print(r, include_id=False)
        shop | rows | total | items
        a    | 2    | 3     | ('ink', 'pen')
        b    | 1    | 5     | ('pen',)
    """
    return ReducerExpression(_Count(), *args)


def sum(arg: Any, strict: bool = False) -> ReducerExpression:  # noqa: A001
    """The sum of the values (int, float or arrays).

    Float sums are computed exactly and rounded once, so the result does not depend on the
    order in which rows arrive.

    Parameters:
        arg: the expression summed.
        strict: accepted for compatibility: float sums are always exact here, whatever the
            updates, so there is no faster, less accurate mode to leave.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.groupby(t.shop).reduce(t.shop, total=pw.reducers.sum(t.qty))
        >>> pw.debug.compute_and_print(r, include_id=False)
        shop | total
        a    | 8
        b    | 5
    """
    return ReducerExpression(_Sum(), arg)


def avg(expression: Any) -> ReducerExpression:
    """The mean of the values (a float).

    Parameters:
        expression: an int or float expression.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.groupby(t.shop).reduce(t.shop, mean=pw.reducers.avg(t.qty))
        >>> pw.debug.compute_and_print(r, include_id=False)
        shop | mean
        a    | 4.0
        b    | 5.0
    """
    return ReducerExpression(_Avg(), expression)


def min(arg: Any) -> ReducerExpression:  # noqa: A001
    """The smallest value (None values are skipped).

    Parameters:
        arg: an expression of any ordered type.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.groupby(t.shop).reduce(t.shop, low=pw.reducers.min(t.qty),
        ...                              first=pw.reducers.min(t.item))
        >>> pw.debug.compute_and_print(r, include_id=False)
        shop | low | first
        a    | 2   | ink
        b    | 5   | pen
    """
    return ReducerExpression(_MinMax("min", largest=False), arg)


def max(arg: Any) -> ReducerExpression:  # noqa: A001
    """The largest value (None values are skipped).

    Parameters:
        arg: an expression of any ordered type.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.reduce(high=pw.reducers.max(t.qty))
        >>> pw.debug.compute_and_print(r, include_id=False)
        high
        6
    """
    return ReducerExpression(_MinMax("max", largest=True), arg)


def argmin(arg: Any, id: Any = None) -> ReducerExpression:  # noqa: A002
    """The id (or ``id`` expression) of the row with the smallest value; ties: smallest id.

    Parameters:
        arg: the expression compared.
        id: what to return for the winning row (default: its id).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.groupby(t.shop).reduce(t.shop, row=pw.reducers.argmin(t.qty))
        >>> pw.debug.compute_and_print(r.select(r.shop, item=t.ix(r.row).item),
        ...                            include_id=False)
        shop | item
        a    | pen
        b    | pen
    """
    return ReducerExpression(
        _ArgMinMax("argmin", largest=False), arg, this.id if id is None else id
    )


def argmax(arg: Any, id: Any = None) -> ReducerExpression:  # noqa: A002
    """The id (or ``id`` expression) of the row with the largest value; ties: smallest id.

    Parameters:
        arg: the expression compared.
        id: what to return for the winning row (default: its id).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.groupby(t.shop).reduce(t.shop, best=pw.reducers.argmax(t.qty, t.item))
        >>> pw.debug.compute_and_print(r, include_id=False)
        shop | best
        a    | ink
        b    | pen
    """
    return ReducerExpression(_ArgMinMax("argmax", largest=True), arg, this.id if id is None else id)


def any(arg: Any) -> ReducerExpression:  # noqa: A001
    """One of the values (deterministically: the one of the row with the smallest id).

    Parameters:
        arg: the expression picked from.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.groupby(t.item).reduce(t.item, some_shop=pw.reducers.any(t.shop))
        >>> pw.debug.compute_and_print(r.select(r.item), include_id=False)
        item
        ink
        pen
    """
    return ReducerExpression(_Any(), arg)


def unique(arg: Any) -> ReducerExpression:
    """The value shared by every row of the group; an error if the rows disagree.

    Parameters:
        arg: an expression that has one value per group.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... order | customer | amount
        ... 1     | ann      | 10
        ... 1     | ann      | 5
        ... 2     | bob      | 7
        ... ''')
        >>> r = t.groupby(t.order).reduce(t.order, customer=pw.reducers.unique(t.customer),
        ...                               total=pw.reducers.sum(t.amount))
        >>> pw.debug.compute_and_print(r, include_id=False)
        order | customer | total
        1     | ann      | 15
        2     | bob      | 7
    """
    return ReducerExpression(_Unique(), arg)


def tuple(arg: Any, *, skip_nones: bool = False) -> ReducerExpression:  # noqa: A001
    """All values of the group, ordered by row id.

    Ids are hashes, so that order is fixed but is not the order rows came in (and, deltaflow's
    ids being other than Pathway's, not always Pathway's order either).

    Parameters:
        arg: the expression collected.
        skip_nones: leave None values out.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ...   | shop | qty
        ... 1 | a    | 2
        ... 2 | a    |
        ... 3 | a    | 6
        ... ''')
        >>> r = t.groupby(t.shop).reduce(all=pw.reducers.tuple(t.qty),
        ...                              some=pw.reducers.tuple(t.qty, skip_nones=True))
        >>> pw.debug.compute_and_print(r, include_id=False)
        all          | some
        (6, None, 2) | (6, 2)
    """
    return ReducerExpression(_Tuple("tuple", sort=False, skip_nones=skip_nones), arg)


def sorted_tuple(arg: Any, *, skip_nones: bool = False) -> ReducerExpression:
    """All values of the group, sorted (None first).

    Parameters:
        arg: the expression collected.
        skip_nones: leave None values out.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.reduce(items=pw.reducers.sorted_tuple(t.item))
        >>> pw.debug.compute_and_print(r, include_id=False)
        items
        ('ink', 'pen', 'pen')
    """
    return ReducerExpression(_Tuple("sorted_tuple", sort=True, skip_nones=skip_nones), arg)


def ndarray(expression: Any, *, skip_nones: bool = False) -> ReducerExpression:
    """All values of the group as a numpy array, ordered by row id.

    Parameters:
        expression: an int or float expression (or arrays, stacked into one more dimension).
        skip_nones: leave None values out.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ...   | x
        ... 1 | 3
        ... 2 | 1
        ... ''')
        >>> pw.debug.compute_and_print(t.reduce(xs=pw.reducers.ndarray(t.x)), include_id=False)
        xs
        [1 3]
    """
    return ReducerExpression(_Ndarray("ndarray", sort=False, skip_nones=skip_nones), expression)


def count_distinct(*args: Any) -> ReducerExpression:
    """The number of distinct values (or tuples of values) in the group.

    Parameters:
        *args: the expressions whose values (together) are counted.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.reduce(items=pw.reducers.count_distinct(t.item),
        ...              pairs=pw.reducers.count_distinct(t.shop, t.item))
        >>> pw.debug.compute_and_print(r, include_id=False)
        items | pairs
        2     | 3
    """
    return ReducerExpression(_CountDistinct(), *args)


def earliest(expression: Any) -> ReducerExpression:
    """The value of the row that entered the group first.

    Parameters:
        expression: the expression whose value is kept.

    Examples:
        >>> import deltaflow as pw
        >>> s = pw.debug.table_from_markdown('''
        ... sensor | value | __time__
        ... x      | 1     | 2
        ... x      | 7     | 4
        ... ''')
        >>> r = s.groupby(s.sensor).reduce(s.sensor, first=pw.reducers.earliest(s.value),
        ...                                last=pw.reducers.latest(s.value))
        >>> pw.debug.compute_and_print_update_stream(r, include_id=False)
        sensor | first | last | __time__ | __diff__
        x      | 1     | 1    | 2        | 1
        x      | 1     | 1    | 4        | -1
        x      | 1     | 7    | 4        | 1
    """
    return ReducerExpression(_EarliestLatest("earliest", latest=False), expression)


def latest(expression: Any) -> ReducerExpression:
    """The value of the row that entered the group last.

    Parameters:
        expression: the expression whose value is kept.

    Examples:
        >>> import deltaflow as pw
        >>> s = pw.debug.table_from_markdown('''
        ... sensor | value | __time__
        ... x      | 1     | 2
        ... x      | 7     | 4
        ... y      | 3     | 4
        ... ''')
        >>> r = s.groupby(s.sensor).reduce(s.sensor, now=pw.reducers.latest(s.value))
        >>> pw.debug.compute_and_print(r, include_id=False)
        sensor | now
        x      | 7
        y      | 3
    """
    return ReducerExpression(_EarliestLatest("latest", latest=True), expression)


# The precisions Pathway accepts (sketches of 2**4 to 2**18 registers).
_MIN_PRECISION = 4
_MAX_PRECISION = 18


def count_distinct_approximate(*args: Any, precision: int = 12) -> ReducerExpression:
    """The number of distinct values (or tuples of values) in the group, for programs
    written for Pathway, where it is a HyperLogLog estimate whose relative error is about
    ``1.04 / 2**(precision / 2)``. deltaflow recomputes this reducer from the group's rows,
    which it keeps anyway, so it returns the exact count (as ``count_distinct``): within
    that error for every precision, at no extra memory.

    Parameters:
        *args: the expressions whose values (together) are counted.
        precision: Pathway's sketch size, as a power of two; checked (4 to 18), else unused.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... shop | item | qty
        ... a    | pen  | 2
        ... a    | ink  | 6
        ... b    | pen  | 5
        ... ''')
        >>> r = t.reduce(items=pw.reducers.count_distinct_approximate(t.item))
        >>> pw.debug.compute_and_print(r, include_id=False)
        items
        2
    """
    if isinstance(precision, bool) or not isinstance(precision, int):
        raise TypeError(
            f"pw.reducers.count_distinct_approximate: precision must be an int, got {precision!r}"
        )
    if not _MIN_PRECISION <= precision <= _MAX_PRECISION:
        raise ValueError(
            f"pw.reducers.count_distinct_approximate: precision must be between "
            f"{_MIN_PRECISION} and {_MAX_PRECISION}, got {precision}"
        )
    return ReducerExpression(_CountDistinctApproximate(precision), *args)


__all__ = [
    "BaseCustomAccumulator",
    "ReducerExpression",
    "any",
    "argmax",
    "argmin",
    "avg",
    "count",
    "count_distinct",
    "count_distinct_approximate",
    "earliest",
    "latest",
    "max",
    "min",
    "ndarray",
    "sorted_tuple",
    "stateful_many",
    "stateful_single",
    "sum",
    "tuple",
    "udf_reducer",
    "unique",
]
