"""CSV parsing (``format="csv"``): Polars reads a document in one call when cheap checks on
the text prove it equal to the exact reader's result; otherwise Python's ``csv`` module reads
it record by record and every bad record is reported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.io._core.base import ParsedBlock, ParseError, Parser, RawContext, ReaderContext
from deltaflow.io._core.parsing import (
    CellErrors,
    ColumnSpec,
    as_bytes,
    decode_text,
    empty_frame,
    error_line,
    missing_value,
    records_of,
    where_label,
)
from deltaflow.io._core.serialization import parse_text_column


class CsvParserSettings:
    """How CSV text is split into fields (``pw.io.CsvParserSettings``).

    ``escape`` is a character escaping the next one inside quotes; with
    ``enable_double_quote_escapes`` a doubled quote inside quotes is a literal quote; with
    ``enable_quoting=False`` quotes are ordinary characters; lines starting with
    ``comment_character`` are skipped.
    """

    def __init__(self, delimiter: str = ",", quote: str = '"', escape: str | None = None,
                 enable_double_quote_escapes: bool = True, enable_quoting: bool = True,
                 comment_character: str | None = None) -> None:
        for label, value in (("delimiter", delimiter), ("quote", quote), ("escape", escape),
                             ("comment_character", comment_character)):
            if value is not None and (not isinstance(value, str) or len(value) != 1):
                raise ValueError(f"CsvParserSettings: {label} must be a single character, "
                                 f"got {value!r}")
        if delimiter == quote:
            raise ValueError("CsvParserSettings: delimiter and quote must differ")
        self.delimiter = delimiter
        self.quote = quote
        self.escape = escape
        self.enable_double_quote_escapes = enable_double_quote_escapes
        self.enable_quoting = enable_quoting
        self.comment_character = comment_character

    def __repr__(self) -> str:
        return (f"CsvParserSettings(delimiter={self.delimiter!r}, quote={self.quote!r}, "
                f"escape={self.escape!r})")



_NATIVE_CSV: dict[t.DType, pl.DataType] = {t.INT: pl.Int64(), t.FLOAT: pl.Float64(),
                                           t.BOOL: pl.Boolean()}


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



class CsvParser(Parser):
    """Each record is a CSV document whose first line is the header.

    Columns are matched by name; extra columns are ignored, missing ones take the schema's
    default (or None if optional). Rows with a wrong number of fields or a value that does
    not parse are skipped and reported.
    """

    def __init__(self, columns: Sequence[ColumnSpec],
                 settings: CsvParserSettings | None = None) -> None:
        self.columns = list(columns)
        self.settings = settings or CsvParserSettings()
        # The document being read in pieces (see _parse_piece).
        self._header: bytes | None = None
        self._line = 1
        self._waiting = b""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        if isinstance(context, RawContext) and (context.continues or context.continued):
            return self._parse_piece(context)
        records, metadata, first_line = records_of(context)
        frames: list[pl.DataFrame] = []
        errors: list[ParseError] = []
        for record in records:
            frame, record_errors, _ = self._parse_document(record, metadata, first_line)
            frames.append(frame)
            # Reported in line order whichever check found them (field count, value, missing).
            errors.extend(sorted(record_errors, key=error_line))
        frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else \
            frames[0] if frames else empty_frame(self.columns)
        return ParsedBlock(frame, errors=errors)

    def _parse_piece(self, context: RawContext) -> ParsedBlock:
        """One piece of a document read in pieces of whole lines (see :class:`RawContext`).

        The first piece holds the header, which is put back in front of every later piece.
        A piece is parsed when its end cannot be inside a quoted field (its quotes pair up);
        otherwise it waits, joined to the next one, as does everything when escapes or
        comments must be read from the start of the document.
        """
        data = as_bytes(context.records[0]) if context.records else b""
        if not context.continues:
            self._header = None
            self._line = context.first_line  # the header's line number for the next piece
            self._waiting = b""
        if self._waiting:
            data, self._waiting = self._waiting + data, b""
        s = self.settings
        if context.continued:
            whole_document = s.escape is not None or s.comment_character is not None \
                or (self._header is None and not data.split(b"\n", 1)[0].strip())
            quote = s.quote.encode()
            if whole_document or (s.enable_quoting and quote in data and data.count(quote) % 2) \
                    or (self._header is None and b"\n" not in data):
                self._waiting = data
                return ParsedBlock(empty_frame(self.columns))
        first = self._header is None
        if self._header is None:
            self._header = data[:data.find(b"\n") + 1] if b"\n" in data else data
            document = data
        else:
            document = self._header + data
        frame, errors, lines = self._parse_document(document, context.metadata, self._line)
        # Counted only where the exact reader ran (it skips blank lines without a row).
        self._line += lines if lines is not None else data.count(b"\n") - first
        return ParsedBlock(frame, errors=sorted(errors, key=error_line))

    def _parse_document(self, record: Any, metadata: Mapping[str, Any] | None,
                        first_line: int) -> tuple[pl.DataFrame, list[ParseError], int | None]:
        """The rows of one document whose header is on line ``first_line``, its errors, and
        its number of data lines when known without counting (every line became a row)."""
        data = as_bytes(record)
        fast = self._split_fast(data)
        if fast is not None:
            header, cells = fast
            # Row i is line i + 1 of the document (after the header): numbered on demand.
            lines: pl.Series | int = first_line
            errors: list[ParseError] = []
            known: int | None = cells.height if header is not None else None
        else:
            header, cells, lines, errors = self._split_slow(decode_text(record), metadata, first_line)
            known = None
        if header is None:
            return empty_frame(self.columns), errors, known
        frame, errors = self._convert(header, cells, lines, metadata, errors)
        return frame, errors, known

    def _split_fast(self, data: bytes) -> tuple[list[str] | None, pl.DataFrame] | None:
        """Polars' reader, when the document cannot hide a malformed row from it.

        Polars rejects lines with more fields than the header; it fills the missing trailing
        fields of shorter lines (and blank lines) with nulls in typed columns but with empty
        strings in text ones. So when the last column is typed and has no null, every line has
        exactly the header's fields; otherwise counting the delimiters proves it (an empty
        value and a missing field look alike). Every line must become a row.
        """
        s = self.settings
        if s.escape is not None or s.comment_character is not None:
            return None
        if s.enable_quoting and s.quote.encode() in data:
            return None  # quoted fields may hide delimiters/newlines: count them exactly
        if b"\r" in data:
            return None
        if not data or data.isspace():  # (``isspace`` stops at the first other byte)
            return None, pl.DataFrame()
        end = data.find(b"\n")
        header = (data if end < 0 else data[:end]).decode("utf-8", errors="replace") \
            .split(s.delimiter)
        if len(header) == 1 and b"\n\n" in data:
            return None  # a blank line could be an empty value: the slow path skips it
        try:
            frame = self._read_typed(data, header)
            if self._last_field_proves_lines(header) \
                    and not _last_line_ends_with_delimiter(data, s.delimiter):
                # Polars parsed the last field of every line as a required number/bool, so
                # no line is short or blank. An extra empty field after such a field makes
                # Polars fail, except on a last line without a newline: checked here.
                return frame.columns, frame
        except pl.exceptions.PolarsError:
            try:
                frame = pl.read_csv(data, infer_schema=False, separator=s.delimiter,
                                    quote_char=None, has_header=True,
                                    empty_string_is_null=False)
            except pl.exceptions.PolarsError:
                return None
        line_count = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        if frame.height != line_count - 1 or len(set(frame.columns)) != len(frame.columns):
            return None
        if not _every_line_has(data, s.delimiter, len(header) - 1, line_count):
            return None  # short, long or blank lines: the slow path reports them exactly
        return frame.columns, frame

    def _last_field_proves_lines(self, header: list[str]) -> bool:
        """Whether the header's last column is a required bool/int/float of the schema.

        Polars fills a short or blank line's missing fields with nulls, which such a column
        rejects (see ``_read_typed``): a typed read that succeeded then saw every field of
        every line, and no delimiter count is needed.
        """
        if len(set(header)) != len(header):
            return False
        spec = next((c for c in self.columns if c.name == header[-1]), None)
        return spec is not None and not spec.dtype.is_optional \
            and spec.dtype.strip_optional() in _NATIVE_CSV

    def _read_typed(self, data: bytes, header: list[str]) -> pl.DataFrame:
        """Let Polars parse the simple types itself (one pass); strings for the rest.

        Raises if a cell does not parse or a required numeric cell is empty, so that the
        caller redoes the document cell by cell and reports exactly what is wrong.
        """
        wanted = {spec.name: spec for spec in self.columns}
        overrides: dict[str, pl.DataType] = {}
        for name in header:
            spec = wanted.get(name)
            base = spec.dtype.strip_optional() if spec is not None else None
            overrides[name] = _NATIVE_CSV.get(base, pl.String())  # type: ignore[arg-type]
        frame = pl.read_csv(data, schema_overrides=overrides, infer_schema=False,
                            separator=self.settings.delimiter, quote_char=None,
                            has_header=True, empty_string_is_null=False)
        for name, dtype in overrides.items():
            spec = wanted.get(name)
            if dtype != pl.String and spec is not None and not spec.dtype.is_optional \
                    and frame[name].null_count():
                raise pl.exceptions.ComputeError(f"empty cells in required column {name}")
        return frame

    def _split_slow(self, text: str, metadata: Mapping[str, Any] | None, first_line: int
                    ) -> tuple[list[str] | None, pl.DataFrame, pl.Series, list[ParseError]]:
        s = self.settings
        reader = csv.reader(
            io.StringIO(text, newline=""), delimiter=s.delimiter,
            quotechar=s.quote if s.enable_quoting else None,
            escapechar=s.escape, doublequote=s.enable_double_quote_escapes,
            quoting=csv.QUOTE_MINIMAL if s.enable_quoting else csv.QUOTE_NONE,
            strict=False,
        )
        header: list[str] | None = None
        rows: list[list[str]] = []
        lines: list[int] = []
        errors: list[ParseError] = []
        offset = first_line - 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                errors.append(ParseError(where_label(metadata, reader.line_num + offset, "csv"),
                                         f"malformed CSV: {exc}"))
                continue
            if not row or (s.comment_character and row[0].startswith(s.comment_character)):
                continue
            if header is None:
                header = row
                continue
            if len(row) != len(header):
                errors.append(ParseError(
                    where_label(metadata, reader.line_num + offset, "csv"),
                    f"expected {len(header)} fields (as in the header), got {len(row)}"))
                continue
            rows.append(row)
            lines.append(reader.line_num + offset)
        if header is None:
            return None, pl.DataFrame(), pl.Series([], dtype=pl.Int64), errors
        names = _dedupe(header)
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        frame = pl.DataFrame({n: pl.Series(n, list(c), dtype=pl.String)
                              for n, c in zip(names, columns, strict=True)})
        return names, frame, pl.Series(lines, dtype=pl.Int64), errors

    def _convert(self, header: list[str], cells: pl.DataFrame, lines: pl.Series | int,
                 metadata: Mapping[str, Any] | None, errors: list[ParseError]
                 ) -> tuple[pl.DataFrame, list[ParseError]]:
        """Typed columns of the schema from the cells; ``lines`` gives each row's line number
        (or, as an int, the number of the document's first line: row i is on the line
        ``lines + i + 1``)."""
        height = cells.height
        out: list[pl.Series] = []
        reasons: dict[int, str] = {}
        cell_errors = CellErrors()
        for spec in self.columns:
            if spec.name not in cells.columns:
                try:
                    value = missing_value(spec)
                except KeyError:
                    for i in range(height):
                        reasons.setdefault(i, f"missing required field {spec.name!r}")
                    value = None
                out.append(t.series_from_values(spec.name, [value] * height, spec.dtype))
                continue
            values, bad = parse_text_column(cells[spec.name], spec.dtype)
            if bad.any():
                raw = cells[spec.name]
                if cell_errors.keep:  # terminate_on_error=False: Error cells, reported
                    values = cell_errors.add(spec, values, bad, [
                        f'failed to parse value "{raw[i]}" at field "{spec.name}" according to '
                        f'the type {cell_errors.type_name(spec.dtype)} in schema: '
                        f'{_parse_failure(raw[i], spec.dtype)}'
                        for i in bad.arg_true().to_list()])
                else:
                    for i in bad.arg_true().to_list():
                        reasons.setdefault(i, f"value {raw[i]!r} in column {spec.name!r} is "
                                              f"not a valid {spec.dtype!r}")
            out.append(values)
        frame = pl.DataFrame(out) if out else pl.DataFrame()
        frame = cell_errors.finish(frame)
        reasons.update(cell_errors.dropped)
        if reasons:
            for i in sorted(reasons):
                line = lines + i + 1 if isinstance(lines, int) else int(lines[i])
                errors.append(ParseError(where_label(metadata, line, "csv"), reasons[i]))
            keep = pl.Series([i not in reasons for i in range(height)], dtype=pl.Boolean)
            frame = frame.filter(keep)
        return frame, errors


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}_{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out



def _parse_failure(text: str, dtype: t.DType) -> str:
    """Why a text is not a value of ``dtype``, in the words of Rust's parsers (as Pathway)."""
    base = dtype.strip_optional()
    if base == t.INT:
        stripped = text.strip()
        if not stripped:
            return "cannot parse integer from empty string"
        if stripped.lstrip("+-").isdigit():
            return "number too large to fit in target type"
        return "invalid digit found in string"
    if base == t.FLOAT:
        return "invalid float literal"
    if base == t.BOOL:
        return "provided string was not `true` or `false`"
    return "invalid value"

