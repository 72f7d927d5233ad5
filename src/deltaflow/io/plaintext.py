"""Text files, one row per line: ``pw.io.plaintext.read`` (a ``data: str`` column)."""

from __future__ import annotations

import os
from typing import Any, Literal

from deltaflow.error_display import user_call
from deltaflow.io.fs import read_files


@user_call
def read(
    path: str | os.PathLike,
    *,
    mode: Literal["streaming", "static"] = "streaming",
    object_pattern: str = "*",
    with_metadata: bool = False,
    autocommit_duration_ms: int | None = 1500,
    name: str | None = None,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
    **kwargs: Any,
) -> Any:
    """A table with one ``data`` row per line of the files at ``path``.

    Parameters:
        path: a file, a directory (every file in it) or a glob.
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
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
        >>> _ = path.write_text("buy ink\\ncall ann\\n")
        >>> t = pw.io.plaintext.read(path, mode="static")
        >>> pw.debug.compute_and_print(t.select(words=pw.this.data.str.count(" ") + 1),
        ...                            include_id=False)
        words
        2
        2
    """
    return read_files(
        path,
        "plaintext",
        schema=None,
        mode=mode,
        csv_settings=None,
        json_field_paths=None,
        object_pattern=object_pattern,
        with_metadata=with_metadata,
        name=name,
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=max_backlog_size,
        connector="plaintext",
        kwargs=kwargs,
    )
