"""Parsers of records taken whole or line by line: plaintext, binary, only metadata."""

from __future__ import annotations

import polars as pl

from deltaflow import _types as t
from deltaflow.io._core.base import ParsedBlock, ParseError, Parser, RawContext, ReaderContext
from deltaflow.io._core.parsing import (
    METADATA_COLUMN,
    as_bytes,
    decode_lines,
    invalid_utf8_reason,
    is_utf8,
    records_of,
    where_label,
)


class PlaintextParser(Parser):
    """One row per line, in a ``data: str`` column, without the whitespace at its ends (as
    Pathway reads it: ``"  y \r"`` is ``"y"``).

    A line that is not valid UTF-8 is reported and skipped (as Pathway does), never read
    with replacement characters.
    """

    def __init__(self) -> None:
        self._next_line = 1  # where the next piece of a document starts (RawContext)

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, metadata, first_line = records_of(context)
        line = (
            self._next_line if isinstance(context, RawContext) and context.continues else first_line
        )
        parts = []
        errors: list[ParseError] = []
        for record in records:
            data = as_bytes(record)
            if not data and isinstance(context, RawContext):
                continue  # an empty file has no line (an empty message is one, though)
            if is_utf8(data):
                text = data.decode("utf-8")
                lines = pl.Series("data", [text]).str.split("\n").explode()
                if text.endswith("\n"):
                    lines = lines.head(lines.len() - 1)
                line += lines.len()
            else:  # rare: line by line, to report each undecodable line
                good: list[str] = []
                decoded = decode_lines(data)
                if data.endswith(b"\n"):
                    decoded.pop()
                for text_line, reason in decoded:
                    if text_line is None:
                        errors.append(
                            ParseError(
                                where_label(metadata, line, "plaintext"), f"the line is {reason}"
                            )
                        )
                    else:
                        good.append(text_line)
                    line += 1
                lines = pl.Series("data", good, dtype=pl.String)
            parts.append(lines.str.strip_chars())
        self._next_line = line
        data_column = pl.concat(parts) if parts else pl.Series("data", [], dtype=pl.String)
        return ParsedBlock(pl.DataFrame({"data": data_column}), errors=errors)


class PlaintextByFileParser(Parser):
    """One row per record (a whole file or object), in a ``data: str`` column without the
    whitespace at its ends (a file's final newline included), as Pathway reads it; a record
    that is not valid UTF-8 is reported and skipped, as in Pathway."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, metadata, _ = records_of(context)
        texts: list[str] = []
        errors: list[ParseError] = []
        for record in records:
            data = as_bytes(record)
            try:
                texts.append(data.decode("utf-8"))
            except UnicodeDecodeError as exc:
                errors.append(
                    ParseError(
                        where_label(metadata, None, "plaintext"),
                        f"the contents are {invalid_utf8_reason(exc)}",
                    )
                )
        stripped = pl.Series("data", texts, dtype=pl.String).str.strip_chars()
        return ParsedBlock(pl.DataFrame({"data": stripped}), errors=errors)


class BinaryParser(Parser):
    """One row per record, in a ``data: bytes`` column."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, _, _ = records_of(context)
        data = [r if isinstance(r, bytes) else str(r).encode() for r in records]
        return ParsedBlock(pl.DataFrame({"data": pl.Series(data, dtype=pl.Binary)}))


class OnlyMetadataParser(Parser):
    """One row per record with only its ``_metadata`` (the contents are not looked at)."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, metadata, _ = records_of(context)
        values = [t.Json(dict(metadata or {}))] * len(records)
        return ParsedBlock(pl.DataFrame({METADATA_COLUMN: pl.Series(values, dtype=pl.Object)}))
