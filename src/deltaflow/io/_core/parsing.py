"""What every parser shares: the schema's columns as parsers see them, the records of a
reader context, line-numbered error locations, and bad values kept as Error cells.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.io._core.bad_records import report_bad_value
from deltaflow.io._core.base import KeyValueContext, ParseError, RawContext, ReaderContext

METADATA_COLUMN = "_metadata"
#: Documents up to this size are parsed in Python where they can be (CSV: csv_fast_split;
#: JSON lines: JsonLinesParser): a Polars reader call costs a quarter to half a millisecond
#: whatever the size, most of the cost of a small file (a directory of many small files, a
#: stream of small appends), where Python takes tens of microseconds.
SMALL_DOCUMENT_BYTES = 16_384
NO_DEFAULT = object()


@dataclass(frozen=True)
class ColumnSpec:
    """What a parser needs to know about one schema column."""

    name: str
    dtype: t.DType
    default: Any = NO_DEFAULT
    primary_key: bool = False  # a bad value here drops the row even when errors are values

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


def column_specs(schema: Any, *, exclude: Sequence[str] = (METADATA_COLUMN,)) -> list[ColumnSpec]:
    """The parser-facing description of a schema's columns."""
    specs = []
    for name, column in schema.columns().items():
        if name in exclude:
            continue
        default = column.default_value if column.has_default_value() else NO_DEFAULT
        if default is not NO_DEFAULT:
            check_default(schema, name, column.dtype, default)
        specs.append(
            ColumnSpec(name, column.dtype, default, bool(getattr(column, "primary_key", False)))
        )
    return specs


def _bool_types() -> tuple[type, ...]:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - NumPy comes with pandas
        return (bool,)
    return (bool, np.bool_)


_BOOL_TYPES = _bool_types()


def check_default(schema: Any, name: str, dtype: t.DType, value: Any) -> None:
    """Refuse a default value that is not of its column's type when a connector reading the
    schema is defined (as Pathway does: ``TypeError``, ``ValueError`` for text standing for a
    date or a duration), rather than filling rows with a value of the wrong type or None."""
    from deltaflow.io._core.serialization import ConversionError, convert_value

    base = dtype.strip_optional()
    where = f"schema {getattr(schema, '__name__', schema)}, column {name!r}"
    if value is None:
        if dtype.is_optional or base in (t.ANY, t.JSON):
            return
        raise TypeError(
            f"{where}: the default value is None but the column's type {dtype!r} is not optional"
        )
    # numbers.Integral/Real: NumPy's scalars are fine too (bool is an int, as in Pathway).
    exact: dict[t.DType, tuple[type, ...]] = {
        t.INT: (numbers.Integral,),
        t.FLOAT: (numbers.Real,),
        t.BOOL: _BOOL_TYPES,
        t.STR: (str,),
        t.BYTES: (bytes,),
        t.POINTER: (t.Pointer,),
    }
    if base in exact:
        fits = isinstance(value, exact[base])
        if fits and base == t.INT:
            fits = t.INT64_MIN <= int(value) <= t.INT64_MAX
    elif base in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC, t.DURATION) and isinstance(value, str):
        raise ValueError(f"{where}: the default value {value!r} is text, not a {dtype!r} value")
    else:
        try:
            convert_value(value, dtype)
        except ConversionError:
            fits = False
        else:
            fits = True
    if not fits:
        raise TypeError(
            f"{where}: the default value {value!r} is not of the column's type {dtype!r}"
        )


def where_label(metadata: Mapping[str, Any] | None, line: int | None, fallback: str) -> str:
    source = (metadata or {}).get("path") or fallback
    return f"{source}:{line}" if line is not None else str(source)


def records_of(context: ReaderContext) -> tuple[list[Any], Mapping[str, Any] | None, int]:
    if isinstance(context, RawContext):
        return list(context.records), context.metadata, context.first_line
    if isinstance(context, KeyValueContext):
        return [v for v in context.values if v is not None], context.metadata, 1
    raise TypeError(f"this parser reads raw records, not {type(context).__name__}")


def as_bytes(record: Any) -> bytes:
    return record if isinstance(record, bytes) else str(record).encode()


def is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (ASCII is checked without decoding anything)."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_lines(record: Any) -> list[tuple[str | None, str | None]]:
    """The lines of a record (split on ``\\n``), each as ``(text, None)`` or, for a line that
    is not valid UTF-8, ``(None, why)``: such a line is reported, never read with replacement
    characters standing for its bytes."""
    if not isinstance(record, bytes | bytearray):
        return [(line, None) for line in str(record).split("\n")]
    data = bytes(record)
    if is_utf8(data):
        return [(line, None) for line in data.decode("utf-8").split("\n")]
    lines: list[tuple[str | None, str | None]] = []
    for raw in data.split(b"\n"):
        try:
            lines.append((raw.decode("utf-8"), None))
        except UnicodeDecodeError as exc:
            lines.append((None, invalid_utf8_reason(exc)))
    return lines


def invalid_utf8_reason(error: UnicodeDecodeError) -> str:
    """How a decoding failure is reported: the offending bytes and where they are."""
    bad = error.object[error.start : error.end]
    return f"not valid UTF-8 (byte {bad.hex(' ')} at offset {error.start})"


def missing_value(spec: ColumnSpec) -> Any:
    """The value of a column absent from a record; raises KeyError if it is required."""
    if spec.has_default:
        return spec.default
    if spec.dtype.is_optional or spec.dtype.strip_optional() in (t.ANY, t.JSON):
        return None
    raise KeyError(spec.name)


def empty_frame(specs: Sequence[ColumnSpec]) -> pl.DataFrame:
    return pl.DataFrame(schema={s.name: s.dtype.to_polars() for s in specs})


def error_line(error: ParseError) -> int:
    """The line number at the end of ``where`` (``file:line``), 0 if there is none."""
    line = error.where.rpartition(":")[2]
    return int(line) if line.isdigit() else 0


class CellErrors:
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
        names: dict[t.DType, str] = {
            t.INT: "int",
            t.FLOAT: "float",
            t.STR: "str",
            t.BOOL: "bool",
            t.BYTES: "bytes",
        }
        name = names.get(base, repr(base))
        return f"{name} | None" if dtype.is_optional else name

    def add(
        self, spec: ColumnSpec, values: pl.Series, bad: pl.Series, messages: list[str]
    ) -> pl.Series:
        rows = bad.arg_true().to_list()
        if spec.primary_key:
            for row, message in zip(rows, messages, strict=True):
                if row not in self.dropped:  # reported by the session, as skipped rows are
                    self.dropped[row] = f"row skipped: its primary key has no value ({message})"
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
                report_bad_value(message)
        if not self.masks:
            return frame
        self._errors.mark_seen()
        return frame.with_columns(
            [self._errors.with_errors(frame[name], mask) for name, mask in self.masks.items()]
        )
