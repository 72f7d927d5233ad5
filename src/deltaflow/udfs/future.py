"""The ``Future[T]`` column type of fully asynchronous UDFs.

A UDF run by ``pw.udfs.fully_async_executor()`` gives its column the type ``Future[T]`` (T: the
function's result type), as in Pathway: the value of a row may not be there yet, so the column
can only be passed along (selected, joined as a payload, concatenated, written out), given to
another fully asynchronous UDF, cast or turned into a string. Anything that reads the value
(arithmetic, comparisons, other UDFs, reducers, grouping, sorting, deduplication ...) is a
``TypeError`` when the pipeline is defined; ``Table.await_futures()`` turns the column back into
``T``.

deltaflow computes a fully asynchronous call within the minibatch of its row (docs/udfs.md),
so a ``Future[T]`` column stores plain ``T`` values: the type only guards the definition.
Its storage conversions therefore go through ``T`` (``strip_optional`` gives ``T``'s base).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.base import ColumnExpression, DeclareType

__all__ = ["FutureType", "awaited", "awaited_column", "is_future", "refuse_futures"]


class FutureType(t.DType):
    """``Future[T]``: the result of a fully asynchronous UDF, not yet awaited."""

    is_future = True  # read by the expression checks without importing this module

    def __init__(self, wrapped: t.DType) -> None:
        self.wrapped: t.DType = wrapped.wrapped if isinstance(wrapped, FutureType) else wrapped
        self.name = f"Future[{self.wrapped.name}]"

    def to_polars(self) -> pl.DataType:
        return self.wrapped.to_polars()

    @property
    def is_optional(self) -> bool:
        return self.wrapped.is_optional

    def strip_optional(self) -> t.DType:
        return self.wrapped.strip_optional()

    @property
    def typehint(self) -> Any:
        return asyncio.Future[self.wrapped.typehint]  # type: ignore[name-defined]

    def __repr__(self) -> str:
        return f"Future[{self.wrapped!r}]"


def is_future(dtype: t.DType) -> bool:
    return isinstance(dtype, FutureType)


def awaited(dtype: t.DType) -> t.DType:
    """The type of a column once its futures are awaited."""
    return dtype.wrapped if isinstance(dtype, FutureType) else dtype


def awaited_column(column: ColumnExpression, dtype: t.DType) -> ColumnExpression:
    """``column`` (of type ``dtype``) as ``await_futures()`` gives it: a ``Future[T]`` column
    becomes ``T`` (same values), any other stays as it is."""
    if not isinstance(dtype, FutureType):
        return column
    return _Awaited(dtype.wrapped, column)


class _Awaited(DeclareType):
    """A ``Future[T]`` column read as ``T`` (its values are stored as ``T`` already)."""

    @property
    def accepts_futures(self) -> bool:
        """Always: reading a ``Future`` column is what this node is for."""
        return True


def refuse_futures(types: Iterable[tuple[str, t.DType]], operation: str, where: str) -> None:
    """``TypeError`` if one of the (column or argument, type) pairs is a ``Future``:
    ``operation`` (e.g. ``groupby``) cannot use a value that may not be there yet. ``where``
    starts the message (e.g. ``groupby on table t``)."""
    for label, dtype in types:
        if isinstance(dtype, FutureType):
            raise TypeError(
                f"{where}: {label} has type {dtype!r}, the result "
                f"of a fully asynchronous UDF, which {operation} cannot use; "
                f"call await_futures() on the table first"
            )
