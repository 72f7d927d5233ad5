"""Public type names of Pathway's API that deltaflow provides as thin stand-ins.

* :class:`TableLike` and :class:`Joinable`: abstract classes for ``isinstance`` checks and
  annotations (tables and join results are both; grouped tables are neither).
* :class:`Type`: the column types as values (``pw.Type.INT``, ``pw.Type.optional(...)``),
  usable wherever a column type is expected (``pw.column_definition(dtype=pw.Type.INT)``).
* :data:`GroupedJoinResult`: what ``JoinResult.groupby`` returns, deltaflow's grouped table.
* Interactive mode (``pw.enable_interactive_mode``, ``pw.LiveTable``): not supported; using
  it raises ``NotImplementedError`` naming it.
"""

from __future__ import annotations

import abc
from typing import Any

from deltaflow import _types as t
from deltaflow.table import Table
from deltaflow.table_stateful import GroupedTable, JoinResult

__all__ = [
    "GroupedJoinResult",
    "Joinable",
    "LiveTable",
    "TableLike",
    "Type",
    "enable_interactive_mode",
]


class TableLike(abc.ABC):  # noqa: B024 (a marker: no abstract methods of its own)
    """What holds rows and columns: a table or a join result."""


class Joinable(TableLike):
    """What can be a side of a join: a table or a join result."""


for _cls in (Table, JoinResult):
    TableLike.register(_cls)
    Joinable.register(_cls)

GroupedJoinResult = GroupedTable


class Type:
    """Column types as values; the helpers build composite ones."""

    ANY = t.ANY
    BOOL = t.BOOL
    BYTES = t.BYTES
    DATE_TIME_NAIVE = t.DATE_TIME_NAIVE
    DATE_TIME_UTC = t.DATE_TIME_UTC
    DURATION = t.DURATION
    FLOAT = t.FLOAT
    INT = t.INT
    JSON = t.JSON
    POINTER = t.POINTER
    PY_OBJECT_WRAPPER = t.PY_OBJECT_WRAPPER
    STRING = t.STR

    def __init__(self) -> None:
        raise TypeError("pw.Type is a namespace of column types; it is not instantiated")

    @staticmethod
    def optional(wrapped: Any) -> t.DType:
        """``wrapped`` or None."""
        return t.optional(t.wrap(wrapped))

    @staticmethod
    def list(wrapped: Any) -> t.DType:  # noqa: A003 (the name of the type it builds)
        """A list (or tuple of any length) of ``wrapped``."""
        return t.List(t.wrap(wrapped))

    @staticmethod
    def tuple(*args: Any) -> t.DType:  # noqa: A003
        """A tuple with one element of each of the given types."""
        return t.Tuple(*(t.wrap(arg) for arg in args))

    @staticmethod
    def array(dim: int | None, wrapped: Any) -> t.DType:
        """A numpy array of ``dim`` dimensions (None: any) of ``wrapped`` elements."""
        return t.Array(dim, t.wrap(wrapped))

    @staticmethod
    def future(wrapped: Any) -> t.DType:
        raise NotImplementedError(
            "pw.Type.future is not supported by deltaflow: fully "
            "asynchronous UDF results are ready in their own minibatch "
            "(docs/udfs.md), so columns never hold pending values"
        )


class LiveTable:
    """Pathway's interactive-mode view of a table; not supported by deltaflow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "pw.LiveTable (interactive mode) is not supported by "
            "deltaflow; print results with pw.debug.compute_and_print"
        )


def enable_interactive_mode() -> Any:
    """Not supported by deltaflow: raises ``NotImplementedError``."""
    raise NotImplementedError(
        "pw.enable_interactive_mode (interactive mode) is not supported "
        "by deltaflow; print results with pw.debug.compute_and_print"
    )
