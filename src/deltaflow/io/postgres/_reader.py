"""``pw.io.postgres.read``: a PostgreSQL table as a live table, with change data capture.

``mode="static"`` reads the table once, in one transaction, as one minibatch.
``mode="streaming"`` reads the same snapshot and then every committed change through logical
replication (``pgoutput``): insertions, updates and deletions, transaction by transaction in
commit order, a source transaction never split across minibatches. The slot handling lives
in ``_cdc.py``, the message parser in ``_pgoutput.py``, value decoding in ``_decode.py``;
this module holds the readers, the parser turning text rows into typed rows, and ``read``.
"""

from __future__ import annotations

import contextlib
import logging
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from deltaflow import _types as t
from deltaflow.io._core.base import (
    Data,
    Finished,
    FinishedSource,
    NewSource,
    OffsetAntichain,
    ParsedBlock,
    ParseError,
    Parser,
    Reader,
    ReaderContext,
    ReadEvent,
)
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_backlog,
    check_mode,
    check_schema,
    reader_table,
)
from deltaflow.io.postgres import _cdc
from deltaflow.io.postgres._cdc import PostgresReadError, Target
from deltaflow.io.postgres._decode import BadValue, Decoder, decode_fast, decoder_for
from deltaflow.io.postgres._pgoutput import UNCHANGED
from deltaflow.io.postgres._stream import Batch, ChangeStream, cursor_slot_name

logger = logging.getLogger("deltaflow.io.postgres")

__all__ = ["read"]

OFFSET_KEY = "wal"
"""The offset key of the change stream; its value is the end LSN of the last transaction."""

SNAPSHOT_CHUNK_ROWS = 50_000
SLOT_RELEASE_WAIT_S = 10.0
"""How long a start waits for a persistent slot still held by a run that just ended."""

_SUPPORTED = {
    "int",
    "float",
    "bool",
    "str",
    "bytes",
    "DateTimeNaive",
    "DateTimeUtc",
    "Duration",
    "Json",
    "Pointer",
}


# --- rows in text form -> typed rows -------------------------------------------------------
@dataclass
class TextRowsContext(ReaderContext):
    """Rows as PostgreSQL prints their values (text or None), in the schema's column order.

    ``kinds`` per row: ``upsert``/``insert``, ``delete`` (only key columns are known when
    ``key_only``), ``truncate``. ``decoders`` are the column decoders of the current table
    layout."""

    rows: list[tuple[Any, ...]]
    kinds: list[str]
    key_only: list[bool]
    decoders: Sequence[Decoder]
    where: str = "row"


class TextRowsParser(Parser):
    """Decodes :class:`TextRowsContext` rows. A row with a value that does not fit the schema
    is reported and skipped; if it was an upsert, its key is deleted instead, so that the
    pipeline never keeps a version of the row the source no longer holds."""

    def __init__(self, columns: Mapping[str, t.DType], primary_key: Sequence[str]) -> None:
        self.columns = dict(columns)
        self.key_positions = [list(columns).index(k) for k in primary_key]

    def parse(self, context: ReaderContext) -> ParsedBlock:
        assert isinstance(context, TextRowsContext)
        rows, kinds, key_only = context.rows, list(context.kinds), context.key_only
        count = len(rows)
        problems: dict[int, str] = {}
        columns: list[list[Any] | pl.Series] = []
        for position, (name, dtype) in enumerate(self.columns.items()):
            decode = context.decoders[position]
            texts = [row[position] for row in rows]
            fast = decode_fast(name, texts, decode, dtype)
            if fast is not None:
                if not dtype.is_optional and fast.null_count():
                    self._null_problems(fast, name, dtype, position, kinds, key_only, problems)
                columns.append(fast)
                continue
            columns.append(
                self._decode_slowly(texts, name, dtype, position, decode, kinds, key_only, problems)
            )
        errors: list[ParseError] = []
        keep = list(range(count))
        if problems:
            keep = []
            for index in range(count):
                reason = problems.get(index)
                if reason is None:
                    keep.append(index)
                    continue
                key = tuple(rows[index][p] for p in self.key_positions)
                key_ok = self.key_positions and all(
                    p not in _problem_columns(reason, self.columns) for p in self.key_positions
                )
                if kinds[index] == "upsert" and key_ok:
                    kinds[index] = "delete"  # drop the row's earlier version, if any
                    keep.append(index)
                    reason += "; the row is removed from the table until a valid version comes"
                where = f"{context.where} key {key}" if self.key_positions else context.where
                errors.append(ParseError(where, reason))
        series = []
        kept_mask = None
        if problems:
            kept_set = set(keep)
            kept_mask = pl.Series([i in kept_set for i in range(count)], dtype=pl.Boolean)
        for (name, dtype), values in zip(self.columns.items(), columns, strict=True):
            if isinstance(values, pl.Series):
                series.append(values.filter(kept_mask) if kept_mask is not None else values)
                continue
            kept = [values[i] for i in keep] if problems else values
            series.append(t.series_from_values(name, kept, dtype))
        frame = pl.DataFrame(series).with_columns(
            pl.Series("_kind", [kinds[i] for i in keep], dtype=pl.String)
        )
        return ParsedBlock(frame, kind="column", errors=errors)

    def _null_problems(
        self,
        column: pl.Series,
        name: str,
        dtype: t.DType,
        position: int,
        kinds: list[str],
        key_only: list[bool],
        problems: dict[int, str],
    ) -> None:
        is_key = position in self.key_positions
        for index in column.is_null().arg_true().to_list():
            if kinds[index] != "truncate" and (is_key or not key_only[index]):
                problems.setdefault(
                    index, f"NULL in column {name!r}, whose type {dtype!r} is not Optional"
                )

    def _decode_slowly(
        self,
        texts: list[Any],
        name: str,
        dtype: t.DType,
        position: int,
        decode: Decoder,
        kinds: list[str],
        key_only: list[bool],
        problems: dict[int, str],
    ) -> list[Any]:
        """Value by value, each failure with its reason."""
        optional = dtype.is_optional
        is_key = position in self.key_positions
        values: list[Any] = [None] * len(texts)
        for index, text in enumerate(texts):
            if text is None:
                if not optional and kinds[index] != "truncate" and (is_key or not key_only[index]):
                    problems.setdefault(
                        index, f"NULL in column {name!r}, whose type {dtype!r} is not Optional"
                    )
                continue
            if text is UNCHANGED:
                problems.setdefault(
                    index,
                    f"column {name!r} holds a large (TOASTed) "
                    "value the UPDATE left unchanged, which "
                    "PostgreSQL does not send with REPLICA "
                    "IDENTITY DEFAULT; set REPLICA IDENTITY FULL",
                )
                continue
            try:
                values[index] = decode(text)
            except (BadValue, ValueError, TypeError, OverflowError) as exc:
                problems.setdefault(
                    index, f"column {name!r}: {text[:80]!r} does not fit {dtype!r} ({exc})"
                )
        return values


def _problem_columns(reason: str, columns: Mapping[str, t.DType]) -> set[int]:
    """Positions of the columns a problem message names (to know if the key decoded)."""
    return {i for i, name in enumerate(columns) if f"column {name!r}" in reason}


# --- readers ---------------------------------------------------------------------------------
class _TableReader(Reader):
    """What both readers share: connecting, inspecting, reading the snapshot."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.names = list(target.columns)
        self.decoders: list[Decoder] = []
        self._snapshot: _cdc.Snapshot | None = None
        self._upsert = bool(target.primary_key)

    def _decoders(self, info: _cdc.TableInfo) -> list[Decoder]:
        found = [decoder_for(info.types[n], d) for n, d in self.target.columns.items()]
        assert all(found), "checked by inspect_table"
        return found  # type: ignore[return-value]

    def _snapshot_step(self) -> ReadEvent:
        snapshot = self._snapshot
        assert snapshot is not None
        rows = snapshot.cursor.fetchmany(SNAPSHOT_CHUNK_ROWS)
        if not rows:
            self._close_snapshot()
            return Data(self._context([]), offset=self._snapshot_offset(snapshot))
        kind = "upsert" if self._upsert and self._streaming else "insert"
        return Data(self._context([tuple(r) for r in rows], kind))

    _streaming = False

    def _snapshot_offset(self, snapshot: _cdc.Snapshot) -> tuple[str, int] | None:
        return None

    def _context(
        self,
        rows: list[tuple[Any, ...]],
        kind: str = "insert",
        key_only: list[bool] | None = None,
        kinds: list[str] | None = None,
    ) -> TextRowsContext:
        return TextRowsContext(
            rows,
            kinds or [kind] * len(rows),
            key_only or [False] * len(rows),
            self.decoders,
            where=f"{self.target.qualified}",
        )

    def _close_snapshot(self) -> None:
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            try:
                snapshot.connection.close()
            except Exception:  # the read is over either way
                logger.debug("closing the snapshot connection failed", exc_info=True)

    def close(self) -> None:
        self._close_snapshot()


class StaticReader(_TableReader):
    """Reads the table once (one minibatch) and finishes."""

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._phase = "start"

    def read(self) -> ReadEvent | None:
        if self._phase == "start":
            connection = _cdc.connect(self.target)
            try:
                info = _cdc.inspect_table(connection, self.target, streaming=False)
            finally:
                connection.close()
            self.decoders = self._decoders(info)
            self._snapshot = _cdc.open_snapshot(self.target, None, 0, self.names)
            self._phase = "snapshot"
            return NewSource({"table": self.target.qualified})
        if self._phase == "snapshot":
            event = self._snapshot_step()
            if self._snapshot is None:
                self._phase = "end"
            return event
        if self._phase == "end":
            self._phase = "finished"
            return FinishedSource()
        return Finished()


class CdcReader(_TableReader):
    """The snapshot, then the changes of the replication slot (see ``_cdc.py`` and
    ``_stream.py``)."""

    _streaming = True

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._phase = "start"
        self._replication: Any = None
        self._slot = ""  # the slot changes are consumed from
        self._anchor: str | None = None  # the permanent slot (per connector or per run)
        self._resume_lsn: int | None = None  # from the checkpoint (seek)
        self._start_lsn = 0  # where the change stream starts
        self._oid = 0
        self._stream: ChangeStream | None = None
        self._next: Batch | None = None
        self._last_progress = 0.0

    # --- persistence hooks -------------------------------------------------------------------
    def seek(self, frontier: OffsetAntichain) -> None:
        value = frontier.get(OFFSET_KEY)
        self._resume_lsn = int(value) if value is not None else None

    def checkpointed(self, frontier: OffsetAntichain) -> None:
        value = frontier.get(OFFSET_KEY)
        stream = self._stream
        if value is not None and stream is not None:
            stream.checkpointed(int(value))

    # --- reading -----------------------------------------------------------------------------
    def read(self) -> ReadEvent | None:
        if self._phase == "start":
            return self._start()
        if self._phase == "snapshot":
            event = self._snapshot_step()
            if self._snapshot is None:
                self._phase = "snapshot-end"
            return event
        if self._phase == "snapshot-end":
            self._start_stream()
            return FinishedSource()
        assert self._stream is not None
        batch, self._next = self._next, None
        if batch is None:
            batch = self._stream.get(0)
        if batch is None:
            return None
        offset = (OFFSET_KEY, batch.end_lsn)
        if batch.rows:
            return Data(
                TextRowsContext(
                    batch.rows,
                    batch.kinds,
                    batch.key_only,
                    batch.decoders,
                    where=self.target.qualified,
                ),
                offset=offset,
            )
        # Only other tables' (or already held) transactions: tell persistence about the
        # progress now and then, so the slot can let go of the WAL they used.
        if self.persisted and _time.monotonic() - self._last_progress > 1.0:
            self._last_progress = _time.monotonic()
            return Data(self._context([]), offset=offset)
        return None

    def wait(self, timeout: float) -> None:
        if self._stream is None or self._next is not None:
            return
        self._next = self._stream.get(timeout)  # wakes up as soon as changes come

    def _start(self) -> ReadEvent | None:
        target = self.target
        connection = _cdc.connect(target)
        try:
            info = _cdc.inspect_table(connection, target, streaming=True)
        finally:
            connection.close()
        self.decoders = self._decoders(info)
        self._oid = info.oid
        self._replication = _cdc.connect(target, replication=True)
        if not self.persisted:
            # A permanent slot of this run, so that a lost connection (a network fault, a
            # server restart) can resume from it; dropped when the reader closes.
            _cdc.drop_leftover_run_slots(self._replication, target)
            self._anchor = target.run_slot()
            _cdc.hold_run_lock(self._replication, self._anchor)
            return self._begin_snapshot()
        self._anchor = target.anchor_slot()
        state = _cdc.slot_state(self._replication, self._anchor)
        if self._resume_lsn is None:
            if state is not None:
                logger.warning(
                    "%s: dropping replication slot %r left by a run that wrote no checkpoint",
                    target.connector,
                    self._anchor,
                )
                self._check_idle(state)
                _cdc.drop_slot(self._replication, self._anchor)
            return self._begin_snapshot()
        if state is None:
            raise PostgresReadError(
                f"{target.connector}: the replication slot {self._anchor!r} that holds the "
                f"changes since the last checkpoint is gone from {target.address}, so the run "
                "cannot resume exactly; start again with an empty persistence directory"
            )
        self._check_idle(state)
        if (state[0] or 0) > self._resume_lsn:
            raise PostgresReadError(
                f"{target.connector}: the replication slot {self._anchor!r} is past the "
                "checkpoint the run resumes from (an older checkpoint?); changes in between "
                "are gone; start again with an empty persistence directory"
            )
        self._start_lsn = self._resume_lsn
        logger.info("%s: resuming change data capture from slot %r", target.connector, self._anchor)
        self._start_stream(advanced=state[0] or 0)
        return None

    def _check_idle(self, state: tuple[int | None, bool, str]) -> None:
        # A run that was just killed may hold the slot for a moment, until its server process
        # notices the connection is gone.
        deadline = _time.monotonic() + SLOT_RELEASE_WAIT_S
        while state[1] and _time.monotonic() < deadline:
            _time.sleep(0.2)
            assert self._anchor is not None
            state = _cdc.slot_state(self._replication, self._anchor) or (None, False, "")
        if state[1]:
            raise PostgresReadError(
                f"{self.target.connector}: replication slot "
                f"{self._anchor!r} is in use by another connection (is "
                "the same pipeline running twice?)"
            )

    def _begin_snapshot(self) -> ReadEvent:
        slot = self._anchor
        assert slot
        start_lsn, snapshot_name = _cdc.create_slot(self._replication, slot, temporary=False)
        self._snapshot = _cdc.open_snapshot(self.target, snapshot_name, start_lsn, self.names)
        self._start_lsn = start_lsn
        logger.info(
            "%s: created replication slot %r (%s)",
            self.target.connector,
            slot,
            "kept for restarts" if self.persisted else "dropped at the end of the run",
        )
        self._phase = "snapshot"
        return NewSource({"table": self.target.qualified})

    def _start_stream(self, advanced: int | None = None) -> None:
        """Hand the replication connection to a :class:`ChangeStream` thread."""
        assert self._anchor is not None
        # What is consumed is a temporary copy of the anchor: the anchor itself only moves
        # to positions that are safe to resume from.
        self._slot = cursor_slot_name(self._anchor)
        _cdc.copy_slot(self._replication, self._anchor, self._slot)
        self._stream = ChangeStream(
            self.target,
            self._replication,
            slot=self._slot,
            anchor=self._anchor,
            run_slot=not self.persisted,
            oid=self._oid,
            decoders=self.decoders,
            skip_to=self._start_lsn,
            delivered=self._start_lsn,
            advanced=self._start_lsn if advanced is None else advanced,
        )
        self._replication = None  # the stream owns (and closes) it now
        self._stream.start()
        self._phase = "stream"

    def _snapshot_offset(self, snapshot: _cdc.Snapshot) -> tuple[str, int] | None:
        return (OFFSET_KEY, snapshot.start_lsn)

    def close(self) -> None:
        super().close()
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._replication is not None:  # closed before the change stream started
            if self._anchor is not None and not self.persisted:
                _cdc.drop_run_slot(self.target, self._anchor, self._replication)
            with contextlib.suppress(Exception):
                self._replication.close()
            self._replication = None


# --- the public function ------------------------------------------------------------------
def read(
    postgres_settings: dict,
    table_name: str,
    schema: Any,
    *,
    mode: Literal["streaming", "static"] = "streaming",
    is_append_only: bool = False,
    publication_name: str | None = None,
    schema_name: str | None = "public",
    autocommit_duration_ms: int | None = 1500,
    name: str | None = None,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
) -> Any:
    """Read the PostgreSQL table ``schema_name.table_name`` (see docs/postgres_read.md).

    ``mode="static"`` reads the table once, in one minibatch. ``mode="streaming"`` (the
    default) reads the same snapshot and then follows every committed INSERT, UPDATE,
    DELETE and TRUNCATE through logical replication; it needs ``wal_level=logical``, the
    REPLICATION privilege and ``publication_name``, a publication covering the table. Rows
    are identified by the schema's primary key, which must be the table's (its replica
    identity), unless ``is_append_only=True``. With ``pw.persistence`` the change stream
    resumes after a restart from the last checkpoint through a persistent replication slot
    named after the connector. ``debug_data`` is accepted and ignored.
    """
    label = (
        f"pw.io.postgres.read({table_name!r})"
        if isinstance(table_name, str)
        else "pw.io.postgres.read"
    )
    if not isinstance(postgres_settings, Mapping):
        raise TypeError(
            f"{label}: postgres_settings must be a dict of libpq connection "
            f"parameters, got {type(postgres_settings).__name__}"
        )
    bad_keys = [k for k in postgres_settings if not isinstance(k, str)]
    if bad_keys:
        raise TypeError(f"{label}: postgres_settings keys must be strings, got {bad_keys!r}")
    if not isinstance(table_name, str) or not table_name:
        raise ValueError(f"{label}: table_name must be a non-empty string, got {table_name!r}")
    if schema_name is not None and (not isinstance(schema_name, str) or not schema_name):
        raise ValueError(
            f"{label}: schema_name must be a non-empty string or None, got {schema_name!r}"
        )
    checked = check_schema(schema, label)
    assert checked is not None
    streaming = check_mode(mode, label) == "streaming"
    if not isinstance(is_append_only, bool):
        raise TypeError(f"{label}: is_append_only must be a bool, got {is_append_only!r}")
    if streaming:
        if publication_name is None:
            raise ValueError(
                f"{label}: publication_name is required with mode='streaming' "
                "(CREATE PUBLICATION <name> FOR TABLE <table>)"
            )
        if not isinstance(publication_name, str) or not publication_name:
            raise ValueError(
                f"{label}: publication_name must be a non-empty string, got {publication_name!r}"
            )
    elif publication_name is not None:
        raise ValueError(f"{label}: publication_name is only used with mode='streaming'")
    autocommit = check_autocommit(autocommit_duration_ms, label)
    backlog = check_backlog(max_backlog_size, label)
    columns = checked.dtypes()
    for column, dtype in columns.items():
        if not _readable(dtype):
            raise TypeError(
                f"{label}: column {column!r} has type {dtype!r}, which cannot be "
                "read from PostgreSQL (see docs/postgres_read.md for the types)"
            )
    primary_key = tuple(checked.primary_key_columns() or ())
    if streaming and not is_append_only and not primary_key:
        raise ValueError(
            f"{label}: mode='streaming' needs the schema to declare the table's "
            "primary key (pw.column_definition(primary_key=True)) so updates and "
            "deletes find their rows, or is_append_only=True"
        )
    schema_name = schema_name or "public"
    connector = f"pw.io.postgres.read({schema_name}.{table_name})"
    target = Target(
        connector=connector,
        settings={k: str(v) for k, v in postgres_settings.items()},
        schema_name=schema_name,
        table_name=table_name,
        columns=columns,
        primary_key=primary_key,
        publication=publication_name,
        append_only=is_append_only,
        identity=name or connector,
    )
    reader_class = CdcReader if streaming else StaticReader
    table = reader_table(
        schema=checked,
        reader_factory=lambda: reader_class(target),
        parser=TextRowsParser(columns, primary_key),
        name=name or connector,
        autocommit_duration_ms=autocommit,
        max_backlog_size=backlog,
        keep_row_state=streaming and bool(primary_key),
        named=name is not None,
    )
    # Table.is_append_only, as in Pathway: a static read or a table declared append-only.
    table._node.source.append_only = not streaming or is_append_only
    return table


def _readable(dtype: t.DType) -> bool:
    base = dtype.strip_optional()
    if isinstance(base, t.List):
        return _readable(base.arg)
    if isinstance(base, t.Tuple):
        return bool(base.args) and all(_readable(a) for a in base.args)
    if isinstance(base, t.Array):
        return True
    return base.name in _SUPPORTED
