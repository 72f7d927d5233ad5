"""pw.io.postgres.read against a real PostgreSQL server (wal_level=logical) on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _io_helpers import BackgroundRun, Changes
from postgres_server import (  # noqa: F401 - *_fixture: the postgres_server and pg fixtures
    PgDatabase,
    PostgresServer,
    pg_fixture,
    postgres_server_fixture,
)

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorError
from deltaflow.engine.runtime import stop_all_runs

pytestmark = pytest.mark.server


class Item(pw.Schema):
    id: int = pw.column_definition(primary_key=True)
    name: str
    price: float | None


def setup_items(pg: PgDatabase, *, publication: bool = True) -> None:
    pg.execute(
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL, price DOUBLE PRECISION)"
    )
    pg.execute("INSERT INTO items VALUES (1, 'apple', 1.5), (2, 'pear', NULL)")
    if publication:
        pg.execute("CREATE PUBLICATION items_pub FOR TABLE items")


def committed(pg: PgDatabase, *statements: str) -> None:
    """Run ``statements`` in one transaction, durable at once (the test server runs with
    synchronous_commit=off, which would delay logical decoding by up to 600 ms)."""
    import psycopg

    with psycopg.connect(pg.conninfo, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")
        with conn.transaction():
            for statement in statements:
                conn.execute(statement)


def rows_of(table: pw.Table) -> list[tuple[Any, ...]]:
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return sorted((tuple(columns[n][k] for n in names) for k in keys), key=repr)


def items(changes: Changes) -> list[tuple[Any, ...]]:
    return sorted((r["id"], r["name"], r["price"]) for r in changes.state())


def slots(pg: PgDatabase) -> list[tuple[str, bool]]:
    return [
        (r[0], r[1])
        for r in pg.execute(
            "SELECT slot_name, temporary FROM pg_replication_slots WHERE database = %s "
            "ORDER BY slot_name",
            (pg.dbname,),
        )
    ]


# --- static --------------------------------------------------------------------------------
def test_static_read_of_every_type(pg: PgDatabase) -> None:
    pg.execute(
        'CREATE TABLE "Odd ""Name""" (id BIGINT PRIMARY KEY, "my col" TEXT, '
        "f REAL, n NUMERIC, b BOOLEAN, raw BYTEA, ts TIMESTAMP, tz TIMESTAMPTZ, "
        "d INTERVAL, us BIGINT, j JSONB, tags TEXT[], grid INT[], vec FLOAT8[], "
        "maybe INT, u UUID)"
    )
    pg.execute(
        'INSERT INTO "Odd ""Name""" VALUES (1, \'a,"b\', 0.5, 12.25, true, '
        "'\\x00ff', '2024-03-01 10:20:30.123456', '2024-03-01 10:20:30+02', "
        "'1 day 02:03:04.5', 1500000, '{\"k\": [1, null]}', "
        "ARRAY['x', 'y z', NULL], '{{1,2},{3,4}}', '{1.5,-2}', NULL, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')"
    )

    class Everything(pw.Schema):
        id: int = pw.column_definition(primary_key=True)
        my_col: str = pw.column_definition(name="my col")
        f: float
        n: float
        b: bool
        raw: bytes
        ts: pw.DateTimeNaive
        tz: pw.DateTimeUtc
        d: pw.Duration
        us: pw.Duration
        j: pw.Json
        tags: list[str | None]
        grid: list[list[int]]
        vec: np.ndarray
        maybe: int | None
        u: str

    table = pw.io.postgres.read(pg.settings, 'Odd "Name"', Everything, mode="static")
    keys, columns = pw.debug.table_to_dicts(table)
    (key,) = keys
    row = {name: columns[name][key] for name in table.column_names()}
    assert row["my col"] == 'a,"b'
    assert row["f"] == 0.5 and row["n"] == 12.25 and row["b"] is True
    assert row["raw"] == b"\x00\xff"
    assert row["ts"] == pd.Timestamp("2024-03-01 10:20:30.123456")
    assert row["tz"] == pd.Timestamp("2024-03-01 08:20:30", tz="UTC")
    assert row["d"] == pd.Timedelta(days=1, hours=2, minutes=3, seconds=4.5)
    assert row["us"] == pd.Timedelta(seconds=1.5)
    assert row["j"].value == {"k": [1, None]}
    assert tuple(row["tags"]) == ("x", "y z", None)
    assert [list(r) for r in row["grid"]] == [[1, 2], [3, 4]]
    assert row["vec"].tolist() == [1.5, -2.0] and row["vec"].dtype == np.float64
    assert row["maybe"] is None
    assert row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"


def test_what_the_writer_stores_reads_back_unchanged(pg: PgDatabase) -> None:
    """pw.io.postgres.write then read: the two halves of the type mapping agree."""

    class Wide(pw.Schema):
        id: int = pw.column_definition(primary_key=True)
        f: float
        s: str
        b: bool
        raw: bytes
        naive: pw.DateTimeNaive
        utc: pw.DateTimeUtc
        span: pw.Duration
        doc: pw.Json
        ref: pw.Pointer
        ints: list[int]
        grid: list[list[float]]
        pair: tuple[str, str]
        arr: np.ndarray
        maybe: str | None

    values = [
        (
            1,
            2.5,
            'é ,"q"\n',
            True,
            b"\x00\x01",
            pd.Timestamp("2024-05-06 07:08:09.123456"),
            pd.Timestamp("2024-05-06 07:08:09.5", tz="UTC"),
            pd.Timedelta(microseconds=-1500),
            pw.Json({"a": [1, "x"]}),
            pw.Pointer(12345),
            (1, -2),
            ((0.5, 1.0), (2.0, 3.0)),
            ("a", "b,c"),
            np.array([[1.5, 2.0], [3.0, 4.0]]),
            None,
        ),
        (
            2,
            float("nan"),
            "",
            False,
            b"",
            pd.Timestamp("1970-01-01"),
            pd.Timestamp("1999-12-31 23:59:59", tz="UTC"),
            pd.Timedelta(days=3),
            pw.Json(None),
            pw.Pointer(0),
            (),
            (),
            ("", ""),
            np.array([7.0]),
            "x",
        ),
    ]
    source = pw.debug.table_from_rows(Wide, values)
    pw.io.postgres.write(
        source,
        pg.settings,
        "wide",
        init_mode="create_if_not_exists",
        output_table_type="snapshot",
        primary_key=[source.id],
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    pw.clear_graph()
    keys, columns = pw.debug.table_to_dicts(
        pw.io.postgres.read(pg.settings, "wide", Wide, mode="static")
    )
    got = {columns["id"][k]: {n: columns[n][k] for n in columns} for k in keys}
    for row in values:
        read_back = got[row[0]]
        for name, expected in zip(Wide.column_names(), row, strict=True):
            actual = read_back[name]
            if isinstance(expected, np.ndarray):
                assert np.array_equal(actual, expected), name
            elif isinstance(expected, float) and np.isnan(expected):
                assert np.isnan(actual), name
            elif isinstance(expected, tuple):
                assert [list(x) if isinstance(x, tuple) else x for x in actual] == [
                    list(x) if isinstance(x, tuple) else x for x in expected
                ], name
            elif isinstance(expected, pw.Json):
                assert actual.value == expected.value, name
            else:
                assert actual == expected, (name, actual, expected)


def test_static_read_skips_and_reports_values_that_do_not_fit(
    pg: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    pg.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, at TIMESTAMP, n NUMERIC)")
    pg.execute(
        "INSERT INTO t VALUES (1, 'ok', '2020-01-01', 1), (2, NULL, '2020-01-01', 2), "
        "(3, 'far', 'infinity', 3), (4, 'big', '2020-01-01', 1e400)"
    )

    class T(pw.Schema):
        id: int = pw.column_definition(primary_key=True)
        name: str
        at: pw.DateTimeNaive
        n: float

    with caplog.at_level(logging.ERROR):
        result = rows_of(pw.io.postgres.read(pg.settings, "t", T, mode="static"))
    assert result == [(1, "ok", pd.Timestamp("2020-01-01"), 1.0)]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "NULL in column 'name'" in messages
    assert "'infinity'" in messages and "does not fit" in messages
    assert pg.settings["password"] not in messages


def test_static_read_without_primary_key_and_of_a_view(pg: PgDatabase) -> None:
    pg.execute("CREATE TABLE log (line TEXT, n INT)")
    pg.execute("INSERT INTO log VALUES ('a', 1), ('a', 1), ('b', 2)")
    pg.execute("CREATE VIEW big AS SELECT * FROM log WHERE n > 1")

    class Log(pw.Schema):
        line: str
        n: int

    assert rows_of(pw.io.postgres.read(pg.settings, "log", Log, mode="static")) == [
        ("a", 1),
        ("a", 1),
        ("b", 2),
    ]
    assert rows_of(pw.io.postgres.read(pg.settings, "big", Log, mode="static")) == [("b", 2)]


def test_schema_name_and_identifiers_are_quoted(pg: PgDatabase) -> None:
    pg.execute('CREATE SCHEMA "Sales; DROP"')
    pg.execute('CREATE TABLE "Sales; DROP".items (id INT PRIMARY KEY, name TEXT, price FLOAT8)')
    pg.execute("""INSERT INTO "Sales; DROP".items VALUES (7, 'x', 1)""")
    table = pw.io.postgres.read(
        pg.settings, "items", Item, mode="static", schema_name="Sales; DROP"
    )
    assert rows_of(table) == [(7, "x", 1.0)]


# --- arguments ------------------------------------------------------------------------------
def test_arguments_are_checked_when_the_pipeline_is_defined(pg: PgDatabase) -> None:
    settings = pg.settings
    with pytest.raises(ValueError, match="publication_name"):
        pw.io.postgres.read(settings, "items", Item)
    with pytest.raises(ValueError, match="publication_name"):
        pw.io.postgres.read(settings, "items", Item, mode="static", publication_name="p")
    with pytest.raises(ValueError, match="mode"):
        pw.io.postgres.read(settings, "items", Item, mode="live", publication_name="p")

    class NoKey(pw.Schema):
        id: int
        name: str

    with pytest.raises(ValueError, match="primary key"):
        pw.io.postgres.read(settings, "items", NoKey, publication_name="p")
    assert pw.io.postgres.read(
        settings, "items", NoKey, publication_name="p", is_append_only=True
    ).is_append_only
    assert pw.io.postgres.read(settings, "items", Item, mode="static").is_append_only
    assert not pw.io.postgres.read(settings, "items", Item, publication_name="p").is_append_only

    class Weird(pw.Schema):
        id: int = pw.column_definition(primary_key=True)
        ref: pw.PyObjectWrapper

    with pytest.raises(TypeError, match="'ref'"):
        pw.io.postgres.read(settings, "items", Weird, mode="static")
    with pytest.raises(TypeError):
        pw.io.postgres.read(settings, "items", Item, mode="static", replication_slot="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="postgres_settings"):
        pw.io.postgres.read("host=x", "items", Item, mode="static")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="autocommit_duration_ms"):
        pw.io.postgres.read(settings, "items", Item, mode="static", autocommit_duration_ms=-1)


@pytest.mark.parametrize(
    "setup, schema_key, message",
    [
        ("", "id", "does not exist"),
        (
            "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price TEXT)",
            "id",
            "column 'price' of type text cannot be read as",
        ),
        (
            "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price FLOAT8)",
            "id",
            "publication 'items_pub' does not exist",
        ),
        (
            "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price FLOAT8); "
            "CREATE PUBLICATION items_pub",
            "id",
            "does not cover the table",
        ),
        (
            "CREATE TABLE items (id INT PRIMARY KEY, name TEXT UNIQUE, price FLOAT8); "
            "CREATE PUBLICATION items_pub FOR TABLE items",
            "name",
            "identify rows by its primary key",
        ),
        (
            "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price FLOAT8); "
            "ALTER TABLE items REPLICA IDENTITY NOTHING; "
            "CREATE PUBLICATION items_pub FOR TABLE items",
            "id",
            "REPLICA IDENTITY NOTHING",
        ),
        (
            "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price FLOAT8) PARTITION BY RANGE (id);"
            " CREATE TABLE items_low PARTITION OF items FOR VALUES FROM (0) TO (100); "
            "CREATE PUBLICATION items_pub FOR TABLE items",
            "id",
            "publish_via_partition_root",
        ),
    ],
)
def test_tables_that_cannot_be_read_fail_the_run_clearly(
    pg: PgDatabase, setup: str, schema_key: str, message: str
) -> None:
    if setup:
        pg.execute(setup)

    class ByName(pw.Schema):
        id: int
        name: str = pw.column_definition(primary_key=True)
        price: float | None

    schema = Item if schema_key == "id" else ByName
    table = pw.io.postgres.read(pg.settings, "items", schema, publication_name="items_pub")
    with pytest.raises(ConnectorError, match=message) as info:
        pw.debug.table_to_dicts(table)
    assert "pw.io.postgres.read(public.items)" in str(info.value)
    assert pg.settings["password"] not in str(info.value)


def test_an_unreachable_server_is_retried_then_named(
    pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_POSTGRES_CONNECT_RETRY_S", "0.5")
    settings = dict(pg.settings, port="1")  # nothing listens there
    table = pw.io.postgres.read(settings, "items", Item, mode="static")
    started = time.monotonic()
    with pytest.raises(
        ConnectorError, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1:1/"
    ) as info:
        pw.debug.table_to_dicts(table)
    assert 0.3 < time.monotonic() - started < 10
    assert "retried for 0.5 s" in str(info.value)
    assert pg.settings["password"] not in str(info.value)


# --- change data capture --------------------------------------------------------------------
def test_streaming_snapshot_then_changes_in_commit_order(pg: PgDatabase) -> None:
    setup_items(pg)
    table = pw.io.postgres.read(
        pg.settings, "items", Item, publication_name="items_pub", autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 2)
        # The run's permanent slot and the temporary copy it consumes.
        (anchor, anchor_temporary), (cursor, cursor_temporary) = slots(pg)
        assert anchor.startswith("deltaflow_run_") and not anchor_temporary
        assert cursor.startswith(anchor + "_") and cursor_temporary
        committed(pg, "INSERT INTO items VALUES (3, 'plum', 3)")
        changes.wait_for(lambda c: len(c.rows) == 3)
        committed(pg, "UPDATE items SET price = 2 WHERE id = 2")
        changes.wait_for(lambda c: len(c.rows) == 5)
        committed(pg, "DELETE FROM items WHERE id = 1")
        changes.wait_for(lambda c: len(c.rows) == 6)
        # One transaction: a key change and several rows, seen at one time.
        committed(
            pg,
            "UPDATE items SET id = 30 WHERE id = 3",
            *[f"INSERT INTO items VALUES ({i}, 'n{i}', {i})" for i in range(100, 150)],
        )
        changes.wait_for(lambda c: len(c.rows) == 58)
        assert items(changes)[:2] == [(2, "pear", 2.0), (30, "plum", 3.0)]
        last = changes.rows[6:]
        assert len({time for _, time, _ in last}) == 1
    assert slots(pg) == []  # the run's slots are dropped when it ends
    times = [time for _, time, _ in changes.rows]
    assert times == sorted(times)
    snapshot_time = changes.rows[0][1]
    assert changes.rows[1][1] == snapshot_time
    assert changes.rows[2][1] > snapshot_time


def test_streaming_a_partitioned_table_through_its_root(pg: PgDatabase) -> None:
    pg.execute(
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL, price FLOAT8) "
        "PARTITION BY RANGE (id)"
    )
    pg.execute("CREATE TABLE items_low PARTITION OF items FOR VALUES FROM (0) TO (100)")
    pg.execute("CREATE TABLE items_high PARTITION OF items FOR VALUES FROM (100) TO (1000)")
    pg.execute("INSERT INTO items VALUES (1, 'a', 1)")
    pg.execute(
        "CREATE PUBLICATION items_pub FOR TABLE items WITH (publish_via_partition_root = true)"
    )
    table = pw.io.postgres.read(
        pg.settings, "items", Item, publication_name="items_pub", autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 1)
        committed(
            pg, "INSERT INTO items VALUES (500, 'b', 2)", "UPDATE items SET id = 200 WHERE id = 1"
        )  # moves between partitions
        changes.wait_for(lambda c: items(c) == [(200, "a", 1.0), (500, "b", 2.0)])


def test_streaming_truncate_and_toasted_values(pg: PgDatabase) -> None:
    setup_items(pg)
    pg.execute("ALTER TABLE items REPLICA IDENTITY FULL")
    big = "x" * 100_000
    committed(pg, f"INSERT INTO items VALUES (5, '{big}', 1)")
    table = pw.io.postgres.read(
        pg.settings, "items", Item, publication_name="items_pub", autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 3)
        committed(pg, "UPDATE items SET price = 9 WHERE id = 5")  # name stays TOASTed
        changes.wait_for(lambda c: len(c.rows) == 5)
        assert (5, big, 9.0) in items(changes)
        committed(pg, "TRUNCATE items")
        changes.wait_for(lambda c: c.state() == [])
        committed(pg, "INSERT INTO items VALUES (8, 'new', NULL)")
        changes.wait_for(lambda c: items(c) == [(8, "new", None)])


def test_streaming_bad_values_are_reported_and_the_row_removed(
    pg: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    pg.execute("CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price NUMERIC)")
    pg.execute("INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2)")
    pg.execute("CREATE PUBLICATION items_pub FOR TABLE items")
    table = pw.io.postgres.read(
        pg.settings, "items", Item, publication_name="items_pub", autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with caplog.at_level(logging.ERROR), BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 2)
        committed(pg, "UPDATE items SET price = 1e400 WHERE id = 1")
        committed(pg, "UPDATE items SET name = NULL WHERE id = 2")
        committed(pg, "INSERT INTO items VALUES (3, 'c', 3)")
        changes.wait_for(lambda c: items(c) == [(3, "c", 3.0)])
        committed(pg, "UPDATE items SET price = 4 WHERE id = 1")
        changes.wait_for(lambda c: items(c) == [(1, "a", 4.0), (3, "c", 3.0)])
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "does not fit" in messages and "NULL in column 'name'" in messages


def test_append_only_tables_refuse_updates(pg: PgDatabase) -> None:
    setup_items(pg)

    class Line(pw.Schema):
        name: str

    table = pw.io.postgres.read(
        pg.settings,
        "items",
        Line,
        publication_name="items_pub",
        is_append_only=True,
        autocommit_duration_ms=10,
    )
    changes = Changes().subscribe(table)
    run = BackgroundRun()
    run.__enter__()
    changes.wait_for(lambda c: len(c.rows) == 2)
    committed(pg, "INSERT INTO items VALUES (3, 'plum', 3)")
    changes.wait_for(lambda c: len(c.rows) == 3)
    committed(pg, "DELETE FROM items WHERE id = 3")
    deadline = time.monotonic() + 10
    while run._thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(Exception, match="append-only"):
        run.stop()


def test_random_transactions_end_in_the_table_state(pg: PgDatabase) -> None:
    """Whatever the sequence of committed transactions, the stream of changes sums up to the
    table's final contents (seeded: reproducible)."""
    setup_items(pg)
    table = pw.io.postgres.read(
        pg.settings, "items", Item, publication_name="items_pub", autocommit_duration_ms=5
    )
    changes = Changes().subscribe(table)
    rng = random.Random(14)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 2)
        for _ in range(40):
            statements = []
            for _ in range(rng.randint(1, 4)):
                key = rng.randint(1, 12)
                action = rng.choice(["upsert", "upsert", "delete", "rekey"])
                if action == "upsert":
                    statements.append(
                        f"INSERT INTO items VALUES ({key}, 'v{rng.randint(0, 9)}', "
                        f"{rng.choice(['NULL', '1.25', '2'])}) ON CONFLICT (id) DO UPDATE "
                        "SET name = EXCLUDED.name, price = EXCLUDED.price"
                    )
                elif action == "delete":
                    statements.append(f"DELETE FROM items WHERE id = {key}")
                else:
                    statements.append(
                        f"UPDATE items SET id = {key + 100} WHERE id = {key} "
                        f"AND NOT EXISTS (SELECT 1 FROM items WHERE id = "
                        f"{key + 100})"
                    )
            committed(pg, *statements)
        final = sorted(tuple(r) for r in pg.execute("SELECT id, name, price FROM items"))
        changes.wait_for(lambda c: items(c) == final, timeout=15)
    # Every time's changes left a consistent table (no key twice, nothing retracted twice).
    alive: dict[int, Any] = {}
    for time_ in sorted({t for _, t, _ in changes.rows}):
        for row, _, _ in [r for r in changes.rows if r[1] == time_ and not r[2]]:
            assert alive.pop(row["id"]) == row
        for row, _, _ in [r for r in changes.rows if r[1] == time_ and r[2]]:
            assert row["id"] not in alive
            alive[row["id"]] = row


# --- persistence -----------------------------------------------------------------------------
class _PersistentRun:
    """``pw.run`` with persistence on a thread (a restartable BackgroundRun)."""

    def __init__(self, config: Any) -> None:
        self.error: BaseException | None = None
        self.config = config
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            pw.run(monitoring_level=pw.MonitoringLevel.NONE, persistence_config=self.config)
        except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
            self.error = exc

    def stop(self) -> None:
        deadline = time.monotonic() + 10
        while self.thread.is_alive() and time.monotonic() < deadline:
            stop_all_runs()
            self.thread.join(timeout=0.05)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def test_persistence_resumes_from_the_checkpointed_position(pg: PgDatabase, tmp_path) -> None:
    pg.execute("CREATE TABLE stock (sku INT PRIMARY KEY, qty INT NOT NULL)")
    pg.execute("INSERT INTO stock VALUES (1, 10), (2, 20)")
    pg.execute("CREATE PUBLICATION stock_pub FOR TABLE stock")
    config = pw.persistence.Config(pw.persistence.Backend.filesystem(tmp_path / "state"))

    class Stock(pw.Schema):
        sku: int = pw.column_definition(primary_key=True)
        qty: int

    def start() -> tuple[Changes, _PersistentRun]:
        pw.clear_graph()
        table = pw.io.postgres.read(
            pg.settings,
            "stock",
            Stock,
            publication_name="stock_pub",
            autocommit_duration_ms=10,
            name="stock",
        )
        totals = table.reduce(n=pw.reducers.count(), total=pw.reducers.sum(pw.this.qty))
        changes = Changes().subscribe(totals)
        return changes, _PersistentRun(config)

    def totals(
        changes: Changes, before: dict[tuple[int, int], int] | None = None
    ) -> list[tuple[int, int]]:
        counts = dict(before or {})
        for row, _, added in changes.rows:
            key = (row["n"], row["total"])
            counts[key] = counts.get(key, 0) + (1 if added else -1)
        return sorted(k for k, n in counts.items() for _ in range(n))

    changes, run = start()
    try:
        changes.wait_for(lambda c: totals(c) == [(2, 30)])
        committed(pg, "INSERT INTO stock VALUES (3, 30)")
        changes.wait_for(lambda c: totals(c) == [(3, 60)])
    finally:
        run.stop()
    ((anchor, temporary),) = slots(pg)
    assert anchor.startswith("deltaflow_") and temporary is False  # kept for the restart

    # Changes made while the pipeline is down are read on restart, and only they.
    committed(pg, "DELETE FROM stock WHERE sku = 1")
    committed(pg, "INSERT INTO stock VALUES (10, 100)")
    before = {(3, 60): 1}
    changes, run = start()
    try:
        changes.wait_for(lambda c: totals(c, before) == [(3, 150)])
        committed(pg, "UPDATE stock SET qty = 0 WHERE sku = 10")
        changes.wait_for(lambda c: totals(c, before) == [(3, 50)])
    finally:
        run.stop()
    # Nothing read twice: the restart's output starts from the checkpointed total.
    first = changes.rows[0]
    assert not first[2] and (first[0]["n"], first[0]["total"]) == (3, 60)
    (state,) = pg.execute(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (anchor,)
    )
    assert state[0] != "0/0"


def test_static_mode_refuses_persistence(pg: PgDatabase, tmp_path) -> None:
    setup_items(pg, publication=False)
    table = pw.io.postgres.read(pg.settings, "items", Item, mode="static")
    pw.io.subscribe(table, lambda **_: None)
    config = pw.persistence.Config(pw.persistence.Backend.filesystem(tmp_path / "state"))
    with pytest.raises(ConnectorError, match="persistence is not supported"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE, persistence_config=config)


_CRASH_PROGRAM = """
import json, sys
import deltaflow as pw

settings, state, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]


class Stock(pw.Schema):
    sku: int = pw.column_definition(primary_key=True)
    qty: int


table = pw.io.postgres.read(settings, "stock", Stock, publication_name="stock_pub",
                            autocommit_duration_ms=5, name="stock")
totals = table.reduce(n=pw.reducers.count(), total=pw.reducers.sum(pw.this.qty))


def on_change(key, row, time, is_addition):
    if is_addition:
        with open(out, "a") as handle:
            handle.write(json.dumps([row["n"], row["total"]]) + "\\n")


pw.io.subscribe(totals, on_change)
pw.run(monitoring_level=pw.MonitoringLevel.NONE,
       persistence_config=pw.persistence.Config(pw.persistence.Backend.filesystem(state)))
"""


@pytest.mark.slow
def test_a_killed_pipeline_resumes_without_losing_a_change(pg: PgDatabase, tmp_path) -> None:
    """SIGKILL while changes stream in, then restart: the totals end equal to the table's."""
    import os
    import signal
    import subprocess
    import sys

    pg.execute("CREATE TABLE stock (sku INT PRIMARY KEY, qty INT NOT NULL)")
    pg.execute("CREATE PUBLICATION stock_pub FOR TABLE stock")
    program = tmp_path / "pipeline.py"
    program.write_text(_CRASH_PROGRAM)
    out = tmp_path / "out.jsonl"
    argv = [
        sys.executable,
        str(program),
        json.dumps(pg.settings),
        str(tmp_path / "state"),
        str(out),
    ]

    def last_total() -> list[int] | None:
        lines = out.read_text().splitlines() if out.exists() else []
        return json.loads(lines[-1]) if lines else None

    def wait_total(expected: list[int], process: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        while last_total() != expected:
            assert process.poll() is None, "the pipeline died"
            assert time.monotonic() < deadline, (last_total(), expected)
            time.sleep(0.05)

    first = subprocess.Popen(argv)
    try:
        committed(pg, "INSERT INTO stock VALUES (0, 1)")
        wait_total([1, 1], first)
        for sku in range(1, 60):  # changes keep coming while the process is killed
            committed(pg, f"INSERT INTO stock VALUES ({sku}, {sku})")
            if sku == 30:
                os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    committed(pg, "UPDATE stock SET qty = qty + 1000 WHERE sku = 5")
    second = subprocess.Popen(argv)
    try:
        committed(pg, "INSERT INTO stock VALUES (100, 100)")
        ((n, total),) = pg.execute("SELECT count(*), sum(qty) FROM stock")
        wait_total([n, total], second)
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(10)
        except subprocess.TimeoutExpired:
            second.kill()


def _kill_replication_connections(pg: PgDatabase, wait_s: float = 15.0) -> int:
    """Terminate the reader's replication connections, once there is one: after an earlier
    kill the reader takes a moment (a backoff wait) to connect again."""
    deadline = time.monotonic() + wait_s
    while True:
        killed = len(
            pg.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "backend_type = 'walsender' AND datname = %s",
                (pg.dbname,),
            )
        )
        if killed or time.monotonic() > deadline:
            return killed
        time.sleep(0.05)


def test_persisted_reader_reconnects_without_losing_or_repeating(pg: PgDatabase, tmp_path) -> None:
    setup_items(pg)
    config = pw.persistence.Config(pw.persistence.Backend.filesystem(tmp_path / "state"))
    table = pw.io.postgres.read(
        pg.settings,
        "items",
        Item,
        publication_name="items_pub",
        autocommit_duration_ms=10,
        name="items",
    )
    changes = Changes().subscribe(table)
    run = _PersistentRun(config)
    try:
        changes.wait_for(lambda c: len(c.rows) == 2)
        committed(pg, "INSERT INTO items VALUES (3, 'plum', 3)")
        changes.wait_for(lambda c: len(c.rows) == 3)
        assert _kill_replication_connections(pg) == 1
        committed(pg, "INSERT INTO items VALUES (4, 'fig', 4)")
        committed(pg, "DELETE FROM items WHERE id = 1")
        changes.wait_for(lambda c: len(c.rows) == 5)
        time.sleep(0.3)  # nothing more may come
    finally:
        run.stop()
    assert items(changes) == [(2, "pear", None), (3, "plum", 3.0), (4, "fig", 4.0)]
    assert len(changes.rows) == 5


def test_unpersisted_reader_reconnects_without_losing_or_repeating(pg: PgDatabase) -> None:
    setup_items(pg)
    table = pw.io.postgres.read(
        pg.settings, "items", Item, publication_name="items_pub", autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 2)
        committed(pg, "INSERT INTO items VALUES (3, 'plum', 3)")
        changes.wait_for(lambda c: len(c.rows) == 3)
        for round_ in range(2):
            assert _kill_replication_connections(pg) == 1
            committed(pg, f"INSERT INTO items VALUES ({10 + round_}, 'fig', 4)")
        committed(pg, "DELETE FROM items WHERE id = 1")
        changes.wait_for(lambda c: len(c.rows) == 6)
        time.sleep(0.3)  # nothing more may come
    assert items(changes) == [
        (2, "pear", None),
        (3, "plum", 3.0),
        (10, "fig", 4.0),
        (11, "fig", 4.0),
    ]
    assert len(changes.rows) == 6
    assert slots(pg) == []


@pytest.mark.parametrize("shutdown", ["fast", "immediate"])
def test_a_server_restart_mid_run_loses_and_repeats_nothing(
    pg: PgDatabase, postgres_server: PostgresServer, shutdown: str
) -> None:
    """``pg_ctl restart`` while changes stream in (a clean shutdown, then a crash of the
    server): the reader reconnects and its table ends equal to the source's, each change
    seen once."""
    pg.execute("CREATE TABLE stock (sku INT PRIMARY KEY, qty INT NOT NULL)")
    pg.execute("CREATE PUBLICATION stock_pub FOR TABLE stock")

    class Stock(pw.Schema):
        sku: int = pw.column_definition(primary_key=True)
        qty: int

    table = pw.io.postgres.read(
        pg.settings, "stock", Stock, publication_name="stock_pub", autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        committed(pg, "INSERT INTO stock VALUES (0, 0)")
        changes.wait_for(lambda c: len(c.rows) == 1)
        for sku in range(1, 21):
            committed(pg, f"INSERT INTO stock VALUES ({sku}, {sku})")
        postgres_server.restart(shutdown)
        for sku in range(21, 41):
            committed(pg, f"INSERT INTO stock VALUES ({sku}, {sku})")
        committed(pg, "UPDATE stock SET qty = -1 WHERE sku = 3")
        changes.wait_for(lambda c: len(c.rows) == 43, timeout=30)
        time.sleep(0.3)  # nothing more may come
    expected = sorted(tuple(r) for r in pg.execute("SELECT sku, qty FROM stock"))
    assert sorted((r["sku"], r["qty"]) for r in changes.state()) == expected
    inserted = [row["sku"] for row, _, added in changes.rows if added]
    assert len(inserted) == len(set(inserted)) + 1  # sku 3 twice: inserted, then updated
    assert len(changes.rows) == 43
    assert slots(pg) == []


def test_slots_left_by_killed_runs_are_dropped_by_the_next_run(pg: PgDatabase) -> None:
    from deltaflow.io.postgres._cdc import Target

    setup_items(pg)
    connector = "pw.io.postgres.read(public.items)"
    target = Target(
        connector=connector,
        settings=pg.settings,
        schema_name="public",
        table_name="items",
        columns={},
        primary_key=(),
        publication=None,
        append_only=False,
        identity=connector,
    )
    import psycopg

    leftover, alive = target.run_slot(), target.run_slot()
    other = Target(**{**target.__dict__, "identity": "another pipeline"}).run_slot()
    for slot in (leftover, alive, other):
        pg.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    # A run of the same connector still reading its snapshot: it holds its run lock.
    with psycopg.connect(pg.conninfo, autocommit=True) as running:
        running.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (alive,))
        table = pw.io.postgres.read(
            pg.settings, "items", Item, publication_name="items_pub", autocommit_duration_ms=10
        )
        changes = Changes().subscribe(table)
        with BackgroundRun():
            changes.wait_for(lambda c: len(c.rows) == 2)
            names = [name for name, _ in slots(pg)]
            assert leftover not in names and alive in names and other in names
    # Another connector's slot and a live run's are not touched.
    assert [name for name, _ in slots(pg)] == sorted([alive, other])


def test_documented_example_runs(pg: PgDatabase) -> None:
    """The example of docs/postgres_read.md."""
    setup_items(pg)
    settings = pg.settings
    results: list[Any] = []

    # --- docs example start ---
    class Product(pw.Schema):
        id: int = pw.column_definition(primary_key=True)
        name: str
        price: float | None

    products = pw.io.postgres.read(settings, "items", Product, mode="static")
    priced = products.filter(pw.this.price.is_not_none())
    # --- docs example end ---
    results = rows_of(priced)
    assert results == [(1, "apple", 1.5)]
    assert json.dumps(results)
