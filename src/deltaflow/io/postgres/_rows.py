"""Rows of a PostgreSQL table in text form (as the server prints values) -> typed rows: the
parser of ``pw.io.postgres.read``, shared by the snapshot and the change stream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.io._core.base import ParsedBlock, ParseError, Parser, ReaderContext
from deltaflow.io.postgres._decode import BadValue, Decoder, decode_fast
from deltaflow.io.postgres._pgoutput import UNCHANGED


@dataclass
class TextRowsContext(ReaderContext):
    """Rows as PostgreSQL prints their values (text or None), in the schema's column order.

    ``kinds`` per row: ``upsert``/``insert``, ``delete`` (only key columns are known when
    ``key_only``), ``truncate``. ``decoders`` are the column decoders of the current table
    layout."""

    rows: list[tuple[Any, ...]]
    kinds: list[str]
    key_only: list[bool]
    decoders: Sequence[Decoder]
    where: str = "row"


class TextRowsParser(Parser):
    """Decodes :class:`TextRowsContext` rows. A row with a value that does not fit the schema
    is reported and skipped; if it was an upsert, its key is deleted instead, so that the
    pipeline never keeps a version of the row the source no longer holds."""

    def __init__(self, columns: Mapping[str, t.DType], primary_key: Sequence[str]) -> None:
        self.columns = dict(columns)
        self.key_positions = [list(columns).index(k) for k in primary_key]

    def parse(self, context: ReaderContext) -> ParsedBlock:
        assert isinstance(context, TextRowsContext)
        rows, kinds, key_only = context.rows, list(context.kinds), context.key_only
        count = len(rows)
        problems: dict[int, str] = {}
        columns: list[list[Any] | pl.Series] = []
        for position, (name, dtype) in enumerate(self.columns.items()):
            decode = context.decoders[position]
            texts = [row[position] for row in rows]
            fast = decode_fast(name, texts, decode, dtype)
            if fast is not None:
                if not dtype.is_optional and fast.null_count():
                    self._null_problems(fast, name, dtype, position, kinds, key_only, problems)
                columns.append(fast)
                continue
            columns.append(
                self._decode_slowly(texts, name, dtype, position, decode, kinds, key_only, problems)
            )
        errors: list[ParseError] = []
        keep = list(range(count))
        if problems:
            keep = []
            for index in range(count):
                reason = problems.get(index)
                if reason is None:
                    keep.append(index)
                    continue
                key = tuple(rows[index][p] for p in self.key_positions)
                key_ok = self.key_positions and all(
                    p not in _problem_columns(reason, self.columns) for p in self.key_positions
                )
                if kinds[index] == "upsert" and key_ok:
                    kinds[index] = "delete"  # drop the row's earlier version, if any
                    keep.append(index)
                    reason += "; the row is removed from the table until a valid version comes"
                where = f"{context.where} key {key}" if self.key_positions else context.where
                errors.append(ParseError(where, reason))
        series = []
        kept_mask = None
        if problems:
            kept_set = set(keep)
            kept_mask = pl.Series([i in kept_set for i in range(count)], dtype=pl.Boolean)
        for (name, dtype), values in zip(self.columns.items(), columns, strict=True):
            if isinstance(values, pl.Series):
                series.append(values.filter(kept_mask) if kept_mask is not None else values)
                continue
            kept = [values[i] for i in keep] if problems else values
            series.append(t.series_from_values(name, kept, dtype))
        frame = pl.DataFrame(series).with_columns(
            pl.Series("_kind", [kinds[i] for i in keep], dtype=pl.String)
        )
        return ParsedBlock(frame, kind="column", errors=errors)

    def _null_problems(
        self,
        column: pl.Series,
        name: str,
        dtype: t.DType,
        position: int,
        kinds: list[str],
        key_only: list[bool],
        problems: dict[int, str],
    ) -> None:
        is_key = position in self.key_positions
        for index in column.is_null().arg_true().to_list():
            if kinds[index] != "truncate" and (is_key or not key_only[index]):
                problems.setdefault(
                    index, f"NULL in column {name!r}, whose type {dtype!r} is not Optional"
                )

    def _decode_slowly(
        self,
        texts: list[Any],
        name: str,
        dtype: t.DType,
        position: int,
        decode: Decoder,
        kinds: list[str],
        key_only: list[bool],
        problems: dict[int, str],
    ) -> list[Any]:
        """Value by value, each failure with its reason."""
        optional = dtype.is_optional
        is_key = position in self.key_positions
        values: list[Any] = [None] * len(texts)
        for index, text in enumerate(texts):
            if text is None:
                if not optional and kinds[index] != "truncate" and (is_key or not key_only[index]):
                    problems.setdefault(
                        index, f"NULL in column {name!r}, whose type {dtype!r} is not Optional"
                    )
                continue
            if text is UNCHANGED:
                problems.setdefault(
                    index,
                    f"column {name!r} holds a large (TOASTed) "
                    "value the UPDATE left unchanged, which "
                    "PostgreSQL does not send with REPLICA "
                    "IDENTITY DEFAULT; set REPLICA IDENTITY FULL",
                )
                continue
            try:
                values[index] = decode(text)
            except (BadValue, ValueError, TypeError, OverflowError) as exc:
                problems.setdefault(
                    index, f"column {name!r}: {text[:80]!r} does not fit {dtype!r} ({exc})"
                )
        return values


def _problem_columns(reason: str, columns: Mapping[str, t.DType]) -> set[int]:
    """Positions of the columns a problem message names (to know if the key decoded)."""
    return {i for i, name in enumerate(columns) if f"column {name!r}" in reason}
