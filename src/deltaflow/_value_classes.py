"""The classes of values users put in columns besides row ids (:mod:`deltaflow._pointer`):
``pw.Json`` and ``pw.PyObjectWrapper``, with how a value is stored in a Json column.

They are plain Python values; the column types they belong to (``JSON``,
``PY_OBJECT_WRAPPER``) and everything else about types is :mod:`deltaflow._types`, which
re-exports these names.
"""

from __future__ import annotations

import datetime
import json as _json
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from deltaflow._pointer import Pointer


class Json:
    """A JSON value (dict, list, str, int, float, bool or None) stored in a column."""

    __module__ = "deltaflow._types"  # printed and pickled under its former home

    __slots__ = ("value",)
    NULL: Json
    value: Any

    def __init__(self, value: Any) -> None:
        self.value = value.value if isinstance(value, Json) else value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Json):
            return self.value == other.value
        return False

    def __hash__(self) -> int:
        return hash(self.dumps())

    def __getitem__(self, key: Any) -> Json:
        return Json(self.value[key])

    # Python protocols act on the wrapped value (len, iteration, int(), bin() ...), as
    # Pathway's Json does; items come back wrapped.
    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self) -> Iterator[Json]:
        return (Json(item) for item in self.value)

    def __reversed__(self) -> Iterator[Json]:
        return (Json(item) for item in reversed(self.value))

    def __int__(self) -> int:
        return int(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def __index__(self) -> int:
        return operator.index(self.value)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return f"pw.Json({self.value!r})"

    def __str__(self) -> str:
        return self.dumps()

    def dumps(self) -> str:
        return _json.dumps(self.value, sort_keys=False, default=_json_default, ensure_ascii=False)

    # Conversions of the wrapped value; a value of another kind (None included) is a
    # ValueError, as in Pathway.
    def as_int(self) -> int:
        return self._as(int, int)

    def as_float(self) -> float:
        return self._as((int, float), float)

    def as_str(self) -> str:
        return self._as(str, str)

    def as_bool(self) -> bool:
        return self._as(bool, bool)

    def as_list(self) -> list:
        return self._as(list, list)

    def as_dict(self) -> dict:
        return self._as(dict, dict)

    def _as(self, accepted: type | tuple[type, ...], convert: type) -> Any:
        value = self.value
        if not isinstance(value, accepted) or (isinstance(value, bool) and convert is not bool):
            raise ValueError(f"Cannot convert Json {self} to {convert.__name__}")
        return convert(value)

    @staticmethod
    def parse(text: str | bytes) -> Json:
        return Json(_json.loads(text))

    @staticmethod
    def dumps_value(value: Any) -> str:
        return _json.dumps(
            value.value if isinstance(value, Json) else value,
            default=_json_default,
            ensure_ascii=False,
        )


Json.NULL = Json(None)


def _json_default(value: Any) -> Any:
    if isinstance(value, Json):
        return value.value
    if isinstance(value, Pointer):
        return str(value)  # as sinks write ids
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"value {value!r} of type {type(value).__name__} is not JSON serializable")


def json_stored(value: Any) -> Any:
    """A value as a Json column stores it (as Pathway serializes it): date-times become
    ISO 8601 text with nanoseconds (and their UTC offset), durations integer nanoseconds,
    tuples lists, nested ``pw.Json`` their value; anything else is kept."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {key: json_stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_stored(item) for item in value]
    if isinstance(value, Json):
        return json_stored(value.value)
    if isinstance(value, datetime.datetime):
        import pandas as pd  # loaded on first use: `import deltaflow` stays light

        stamp = pd.Timestamp(value)
        text = (
            f"{stamp.strftime('%Y-%m-%dT%H:%M:%S')}."
            f"{stamp.microsecond * 1000 + stamp.nanosecond:09d}"
        )
        offset = stamp.strftime("%z")
        return text if not offset else f"{text}{offset[:3]}:{offset[3:]}"
    if isinstance(value, datetime.timedelta):
        import pandas as pd

        return pd.Timedelta(value).value
    return value


class PyObjectWrapper:
    """Carries an arbitrary Python object through a pipeline untouched."""

    __module__ = "deltaflow._types"  # printed and pickled under its former home

    __slots__ = ("serializer", "value")

    def __init__(self, value: Any, serializer: Any = None) -> None:
        self.value = value
        self.serializer = serializer

    def __class_getitem__(cls, item: Any) -> type[PyObjectWrapper]:
        return cls

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyObjectWrapper) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("PyObjectWrapper", repr(self.value)))

    def __repr__(self) -> str:
        return f"PyObjectWrapper({self.value!r})"


def wrap_py_object(object: Any, *, serializer: Any = None) -> PyObjectWrapper:  # noqa: A002
    """Wrap ``object`` so that it can be stored in a ``PyObjectWrapper`` column."""
    return PyObjectWrapper(object, serializer)
