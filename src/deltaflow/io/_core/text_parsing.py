"""Parsers of records taken whole or line by line: plaintext, binary, only metadata."""

from __future__ import annotations

import polars as pl

from deltaflow import _types as t
from deltaflow.io._core.base import ParsedBlock, Parser, ReaderContext
from deltaflow.io._core.parsing import METADATA_COLUMN, decode_text, records_of


class PlaintextParser(Parser):
    """One row per line, in a ``data: str`` column."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, _, _ = records_of(context)
        parts = []
        for record in records:
            text = decode_text(record)
            lines = pl.Series("data", [text]).str.split("\n").explode()
            if text.endswith("\n"):
                lines = lines.head(lines.len() - 1)
            parts.append(lines.str.strip_suffix("\r"))
        data = pl.concat(parts) if parts else pl.Series("data", [], dtype=pl.String)
        return ParsedBlock(pl.DataFrame({"data": data}))


class PlaintextByFileParser(Parser):
    """One row per record (a whole file or object), in a ``data: str`` column."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, _, _ = records_of(context)
        return ParsedBlock(pl.DataFrame({"data": pl.Series([decode_text(r) for r in records],
                                                           dtype=pl.String)}))


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

