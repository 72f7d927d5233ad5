"""Data formats shared by every connector: parsers (input) and formatters (output).

Parsers turn reader contexts into rows of the table's schema; they work on whole blocks of
records (a file, an object, a batch of messages) so that the common formats run vectorised in
Polars. A parser never raises for a bad record: it skips it and reports where and why in
:attr:`ParsedBlock.errors`. The parsers live in :mod:`~deltaflow.io._core.csv_parsing`,
:mod:`~deltaflow.io._core.json_parsing` and :mod:`~deltaflow.io._core.text_parsing` (shared
pieces in :mod:`~deltaflow.io._core.parsing`); this module names them all and holds the
formatters, which turn a delta batch of one time into bytes (CSV, JSON lines) or Python rows;
every output row carries ``time`` and ``diff`` as Pathway's do.

Value conversions all live in :mod:`deltaflow.io._core.serialization`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID
from deltaflow.io._core.base import BytesFormatter, Formatter, Parser
from deltaflow.io._core.csv_parsing import CsvParser, CsvParserSettings
from deltaflow.io._core.json_parsing import JsonLinesParser, TypedRowsParser
from deltaflow.io._core.parsing import METADATA_COLUMN, ColumnSpec, column_specs
from deltaflow.io._core.serialization import json_ready_column, json_value, text_column
from deltaflow.io._core.text_parsing import (
    BinaryParser,
    OnlyMetadataParser,
    PlaintextByFileParser,
    PlaintextParser,
)

__all__ = [
    "METADATA_COLUMN",
    "BinaryParser",
    "ColumnSpec",
    "CsvFormatter",
    "CsvParser",
    "CsvParserSettings",
    "JsonLinesFormatter",
    "JsonLinesParser",
    "OnlyMetadataParser",
    "PlaintextByFileParser",
    "PlaintextParser",
    "TypedRowsFormatter",
    "TypedRowsParser",
    "column_specs",
    "parser_for_format",
]

# ------------------------------------------------------------------------------------------
# Formatters
# ------------------------------------------------------------------------------------------


_BOOL_LABELS = pl.Series(["False", "True"], dtype=pl.Enum(["False", "True"]))

#: A batch of up to this many rows whose columns are all ints, strings or bools is formatted
#: in Python, to the same bytes: Polars' frame building and writer cost a few hundred
#: microseconds a call, the fixed cost of every small time of a streaming output.
PYTHON_FORMAT_ROWS = 64
_PLAIN_TYPES = (t.INT, t.STR, t.BOOL)


def _plain_columns(columns: Mapping[str, t.DType]) -> bool:
    return all(dtype.strip_optional() in _PLAIN_TYPES for dtype in columns.values())


def _frame_of_height(columns: list[pl.Series], height: int) -> pl.DataFrame:
    """The columns as a frame; without columns, a frame of ``height`` rows and no column (a
    table without columns still writes a time and a diff per row)."""
    if columns:
        return pl.DataFrame(columns)
    return pl.DataFrame({"_": [None] * height}).drop("_")


def _csv_text(value: Any) -> str:
    """A field of a plain column as Polars writes it with ``quote_style="always"``."""
    if value is None:
        return '"None"'
    if value is True or value is False:
        return '"True"' if value else '"False"'
    if type(value) is str:
        return '"' + value.replace('"', '""') + '"'
    return f'"{value}"'


class CsvFormatter(BytesFormatter):
    """Every field double-quoted, then ``time`` and ``diff`` (as Pathway writes CSV)."""

    def __init__(self, columns: Mapping[str, t.DType], delimiter: str = ",") -> None:
        self.columns = dict(columns)
        self.delimiter = delimiter
        self._plain = _plain_columns(self.columns)

    def _python_lines(self, batch: pl.DataFrame, time: int) -> bytes:
        tail = f'"{time}"'
        delimiter = self.delimiter
        columns = [batch.get_column(name).to_list() for name in self.columns]
        lines = [
            delimiter.join([*map(_csv_text, row), tail, f'"{diff}"']) + "\n"
            for row, diff in zip(
                zip(*columns, strict=True) if columns else [()] * batch.height,
                batch.get_column(DIFF).to_list(),
                strict=True,
            )
        ]
        return "".join(lines).encode()

    def header(self) -> bytes:
        names = [*self.columns, "time", "diff"]
        return (
            self.delimiter.join('"' + n.replace('"', '""') + '"' for n in names) + "\n"
        ).encode()

    def format_into(self, batch: pl.DataFrame, time: int, stream: BinaryIO) -> None:
        if batch.height <= PYTHON_FORMAT_ROWS and self._plain:
            stream.write(self._python_lines(batch, time))
            return
        columns = [self._text(batch[name], dtype) for name, dtype in self.columns.items()]
        frame = _frame_of_height(columns, batch.height).with_columns(
            pl.lit(time, dtype=pl.Int64 if time < 2**63 else pl.UInt64).alias("time"),
            batch[DIFF].alias("diff"),
        )
        # Polars already writes ints, strings and most floats as Pathway does; nulls as None.
        # Its writer encodes in parallel and writes as it goes: no copy of the whole text.
        frame.write_csv(
            stream,
            include_header=False,
            quote_style="always",
            separator=self.delimiter,
            null_value="None",
        )

    @staticmethod
    def _text(series: pl.Series, dtype: t.DType) -> pl.Series:
        base = dtype.strip_optional()
        if base in (t.INT, t.STR):
            return series
        if base == t.BOOL:
            # Pathway's True/False as an Enum: 4 bytes a row rather than a string each.
            return _BOOL_LABELS.gather(series.cast(pl.UInt32)).alias(series.name)
        if base == t.FLOAT and not (series.abs() >= 1e15).any():
            return series  # no exponent to rewrite
        return text_column(series, dtype)


_COMPACT: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}


class JsonLinesFormatter(BytesFormatter):
    """One compact JSON object per row: the columns, then ``diff`` and ``time``."""

    def __init__(self, columns: Mapping[str, t.DType]) -> None:
        self.columns = dict(columns)
        self._plain = _plain_columns(self.columns)

    def format_into(self, batch: pl.DataFrame, time: int, stream: BinaryIO) -> None:
        if batch.height <= PYTHON_FORMAT_ROWS and self._plain:
            names = [*self.columns, "diff", "time"]
            columns = [batch.get_column(name).to_list() for name in self.columns]
            diffs = batch.get_column(DIFF).to_list()
            rows = zip(*columns, diffs, [time] * batch.height, strict=True)
            stream.write(
                "".join(
                    json.dumps(dict(zip(names, row, strict=True)), **_COMPACT) + "\n"
                    for row in rows
                ).encode()
            )
            return
        ready = {
            name: json_ready_column(batch[name], dtype) for name, dtype in self.columns.items()
        }
        series = [v for v in ready.values() if isinstance(v, pl.Series)]
        if len(series) == len(ready):
            frame = _frame_of_height(series, batch.height).with_columns(
                batch[DIFF].alias("diff"),
                pl.lit(time, dtype=pl.Int64 if time < 2**63 else pl.UInt64).alias("time"),
            )
            frame.write_ndjson(stream)
            return
        names = list(ready)
        columns = [v.to_list() if isinstance(v, pl.Series) else v for v in ready.values()]
        diffs = batch[DIFF].to_list()
        out = io.StringIO()
        for index, diff in enumerate(diffs):
            row = {n: json_value(c[index]) for n, c in zip(names, columns, strict=True)}
            row["diff"] = diff
            row["time"] = time
            out.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False))
            out.write("\n")
        stream.write(out.getvalue().encode())


class TypedRowsFormatter(Formatter):
    """Python rows: ``(key, {column: value}, time, diff)``, in the order of the batch."""

    def __init__(self, columns: Mapping[str, t.DType]) -> None:
        self.columns = dict(columns)

    def format(
        self, batch: pl.DataFrame, time: int
    ) -> list[tuple[t.Pointer, dict[str, Any], int, int]]:
        keys = t.values_from_series(batch[ID])
        rows = t.row_dicts(batch, list(self.columns))
        diffs = batch[DIFF].to_list()
        return [(key, row, time, diff) for key, row, diff in zip(keys, rows, diffs, strict=True)]


def parser_for_format(
    fmt: str,
    columns: Sequence[ColumnSpec],
    *,
    csv_settings: CsvParserSettings | None = None,
    json_field_paths: Mapping[str, str] | None = None,
) -> Parser:
    """The parser of one of the standard formats (names as in ``pw.io.fs.read``)."""
    if fmt == "csv":
        return CsvParser(columns, csv_settings)
    if fmt in ("json", "jsonlines"):
        return JsonLinesParser(columns, json_field_paths)
    if fmt == "plaintext":
        return PlaintextParser()
    if fmt in ("plaintext_by_file", "plaintext_by_object"):
        return PlaintextByFileParser()
    if fmt == "binary":
        return BinaryParser()
    if fmt == "only_metadata":
        return OnlyMetadataParser()
    raise ValueError(f"unknown format {fmt!r}")
