"""``pw.io.deltalake``: read a Delta Lake table as a live table, write a table to one.

Built on delta-rs (the ``deltalake`` package, the ``deltalake`` extra) with Arrow in and out,
for local directories and S3 (``s3://`` or ``s3a://`` URIs). The modules:

* :mod:`._types` — the type mapping (:data:`TYPE_TABLE`), Arrow encoding and decoding, and
  the column descriptions stored in the Delta schema;
* :mod:`._writer` — ``write``: stream of changes (``time``/``diff``) or snapshot (``_id``),
  one Delta commit per minibatch or per ``min_commit_frequency``;
* :mod:`._reader` — ``read``: the table's current version, then (streaming) every new version
  as the rows it added and removed, with the version as the offset;
* :mod:`._storage` — URIs, S3 options, retries while the store is unreachable, redaction.

See ``docs/deltalake.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from os import PathLike
from typing import Any, Literal

from deltaflow import _types as t
from deltaflow.error_display import user_call
from deltaflow.io._core.arguments import check_read_options, check_write_options, input_table
from deltaflow.io._core.formats import TypedRowsParser, column_specs
from deltaflow.io.deltalake._optimizer import OptimizerRun, TableOptimizer
from deltaflow.io.deltalake._reader import DeltaReader, ReadSpec
from deltaflow.io.deltalake._storage import (
    MAX_OUTAGE_ENV,
    DigitalOceanS3Settings,
    Location,
    WasabiS3Settings,
    resolve,
    with_retries,
)
from deltaflow.io.deltalake._types import (
    COLUMN_METADATA_KEY,
    TYPE_TABLE,
    check_mappable,
)
from deltaflow.io.deltalake._writer import (
    DeltaFormatter,
    DeltaOutputSession,
    DeltaWriter,
    WriteSpec,
)
from deltaflow.io.minio import MinIOSettings
from deltaflow.io.s3 import AwsS3Settings
from deltaflow.schema_export import dtype_from_json

__all__ = [
    "COLUMN_METADATA_KEY",
    "MAX_OUTAGE_ENV",
    "TYPE_TABLE",
    "AwsS3Settings",
    "DigitalOceanS3Settings",
    "MinIOSettings",
    "TableOptimizer",
    "WasabiS3Settings",
    "read",
    "write",
]

_SPECIAL_COLUMNS = ("time", "diff", "_id")
_PATHWAY_COLUMN_META_FIELD = COLUMN_METADATA_KEY  # Pathway's name of the metadata key


# ------------------------------------------------------------------------------------------
# write
# ------------------------------------------------------------------------------------------


def _column_names(connector: str, table: Any, columns: Any, parameter: str) -> list[str]:
    from deltaflow.expressions.base import ColumnReference

    if isinstance(columns, ColumnReference | str):
        columns = [columns]
    names = []
    for column in columns:
        if isinstance(column, ColumnReference):
            if column.table is not table:
                raise ValueError(
                    f"{connector}: {parameter} column {column.name!r} belongs to "
                    "another table; use columns of the table being written"
                )
            name = column.name
        elif isinstance(column, str):
            name = column
        else:
            raise TypeError(
                f"{connector}: {parameter} must be columns of the table "
                f"(table.column), got {type(column).__name__}"
            )
        if name not in table._columns:
            raise ValueError(
                f"{connector}: {parameter} column {name!r} is not a column of "
                f"the table; its columns are {list(table._columns)}"
            )
        if name in names:
            raise ValueError(f"{connector}: {parameter} names column {name!r} twice")
        names.append(name)
    return names


@user_call
def write(
    table: Any,
    uri: str | PathLike,
    *,
    s3_connection_settings: Any = None,
    partition_columns: Iterable[Any] | None = None,
    min_commit_frequency: int | None = 60_000,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
    output_table_type: Literal["stream_of_changes", "snapshot"] = "stream_of_changes",
    table_optimizer: TableOptimizer | None = None,
) -> None:
    """Write ``table`` to the Delta table at ``uri`` (a directory, or ``s3://bucket/path``).

    ``output_table_type="stream_of_changes"`` appends every change as a row with ``time``
    and ``diff`` (1 or -1) columns; ``"snapshot"`` keeps the Delta table equal to the table's
    current contents, with an ``_id`` column holding the row id. The table is created when
    missing (with ``partition_columns``), else its columns must fit. ``min_commit_frequency``
    (ms, default 60000; None: every minibatch) is the least time between two Delta commits.
    ``sort_by`` orders each minibatch's rows. See ``docs/deltalake.md``.

    Parameters:
        table: the table written.
        uri: a local directory or ``s3://bucket/path``.
        s3_connection_settings: ``pw.io.deltalake.AwsS3Settings`` (or the MinIO, Wasabi,
            DigitalOcean ones) for an S3 uri.
        partition_columns: the columns the Delta table is partitioned by, when it is created.
        min_commit_frequency: the least time between two Delta commits, in ms (None: every
            minibatch).
        name: the connector's name in logs and monitoring.
        sort_by: columns ordering the rows of one minibatch.
        output_table_type: ``stream_of_changes`` (rows with ``time`` and ``diff``) or ``snapshot``.
        table_optimizer: ``pw.io.deltalake.TableOptimizer``: compaction and cleanup of old files.

    Examples:
        >>> import deltaflow as pw, deltalake, tempfile
        >>> uri = tempfile.mkdtemp()
        >>> t = pw.debug.table_from_markdown('''
        ... item | qty
        ... pen  | 2
        ... ''')
        >>> pw.io.deltalake.write(t, uri, min_commit_frequency=None)
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        >>> deltalake.DeltaTable(uri).to_pyarrow_table().select(["item", "qty", "diff"]).to_pylist()
        [{'item': 'pen', 'qty': 2, 'diff': 1}]
    """
    from deltaflow.table import add_output

    connector = "pw.io.deltalake.write"
    location = resolve(uri, s3_connection_settings, connector)
    connector = f"pw.io.deltalake.write({location.uri})"
    options = check_write_options(
        connector, table, default_name=connector, name=name, sort_by=sort_by
    )
    if output_table_type not in ("stream_of_changes", "snapshot"):
        raise ValueError(
            f"{connector}: output_table_type must be 'stream_of_changes' or "
            f"'snapshot', got {output_table_type!r}"
        )
    if min_commit_frequency is not None and (
        isinstance(min_commit_frequency, bool)
        or not isinstance(min_commit_frequency, int | float)
        or min_commit_frequency < 0
    ):
        raise ValueError(
            f"{connector}: min_commit_frequency must be a non-negative number of "
            f"milliseconds or None, got {min_commit_frequency!r}"
        )
    columns = options.columns
    for column, dtype in columns.items():
        reason = check_mappable(dtype)
        if reason:
            raise TypeError(f"{connector}: column {column!r}: {reason}")
    snapshot = output_table_type == "snapshot"
    reserved = [c for c in columns if c in (("_id",) if snapshot else ("time", "diff"))]
    if reserved:
        raise ValueError(
            f"{connector}: column(s) {reserved} clash with the column(s) "
            f"{output_table_type} mode adds; rename them"
        )
    partitions = _column_names(connector, table, partition_columns or [], "partition_columns")
    for column in partitions:
        base = columns[column].strip_optional()
        if isinstance(base, t.Tuple | t.List | t.Array) or base.name == "PyObjectWrapper":
            raise ValueError(
                f"{connector}: partition column {column!r} has type "
                f"{columns[column]!r}; Delta partitions need a primitive type"
            )
    if table_optimizer is not None:
        if not isinstance(table_optimizer, TableOptimizer):
            raise TypeError(
                f"{connector}: table_optimizer must be a pw.io.deltalake.TableOptimizer"
            )
        tracked = table_optimizer.tracked_column
        if tracked.table is not table or tracked.name not in partitions:
            raise ValueError(
                f"{connector}: the optimizer tracks column {tracked.name!r}, "
                "which is not a partition column of the table written; add it "
                "to partition_columns"
            )
    keys = list(getattr(table.schema, "primary_key_columns", lambda: None)() or [])
    spec = WriteSpec(
        location=location,
        columns=columns,
        primary_key=keys,
        snapshot=snapshot,
        partition_columns=partitions,
        min_commit_frequency_s=None
        if min_commit_frequency is None
        else min_commit_frequency / 1000.0,
        connector=connector,
    )
    writer = DeltaWriter(
        spec,
        None if table_optimizer is None else OptimizerRun(table_optimizer, location, connector),
    )
    session = DeltaOutputSession(options.name, writer, DeltaFormatter(spec), named=options.named)
    add_output(table, session, sort_by=options.sort_by)


# ------------------------------------------------------------------------------------------
# read
# ------------------------------------------------------------------------------------------


def _stored_schema(location: Location, connector: str) -> Any:
    """The schema described in the Delta table's column metadata (as written by ``write``,
    here or in Pathway)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    from deltaflow.schema import schema_from_dict

    def load() -> Any:
        return DeltaTable(location.uri, storage_options=location.storage_options).schema()

    delta_schema = with_retries(location, "open the Delta table at", load, connector=connector)
    columns: dict[str, Any] = {}
    for field in pa.schema(delta_schema.to_arrow()):
        raw = (field.metadata or {}).get(COLUMN_METADATA_KEY.encode())
        if raw is None or field.name in _SPECIAL_COLUMNS:
            continue
        try:
            description = json.loads(raw)
            dtype = dtype_from_json(description["dtype"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{connector}: the description of column {field.name!r} stored "
                f"in the Delta table at {location.uri} cannot be read: "
                f"{exc}"
            ) from None
        columns[field.name] = {
            "dtype": dtype.typehint,
            "primary_key": bool(description.get("primary_key", False)),
        }
    if not columns:
        raise ValueError(
            f"{connector}: the Delta table at {location.uri} stores no column "
            "descriptions (it was not written by pw.io.deltalake.write); pass "
            "schema="
        )
    return schema_from_dict(columns)


@user_call
def read(
    uri: str | PathLike,
    schema: Any = None,
    *,
    mode: Literal["streaming", "static"] = "streaming",
    s3_connection_settings: Any = None,
    start_from_timestamp_ms: int | None = None,
    autocommit_duration_ms: int | None = 1500,
    name: str | None = None,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
    _backfilling_thresholds: Any = None,
    _ensure_consecutive_versions: bool = False,
    **kwargs: Any,
) -> Any:
    """The Delta table at ``uri`` as a table.

    ``mode="static"`` reads the current version; ``"streaming"`` (default) then follows new
    versions: rows of added data files are inserted, rows of removed files retracted, each
    version's changes in one minibatch. Rows are identified by the schema's primary key, or
    else by their position in their data file. Without ``schema`` the column descriptions
    stored by ``write`` are used. ``start_from_timestamp_ms`` starts at the version current
    then (see ``docs/deltalake.md``). ``debug_data`` is accepted for compatibility and ignored.

    Parameters:
        uri: a local directory or ``s3://bucket/path``.
        schema: the columns read (else the column descriptions stored by ``write``).
        mode: ``streaming`` (default: follow new versions) or ``static``.
        s3_connection_settings: settings for an S3 uri, as for ``write``.
        start_from_timestamp_ms: start at the version current at this time.
        autocommit_duration_ms: how long rows may wait before they are committed to the pipeline.
        name: the connector's name in logs, monitoring and persistence.
        max_backlog_size: pause reading while this many rows wait in the pipeline.
        debug_data: accepted for compatibility, ignored.

    Examples:
        >>> import deltaflow as pw, tempfile
        >>> uri = tempfile.mkdtemp()
        >>> class Stock(pw.Schema):
        ...     item: str = pw.column_definition(primary_key=True)
        ...     qty: int
        >>> t = pw.debug.table_from_rows(Stock, [("pen", 2), ("ink", 6)])
        >>> pw.io.deltalake.write(t, uri, output_table_type="snapshot", min_commit_frequency=None)
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        >>> back = pw.io.deltalake.read(uri, Stock, mode="static")
        >>> pw.debug.compute_and_print(back, include_id=False)
        item | qty
        ink  | 6
        pen  | 2
    """
    connector = "pw.io.deltalake.read"
    location = resolve(uri, s3_connection_settings, connector)
    connector = f"pw.io.deltalake.read({location.uri})"
    options = check_read_options(
        connector,
        default_name=f"deltalake:{location.uri}",
        schema=schema,
        mode=mode,
        name=name,
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=max_backlog_size,
        schema_required=False,
        **kwargs,
    )
    if _backfilling_thresholds is not None:
        raise NotImplementedError(f"{connector}: _backfilling_thresholds is not supported")
    if start_from_timestamp_ms is not None and (
        isinstance(start_from_timestamp_ms, bool) or not isinstance(start_from_timestamp_ms, int)
    ):
        raise TypeError(
            f"{connector}: start_from_timestamp_ms must be an int (milliseconds "
            f"since the epoch) or None, got {start_from_timestamp_ms!r}"
        )
    if options.schema is None:
        options = replace(options, schema=_stored_schema(location, connector))
    checked = options.schema
    assert checked is not None
    columns = checked.dtypes()
    for column, dtype in columns.items():
        reason = check_mappable(dtype)
        if reason:
            raise TypeError(f"{connector}: column {column!r}: {reason}")
    spec = ReadSpec(
        location=location,
        columns=columns,
        primary_key=list(checked.primary_key_columns() or []),
        static=not options.streaming,
        start_from_timestamp_ms=start_from_timestamp_ms,
        connector=connector,
    )
    if location.is_local:
        _check_local(spec)
    return input_table(
        options, lambda: DeltaReader(spec), TypedRowsParser(column_specs(checked, exclude=()))
    )


def _check_local(spec: ReadSpec) -> None:
    """A local table that exists is checked against the schema now, when the pipeline is
    defined (an S3 table is checked when the run starts)."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(spec.location.uri):
        if spec.static:
            raise ValueError(f"{spec.connector}: there is no Delta table at {spec.location.uri}")
        return
    reader = DeltaReader(spec)
    reader._check_table(DeltaTable(spec.location.uri))
