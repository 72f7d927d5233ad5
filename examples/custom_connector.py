"""A connector implementing the full Reader/Writer contract (see docs/connectors.md; the
one-method forms of docs/custom_connectors.md are shorter when polling is enough).

``read_log`` tails a growing JSON-lines log file: the Reader only returns new complete lines
and their byte offset; the argument checks, the shared JSON parser, the input session
(thread, minibatching, backpressure, offsets, error reporting) and the table come from the
framework. ``write_list`` is the output side: a Writer appending each time's JSON lines to a
Python list.
"""

from __future__ import annotations

import os
from typing import Any

from deltaflow.io.connector import (
    Data,
    Finished,
    JsonLinesFormatter,
    JsonLinesParser,
    OffsetAntichain,
    RawContext,
    Reader,
    ReadEvent,
    Writer,
    check_read_options,
    check_write_options,
    column_specs,
    input_table,
    output_table,
)


class LogTailReader(Reader):
    """New complete lines of ``path``; the offset is the byte position after them."""

    poll_interval_s = 0.02

    def __init__(self, path: str, streaming: bool) -> None:
        self.path = path
        self.streaming = streaming
        self.position = 0  # bytes consumed so far
        self.line = 1  # number of the next line, for error messages

    def seek(self, frontier: OffsetAntichain) -> None:
        self.position = frontier.get(self.path, 0)

    def read(self) -> ReadEvent | None:
        with open(self.path, "rb") as handle:
            handle.seek(self.position)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # only complete lines; the rest is still being written
        if end == 0:
            return None if self.streaming else Finished()
        self.position += end
        first, self.line = self.line, self.line + chunk.count(b"\n", 0, end)
        context = RawContext([chunk[:end]], {"path": self.path}, first_line=first)
        return Data(context, offset=(self.path, self.position))


def read_log(
    path: str, *, schema: Any, autocommit_duration_ms: int | None = 100, **options: Any
) -> Any:
    """A table of the JSON objects appended to the log file at ``path``; ``options`` are the
    common reader arguments (``mode``, ``name``, ``max_backlog_size`` ...)."""
    checked = check_read_options(
        "read_log",
        default_name=f"log:{path}",
        schema=schema,
        autocommit_duration_ms=autocommit_duration_ms,
        **options,
    )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_log: no file at {path!r}")
    return input_table(
        checked,
        lambda: LogTailReader(path, streaming=checked.streaming),
        JsonLinesParser(column_specs(checked.schema)),
    )


class ListWriter(Writer):
    """Keeps each time's payload; ``flush`` marks the time as complete."""

    def __init__(self, target: list) -> None:
        self.target = target
        self.pending: list[bytes] = []

    def write(self, payload: bytes) -> None:
        self.pending.append(payload)

    def flush(self, time: int) -> None:
        self.target.extend(b"".join(self.pending).decode().splitlines())
        self.pending.clear()


def write_list(table: Any, target: list, **options: Any) -> None:
    """Append every change of ``table`` to ``target`` as a JSON line (``options``: ``name``,
    ``sort_by``)."""
    checked = check_write_options("write_list", table, default_name="list", **options)
    output_table(checked, ListWriter(target), JsonLinesFormatter(checked.columns))
