"""The kinds of reducer behind ``pw.reducers``: one :class:`Reducer` subclass per aggregation
(its result type, a Polars aggregation when one exists, the Python fallback over a group's
:class:`Row` tuples) and :class:`ReducerExpression`, the node a reducer call puts in an
expression.

:mod:`deltaflow.reducers` holds the public functions that build these nodes; the classes are
here, apart from that API, because the reduce operators (``engine/stateful``) work with them
directly.
"""

from __future__ import annotations

import builtins
import copy as _copy
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._float_sums import average, exact_sum, sum_expr, wrap_int64
from deltaflow.expressions.base import ColumnExpression, Scope, wrap_value
from deltaflow.expressions.scope import ExpressionError
from deltaflow.reducers_stateful import Fold


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
        return wrap_int64(exact_sum(row.args[0] * row.count for row in rows))


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
        return average(exact_sum(r.args[0] * r.count for r in rows), n)


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
