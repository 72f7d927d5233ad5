"""``pw.io.deltalake.write``'s output side: a formatter to Arrow and a committing writer.

``stream_of_changes`` appends every change with ``time`` and ``diff`` columns: one Delta
``WRITE`` (append) commit per flush. ``snapshot`` keeps the Delta table equal to the table's
current contents, keyed by an ``_id`` column holding the row id: a flush whose changes are all
new rows of a table this run created is an append; any other flush is one ``MERGE`` commit
(update, insert and delete by ``_id``), so readers never see part of a minibatch.

``min_commit_frequency`` (ms) spaces commits: changes wait in memory until that long after the
previous commit (a timer commits them even when no new time arrives); the run's end commits
whatever is left.

With persistence, no checkpoint covers a time whose changes still wait in memory
(:meth:`DeltaWriter.durable_time`), and the writer's *position* is the last time flushed (for a
fresh run, the latest ``time`` already in the table). A run resuming after a crash first
deletes the ``stream_of_changes`` rows of later times, in one Delta commit: the restarted run
writes those changes again. Snapshot commits are upserts and deletions by ``_id``, which give
the same table when applied again.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import ConnectorError
from deltaflow.io._core.base import Formatter, Writer
from deltaflow.io._core.output_session import OutputSession
from deltaflow.io.deltalake._optimizer import OptimizerRun
from deltaflow.io.deltalake._storage import Location, redact, with_retries
from deltaflow.io.deltalake._types import arrow_type, column_metadata, encode_column

logger = logging.getLogger("deltaflow.io.deltalake")

ID_COLUMN = "_id"
TIME_COLUMN = "time"
DIFF_COLUMN = "diff"
_OP = "__deltaflow_op"


@dataclass
class WriteSpec:
    """Everything the writer needs, fixed when the pipeline is defined."""

    location: Location
    columns: dict[str, t.DType]
    primary_key: list[str]
    snapshot: bool
    partition_columns: list[str]
    min_commit_frequency_s: float | None
    connector: str

    def arrow_schema(self) -> pa.Schema:
        """The Delta table's schema: the columns (with their descriptions) + special ones."""
        fields = [
            pa.field(
                name,
                arrow_type(dtype),
                nullable=dtype.is_optional,
                metadata=column_metadata(name, dtype, name in self.primary_key),
            )
            for name, dtype in self.columns.items()
        ]
        if self.snapshot:
            fields.insert(0, pa.field(ID_COLUMN, pa.string(), nullable=False))
        else:
            fields += [
                pa.field(TIME_COLUMN, pa.int64(), nullable=False),
                pa.field(DIFF_COLUMN, pa.int64(), nullable=False),
            ]
        return pa.schema(fields)


class DeltaFormatter(Formatter):
    """A delta batch as an Arrow table of the Delta schema (snapshot: plus a diff column)."""

    def __init__(self, spec: WriteSpec, optimizer: OptimizerRun | None = None) -> None:
        self.spec = spec
        self.optimizer = optimizer
        self.schema = spec.arrow_schema()

    def format(self, batch: pl.DataFrame, time: int) -> pa.Table:
        for name in self.spec.partition_columns:
            dtype = self.spec.columns[name]
            if (
                dtype.strip_optional() in (t.STR, t.BYTES)
                and (batch[name].cast(pl.Binary).bin.size() == 0).any()
            ):
                raise ValueError(
                    f"{self.spec.connector}: partition column {name!r} holds an "
                    "empty value, which Delta Lake stores as null (the partition "
                    "directory cannot be named by an empty value); declare the "
                    "column Optional or keep empty values out of it"
                )
        arrays = {
            name: encode_column(batch[name], dtype) for name, dtype in self.spec.columns.items()
        }
        if self.spec.snapshot:
            ids = encode_column(batch[ID], t.POINTER)
            data = pa.table({ID_COLUMN: ids, **arrays, _OP: batch[DIFF].cast(pl.Int64).to_arrow()})
            return data
        n = batch.height
        arrays[TIME_COLUMN] = (
            pa.array([time] * n, type=pa.int64())
            if n < 64
            else pl.repeat(time, n, dtype=pl.Int64, eager=True).to_arrow()
        )
        arrays[DIFF_COLUMN] = batch[DIFF].cast(pl.Int64).to_arrow()
        return pa.table(arrays, schema=self.schema)


def _normalized(kind: pa.DataType) -> pa.DataType:
    """Arrow types that denote the same Delta type compare equal after this."""
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz="UTC" if kind.tz else None)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_normalized(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct(
            [
                pa.field(kind.field(i).name, _normalized(kind.field(i).type))
                for i in range(kind.num_fields)
            ]
        )
    return kind


class DeltaWriter(Writer):
    """Commits formatted batches to the Delta table (see the module docstring)."""

    def __init__(self, spec: WriteSpec, optimizer: OptimizerRun | None = None) -> None:
        self.spec = spec
        self.optimizer = optimizer
        self._lock = threading.RLock()
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._last_commit = 0.0
        self._created_empty = False  # the table was created (empty) by this run
        self._timer: threading.Thread | None = None
        self._closing = threading.Event()
        self._timer_error: BaseException | None = None
        self._decimals: dict[str, pa.DataType] = {}  # str columns written into decimals
        self.commits = 0
        # Persistence (see the module docstring): the last time flushed, the last one whose
        # changes are all committed, and the flushed time the pending changes reach.
        self._last_flushed: int | None = None
        self._durable: int | None = None
        self._pending_through: int | None = None
        self._start_position: int | None = None
        self._start_position_known = False
        self._resume_after: int | None = None

    # --- persistence -----------------------------------------------------------------------
    def durable_time(self) -> int | None:
        """The last flushed time whose changes are all committed (None: none yet): changes
        waiting for ``min_commit_frequency`` are not covered by a checkpoint."""
        with self._lock:
            return self._durable

    def position(self) -> int | None:
        """The last time flushed; before the first flush (the checkpoint a fresh run writes
        before any output), the latest ``time`` already in the table."""
        with self._lock:
            if self._last_flushed is not None:
                return self._last_flushed
            if not self._start_position_known:
                self._start_position = self._latest_time()
                self._start_position_known = True
            return self._start_position

    def resume(self, position: object) -> None:
        """Called before :meth:`open` when the run resumes after a crash: ``stream_of_changes``
        rows of times after ``position`` are deleted when the table is opened."""
        self._start_position_known = True
        if not self.spec.snapshot and isinstance(position, int):
            self._resume_after = position

    def _latest_time(self) -> int | None:
        """The latest ``time`` in the table; -1 when there is no row yet (a resume then
        removes every row: all were written after the start). None in snapshot mode."""
        import pyarrow.compute as pc
        from deltalake import DeltaTable

        location = self.spec.location
        if self.spec.snapshot:
            return None
        if not DeltaTable.is_deltatable(location.uri, storage_options=location.storage_options):
            return -1
        times = (
            DeltaTable(location.uri, storage_options=location.storage_options)
            .to_pyarrow_dataset()
            .to_table(columns=[TIME_COLUMN])
            .column(TIME_COLUMN)
        )
        # pyarrow.compute defines its functions when imported: no checker can see them
        latest = pc.max(times).as_py() if len(times) else None  # pyright: ignore[reportAttributeAccessIssue]
        return int(latest) if latest is not None else -1

    def _roll_back(self) -> None:
        """Delete the rows the crashed run wrote after the checkpoint (one Delta commit)."""
        from deltalake import DeltaTable

        location, after = self.spec.location, self._resume_after

        def delete() -> int:
            table = DeltaTable(location.uri, storage_options=location.storage_options)
            metrics = table.delete(
                f"{_quote(TIME_COLUMN)} > {int(after if after is not None else -1)}"
            )
            return int(metrics.get("num_deleted_rows", 0) or 0)

        removed = with_retries(
            location,
            "remove rows written after the checkpoint from",
            delete,
            connector=self.spec.connector,
        )
        if removed:
            logger.info(
                "%s: removed %d row(s) written after the checkpoint (times after %d); the "
                "restarted run writes them again",
                self.spec.connector,
                removed,
                after,
            )

    # --- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Create the table if missing (with the schema and partitioning), else check that
        its columns fit the table being written."""
        from deltalake import DeltaTable

        spec = self.spec
        location = spec.location
        schema = spec.arrow_schema()

        def existing() -> tuple[pa.Schema, list[str]] | None:
            if not DeltaTable.is_deltatable(location.uri, storage_options=location.storage_options):
                return None
            table = DeltaTable(location.uri, storage_options=location.storage_options)
            return pa.schema(table.schema().to_arrow()), table.metadata().partition_columns

        found = with_retries(
            location, "open the Delta table at", existing, connector=spec.connector
        )
        if found is not None:
            self._check_existing(*found)
            if self._resume_after is not None:
                self._roll_back()
        else:
            with_retries(
                location,
                "create the Delta table at",
                lambda: DeltaTable.create(
                    location.uri,
                    schema=schema,
                    mode="error",
                    partition_by=spec.partition_columns or None,
                    storage_options=location.storage_options,
                ),
                connector=spec.connector,
            )
            self._created_empty = True
        self._last_commit = _time.monotonic()

    def _check_existing(self, existing: pa.Schema, partitions: list[str]) -> None:
        spec = self.spec
        wanted = spec.arrow_schema()
        problems = []
        have = {f.name: f for f in existing}
        for field in wanted:
            present = have.pop(field.name, None)
            if present is None:
                problems.append(f"column {field.name!r} is missing")
            elif pa.types.is_decimal(present.type) and pa.types.is_string(field.type):
                # A str column goes into an existing decimal column as the exact number its
                # text spells (as in Pathway): checked value by value when written.
                self._decimals[field.name] = present.type
            elif _normalized(present.type) != _normalized(field.type):
                problems.append(
                    f"column {field.name!r} is {present.type} in the table, but "
                    f"{field.type} is written"
                )
            elif field.nullable != present.nullable:
                # As Pathway: nullability must agree both ways (a nullable Delta column read
                # back would otherwise not give the type written).
                problems.append(
                    f"column {field.name!r} is "
                    f"{'nullable' if present.nullable else 'not nullable'} in the "
                    f"table, but the column written is "
                    f"{'Optional' if field.nullable else 'not Optional'}"
                )
        if have:
            problems.append(f"the table has columns {sorted(have)} that are not written")
        if spec.partition_columns and list(partitions) != spec.partition_columns:
            problems.append(
                f"the table is partitioned by {partitions}, not by {spec.partition_columns}"
            )
        if problems:
            raise TypeError(
                f"{spec.connector}: the existing Delta table at "
                f"{spec.location.uri} does not fit the table being written: " + "; ".join(problems)
            )

    def write(self, payload: pa.Table) -> None:
        if payload.num_rows == 0:
            return
        with self._lock:
            self._raise_timer_error()
            self._pending.append(payload)
            self._pending_rows += payload.num_rows

    def flush(self, time: int) -> None:
        with self._lock:
            self._raise_timer_error()
            self._last_flushed = time
            if not self._pending:
                self._durable = time
                return
            self._pending_through = time
            if self._due(_time.monotonic()):
                self._commit()
            else:
                self._start_timer()

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            self._raise_timer_error()
            if self._pending:
                self._commit()

    def abort(self) -> None:
        self._closing.set()
        with self._lock:
            self._pending, self._pending_rows = [], 0

    # --- commits ---------------------------------------------------------------------------
    def _due(self, now: float) -> bool:
        frequency = self.spec.min_commit_frequency_s
        return frequency is None or now - self._last_commit >= frequency

    def _start_timer(self) -> None:
        if self._timer is not None and self._timer.is_alive():
            return
        self._timer = threading.Thread(
            target=self._timer_loop, daemon=True, name="deltaflow-deltalake-commit"
        )
        self._timer.start()

    def _timer_loop(self) -> None:
        frequency = self.spec.min_commit_frequency_s or 0.0
        while not self._closing.is_set():
            with self._lock:
                wait = self._last_commit + frequency - _time.monotonic()
                if wait <= 0:
                    if self._pending:
                        try:
                            self._commit()
                        except BaseException as exc:  # noqa: BLE001 - raised by write/flush
                            self._timer_error = exc
                    return
            self._closing.wait(min(wait, 1.0))

    def _raise_timer_error(self) -> None:
        if self._timer_error is not None:
            error, self._timer_error = self._timer_error, None
            raise error

    def _commit(self) -> None:
        if self.spec.snapshot:
            self._commit_snapshot(self._pending)
        else:
            data = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._append(data)
        self._pending, self._pending_rows = [], 0
        if self._pending_through is not None:
            self._durable, self._pending_through = self._pending_through, None
        self._last_commit = _time.monotonic()
        self.commits += 1
        if self.optimizer is not None:
            self.optimizer.after_commit()

    def _append(self, data: pa.Table) -> None:
        from deltalake import write_deltalake

        location = self.spec.location
        data = self._with_decimals(data).cast(self._target_schema())
        with_retries(
            location,
            "append to the Delta table at",
            lambda: write_deltalake(
                location.uri, data, mode="append", storage_options=location.storage_options
            ),
            connector=self.spec.connector,
        )

    def _target_schema(self) -> pa.Schema:
        schema = self.spec.arrow_schema()
        for name, kind in self._decimals.items():
            index = schema.get_field_index(name)
            schema = schema.set(index, schema.field(index).with_type(kind))
        return schema

    def _with_decimals(self, data: pa.Table) -> pa.Table:
        for name, kind in self._decimals.items():
            index = data.schema.get_field_index(name)
            texts = data.column(name).to_pylist()
            data = data.set_column(
                index, name, _decimal_array(texts, kind, name, self.spec.connector)
            )
        return data

    def _commit_snapshot(self, parts: list[pa.Table]) -> None:
        # What the table must hold for an id is its last change: the latest time, and within
        # a time the insertion (an update is a deletion and an insertion at the same time).
        data = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        order = pl.DataFrame(
            {
                ID_COLUMN: pl.from_arrow(data.column(ID_COLUMN)),
                "__batch": pl.concat(
                    [
                        pl.repeat(i, p.num_rows, dtype=pl.Int64, eager=True)
                        for i, p in enumerate(parts)
                    ]
                ),
                _OP: pl.from_arrow(data.column(_OP)),
            }
        ).with_row_index("__seq")
        has_deletions = bool((order[_OP] < 0).any())
        if self._created_empty and not has_deletions:
            self._append(data.drop_columns([_OP]))
            return
        last = order.sort(["__batch", _OP]).group_by(ID_COLUMN).agg(pl.col("__seq").last())
        rows = data.take(last["__seq"].sort().cast(pl.Int64).to_arrow())
        self._merge(rows)

    def _merge(self, rows: pa.Table) -> None:
        from deltalake import DeltaTable

        location = self.spec.location
        names = list(self.spec.columns)
        quoted = {n: _quote(n) for n in [ID_COLUMN, *names]}
        values = {quoted[n]: f"s.{quoted[n]}" for n in [ID_COLUMN, *names]}
        rows = self._with_decimals(rows).cast(
            pa.schema([*self._target_schema(), pa.field(_OP, pa.int64())])
        )

        def merge() -> None:
            table = DeltaTable(location.uri, storage_options=location.storage_options)
            (
                table.merge(
                    rows,
                    predicate=f"t.{quoted[ID_COLUMN]} = s.{quoted[ID_COLUMN]}",
                    source_alias="s",
                    target_alias="t",
                )
                .when_matched_delete(predicate=f"s.{_OP} < 0")
                .when_matched_update(updates=values, predicate=f"s.{_OP} > 0")
                .when_not_matched_insert(updates=values, predicate=f"s.{_OP} > 0")
                .execute()
            )

        with_retries(
            location, "merge into the Delta table at", merge, connector=self.spec.connector
        )


def _decimal_array(
    texts: list[str | None], kind: pa.DataType, column: str, connector: str
) -> pa.Array:
    """The decimals spelled by ``texts``, each checked to fit ``kind`` exactly."""
    import decimal

    values: list[decimal.Decimal | None] = []
    shape = f"decimal({kind.precision}, {kind.scale})"
    for text in texts:
        if text is None:
            values.append(None)
            continue
        try:
            value = decimal.Decimal(text.strip())
        except decimal.InvalidOperation:
            value = None
        reason = None
        if value is None or not value.is_finite():
            reason = "it is not a decimal number"
        else:
            exponent = value.as_tuple().exponent
            assert isinstance(exponent, int)
            digits = len(value.as_tuple().digits)
            if -exponent > kind.scale:
                reason = f"it has more than {kind.scale} digits after the point"
            elif digits - (-exponent) + kind.scale > kind.precision and value != 0:
                reason = f"it has more than {kind.precision - kind.scale} digits before the point"
        if reason is not None:
            raise ValueError(
                f"{connector}: value {text!r} of column {column!r} cannot be "
                f"stored in the table's {shape} column: {reason}"
            )
        values.append(value)
    return pa.array(values, type=kind)


def _quote(name: str) -> str:
    """``name`` as a quoted SQL identifier for delta-rs predicates (DataFusion syntax)."""
    return '"' + name.replace('"', '""') + '"'


class ConnectorTypeError(ConnectorError, TypeError):
    """The existing Delta table does not fit the table written (a ``TypeError``, as in
    Pathway)."""


class DeltaOutputSession(OutputSession):
    """Opens (creates or checks) the Delta table before the run reads any input, so that a
    table that does not fit stops the run at once."""

    writer: DeltaWriter

    def start(self) -> None:
        try:
            self.writer.open()
        except Exception as exc:  # noqa: BLE001 - delta-rs raises many kinds; reported, redacted
            message = redact(str(exc), self.writer.spec.location.secrets)
            kind = ConnectorTypeError if isinstance(exc, TypeError) else ConnectorError
            raise kind(self.name, message) from None
        super().start()
