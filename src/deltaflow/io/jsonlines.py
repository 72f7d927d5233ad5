"""JSON lines files: ``pw.io.jsonlines.read`` / ``write`` (``pw.io.fs`` with format ``json``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Literal

from deltaflow.error_display import user_call
from deltaflow.io.fs import read_files, write_file
from deltaflow.schema import Schema


@user_call
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
    column to a JSON pointer (``/a/b``) in each object.

    Parameters:
        path: a file, a directory (every file in it) or a glob.
        schema: the columns and their types (a header line names the columns).
        json_field_paths: column names mapped to JSON pointers (``/a/b``) of nested values.
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
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "events.jsonl"
        >>> _ = path.write_text('{"user": "ann", "visit": {"page": "/home"}}\\n')
        >>> class Event(pw.Schema):
        ...     user: str
        ...     page: str
        >>> t = pw.io.jsonlines.read(path, schema=Event, mode="static",
        ...                          json_field_paths={"page": "/visit/page"})
        >>> pw.debug.compute_and_print(t, include_id=False)
        user | page
        ann  | /home
    """
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


@user_call
def write(
    table: Any,
    filename: str | os.PathLike,
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Write every change of ``table`` as one JSON object per line, with ``diff`` and
    ``time``.

    Parameters:
        table: the table written.
        filename: the file (created, or replaced when the run starts).
        name: the connector's name in logs and monitoring.
        sort_by: columns ordering the rows of one time.

    Examples:
        >>> import deltaflow as pw, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.jsonl"
        >>> t = pw.debug.table_from_markdown('''
        ... item | qty
        ... pen  | 2
        ... ''')
        >>> pw.io.jsonlines.write(t, path)
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        >>> print(path.read_text(), end="")
        {"item":"pen","qty":2,"diff":1,"time":0}
    """
    write_file(table, filename, "json", name=name, sort_by=sort_by, connector="jsonlines")
