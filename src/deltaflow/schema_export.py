"""Schemas as data and as code: JSON-ready dicts, Python source, and schema comparison.

What the schema classes' ``to_json_serializable_dict``, ``generate_class``,
``generate_class_to_file`` and ``assert_matches_schema`` do (see :mod:`deltaflow.schema`).

* A schema as a dict: ``{"columns": {name: {"dtype": {...}, "name", "primary_key",
  "append_only", "description", "source_component", ["_serialized_default_value"],
  ["_serialized_example"]}}}``. Column types are nested ``{"type": NAME, ...}`` dicts named
  as Pathway names them (``INT``, ``OPTIONAL`` with ``wrapped`` ...). Default values and
  examples are JSON text in the connectors' JSON conventions
  (:mod:`deltaflow.io._core.serialization`), so any column type round-trips; Pathway writes
  those two in a binary encoding of its own, which deltaflow does not read.
  ``pw.schema_from_dict(**d)`` builds the schema back.
* A schema as code: a ``class Name(pw.Schema)`` body whose annotations and
  ``pw.column_definition(...)`` arguments rebuild an equal schema.
"""

from __future__ import annotations

import dataclasses
import json
import keyword
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from deltaflow import _types as t

if TYPE_CHECKING:
    from deltaflow.schema import ColumnSchema, SchemaMetaclass

# --------------------------------------------------------------------------------------------
# Column types <-> JSON
# --------------------------------------------------------------------------------------------

_SIMPLE_JSON_NAMES: dict[str, t.DType] = {
    "INT": t.INT,
    "FLOAT": t.FLOAT,
    "BOOL": t.BOOL,
    "STR": t.STR,
    "BYTES": t.BYTES,
    "DATE_TIME_NAIVE": t.DATE_TIME_NAIVE,
    "DATE_TIME_UTC": t.DATE_TIME_UTC,
    "DURATION": t.DURATION,
    "Json": t.JSON,
    "ANY": t.ANY,
    "PY_OBJECT_WRAPPER": t.PY_OBJECT_WRAPPER,
    "POINTER": t.POINTER,
    "NONE": t.NONE,
}


def dtype_to_json(dtype: t.DType) -> dict[str, Any]:
    """A column type as a JSON-ready dict (``{"type": "OPTIONAL", "wrapped": {...}}`` ...)."""
    if isinstance(dtype, t.Optional):
        return {"type": "OPTIONAL", "wrapped": dtype_to_json(dtype.wrapped)}
    if isinstance(dtype, t.Tuple):
        return {"type": "TUPLE", "wrapped": [dtype_to_json(arg) for arg in dtype.args]}
    if isinstance(dtype, t.List):
        return {"type": "LIST", "wrapped": dtype_to_json(dtype.arg)}
    if isinstance(dtype, t.Array):
        return {
            "type": "ARRAY",
            "n_dim": dtype.n_dim,
            "wrapped": dtype_to_json(dtype.wrapped or t.ANY),
        }
    if dtype.name == t.POINTER.name:
        return {"type": "POINTER"}  # the key types are not part of the stored form
    for name, simple in _SIMPLE_JSON_NAMES.items():
        if dtype is simple or (dtype == simple and type(dtype) is type(simple)):
            return {"type": name}
    raise TypeError(f"column type {dtype!r} has no JSON form")


def dtype_from_json(data: dict[str, Any]) -> t.DType:
    """The column type a :func:`dtype_to_json` dict describes (``ValueError`` if unknown)."""
    if not isinstance(data, dict) or "type" not in data:
        raise ValueError(f"a column type as JSON is a dict with a 'type' key, got {data!r}")
    kind = data["type"]
    if kind in _SIMPLE_JSON_NAMES:
        return _SIMPLE_JSON_NAMES[kind]
    if kind == "OPTIONAL":
        return t.optional(dtype_from_json(data["wrapped"]))
    if kind == "TUPLE":
        return t.Tuple(*(dtype_from_json(arg) for arg in data["wrapped"]))
    if kind == "LIST":
        return t.List(dtype_from_json(data["wrapped"]))
    if kind == "ARRAY":
        wrapped = dtype_from_json(data.get("wrapped", {"type": "ANY"}))
        n_dim = data.get("n_dim")
        if n_dim is None and wrapped == t.ANY:
            return t.ARRAY
        return t.Array(n_dim, None if wrapped == t.ANY else wrapped)
    raise ValueError(f"unknown column type name {kind!r} in {data!r}")


# --------------------------------------------------------------------------------------------
# Values <-> JSON text
# --------------------------------------------------------------------------------------------


def serialize_value(value: Any) -> str:
    """``value`` (a default value or an example) as JSON text."""
    from deltaflow.io._core.serialization import json_value

    return json.dumps(json_value(value))


def deserialize_value(text: str, dtype: t.DType, what: str) -> Any:
    """The value of a column of ``dtype`` that :func:`serialize_value` wrote as ``text``."""
    from deltaflow.io._core.serialization import ConversionError, convert_value

    try:
        return convert_value(json.loads(text), dtype)
    except (ValueError, TypeError, ConversionError) as exc:
        raise ValueError(
            f"{what}: cannot read {text!r} as a value of type {dtype!r}: {exc}"
        ) from None


def column_to_json(column: ColumnSchema) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dtype": dtype_to_json(column.dtype),
        "name": column.name,
        "primary_key": column.primary_key,
        "append_only": column.append_only,
        "description": column.description,
        "source_component": column.source_component,
    }
    if column.has_default_value():
        data["_serialized_default_value"] = serialize_value(column.default_value)
    if column.example is not None:
        data["_serialized_example"] = serialize_value(column.example)
    return data


def columns_to_json(schema: SchemaMetaclass) -> dict[str, dict[str, Any]]:
    return {name: column_to_json(column) for name, column in schema.__columns__.items()}


def schema_to_json(schema: SchemaMetaclass) -> dict[str, Any]:
    return {"columns": columns_to_json(schema)}


# --------------------------------------------------------------------------------------------
# Schemas as Python source
# --------------------------------------------------------------------------------------------

_SIMPLE_SOURCE = {
    t.INT.name: "int",
    t.FLOAT.name: "float",
    t.BOOL.name: "bool",
    t.STR.name: "str",
    t.BYTES.name: "bytes",
    t.DATE_TIME_NAIVE.name: "pw.DateTimeNaive",
    t.DATE_TIME_UTC.name: "pw.DateTimeUtc",
    t.DURATION.name: "pw.Duration",
    t.JSON.name: "pw.Json",
    t.ANY.name: "typing.Any",
    t.PY_OBJECT_WRAPPER.name: "pw.PyObjectWrapper",
    t.NONE.name: "None",
}


def dtype_source(dtype: t.DType) -> str:
    """A Python annotation that ``pw.Schema`` reads back as ``dtype``."""
    if isinstance(dtype, t.Optional):
        if dtype.wrapped == t.ANY:
            return "typing.Optional[typing.Any]"
        return f"{dtype_source(dtype.wrapped)} | None"
    if isinstance(dtype, t.Tuple):
        return "tuple[" + (", ".join(dtype_source(a) for a in dtype.args) or "()") + "]"
    if isinstance(dtype, t.List):
        return f"list[{dtype_source(dtype.arg)}]"
    if isinstance(dtype, t.Array):
        if dtype.n_dim is None and dtype.wrapped is None:
            return "numpy.ndarray"
        wrapped = dtype_source(dtype.wrapped) if dtype.wrapped is not None else "typing.Any"
        return f"numpy.ndarray[{dtype.n_dim}, {wrapped}]"
    if dtype.name == t.POINTER.name:
        args = getattr(dtype, "args", None)
        return (
            "pw.Pointer"
            if not args
            else "pw.Pointer[" + ", ".join(dtype_source(a) for a in args) + "]"
        )
    try:
        return _SIMPLE_SOURCE[dtype.name]
    except KeyError:
        raise TypeError(f"column type {dtype!r} has no Python spelling") from None


def value_source(value: Any) -> str | None:
    """Python source evaluating to ``value`` (with ``pw`` and ``numpy`` imported), or None
    when there is no short one (the caller then writes the JSON form)."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if isinstance(value, t.Json):
        return f"pw.Json({value.value!r})"
    # A pandas value means pandas is loaded already; otherwise do not import it for this.
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.Timestamp):
        kind = "DateTimeUtc" if value.tzinfo is not None else "DateTimeNaive"
        return f"pw.{kind}({value.isoformat()!r})"
    if pd is not None and isinstance(value, pd.Timedelta):
        return f"pw.Duration({value.value})"
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return f"numpy.array({value.tolist()!r}, dtype=numpy.{value.dtype.name})"
    if isinstance(value, tuple):
        items = [value_source(v) for v in value]
        if all(item is not None for item in items):
            return "(" + "".join(f"{item}, " for item in items).rstrip(" ") + ")"
    return None


def _definition_arguments(
    column: ColumnSchema, attribute: str, schema_append_only: bool
) -> list[str]:
    arguments = []
    if column.primary_key:
        arguments.append("primary_key=True")
    for field, value in (("default_value", column.default_value), ("example", column.example)):
        if field == "default_value" and not column.has_default_value():
            continue
        if field == "example" and value is None:
            continue
        source = value_source(value)
        arguments.append(
            f"{field}={source}"
            if source is not None
            else f"_serialized_{field}={serialize_value(value)!r}"
        )
    if column.description is not None:
        arguments.append(f"description={column.description!r}")
    if attribute != column.name:
        arguments.append(f"name={column.name!r}")
    if column.append_only and not schema_append_only:
        arguments.append("append_only=True")
    if column.source_component != "payload":
        arguments.append(f"source_component={column.source_component!r}")
    return arguments


def _imports(source: str) -> list[str]:
    lines = []
    if "typing." in source:
        lines.append("import typing")
    if "numpy." in source:
        lines.append("import numpy")
    lines.append("import deltaflow as pw")
    return lines


def generate_class(
    schema: SchemaMetaclass, class_name: str | None = None, generate_imports: bool = False
) -> str:
    """Python source of a ``pw.Schema`` subclass equal to ``schema``."""
    name = class_name if class_name is not None else schema.__name__
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"generate_class: {name!r} is not a valid class name; pass class_name=")
    append_only = bool(schema.__properties__.append_only)
    header = f"class {name}(pw.Schema{', append_only=True' if append_only else ''}):"
    body = []
    taken: set[str] = set()
    for index, column in enumerate(schema.__columns__.values()):
        attribute = column.name
        if (
            not attribute.isidentifier()
            or keyword.iskeyword(attribute)
            or attribute.startswith("__")
            or attribute in taken
        ):
            attribute = f"column_{index}"
        taken.add(attribute)
        line = f"    {attribute}: {dtype_source(column.dtype)}"
        arguments = _definition_arguments(column, attribute, append_only)
        if arguments:
            line += f" = pw.column_definition({', '.join(arguments)})"
        body.append(line)
    if not body:
        body.append("    pass")
    text = "\n".join([header, *body]) + "\n"
    if generate_imports:
        text = "\n".join(_imports(text)) + "\n\n\n" + text
    return text


def generate_class_to_file(
    schema: SchemaMetaclass,
    path: str | os.PathLike[str],
    class_name: str | None = None,
    generate_imports: bool = False,
) -> None:
    """Write :func:`generate_class`'s source to ``path`` (replacing the file)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(
            generate_class(schema, class_name=class_name, generate_imports=generate_imports)
        )


# --------------------------------------------------------------------------------------------
# Comparing schemas
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ColumnProperties:
    """What a schema says of one column beyond its name: its type and whether its rows are
    only ever appended."""

    dtype: t.DType
    append_only: bool = False


def same_value(left: Any, right: Any) -> bool:
    """Equality of two cell values that also works for numpy arrays (same shape and
    elements)."""
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        return (
            isinstance(left, np.ndarray)
            and isinstance(right, np.ndarray)
            and left.shape == right.shape
            and bool(np.all(left == right))
        )
    try:
        return bool(left == right)
    except (TypeError, ValueError):
        return left is right


def _fits(actual: t.DType, expected: t.DType, allow_subtype: bool) -> bool:
    # describe() spells out pointer key types, which DType equality leaves out.
    if t.describe(actual) == t.describe(expected):
        return True
    return allow_subtype and t.is_subtype(actual, expected)


def assert_matches_schema(
    schema: SchemaMetaclass,
    other: SchemaMetaclass,
    *,
    allow_superset: bool = True,
    ignore_primary_keys: bool = True,
    allow_subtype: bool = True,
    ignore_properties: bool = True,
) -> None:
    """Raise ``AssertionError`` unless ``schema`` has ``other``'s columns with fitting types
    (a subtype when ``allow_subtype``), no others unless ``allow_superset``, the same primary
    key unless ``ignore_primary_keys``, and the same defaults, descriptions, examples and
    append-only flags unless ``ignore_properties``."""
    ours, theirs = schema.__columns__, other.__columns__
    lacking = [name for name in theirs if name not in ours]
    if lacking:
        raise AssertionError(
            f"schema {schema.__name__} lacks columns {lacking} of schema {other.__name__}"
        )
    extra = [name for name in ours if name not in theirs]
    if extra and not allow_superset:
        raise AssertionError(
            f"schema {schema.__name__} has columns {extra} that schema "
            f"{other.__name__} does not have"
        )
    for name, expected in theirs.items():
        actual = ours[name]
        if not _fits(actual.dtype, expected.dtype, allow_subtype):
            raise AssertionError(
                f"column {name!r} has type {actual.dtype!r} in schema "
                f"{schema.__name__} and {expected.dtype!r} in schema "
                f"{other.__name__}"
            )
    if not ignore_primary_keys and schema.primary_key_columns() != other.primary_key_columns():
        raise AssertionError(
            f"primary key {schema.primary_key_columns()} of schema "
            f"{schema.__name__} differs from {other.primary_key_columns()} "
            f"of schema {other.__name__}"
        )
    if ignore_properties:
        return
    if bool(schema.__properties__.append_only) != bool(other.__properties__.append_only):
        raise AssertionError(
            f"schema {schema.__name__} is "
            f"{'' if schema.__properties__.append_only else 'not '}"
            f"append-only, schema {other.__name__} is "
            f"{'' if other.__properties__.append_only else 'not '}"
        )
    for name, expected in theirs.items():
        actual = ours[name]
        for field in ("append_only", "description", "example"):
            if not same_value(getattr(actual, field), getattr(expected, field)):
                raise AssertionError(
                    f"column {name!r}: {field} {getattr(actual, field)!r} in "
                    f"schema {schema.__name__}, {getattr(expected, field)!r} "
                    f"in schema {other.__name__}"
                )
        if actual.has_default_value() != expected.has_default_value() or (
            actual.has_default_value()
            and not same_value(actual.default_value, expected.default_value)
        ):
            raise AssertionError(
                f"column {name!r}: default value "
                f"{actual.default_value!r} in schema {schema.__name__}, "
                f"{expected.default_value!r} in schema {other.__name__}"
            )
