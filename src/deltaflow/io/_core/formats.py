"""Data formats shared by every connector: parsers (input) and formatters (output).

Parsers turn reader contexts into rows of the table's schema; they work on whole blocks of
records (a file, an object, a batch of messages) so that the common formats run vectorised in
Polars. A parser never raises for a bad record: it skips it and reports where and why in
:attr:`ParsedBlock.errors`. Formatters turn a delta batch of one time into bytes (CSV, JSON
lines) or Python rows; every output row carries ``time`` and ``diff`` as Pathway's do.

Value conversions all live in :mod:`deltaflow.io._core.serialization`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID
from deltaflow.io._core.base import (
    BytesFormatter,
    DictsContext,
    Formatter,
    KeyValueContext,
    ParsedBlock,
    ParseError,
    Parser,
    RawContext,
    ReaderContext,
    RowsContext,
)
from deltaflow.io._core.serialization import (
    column_from_values,
    json_ready_column,
    json_value,
    parse_text_column,
    text_column,
)

METADATA_COLUMN = "_metadata"
_NO_DEFAULT = object()


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


@dataclass(frozen=True)
class ColumnSpec:
    """What a parser needs to know about one schema column."""

    name: str
    dtype: t.DType
    default: Any = _NO_DEFAULT
    primary_key: bool = False  # a bad value here drops the row even when errors are values

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


def column_specs(schema: Any, *, exclude: Sequence[str] = (METADATA_COLUMN,)
                 ) -> list[ColumnSpec]:
    """The parser-facing description of a schema's columns."""
    specs = []
    for name, column in schema.columns().items():
        if name in exclude:
            continue
        default = column.default_value if column.has_default_value() else _NO_DEFAULT
        specs.append(ColumnSpec(name, column.dtype, default,
                                bool(getattr(column, "primary_key", False))))
    return specs


def _where(metadata: Mapping[str, Any] | None, line: int | None, fallback: str) -> str:
    source = (metadata or {}).get("path") or fallback
    return f"{source}:{line}" if line is not None else str(source)


def _records(context: ReaderContext) -> tuple[list[Any], Mapping[str, Any] | None, int]:
    if isinstance(context, RawContext):
        return list(context.records), context.metadata, context.first_line
    if isinstance(context, KeyValueContext):
        return [v for v in context.values if v is not None], context.metadata, 1
    raise TypeError(f"this parser reads raw records, not {type(context).__name__}")


def _as_bytes(record: Any) -> bytes:
    return record if isinstance(record, bytes) else str(record).encode()


def _text(record: Any) -> str:
    return record.decode("utf-8", errors="replace") if isinstance(record, bytes | bytearray) \
        else str(record)


def _missing_value(spec: ColumnSpec) -> Any:
    """The value of a column absent from a record; raises KeyError if it is required."""
    if spec.has_default:
        return spec.default
    if spec.dtype.is_optional or spec.dtype.strip_optional() in (t.ANY, t.JSON):
        return None
    raise KeyError(spec.name)


def _empty_frame(specs: Sequence[ColumnSpec]) -> pl.DataFrame:
    return pl.DataFrame(schema={s.name: s.dtype.to_polars() for s in specs})


def _select_good(frame: pl.DataFrame, bad: pl.Series | None) -> pl.DataFrame:
    return frame if bad is None or not bad.any() else frame.filter(~bad)


# ------------------------------------------------------------------------------------------
# CSV
# ------------------------------------------------------------------------------------------


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


def _error_line(error: ParseError) -> int:
    """The line number at the end of ``where`` (``file:line``), 0 if there is none."""
    line = error.where.rpartition(":")[2]
    return int(line) if line.isdigit() else 0


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
        records, metadata, first_line = _records(context)
        frames: list[pl.DataFrame] = []
        errors: list[ParseError] = []
        for record in records:
            frame, record_errors, _ = self._parse_document(record, metadata, first_line)
            frames.append(frame)
            # Reported in line order whichever check found them (field count, value, missing).
            errors.extend(sorted(record_errors, key=_error_line))
        frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else \
            frames[0] if frames else _empty_frame(self.columns)
        return ParsedBlock(frame, errors=errors)

    def _parse_piece(self, context: RawContext) -> ParsedBlock:
        """One piece of a document read in pieces of whole lines (see :class:`RawContext`).

        The first piece holds the header, which is put back in front of every later piece.
        A piece is parsed when its end cannot be inside a quoted field (its quotes pair up);
        otherwise it waits, joined to the next one, as does everything when escapes or
        comments must be read from the start of the document.
        """
        data = _as_bytes(context.records[0]) if context.records else b""
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
                return ParsedBlock(_empty_frame(self.columns))
        first = self._header is None
        if self._header is None:
            self._header = data[:data.find(b"\n") + 1] if b"\n" in data else data
            document = data
        else:
            document = self._header + data
        frame, errors, lines = self._parse_document(document, context.metadata, self._line)
        # Counted only where the exact reader ran (it skips blank lines without a row).
        self._line += lines if lines is not None else data.count(b"\n") - first
        return ParsedBlock(frame, errors=sorted(errors, key=_error_line))

    def _parse_document(self, record: Any, metadata: Mapping[str, Any] | None,
                        first_line: int) -> tuple[pl.DataFrame, list[ParseError], int | None]:
        """The rows of one document whose header is on line ``first_line``, its errors, and
        its number of data lines when known without counting (every line became a row)."""
        data = _as_bytes(record)
        fast = self._split_fast(data)
        if fast is not None:
            header, cells = fast
            # Row i is line i + 1 of the document (after the header): numbered on demand.
            lines: pl.Series | int = first_line
            errors: list[ParseError] = []
            known: int | None = cells.height if header is not None else None
        else:
            header, cells, lines, errors = self._split_slow(_text(record), metadata, first_line)
            known = None
        if header is None:
            return _empty_frame(self.columns), errors, known
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
                errors.append(ParseError(_where(metadata, reader.line_num + offset, "csv"),
                                         f"malformed CSV: {exc}"))
                continue
            if not row or (s.comment_character and row[0].startswith(s.comment_character)):
                continue
            if header is None:
                header = row
                continue
            if len(row) != len(header):
                errors.append(ParseError(
                    _where(metadata, reader.line_num + offset, "csv"),
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
        cell_errors = _CellErrors()
        for spec in self.columns:
            if spec.name not in cells.columns:
                try:
                    value = _missing_value(spec)
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
                errors.append(ParseError(_where(metadata, line, "csv"), reasons[i]))
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


# ------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------


# (``re`` finds this short pattern about twice as fast as ``bytes.__contains__``.)
_SPACE_BEFORE_COLON = re.compile(rb'" :')


def _json_pointer(document: Any, path: str) -> Any:
    """Follow a JSON pointer (``/a/0/b``); KeyError if it leads nowhere."""
    node = document
    for part in path.strip("/").split("/") if path.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise KeyError(path) from None
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(path)
    return node


class _DictRows:
    """Shared tail of the JSON and typed-rows parsers: mappings to typed columns."""

    def __init__(self, columns: Sequence[ColumnSpec],
                 field_paths: Mapping[str, str] | None = None, origin: str = "json") -> None:
        self.columns = list(columns)
        self.field_paths = dict(field_paths or {})
        self.origin = origin  # "json" or "python": how bad values are described

    def frame_from_dicts(self, rows: Sequence[Mapping[str, Any]], where: Sequence[str]
                         ) -> tuple[pl.DataFrame, list[ParseError], list[int]]:
        """Typed frame of the usable rows, errors, and the positions of the usable rows."""
        reasons: dict[int, str] = {}
        series: list[pl.Series] = []
        cell_errors = _CellErrors()
        for spec in self.columns:
            path = self.field_paths.get(spec.name)
            missing: list[int] = []
            plain: list[Any] | None = None
            if path is None:
                try:  # the common case, every row has the field: one comprehension
                    plain = [row[spec.name] for row in rows]
                except (KeyError, TypeError):
                    plain = None
            values: list[Any] = [] if plain is None else plain
            for index, row in enumerate(rows if plain is None else ()):
                try:
                    value = _json_pointer(row, path) if path is not None else row[spec.name]
                except (KeyError, TypeError):
                    try:
                        value = _missing_value(spec)
                    except KeyError:
                        if cell_errors.keep and self.origin == "python":
                            missing.append(index)
                        else:
                            reasons.setdefault(index, f"missing required field {spec.name!r}")
                        value = None
                values.append(value)
            column, bad = column_from_values(spec.name, values, spec.dtype)
            if cell_errors.keep and (bad or missing):
                failed = sorted(set(bad) | set(missing))
                mask = pl.Series([False] * len(rows), dtype=pl.Boolean).scatter(failed, True)
                column = cell_errors.add(spec, column, mask, [
                    self._describe(spec, values[i], i in missing, cell_errors)
                    for i in failed])
            else:
                for index, reason in bad.items():
                    reasons.setdefault(index, reason)
            series.append(column)
        frame = pl.DataFrame(series) if series else pl.DataFrame()
        frame = cell_errors.finish(frame)
        reasons.update(cell_errors.dropped)
        errors = [ParseError(where[i], reasons[i]) for i in sorted(reasons)]
        good = [i for i in range(len(rows)) if i not in reasons]
        if reasons:
            frame = frame.filter(pl.Series([i not in reasons for i in range(len(rows))]))
        return frame, errors, good


    def _describe(self, spec: ColumnSpec, value: Any, missing: bool,
                  cell_errors: _CellErrors) -> str:
        """How a bad value reads in the error log (as Pathway words it)."""
        name = cell_errors.type_name(spec.dtype)
        if missing:
            return f'no value for "{spec.name}" field and no default specified'
        if self.origin == "python":
            return (f'cannot create a field "{spec.name}" with type {name} from value {value}. '
                    f"Original error: TypeError: cannot create an object of type "
                    f"{_ENGINE_TYPE_NAMES.get(spec.dtype.strip_optional(), name)} from value "
                    f"{value}")
        return (f'failed to create a field "{spec.name}" with type {name} from json payload: '
                f"{json.dumps(value)}")


_ENGINE_TYPE_NAMES = {t.INT: "Int", t.FLOAT: "Float", t.STR: "String", t.BOOL: "Bool"}


class _CellErrors:
    """Bad values of one parsed block as Error cells (runs with ``terminate_on_error=False``):
    each reported to the error log, except that a bad primary key value drops its row (the
    row cannot get an id), reported as such."""

    def __init__(self) -> None:
        from deltaflow import errors

        self._errors = errors
        self.keep = errors.keeps_errors()
        self.masks: dict[str, pl.Series] = {}
        self.dropped: dict[int, str] = {}
        self.pending: list[tuple[int, str]] = []  # reported at finish, unless the row drops

    @staticmethod
    def type_name(dtype: t.DType) -> str:
        base = dtype.strip_optional()
        name = {t.INT: "int", t.FLOAT: "float", t.STR: "str", t.BOOL: "bool",
                t.BYTES: "bytes"}.get(base, repr(base))
        return f"{name} | None" if dtype.is_optional else name

    def add(self, spec: ColumnSpec, values: pl.Series, bad: pl.Series,
            messages: list[str]) -> pl.Series:
        rows = bad.arg_true().to_list()
        if spec.primary_key:
            for row, message in zip(rows, messages, strict=True):
                if row not in self.dropped:
                    self.dropped[row] = f"error in primary key, skipping the row: {message}"
                    self._errors.report_connector(self.dropped[row])
            return values
        self.pending.extend(zip(rows, messages, strict=True))
        previous = self.masks.get(spec.name)
        self.masks[spec.name] = bad if previous is None else previous | bad
        return values

    def finish(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with the recorded cells as Errors (rows of ``dropped`` still there: the
        caller leaves them out)."""
        for row, message in self.pending:
            if row not in self.dropped:  # a skipped row reports only its key's failure
                self._errors.report_connector(message)
        if not self.masks:
            return frame
        self._errors.mark_seen()
        return frame.with_columns([self._errors.with_errors(frame[name], mask)
                                   for name, mask in self.masks.items()])


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


_FAST_JSON: dict[t.DType, pl.DataType] = {t.INT: pl.Int64(), t.FLOAT: pl.Float64(),
                                           t.BOOL: pl.Boolean(), t.STR: pl.String()}


class JsonLinesParser(Parser):
    """Each record holds one or more JSON objects, one per line.

    ``json_field_paths`` maps a column to a JSON pointer (``/a/b``) inside the object.
    """

    def __init__(self, columns: Sequence[ColumnSpec],
                 json_field_paths: Mapping[str, str] | None = None) -> None:
        self._rows = _DictRows(columns, json_field_paths)
        self.columns = list(columns)
        self._next_line = 1  # where the next piece of a document starts (RawContext)
        # Polars reads the lines at once when every column is a plain value taken by name.
        self._fast_schema = None if json_field_paths else {
            spec.name: _FAST_JSON[spec.dtype.strip_optional()] for spec in self.columns
            if spec.dtype.strip_optional() in _FAST_JSON}
        if self._fast_schema is not None and len(self._fast_schema) != len(self.columns):
            self._fast_schema = None

    def _read_fast(self, data: bytes) -> pl.DataFrame | None:
        """The rows of JSON lines read by Polars, or None when only the exact reader can tell
        what they hold.

        With a schema, Polars rejects a value of another type for a number or a bool (as the
        exact reader does, ints being accepted as floats by both), but writes any value as text
        into a string column, cannot tell a missing field from a null, and keeps the first of two
        equal keys where JSON readers keep the last. So the keys are counted in the text
        (``"k":`` with or without one space after the colon), and every row must hold each of
        its fields once, string values quoted, and no null where a default or a required value
        is due; anything else is left to the exact reader, which reports the offending lines.
        """
        if not data or data.isspace():  # (``isspace`` stops at the first other byte)
            return None
        if b"\t" in data or _SPACE_BEFORE_COLON.search(data):
            return None  # unusual spacing around colons: the counts below would miss keys
        try:
            frame = pl.read_ndjson(data, schema=dict(self._fast_schema or {}))
        except Exception:  # noqa: BLE001 - any failure: the exact reader decides and explains
            return None
        # The spacing of the first line; lines spaced otherwise make the null and string counts
        # come out short, which sends the text to the exact reader (the key count needs none).
        end = data.find(b"\n")
        spaced = b'": ' in (data if end < 0 else data[:end])
        for spec in self.columns:
            column = frame[spec.name]
            present = column.len() - column.null_count()
            key = json.dumps(spec.name).encode() + b":"  # every occurrence, spaced or not

            def count(value_start: bytes, key: bytes = key) -> int:
                found = data.count(key + value_start)
                return found + data.count(key + b" " + value_start) if spaced else found

            if column.null_count() and (spec.has_default or not spec.dtype.is_optional):
                return None
            nulls = count(b"null") if column.null_count() else 0
            if data.count(key) != present + nulls:
                return None  # a field twice in a row, or the key elsewhere (nested)
            if re.search(re.escape(key) + rb"[^\n]*" + re.escape(key), data):
                # A line holding the key twice: Polars kept the first value, JSON readers the
                # last (a null after a value could balance the count above).
                return None
            if spec.dtype.strip_optional() == t.STR and count(b'"') != present:
                return None  # a number, object or list made into text
        return frame

    def parse(self, context: ReaderContext) -> ParsedBlock:
        if isinstance(context, DictsContext):
            return TypedRowsParser(self.columns).parse(context)
        records, metadata, first_line = _records(context)
        if len(records) == 1 and self._fast_schema:
            data = _as_bytes(records[0])
            frame = self._read_fast(data)
            if frame is not None:
                line = self._next_line if isinstance(context, RawContext) and \
                    context.continues else first_line
                self._next_line = line + data.count(b"\n")
                return ParsedBlock(frame)
        documents: list[Any] = []
        where: list[str] = []
        errors: list[ParseError] = []
        line = self._next_line if isinstance(context, RawContext) and context.continues \
            else first_line
        for record in records:
            for text in _text(record).split("\n"):
                here = _where(metadata, line, "json")
                line += 1
                if not text.strip():
                    continue
                try:
                    document = json.loads(text)
                except json.JSONDecodeError as exc:
                    errors.append(ParseError(here, f"invalid JSON: {exc}"))
                    continue
                if not isinstance(document, dict):
                    errors.append(ParseError(here, "a JSON object was expected"))
                    continue
                documents.append(document)
                where.append(here)
        # A piece of a document ends with a newline, which split() followed by an empty text.
        self._next_line = line - 1
        frame, row_errors, _ = self._rows.frame_from_dicts(documents, where)
        # Reported in line order, whichever check found them (JSON syntax, then values).
        return ParsedBlock(frame, errors=sorted(errors + row_errors, key=_error_line))


class TypedRowsParser(Parser):
    """Rows the source already structured: :class:`DictsContext` or :class:`RowsContext`."""

    def __init__(self, columns: Sequence[ColumnSpec]) -> None:
        self.columns = list(columns)
        self._rows = _DictRows(columns, origin="python")

    def parse(self, context: ReaderContext) -> ParsedBlock:
        if isinstance(context, RowsContext):
            return ParsedBlock(self._conform(context.frame), kind=context.kind,
                               keys=context.keys)
        if not isinstance(context, DictsContext):
            raise TypeError(f"typed rows come as DictsContext or RowsContext, "
                            f"not {type(context).__name__}")
        source = (context.metadata or {}).get("path", "row")
        where = [f"{source} {i + 1}" for i in range(len(context.rows))]
        frame, errors, good = self._rows.frame_from_dicts(context.rows, where)
        kinds = context.kinds
        keys = context.keys
        kind = kinds if isinstance(kinds, str) else "column"
        if not isinstance(kinds, str):
            frame = frame.with_columns(pl.Series("_kind", [kinds[i] for i in good],
                                                 dtype=pl.String))
        key_series = None
        if keys is not None and any(k is not None for k in keys):
            kept = [keys[i] for i in good]
            if any(k is None for k in kept):
                frame = frame.with_columns(pl.Series("_key", [
                    None if k is None else int(k) for k in kept], dtype=pl.UInt128))
            else:
                key_series = pl.Series("_id", [int(k) for k in kept], dtype=pl.UInt128)
        return ParsedBlock(frame, kind=kind, keys=key_series, errors=errors)

    def _conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        series = []
        for spec in self.columns:
            if spec.name in frame.columns:
                column = frame[spec.name]
                wanted = spec.dtype.to_polars()
                series.append(column if column.dtype == wanted else column.cast(wanted))
            else:
                series.append(t.series_from_values(spec.name,
                                                   [_missing_value(spec)] * frame.height,
                                                   spec.dtype))
        extra = [frame[c] for c in ("_kind",) if c in frame.columns]
        return pl.DataFrame(series + extra)


# ------------------------------------------------------------------------------------------
# Plaintext, binary, metadata
# ------------------------------------------------------------------------------------------


class PlaintextParser(Parser):
    """One row per line, in a ``data: str`` column."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, _, _ = _records(context)
        parts = []
        for record in records:
            text = _text(record)
            lines = pl.Series("data", [text]).str.split("\n").explode()
            if text.endswith("\n"):
                lines = lines.head(lines.len() - 1)
            parts.append(lines.str.strip_suffix("\r"))
        data = pl.concat(parts) if parts else pl.Series("data", [], dtype=pl.String)
        return ParsedBlock(pl.DataFrame({"data": data}))


class PlaintextByFileParser(Parser):
    """One row per record (a whole file or object), in a ``data: str`` column."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, _, _ = _records(context)
        return ParsedBlock(pl.DataFrame({"data": pl.Series([_text(r) for r in records],
                                                           dtype=pl.String)}))


class BinaryParser(Parser):
    """One row per record, in a ``data: bytes`` column."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, _, _ = _records(context)
        data = [r if isinstance(r, bytes) else str(r).encode() for r in records]
        return ParsedBlock(pl.DataFrame({"data": pl.Series(data, dtype=pl.Binary)}))


class OnlyMetadataParser(Parser):
    """One row per record with only its ``_metadata`` (the contents are not looked at)."""

    def parse(self, context: ReaderContext) -> ParsedBlock:
        records, metadata, _ = _records(context)
        values = [t.Json(dict(metadata or {}))] * len(records)
        return ParsedBlock(pl.DataFrame({METADATA_COLUMN: pl.Series(values, dtype=pl.Object)}))


# ------------------------------------------------------------------------------------------
# Formatters
# ------------------------------------------------------------------------------------------


_BOOL_LABELS = pl.Series(["False", "True"], dtype=pl.Enum(["False", "True"]))


class CsvFormatter(BytesFormatter):
    """Every field double-quoted, then ``time`` and ``diff`` (as Pathway writes CSV)."""

    def __init__(self, columns: Mapping[str, t.DType], delimiter: str = ",") -> None:
        self.columns = dict(columns)
        self.delimiter = delimiter

    def header(self) -> bytes:
        names = [*self.columns, "time", "diff"]
        return (self.delimiter.join('"' + n.replace('"', '""') + '"' for n in names)
                + "\n").encode()

    def format_into(self, batch: pl.DataFrame, time: int, stream: BinaryIO) -> None:
        columns = [self._text(batch[name], dtype) for name, dtype in self.columns.items()]
        frame = pl.DataFrame(columns).with_columns(pl.lit(time, dtype=pl.Int64 if time < 2**63 else pl.UInt64).alias("time"),
                                                    batch[DIFF].alias("diff"))
        # Polars already writes ints, strings and most floats as Pathway does; nulls as None.
        # Its writer encodes in parallel and writes as it goes: no copy of the whole text.
        frame.write_csv(stream, include_header=False, quote_style="always",
                        separator=self.delimiter, null_value="None")

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


class JsonLinesFormatter(BytesFormatter):
    """One compact JSON object per row: the columns, then ``diff`` and ``time``."""

    def __init__(self, columns: Mapping[str, t.DType]) -> None:
        self.columns = dict(columns)

    def format_into(self, batch: pl.DataFrame, time: int, stream: BinaryIO) -> None:
        ready = {name: json_ready_column(batch[name], dtype)
                 for name, dtype in self.columns.items()}
        if all(isinstance(v, pl.Series) for v in ready.values()):
            frame = pl.DataFrame(list(ready.values())).with_columns(
                batch[DIFF].alias("diff"), pl.lit(time, dtype=pl.Int64 if time < 2**63 else pl.UInt64).alias("time"))
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

    def format(self, batch: pl.DataFrame, time: int) -> list[tuple[t.Pointer, dict[str, Any],
                                                                   int, int]]:
        names = list(self.columns)
        keys = t.values_from_series(batch[ID])
        values = [t.values_from_series(batch[n]) for n in names]
        diffs = batch[DIFF].to_list()
        return [(key, dict(zip(names, row, strict=True)), time, diff)
                for key, row, diff in zip(keys, zip(*values, strict=True), diffs, strict=True)] \
            if names else [(key, {}, time, diff) for key, diff in zip(keys, diffs, strict=True)]


def parser_for_format(fmt: str, columns: Sequence[ColumnSpec], *,
                      csv_settings: CsvParserSettings | None = None,
                      json_field_paths: Mapping[str, str] | None = None) -> Parser:
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
