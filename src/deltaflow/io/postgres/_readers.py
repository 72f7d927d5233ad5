"""The readers of ``pw.io.postgres.read``: :class:`StaticReader` (one snapshot) and
:class:`CdcReader` (the snapshot, then change data capture). Slots and catalog checks live in
``_cdc.py``, the change stream thread in ``_stream.py``."""

from __future__ import annotations

import contextlib
import logging
import time as _time
from typing import Any

from deltaflow.io._core.base import (
    Data,
    Finished,
    FinishedSource,
    NewSource,
    OffsetAntichain,
    Reader,
    ReadEvent,
)
from deltaflow.io.postgres import _cdc
from deltaflow.io.postgres._cdc import PostgresReadError, Target
from deltaflow.io.postgres._connection import hide
from deltaflow.io.postgres._decode import Decoder, decoder_for
from deltaflow.io.postgres._rows import TextRowsContext
from deltaflow.io.postgres._stream import Batch, ChangeStream, connection_lost, cursor_slot_name

logger = logging.getLogger("deltaflow.io.postgres")

OFFSET_KEY = "wal"
"""The offset key of the change stream; its value is the end LSN of the last transaction."""

SNAPSHOT_CHUNK_ROWS = 50_000
SLOT_RELEASE_WAIT_S = 10.0
"""How long a start waits for a persistent slot still held by a run that just ended."""


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
        snapshot.delivered += len(rows)
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
            event = self._resilient_snapshot_step()
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
        self._create_slot_and_snapshot()
        self._phase = "snapshot"
        return NewSource({"table": self.target.qualified})

    def _create_slot_and_snapshot(self) -> None:
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

    # --- a connection lost during the snapshot (docs/postgres_read.md) ----------------------
    def _resilient_snapshot_step(self) -> ReadEvent | None:
        import psycopg

        snapshot = self._snapshot
        assert snapshot is not None
        try:
            return self._snapshot_step()
        except psycopg.OperationalError as exc:
            if not connection_lost(exc, snapshot.connection):
                raise
            return self._snapshot_lost(snapshot, exc)

    def _snapshot_lost(self, lost: _cdc.Snapshot, error: Exception) -> ReadEvent | None:
        """Continue the snapshot whose connection broke after ``lost.delivered`` rows: from
        the same exported snapshot if it still exists (exact: the rows handed on are
        skipped), else from a new slot and snapshot, after retracting what was handed on."""
        import psycopg

        target = self.target
        self._close_snapshot()
        logger.warning(
            "%s: lost the connection to %s while reading the snapshot of %s after %d rows "
            "(%s); resuming",
            target.connector,
            target.address,
            target.qualified,
            lost.delivered,
            hide(str(error).strip(), target.settings),
        )
        try:
            # Valid for as long as the replication connection that exported it lives and
            # runs no other command, which it does not during the snapshot.
            self._snapshot = _cdc.open_snapshot(
                target, lost.name, lost.start_lsn, self.names, skip=lost.delivered, retry_s=2.0
            )
            logger.info(
                "%s: reading the same snapshot again after its first %d rows",
                target.connector,
                lost.delivered,
            )
            return None
        except (psycopg.Error, ConnectionError) as exc:
            logger.warning(
                "%s: the exported snapshot is gone (%s); reading the table again from a new "
                "replication slot",
                target.connector,
                hide(str(exc).strip(), target.settings),
            )
        if lost.delivered and (not self._upsert or target.append_only):
            # Rows without a key (or of a table declared append-only) cannot be taken back.
            raise PostgresReadError(
                f"{target.connector}: lost the connection to {target.address} while reading "
                f"the initial snapshot of {target.qualified}, and the snapshot went with it; "
                "reading the table again would repeat rows of a table without primary key or "
                "declared append-only; run the pipeline again"
            ) from error
        self._reconnect_replication()
        state = _cdc.slot_state(self._replication, self._anchor or "")
        if state is not None:  # the slot of the lost snapshot: its start no longer fits
            self._check_idle(state)
            _cdc.drop_slot(self._replication, self._anchor or "")
        self._create_slot_and_snapshot()
        if not lost.delivered:
            return None
        # Retract every row handed on; the new snapshot then upserts the table as it is now.
        return Data(self._context([(None,) * len(self.names)], kinds=["truncate"], key_only=[True]))

    def _reconnect_replication(self) -> None:
        """A new replication connection (retried for the connector's connect budget) holding
        the run lock of a per-run slot again."""
        with contextlib.suppress(Exception):  # broken, or holding a snapshot now useless
            self._replication.close()
        self._replication = None
        self._replication = _cdc.connect(self.target, replication=True)
        if not self.persisted:
            assert self._anchor is not None
            _cdc.hold_run_lock(self._replication, self._anchor)

    def _start_stream(self, advanced: int | None = None) -> None:
        """Hand the replication connection to a :class:`ChangeStream` thread."""
        assert self._anchor is not None
        # What is consumed is a temporary copy of the anchor: the anchor itself only moves
        # to positions that are safe to resume from.
        self._slot = cursor_slot_name(self._anchor)
        self._copy_anchor()
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

    def _copy_anchor(self) -> None:
        """The cursor slot; the replication connection may have been lost while the
        snapshot was read (it stays idle then): the anchor slot survives, a new connection
        copies it."""
        import psycopg

        assert self._anchor is not None
        try:
            _cdc.copy_slot(self._replication, self._anchor, self._slot)
            return
        except psycopg.OperationalError as exc:
            if not connection_lost(exc, self._replication):
                raise
            logger.warning(
                "%s: the replication connection to %s was lost (%s); reconnecting",
                self.target.connector,
                self.target.address,
                hide(str(exc).strip(), self.target.settings),
            )
        self._reconnect_replication()
        if _cdc.slot_state(self._replication, self._anchor) is None:
            raise PostgresReadError(
                f"{self.target.connector}: the replication slot {self._anchor!r} disappeared "
                f"while the connection to {self.target.address} was down (dropped by hand?), "
                "so the changes since the snapshot cannot be followed exactly"
            )
        _cdc.copy_slot(self._replication, self._anchor, self._slot)

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
