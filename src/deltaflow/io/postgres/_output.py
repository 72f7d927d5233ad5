"""The public write functions of ``pw.io.postgres`` and their argument checks.

Every argument is checked when the pipeline is defined (``TypeError`` for a wrong kind of
value, ``ValueError`` naming the connector and the parameter); the table itself is prepared
when the run starts (see ``_writer.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any, Literal

from deltaflow import _types as t
from deltaflow.error_display import user_call
from deltaflow.io._core.arguments import check_key_columns
from deltaflow.io.postgres import _connection as conn
from deltaflow.io.postgres._types import UnsupportedType, column_type, quote_ident
from deltaflow.io.postgres._write_format import Mode, PostgresFormatter, WriteSpec
from deltaflow.io.postgres._writer import PostgresOutputSession, PostgresWriter

__all__ = ["write", "write_snapshot"]


def _label(function: str, table_name: Any) -> str:
    if isinstance(table_name, str):
        return f"pw.io.postgres.{function}({table_name!r})"
    return f"pw.io.postgres.{function}"


def _key_name(connector: str, table: Any, column: Any, *, by_name: bool) -> str:
    from deltaflow.expressions.base import ColumnReference

    if isinstance(column, ColumnReference) and not by_name:
        owner = column.table
        if (
            owner is not table
            and owner.__class__.__name__ == "Table"
            and column.name not in table._columns
        ):
            raise ValueError(
                f"{connector}: primary_key column {column.name!r} belongs to "
                "another table; pass columns of the written table, e.g. "
                "primary_key=[table.key]"
            )
        name = column.name
    elif isinstance(column, str) and by_name:
        name = column
    else:
        wanted = "column names" if by_name else "columns (e.g. [table.key])"
        raise TypeError(
            f"{connector}: primary_key must be a list of {wanted}, got an item "
            f"of type {type(column).__name__}"
        )
    if name not in table._columns:
        raise ValueError(
            f"{connector}: primary_key column {name!r} is not a column of the "
            f"written table; its columns are {list(table._columns)}"
        )
    return name


def _build(
    function: str,
    table: Any,
    postgres_settings: Any,
    table_name: Any,
    *,
    schema_name: Any,
    max_batch_size: Any,
    init_mode: Any,
    mode: Mode,
    primary_key: Any,
    name: Any,
    sort_by: Any,
    external_diff: Any,
) -> None:
    from deltaflow.table import Table, add_output

    connector = _label(function, table_name)
    if not isinstance(table, Table):
        raise TypeError(f"{connector}: table must be a Table, got {type(table).__name__}")
    settings = conn.check_settings(connector, postgres_settings)
    if not isinstance(table_name, str):
        raise TypeError(
            f"{connector}: table_name must be a string, got {type(table_name).__name__}"
        )
    if not table_name:
        raise ValueError(f"{connector}: table_name must not be empty")
    quote_ident(table_name)
    if schema_name is not None and (not isinstance(schema_name, str) or not schema_name):
        raise ValueError(
            f"{connector}: schema_name must be a non-empty string or None, got {schema_name!r}"
        )
    if init_mode not in ("default", "create_if_not_exists", "replace"):
        # A TypeError, as Pathway's check of the Literal type hint gives.
        raise TypeError(
            f"{connector}: init_mode must be 'default', 'create_if_not_exists' "
            f"or 'replace', got {init_mode!r}"
        )
    if max_batch_size is not None:
        if not isinstance(max_batch_size, int) or isinstance(max_batch_size, bool):
            raise TypeError(
                f"{connector}: max_batch_size must be an integer or None, got "
                f"{type(max_batch_size).__name__}"
            )
        if max_batch_size < 1:
            raise ValueError(
                f"{connector}: max_batch_size must be a positive integer (or "
                f"None), got {max_batch_size}"
            )
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{connector}: name must be a string or None, got {type(name).__name__}")
    if external_diff is not None:
        raise NotImplementedError(
            f"{connector}: _external_diff_column is not supported by deltaflow"
        )
    columns = dict(table._columns)
    column_types = {}
    for column, dtype in columns.items():
        quote_ident(column)
        try:
            column_types[column] = column_type(dtype)
        except UnsupportedType:
            raise ValueError(
                f"{connector}: column {column!r} has type {t.describe(dtype)}, "
                "which has no PostgreSQL column type (see docs/postgres.md for "
                "the supported types); convert it first, e.g. to str or "
                "pw.Json"
            ) from None
    if mode != "snapshot":
        reserved = sorted(c for c in columns if c.lower() in ("time", "diff"))
        if reserved:
            raise ValueError(
                f"{connector}: column(s) {reserved} clash with the 'time' and "
                "'diff' columns this mode adds; rename them"
                + (" or use output_table_type='snapshot'" if mode == "stream" else "")
            )
    keys: list[str] = []
    if mode == "stream":
        if primary_key is not None:
            raise ValueError(
                f"{connector}: primary_key is only used with output_table_type="
                "'snapshot'; remove it for 'stream_of_changes'"
            )
    else:
        if not primary_key:
            raise ValueError(
                f"{connector}: snapshot mode needs primary_key, the columns "
                "identifying a row (e.g. primary_key=[table.key])"
            )
        if not isinstance(primary_key, list | tuple):
            raise TypeError(
                f"{connector}: primary_key must be a list of columns, got "
                f"{type(primary_key).__name__}"
            )
        keys = [
            _key_name(connector, table, column, by_name=mode == "legacy") for column in primary_key
        ]
        check_key_columns(connector, keys, columns, " (filter out None first)")
    label = name if name is not None else connector
    spec = WriteSpec(
        connector=label,
        settings=conn.complete_settings(settings, name),
        schema_name=schema_name,
        table_name=table_name,
        columns=columns,
        column_types=column_types,
        mode=mode,
        primary_key=keys,
        init_mode=init_mode,
        max_batch_size=max_batch_size,
        retry_s=conn.retry_seconds(connector),
    )
    session = PostgresOutputSession(
        label, PostgresWriter(spec), PostgresFormatter(spec), named=name is not None
    )
    add_output(table, session, sort_by=sort_by)


@user_call
def write(
    table: Any,
    postgres_settings: dict,
    table_name: str,
    *,
    schema_name: str | None = "public",
    max_batch_size: int | None = None,
    init_mode: Literal["default", "create_if_not_exists", "replace"] = "default",
    output_table_type: Literal["stream_of_changes", "snapshot"] = "stream_of_changes",
    primary_key: list[Any] | None = None,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
    _external_diff_column: Any = None,
) -> None:
    """Write ``table`` to the PostgreSQL table ``schema_name.table_name``.

    ``postgres_settings`` holds libpq connection keywords (``host``, ``port``, ``dbname``,
    ``user``, ``password``, ``sslmode`` ...). ``output_table_type="stream_of_changes"``
    appends each change with ``time`` and ``diff`` columns; ``"snapshot"`` keeps the
    table equal to ``table``'s current rows, keyed by ``primary_key``, one transaction per
    minibatch. ``init_mode``: ``"default"`` needs an existing table,
    ``"create_if_not_exists"`` creates it if missing, ``"replace"`` drops and creates it.
    ``max_batch_size`` bounds the rows of one transaction in stream-of-changes mode.
    ``sort_by`` orders the rows of each minibatch. See ``docs/postgres.md``.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        table: the table written.
        postgres_settings: libpq connection keywords (``host``, ``port``, ``dbname``, ``user``,
            ``password`` ...).
        table_name: the destination table.
        schema_name: the PostgreSQL schema of the table.
        max_batch_size: the most rows in one transaction (stream-of-changes mode).
        init_mode: ``default``, ``create_if_not_exists`` or ``replace``.
        output_table_type: ``stream_of_changes`` (rows with ``time`` and ``diff``) or ``snapshot``.
        primary_key: the columns rows are upserted on (snapshot mode).
        name: the connector's name in logs and monitoring.
        sort_by: columns ordering the rows of one minibatch.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> t = pw.debug.table_from_rows(Event, [("ann", 3)])
        >>> settings = {"host": "127.0.0.1", "port": 5432, "dbname": "shop", "user": "app"}
        >>> pw.io.postgres.write(t, settings, "click_totals",
        ...                      output_table_type="snapshot", primary_key=[t.user],
        ...                      init_mode="create_if_not_exists")
    """
    if output_table_type not in ("stream_of_changes", "snapshot"):
        raise TypeError(
            f"{_label('write', table_name)}: output_table_type must be "
            f"'stream_of_changes' or 'snapshot', got {output_table_type!r}"
        )
    mode: Mode = "snapshot" if output_table_type == "snapshot" else "stream"
    _build(
        "write",
        table,
        postgres_settings,
        table_name,
        schema_name=schema_name,
        max_batch_size=max_batch_size,
        init_mode=init_mode,
        mode=mode,
        primary_key=primary_key,
        name=name,
        sort_by=sort_by,
        external_diff=_external_diff_column,
    )


def write_snapshot(
    table: Any,
    postgres_settings: dict,
    table_name: str,
    primary_key: list[str],
    *,
    max_batch_size: int | None = None,
    init_mode: Literal["default", "create_if_not_exists", "replace"] = "default",
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
    _external_diff_column: Any = None,
) -> None:
    """The older form of a snapshot output (deprecated, as in Pathway): the table is kept
    equal to ``table``'s current rows keyed by ``primary_key`` (column names), and also
    holds ``time`` (of each row's last change) and ``diff`` (always 1) columns. Prefer
    ``write(..., output_table_type="snapshot")``."""
    warnings.warn(
        "pw.io.postgres.write_snapshot is deprecated; use pw.io.postgres.write "
        "with output_table_type='snapshot' (which adds no time/diff columns)",
        DeprecationWarning,
        stacklevel=2,
    )
    _build(
        "write_snapshot",
        table,
        postgres_settings,
        table_name,
        schema_name="public",
        max_batch_size=max_batch_size,
        init_mode=init_mode,
        mode="legacy",
        primary_key=primary_key,
        name=name,
        sort_by=sort_by,
        external_diff=_external_diff_column,
    )
