"""DynamoDB output: ``pw.io.dynamodb.write`` keeps a DynamoDB table equal to a deltaflow table.

The pieces, in the order data flows through them:

- :mod:`._types`: :data:`TYPE_MAPPING` / :func:`dynamodb_type`, which DynamoDB attribute type
  each deltaflow type becomes (also printed in ``docs/dynamodb.md``), and the serialization
  of values;
- :mod:`._table`: :class:`DynamoDBSettings` (endpoint, region and client options, read from
  the standard AWS environment when the pipeline is defined) and the table checks;
- :mod:`._formatter`: :class:`DynamoDBFormatter` turns one delta batch into pre-serialized
  attribute values, collapsing all changes of one key to their final effect and setting aside
  rows that DynamoDB cannot store;
- :mod:`._writer`: :class:`DynamoDBWriter` prepares the table (``init_mode``) and sends
  ``BatchWriteItem`` requests of at most 25 changes, retried per the shared retry policy.
"""

from __future__ import annotations

from typing import Any

from deltaflow.error_display import user_call
from deltaflow.expressions.base import ColumnReference
from deltaflow.io._aws.clients import require_boto3
from deltaflow.io._core.output_session import write_table
from deltaflow.io._core.retry import policy_for
from deltaflow.io.dynamodb._formatter import DynamoDBChanges, DynamoDBFormatter, RejectedRow
from deltaflow.io.dynamodb._table import (
    INIT_MODES,
    DynamoDBSettings,
    InitMode,
    check_existing_table,
)
from deltaflow.io.dynamodb._types import (
    KEY_TYPES,
    MAX_ITEM_BYTES,
    TYPE_MAPPING,
    dynamodb_type,
)
from deltaflow.io.dynamodb._writer import MAX_BATCH, DynamoDBWriteError, DynamoDBWriter

__all__ = [
    "KEY_TYPES",
    "MAX_BATCH",
    "MAX_ITEM_BYTES",
    "TYPE_MAPPING",
    "DynamoDBChanges",
    "DynamoDBFormatter",
    "DynamoDBSettings",
    "DynamoDBWriteError",
    "DynamoDBWriter",
    "RejectedRow",
    "dynamodb_type",
    "write",
]


def _key_column(table: Any, reference: Any, parameter: str) -> str:
    if not isinstance(reference, ColumnReference):
        raise TypeError(
            f"pw.io.dynamodb.write: {parameter} must be a column of the table "
            f"(e.g. table.key), got {reference!r}"
        )
    if reference.table is not table and getattr(reference.table, "_node", None) is not table._node:
        raise ValueError(
            f"pw.io.dynamodb.write: {parameter} {reference.name!r} is a column of "
            f"another table; use a column of the table being written"
        )
    name = reference.name
    if name not in table._columns:
        if name == "id":
            raise ValueError(
                f"pw.io.dynamodb.write: {parameter} cannot be the row id; add it "
                f"as a column first, e.g. table.with_columns(row_id=table.id)"
            )
        raise table._missing(name)
    dtype = table._columns[name]
    if dtype.is_optional:
        raise TypeError(
            f"pw.io.dynamodb.write: {parameter} column {name!r} has type "
            f"{dtype!r}; DynamoDB keys cannot be missing, so filter out the None "
            f"values and declare the column non-optional (pw.unwrap or "
            f"update_types)"
        )
    try:
        kind = dynamodb_type(dtype)
    except TypeError:
        kind = "?"
    if kind not in KEY_TYPES:
        raise TypeError(
            f"pw.io.dynamodb.write: {parameter} column {name!r} of type {dtype!r} "
            f"is written as {kind if kind != '?' else 'no fixed type'}, but "
            f"DynamoDB keys must be strings (S), numbers (N) or binary (B); see the "
            f"type conversion table in docs/dynamodb.md"
        )
    return name


@user_call
def write(
    table: Any,
    table_name: str,
    partition_key: ColumnReference,
    *,
    sort_key: ColumnReference | None = None,
    init_mode: InitMode = "default",
    name: str | None = None,
) -> None:
    """Keep the DynamoDB table ``table_name`` equal to ``table``.

    Every row of ``table`` is an item keyed by ``partition_key`` (and ``sort_key``): an
    inserted row is put, a deleted row's key is deleted, an updated row's item is replaced.
    Connection settings come from the environment (``AWS_ENDPOINT_URL_DYNAMODB`` or
    ``AWS_ENDPOINT_URL``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, and the usual credentials).

    ``init_mode``: ``"default"`` writes to an existing table whose keys must match;
    ``"create_if_not_exists"`` creates an on-demand table when missing; ``"replace"`` deletes
    and recreates it. Arguments, key types and (when the endpoint is reachable) the existing
    table are checked here; creating or replacing the table happens when the run starts.
    Column types map to DynamoDB types as in :data:`TYPE_MAPPING`. An unreachable or
    throttling DynamoDB is retried for up to ``DELTAFLOW_DYNAMODB_MAX_OUTAGE_S`` seconds
    (default 300; ``docs/retries.md``).

    Parameters:
        table: the table written.
        table_name: the DynamoDB table (3 to 255 characters).
        partition_key: the column of ``table`` holding the items' partition key.
        sort_key: the column holding their sort key, if the DynamoDB table has one.
        init_mode: ``default``, ``create_if_not_exists`` or ``replace`` (see above).
        name: the connector's name in logs and monitoring.

    Examples:
        With ``init_mode="replace"`` nothing is contacted before the run, so this only needs
        a region in the environment:

        >>> import os
        >>> import deltaflow as pw
        >>> os.environ["AWS_REGION"] = "eu-west-1"
        >>> readings = pw.debug.table_from_markdown('''
        ... sensor | minute | celsius
        ... s1     | 1      | 20.5
        ... s1     | 2      | 21.0
        ... ''')
        >>> pw.io.dynamodb.write(
        ...     readings,
        ...     "sensor-readings",
        ...     readings.sensor,
        ...     sort_key=readings.minute,
        ...     init_mode="replace",
        ... )
        >>> del os.environ["AWS_REGION"]
    """
    from deltaflow.table import Table

    if not isinstance(table, Table):
        raise TypeError(f"pw.io.dynamodb.write: table must be a pw.Table, got {table!r}")
    if not isinstance(table_name, str) or not 3 <= len(table_name) <= 255:
        raise ValueError(
            f"pw.io.dynamodb.write: table_name must be a string of 3 to 255 "
            f"characters, got {table_name!r}"
        )
    if init_mode not in INIT_MODES:
        raise ValueError(
            f"pw.io.dynamodb.write: init_mode must be one of "
            f"{', '.join(map(repr, INIT_MODES))}, got {init_mode!r}"
        )
    keys = [_key_column(table, partition_key, "partition_key")]
    if sort_key is not None:
        keys.append(_key_column(table, sort_key, "sort_key"))
        if keys[1] == keys[0]:
            raise ValueError(
                f"pw.io.dynamodb.write: sort_key {keys[1]!r} is also the "
                f"partition key; use a different column"
            )
    columns = dict(table._columns)
    for column, dtype in columns.items():
        try:
            dynamodb_type(dtype)
        except TypeError:
            raise TypeError(
                f"pw.io.dynamodb.write: column {column!r} has type {dtype!r}, "
                f"which cannot be written to DynamoDB; declare a concrete type "
                f"with update_types or pw.cast"
            ) from None
    key_schema = [(column, dynamodb_type(columns[column])) for column in keys]
    require_boto3("pw.io.dynamodb.write", "dynamodb")
    settings = DynamoDBSettings.from_env()
    check_existing_table(settings, table_name, key_schema, init_mode)
    connector = name or f"dynamodb:{table_name}"
    writer = DynamoDBWriter(
        settings,
        table_name,
        key_schema,
        init_mode,
        connector,
        policy=policy_for("dynamodb", "pw.io.dynamodb.write"),
    )
    write_table(
        table, writer, DynamoDBFormatter(columns, keys), name=connector, named=name is not None
    )
