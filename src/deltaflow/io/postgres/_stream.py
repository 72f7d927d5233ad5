"""The change stream of ``pw.io.postgres.read``: a thread polling the replication slot.

:class:`ChangeStream` owns the replication connection once the initial snapshot is read. Its
thread consumes whole transactions from the slot (``_cdc.fetch_changes``), keeps the changes of
the table being read, and queues them, so that the next poll runs while the input session is
still turning the previous changes into rows (the poll is mostly waiting on the server). It
also advances the permanent (anchor) slot and, when the connection breaks, reconnects and
resumes from a new copy of it, skipping the transactions it already queued.

The anchor is advanced to checkpointed positions with persistence; without it, the anchor is a
slot of this run only, advanced to what has been queued (nothing outlives the process then)
and dropped when the stream closes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time as _time
import uuid
from dataclasses import dataclass, field
from typing import Any

from deltaflow.io.postgres import _cdc
from deltaflow.io.postgres._cdc import PostgresReadError, Target
from deltaflow.io.postgres._connection import hide
from deltaflow.io.postgres._decode import Decoder, decoder_for
from deltaflow.io.postgres._pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    Relation,
    Truncate,
    Update,
    parse_message,
)

logger = logging.getLogger("deltaflow.io.postgres")

CHANGES_PER_POLL = 20_000
"""About how many changes one poll consumes at most (whole transactions always)."""

POLL_BACKOFF_S = (0.001, 0.05)
"""Polls of the slot: again at once after changes, then waits doubling up to 50 ms."""

QUEUED_POLLS = 8
"""Polls whose changes may wait for the input session before polling pauses."""


@dataclass
class Batch:
    """The rows of whole transactions, in commit order, in the schema's column order."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    key_only: list[bool] = field(default_factory=list)
    end_lsn: int = 0
    decoders: list[Decoder] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        self.rows += other.rows
        self.kinds += other.kinds
        self.key_only += other.key_only


@dataclass
class _Relation:
    positions: list[int | None]  # tuple index of each schema column


class ChangeStream:
    """Polls ``slot`` on its own thread; :meth:`get` returns the next :class:`Batch`."""

    def __init__(
        self,
        target: Target,
        replication: Any,
        *,
        slot: str,
        anchor: str,
        run_slot: bool,
        oid: int,
        decoders: list[Decoder],
        skip_to: int,
        delivered: int,
        advanced: int,
    ) -> None:
        self.target = target
        self._replication = replication
        self._slot = slot
        self._anchor = anchor
        self._run_slot = run_slot  # no persistence: the anchor is this run's, dropped at close
        self._oid = oid
        self._decoders = decoders
        self._skip_to = skip_to  # transactions ending at or before it are already held
        self._delivered = delivered  # end LSN of the last transaction queued
        self._advanced = advanced  # where the anchor slot stands
        self._checkpointed: int | None = None  # set on the engine thread
        self._last_advance = 0.0
        self._relation: _Relation | None = None
        self._names = list(target.columns)
        self._key_indexes = [self._names.index(k) for k in target.primary_key]
        self._upsert = "upsert" if target.primary_key else "insert"
        self._queue: queue.Queue[Batch | BaseException] = queue.Queue(QUEUED_POLLS)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"deltaflow-pg-cdc-{target.table_name}"
        )

    # --- the reader's side -----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def get(self, timeout: float) -> Batch | None:
        """The next batch (None if none came within ``timeout``); a failure of the thread is
        raised here."""
        try:
            item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def checkpointed(self, lsn: int) -> None:
        self._checkpointed = lsn

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            # The temporary cursor slot would end with its connection, but only once the
            # server's backend has finished exiting, after close() returned: dropped here,
            # a caller listing the slots next sees it gone.
            with contextlib.suppress(Exception):
                _cdc.drop_slot(self._replication, self._slot)
        if self._run_slot:
            _cdc.drop_run_slot(self.target, self._anchor, self._replication)
        with contextlib.suppress(Exception):
            self._replication.close()  # a cursor slot left above ends with its connection

    # --- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = POLL_BACKOFF_S[0]
        try:
            while not self._stop.is_set():
                batch = self._poll()
                if batch is None:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, POLL_BACKOFF_S[1])
                    continue
                backoff = POLL_BACKOFF_S[0]
                self._put(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            self._put(exc)

    def _put(self, item: Batch | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _poll(self) -> Batch | None:
        import psycopg

        try:
            self._advance_anchor()
            messages = _cdc.fetch_changes(
                self._replication, self._slot, self.target.publication or "", CHANGES_PER_POLL
            )
            if not messages:
                return None
            # Decoding may query the catalog (a new table layout): on the same connection.
            batch = self._transactions(messages)
        except psycopg.OperationalError as exc:
            if not connection_lost(exc, self._replication):
                raise
            self._reconnect(exc)  # nothing of this poll was queued: it is read again
            return None
        if batch.end_lsn:
            self._delivered = batch.end_lsn
        return batch

    def _transactions(self, messages: list[bytes]) -> Batch:
        """The rows of the complete transactions in ``messages`` (those already held left
        out) and the end LSN of the last one."""
        batch = Batch(decoders=self._decoders)
        current: Batch | None = None
        for data in messages:
            message = parse_message(data)
            if isinstance(message, Begin):
                current = Batch()
            elif isinstance(message, Commit):
                if current is not None and message.end_lsn > self._skip_to:
                    batch.extend(current)
                current = None
                batch.end_lsn = message.end_lsn
            elif isinstance(message, Relation):
                if message.relation_id == self._oid:
                    self._relation = self._map_relation(message)
                    if batch.rows:  # rows decoded with the old layout stay with theirs
                        raise PostgresReadError(
                            f"{self.target.connector}: the table changed layout inside one poll"
                        )
                    batch.decoders = self._decoders
            elif current is not None:
                self._change(message, current)
        if current is not None:  # PostgreSQL returns whole transactions only
            raise PostgresReadError(
                f"{self.target.connector}: the slot returned part of a transaction"
            )
        return batch

    def _map_relation(self, relation: Relation) -> _Relation:
        names = [c.name for c in relation.columns]
        positions: list[int | None] = []
        decoders = list(self._decoders)  # a new list: queued batches keep theirs
        for index_in_schema, (name, dtype) in enumerate(self.target.columns.items()):
            if name not in names:
                positions.append(None)
                continue
            index = names.index(name)
            pg_type = _cdc.pg_type(self._replication, relation.columns[index].type_oid)
            decoder = decoder_for(pg_type, dtype)
            if decoder is None:
                raise PostgresReadError(
                    f"{self.target.connector}: column {name!r} of "
                    f"{self.target.qualified} now has type "
                    f"{pg_type.describe()}, which cannot be read as "
                    f"{dtype!r}"
                )
            decoders[index_in_schema] = decoder
            positions.append(index)
        self._decoders = decoders
        missing = [n for n, p in zip(self._names, positions, strict=True) if p is None]
        if missing:
            logger.error(
                "%s: column(s) %s were dropped from %s; its changes are read with NULL there",
                self.target.connector,
                missing,
                self.target.qualified,
            )
        return _Relation(positions)

    def _row(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        assert self._relation is not None
        return tuple(
            None if p is None or p >= len(values) else values[p] for p in self._relation.positions
        )

    def _change(self, message: Any, batch: Batch) -> None:
        if isinstance(message, Truncate):
            if self._oid in message.relation_ids:
                self._refuse_if_append_only("TRUNCATE")
                self._add(batch, (None,) * len(self._names), "truncate", True)
            return
        if getattr(message, "relation_id", None) != self._oid:
            return  # another table of the publication
        if self._relation is None:
            raise PostgresReadError(
                f"{self.target.connector}: a change came before the description of its table"
            )
        if isinstance(message, Insert):
            self._add(batch, self._row(message.new), self._upsert, False)
        elif isinstance(message, Update):
            self._refuse_if_append_only("UPDATE")
            new = self._row(message.new)
            if message.old is not None:
                old = self._row(message.old)
                if not message.old_is_key_only:  # REPLICA IDENTITY FULL: fill TOASTed values
                    new = tuple(o if n is UNCHANGED else n for n, o in zip(new, old, strict=True))
                if self._key(old) != self._key(new):  # the key changed: retract the old row
                    self._add(batch, old, "delete", True)
            self._add(batch, new, "upsert", False)
        elif isinstance(message, Delete):
            self._refuse_if_append_only("DELETE")
            self._add(batch, self._row(message.old), "delete", True)

    @staticmethod
    def _add(batch: Batch, row: tuple[Any, ...], kind: str, key_only: bool) -> None:
        batch.rows.append(row)
        batch.kinds.append(kind)
        batch.key_only.append(key_only)

    def _key(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in self._key_indexes)

    def _refuse_if_append_only(self, what: str) -> None:
        if self.target.append_only:
            raise PostgresReadError(
                f"{self.target.connector}: {self.target.qualified} was "
                f"declared append-only (is_append_only=True) but a {what} "
                "changed it"
            )

    def _advance_anchor(self) -> None:
        """Let the anchor slot forget what a checkpoint holds (without persistence: what was
        queued), at most twice a second, so that the server can recycle that WAL."""
        lsn = self._delivered if self._run_slot else self._checkpointed
        if lsn is None or lsn <= self._advanced:
            return
        if _time.monotonic() - self._last_advance < 0.5:
            return
        _cdc.advance_slot(self._replication, self._anchor, lsn)
        self._advanced = lsn
        self._last_advance = _time.monotonic()

    def _reconnect(self, error: Exception) -> None:
        """The connection broke (a network fault, a server restart): continue from a new
        copy of the anchor slot, skipping the transactions already queued. A server that
        comes back and goes again (a restart in progress) is retried until the connector's
        connect budget is spent."""
        import psycopg

        target = self.target
        logger.warning(
            "%s: lost the connection to %s (%s); reconnecting",
            target.connector,
            target.address,
            hide(str(error).strip(), target.settings),
        )
        budget = _cdc.connect_retry_seconds()
        deadline = _time.monotonic() + budget
        while True:
            with contextlib.suppress(Exception):  # it is broken anyway
                self._replication.close()
            try:
                self._replication = _cdc.connect(
                    target, replication=True, retry_s=max(deadline - _time.monotonic(), 0.0)
                )
                if self._run_slot:
                    _cdc.hold_run_lock(self._replication, self._anchor)
                state = _cdc.slot_state(self._replication, self._anchor)
                if state is None:
                    raise PostgresReadError(
                        f"{target.connector}: the replication slot {self._anchor!r} "
                        f"disappeared while the connection to {target.address} was down "
                        "(dropped by hand?), so the changes since cannot be followed exactly"
                    )
                slot = cursor_slot_name(self._anchor)
                _cdc.copy_slot(self._replication, self._anchor, slot)
                break
            except psycopg.OperationalError as exc:
                if (
                    not connection_lost(exc, self._replication)
                    or _time.monotonic() > deadline
                    or self._stop.is_set()
                ):
                    raise
                logger.warning(
                    "%s: connection to %s lost again while reconnecting (%s)",
                    target.connector,
                    target.address,
                    hide(str(exc).strip(), target.settings),
                )
                self._stop.wait(0.5)
        logger.info(
            "%s: reconnected to %s; resuming from slot %r",
            target.connector,
            target.address,
            self._anchor,
        )
        self._slot = slot
        self._skip_to = self._delivered
        self._advanced = max(self._advanced, state[0] or 0)
        self._relation = None


def connection_lost(error: Exception, connection: Any) -> bool:
    """Whether ``error`` means the connection (or the server) went away, rather than that
    the server refused a command: no SQLSTATE (a socket error), class 08 (connection
    exception) or 57P (the server shutting down or starting)."""
    if connection.broken or connection.closed:
        return True
    state = getattr(error, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


def cursor_slot_name(anchor: str) -> str:
    """A fresh name for the temporary copy of ``anchor`` a run consumes."""
    return f"{anchor}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
