"""JSON lines parsing (``format="json"``) and rows that come already structured (Python
connectors, databases): mappings turned into the schema's typed columns.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._small_frames import ListFrame, frame_of
from deltaflow._values import type_mismatch
from deltaflow.io._core import parsing
from deltaflow.io._core.base import (
    DictsContext,
    ParsedBlock,
    ParseError,
    Parser,
    RawContext,
    ReaderContext,
    RowsContext,
)
from deltaflow.io._core.json_text import MAX_JSON_DEPTH, load_json_line
from deltaflow.io._core.parsing import (
    CellErrors,
    ColumnSpec,
    as_bytes,
    decode_lines,
    error_line,
    missing_value,
    records_of,
    where_label,
)
from deltaflow.io._core.serialization import column_from_values, exact_column, exact_series

# (``re`` finds this short pattern about twice as fast as ``bytes.__contains__``.)
_SPACE_BEFORE_COLON = re.compile(rb'" :')


# An escaped UTF-16 surrogate (``\\ud800``): valid only as half of a pair.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")

_ALL_BUT_OPENINGS = bytes(c for c in range(256) if c not in b"[{\n")


def _may_nest_too_deep(data: bytes) -> bool:
    """Whether some line of ``data`` opens more than MAX_JSON_DEPTH arrays and objects (only
    such a line can nest that deep). One C pass keeps only the brackets and line breaks."""
    openings = data.translate(None, _ALL_BUT_OPENINGS)
    if len(openings) - openings.count(b"\n") <= MAX_JSON_DEPTH:
        return False
    return _TOO_MANY_OPENINGS.search(openings) is not None


_TOO_MANY_OPENINGS = re.compile(rb"[^\n]{%d}" % (MAX_JSON_DEPTH + 1))

#: The C scanner behind ``json.loads``, called without its Python wrapping (two whitespace
#: regexes and an exception translation per call, more than the scan of a short line).
_SCAN_JSON: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _objects_of_lines(record: Any) -> list[dict[str, Any]] | None:
    """The JSON object of each line of ``record`` when every line (but an empty last one) is
    exactly one object, with nothing the line-by-line reader would report or skip: invalid
    UTF-8, blank lines, spaces around the object, other values, syntax errors, surrogate
    escapes, deep nesting. None otherwise (that reader then reads the record and explains)."""
    data = as_bytes(record)
    if _SURROGATE_ESCAPE.search(data) or _may_nest_too_deep(data):
        return None
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return None
    if not lines[-1]:
        lines.pop()
    scan = _SCAN_JSON
    objects: list[dict[str, Any]] = []
    for line in lines:
        try:
            document, end = scan(line, 0)
        except (StopIteration, ValueError, RecursionError):
            return None
        if end != len(line) or type(document) is not dict:
            return None
        objects.append(document)
    return objects


def _column_without_surrogates(
    spec: ColumnSpec, values: list[Any], *, check: bool = False
) -> tuple[pl.Series, dict[int, str]]:
    """``column_from_values``, except that a value holding a string with an unpaired
    surrogate (which a Python connector can pass, and no UTF-8 text can hold) is a bad value
    of its row rather than an exception stopping the input. Text columns notice such strings
    themselves; objects (Json) are looked into only with ``check``."""
    bad_rows = [i for i, value in enumerate(values) if _holds_surrogate(value)] if check else []
    if not bad_rows:
        try:
            return column_from_values(spec.name, values, spec.dtype)
        except UnicodeEncodeError:
            bad_rows = [i for i, value in enumerate(values) if _holds_surrogate(value)]
    cleaned = list(values)
    for index in bad_rows:
        cleaned[index] = None
    column, bad = column_from_values(spec.name, cleaned, spec.dtype)
    for index in bad_rows:
        bad[index] = f"column {spec.name!r}: a string holds an unpaired UTF-16 surrogate"
    return column, dict(sorted(bad.items()))


def _holds_surrogate(value: Any, depth: int = 0) -> bool:
    """Whether a Python value holds a string that cannot be UTF-8 (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if depth > MAX_JSON_DEPTH:
        return False
    if isinstance(value, t.Json):
        return _holds_surrogate(value.value, depth + 1)
    if isinstance(value, list | tuple):
        return any(_holds_surrogate(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(
            _holds_surrogate(k, depth + 1) or _holds_surrogate(v, depth + 1)
            for k, v in value.items()
        )
    return False


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

    def __init__(
        self,
        columns: Sequence[ColumnSpec],
        field_paths: Mapping[str, str] | None = None,
        origin: str = "json",
    ) -> None:
        self.columns = list(columns)
        self.field_paths = dict(field_paths or {})
        self.origin = origin  # "json" or "python": how bad values are described
        # Per column, its name and exact_column, when every column is an int, float, bool
        # or str read by its name: see exact_frame.
        self._exact: list[tuple[str, tuple[type[pl.DataType], frozenset[type]]]] | None = None
        if not self.field_paths and self.columns:
            kinds = [exact_column(spec.dtype) for spec in self.columns]
            if all(kind is not None for kind in kinds):
                self._exact = [
                    (spec.name, kind)
                    for spec, kind in zip(self.columns, kinds, strict=True)
                    if kind is not None
                ]

    def exact_lists(
        self, rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[str, pl.DataType, list[Any]]] | None:
        """The columns :meth:`exact_frame` makes of ``rows``, as (name, Polars type, values)
        for a :class:`ListFrame`, or None where it gives None: the same checks made on the
        Python values (an int within 64 bits, a text UTF-8 can hold)."""
        assert self._exact is not None
        columns = []
        for name, (polars_type, python_types) in self._exact:
            try:
                values = [row[name] for row in rows]
            except (KeyError, TypeError):
                return None
            if not set(map(type, values)) <= python_types:
                return None
            if polars_type is pl.Int64:
                if not all(v is None or _INT64_LOW <= v <= _INT64_HIGH for v in values):
                    return None
            elif polars_type is pl.String and not all(v is None or _utf8(v) for v in values):
                return None
            columns.append((name, _INSTANCES[polars_type], values))
        return columns

    @property
    def exact(self) -> bool:
        """Whether :meth:`exact_frame` may apply (every column an int, float, bool or str read
        by its name)."""
        return self._exact is not None

    def exact_frame(self, rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame | None:
        """The frame of ``rows`` when every row has every field, each of exactly its column's
        Python type: no value to convert, default or report, so the general path would build
        this very frame, with a few more calls per column (a live update's rows come one at
        a time). None otherwise: the general path decides."""
        assert self._exact is not None
        columns = []
        for name, exact in self._exact:
            try:
                values = [row[name] for row in rows]
            except (KeyError, TypeError):
                return None
            try:
                column = exact_series(name, values, exact)
            except UnicodeEncodeError:  # a lone surrogate: the general path reports it
                return None
            if column is None:
                return None
            columns.append(column)
        return frame_of(columns)

    def frame_from_dicts(
        self, rows: Sequence[Mapping[str, Any]], where: Sequence[str] | Callable[[int], str]
    ) -> tuple[pl.DataFrame, list[ParseError], list[int]]:
        """Typed frame of the usable rows, errors, and the positions of the usable rows.

        ``where`` names each row in error messages: a list, or a function of the row's
        position (so that a block without errors builds no names)."""
        if self._exact is not None and rows:
            exact = self.exact_frame(rows)
            if exact is not None:
                return exact, [], list(range(len(rows)))
        reasons: dict[int, str] = {}
        series: list[pl.Series] = []
        cell_errors = CellErrors()
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
                        value = missing_value(spec)
                    except KeyError:
                        if cell_errors.keep and self.origin == "python":
                            missing.append(index)
                        else:
                            reasons.setdefault(index, f"missing required field {spec.name!r}")
                        value = None
                values.append(value)
            column, bad = _column_without_surrogates(
                spec,
                values,
                check=self.origin == "python" and spec.dtype.strip_optional() in (t.JSON, t.ANY),
            )
            if cell_errors.keep and (bad or missing):
                failed = sorted(set(bad) | set(missing))
                mask = pl.Series([False] * len(rows), dtype=pl.Boolean).scatter(failed, True)
                column = cell_errors.add(
                    spec,
                    column,
                    mask,
                    [self._describe(spec, values[i], i in missing, cell_errors) for i in failed],
                )
            else:
                for index, reason in bad.items():
                    reasons.setdefault(index, reason)
            series.append(column)
        # A schema without columns still has a row per dict (a frame with no columns but a
        # height: Polars keeps it when the last column is dropped).
        frame = frame_of(series) if series else pl.DataFrame({"_": [None] * len(rows)}).drop("_")
        frame = cell_errors.finish(frame)
        reasons.update(cell_errors.dropped)
        if not reasons:
            return frame, [], list(range(len(rows)))
        name = where if callable(where) else where.__getitem__
        errors = [ParseError(name(i), reasons[i]) for i in sorted(reasons)]
        good = [i for i in range(len(rows)) if i not in reasons]
        if reasons:
            frame = frame.filter(pl.Series([i not in reasons for i in range(len(rows))]))
        return frame, errors, good

    def _describe(
        self, spec: ColumnSpec, value: Any, missing: bool, cell_errors: CellErrors
    ) -> str:
        """How a bad value reads in the error log: the field, its type and the value."""
        name = cell_errors.type_name(spec.dtype)
        if missing:
            return f'field "{spec.name}" is missing and has no default value'
        if self.origin == "python":
            return (
                f'value {value} does not fit field "{spec.name}" of type {name}: '
                f"{_python_value_error(spec.dtype.strip_optional(), value, name)}"
            )
        return f'JSON value {json.dumps(value)} does not fit field "{spec.name}" of type {name}'


_ENGINE_TYPE_NAMES = {t.INT: "Int", t.FLOAT: "Float", t.STR: "String", t.BOOL: "Bool"}


def _python_value_error(dtype: t.DType, value: Any, name: str) -> str:
    """Why a Python connector's value does not fit ``dtype``, as ``ExceptionType: text``: a
    datetime whose time zone (or lack of one) does not fit the column is a ``ValueError``, as
    in Pathway (the value's type is right, its content is not); other values a
    ``TypeError``."""
    if isinstance(value, datetime.datetime) and dtype in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC):
        if dtype == t.DATE_TIME_NAIVE:
            return (
                f"ValueError: {value} has a time zone, but a DateTimeNaive column holds "
                f"datetimes without one (declare the column DateTimeUtc, or drop the zone)"
            )
        return (
            f"ValueError: {value} has no time zone, but a DateTimeUtc column holds datetimes "
            f"with one (declare the column DateTimeNaive, or give the datetime a zone)"
        )
    return type_mismatch(value, _ENGINE_TYPE_NAMES.get(dtype, name))


_FAST_JSON: dict[t.DType, pl.DataType] = {
    t.INT: pl.Int64(),
    t.FLOAT: pl.Float64(),
    t.BOOL: pl.Boolean(),
    t.STR: pl.String(),
}


class JsonLinesParser(Parser):
    """Each record holds one or more JSON objects, one per line.

    ``json_field_paths`` maps a column to a JSON pointer (``/a/b``) inside the object.
    A record is read by Polars at once when it can be (see :meth:`_read_fast`), unless it
    is small (``parsing.SMALL_DOCUMENT_BYTES``) or has fewer lines than ``fast_min_lines``:
    Polars' fixed cost per call exceeds the per-line cost of a few hundred lines (files of a
    few rows; streaming connectors hand over many small records).
    """

    def __init__(
        self,
        columns: Sequence[ColumnSpec],
        json_field_paths: Mapping[str, str] | None = None,
        *,
        fast_min_lines: int = 0,
    ) -> None:
        self._rows = _DictRows(columns, json_field_paths)
        self.fast_min_lines = fast_min_lines
        self.columns = list(columns)
        self._next_line = 1  # where the next piece of a document starts (RawContext)
        # Polars reads the lines at once when every column is a plain value taken by name.
        self._fast_schema = (
            None
            if json_field_paths
            else {
                spec.name: _FAST_JSON[spec.dtype.strip_optional()]
                for spec in self.columns
                if spec.dtype.strip_optional() in _FAST_JSON
            }
        )
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
        if _SURROGATE_ESCAPE.search(data):
            return None  # Polars reads a lone surrogate as NUL: the exact reader rejects it
        if _may_nest_too_deep(data):
            return None  # Polars reads up to its own, deeper limit: the exact reader reports
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
        records, metadata, first_line = records_of(context)
        if len(records) == 1 and self._fast_schema:
            data = as_bytes(records[0])
            few = len(data) <= parsing.SMALL_DOCUMENT_BYTES or (
                self.fast_min_lines > 0 and data.count(b"\n") < self.fast_min_lines
            )
            frame = None if few else self._read_fast(data)
            if frame is not None:
                line = (
                    self._next_line
                    if isinstance(context, RawContext) and context.continues
                    else first_line
                )
                self._next_line = line + data.count(b"\n")
                return ParsedBlock(frame)
        documents: list[Any] = []
        where: list[str] = []
        errors: list[ParseError] = []
        line = (
            self._next_line if isinstance(context, RawContext) and context.continues else first_line
        )
        quick = _objects_of_lines(records[0]) if len(records) == 1 else None
        if quick is not None:  # the usual case: the same rows, without the per-line checks
            first = line
            self._next_line = line + as_bytes(records[0]).count(b"\n")
            frame, row_errors, _ = self._rows.frame_from_dicts(
                quick, lambda i: where_label(metadata, first + i, "json")
            )
            return ParsedBlock(frame, errors=row_errors)
        for record in records:
            for text, undecodable in decode_lines(record):
                here = where_label(metadata, line, "json")
                line += 1
                if text is None:
                    errors.append(ParseError(here, f"invalid JSON: {undecodable}"))
                    continue
                if not text.strip():
                    continue
                document, reason = load_json_line(text)
                if reason is not None:
                    errors.append(ParseError(here, reason))
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
        return ParsedBlock(frame, errors=sorted(errors + row_errors, key=error_line))


#: Up to this many exactly typed rows, a subject's block is a ListFrame (see exact_block).
LIST_ROWS = 8
_INT64_LOW, _INT64_HIGH = -(2**63), 2**63 - 1
_INSTANCES: dict[Any, pl.DataType] = {
    kind: kind() for kind in (pl.Int64, pl.Float64, pl.Boolean, pl.String)
}


def _utf8(text: str) -> bool:
    """Whether UTF-8 holds ``text`` (not so a lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class TypedRowsParser(Parser):
    """Rows the source already structured: :class:`DictsContext` or :class:`RowsContext`."""

    def __init__(self, columns: Sequence[ColumnSpec]) -> None:
        self.columns = list(columns)
        self._rows = _DictRows(columns, origin="python")

    def exact_block(self, rows: Sequence[Any], kind: str) -> ParsedBlock | None:
        """The block :meth:`parse` gives for ``rows`` of one ``kind`` without ids when they
        are dicts holding every field, each of exactly its column's Python type; None
        otherwise (:meth:`parse` decides). Saves a live update the general path's calls."""
        if not self._rows.exact or not rows or set(map(type, rows)) != {dict}:
            return None
        if len(rows) <= LIST_ROWS:  # a live update's few rows: kept as Python lists
            columns = self._rows.exact_lists(rows)
            return None if columns is None else ParsedBlock(ListFrame(columns), kind=kind)
        frame = self._rows.exact_frame(rows)
        return None if frame is None else ParsedBlock(frame, kind=kind)

    def parse(self, context: ReaderContext) -> ParsedBlock:
        if isinstance(context, RowsContext):
            return ParsedBlock(self._conform(context.frame), kind=context.kind, keys=context.keys)
        if not isinstance(context, DictsContext):
            raise TypeError(
                f"typed rows come as DictsContext or RowsContext, not {type(context).__name__}"
            )
        source = (context.metadata or {}).get("path", "row")
        frame, errors, good = self._rows.frame_from_dicts(
            context.rows, lambda i: f"{source} {i + 1}"
        )
        kinds = context.kinds
        keys = context.keys
        kind = kinds if isinstance(kinds, str) else "column"
        if not isinstance(kinds, str):
            frame = frame.with_columns(
                pl.Series("_kind", [kinds[i] for i in good], dtype=pl.String)
            )
        key_series = None
        if keys is not None and any(k is not None for k in keys):
            kept = [keys[i] for i in good]
            if any(k is None for k in kept):
                frame = frame.with_columns(
                    pl.Series(
                        "_key", [None if k is None else int(k) for k in kept], dtype=pl.UInt128
                    )
                )
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
                series.append(
                    t.series_from_values(
                        spec.name, [missing_value(spec)] * frame.height, spec.dtype
                    )
                )
        extra = [frame[c] for c in ("_kind",) if c in frame.columns]
        return pl.DataFrame(series + extra)
