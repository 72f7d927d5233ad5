"""pw.io.postgres.read: connections lost while the initial snapshot is read (a real server).

The snapshot is read as one minibatch, so the test stops it in the middle on the server: the
reader connects as a role that row-level security applies to, and a policy makes the scan
wait, at one row, for an advisory lock that the test holds. While the scan waits, the test
terminates the snapshot's connection, the replication connection, both, or restarts the
server, then lets the scan go on."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from _io_helpers import BackgroundRun, Changes
from postgres_server import (  # noqa: F401 - *_fixture: the postgres_server and pg fixtures
    PgDatabase,
    PostgresServer,
    pg_fixture,
    postgres_server_fixture,
)
from test_postgres_read import committed, slots

import deltaflow as pw
from deltaflow.io.postgres import _readers

pytestmark = pytest.mark.server

ROWS = 2000
CHUNK = 50


class Stock(pw.Schema):
    sku: int = pw.column_definition(primary_key=True)
    qty: int


GATE_LOCK = 4242
GATE_ROW = 1000  # the scan waits before this row: CHUNK-row chunks before it are handed on


class Gate:
    """Holds the advisory lock that the policy of a gated table waits for."""

    def __init__(self, pg: PgDatabase) -> None:
        import psycopg

        self._pg = pg
        self._conn = psycopg.connect(pg.conninfo, autocommit=True)
        self._conn.execute("SELECT pg_advisory_lock(%s)", (GATE_LOCK,))

    def wait_until_held(self, timeout: float = 15.0) -> None:
        """Until the reader's scan waits for the lock (it reached the gated row)."""
        deadline = time.monotonic() + timeout
        while not self._pg.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
            (GATE_LOCK,),
        ):
            assert time.monotonic() < deadline, "the snapshot never reached the gated row"
            time.sleep(0.05)

    def open(self) -> None:
        with contextlib.suppress(Exception):  # a server restart ended it already
            self._conn.close()


def gated_reader_settings(pg: PgDatabase, table: str, columns: str) -> dict[str, Any]:
    """Create ``table`` (``columns``) holding ``ROWS`` rows numbered from 1 in its first
    column, published, and readable by a new role whose scans of it wait for
    :data:`GATE_LOCK` at row :data:`GATE_ROW`; the connection settings of that role."""
    role = f"reader_{pg.dbname}"[:63]
    first = columns.split()[0]
    pg.execute(f"CREATE TABLE {table} ({columns})")
    values = ", ".join("g" for _ in columns.split(","))
    pg.execute(f"INSERT INTO {table} SELECT {values} FROM generate_series(1, {ROWS}) g")
    pg.execute(f"CREATE PUBLICATION {table}_pub FOR TABLE {table}")
    pg.execute(
        "CREATE FUNCTION gate(n int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN "
        f"IF n = {GATE_ROW} THEN PERFORM pg_advisory_lock_shared({GATE_LOCK}); "
        f"PERFORM pg_advisory_unlock_shared({GATE_LOCK}); END IF; RETURN true; END $$"
    )
    pg.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    pg.execute(f"CREATE POLICY gated ON {table} FOR SELECT USING (gate({first}))")
    pg.execute(f"CREATE ROLE {role} LOGIN REPLICATION PASSWORD 'reader-secret'")
    pg.execute(f"GRANT SELECT ON {table} TO {role}")
    return {**pg.settings, "user": role, "password": "reader-secret"}


def _terminate(pg: PgDatabase, condition: str) -> int:
    """Terminate the reader's connections matching ``condition`` (never this one) and wait
    until their server processes are gone (an exported snapshot lives as long as its
    process, which takes a moment to exit)."""
    where = f"datname = %s AND pid <> pg_backend_pid() AND {condition}"
    pids = pg.execute(f"SELECT pid FROM pg_stat_activity WHERE {where}", (pg.dbname,))
    for (pid,) in pids:
        pg.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
    return len(pids)


SNAPSHOT_BACKEND = "backend_type = 'client backend' AND strpos(query, 'deltaflow_snapshot_') > 0"
REPLICATION_BACKEND = "backend_type = 'walsender'"


def _source(pg: PgDatabase) -> list[tuple[int, int]]:
    return sorted(tuple(r) for r in pg.execute("SELECT sku, qty FROM stock"))  # type: ignore[misc]


def _state(changes: Changes) -> list[tuple[int, int]]:
    return sorted((r["sku"], r["qty"]) for r in changes.state())


@pytest.mark.parametrize(
    ("lost", "persisted"),
    [
        ("snapshot", False),
        ("replication", False),
        ("both", False),
        ("restart", False),
        ("replication", True),
        ("both", True),
    ],
)
def test_a_connection_lost_during_the_snapshot_loses_and_repeats_nothing(
    pg: PgDatabase,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    lost: str,
    persisted: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="deltaflow.io.postgres")
    monkeypatch.setattr(_readers, "SNAPSHOT_CHUNK_ROWS", CHUNK)
    settings = gated_reader_settings(pg, "stock", "sku INT PRIMARY KEY, qty INT NOT NULL")
    gate = Gate(pg)
    table = pw.io.postgres.read(
        settings,
        "stock",
        Stock,
        publication_name="stock_pub",
        autocommit_duration_ms=10,
        name="stock",
    )
    changes = Changes().subscribe(table)
    backend = pw.persistence.Backend.filesystem(tmp_path / "state")
    config = pw.persistence.Config(backend) if persisted else None
    with BackgroundRun(persistence_config=config):
        try:
            gate.wait_until_held()
            if lost == "restart":
                postgres_server.restart("fast")
            else:
                # The exporting connection first: its snapshot is gone once the reader
                # notices that it lost the snapshot's connection.
                if lost in ("replication", "both"):
                    assert _terminate(pg, REPLICATION_BACKEND) == 1
                if lost in ("snapshot", "both"):
                    assert _terminate(pg, SNAPSHOT_BACKEND) == 1
            # Committed while the reader is away: in the snapshot or in the change stream.
            committed(pg, "UPDATE stock SET qty = -1 WHERE sku = 7")
        finally:
            gate.open()
        expected = _source(pg)
        changes.wait_for(lambda c: _state(c) == expected, timeout=30)
        committed(
            pg,
            "UPDATE stock SET qty = -2 WHERE sku = 9",
            "DELETE FROM stock WHERE sku = 8",
            f"INSERT INTO stock VALUES ({ROWS + 1}, 0)",
        )
        expected = _source(pg)
        changes.wait_for(lambda c: _state(c) == expected, timeout=30)
        time.sleep(0.3)  # nothing more may come
    assert _state(changes) == expected
    retracted = sorted(row["sku"] for row, _, added in changes.rows if not added)
    # Each row of the snapshot came once, then the changes: the update of sku 9, the
    # deletion of sku 8, the insertion; the update of sku 7 shows as a change only when it
    # came after the snapshot's minibatch (in it, it is consolidated away; with a new
    # snapshot, it is in the snapshot). Whatever the reader retracted of a snapshot that was
    # gone and read again is inside the snapshot's minibatch: it never shows.
    assert retracted in ([8, 9], [7, 8, 9])
    assert len(changes.rows) == ROWS + 2 + 1 + 1 + (2 if 7 in retracted else 0)
    # Which way the reader went on: the same snapshot, a new one, or the snapshot was whole
    # and only the replication connection came back for the change stream.
    messages = caplog.text
    assert ("reading the same snapshot again after its first 950 rows" in messages) == (
        lost == "snapshot"
    )
    assert ("the exported snapshot is gone" in messages) == (lost in ("both", "restart"))
    assert ("replication connection" in messages and "was lost" in messages) == (
        lost == "replication"
    )
    # With persistence the connector's slot stays for the next run (and only it).
    assert [temporary for _, temporary in slots(pg)] == ([False] if persisted else [])


class Event(pw.Schema):
    n: int


def test_a_keyless_table_survives_losing_the_snapshot_connection(
    pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the replication connection lives, its exported snapshot is read on from where
    it stood: rows without a key come once each."""
    monkeypatch.setattr(_readers, "SNAPSHOT_CHUNK_ROWS", CHUNK)
    settings = gated_reader_settings(pg, "events", "n INT NOT NULL")
    gate = Gate(pg)
    table = pw.io.postgres.read(
        settings,
        "events",
        Event,
        publication_name="events_pub",
        is_append_only=True,
        autocommit_duration_ms=10,
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        try:
            gate.wait_until_held()
            assert _terminate(pg, SNAPSHOT_BACKEND) == 1
        finally:
            gate.open()
        changes.wait_for(lambda c: len(c.rows) >= ROWS)
        committed(pg, f"INSERT INTO events VALUES ({ROWS + 1})")
        changes.wait_for(lambda c: len(c.rows) == ROWS + 1)
        time.sleep(0.3)
    assert sorted(row["n"] for row, _, _ in changes.rows) == list(range(1, ROWS + 2))
    assert slots(pg) == []


def test_a_keyless_table_whose_snapshot_is_gone_fails_clearly(
    pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows without a key cannot be taken back one by one: when the exported snapshot is
    gone too, the run stops, saying why, rather than repeat rows."""
    monkeypatch.setattr(_readers, "SNAPSHOT_CHUNK_ROWS", CHUNK)
    settings = gated_reader_settings(pg, "events", "n INT NOT NULL")
    gate = Gate(pg)
    table = pw.io.postgres.read(
        settings,
        "events",
        Event,
        publication_name="events_pub",
        is_append_only=True,
        autocommit_duration_ms=10,
    )
    changes = Changes().subscribe(table)
    run = BackgroundRun().__enter__()
    try:
        gate.wait_until_held()
        assert _terminate(pg, REPLICATION_BACKEND) == 1  # first: see above
        assert _terminate(pg, SNAPSHOT_BACKEND) == 1
    finally:
        gate.open()
    run._thread.join(timeout=30)  # the run ends by itself, failed
    with pytest.raises(Exception, match="without primary key or declared append-only"):
        run.stop()
    assert changes.rows == []  # the partial snapshot never reached the engine
    assert slots(pg) == []
