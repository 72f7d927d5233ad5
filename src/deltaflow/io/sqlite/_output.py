"""``pw.io.sqlite.write``: the checks made when the pipeline is defined (table and column
names, modes, primary key), then the output registered with the writer of
:mod:`._writer`.
"""

from __future__ import annotations

import sqlite3
from os import PathLike
from typing import Any, Literal

from deltaflow.error_display import user_call
from deltaflow.io._core.arguments import check_key_columns
from deltaflow.io._core.retry import policy_for
from deltaflow.io.sqlite._database import _check_path, quote
from deltaflow.io.sqlite._type_table import _check_mappable
from deltaflow.io.sqlite._writer import (
    SqliteFormatter,
    SqliteWriter,
    _SqliteOutputSession,
    _WriteSpec,
)


def _column_name(connector: str, table: Any, column: Any) -> str:
    from deltaflow.expressions.base import ColumnReference

    if isinstance(column, ColumnReference):
        owner = column.table
        if owner is not table and owner.__class__.__name__ == "Table":
            raise ValueError(
                f"{connector}: primary_key column {column.name!r} belongs to "
                "another table; use columns of the table being written"
            )
        name = column.name
    elif isinstance(column, str):
        name = column
    else:
        raise TypeError(
            f"{connector}: primary_key must be a list of columns (e.g. "
            f"[table.key]), got an item of type {type(column).__name__}"
        )
    if name == "id":
        raise ValueError(
            f"{connector}: the row id is not written; primary_key must name written columns"
        )
    if name not in table._columns:
        raise ValueError(
            f"{connector}: primary_key column {name!r} is not a column of the "
            f"table; its columns are {list(table._columns)}"
        )
    return name


@user_call
def write(
    table: Any,
    path: PathLike | str,
    table_name: str,
    *,
    max_batch_size: int | None = None,
    init_mode: Literal["default", "create_if_not_exists", "replace"] = "default",
    output_table_type: Literal["stream_of_changes", "snapshot"] = "stream_of_changes",
    primary_key: list[Any] | None = None,
    name: str | None = None,
) -> None:
    """Write ``table`` to the table ``table_name`` of the SQLite database at ``path``.

    ``output_table_type="stream_of_changes"`` appends every change as a row with two extra
    INTEGER columns: ``time`` (the minibatch time) and ``diff`` (1 insertion, -1 deletion).
    ``"snapshot"`` keeps the destination equal to the table's current contents: rows are
    upserted on ``primary_key`` (required in this mode, rejected otherwise) and deleted when
    retracted, each minibatch in one transaction.

    ``init_mode``: ``"default"`` writes to an existing table whose columns must fit;
    ``"create_if_not_exists"`` creates the table from the schema when missing (with a PRIMARY
    KEY in snapshot mode); ``"replace"`` drops and re-creates it when the run starts.
    ``max_batch_size`` bounds the rows per transaction (see :class:`SqliteWriter` for how
    snapshot mode stays atomic). Value encodings are those of :data:`TYPE_MAPPING`. The file is
    created if missing and switched to WAL journaling so readers never block the writer.

    Parameters:
        table: the table written.
        path: the database file (created if missing).
        table_name: the destination table.
        max_batch_size: the most rows written in one transaction.
        init_mode: ``default``, ``create_if_not_exists`` or ``replace``.
        output_table_type: ``stream_of_changes`` (rows with ``time`` and ``diff``) or ``snapshot``.
        primary_key: the columns rows are upserted on (snapshot mode).
        name: the connector's name in logs and monitoring.

    Examples:
        >>> import deltaflow as pw, pathlib, sqlite3, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "shop.db"
        >>> t = pw.debug.table_from_markdown('''
        ... item | qty
        ... pen  | 2
        ... ink  | 6
        ... ''')
        >>> pw.io.sqlite.write(t, path, "stock", init_mode="create_if_not_exists",
        ...                    output_table_type="snapshot", primary_key=[t.item])
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        >>> with sqlite3.connect(path) as db:
        ...     db.execute("SELECT item, qty FROM stock ORDER BY item").fetchall()
        [('ink', 6), ('pen', 2)]
    """
    from deltaflow.table import Table, add_output

    connector = (
        f"pw.io.sqlite.write({table_name!r})"
        if isinstance(table_name, str)
        else "pw.io.sqlite.write"
    )
    if not isinstance(table, Table):
        raise TypeError(f"{connector}: table must be a deltaflow Table, got {type(table).__name__}")
    if not isinstance(table_name, str) or not table_name:
        raise ValueError(f"{connector}: table_name must be a non-empty string, got {table_name!r}")
    quote(table_name)
    path_str = _check_path(connector, path, must_exist=False)
    if init_mode not in ("default", "create_if_not_exists", "replace"):
        raise ValueError(
            f"{connector}: init_mode must be 'default', 'create_if_not_exists' "
            f"or 'replace', got {init_mode!r}"
        )
    if output_table_type not in ("stream_of_changes", "snapshot"):
        raise ValueError(
            f"{connector}: output_table_type must be 'stream_of_changes' or "
            f"'snapshot', got {output_table_type!r}"
        )
    if max_batch_size is not None and (
        not isinstance(max_batch_size, int)
        or isinstance(max_batch_size, bool)
        or max_batch_size < 1
    ):
        raise ValueError(
            f"{connector}: max_batch_size must be a positive integer or None, "
            f"got {max_batch_size!r}"
        )
    columns = dict(table._columns)
    _check_mappable(connector, columns)
    for column in columns:
        quote(column)
    by_case: dict[str, list[str]] = {}
    for column in columns:
        by_case.setdefault(column.lower(), []).append(column)
    clashes = [names for names in by_case.values() if len(names) > 1]
    if clashes:
        raise ValueError(
            f"{connector}: column names {clashes} differ only in case; SQLite "
            "compares names case-insensitively, so rename them"
        )
    snapshot = output_table_type == "snapshot"
    keys: list[str] = []
    if snapshot:
        if not primary_key:
            raise ValueError(
                f"{connector}: output_table_type='snapshot' requires primary_key "
                "(the columns identifying a row, e.g. primary_key=[table.key])"
            )
        if not isinstance(primary_key, list | tuple):
            primary_key = [primary_key]
        keys = [_column_name(connector, table, c) for c in primary_key]
        check_key_columns(
            connector, keys, columns, " (DELETE ... WHERE key = NULL matches nothing)"
        )
    else:
        if primary_key is not None:
            raise ValueError(
                f"{connector}: primary_key is only used with output_table_type="
                "'snapshot'; remove it for 'stream_of_changes'"
            )
        reserved = [c for c in columns if c.lower() in ("time", "diff")]
        if reserved:
            raise ValueError(
                f"{connector}: column(s) {reserved} clash with the 'time' and "
                "'diff' columns added in stream_of_changes mode; rename them or "
                "use output_table_type='snapshot'"
            )
    if snapshot and sqlite3.sqlite_version_info < (3, 24, 0):
        raise RuntimeError(
            f"{connector}: snapshot mode needs SQLite 3.24 or newer (upserts); "
            f"this Python has SQLite {sqlite3.sqlite_version}"
        )
    spec = _WriteSpec(
        path=path_str,
        table_name=table_name,
        columns=columns,
        snapshot=snapshot,
        primary_key=keys,
        init_mode=init_mode,
        max_batch_size=max_batch_size,
        connector=connector,
        retry=policy_for("sqlite", connector),
    )
    session = _SqliteOutputSession(
        name or connector, SqliteWriter(spec), SqliteFormatter(spec), named=name is not None
    )
    add_output(table, session)
