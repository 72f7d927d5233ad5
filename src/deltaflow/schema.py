"""Table schemas: ``class S(pw.Schema)``, column definitions and schema builders.

The public import path of both halves: the schema class and its columns
(:mod:`deltaflow.schema_class`) and the schemas built from data
(:mod:`deltaflow.schema_builders`).
"""

from __future__ import annotations

from deltaflow.schema_builders import (
    assert_table_has_schema,
    schema_builder,
    schema_from_csv,
    schema_from_dict,
    schema_from_dtypes,
    schema_from_types,
    type_from_name,
)
from deltaflow.schema_class import (
    ColumnDefinition,
    ColumnSchema,
    Schema,
    SchemaMetaclass,
    SchemaProperties,
    column_definition,
    schema_from_columns,
)

__all__ = [
    "ColumnDefinition",
    "ColumnSchema",
    "Schema",
    "SchemaMetaclass",
    "SchemaProperties",
    "assert_table_has_schema",
    "column_definition",
    "schema_builder",
    "schema_from_columns",
    "schema_from_csv",
    "schema_from_dict",
    "schema_from_dtypes",
    "schema_from_types",
    "type_from_name",
]
