"""``pw.io.postgres.write`` and ``write_snapshot``: a table's changes into a PostgreSQL table.

Three shapes of destination table (:attr:`WriteSpec.mode`):

* ``stream``: ``output_table_type="stream_of_changes"`` — every change is appended as a row
  with ``time`` (``BIGINT``, the minibatch time) and ``diff`` (``SMALLINT``, 1 or -1);
* ``snapshot``: ``output_table_type="snapshot"`` — the table holds the current rows, keyed
  by ``primary_key``: retracted keys are deleted, inserted rows upserted;
* ``legacy``: ``write_snapshot`` — a snapshot that also keeps, per row, the ``time`` of its
  last change and ``diff`` = 1.

Each minibatch is one transaction. Rows go in with ``COPY ... FROM STDIN``: straight into
the table (stream), or into a temporary staging table from which one ``DELETE ... USING``
and one ``INSERT ... ON CONFLICT DO UPDATE`` apply the whole minibatch (snapshot, legacy);
readers never see half a minibatch. In stream mode ``max_batch_size`` splits a big minibatch
into transactions of at most that many rows.

A connection lost mid-run is re-opened (retried as at start). A transaction whose COMMIT got
no answer is looked up by its transaction id (``txid_status``) on the new connection, so it
is written again only if it did not commit: nothing committed is lost or doubled.

With persistence, the writer's *position* is the last time it committed. A run restarted after
a crash first deletes the stream-of-changes rows of later times (written after the checkpoint,
and about to be written again by the restarted run); snapshot writes are idempotent upserts and
deletes, so replaying them converges to the same table.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import polars as pl

from deltaflow.engine.boundary import ConnectorError, ConnectorOSError
from deltaflow.io._core.base import Writer
from deltaflow.io._core.output_session import OutputSession
from deltaflow.io.postgres import _connection as conn
from deltaflow.io.postgres._types import binary_typname, copy_binary, quote_ident
from deltaflow.io.postgres._write_format import STAGE_DIFF, Payload, WriteSpec

logger = logging.getLogger("deltaflow.io.postgres")

_STAGE = "deltaflow_stage"
_STAGE_SEQ = "__deltaflow_seq"


class PostgresInitError(ConnectorError, ValueError):
    """The destination table cannot be prepared as asked (missing, unfitting, ...): a
    ``ValueError`` when the run starts, as in Pathway."""


def _csv(frame: pl.DataFrame) -> bytes:
    """``frame`` as CSV for ``COPY ... (FORMAT csv)``: text quoted (so an empty string is
    not NULL), NULL as an empty unquoted field."""
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, quote_style="non_numeric", null_value="")
    return buffer.getvalue()


class PostgresWriter(Writer):
    """Writes formatted batches to PostgreSQL, one transaction per minibatch."""

    def __init__(self, spec: WriteSpec) -> None:
        self.spec = spec
        self._connection: Any = None
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._committed_time: int | None = None  # last time committed by this run
        self._resume_from: int | None = None
        self._resuming = False
        self._stage_ready = False
        self._broken = False  # the open stream transaction was lost
        self.transactions = 0

    # --- persistence -----------------------------------------------------------------------
    def position(self) -> Any:
        """The last time whose rows are committed (asked after each flush; see the module
        docstring)."""
        return self._committed_time

    def resume(self, position: Any) -> None:
        """A restart from a checkpoint taken when ``position`` was the last committed time:
        stream-of-changes rows of later times are deleted when the writer opens."""
        self._resuming = True
        self._resume_from = int(position) if isinstance(position, int | float) else None

    # --- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Connect and prepare the destination table as ``init_mode`` says."""
        spec = self.spec
        self._connection = conn.connect(spec.connector, spec.settings, retry_s=spec.retry_s)
        self._run(self._init_table)
        spec.binary = self._run(self._binary_fits)
        logger.debug(
            "%s: rows go in with %s COPY", spec.connector, "binary" if spec.binary else "text (csv)"
        )

    def _binary_fits(self, cursor: Any) -> bool:
        """Whether every written column has a fixed-width binary form and the table's column
        has exactly that type (binary COPY does not convert; text input does)."""
        spec = self.spec
        wanted = {name: binary_typname(dtype) for name, dtype in spec.columns.items()}
        if spec.has_time_diff:
            wanted.update(time="int8", diff="int2")
        if not wanted or None in wanted.values():
            return False
        relation = self._relation(cursor)
        assert relation is not None
        present = dict(
            cursor.execute(
                "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t "
                "ON t.oid = a.atttypid WHERE a.attrelid = %s AND a.attnum > 0 "
                "AND NOT a.attisdropped",
                (relation[0],),
            ).fetchall()
        )
        return all(present.get(name) == typname for name, typname in wanted.items())

    def write(self, payload: Payload) -> None:
        frame = payload.frame
        if frame.height == 0:
            return
        if self.spec.mode != "stream":
            self._pending.append(frame)  # applied as a whole at the flush
            self._pending_rows += frame.height
            return
        # Stream of changes: sent at once (COPY), inside the time's open transaction, so
        # that writing overlaps the computation of the rest of the time.
        limit = self.spec.max_batch_size
        while frame.height:
            room = frame.height if limit is None else limit - self._pending_rows
            piece, frame = frame.slice(0, room), frame.slice(room)
            self._send(piece)
            if limit is not None and self._pending_rows >= limit:
                self._commit_open()

    def flush(self, time: int) -> None:
        if self.spec.mode == "stream":
            self._commit_open()
        else:
            self._commit_snapshot()
        self._committed_time = time

    def close(self) -> None:
        try:
            if self._pending:
                if self.spec.mode == "stream":
                    self._commit_open()
                else:
                    self._commit_snapshot()
        finally:
            self._disconnect()

    def abort(self) -> None:
        self._pending, self._pending_rows = [], 0
        self._disconnect()

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                connection.close()

    # --- table preparation -----------------------------------------------------------------
    def _create_sql(self) -> str:
        spec = self.spec
        parts = [
            f"{quote_ident(n)} {ty.sql}{'' if nullable else ' NOT NULL'}"
            for n, ty, nullable in spec.stored_columns()
        ]
        if spec.mode != "stream":
            parts.append(f"PRIMARY KEY ({', '.join(quote_ident(k) for k in spec.primary_key)})")
        return f"CREATE TABLE {spec.qualified} ({', '.join(parts)})"

    def _init_table(self, cursor: Any) -> None:
        spec = self.spec
        self._check_schema_exists(cursor)
        exists = self._relation(cursor) is not None
        if spec.init_mode == "replace" and not self._resuming:
            if exists:
                cursor.execute(f"DROP TABLE {spec.qualified}")
            cursor.execute(self._create_sql())
        elif not exists:
            if spec.init_mode == "default":
                raise PostgresInitError(
                    spec.connector,
                    (
                        f"table {spec.display!r} does not exist at "
                        f"{conn.address(spec.settings)}; create it, or pass init_mode="
                        "'create_if_not_exists' or 'replace'"
                    ),
                )
            cursor.execute(self._create_sql())
        else:
            self._check_existing(cursor)
        if not self._resuming and spec.mode == "stream":
            # Rows already there belong to earlier runs: the checkpoint of this run's start
            # records the latest of their times, so a crash before the first periodic
            # checkpoint removes only what this run wrote (docs/persistence.md).
            cursor.execute(f"SELECT MAX(time) FROM {spec.qualified}")
            latest = cursor.fetchone()[0]
            self._committed_time = int(latest) if latest is not None else -1
        if self._resuming and spec.mode == "stream" and self._resume_from is not None:
            cursor.execute(f"DELETE FROM {spec.qualified} WHERE time > %s", (self._resume_from,))
            if cursor.rowcount:
                logger.info(
                    "%s: removed %d row(s) written after the checkpoint (times after "
                    "%d); the restarted run writes them again",
                    spec.connector,
                    cursor.rowcount,
                    self._resume_from,
                )

    def _check_schema_exists(self, cursor: Any) -> None:
        spec = self.spec
        if spec.schema_name is None:
            return
        found = cursor.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (spec.schema_name,)
        ).fetchone()
        if found is None:
            raise PostgresInitError(
                spec.connector,
                (
                    f"schema {spec.schema_name!r} does not exist in database "
                    f"{conn.address(spec.settings)}; create it (CREATE SCHEMA) or fix "
                    "schema_name"
                ),
            )

    def _relation(self, cursor: Any) -> tuple[int, str] | None:
        row = cursor.execute(
            "SELECT c.oid, c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (self.spec.qualified,),
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def _check_existing(self, cursor: Any) -> None:
        spec = self.spec
        relation = self._relation(cursor)
        assert relation is not None
        oid, kind = relation
        where = f"{spec.connector}: existing table {spec.display!r}"
        if kind not in ("r", "p"):
            raise PostgresInitError(
                spec.connector, f"{where} is not a table (relkind {kind!r}); write to a table"
            )
        present = {
            name: (typname, notnull, hasdef)
            for name, typname, notnull, hasdef in cursor.execute(
                "SELECT a.attname, t.typname, a.attnotnull, a.atthasdef "
                "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped",
                (oid,),
            ).fetchall()
        }
        wanted = [name for name, _, _ in spec.stored_columns()]
        problems = [f"column {name!r} is missing" for name in wanted if name not in present]
        for name, (_, notnull, hasdef) in present.items():
            if name not in wanted and notnull and not hasdef:
                problems.append(
                    f"column {name!r} is NOT NULL without a default and the "
                    "written table has no such column"
                )
        if spec.mode != "stream":
            keys = sorted(spec.primary_key)
            unique_sets = cursor.execute(
                "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = %s AND i.indisunique AND i.indpred IS NULL "
                "GROUP BY i.indexrelid",
                (oid,),
            ).fetchall()
            if [keys] not in [[list(row[0])] for row in unique_sets]:
                problems.append(
                    f"snapshot mode needs a PRIMARY KEY or UNIQUE constraint on "
                    f"exactly {spec.primary_key}"
                )
        if problems:
            raise PostgresInitError(
                spec.connector,
                f"{where} does not fit the written table: "
                + "; ".join(problems)
                + ". Fix the table, or use init_mode='replace'.",
            )

    # --- transactions ----------------------------------------------------------------------
    def _commit_snapshot(self) -> None:
        if not self._pending:
            return
        frame = (
            pl.concat(self._pending, how="vertical") if len(self._pending) > 1 else self._pending[0]
        )
        self._run(lambda c: self._apply_snapshot(c, frame), write=True)
        self._pending, self._pending_rows = [], 0

    def _send(self, frame: pl.DataFrame) -> None:
        """COPY ``frame`` into the open transaction (kept until the commit, to be sent again
        if the connection breaks before it)."""
        self._pending.append(frame)
        self._pending_rows += frame.height
        if self._broken or self._connection is None:
            self._broken = True
            return
        try:
            with self._connection.cursor() as cursor:
                self._copy(cursor, self.spec.qualified, frame.columns, frame)
        except BaseException as exc:  # noqa: BLE001 - the connection is marked broken, then re-raised
            self._after_failure(exc)
            self._broken = True

    def _commit_open(self) -> None:
        """Commit the open stream transaction; after a broken connection, reconnect and
        send it again, unless its commit is known to have happened."""
        frames = self._pending
        if not frames:
            return
        done = False
        if not self._broken and self._connection is not None:
            xid: int | None = None
            try:
                with self._connection.cursor() as cursor:
                    xid = int(cursor.execute("SELECT txid_current()").fetchone()[0])
                self._connection.commit()
                self.transactions += 1
                done = True
            except BaseException as exc:  # noqa: BLE001 - a lost COMMIT is checked, then re-raised
                self._after_failure(exc)
                done = xid is not None and self._committed(xid)
        if not done:
            target, columns = self.spec.qualified, frames[0].columns

            def copy_all(cursor: Any) -> None:
                for frame in frames:
                    self._copy(cursor, target, columns, frame)

            self._run(copy_all, write=True)
        self._pending, self._pending_rows, self._broken = [], 0, False

    def _after_failure(self, exc: BaseException) -> None:
        """Roll back and raise a failure of the SQL itself; drop a lost connection (the
        caller sends the transaction again)."""
        import psycopg

        spec = self.spec
        if not conn.is_connection_loss(exc):
            connection = self._connection
            try:
                if connection is not None:
                    connection.rollback()
            except Exception:  # noqa: BLE001 - the original error matters
                self._disconnect()
            self._pending, self._pending_rows, self._broken = [], 0, False
            if isinstance(exc, psycopg.Error):
                raise RuntimeError(
                    f"{spec.connector}: writing to table {spec.display!r} at "
                    f"{conn.address(spec.settings)} failed and the transaction was rolled "
                    f"back: {type(exc).__name__}: "
                    f"{conn.hide(str(exc).strip(), spec.settings)}"
                ) from None
            raise exc
        logger.warning(
            "%s: lost the connection to %s (%s); reconnecting",
            spec.connector,
            conn.address(spec.settings),
            conn.hide(" ".join(str(exc).split()) or type(exc).__name__, spec.settings),
        )
        self._disconnect()

    def _copy(self, cursor: Any, target: str, columns: list[str], frame: pl.DataFrame) -> None:
        names = ", ".join(quote_ident(c) for c in columns)
        form = "binary" if self.spec.binary else "csv"
        with cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT {form})") as copy:
            copy.write(copy_binary(frame) if self.spec.binary else _csv(frame))

    def _ensure_stage(self, cursor: Any) -> None:
        """A temporary table (one per connection, emptied at every commit) shaped like the
        written columns, in the destination's own column types."""
        if self._stage_ready:
            return
        spec = self.spec
        relation = self._relation(cursor)
        assert relation is not None
        types = dict(
            cursor.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                (relation[0],),
            ).fetchall()
        )
        parts = [f"{quote_ident(n)} {types[n]}" for n, _, _ in spec.stored_columns()]
        parts += [f"{quote_ident(STAGE_DIFF)} smallint", f"{quote_ident(_STAGE_SEQ)} bigint"]
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote_ident(_STAGE)} "
            f"({', '.join(parts)}) ON COMMIT DELETE ROWS"
        )
        self._stage_ready = True

    def _apply_snapshot(self, cursor: Any, frame: pl.DataFrame) -> None:
        spec = self.spec
        self._ensure_stage(cursor)
        staged = frame.with_columns(pl.int_range(frame.height, dtype=pl.Int64).alias(_STAGE_SEQ))
        self._copy(cursor, quote_ident(_STAGE), staged.columns, staged)
        keys = [quote_ident(k) for k in spec.primary_key]
        stage = quote_ident(_STAGE)
        match = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        cursor.execute(
            f"DELETE FROM {spec.qualified} AS t USING {stage} AS s "
            f"WHERE s.{quote_ident(STAGE_DIFF)} < 0 AND {match}"
        )
        names = [n for n, _, _ in spec.stored_columns()]
        listed = ", ".join(quote_ident(n) for n in names)
        others = [n for n in names if n not in spec.primary_key]
        if others:
            updates = ", ".join(f"{quote_ident(n)} = EXCLUDED.{quote_ident(n)}" for n in others)
            conflict = f"DO UPDATE SET {updates}"
        else:
            conflict = "DO NOTHING"
        # The last insertion of a key wins (two rows of one minibatch may share a key).
        cursor.execute(
            f"INSERT INTO {spec.qualified} ({listed}) "
            f"SELECT DISTINCT ON ({', '.join(keys)}) {listed} FROM {stage} "
            f"WHERE {quote_ident(STAGE_DIFF)} > 0 "
            f"ORDER BY {', '.join(keys)}, {quote_ident(_STAGE_SEQ)} DESC "
            f"ON CONFLICT ({', '.join(keys)}) {conflict}"
        )

    def _run(self, body: Any, *, write: bool = False) -> Any:
        """Run ``body(cursor)`` in one transaction and commit it; after a lost connection,
        reconnect and run it again unless its commit is known to have happened."""
        spec = self.spec
        while True:
            if self._connection is None:
                self._connection = conn.connect(spec.connector, spec.settings, retry_s=spec.retry_s)
                self._stage_ready = False
            connection = self._connection
            xid: int | None = None
            try:
                with connection.cursor() as cursor:
                    result = body(cursor)
                    if write:
                        xid = int(cursor.execute("SELECT txid_current()").fetchone()[0])
                connection.commit()
                self.transactions += 1
                return result
            except BaseException as exc:
                if isinstance(exc, ConnectorError):
                    with contextlib.suppress(Exception):
                        connection.rollback()
                    raise
                pending = self._pending, self._pending_rows
                self._after_failure(exc)  # raises unless the connection was lost
                self._pending, self._pending_rows = pending
                if xid is not None and self._committed(xid):
                    self.transactions += 1
                    return None

    def _committed(self, xid: int) -> bool:
        """Whether transaction ``xid`` committed (asked on a new connection)."""
        spec = self.spec
        self._connection = conn.connect(spec.connector, spec.settings, retry_s=spec.retry_s)
        self._stage_ready = False
        with self._connection.cursor() as cursor:
            status = cursor.execute("SELECT txid_status(%s)", (xid,)).fetchone()[0]
        self._connection.commit()
        logger.info("%s: the interrupted transaction %d is %s", spec.connector, xid, status)
        return status == "committed"


class PostgresOutputSession(OutputSession):
    """Prepares the destination table before the run reads anything, so that a missing or
    unfitting table (or an unreachable server) stops the run at its start."""

    writer: PostgresWriter

    def start(self) -> None:
        try:
            self.writer.open()
        except ConnectorError:
            self.writer.abort()
            raise
        except OSError as exc:
            self.writer.abort()
            raise ConnectorOSError(self.name, str(exc)) from exc
        except Exception as exc:
            self.writer.abort()
            raise ConnectorError(self.name, str(exc)) from exc
        super().start()
