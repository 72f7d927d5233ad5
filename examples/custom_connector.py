"""A complete connector in under 100 lines (see docs/connectors.md).

``read_log`` tails a growing JSON-lines log file: the Reader only returns new complete lines
and their byte offset; the shared JSON parser, the input session (thread, minibatching,
backpressure, offsets, error reporting) and the table come from the framework. ``write_list``
is the output side: a Writer appending each time's JSON lines to a Python list.
"""

from __future__ import annotations

import os
from typing import Any

from deltaflow.io._core.base import (
    Data,
    Finished,
    OffsetAntichain,
    RawContext,
    Reader,
    ReadEvent,
    Writer,
)
from deltaflow.io._core.formats import JsonLinesFormatter, JsonLinesParser, column_specs
from deltaflow.io._core.output_session import write_table
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_mode,
    check_schema,
    reader_table,
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


def read_log(path: str, *, schema: Any, mode: str = "streaming",
             autocommit_duration_ms: int | None = 100, name: str | None = None) -> Any:
    """A table of the JSON objects appended to the log file at ``path``."""
    label = "read_log"
    check_mode(mode, label)
    checked = check_schema(schema, label)
    autocommit = check_autocommit(autocommit_duration_ms, label)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{label}: no file at {path!r}")
    return reader_table(
        schema=checked, parser=JsonLinesParser(column_specs(checked)),
        reader_factory=lambda: LogTailReader(path, streaming=mode == "streaming"),
        name=name or f"log:{path}", autocommit_duration_ms=autocommit, max_backlog_size=None)


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


def write_list(table: Any, target: list, *, name: str = "list") -> None:
    """Append every change of ``table`` to ``target`` as a JSON line."""
    write_table(table, ListWriter(target), JsonLinesFormatter(table._columns), name=name)
