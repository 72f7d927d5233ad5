"""CSV parsing (``format="csv"``): Polars reads a document in one call when cheap checks on
the text prove it equal to the exact reader's result (:mod:`.csv_fast_split`); otherwise
Python's ``csv`` module reads it record by record and every bad record is reported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._small_frames import frame_of
from deltaflow.io._core.base import ParsedBlock, ParseError, Parser, RawContext, ReaderContext
from deltaflow.io._core.csv_fast_split import split_fast
from deltaflow.io._core.parsing import (
    CellErrors,
    ColumnSpec,
    as_bytes,
    empty_frame,
    error_line,
    is_utf8,
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

    def __init__(
        self,
        delimiter: str = ",",
        quote: str = '"',
        escape: str | None = None,
        enable_double_quote_escapes: bool = True,
        enable_quoting: bool = True,
        comment_character: str | None = None,
    ) -> None:
        for label, value in (
            ("delimiter", delimiter),
            ("quote", quote),
            ("escape", escape),
            ("comment_character", comment_character),
        ):
            if value is not None and (not isinstance(value, str) or len(value) != 1):
                raise ValueError(
                    f"CsvParserSettings: {label} must be a single character, got {value!r}"
                )
        if delimiter == quote:
            raise ValueError("CsvParserSettings: delimiter and quote must differ")
        self.delimiter = delimiter
        self.quote = quote
        self.escape = escape
        self.enable_double_quote_escapes = enable_double_quote_escapes
        self.enable_quoting = enable_quoting
        self.comment_character = comment_character

    def __repr__(self) -> str:
        return (
            f"CsvParserSettings(delimiter={self.delimiter!r}, quote={self.quote!r}, "
            f"escape={self.escape!r})"
        )


@dataclass
class _Document:
    """What parsing (part of) a CSV document gave."""

    frame: pl.DataFrame
    errors: list[ParseError]
    header: list[str] | None  # the header's names, once known
    lines: int  # lines consumed, i.e. not in ``tail``
    tail: str | None = None  # a last record the end of the text cut short (pieces only)
    header_problem: str | None = None  # why every row of the document is skipped


class _Lines:
    """The lines of a text as ``csv.reader`` wants them, counted, noticing when the reader
    asks for a line past the end (then the record it returns was cut short)."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.chars = 0
        self.count = 0
        self.ran_out = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.ran_out = True
            raise
        self.chars += len(line)
        self.count += 1
        return line


# Invalid UTF-8 bytes decoded with ``surrogateescape`` (valid UTF-8 never gives these).
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")

# Python's csv reader refuses fields over 128 KiB by default and then reads the rest of such
# a field as new records; a quoted field may legitimately be long.
csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))


class CsvParser(Parser):
    """Each record is a CSV document whose first (non-blank) record is the header.

    Columns are matched by name; extra columns are ignored, missing ones take the schema's
    default (or None if optional). Rows with a wrong number of fields, a value that does
    not parse or bytes that are not UTF-8 are skipped and reported. A header that repeats a
    schema column, or lacks a required one, is reported once and the document is skipped.
    """

    def __init__(
        self, columns: Sequence[ColumnSpec], settings: CsvParserSettings | None = None
    ) -> None:
        self.columns = list(columns)
        self.settings = settings or CsvParserSettings()
        # The document being read in pieces (see _parse_piece).
        self._header: list[str] | None = None
        self._header_problem: str | None = None
        self._line = 0  # the number of the line before the next piece
        self._tail: list[str] = []  # an unfinished record waiting for the next pieces

    def parse(self, context: ReaderContext) -> ParsedBlock:
        if isinstance(context, RawContext) and (context.continues or context.continued):
            return self._parse_piece(context)
        records, metadata, first_line = records_of(context)
        frames: list[pl.DataFrame] = []
        errors: list[ParseError] = []
        for record in records:
            document = self._parse_document(as_bytes(record), metadata, first_line - 1)
            frames.append(document.frame)
            # Reported in line order whichever check found them (field count, value, missing).
            errors.extend(sorted(document.errors, key=error_line))
        frame = (
            pl.concat(frames, how="vertical_relaxed")
            if len(frames) > 1
            else frames[0]
            if frames
            else empty_frame(self.columns)
        )
        return ParsedBlock(frame, errors=errors)

    def _parse_piece(self, context: RawContext) -> ParsedBlock:
        """One piece of a document read in pieces of whole lines (see :class:`RawContext`).

        The header found in the first piece is used for the later ones. A record the end of
        a piece cuts short (a quoted field holding line breaks) waits, and is parsed at the
        front of the next piece; as long as the next pieces cannot close its quoted field
        they are only gathered, so a long record is parsed once.
        """
        data = as_bytes(context.records[0]) if context.records else b""
        if not context.continues:
            self._header = None
            self._header_problem = None
            self._line = context.first_line - 1
            self._tail = []
        if self._header_problem is not None:
            return ParsedBlock(empty_frame(self.columns))  # reported with the header
        text: str | None = None
        if self._tail:
            text = data.decode("utf-8", errors="surrogateescape")
            if context.continued and not self._may_close(text):
                self._tail.append(text)
                return ParsedBlock(empty_frame(self.columns))
            text = "".join(self._tail) + text
            self._tail = []
        document = self._parse_document(
            data if text is None else text,
            context.metadata,
            self._line,
            header=self._header,
            hold_tail=context.continued,
        )
        self._line += document.lines
        self._header = document.header
        self._header_problem = document.header_problem
        if document.tail is not None:
            self._tail = [document.tail]
        return ParsedBlock(document.frame, errors=sorted(document.errors, key=error_line))

    def _may_close(self, text: str) -> bool:
        """Whether ``text`` may end the unfinished record waiting in ``_tail``.

        Without an escape character such a record is inside a quoted field, which only a
        quote not doubled can close; with one, the record is parsed again (cheap unless it is
        huge: escapes and long multi-line records rarely come together).
        """
        s = self.settings
        if s.escape is not None or not s.enable_quoting:
            return True
        position = 0
        while True:
            position = text.find(s.quote, position)
            if position < 0:
                return False
            if s.enable_double_quote_escapes and text.startswith(s.quote, position + 1):
                position += 2
                continue
            return True

    def _parse_document(
        self,
        data: bytes | str,
        metadata: Mapping[str, Any] | None,
        line_before: int,
        *,
        header: list[str] | None = None,
        hold_tail: bool = False,
    ) -> _Document:
        """The rows of a document (or of a piece of one) whose first line follows line
        ``line_before``. ``header`` is the header of a document read in pieces, found in an
        earlier piece; with ``hold_tail`` a last record cut short by the end is returned as
        ``tail`` instead of being parsed."""
        fast = None
        if isinstance(data, bytes) and is_utf8(data):
            document = data if header is None else self._with_header_line(header, data)
            fast = None if document is None else split_fast(document, self.settings, self.columns)
        if fast is not None:
            names, cells = fast
            lines = data.count(b"\n") if isinstance(data, bytes) else 0
            if names is None:  # blank lines only: the header is still to come
                return _Document(empty_frame(self.columns), [], header, lines)
            header_line = line_before + 1 if header is None else None
            problem = self._header_problem_of(names) if header is None else None
            if problem is not None:
                return self._skipped(names, problem, metadata, header_line, lines)
            # Row i is on line ``line_before + i + 1`` after the header: numbered on demand.
            frame, errors = self._convert(
                names, cells, line_before + (header is None), metadata, []
            )
            return _Document(frame, errors, names, lines)
        text = data if isinstance(data, str) else data.decode("utf-8", errors="surrogateescape")
        return self._parse_slow(text, metadata, line_before, header, hold_tail)

    def _with_header_line(self, header: list[str], data: bytes) -> bytes | None:
        """A later piece with a header line in front, for Polars; None when one plain line
        cannot say the header (the exact reader then reads the piece)."""
        s = self.settings
        if not all(header) or any(
            s.delimiter in n or s.quote in n or "\n" in n or "\r" in n for n in header
        ):
            return None
        return s.delimiter.join(header).encode() + b"\n" + data

    def _header_problem_of(self, names: list[str]) -> str | None:
        """Why a header makes every row of its document unusable, if it does."""
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        for spec in self.columns:
            if counts.get(spec.name, 0) > 1:
                return (
                    f"the header names the column {spec.name!r} {counts[spec.name]} "
                    f"times: which one holds its values is ambiguous"
                )
        for spec in self.columns:
            if spec.name not in counts:
                try:
                    missing_value(spec)
                except KeyError:
                    return (
                        f"the header lacks the column {spec.name!r}, which is required "
                        f"(not optional, no default)"
                    )
        return None

    def _skipped(
        self,
        header: list[str],
        problem: str,
        metadata: Mapping[str, Any] | None,
        header_line: int | None,
        lines: int,
    ) -> _Document:
        """A document whose header makes its rows unusable: one error for all of them."""
        error = ParseError(
            where_label(metadata, header_line, "csv"),
            f"{problem}; every row of the file is skipped",
        )
        return _Document(empty_frame(self.columns), [error], header, lines, header_problem=problem)

    def _parse_slow(
        self,
        text: str,
        metadata: Mapping[str, Any] | None,
        line_before: int,
        header: list[str] | None,
        hold_tail: bool,
    ) -> _Document:
        """Python's csv reader, record by record: every bad record is reported with its line.

        ``text`` may hold invalid UTF-8 bytes escaped as surrogates: the records holding
        them are reported, never read with replacement characters.
        """
        s = self.settings
        lines = _Lines(text)
        reader = csv.reader(
            lines,
            delimiter=s.delimiter,
            quotechar=s.quote if s.enable_quoting else None,
            escapechar=s.escape,
            doublequote=s.enable_double_quote_escapes,
            quoting=csv.QUOTE_MINIMAL if s.enable_quoting else csv.QUOTE_NONE,
            strict=False,
        )
        escaped_bytes = _ESCAPED_BYTES.search(text) is not None
        header_line: int | None = None
        rows: list[list[str]] = []
        row_lines: list[int] = []
        errors: list[ParseError] = []

        def where() -> str:
            return where_label(metadata, line_before + lines.count, "csv")

        while True:
            start_chars, start_lines = lines.chars, lines.count
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                errors.append(ParseError(where(), f"malformed CSV: {exc}"))
                continue
            if lines.ran_out:  # the end of the text came inside this record
                if hold_tail:
                    return self._slow_result(
                        header,
                        rows,
                        row_lines,
                        errors,
                        metadata,
                        header_line,
                        start_lines,
                        text[start_chars:],
                    )
                errors.append(
                    ParseError(
                        where_label(metadata, line_before + start_lines + 1, "csv"),
                        "the file ends inside this record (a quoted field is not closed)",
                    )
                )
                continue
            if not row or (s.comment_character and row[0].startswith(s.comment_character)):
                continue
            if escaped_bytes and any(_ESCAPED_BYTES.search(cell) for cell in row):
                reason = f"not valid UTF-8 ({_escaped_bytes_hex(row)})"
                if header is None:  # a header cannot be matched against the schema
                    header_line = line_before + lines.count
                    return self._skipped(
                        row, f"the header is {reason}", metadata, header_line, lines.count
                    )
                errors.append(ParseError(where(), f"the record is {reason}"))
                continue
            if header is None:
                header = row
                header_line = line_before + lines.count
                problem = self._header_problem_of(header)
                if problem is not None:
                    return self._skipped(header, problem, metadata, header_line, lines.count)
                continue
            if len(row) != len(header):
                errors.append(
                    ParseError(
                        where(), f"expected {len(header)} fields (as in the header), got {len(row)}"
                    )
                )
                continue
            rows.append(row)
            row_lines.append(line_before + lines.count)
        return self._slow_result(
            header, rows, row_lines, errors, metadata, header_line, lines.count, None
        )

    def _slow_result(
        self,
        header: list[str] | None,
        rows: list[list[str]],
        row_lines: list[int],
        errors: list[ParseError],
        metadata: Mapping[str, Any] | None,
        header_line: int | None,
        lines: int,
        tail: str | None,
    ) -> _Document:
        if header is None:
            return _Document(empty_frame(self.columns), errors, None, lines, tail)
        names = _dedupe(header)
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        cells = pl.DataFrame(
            {n: pl.Series(n, list(c), dtype=pl.String) for n, c in zip(names, columns, strict=True)}
        )
        frame, errors = self._convert(
            names, cells, pl.Series(row_lines, dtype=pl.Int64), metadata, errors
        )
        return _Document(frame, errors, header, lines, tail)

    def _convert(
        self,
        header: list[str],
        cells: pl.DataFrame,
        lines: pl.Series | int,
        metadata: Mapping[str, Any] | None,
        errors: list[ParseError],
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
            if spec.dtype.strip_optional() == t.STR:
                # Text is taken as written: an empty field (quoted or not) is "", never None
                # (as in Pathway, also for ``str | None``).
                raw = cells[spec.name]
                out.append(raw if raw.dtype == pl.String else raw.cast(pl.String))
                continue
            values, bad = parse_text_column(cells[spec.name], spec.dtype)
            if spec.has_default:
                values, bad = _defaults_for_empty_cells(cells[spec.name], values, bad, spec)
            if bad.any():
                raw = cells[spec.name]
                if cell_errors.keep:  # terminate_on_error=False: Error cells, reported
                    values = cell_errors.add(
                        spec,
                        values,
                        bad,
                        [
                            f'text "{raw[i]}" does not parse as field "{spec.name}" of type '
                            f"{cell_errors.type_name(spec.dtype)}: "
                            f"{_parse_failure(raw[i], spec.dtype)}"
                            for i in bad.arg_true().to_list()
                        ],
                    )
                else:
                    for i in bad.arg_true().to_list():
                        reasons.setdefault(
                            i,
                            f"value {_shown(raw[i])} in column {spec.name!r} is "
                            f"not a valid {spec.dtype!r}",
                        )
            out.append(values)
        frame = frame_of(out) if out else pl.DataFrame()  # (Series of one height: no checks)
        frame = cell_errors.finish(frame)
        reasons.update(cell_errors.dropped)
        if reasons:
            for i in sorted(reasons):
                line = lines + i + 1 if isinstance(lines, int) else int(lines[i])
                errors.append(ParseError(where_label(metadata, line, "csv"), reasons[i]))
            keep = pl.Series([i not in reasons for i in range(height)], dtype=pl.Boolean)
            frame = frame.filter(keep)
        return frame, errors


def _defaults_for_empty_cells(
    raw: pl.Series, values: pl.Series, bad: pl.Series, spec: ColumnSpec
) -> tuple[pl.Series, pl.Series]:
    """An empty cell of a (non-text) column with a default takes the default, as in Pathway;
    a cell of blanks is still a bad value."""
    empty = raw.is_null() | (raw == "") if raw.dtype == pl.String else raw.is_null()
    empty = empty.fill_null(True)
    if not empty.any():
        return values, bad
    if values.dtype == pl.Object:  # Python values: merged as values
        merged = [spec.default if e else v for v, e in zip(values, empty, strict=True)]
        values = t.series_from_values(spec.name, merged, spec.dtype)
    else:
        defaults = t.series_from_values(spec.name, [spec.default] * len(raw), spec.dtype)
        values = pl.select(
            pl.when(empty).then(defaults.cast(values.dtype)).otherwise(values).alias(spec.name)
        ).to_series()
    return values, bad & ~empty


_SHOWN_CHARACTERS = 100


def _shown(value: str) -> str:
    """A value for a report: its start only when it is long (a field can be megabytes)."""
    if len(value) <= _SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"


def _escaped_bytes_hex(row: list[str]) -> str:
    """The invalid bytes of a row read with ``surrogateescape``, in hex."""
    found: list[str] = []
    for cell in row:
        found.extend(_ESCAPED_BYTES.findall(cell))
    return "bytes " + " ".join(f"{ord(c) - 0xDC00:02x}" for c in found[:8])


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
