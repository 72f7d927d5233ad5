"""The SQLite output at run time: the formatter and the writer behind ``pw.io.sqlite.write``
(whose definition-time checks are in :mod:`._output`).

``stream_of_changes`` appends every change with ``time``/``diff``; ``snapshot`` upserts and
deletes on a primary key, one transaction per minibatch.
"""

from __future__ import annotations

import sqlite3
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF
from deltaflow.engine.boundary import ConnectorError
from deltaflow.io._core.base import Formatter, Writer
from deltaflow.io._core.output_session import OutputSession
from deltaflow.io._core.retry import (
    DEFAULT_POLICY,
    BackoffPolicy,
    Outage,
    OutageTooLong,
    limit_hint,
)
from deltaflow.io.sqlite._database import (
    _connect,
    _is_busy,
    _other_object_kind,
    _table_info,
    _TableInfo,
    quote,
)
from deltaflow.io.sqlite._settings import COMMIT_ATTEMPTS, logger
from deltaflow.io.sqlite._type_table import (
    TYPE_MAPPING,
    SqliteType,
    _affinity,
    _affinity_fits,
    _sqlite_type,
    encode_column,
    mapping_key,
)


@dataclass
class _WriteSpec:
    """Everything the writer needs to know, fixed when the pipeline is defined."""

    path: str
    table_name: str
    columns: dict[str, t.DType]
    snapshot: bool
    primary_key: list[str]
    init_mode: str
    max_batch_size: int | None
    connector: str
    retry: BackoffPolicy = DEFAULT_POLICY  # a busy database: docs/retries.md

    @property
    def stored_columns(self) -> list[tuple[str, SqliteType, bool]]:
        """(name, storage, nullable) of every column of the destination table."""
        out = [(n, _sqlite_type(d), d.is_optional) for n, d in self.columns.items()]
        if not self.snapshot:
            out += [("time", TYPE_MAPPING["int"], False), ("diff", TYPE_MAPPING["int"], False)]
        return out


@dataclass
class _Payload:
    """A formatted delta batch: SQLite-ready columns (+ time/diff, or ``_diff``)."""

    time: int
    frame: pl.DataFrame


class SqliteFormatter(Formatter):
    """Turns a delta batch into SQLite parameter rows, column by column in Polars."""

    def __init__(self, spec: _WriteSpec) -> None:
        self.spec = spec
        self._names = list(spec.columns)

    def format(self, batch: pl.DataFrame, time: int) -> _Payload:
        columns = [encode_column(batch[n], d) for n, d in self.spec.columns.items()]
        for name, dtype in self.spec.columns.items():
            # NaN becomes NULL in SQLite; a non-Optional column would refuse it with a
            # cryptic constraint error at commit, so name the column and row here.
            if mapping_key(dtype) == "float" and not dtype.is_optional:
                nan = batch[name].is_nan()
                if nan.any():
                    row = batch.filter(nan).row(0, named=True)
                    raise ValueError(
                        f"{self.spec.connector}: column {name!r} (float) holds "
                        f"NaN in row {row}; SQLite stores NaN as NULL, which a "
                        "non-Optional column does not accept. Declare the column "
                        "Optional or replace NaN."
                    )
        diff = batch[DIFF]
        if self.spec.snapshot:
            frame = pl.DataFrame([*columns, diff])
        else:
            times = pl.repeat(time, batch.height, dtype=pl.Int64, eager=True).rename("time")
            frame = pl.DataFrame([*columns, times, diff.rename("diff")])
        return _Payload(time, frame)


class SqliteWriter(Writer):
    """Writes formatted batches to an SQLite table, one transaction per minibatch.

    ``stream_of_changes`` rows are appended; with ``max_batch_size`` a minibatch larger than
    that is committed in several transactions of at most ``max_batch_size`` rows (an append-only
    log has no intermediate state that could be wrong, only a shorter one).

    ``snapshot`` minibatches are applied in ONE transaction whatever their size: deletions of
    the retracted keys first, then upserts of the inserted rows. Committing part of a minibatch
    would let readers see a state that never existed (e.g. an update's deletion without its
    insertion), so ``max_batch_size`` there only bounds the rows sent per ``executemany`` call.

    A transaction that fails because the database is busy is rolled back and retried from
    its start per the shared retry policy (``docs/retries.md``: until the database has been
    locked for the outage limit); any other failure is rolled back and
    raised. Rows are dropped from the buffer only after their transaction committed, so
    nothing committed is sent again and nothing uncommitted is forgotten.
    """

    def __init__(self, spec: _WriteSpec) -> None:
        self.spec = spec
        self._connection: sqlite3.Connection | None = None
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._last_flushed: int | None = None
        self._resumed = False
        self._resume_after: int | None = None
        self._prepare_statements()

    # --- statements ------------------------------------------------------------------------
    def _prepare_statements(self) -> None:
        spec = self.spec
        table = quote(spec.table_name)
        names = [n for n, _, _ in spec.stored_columns]
        marks = ", ".join("?" for _ in names)
        insert = f"INSERT INTO {table} ({', '.join(quote(n) for n in names)}) VALUES ({marks})"
        if spec.snapshot:
            keys = ", ".join(quote(k) for k in spec.primary_key)
            others = [n for n in spec.columns if n not in spec.primary_key]
            if others:
                updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in others)
                insert += f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
            else:
                insert += f" ON CONFLICT ({keys}) DO NOTHING"
            where = " AND ".join(f"{quote(k)} = ?" for k in spec.primary_key)
            self._delete_sql = f"DELETE FROM {table} WHERE {where}"
        self._insert_sql = insert

    def _create_sql(self, if_not_exists: bool) -> str:
        spec = self.spec
        parts = [
            f"{quote(n)} {s.declared}{'' if nullable else ' NOT NULL'}"
            for n, s, nullable in spec.stored_columns
        ]
        if spec.snapshot:
            parts.append(f"PRIMARY KEY ({', '.join(quote(k) for k in spec.primary_key)})")
        guard = "IF NOT EXISTS " if if_not_exists else ""
        return f"CREATE TABLE {guard}{quote(spec.table_name)} ({', '.join(parts)})"

    # --- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Connect, switch the database to WAL and prepare the table as ``init_mode`` says."""
        spec = self.spec
        connection = _connect(spec.path, create=True)
        self._connection = connection
        try:
            self._switch_to_wal(connection)
            self._run_transaction(self._init_table)
            if self._resume_after is not None:
                self._run_transaction(self._roll_back_after)
            elif not spec.snapshot:
                # Rows already there belong to earlier runs: a crash of this run before its
                # first checkpoint removes only rows of later times (docs/persistence.md).
                latest = connection.execute(
                    f"SELECT MAX({quote('time')}) FROM {quote(spec.table_name)}"
                ).fetchone()[0]
                self._last_flushed = int(latest) if latest is not None else -1
        except BaseException:
            self.abort()
            raise

    def _switch_to_wal(self, connection: sqlite3.Connection) -> None:
        # WAL lets readers in other processes read while this writer writes. Switching needs a
        # moment with no other writer; if the database stays busy, go on in its current mode.
        spec = self.spec
        mode: Any = None
        delay = 0.05
        for _ in range(COMMIT_ATTEMPTS):
            try:
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()
                break
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                _time.sleep(delay)
                delay *= 2
        if mode is None or str(mode[0]).lower() != "wal":
            logger.warning(
                "%s: could not switch %s to WAL journaling (got %s); concurrent "
                "readers may wait for writes",
                spec.connector,
                spec.path,
                mode,
            )

    def _init_table(self, connection: sqlite3.Connection) -> None:
        spec = self.spec
        info = _table_info(connection, spec.table_name)
        if info is None:
            other = _other_object_kind(connection, spec.table_name)
            if other is not None:
                # SQLite would refuse a table of an index's name, but gladly create one
                # next to a trigger of that name: both are mistakes, stopped here.
                raise ValueError(
                    f"{spec.connector}: {spec.table_name!r} names a SQLite {other} of "
                    f"{spec.path!r}, not a table; write to a table of another name"
                )
        # A run resuming after a crash continues the table the crashed run wrote.
        if spec.init_mode == "replace" and not self._resumed:
            if info is not None and info.kind == "view":
                raise ValueError(
                    f"{spec.connector}: {spec.table_name!r} is a view; init_mode="
                    "'replace' only drops tables"
                )
            connection.execute(f"DROP TABLE IF EXISTS {quote(spec.table_name)}")
            connection.execute(self._create_sql(if_not_exists=False))
            return
        if info is None:
            if spec.init_mode == "create_if_not_exists":
                connection.execute(self._create_sql(if_not_exists=False))
                return
            raise ValueError(
                f"{spec.connector}: table {spec.table_name!r} does not exist in "
                f"{spec.path!r}; create it, or pass init_mode="
                "'create_if_not_exists' or 'replace'"
            )
        self._check_existing(info)

    def _check_existing(self, info: _TableInfo) -> None:
        spec = self.spec
        where = f"{spec.connector}: existing table {info.name!r} in {spec.path!r}"
        if info.kind != "table":
            raise ValueError(f"{where} is a view; write to a table")
        present = {c["name"].lower(): c for c in info.columns}
        problems = []
        for name, storage, _ in spec.stored_columns:
            column = present.pop(name.lower(), None)
            if column is None:
                problems.append(f"column {name!r} is missing")
            elif not _affinity_fits(_affinity(column["type"]), storage.storage):
                problems.append(
                    f"column {name!r} is declared {column['type'] or 'untyped'!r}, "
                    f"which does not keep {storage.storage} values unchanged "
                    f"(declare it {storage.declared})"
                )
        for column in present.values():
            if column["notnull"] and column["dflt_value"] is None and not column["pk"]:
                problems.append(
                    f"column {column['name']!r} is NOT NULL without a default and "
                    "the table being written has no such column"
                )
        if spec.snapshot:
            wanted = frozenset(k.lower() for k in spec.primary_key)
            if wanted not in info.unique_sets:
                problems.append(
                    f"snapshot mode needs a PRIMARY KEY or UNIQUE constraint on "
                    f"exactly {spec.primary_key}"
                )
        if problems:
            raise ValueError(
                f"{where} does not fit the table being written: "
                + "; ".join(problems)
                + ". Fix the table, or use init_mode='replace'."
            )

    def write(self, payload: _Payload) -> None:
        if payload.frame.height == 0:
            return
        self._pending.append(payload.frame)
        self._pending_rows += payload.frame.height
        limit = self.spec.max_batch_size
        if not self.spec.snapshot and limit is not None and self._pending_rows >= limit:
            self._commit_pending(full_chunks_only=True)

    def flush(self, time: int) -> None:
        self._commit_pending(full_chunks_only=False)
        self._last_flushed = time

    def position(self) -> int | None:
        """The last time committed: a restart removes the rows of later times (in
        ``stream_of_changes`` mode) before the restarted run writes them again."""
        return self._last_flushed

    def resume(self, position: Any) -> None:
        """Called before :meth:`open` when the run resumes after a crash."""
        self._resumed = True
        if not self.spec.snapshot and isinstance(position, int):
            self._resume_after = position

    def _roll_back_after(self, connection: sqlite3.Connection) -> None:
        # Rows of times after the checkpoint were written by the crashed run; the restarted
        # run writes those changes again (at new times). Snapshot tables need nothing: their
        # upserts and deletions by key give the same table when applied again.
        removed = connection.execute(
            f"DELETE FROM {quote(self.spec.table_name)} WHERE {quote('time')} > ?",
            (self._resume_after,),
        ).rowcount
        if removed:
            logger.info(
                "%s: removed %d row(s) of %r written after the checkpoint (they are "
                "written again by this run)",
                self.spec.connector,
                removed,
                self.spec.table_name,
            )

    def close(self) -> None:
        try:
            self._commit_pending(full_chunks_only=False)
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def abort(self) -> None:
        connection, self._connection = self._connection, None
        self._pending, self._pending_rows = [], 0
        if connection is not None:
            try:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            connection.close()

    # --- transactions ----------------------------------------------------------------------
    def _commit_pending(self, *, full_chunks_only: bool) -> None:
        if not self._pending:
            return
        frame = (
            pl.concat(self._pending, how="vertical") if len(self._pending) > 1 else self._pending[0]
        )
        if self.spec.snapshot:
            self._run_transaction(lambda c: self._apply_snapshot(c, frame))
            self._pending, self._pending_rows = [], 0
            return
        limit = self.spec.max_batch_size or frame.height
        start = 0
        while frame.height - start >= limit or (not full_chunks_only and start < frame.height):
            chunk = frame.slice(start, limit)

            def insert(cursor: Any, chunk: pl.DataFrame = chunk) -> Any:
                return cursor.executemany(self._insert_sql, chunk.iter_rows())

            self._run_transaction(insert)
            start += chunk.height
        rest = frame.slice(start)
        self._pending = [rest] if rest.height else []
        self._pending_rows = rest.height

    def _apply_snapshot(self, connection: sqlite3.Connection, frame: pl.DataFrame) -> None:
        step = self.spec.max_batch_size or max(frame.height, 1)
        deletions = frame.filter(pl.col(DIFF) < 0).select(self.spec.primary_key)
        insertions = frame.filter(pl.col(DIFF) > 0).drop(DIFF)
        for part in deletions.iter_slices(step):
            connection.executemany(self._delete_sql, part.iter_rows())
        for part in insertions.iter_slices(step):
            connection.executemany(self._insert_sql, part.iter_rows())

    def _run_transaction(self, body: Callable[[sqlite3.Connection], Any]) -> None:
        connection = self._connection
        if connection is None:
            raise RuntimeError(f"{self.spec.connector}: the connection is closed")
        # A busy database (another connection held the lock past the busy timeout) is an
        # outage like any other: retried per the shared policy, each time from the start.
        busy = Outage(
            self.spec.retry,
            what=f"{self.spec.connector}: the database",
            failing="stayed locked",
            hint=limit_hint("sqlite"),
        )
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                body(connection)
                connection.execute("COMMIT")
                return
            except BaseException as exc:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                if _is_busy(exc):
                    try:
                        delay = busy.failed(str(exc))
                    except OutageTooLong as too_long:
                        raise RuntimeError(
                            f"{self.spec.connector}: writing to table "
                            f"{self.spec.table_name!r} of {self.spec.path!r} "
                            f"failed: {too_long.detail}"
                        ) from exc
                    logger.warning(
                        "%s: database busy (%s); transaction rolled back, retrying "
                        "(attempt %d) in %.1f s",
                        self.spec.connector,
                        exc,
                        busy.failures + 1,
                        delay,
                    )
                    _time.sleep(delay)
                    continue
                if isinstance(exc, sqlite3.Error):
                    raise RuntimeError(
                        f"{self.spec.connector}: writing to table {self.spec.table_name!r} of "
                        f"{self.spec.path!r} failed and the transaction was rolled back: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                raise


class _SqliteOutputSession(OutputSession):
    """An output session that prepares the destination table before the run starts, so that
    a missing or unfitting table stops the run before any input is read."""

    writer: SqliteWriter

    def start(self) -> None:
        try:
            self.writer.open()
        except Exception as exc:
            raise ConnectorError(self.name, str(exc)) from exc
        super().start()
