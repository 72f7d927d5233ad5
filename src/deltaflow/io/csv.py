"""CSV files: ``pw.io.csv.read`` / ``pw.io.csv.write`` (``pw.io.fs`` with format ``csv``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Literal

from deltaflow.io._core.formats import CsvParserSettings
from deltaflow.io.fs import read_files, write_file
from deltaflow.schema import Schema


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
    columns. Rows that do not fit ``schema`` are reported and skipped."""
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


def write(
    table: Any,
    filename: str | os.PathLike,
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Write every change of ``table`` to a CSV file with ``time`` and ``diff`` columns."""
    write_file(table, filename, "csv", name=name, sort_by=sort_by, connector="csv")
