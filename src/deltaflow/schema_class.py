"""The ``pw.Schema`` class: column definitions, the metaclass that reads a schema's
annotations into resolved columns, and the operations on schema classes (``|``, ``without``,
``with_types``, ``update_properties`` ...).

Schemas built from data (``pw.schema_builder``, ``pw.schema_from_types``, ``schema_from_csv``
...) are in :mod:`deltaflow.schema_builders`; :mod:`deltaflow.schema` gathers both.
"""

from __future__ import annotations

import dataclasses
import decimal
import os
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from deltaflow import _types as t


class _Undefined:
    """The marker of a column without a default (one object, compared by identity)."""

    def __repr__(self) -> str:
        return "undefined"

    def __reduce__(self) -> str:
        # Pickled as the module's name for it, so a schema class pickled by value (cloudpickle,
        # a fork's rerun in a fresh interpreter) still finds "no default" after unpickling.
        return "_NO_DEFAULT"


_NO_DEFAULT: Any = _Undefined()


@dataclasses.dataclass(frozen=True)
class SchemaProperties:
    """Schema-wide properties. ``append_only`` promises rows are never deleted or updated."""

    append_only: bool | None = None


@dataclasses.dataclass
class ColumnDefinition:
    """What ``pw.column_definition`` returns: a column's declared options."""

    primary_key: bool = False
    default_value: Any = _NO_DEFAULT
    dtype: Any = None
    name: str | None = None
    append_only: bool | None = None
    description: str | None = None
    example: Any = None
    source_component: str = "payload"
    # A default value / example in the JSON text form of ``to_json_serializable_dict``,
    # read once the column's type is known.
    _serialized_default_value: str | None = None
    _serialized_example: str | None = None


def column_definition(
    *,
    primary_key: bool = False,
    default_value: Any = _NO_DEFAULT,
    dtype: Any = None,
    name: str | None = None,
    append_only: bool | None = None,
    description: str | None = None,
    example: Any = None,
    source_component: Literal["payload", "key"] = "payload",
    _serialized_default_value: str | None = None,
    _serialized_example: str | None = None,
) -> Any:
    """Declare a schema column's options (primary key, default, explicit type or name).

    Parameters:
        primary_key: whether the column is part of the key giving row ids.
        default_value: the value of the column when a connector's input lacks it.
        dtype: the column's type (else the class annotation gives it).
        name: the column's name in the data (else the attribute's name).
        append_only: whether the column's values are never retracted.
        description, example: documentation of the column (as for an HTTP endpoint).
        source_component: the part of an input message it is read from: ``"payload"`` (the
            default), or ``"key"``: ``pw.io.kafka.read(format="json")`` reads it from the
            message key, a JSON document of its own. Other connectors refuse ``"key"``.

    Examples:
        >>> import deltaflow as pw
        >>> class Stock(pw.Schema):
        ...     item: str = pw.column_definition(primary_key=True)
        ...     qty: int = pw.column_definition(default_value=0)
        >>> Stock.primary_key_columns(), Stock.default_values()
        (['item'], {'qty': 0})
    """
    if source_component not in ("payload", "key"):
        raise ValueError(
            f"pw.column_definition: source_component must be 'payload' or 'key', "
            f"got {source_component!r}"
        )
    return ColumnDefinition(
        primary_key=primary_key,
        default_value=default_value,
        dtype=dtype,
        name=name,
        append_only=append_only,
        description=description,
        example=example,
        source_component=source_component,
        _serialized_default_value=_serialized_default_value,
        _serialized_example=_serialized_example,
    )


@dataclasses.dataclass(frozen=True)
class ColumnSchema:
    """A column of a schema as the engine sees it."""

    name: str
    dtype: t.DType
    primary_key: bool = False
    default_value: Any = _NO_DEFAULT
    append_only: bool = False
    description: str | None = None
    example: Any = None
    source_component: str = "payload"  # the part of a message it is read from (Kafka: key)

    def __eq__(self, other: object) -> bool:
        # Field by field, so that array default values or examples compare too.
        if not isinstance(other, ColumnSchema):
            return NotImplemented
        from deltaflow.schema_export import same_value

        return all(
            same_value(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
        )

    def has_default_value(self) -> bool:
        return self.default_value is not _NO_DEFAULT

    @property
    def typehint(self) -> Any:
        return self.dtype.typehint


class SchemaMetaclass(type):
    """Builds ``__columns__`` from the annotations of a ``Schema`` subclass."""

    __columns__: dict[str, ColumnSchema]
    __properties__: SchemaProperties
    #: The type of the rows' ids (set explicitly for tables' schemas; otherwise derived from
    #: the primary key: see :meth:`id`).
    __explicit_id_dtype__: t.DType | None = None

    def __new__(
        mcs,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        append_only: bool | None = None,
        **kwargs: Any,
    ) -> SchemaMetaclass:
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        columns: dict[str, ColumnSchema] = {}
        for base in reversed(bases):
            columns.update(getattr(base, "__columns__", {}))
        own = namespace.get("__annotations__", {})
        unannotated = [
            attr
            for attr, value in namespace.items()
            if isinstance(value, ColumnDefinition) and attr not in own
        ]
        if unannotated:
            raise ValueError(
                f"schema {name}: definitions of columns {', '.join(unannotated)} "
                f"lack type annotation; write e.g. `{unannotated[0]}: int = "
                f"pw.column_definition(...)`"
            )
        if own:
            try:
                hints = typing.get_type_hints(cls, include_extras=False)
            except Exception:  # noqa: BLE001 - fall back to raw annotations (unresolvable refs)
                hints = dict(own)
            for attr in own:
                definition = namespace.get(attr, _NO_DEFAULT)
                if definition is _NO_DEFAULT:
                    definition = ColumnDefinition()
                elif not isinstance(definition, ColumnDefinition):
                    raise ValueError(
                        f"schema {name}: `{attr}` should be a column definition, found "
                        f"{type(definition)}; give a default as "
                        f"pw.column_definition(default_value={definition!r})"
                    )
                if (
                    definition.dtype is not None
                    and attr in hints
                    and t.wrap(definition.dtype) != t.wrap(hints[attr])
                ):
                    raise TypeError(
                        f"schema {name}: column {attr!r} is annotated "
                        f"{hints[attr]!r} but its column_definition says dtype="
                        f"{definition.dtype!r}"
                    )
                if (
                    append_only is not None
                    and definition.append_only is not None
                    and definition.append_only != append_only
                ):
                    raise ValueError(
                        f"schema {name}: ambiguous property; schema property `append_only` "
                        f"has value {append_only} but column `{attr}` got "
                        f"{definition.append_only}"
                    )
                annotation = definition.dtype if definition.dtype is not None else hints[attr]
                column_name = definition.name or attr
                if column_name in columns and attr in own and column_name != attr:
                    raise ValueError(f"schema {name}: duplicate column name {column_name!r}")
                columns[column_name] = _column_schema(
                    name, column_name, annotation, definition, append_only
                )
        cls.__columns__ = columns
        inherited = getattr(cls, "__properties__", SchemaProperties())
        if append_only is None:
            append_only = inherited.append_only
        if append_only is None and any(c.append_only for c in columns.values()):
            append_only = True  # some column is append-only: so are the rows
        cls.__properties__ = SchemaProperties(append_only=append_only)
        return cls

    def __init__(
        cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(name, bases, namespace)

    # --- introspection, as Pathway's schema classes offer it ---------------------------
    def columns(cls) -> Mapping[str, ColumnSchema]:
        return dict(cls.__columns__)

    def column_names(cls) -> list[str]:
        return list(cls.__columns__)

    def keys(cls) -> list[str]:
        return list(cls.__columns__)

    def values(cls) -> list[ColumnSchema]:
        return list(cls.__columns__.values())

    def items(cls) -> list[tuple[str, ColumnSchema]]:
        return list(cls.__columns__.items())

    def __getitem__(cls, name: str) -> ColumnSchema:
        return cls.__columns__[name]

    def __iter__(cls) -> Iterator[str]:
        return iter(cls.__columns__)

    def __len__(cls) -> int:
        return len(cls.__columns__)

    def __contains__(cls, name: object) -> bool:
        return name in cls.__columns__

    def typehints(cls) -> dict[str, Any]:
        return {name: c.dtype.typehint for name, c in cls.__columns__.items()}

    def dtypes(cls) -> dict[str, t.DType]:
        return {name: c.dtype for name, c in cls.__columns__.items()}

    def primary_key_columns(cls) -> list[str] | None:
        keys = [name for name, c in cls.__columns__.items() if c.primary_key]
        return keys or None

    def default_values(cls) -> dict[str, Any]:
        return {n: c.default_value for n, c in cls.__columns__.items() if c.has_default_value()}

    @property
    def universe_properties(cls) -> SchemaProperties:
        return cls.__properties__

    @property
    def __id_dtype__(cls) -> t.DType:
        """The type of the ids: ``Pointer[key types]`` with a primary key, else ``Pointer``."""
        if cls.__explicit_id_dtype__ is not None:
            return cls.__explicit_id_dtype__
        keys = cls.primary_key_columns()
        if not keys:
            return t.POINTER
        return t.PointerType([cls.__columns__[k].dtype for k in keys])

    @property
    def id(cls) -> ColumnSchema:  # noqa: A003 (Pathway's name)
        """The id column as a column schema: ``schema.id.dtype`` is the type of the ids."""
        return ColumnSchema(name="id", dtype=cls.__id_dtype__)

    def with_types(cls, **kwargs: Any) -> type[Schema]:
        for name in kwargs:
            if name not in cls.__columns__:
                raise KeyError(f"schema {cls.__name__} has no column {name!r}")
        columns = {
            n: dataclasses.replace(c, dtype=t.wrap(kwargs[n])) if n in kwargs else c
            for n, c in cls.__columns__.items()
        }
        return schema_from_columns(columns, name=cls.__name__)

    update_types = with_types

    def without(cls, *names: str) -> type[Schema]:
        for name in names:
            if name not in cls.__columns__:
                raise KeyError(f"schema {cls.__name__} has no column {name!r}")
        columns = {n: c for n, c in cls.__columns__.items() if n not in names}
        return schema_from_columns(columns, name=cls.__name__)

    def __or__(cls, other: type[Schema]) -> type[Schema]:
        clash = set(cls.__columns__) & set(other.__columns__)
        if clash:
            raise ValueError(
                f"schemas {cls.__name__} and {other.__name__} both have columns {sorted(clash)}"
            )
        return schema_from_columns(
            {**cls.__columns__, **other.__columns__}, name=f"{cls.__name__}|{other.__name__}"
        )

    def __repr__(cls) -> str:
        return (
            f"<deltaflow.Schema types={cls.typehints()!r}, id_type={cls.__id_dtype__.typehint!r}>"
        )

    def __str__(cls) -> str:
        """The columns and their types as a two-line table, the id column first."""
        id_type = t.engine_name(cls.__id_dtype__)
        header = ["id", *cls.__columns__]
        types = [id_type, *(t.engine_name(c.dtype) for c in cls.__columns__.values())]
        widths = [max(len(a), len(b)) for a, b in zip(header, types)]
        return "\n".join(
            " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in (header, types)
        )

    def __eq__(cls, other: object) -> bool:
        """Schemas are equal when they have the same columns, types and primary key."""
        if not isinstance(other, SchemaMetaclass):
            return NotImplemented
        return cls is other or (
            list(cls.__columns__.values()) == list(other.__columns__.values())
            and cls.__properties__ == other.__properties__
        )

    def __hash__(cls) -> int:
        return hash(tuple(cls.__columns__))

    # --- schemas as data, as code, compared (deltaflow.schema_export) ------------------
    def to_json_serializable_dict(cls) -> dict:
        """The schema as JSON-ready data; ``pw.schema_from_dict(**data)`` rebuilds it."""
        from deltaflow.schema_export import schema_to_json

        return schema_to_json(cls)

    def columns_to_json_serializable_dict(cls) -> dict:
        from deltaflow.schema_export import columns_to_json

        return columns_to_json(cls)

    def generate_class(cls, class_name: str | None = None, generate_imports: bool = False) -> str:
        """Python source of a ``pw.Schema`` subclass equal to this schema."""
        from deltaflow.schema_export import generate_class

        return generate_class(cls, class_name, generate_imports)

    def generate_class_to_file(
        cls,
        path: str | os.PathLike[str],
        class_name: str | None = None,
        generate_imports: bool = False,
    ) -> None:
        from deltaflow.schema_export import generate_class_to_file

        generate_class_to_file(cls, path, class_name, generate_imports)

    def assert_matches_schema(
        cls,
        other: type[Schema],
        *,
        allow_superset: bool = True,
        ignore_primary_keys: bool = True,
        allow_subtype: bool = True,
        ignore_properties: bool = True,
    ) -> None:
        """``AssertionError`` unless this schema fits ``other`` (see schema_export)."""
        from deltaflow.schema_export import assert_matches_schema

        assert_matches_schema(
            cls,
            other,
            allow_superset=allow_superset,
            ignore_primary_keys=ignore_primary_keys,
            allow_subtype=allow_subtype,
            ignore_properties=ignore_properties,
        )

    def column_properties(cls, name: str) -> Any:
        """The type and append-only flag of column ``name``."""
        from deltaflow.schema_export import ColumnProperties

        column = cls[name]
        return ColumnProperties(dtype=column.dtype, append_only=column.append_only)

    def update_properties(cls, **kwargs: Any) -> type[Schema]:
        """This schema with schema-wide properties replaced (``append_only=...``)."""
        unknown = set(kwargs) - {f.name for f in dataclasses.fields(SchemaProperties)}
        if unknown:
            raise TypeError(
                f"update_properties on schema {cls.__name__}: unknown properties {sorted(unknown)}"
            )
        properties = dataclasses.replace(cls.__properties__, **kwargs)
        columns = cls.__columns__
        if properties.append_only is not None:
            columns = {
                n: dataclasses.replace(c, append_only=bool(properties.append_only))
                for n, c in columns.items()
            }
        return schema_from_columns(columns, name=cls.__name__, properties=properties)

    def assert_equal_to(cls, other: type[Schema]) -> None:
        if cls.dtypes() != other.dtypes():
            raise AssertionError(f"schema {cls!r} differs from {other!r}")


#: Python types a column cannot have (Pathway refuses them with ``TypeError`` too): sets have
#: no order, so no value of a table cell could stand for them faithfully; the others are
#: numbers or buffers no engine type holds.
_REFUSED_COLUMN_TYPES: tuple[type, ...] = (
    set,
    frozenset,
    complex,
    bytearray,
    range,
    decimal.Decimal,
)


def _refused_column_type(annotation: Any) -> type | None:
    """The refused type an annotation is or holds in a union (``set | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, _REFUSED_COLUMN_TYPES):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            refused = _refused_column_type(arg)
            if refused is not None:
                return refused
    return None


def _column_schema(
    schema_name: str,
    column: str,
    annotation: Any,
    definition: ColumnDefinition,
    append_only: bool | None,
) -> ColumnSchema:
    refused = _refused_column_type(annotation)
    if refused is not None:
        raise TypeError(
            f"schema {schema_name}, column {column!r}: {refused.__name__} is not a "
            f"column type (use list, tuple or pw.Json for collections)"
        )
    try:
        dtype = t.wrap(annotation)
    except TypeError as exc:
        raise TypeError(f"schema {schema_name}, column {column!r}: {exc}") from None
    default_value, example = definition.default_value, definition.example
    if (
        definition._serialized_default_value is not None
        or definition._serialized_example is not None
    ):
        from deltaflow.schema_export import deserialize_value

        where = f"schema {schema_name}, column {column!r}"
        if definition._serialized_default_value is not None:
            default_value = deserialize_value(
                definition._serialized_default_value, dtype, f"{where}, default value"
            )
        if definition._serialized_example is not None:
            example = deserialize_value(definition._serialized_example, dtype, f"{where}, example")
    return ColumnSchema(
        name=column,
        dtype=dtype,
        primary_key=definition.primary_key,
        default_value=default_value,
        append_only=bool(
            definition.append_only if definition.append_only is not None else append_only
        ),
        description=definition.description,
        example=example,
        source_component=definition.source_component,
    )


class Schema(metaclass=SchemaMetaclass):
    """Base class of table schemas: subclass it and annotate one attribute per column.

    Example::

        class Order(pw.Schema):
            id: int = pw.column_definition(primary_key=True)
            item: str
            quantity: int = 1
    """

    def __init__(self) -> None:
        raise TypeError("schemas describe tables; they are not instantiated")


def schema_from_columns(
    columns: Mapping[str, ColumnSchema],
    *,
    name: str = "Schema",
    properties: SchemaProperties | None = None,
) -> type[Schema]:
    """Build a schema class from already resolved columns (the engine's own builder)."""
    cls = SchemaMetaclass(name, (Schema,), {})
    cls.__columns__ = dict(columns)
    cls.__properties__ = properties or SchemaProperties()
    return cls  # type: ignore[return-value]
