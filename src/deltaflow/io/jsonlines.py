"""JSON lines files: ``pw.io.jsonlines.read`` / ``write`` (``pw.io.fs`` with format ``json``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Literal

from deltaflow.io.fs import read_files, write_file
from deltaflow.schema import Schema


def read(
    path: str | os.PathLike,
    *,
    schema: type[Schema] | None = None,
    mode: Literal["streaming", "static"] = "streaming",
    json_field_paths: dict[str, str] | None = None,
    object_pattern: str = "*",
    with_metadata: bool = False,
    autocommit_duration_ms: int | None = 1500,
    name: str | None = None,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
    **kwargs: Any,
) -> Any:
    """A table read from files of JSON objects, one per line. ``json_field_paths`` maps a
    column to a JSON pointer (``/a/b``) in each object."""
    return read_files(
        path,
        "json",
        schema=schema,
        mode=mode,
        csv_settings=None,
        json_field_paths=json_field_paths,
        object_pattern=object_pattern,
        with_metadata=with_metadata,
        name=name,
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=max_backlog_size,
        connector="jsonlines",
        kwargs=kwargs,
    )


def write(
    table: Any,
    filename: str | os.PathLike,
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Write every change of ``table`` as one JSON object per line, with ``diff`` and
    ``time``."""
    write_file(table, filename, "json", name=name, sort_by=sort_by, connector="jsonlines")
