"""``pw.reducers``: the aggregations usable in ``reduce``.

A reducer call such as ``pw.reducers.sum(t.a)`` builds a :class:`ReducerExpression`. The reduce
operator finds these nodes in the output expressions, computes each one per group into a column
and then evaluates the surrounding expression (``sum(a) / count()``) on those columns.

Each reducer is described by a :class:`Reducer`: its result type, whether it is *invertible*
(count, sum and avg are kept as running accumulators, so an update costs O(1) per group), a
Polars aggregation when one exists, and a Python fallback that computes the value from the rows
of one group (``Row`` tuples of id, argument values, multiplicity and insertion time).
"""

from __future__ import annotations

import builtins
import copy as _copy
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._float_sums import exact_sum, sum_expr
from deltaflow.expressions.base import ColumnExpression, Scope, wrap_value
from deltaflow.expressions.placeholders import this
from deltaflow.expressions.scope import ExpressionError
from deltaflow.reducers_stateful import (
    AccumulatorFold,
    BaseCustomAccumulator,
    Fold,
    ManyFold,
    SingleFold,
)


class Row(NamedTuple):
    """One live input row of a group, as seen by Python reducers."""

    id: int
    args: builtins.tuple[Any, ...]
    # Shadows tuple.count on purpose: the multiplicity is what reducers read.
    count: int  # type: ignore[assignment]
    time: int


class Reducer:
    """How one kind of reducer types, aggregates and (maybe) inverts."""

    name = "reducer"
    invertible = False
    min_args = 1
    max_args: int | None = 1
    # Whether the order of a group's rows matters; such reducers follow ``groupby(sort_by=)``.
    ordered = False
    # Set on the copy made for a ``groupby(sort_by=...)``: the last argument is the sort key.
    sort_key_last = False
    # Stateful reducers keep a state per group between steps (see :meth:`python_stateful`);
    # they are given every row of the group, retractions of rows never inserted included.
    stateful = False

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        raise NotImplementedError

    def polars_agg(self, args: list[str], arg_types: list[t.DType]) -> pl.Expr | None:
        """A Polars aggregation over the live rows of a group, or None to use :meth:`python`.

        Frames have ``_id``, the argument columns and ``_diff`` (the multiplicity, > 0).
        """
        return None

    def python(self, rows: list[Row]) -> Any:
        raise NotImplementedError

    def python_stateful(self, rows: list[Row], state: Any) -> builtins.tuple[Any, Any]:
        """For :attr:`stateful` reducers: the value and the new state of a group, from all its
        rows and the state it had (None for a new group)."""
        raise NotImplementedError

    def with_sort_key(self) -> Reducer:
        """A copy ordering the rows by an extra last argument (the ``sort_by`` value)."""
        copy = _copy.copy(self)
        copy.sort_key_last = True
        return copy

    def in_order(self, rows: list[Row]) -> list[Row]:
        """The rows in the order the reducer reads them: by sort key when there is one (then
        by id, as they come), else by id."""
        if not self.sort_key_last:
            return rows
        ordered = sorted(rows, key=lambda r: sort_order(r.args[-1]))
        return [Row(r.id, r.args[:-1], r.count, r.time) for r in ordered]


def sort_order(value: Any) -> Any:
    """A sort key for any stored value: None first, arrays as nested tuples, Pointers by
    their integer value."""
    if value is None:
        return (0, 0)
    if isinstance(value, np.ndarray):
        return (1, _nested(value.tolist()))
    if isinstance(value, builtins.tuple | builtins.list):
        return (1, builtins.tuple(sort_order(v) for v in value))
    return (1, _order(value))


def _nested(value: Any) -> Any:
    if isinstance(value, builtins.list):
        return builtins.tuple(_nested(v) for v in value)
    return value


def _numeric(scope: Scope, name: str, dtype: t.DType) -> None:
    if dtype.is_optional:
        raise scope.fail(
            f"pw.reducers.{name} cannot aggregate the Optional column type "
            f"{dtype!r}; filter out None values or use pw.coalesce first"
        )
    if dtype.strip_optional() not in (t.INT, t.FLOAT, t.ANY) and not isinstance(
        dtype.strip_optional(), t.Array
    ):
        raise scope.fail(f"pw.reducers.{name} needs int or float values, got {dtype!r}")


def _polars_native(arg_types: Sequence[t.DType]) -> bool:
    return all(not a.stored_as_object for a in arg_types)


def inverts(reducer: Reducer, arg_types: Sequence[t.DType]) -> bool:
    """Whether a reducer call can be kept as running accumulators: an invertible reducer over
    values Polars can multiply and add (sums of numpy arrays are recomputed in Python)."""
    return reducer.invertible and _polars_native(arg_types)


class _Count(Reducer):
    name = "count"
    invertible = True
    min_args = 0
    max_args = None

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        return t.INT

    def polars_agg(self, args: list[str], arg_types: list[t.DType]) -> pl.Expr:
        return pl.col("_diff").sum()

    def python(self, rows: list[Row]) -> Any:
        return builtins.sum(r.count for r in rows)


class _Sum(Reducer):
    name = "sum"
    invertible = True

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        _numeric(scope, self.name, arg_types[0])
        return arg_types[0]

    def polars_agg(self, args: list[str], arg_types: list[t.DType]) -> pl.Expr | None:
        if not _polars_native(arg_types):
            return None
        return sum_expr(pl.col(args[0]) * pl.col("_diff"), arg_types[0])

    def python(self, rows: list[Row]) -> Any:
        return exact_sum(row.args[0] * row.count for row in rows)


class _Avg(Reducer):
    name = "avg"
    invertible = True

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        _numeric(scope, self.name, arg_types[0])
        return t.FLOAT if arg_types[0] in (t.INT, t.FLOAT) else arg_types[0]

    def polars_agg(self, args: list[str], arg_types: list[t.DType]) -> pl.Expr | None:
        if not _polars_native(arg_types):
            return None
        return sum_expr(pl.col(args[0]) * pl.col("_diff"), arg_types[0]) / pl.col("_diff").sum()

    def python(self, rows: list[Row]) -> Any:
        n = builtins.sum(r.count for r in rows)
        return exact_sum(r.args[0] * r.count for r in rows) / n


def _present(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.args[0] is not None]


class _MinMax(Reducer):
    def __init__(self, name: str, largest: bool) -> None:
        self.name = name
        self.largest = largest

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        return arg_types[0]

    # None is the smallest value (as in Pathway): a group holding None has None as its min;
    # its max is the largest other value (None only when every value is None).
    def polars_agg(self, args: list[str], arg_types: list[t.DType]) -> pl.Expr | None:
        if not _polars_native(arg_types):
            return None
        column = pl.col(args[0])
        if self.largest:
            return column.max()
        if arg_types[0].is_optional:
            return pl.when(column.null_count() > 0).then(None).otherwise(column.min())
        return column.min()

    def python(self, rows: list[Row]) -> Any:
        values = [r.args[0] for r in _present(rows)]
        if not values or (not self.largest and len(values) < len(rows)):
            return None
        return builtins.max(values) if self.largest else builtins.min(values)


class _ArgMinMax(Reducer):
    max_args = 2

    def __init__(self, name: str, largest: bool) -> None:
        self.name = name
        self.largest = largest

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        return arg_types[1] if len(arg_types) > 1 else t.POINTER

    def polars_agg(self, args: list[str], arg_types: list[t.DType]) -> pl.Expr | None:
        if not _polars_native(arg_types[:1]):
            return None
        value, key = pl.col(args[0]), pl.col(args[1])
        present = value.is_not_null()
        return (
            key.filter(present)
            .sort_by([value.filter(present), key.filter(present)], descending=[self.largest, False])
            .first()
        )

    def python(self, rows: list[Row]) -> Any:
        present = _present(rows)
        if not present:
            return None
        if self.largest:
            best = builtins.max(present, key=lambda r: r.args[0])
            ties = [r for r in present if r.args[0] == best.args[0]]
        else:
            best = builtins.min(present, key=lambda r: r.args[0])
            ties = [r for r in present if r.args[0] == best.args[0]]
        return builtins.min(ties, key=lambda r: _order(r.args[1])).args[1]


def _order(value: Any) -> Any:
    return value.value if isinstance(value, t.Pointer) else value


class _Any(Reducer):
    name = "any"

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        return arg_types[0]

    def polars_agg(self, args: list[str], arg_types: list[t.DType]) -> pl.Expr | None:
        if not _polars_native(arg_types):
            return None
        return pl.col(args[0]).sort_by("_id").first()

    def python(self, rows: list[Row]) -> Any:
        return rows[0].args[0] if rows else None


class _Unique(Reducer):
    name = "unique"

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        return arg_types[0]

    def python(self, rows: list[Row]) -> Any:
        values = {t.canonical_key(r.args[0]): r.args[0] for r in rows}
        if len(values) > 1:
            shown = ", ".join(repr(v) for v in list(values.values())[:5])
            raise ValueError(
                f"pw.reducers.unique: a group has more than one distinct value ({shown})"
            )
        return next(iter(values.values())) if values else None


class _Tuple(Reducer):
    ordered = True

    def __init__(self, name: str, sort: bool, skip_nones: bool) -> None:
        self.name = name
        self.sort = sort
        self.skip_nones = skip_nones

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        item = arg_types[0].strip_optional() if self.skip_nones else arg_types[0]
        return t.List(item)

    def python(self, rows: list[Row]) -> Any:
        values = [r.args[0] for r in self.in_order(rows) for _ in range(r.count)]
        if self.skip_nones:
            values = [v for v in values if v is not None]
        if self.sort:
            values.sort(key=_sortable)
        return builtins.tuple(values)


def _sortable(value: Any) -> Any:
    return (0, 0) if value is None else (1, _order(value))


class _Ndarray(_Tuple):
    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        # As in Pathway: numbers, arrays or sequences only; an Optional column only with
        # skip_nones=True, and a column of unknown type (Any) is refused as well.
        item = arg_types[0].strip_optional() if self.skip_nones else arg_types[0]
        allowed = (t.FLOAT, t.ARRAY, t.List(t.ANY))
        if item == t.ANY or not builtins.any(t.is_subtype(item, kind) for kind in allowed):
            optional = item.is_optional and item != t.NONE
            hint = "; pass skip_nones=True to leave None out" if optional else ""
            raise scope.fail(
                f"pw.reducers.ndarray makes arrays of numbers, arrays or tuples only, "
                f"not of {item!r}{hint}"
            )
        return t.ARRAY

    def python(self, rows: list[Row]) -> Any:
        return np.array(super().python(rows))


class _CountDistinct(Reducer):
    name = "count_distinct"
    min_args = 0  # no argument: every row is the same empty tuple (1 for a non-empty group)
    max_args = None

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        return t.INT

    def polars_agg(self, args: list[str], arg_types: list[t.DType]) -> pl.Expr | None:
        if not args or not _polars_native(arg_types):
            return None
        return pl.struct(args).n_unique().cast(pl.Int64)

    def python(self, rows: list[Row]) -> Any:
        return len({t.canonical_key(r.args) for r in rows})


class _EarliestLatest(Reducer):
    def __init__(self, name: str, latest: bool) -> None:
        self.name = name
        self.latest = latest

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        return arg_types[0]

    def python(self, rows: list[Row]) -> Any:
        if not rows:
            return None
        if self.latest:
            # The latest insertion wins; among rows of one time, the one with the largest id.
            return builtins.max(rows, key=lambda r: (r.time, r.id)).args[0]
        return builtins.min(rows, key=lambda r: (r.time, r.id)).args[0]


class _CountDistinctApproximate(_CountDistinct):
    """``count_distinct_approximate``: Pathway estimates with a HyperLogLog sketch to bound a
    group's memory. deltaflow keeps every group's rows in the reduce arrangement anyway (this
    reducer is recomputed from them), so a sketch would save nothing and only add error: the
    exact count is given, which is within the error bound of every ``precision``."""

    name = "count_distinct_approximate"

    def __init__(self, precision: int) -> None:
        self.precision = precision


class Stateful(Reducer):
    """A user reducer (``udf_reducer``, ``stateful_many``, ``stateful_single``): each group
    keeps the state its :class:`~deltaflow.reducers_stateful.Fold` builds, fed with the
    changes of the group's argument values."""

    stateful = True
    min_args = 0  # a custom reducer may look at no column (it sees each row's count)
    max_args = None

    def __init__(self, name: str, return_type: t.DType, fold: Fold) -> None:
        self.name = name
        self.return_type = return_type
        self.fold = fold

    def result_type(self, scope: Scope, arg_types: list[t.DType]) -> t.DType:
        return self.return_type

    def python_stateful(self, rows: list[Row], state: Any) -> builtins.tuple[Any, Any]:
        return self.fold.step([(r.args, r.count) for r in rows], state)

    def python(self, rows: list[Row]) -> Any:
        return self.python_stateful(rows, None)[0]


class ReducerOutsideReduceError(ExpressionError, ValueError):
    """A reducer used in a row-wise operation (select, with_columns, filter ...)."""


class ReducerExpression(ColumnExpression):
    """A reducer applied to argument expressions; only meaningful inside ``reduce``.

    Its arguments are evaluated on the input rows, so they are not children of the node: the
    expression around the reducer (evaluated per group) never sees them.
    """

    def __init__(self, reducer: Reducer, *args: Any) -> None:
        super().__init__()
        count = len(args)
        if count < reducer.min_args or (reducer.max_args is not None and count > reducer.max_args):
            raise TypeError(f"pw.reducers.{reducer.name} got {count} arguments")
        self.reducer = reducer
        self.args = builtins.tuple(wrap_value(a) for a in args)

    def _infer(self, scope: Scope) -> t.DType:
        types = getattr(scope, "reducer_types", None)
        if types is None or id(self) not in types:
            # A ValueError (as Pathway raises) that is still an ExpressionError.
            raise ReducerOutsideReduceError(
                f"{scope.description}: pw.reducers.{self.reducer.name} can only be used in "
                f"reduce(); select(), with_columns() and filter() work row by row, so move "
                f"the reducer into t.reduce(...) or t.groupby(...).reduce(...)"
            )
        return types[id(self)]

    def _polars(self, scope: Scope) -> pl.Expr:
        return pl.col(scope.reducer_columns[id(self)])  # type: ignore[attr-defined]


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
