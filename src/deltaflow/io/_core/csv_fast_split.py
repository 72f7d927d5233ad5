"""The fast path of CSV parsing: Polars reads a whole document in one call.

It is taken only when cheap checks on the text (no quotes, escapes, comments or carriage
returns; the count of delimiters; Polars' own typed reading of the last field) prove that
its result equals what the exact record-by-record reader of
:mod:`~deltaflow.io._core.csv_parsing` would give; otherwise :func:`split_fast` says no and
that reader reports every bad record.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from deltaflow import _types as t
from deltaflow._small_frames import frame_of, series_of_values
from deltaflow.io._core import parsing
from deltaflow.io._core.parsing import ColumnSpec

if TYPE_CHECKING:
    from deltaflow.io._core.csv_parsing import CsvParserSettings

_NATIVE_CSV: dict[t.DType, pl.DataType] = {
    t.INT: pl.Int64(),
    t.FLOAT: pl.Float64(),
    t.BOOL: pl.Boolean(),
}


def _every_line_has(data: bytes, delimiter: str, count: int, line_count: int) -> bool:
    """Whether every line of ``data`` (already read by Polars) holds ``count`` delimiters.

    Polars fills short lines with nulls and accepts a line whose extra fields are empty
    (``1,2,3,`` under a 3-column header), but rejects other long lines. So when no line ends
    with a delimiter there is no long line, and the file-wide count of delimiters then proves
    that no line is short either (one short and one long line could otherwise cancel out).
    Counting bytes allocates nothing, unlike a per-line pass.
    """
    if _ends_with_delimiter(data, delimiter):
        return False
    return data.count(delimiter.encode()) == count * line_count


def _ends_with_delimiter(data: bytes, delimiter: str) -> bool:
    """Whether some line of ``data`` ends in a delimiter (an extra, empty last field)."""
    token = delimiter.encode()
    # ``re`` finds a two-byte pattern about three times faster than ``bytes.__contains__``.
    return data.endswith(token) or re.search(re.escape(token) + b"\n", data) is not None


def _last_line_ends_with_delimiter(data: bytes, delimiter: str) -> bool:
    """Whether the last non-empty line of ``data`` ends in a delimiter (no copy made)."""
    end = len(data)
    while end and data[end - 1] == 0x0A:
        end -= 1
    return data.endswith(delimiter.encode(), 0, end)


def split_fast(
    data: bytes, settings: CsvParserSettings, columns: Sequence[ColumnSpec]
) -> tuple[list[str] | None, pl.DataFrame] | None:
    """Polars' reader, when the document cannot hide a malformed row from it.

    Polars rejects lines with more fields than the header; it fills the missing trailing
    fields of shorter lines (and blank lines) with nulls in typed columns but with empty
    strings in text ones. So when the last column is typed and has no null, every line has
    exactly the header's fields; otherwise counting the delimiters proves it (an empty
    value and a missing field look alike). Every line must become a row.
    """
    s = settings
    if s.escape is not None or s.comment_character is not None:
        return None
    if s.enable_quoting and s.quote.encode() in data:
        return None  # quoted fields may hide delimiters/newlines: count them exactly
    if b"\r" in data:
        return None
    if not data or data.isspace():  # (``isspace`` stops at the first other byte)
        return None, pl.DataFrame()
    end = data.find(b"\n")
    header = (data if end < 0 else data[:end]).decode("utf-8", errors="replace").split(s.delimiter)
    if len(header) == 1 and b"\n\n" in data:
        return None  # a blank line could be an empty value: the slow path skips it
    if len(set(header)) != len(header):
        return None  # Polars renames repeated names: the exact reader reports them
    if len(data) <= parsing.SMALL_DOCUMENT_BYTES:  # (read here: tests change it)
        small = _split_small(data, header, columns, s.delimiter)
        if small is not None:
            return small
    try:
        frame = _read_typed(data, header, columns, s.delimiter)
        if _last_field_proves_lines(header, columns) and not _last_line_ends_with_delimiter(
            data, s.delimiter
        ):
            # Polars parsed the last field of every line as a required number/bool, so
            # no line is short or blank. An extra empty field after such a field makes
            # Polars fail, except on a last line without a newline: checked here.
            return frame.columns, frame
    except pl.exceptions.PolarsError:
        try:
            frame = pl.read_csv(
                data,
                infer_schema=False,
                separator=s.delimiter,
                quote_char=None,
                has_header=True,
                empty_string_is_null=False,
            )
        except pl.exceptions.PolarsError:
            return None
    line_count = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if frame.height != line_count - 1 or len(set(frame.columns)) != len(frame.columns):
        return None
    if not _every_line_has(data, s.delimiter, len(header) - 1, line_count):
        return None  # short, long or blank lines: the slow path reports them exactly
    return frame.columns, frame


#: The cells :func:`_split_small` converts itself: those whose value Python and Polars'
#: reader read alike. Any other cell leaves the document to Polars.
_PLAIN_CELLS: dict[t.DType, re.Pattern[str]] = {
    t.INT: re.compile(r"-?[0-9]{1,18}"),  # (18 digits: always within 64 bits)
    t.FLOAT: re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?"),
    t.BOOL: re.compile(r"true|false"),
}
_CONVERT: dict[t.DType, Any] = {t.INT: int, t.FLOAT: float, t.BOOL: lambda text: text == "true"}


def _split_small(
    data: bytes, header: list[str], columns: Sequence[ColumnSpec], delimiter: str
) -> tuple[list[str], pl.DataFrame] | None:
    """What :func:`split_fast` gives for a small document, split in Python: every line
    must hold the header's fields, and every cell of a bool/int/float column must be empty
    (optional columns) or plainly written (``_PLAIN_CELLS``); else None, and Polars (or
    the exact reader) takes the document. The caller has checked that no quote, escape,
    comment or carriage return can be in it."""
    if data.startswith(b"\xef\xbb\xbf"):
        return None  # Polars drops a byte-order mark from the first name
    text = data.decode("utf-8")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the document's final newline
    width = len(header)
    rows = [line.split(delimiter) for line in lines[1:]]
    if any(len(row) != width for row in rows):
        return None  # short, long or blank lines: reported by the exact reader
    wanted = {spec.name: spec for spec in columns}
    series: list[pl.Series] = []
    columns_cells = zip(*rows, strict=True) if rows else [()] * width
    for name, cells in zip(header, columns_cells, strict=True):
        spec = wanted.get(name)
        base = spec.dtype.strip_optional() if spec is not None else None
        native = _NATIVE_CSV.get(base) if base is not None else None
        if spec is None or base is None or native is None:
            series.append(series_of_values(name, list(cells), pl.String))
            continue
        plain, convert = _PLAIN_CELLS[base], _CONVERT[base]
        values: list[Any] = []
        for cell in cells:
            if plain.fullmatch(cell):
                values.append(convert(cell))
            elif cell == "" and spec.dtype.is_optional:
                values.append(None)
            else:
                return None
        series.append(series_of_values(name, values, native))
    return list(header), frame_of(series)


def _last_field_proves_lines(header: list[str], columns: Sequence[ColumnSpec]) -> bool:
    """Whether the header's last column is a required bool/int/float of the schema.

    Polars fills a short or blank line's missing fields with nulls, which such a column
    rejects (see :func:`_read_typed`): a typed read that succeeded then saw every field of
    every line, and no delimiter count is needed.
    """
    if len(set(header)) != len(header):
        return False
    spec = next((c for c in columns if c.name == header[-1]), None)
    return (
        spec is not None
        and not spec.dtype.is_optional
        and spec.dtype.strip_optional() in _NATIVE_CSV
    )


def _read_typed(
    data: bytes, header: list[str], columns: Sequence[ColumnSpec], delimiter: str
) -> pl.DataFrame:
    """Let Polars parse the simple types itself (one pass); strings for the rest.

    Raises if a cell does not parse or a required numeric cell is empty, so that the
    caller redoes the document cell by cell and reports exactly what is wrong.
    """
    wanted = {spec.name: spec for spec in columns}
    overrides: dict[str, pl.DataType] = {}
    for name in header:
        spec = wanted.get(name)
        base = spec.dtype.strip_optional() if spec is not None else None
        overrides[name] = _NATIVE_CSV.get(base, pl.String())  # type: ignore[arg-type]
    frame = pl.read_csv(
        data,
        schema_overrides=overrides,
        infer_schema=False,
        separator=delimiter,
        quote_char=None,
        has_header=True,
        empty_string_is_null=False,
    )
    for name, dtype in overrides.items():
        spec = wanted.get(name)
        if (
            dtype != pl.String
            and spec is not None
            and not spec.dtype.is_optional
            and frame[name].null_count()
        ):
            raise pl.exceptions.ComputeError(f"empty cells in required column {name}")
    return frame
