"""CSV files: ``pw.io.csv.read`` / ``pw.io.csv.write`` (``pw.io.fs`` with format ``csv``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Literal

from deltaflow.error_display import user_call
from deltaflow.io._core.formats import CsvParserSettings
from deltaflow.io.fs import read_files, write_file
from deltaflow.schema import Schema


@user_call
def read(
    path: str | os.PathLike,
    *,
    schema: type[Schema] | None = None,
    csv_settings: CsvParserSettings | None = None,
    mode: Literal["streaming", "static"] = "streaming",
    object_pattern: str = "*",
    with_metadata: bool = False,
    autocommit_duration_ms: int | None = 1500,
    name: str | None = None,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
    **kwargs: Any,
) -> Any:
    """A table read from CSV files (a file, a directory or a glob); a header line names the
    columns. Rows that do not fit ``schema`` are reported and skipped.

    Parameters:
        path: a file, a directory (every file in it) or a glob.
        schema: the columns and their types (a header line names the columns).
        csv_settings: ``pw.io.CsvParserSettings``: delimiter, quoting, escaping ...
        mode: ``streaming`` (default: new and changed files keep coming) or ``static`` (read once,
            then the input ends).
        object_pattern: a glob the names of the files in a directory must match.
        with_metadata: add a ``_metadata`` Json column (path, size, modification time ...).
        autocommit_duration_ms: how long rows may wait before they are committed to the pipeline.
        name: the connector's name in logs, monitoring and persistence.
        max_backlog_size: pause reading while this many rows wait in the pipeline.
        debug_data: accepted for compatibility, ignored.

    Examples:
        >>> import deltaflow as pw, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "stock.csv"
        >>> _ = path.write_text("item,qty\\npen,2\\nink,6\\n")
        >>> class Stock(pw.Schema):
        ...     item: str
        ...     qty: int
        >>> t = pw.io.csv.read(path, schema=Stock, mode="static")
        >>> pw.debug.compute_and_print(t, include_id=False)
        item | qty
        ink  | 6
        pen  | 2
    """
    return read_files(
        path,
        "csv",
        schema=schema,
        mode=mode,
        csv_settings=csv_settings,
        json_field_paths=None,
        object_pattern=object_pattern,
        with_metadata=with_metadata,
        name=name,
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=max_backlog_size,
        connector="csv",
        kwargs=kwargs,
    )


@user_call
def write(
    table: Any,
    filename: str | os.PathLike,
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Write every change of ``table`` to a CSV file with ``time`` and ``diff`` columns.

    Parameters:
        table: the table written.
        filename: the file (created, or replaced when the run starts).
        name: the connector's name in logs and monitoring.
        sort_by: columns ordering the rows of one time.

    Examples:
        >>> import deltaflow as pw, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
        >>> t = pw.debug.table_from_markdown('''
        ... item | qty
        ... pen  | 2
        ... ''')
        >>> pw.io.csv.write(t, path)
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        >>> print(path.read_text(), end="")
        "item","qty","time","diff"
        "pen","2","0","1"
    """
    write_file(table, filename, "csv", name=name, sort_by=sort_by, connector="csv")
