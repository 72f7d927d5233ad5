"""Schemas built from data rather than from a class body: ``pw.schema_builder`` (column
definitions), ``pw.schema_from_types``, ``pw.schema_from_dict``, ``schema_from_dtypes``,
``pw.schema_from_csv`` (types guessed from a file), type names as text
(:func:`type_from_name`) and ``pw.assert_table_has_schema``.

The schema class itself is :mod:`deltaflow.schema_class`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from deltaflow import _types as t
from deltaflow.error_display import user_call
from deltaflow.schema_class import (
    ColumnDefinition,
    ColumnSchema,
    Schema,
    SchemaProperties,
    _column_schema,
    schema_from_columns,
)


def schema_builder(
    columns: dict[str, ColumnDefinition],
    *,
    name: str | None = None,
    properties: SchemaProperties = SchemaProperties(),  # noqa: B008
    id_type: type = t.Pointer,
) -> type[Schema]:
    """Build a schema from ``column_definition(...)`` objects keyed by column name.

    Parameters:
        columns: column names mapped to ``pw.column_definition(dtype=...)`` objects.
        name: the schema class's name.
        properties: ``pw.SchemaProperties(append_only=...)``.
        id_type: the type of the row ids.

    Examples:
        >>> import deltaflow as pw
        >>> Stock = pw.schema_builder({"item": pw.column_definition(dtype=str, primary_key=True),
        ...                            "qty": pw.column_definition(dtype=int)}, name="Stock")
        >>> Stock.typehints(), Stock.primary_key_columns()
        ({'item': <class 'str'>, 'qty': <class 'int'>}, ['item'])
    """
    resolved: dict[str, ColumnSchema] = {}
    schema_name = name or "Schema"
    for column, definition in columns.items():
        column_name = definition.name or column
        if column_name in resolved:
            raise ValueError(f"schema {schema_name}: duplicate column name {column_name!r}")
        annotation = definition.dtype if definition.dtype is not None else Any
        resolved[column_name] = _column_schema(
            schema_name, column_name, annotation, definition, properties.append_only
        )
    return schema_from_columns(resolved, name=schema_name, properties=properties)


@user_call
def schema_from_types(_name: str | None = None, **kwargs: Any) -> type[Schema]:
    """Build a schema from ``column=type`` keyword arguments.

    Parameters:
        _name: the schema class's name.
        **kwargs: ``column=type``.

    Examples:
        >>> import deltaflow as pw
        >>> pw.schema_from_types(item=str, qty=int).typehints()
        {'item': <class 'str'>, 'qty': <class 'int'>}
    """
    return schema_builder({n: ColumnDefinition(dtype=tp) for n, tp in kwargs.items()}, name=_name)


@user_call
def schema_from_dict(
    columns: dict,
    *,
    name: str | None = None,
    properties: dict | SchemaProperties = SchemaProperties(),  # noqa: B008
) -> type[Schema]:
    """Build a schema from a dict mapping column names to types or to option dicts.

    A value may be a type, or a dict with ``dtype`` and optionally ``primary_key`` and
    ``default_value``.

    Parameters:
        columns: column names mapped to types, or to dicts of column options.
        name: the schema class's name.
        properties: ``pw.SchemaProperties`` (or a dict of them).

    Examples:
        >>> import deltaflow as pw
        >>> Stock = pw.schema_from_dict({"item": {"dtype": str, "primary_key": True}, "qty": int})
        >>> Stock.typehints(), Stock.primary_key_columns()
        ({'item': <class 'str'>, 'qty': <class 'int'>}, ['item'])
    """
    if isinstance(properties, dict):
        properties = SchemaProperties(**properties)
    definitions: dict[str, ColumnDefinition] = {}
    for column, spec in columns.items():
        if isinstance(spec, dict):
            unknown = set(spec) - {f.name for f in dataclasses.fields(ColumnDefinition)}
            if unknown:
                raise ValueError(
                    f"schema_from_dict: column {column!r} has unknown options {sorted(unknown)}"
                )
            definitions[column] = ColumnDefinition(**spec)
        elif isinstance(spec, ColumnDefinition):
            definitions[column] = spec
        else:
            definitions[column] = ColumnDefinition(dtype=spec)
        if isinstance(definitions[column].dtype, str):
            definitions[column].dtype = type_from_name(definitions[column].dtype, column)
        elif isinstance(definitions[column].dtype, dict):  # to_json_serializable_dict's form
            from deltaflow.schema_export import dtype_from_json

            definitions[column].dtype = dtype_from_json(definitions[column].dtype)
    return schema_builder(definitions, name=name, properties=properties)


def _type_names() -> dict[str, Any]:
    import numpy as np

    names: dict[str, Any] = {
        "int": int,
        "float": float,
        "str": str,
        "bool": bool,
        "bytes": bytes,
        "list": list,
        "tuple": tuple,
        "dict": dict,
        "None": None,
        "np": np,
        "numpy": np,
        "DateTimeNaive": t.DateTimeNaive,
        "DateTimeUtc": t.DateTimeUtc,
        "Duration": t.Duration,
        "Json": t.Json,
        "Pointer": t.Pointer,
        "PyObjectWrapper": t.PyObjectWrapper,
        "ndarray": np.ndarray,
    }
    names.update({n: getattr(typing, n) for n in ("Any", "Optional", "List", "Tuple", "Union")})
    return names


def type_from_name(name: str, column: str = "?") -> Any:
    """The type a column type written as text names (``"int"``, ``"Optional[str]"``,
    ``"DateTimeUtc"``, ``"list[int]"`` ...); a ``TypeError`` for anything else."""
    names = _type_names()
    text = name.strip()
    for prefix in ("pw.", "pathway.", "deltaflow.", "typing."):
        text = text.replace(prefix, "")
    try:
        # Evaluated with no builtins, over type names only: nothing else can run.
        value = eval(text, {"__builtins__": {}}, names)  # noqa: S307
    except Exception:  # noqa: BLE001 - not a type expression
        value = None
    if value is None or isinstance(value, types.ModuleType):
        raise TypeError(
            f"column {column!r}: {name!r} is not a type name deltaflow knows "
            f"(use int, float, str, bool, bytes, DateTimeNaive, DateTimeUtc, "
            f"Duration, Json, Pointer, Any, list[...], tuple[...], Optional[...])"
        )
    return value


def schema_from_dtypes(
    dtypes: Mapping[str, t.DType],
    *,
    name: str = "Schema",
    primary_key: list[str] | None = None,
    id_dtype: t.DType | None = None,
) -> type[Schema]:
    """A schema with the given column types (``id_dtype``: the type of the ids, when it is
    not the one the primary key gives)."""
    keys = set(primary_key or ())
    schema = schema_from_columns(
        {n: ColumnSchema(name=n, dtype=d, primary_key=n in keys) for n, d in dtypes.items()},
        name=name,
    )
    if id_dtype is not None:
        schema.__explicit_id_dtype__ = id_dtype
    return schema


def assert_table_has_schema(
    table: Any,
    schema: type[Schema],
    *,
    allow_superset: bool = True,
    ignore_primary_keys: bool = True,
    allow_subtype: bool = True,
) -> None:
    """Raise ``AssertionError`` unless ``table``'s columns and types fit ``schema``.

    Parameters:
        table: the table checked.
        schema: the schema it must fit.
        allow_superset: whether the table may have more columns than the schema.
        ignore_primary_keys: whether primary keys are left out of the comparison.
        allow_subtype: whether a column may have a narrower type (``int`` for ``float | None`` ...).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ''')
        >>> class Stock(pw.Schema):
        ...     qty: int
        >>> pw.assert_table_has_schema(t, Stock)
        >>> pw.assert_table_has_schema(t, Stock, allow_superset=False)
        Traceback (most recent call last):
        ...
        AssertionError: ...
    """
    actual = table.schema.dtypes()
    expected = schema.dtypes()
    missing = set(expected) - set(actual)
    if missing:
        raise AssertionError(f"table lacks columns {sorted(missing)} of schema {schema.__name__}")
    if not allow_superset and set(actual) - set(expected):
        raise AssertionError(
            f"table has columns {sorted(set(actual) - set(expected))} "
            f"that schema {schema.__name__} does not"
        )
    for column, dtype in expected.items():
        ok = (
            t.is_subtype(actual[column], dtype)
            if allow_subtype
            else t.describe(actual[column]) == t.describe(dtype)
        )
        if not ok:
            raise AssertionError(
                f"column {column!r} has type {actual[column]!r}, schema "
                f"{schema.__name__} expects {dtype!r}"
            )


def schema_from_csv(
    path: str,
    *,
    name: str | None = None,
    properties: SchemaProperties = SchemaProperties(),  # noqa: B008
    delimiter: str = ",",
    quote: str = '"',
    comment_character: str | None = None,
    escape: str | None = None,
    double_quote_escapes: bool = True,
    num_parsed_rows: int | None = None,
) -> type[Schema]:
    """A schema whose columns are the CSV file's header, typed from its first
    ``num_parsed_rows`` rows (all rows when None): ``int`` when every value is an integer,
    ``float`` when every value is a number, ``str`` otherwise, ``Any`` when no row is read."""
    import csv
    import itertools

    with open(path, newline="") as handle:
        lines: Any = handle
        if comment_character is not None:
            lines = (line for line in handle if not line.startswith(comment_character))
        reader = csv.reader(
            lines,
            delimiter=delimiter,
            quotechar=quote,
            escapechar=escape,
            doublequote=double_quote_escapes,
        )
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"schema_from_csv: {path} is empty (no header line)") from None
        rows = list(
            reader if num_parsed_rows is None else itertools.islice(reader, num_parsed_rows)
        )
    columns = {
        column: ColumnDefinition(dtype=_csv_column_type([r[i] for r in rows if i < len(r)]))
        for i, column in enumerate(header)
    }
    return schema_builder(columns, name=name or f"custom_schema({header})", properties=properties)


def _csv_column_type(values: list[str]) -> Any:
    if not values:
        return Any
    for kind in (int, float):
        try:
            for value in values:
                kind(value)
        except ValueError:
            continue
        return kind
    return str
