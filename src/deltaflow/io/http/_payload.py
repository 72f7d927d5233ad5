"""Turning an HTTP request into a row of the endpoint's schema, or a 400 naming the field.

A GET request's fields are its query-string parameters (text, converted to each column's
type); other methods send a JSON object. The conversions accept what Pathway 0.33 accepts
(numbers for ``str`` columns, numeric text for ``int``/``float`` columns, integral floats for
``int`` columns) but never turn a value into a plausible wrong one: ``"false"`` is False,
``1.5`` is not an ``int``, ``"abc"`` is no number -- those are refused with a 400 naming the
field, where Pathway logs the error and leaves the request unanswered.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from deltaflow import _types as t
from deltaflow.io._core.serialization import ConversionError, convert_value, json_from_text
from deltaflow.schema import Schema

_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class BadRequest(Exception):
    """The request cannot become a row; the message is the 400 response's text."""


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, t.Json) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ConversionError("a boolean is not an int")
    if isinstance(value, int):
        result = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and _INT_TEXT.fullmatch(value)
    ):
        result = int(value)
    else:
        raise ConversionError("not an integer")
    if not t.INT64_MIN <= result <= t.INT64_MAX:
        raise ConversionError("does not fit in a 64-bit int")
    return result


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ConversionError("a boolean is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            raise ConversionError("not a number") from None
        if math.isnan(result) and value.strip().lower() not in ("nan", "+nan", "-nan"):
            raise ConversionError("not a number")
        return result
    raise ConversionError("not a number")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ConversionError("not a boolean (true or false)")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)  # 5 -> "5", as Pathway does
    raise ConversionError("not a string")


def convert_field(value: Any, dtype: t.DType, *, from_text: bool) -> Any:
    """``value`` (a JSON value, or text from a query string) for a column of ``dtype``."""
    if value is None:
        if dtype.is_optional or dtype.strip_optional() in (t.ANY, t.JSON):
            return t.Json(None) if dtype.strip_optional() == t.JSON else None
        raise ConversionError("null for a column that is not optional")
    base = dtype.strip_optional()
    if base == t.ANY:
        return value
    if base == t.INT:
        return _to_int(value)
    if base == t.FLOAT:
        return _to_float(value)
    if base == t.BOOL:
        return _to_bool(value)
    if base == t.STR:
        return _to_str(value)
    if base == t.JSON:
        return t.Json(value)  # query-string text stays a JSON string, as in Pathway
    if from_text and isinstance(value, str) and isinstance(base, t.Tuple | t.List | t.Array):
        try:
            value = json_from_text(value)
        except ValueError:
            raise ConversionError("not a JSON list") from None
    return convert_value(value, dtype)


def row_from_payload(payload: Any, schema: type[Schema], *, from_text: bool) -> dict[str, Any]:
    """The row a request's fields make; :class:`BadRequest` names the first bad field."""
    if not isinstance(payload, Mapping):
        raise BadRequest(
            "the request body must be a JSON object with the fields "
            + ", ".join(repr(n) for n in schema.column_names())
        )
    row: dict[str, Any] = {}
    for name, column in schema.columns().items():
        if name not in payload:
            if column.has_default_value():
                row[name] = column.default_value
                continue
            raise BadRequest(f"the field {name!r} is missing")
        value = payload[name]
        try:
            row[name] = convert_field(value, column.dtype, from_text=from_text)
        except ConversionError as exc:
            raise BadRequest(
                f"the field {name!r} must be {column.dtype!r}, got {_describe(value)} ({exc})"
            ) from None
    return row


class RestServerSubject:
    """The request-to-row conversion under the name Pathway's modules use for it (some
    programs and tests import it from ``pathway.io.http._server``).

    Only ``_schema`` and :meth:`_cast_types_to_schema` are provided: the REST connector itself
    does not go through a subject.
    """

    _schema: type[Schema]

    def __init__(self, schema: type[Schema]) -> None:
        self._schema = schema

    def _cast_types_to_schema(self, payload: dict[str, Any]) -> None:
        """Convert the fields of ``payload`` present in the schema in place (text from a query
        string included); a field that does not convert raises :class:`BadRequest`."""
        for name, column in self._schema.columns().items():
            if name in payload:
                try:
                    payload[name] = convert_field(payload[name], column.dtype, from_text=True)
                except ConversionError as exc:
                    raise BadRequest(
                        f"the field {name!r} must be {column.dtype!r}, got "
                        f"{_describe(payload[name])} ({exc})"
                    ) from None
