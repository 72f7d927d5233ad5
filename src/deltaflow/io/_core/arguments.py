"""The arguments every connector shares, checked once when the pipeline is defined.

A ``read`` function takes ``schema``, ``mode``, ``autocommit_duration_ms``,
``max_backlog_size`` and ``name`` (plus Pathway's legacy ``persistent_id``, ``debug_data`` and
``_stacklevel``); a ``write`` function takes the table, ``name`` and ``sort_by``. Instead of
each connector checking them again, :func:`check_read_options` and
:func:`check_write_options` do it and return the checked values with their defaults applied,
so that a mistake fails at once with a message naming the connector and the parameter, and an
unknown keyword is a ``TypeError`` as for any Python call. :func:`input_table` and
:func:`output_table` then build the input table or register the output from those values.

The public face of these helpers is :mod:`deltaflow.io.connector`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow.error_display import user_stacklevel
from deltaflow.io._core.base import Formatter, Parser, Reader, Writer
from deltaflow.io._core.output_session import OutputSession, write_table
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_backlog,
    check_mode,
    check_schema,
    reader_table,
)
from deltaflow.schema import Schema

if TYPE_CHECKING:
    from deltaflow.table import Table

#: Keywords Pathway's readers accept and deltaflow has no use for (``debug_data`` feeds
#: Pathway's debug mode, ``_stacklevel`` its warnings).
IGNORED_READ_KEYWORDS = ("debug_data", "_stacklevel")


@dataclass(frozen=True)
class ReadOptions:
    """The checked common arguments of a ``read`` function.

    ``label`` names the connector in messages; ``name`` is the one given (or the connector's
    default, then ``named`` is False): it identifies the input in logs, monitoring and
    persistence.
    """

    label: str
    schema: type[Schema] | None
    mode: str
    autocommit_duration_ms: int | None
    max_backlog_size: int | None
    name: str
    named: bool

    @property
    def streaming(self) -> bool:
        """Whether the input keeps reading new data (``mode="streaming"``)."""
        return self.mode == "streaming"


@dataclass(frozen=True)
class WriteOptions:
    """The checked common arguments of a ``write`` function: the table, the output's name
    and the columns ``sort_by`` orders each time's rows by (as given, checked)."""

    label: str
    table: Any
    name: str
    named: bool
    sort_by: tuple[Any, ...] | None

    @property
    def columns(self) -> dict[str, t.DType]:
        """The table's columns and their types."""
        return dict(self.table._columns)


def _reject_unknown(label: str, unknown: Mapping[str, Any]) -> None:
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        raise TypeError(f"{label}: unexpected keyword argument(s) {listed}")


def _check_name(label: str, name: Any, persistent_id: Any) -> str | None:
    """``name``, or the deprecated ``persistent_id`` standing for it (as in Pathway)."""
    if persistent_id is not None:
        if name is not None:
            raise ValueError(
                f"{label}: give name= only; persistent_id is its old spelling "
                "and the two cannot be combined"
            )
        warnings.warn(
            f"{label}: persistent_id is deprecated; use name= instead",
            DeprecationWarning,
            stacklevel=user_stacklevel(),
        )
        name = persistent_id
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{label}: name must be a str or None, got {type(name).__name__} {name!r}")
    return name


def check_read_options(
    label: str,
    *,
    default_name: str,
    schema: Any = None,
    mode: Any = "streaming",
    autocommit_duration_ms: Any = 1500,
    max_backlog_size: Any = None,
    name: Any = None,
    persistent_id: Any = None,
    schema_required: bool = True,
    schema_types: Iterable[t.DType] | None = None,
    **unknown: Any,
) -> ReadOptions:
    """Check the arguments every ``read`` function shares and apply Pathway's defaults.

    Pass the reader's own keyword arguments straight through (``**kwargs`` included): keywords
    this function does not know are a ``TypeError``, except :data:`IGNORED_READ_KEYWORDS`.
    ``schema_required=False`` lets ``schema`` be None (a connector that finds the schema
    elsewhere); ``schema_types`` limits the column types to those the format can fill.
    ``default_name`` names the input when the user gave no ``name``.
    """
    _reject_unknown(label, {k: v for k, v in unknown.items() if k not in IGNORED_READ_KEYWORDS})
    given = _check_name(label, name, persistent_id)
    checked_schema = check_schema(schema, label, required=schema_required, allowed=schema_types)
    return ReadOptions(
        label=label,
        schema=checked_schema,
        mode=check_mode(mode, label),
        autocommit_duration_ms=check_autocommit(autocommit_duration_ms, label),
        max_backlog_size=check_backlog(max_backlog_size, label),
        name=default_name if given is None else given,
        named=given is not None,
    )


def check_write_options(
    label: str,
    table: Any,
    *,
    default_name: str,
    name: Any = None,
    sort_by: Iterable[Any] | None = None,
    **unknown: Any,
) -> WriteOptions:
    """Check the arguments every ``write`` function shares: ``table`` must be a table,
    ``name`` a str or None, ``sort_by`` columns of ``table`` (a missing one is the table's
    ``KeyError``); other keywords are a ``TypeError``. ``default_name`` names the output when the user gave no ``name``."""
    from deltaflow.expressions.base import ColumnReference
    from deltaflow.table import Table

    _reject_unknown(label, unknown)
    if not isinstance(table, Table):
        raise TypeError(f"{label}: table must be a pw.Table, got {type(table).__name__}")
    given = _check_name(label, name, None)
    order: tuple[Any, ...] | None = None
    if sort_by is not None:
        if isinstance(sort_by, str | ColumnReference):
            sort_by = [sort_by]
        order = tuple(sort_by)
        for column in order:
            column_name = column.name if isinstance(column, ColumnReference) else column
            if not isinstance(column_name, str):
                raise TypeError(f"{label}: sort_by must be columns of the table, got {column!r}")
            if column_name not in table._columns:
                raise table._missing(column_name)  # the KeyError every sort_by gives
    return WriteOptions(
        label=label,
        table=table,
        name=default_name if given is None else given,
        named=given is not None,
        sort_by=order,
    )


def check_key_columns(
    connector: str, keys: list[str], columns: Mapping[str, t.DType], null_hint: str
) -> None:
    """The checks a snapshot writer's ``primary_key`` columns share (SQLite, PostgreSQL):
    no column named twice, none Optional (``null_hint`` says why a NULL key fails there)."""
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"{connector}: primary_key repeats column(s) {repeated}")
    optional = [k for k in keys if columns[k].is_optional]
    if optional:
        raise ValueError(
            f"{connector}: primary_key column(s) {optional} are Optional; a NULL key "
            f"cannot identify a row{null_hint}. Use non-Optional key columns."
        )


def input_table(
    options: ReadOptions,
    reader_factory: Callable[[], Reader],
    parser: Parser,
    *,
    keep_row_state: bool = False,
    splits: bool = False,
) -> Table:
    """The input table of a reader: ``reader_factory()`` builds a fresh reader for every run,
    ``parser`` turns its records into rows of ``options.schema``. ``keep_row_state`` makes the
    session remember each id's current row, which upserts and deletions by key need.
    ``splits``: the reader can read a share of its input (``Reader.keep_share``), so
    several workers may each read theirs."""
    if options.schema is None:
        raise ValueError(f"{options.label}: the input table needs a schema")
    return reader_table(
        schema=options.schema,
        reader_factory=reader_factory,
        parser=parser,
        name=options.name,
        named=options.named,
        autocommit_duration_ms=options.autocommit_duration_ms,
        max_backlog_size=options.max_backlog_size,
        keep_row_state=keep_row_state,
        splits=splits,
        static=not options.streaming,
    )


def output_table(
    options: WriteOptions, writer: Writer, formatter: Formatter | None = None
) -> OutputSession:
    """Register the output of ``options.table`` through ``writer``: per time, each batch of
    changes goes through ``formatter`` (the raw batch when None) to ``writer.write``, then
    ``writer.flush(time)`` is called once."""
    return write_table(
        options.table,
        writer,
        formatter,
        name=options.name,
        sort_by=options.sort_by,
        named=options.named,
    )
