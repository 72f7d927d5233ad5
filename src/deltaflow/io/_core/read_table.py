"""The common end of every ``read`` function: check the arguments, build the input table.

Every connector's ``read`` validates its arguments here, when the pipeline is defined, so that
a wrong mode, a negative autocommit duration or a schema the format cannot fill fails at once
with a message naming the connector and the parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from deltaflow import _types as t
from deltaflow.io._core.base import Parser, Reader
from deltaflow.io._core.formats import METADATA_COLUMN
from deltaflow.io._core.input_session import InputSession
from deltaflow.schema import Schema, schema_from_types

logger = logging.getLogger("deltaflow.io")

MODES = ("streaming", "static")


def check_mode(mode: Any, connector: str) -> str:
    if mode not in MODES:
        raise ValueError(f"{connector}: mode must be 'streaming' or 'static', got {mode!r}")
    return mode


def check_autocommit(value: Any, connector: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(
            f"{connector}: autocommit_duration_ms must be a non-negative number of "
            f"milliseconds or None, got {value!r}"
        )
    return int(value)


def check_backlog(value: Any, connector: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{connector}: max_backlog_size must be a positive number of rows or "
            f"None, got {value!r}"
        )
    return value


def check_schema(
    schema: Any,
    connector: str,
    *,
    required: bool = True,
    allowed: Iterable[t.DType] | None = None,
    may_be_empty: bool = False,
    components: Iterable[str] = ("payload",),
) -> type[Schema] | None:
    """``schema`` must be a ``pw.Schema`` subclass with columns the format can fill (none at
    all only when ``may_be_empty``), each read from a part of the input the connector has
    (``pw.column_definition(source_component=...)``: ``components``)."""
    if schema is None:
        if required:
            raise ValueError(
                f"{connector}: a schema is required (schema=MySchema, a pw.Schema subclass)"
            )
        return None
    if not (isinstance(schema, type) and issubclass(schema, Schema)):
        raise TypeError(f"{connector}: schema must be a pw.Schema subclass, got {schema!r}")
    if not schema.columns() and not may_be_empty:
        raise ValueError(f"{connector}: the schema {schema.__name__} has no columns")
    components = tuple(components)
    for name, column in schema.columns().items():
        component = getattr(column, "source_component", "payload")
        if component not in components:
            raise ValueError(
                f"{connector}: column {name!r} of the schema {schema.__name__} is to be read "
                f"from the {component!r} part of the input (source_component), which this "
                f"connector does not have; it reads {' and '.join(map(repr, components))}"
            )
    if allowed is not None:
        allowed = list(allowed)
        for name, column in schema.columns().items():
            if column.dtype.strip_optional() not in allowed:
                raise TypeError(
                    f"{connector}: column {name!r} of type {column.dtype!r} cannot "
                    f"be read in this format"
                )
    return schema


def check_extra_kwargs(kwargs: Mapping[str, Any], connector: str) -> None:
    """Pathway accepts and ignores some legacy keywords; say so rather than fail silently."""
    for key in kwargs:
        logger.warning("%s: argument %r is not supported and is ignored", connector, key)


def with_metadata_column(schema: type[Schema]) -> type[Schema]:
    """``schema`` plus the ``_metadata: Json`` column of ``with_metadata=True``."""
    if METADATA_COLUMN in schema.columns():
        return schema
    return schema | schema_from_types(_metadata=t.Json)


def reader_table(
    *,
    schema: type[Schema],
    reader_factory: Callable[[], Reader],
    parser: Parser,
    name: str,
    autocommit_duration_ms: int | None,
    max_backlog_size: int | None,
    keep_row_state: bool = False,
    named: bool = True,
    splits: bool = False,
    static: bool = False,
) -> Any:
    """The input table fed by an :class:`InputSession` running ``reader_factory``'s readers.

    ``named``: whether the user gave the connector its ``name=`` (SELECTIVE_PERSISTING
    persists only such inputs). ``splits``: the readers can read a share of their
    input (``Reader.keep_share``), so several workers may each read theirs; ``static``: the
    input is read once, then finishes."""
    from deltaflow.table import input_table

    session = InputSession(
        name,
        reader_factory,
        parser,
        columns=schema.dtypes(),
        primary_key=schema.primary_key_columns(),
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=max_backlog_size,
        keep_row_state=keep_row_state,
        named=named,
        splits=splits,
        static=static,
    )
    return input_table(schema, session, name=name)


def format_schema(fmt: str, schema: Any, connector: str) -> type[Schema]:
    """The table schema a read format produces: csv/json take the user's (checked), the
    others have fixed columns (``data`` as str or bytes, or ``_metadata``)."""
    if fmt in ("csv", "json"):
        checked = check_schema(schema, connector)
        assert checked is not None
        return checked
    if fmt == "only_metadata":
        if schema is not None:
            raise ValueError(
                f"{connector}: format 'only_metadata' takes no schema (its only "
                f"column is _metadata)"
            )
        return schema_from_types(_metadata=t.Json)
    wanted = t.BYTES if fmt == "binary" else t.STR
    if schema is not None:
        check_schema(schema, connector)
        columns = schema.columns()
        if list(columns) != ["data"] or columns["data"].dtype.strip_optional() != wanted:
            raise ValueError(
                f"{connector}: format {fmt!r} produces one column data: "
                f"{wanted!r}; the schema {schema.__name__} does not fit it"
            )
    return schema_from_types(data=bytes if fmt == "binary" else str)
