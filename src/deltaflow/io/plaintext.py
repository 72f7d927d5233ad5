"""Text files, one row per line: ``pw.io.plaintext.read`` (a ``data: str`` column)."""

from __future__ import annotations

import os
from typing import Any, Literal

from deltaflow.io.fs import read_files


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
    """A table with one ``data`` row per line of the files at ``path``."""
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
