"""``pw.io.postgres.read``: a PostgreSQL table as a live table, with change data capture.

``mode="static"`` reads the table once, in one transaction, as one minibatch.
``mode="streaming"`` reads the same snapshot and then every committed change through logical
replication (``pgoutput``): insertions, updates and deletions, transaction by transaction in
commit order, a source transaction never split across minibatches. The slot handling lives
in ``_cdc.py``, the message parser in ``_pgoutput.py``, value decoding in ``_decode.py``,
the readers in ``_readers.py``, the parser turning text rows into typed rows in ``_rows.py``;
this module holds ``read``, which checks the arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from deltaflow import _types as t
from deltaflow.error_display import user_call
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_backlog,
    check_mode,
    check_schema,
    reader_table,
)
from deltaflow.io.postgres._cdc import Target
from deltaflow.io.postgres._readers import CdcReader, StaticReader
from deltaflow.io.postgres._rows import TextRowsParser

__all__ = ["read"]

_SUPPORTED = {
    "int",
    "float",
    "bool",
    "str",
    "bytes",
    "DateTimeNaive",
    "DateTimeUtc",
    "Duration",
    "Json",
    "Pointer",
}


# --- the public function ------------------------------------------------------------------
@user_call
def read(
    postgres_settings: dict,
    table_name: str,
    schema: Any,
    *,
    mode: Literal["streaming", "static"] = "streaming",
    is_append_only: bool = False,
    publication_name: str | None = None,
    schema_name: str | None = "public",
    autocommit_duration_ms: int | None = 1500,
    name: str | None = None,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
) -> Any:
    """Read the PostgreSQL table ``schema_name.table_name`` (see docs/postgres_read.md).

    ``mode="static"`` reads the table once, in one minibatch. ``mode="streaming"`` (the
    default) reads the same snapshot and then follows every committed INSERT, UPDATE,
    DELETE and TRUNCATE through logical replication; it needs ``wal_level=logical``, the
    REPLICATION privilege and ``publication_name``, a publication covering the table. Rows
    are identified by the schema's primary key, which must be the table's (its replica
    identity), unless ``is_append_only=True``. With ``pw.persistence`` the change stream
    resumes after a restart from the last checkpoint through a persistent replication slot
    named after the connector. ``debug_data`` is accepted and ignored.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        postgres_settings: libpq connection keywords (``host``, ``port``, ``dbname``, ``user``,
            ``password`` ...).
        table_name: the table read.
        schema: the columns read; its primary key must be the table's.
        mode: ``streaming`` (default: follow the changes by logical replication) or ``static``.
        is_append_only: the table only ever gets inserts (no primary key needed).
        publication_name: the publication covering the table (streaming mode).
        schema_name: the PostgreSQL schema of the table.
        autocommit_duration_ms: how long changes may wait before they are committed to the pipeline.
        name: the connector's name in logs, monitoring and persistence (and its replication slot).
        max_backlog_size: pause reading while this many rows wait in the pipeline.
        debug_data: accepted for compatibility, ignored.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> settings = {"host": "127.0.0.1", "port": 5432, "dbname": "shop", "user": "app"}
        >>> t = pw.io.postgres.read(settings, "clicks", Event, mode="static")
        >>> t.typehints()
        {'user': <class 'str'>, 'clicks': <class 'int'>}
    """
    label = (
        f"pw.io.postgres.read({table_name!r})"
        if isinstance(table_name, str)
        else "pw.io.postgres.read"
    )
    if not isinstance(postgres_settings, Mapping):
        raise TypeError(
            f"{label}: postgres_settings must be a dict of libpq connection "
            f"parameters, got {type(postgres_settings).__name__}"
        )
    bad_keys = [k for k in postgres_settings if not isinstance(k, str)]
    if bad_keys:
        raise TypeError(f"{label}: postgres_settings keys must be strings, got {bad_keys!r}")
    if not isinstance(table_name, str) or not table_name:
        raise ValueError(f"{label}: table_name must be a non-empty string, got {table_name!r}")
    if schema_name is not None and (not isinstance(schema_name, str) or not schema_name):
        raise ValueError(
            f"{label}: schema_name must be a non-empty string or None, got {schema_name!r}"
        )
    checked = check_schema(schema, label)
    assert checked is not None
    streaming = check_mode(mode, label) == "streaming"
    if not isinstance(is_append_only, bool):
        raise TypeError(f"{label}: is_append_only must be a bool, got {is_append_only!r}")
    if streaming:
        if publication_name is None:
            raise ValueError(
                f"{label}: publication_name is required with mode='streaming' "
                "(CREATE PUBLICATION <name> FOR TABLE <table>)"
            )
        if not isinstance(publication_name, str) or not publication_name:
            raise ValueError(
                f"{label}: publication_name must be a non-empty string, got {publication_name!r}"
            )
    elif publication_name is not None:
        raise ValueError(f"{label}: publication_name is only used with mode='streaming'")
    autocommit = check_autocommit(autocommit_duration_ms, label)
    backlog = check_backlog(max_backlog_size, label)
    columns = checked.dtypes()
    for column, dtype in columns.items():
        if not _readable(dtype):
            raise TypeError(
                f"{label}: column {column!r} has type {dtype!r}, which cannot be "
                "read from PostgreSQL (see docs/postgres_read.md for the types)"
            )
    primary_key = tuple(checked.primary_key_columns() or ())
    if streaming and not is_append_only and not primary_key:
        raise ValueError(
            f"{label}: mode='streaming' needs the schema to declare the table's "
            "primary key (pw.column_definition(primary_key=True)) so updates and "
            "deletes find their rows, or is_append_only=True"
        )
    schema_name = schema_name or "public"
    connector = f"pw.io.postgres.read({schema_name}.{table_name})"
    target = Target(
        connector=connector,
        settings={k: str(v) for k, v in postgres_settings.items()},
        schema_name=schema_name,
        table_name=table_name,
        columns=columns,
        primary_key=primary_key,
        publication=publication_name,
        append_only=is_append_only,
        identity=name or connector,
    )
    reader_class = CdcReader if streaming else StaticReader
    table = reader_table(
        schema=checked,
        reader_factory=lambda: reader_class(target),
        parser=TextRowsParser(columns, primary_key),
        name=name or connector,
        autocommit_duration_ms=autocommit,
        max_backlog_size=backlog,
        keep_row_state=streaming and bool(primary_key),
        named=name is not None,
    )
    # Table.is_append_only, as in Pathway: a static read or a table declared append-only.
    table._node.source.append_only = not streaming or is_append_only
    return table


def _readable(dtype: t.DType) -> bool:
    base = dtype.strip_optional()
    if isinstance(base, t.List):
        return _readable(base.arg)
    if isinstance(base, t.Tuple):
        return bool(base.args) and all(_readable(a) for a in base.args)
    if isinstance(base, t.Array):
        return True
    return base.name in _SUPPORTED
