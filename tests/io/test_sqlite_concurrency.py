"""pw.io.sqlite with a second process: streaming reads of another process's changes, and a
writer pipeline and a reader pipeline sharing one database file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorStats, Sink
from deltaflow.table import add_output

TIMEOUT_S = 60.0


class LiveState(Sink):
    """Keeps a table's current rows as the run goes and lets a test wait for a state."""

    def __init__(
        self, columns: list[str], check: Callable[[dict[Any, tuple]], str | None] | None = None
    ) -> None:
        self.name = "live-state"
        self.stats = ConnectorStats()
        self.columns = columns
        self.rows: dict[Any, tuple] = {}
        self.changes: list[tuple[int, tuple, int]] = []
        self.violations: list[str] = []
        self._check = check
        self._condition = threading.Condition()

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        with self._condition:
            for row in batch.select(["_id", *self.columns, "_diff"]).iter_rows():
                key, values, diff = row[0], tuple(row[1:-1]), row[-1]
                self.changes.append((time, values, diff))
                if diff > 0:
                    self.rows[key] = values
                elif self.rows.get(key) == values:
                    del self.rows[key]
                else:
                    self.violations.append(f"time {time}: retraction of unknown row {values}")

    def on_time_end(self, time: int) -> None:
        with self._condition:
            if self._check is not None:
                problem = self._check(self.rows)
                if problem:
                    self.violations.append(f"time {time}: {problem}")
            self._condition.notify_all()

    def state(self) -> set[tuple]:
        with self._condition:
            return set(self.rows.values())

    def wait_for(self, expected: set[tuple], timeout: float = TIMEOUT_S) -> None:
        with self._condition:
            reached = self._condition.wait_for(lambda: set(self.rows.values()) == expected, timeout)
            assert reached, f"state {set(self.rows.values())} never became {expected}"


class Run:
    """``pw.run()`` on a thread, ended by stopping the streaming SQLite input session."""

    def __init__(self, table: pw.Table) -> None:
        self.source = table._node.source
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            pw.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
            self.error = exc

    def stop(self) -> None:
        self.source.stop()
        self.thread.join(TIMEOUT_S)
        assert not self.thread.is_alive(), "the run did not end after the source stopped"
        if self.error is not None:
            raise self.error


_SQL_CLIENT = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
for line in sys.stdin:
    connection.execute(line)
    print("ok", flush=True)
"""


@pytest.mark.parametrize("keyed", [True, False], ids=["primary-key", "rowid"])
def test_streaming_read_sees_another_process_s_changes(tmp_path: Path, keyed: bool) -> None:
    db = tmp_path / "shared.db"
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER, s TEXT)")
    connection.execute("INSERT INTO t VALUES (1, 10, 'a'), (2, 20, 'b')")
    connection.commit()
    connection.close()

    schema = pw.schema_from_types(k=int, v=int, s=str)
    if keyed:

        class Keyed(pw.Schema):
            k: int = pw.column_definition(primary_key=True)
            v: int
            s: str

        schema = Keyed
    table = pw.io.sqlite.read(db, "t", schema, autocommit_duration_ms=20)
    live = LiveState(["k", "v", "s"])
    add_output(table, live)
    client = subprocess.Popen(
        [sys.executable, "-c", _SQL_CLIENT, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    run = Run(table)
    try:
        live.wait_for({(1, 10, "a"), (2, 20, "b")})

        def other_process(sql: str) -> None:
            assert client.stdin is not None and client.stdout is not None
            client.stdin.write(sql + "\n")
            client.stdin.flush()
            assert client.stdout.readline().strip() == "ok"

        other_process("INSERT INTO t VALUES (3, 30, 'c')")
        live.wait_for({(1, 10, "a"), (2, 20, "b"), (3, 30, "c")})
        other_process("UPDATE t SET v = 11, s = 'a2' WHERE k = 1")
        live.wait_for({(1, 11, "a2"), (2, 20, "b"), (3, 30, "c")})
        other_process("DELETE FROM t WHERE k = 2")
        live.wait_for({(1, 11, "a2"), (3, 30, "c")})
    finally:
        if client.stdin is not None:
            client.stdin.close()
        client.wait(TIMEOUT_S)
        run.stop()
    assert live.violations == []
    # the update is one retraction and one insertion, at the same time, of the same row id
    update = [(time, values, diff) for time, values, diff in live.changes if values[0] == 1]
    assert [(values, diff) for _, values, diff in update] == [
        ((1, 10, "a"), 1),
        ((1, 10, "a"), -1),
        ((1, 11, "a2"), 1),
    ] or [(values, diff) for _, values, diff in update] == [
        ((1, 10, "a"), 1),
        ((1, 11, "a2"), 1),
        ((1, 10, "a"), -1),
    ]
    assert update[1][0] == update[2][0]


_TRANSFER_WRITER = """
import json, random, sys
import deltaflow as pw

path, steps = sys.argv[1], int(sys.argv[2])

class Account(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    balance: int

balances = {k: 100 for k in range(20)}
rows = [(k, 100, 2, 1) for k in range(20)]
rng = random.Random(7)
for step in range(steps):
    time = 4 + 2 * step
    a, b = rng.sample(range(20), 2)
    amount = rng.randint(1, 50)
    for k, change in ((a, -amount), (b, amount)):
        rows.append((k, balances[k], time, -1))
        balances[k] += change
        rows.append((k, balances[k], time, 1))
accounts = pw.debug.table_from_rows(Account, rows, is_stream=True)
pw.io.sqlite.write(accounts, path, "accounts", output_table_type="snapshot",
                   primary_key=[accounts.k], max_batch_size=1)
pw.run()
print(json.dumps(balances))
"""


def test_snapshot_minibatches_are_atomic_for_a_reader_pipeline_in_another_process(
    tmp_path: Path,
) -> None:
    """A writer pipeline (subprocess) moves money between 20 accounts, one transfer per
    minibatch, committing with max_batch_size=1; the total must be 2000 in every state that a
    reader pipeline (this process) or a plain SQLite reader ever sees."""
    db = tmp_path / "bank.db"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE accounts (k INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
    connection.commit()
    connection.close()

    def invariant(rows: dict[Any, tuple]) -> str | None:
        total = sum(balance for _, balance in rows.values())
        if rows and (len(rows) != 20 or total != 2000):
            return f"{len(rows)} accounts holding {total}"
        return None

    class Account(pw.Schema):
        k: int = pw.column_definition(primary_key=True)
        balance: int

    table = pw.io.sqlite.read(db, "accounts", Account, autocommit_duration_ms=5)
    live = LiveState(["k", "balance"], check=invariant)
    add_output(table, live)
    run = Run(table)
    writer = subprocess.Popen(
        [sys.executable, "-c", _TRANSFER_WRITER, str(db), "150"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[tuple[int, int | None]] = set()
    polls = 0
    try:
        plain = sqlite3.connect(db, timeout=30)
        while writer.poll() is None:
            seen.add(plain.execute("SELECT count(*), sum(balance) FROM accounts").fetchone())
            polls += 1
        plain.close()
        out, err = writer.communicate(timeout=TIMEOUT_S)
        assert writer.returncode == 0, err
        final = {(int(k), v) for k, v in json.loads(out.strip().splitlines()[-1]).items()}
        live.wait_for(final)
    finally:
        if writer.poll() is None:
            writer.kill()
        run.stop()
    assert live.violations == []
    assert seen <= {(0, None), (20, 2000)}, seen
    assert polls > 0
    assert "database is locked" not in err
