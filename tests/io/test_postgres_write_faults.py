"""pw.io.postgres.write under faults: a server down at start, connections lost mid-run (also
right after COMMIT was sent), and a pipeline killed with SIGKILL and restarted with
persistence. Nothing committed may be lost or written twice."""

from __future__ import annotations

import contextlib
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from postgres_server import (  # noqa: F401 - *_fixture: the postgres_server and pg fixtures
    PgDatabase,
    PostgresServer,
    pg_fixture,
    postgres_server_fixture,
)

import deltaflow as pw
from deltaflow.engine.runtime import stop_all_runs

pytestmark = pytest.mark.server


def wait_for(condition: Any, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proxy:
    """A TCP proxy to the real server on a port of its own, which a test can stop (all
    connections cut, new ones refused), start again, or arm to cut a connection right after
    forwarding a ``COMMIT`` and before its answer comes back."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or _free_port()
        self.cut_after_commit = False
        self.commits_cut = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, server]
            blocked = threading.Event()  # set: answers from the server are dropped
            threading.Thread(
                target=self._pipe, args=(client, server, blocked, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pipe, args=(server, client, blocked, False), daemon=True
            ).start()

    def _pipe(
        self, source: socket.socket, sink: socket.socket, blocked: threading.Event, upstream: bool
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data or (blocked.is_set() and not upstream):
                    break
                commit = (
                    upstream and self.cut_after_commit and b"Q\x00\x00\x00\x0bCOMMIT\x00" in data
                )
                if commit:  # let the COMMIT through, never its answer
                    self.cut_after_commit = False
                    blocked.set()
                sink.sendall(data)
                if commit:
                    self.commits_cut += 1
                    time.sleep(0.3)  # the server commits meanwhile
                    break
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


class Feed(pw.io.python.ConnectorSubject):
    """Rows a test hands over one commit at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.items: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()

    def run(self) -> None:
        while True:
            rows = self.items.get()
            if rows is None:
                return
            for row in rows:
                self.next(**row)
            self.commit()


class KV(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    v: str


def _start(target: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, errors


def _stop(thread: threading.Thread, feed: Feed) -> None:
    feed.items.put(None)
    thread.join(20)
    if thread.is_alive():
        stop_all_runs()
        thread.join(10)
    assert not thread.is_alive()


def test_server_down_at_start_fails_naming_connector_and_address(
    pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_POSTGRES_CONNECT_RETRY_S", "1")
    port = _free_port()
    settings = {**pg.settings, "port": str(port)}
    table = pw.debug.table_from_markdown("k\n1")
    pw.io.postgres.write(table, settings, "t", init_mode="replace", name="down-sink")
    started = time.monotonic()
    with pytest.raises(OSError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "down-sink" in message
    assert settings["password"] not in message
    assert 0.9 <= elapsed < 15


def test_wrong_password_fails_at_once_without_showing_it(pg: PgDatabase) -> None:
    settings = {**pg.settings, "password": "not-the-password-42"}
    pw.io.postgres.write(pw.debug.table_from_markdown("k\n1"), settings, "t", init_mode="replace")
    started = time.monotonic()
    with pytest.raises(OSError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert time.monotonic() - started < 10
    assert "not-the-password-42" not in str(caught.value)
    assert "authentication" in str(caught.value)


def test_server_coming_up_during_the_retry_window(
    pg: PgDatabase, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_POSTGRES_CONNECT_RETRY_S", "20")
    proxy = Proxy(postgres_server.port)
    table = pw.debug.table_from_markdown("k\n1\n2")
    pw.io.postgres.write(table, {**pg.settings, "port": proxy.port}, "late", init_mode="replace")
    threading.Timer(1.0, proxy.start).start()
    try:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    finally:
        proxy.stop()
    assert pg.execute("SELECT k FROM late ORDER BY k") == [(1,), (2,)]


@pytest.mark.parametrize("mode", ["stream_of_changes", "snapshot"])
def test_connection_lost_mid_run_loses_and_doubles_nothing(
    pg: PgDatabase, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("DELTAFLOW_POSTGRES_CONNECT_RETRY_S", "20")
    proxy = Proxy(postgres_server.port)
    proxy.start()
    feed = Feed()
    table = pw.io.python.read(feed, schema=KV)
    extra: dict[str, Any] = (
        {"output_table_type": "snapshot", "primary_key": [table.k]} if mode == "snapshot" else {}
    )
    pw.io.postgres.write(
        table, {**pg.settings, "port": proxy.port}, "out", init_mode="replace", **extra
    )
    thread, errors = _start(lambda: pw.run(monitoring_level=pw.MonitoringLevel.NONE))

    def count() -> int:
        try:
            return int(pg.execute("SELECT count(*) FROM out")[0][0])
        except Exception:  # noqa: BLE001 - the table may not exist yet
            return -1

    try:
        feed.items.put([{"k": 1, "v": "a"}, {"k": 2, "v": "b"}])
        assert wait_for(lambda: count() == 2, timeout=20)
        proxy.stop()  # every connection cut; the server unreachable for a while
        feed.items.put([{"k": 3, "v": "c"}])
        time.sleep(0.5)
        proxy.start()
        assert wait_for(lambda: count() == 3, timeout=20)
        proxy.cut_after_commit = True  # the next COMMIT happens, its answer is lost
        feed.items.put([{"k": 4, "v": "d"}, {"k": 5, "v": "e"}])
        assert wait_for(lambda: proxy.commits_cut == 1, timeout=20)
        feed.items.put([{"k": 6, "v": "f"}])
        assert wait_for(lambda: count() == 6, timeout=20)
    finally:
        _stop(thread, feed)
        proxy.stop()
    assert not errors, errors
    assert pg.execute("SELECT k, count(*) FROM out GROUP BY k ORDER BY k") == [
        (k, 1) for k in range(1, 7)
    ]


def test_snapshot_minibatches_are_atomic_for_readers(pg: PgDatabase) -> None:
    """A reader polling the table never sees a minibatch half applied: each time moves all
    rows from value n to n+1 at once."""
    feed = Feed()
    table = pw.io.python.read(feed, schema=KV)
    pw.io.postgres.write(
        table,
        pg.settings,
        "atomic",
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[table.k],
    )
    thread, errors = _start(lambda: pw.run(monitoring_level=pw.MonitoringLevel.NONE))
    seen: set[tuple[str, ...]] = set()
    try:
        for step in range(6):
            feed.items.put([{"k": k, "v": str(step)} for k in range(200)])
            for _ in range(5):
                try:
                    values = pg.execute("SELECT DISTINCT v FROM atomic")
                except Exception:  # noqa: BLE001 - not created yet
                    continue
                seen.add(tuple(sorted(v for (v,) in values)))
        assert wait_for(lambda: pg.execute("SELECT DISTINCT v FROM atomic") == [("5",)], timeout=20)
    finally:
        _stop(thread, feed)
    assert not errors, errors
    assert all(len(state) <= 1 for state in seen), seen


# --- crash and restart ------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import json, sys
    import deltaflow as pw

    inputs, store, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    settings = json.loads(sys.argv[4])

    class Row(pw.Schema):
        k: int
        v: str

    rows = pw.io.csv.read(inputs, schema=Row, mode="streaming", name="rows",
                          autocommit_duration_ms=20)
    extra = {"output_table_type": "snapshot", "primary_key": [rows.k]} \\
        if mode == "snapshot" else {}
    pw.io.postgres.write(rows, settings, "crash", init_mode="create_if_not_exists",
                         name="crash-out", **extra)
    pw.run(persistence_config=pw.persistence.Config(
        pw.persistence.Backend.filesystem(store), snapshot_interval_ms=1000),
        monitoring_level=pw.MonitoringLevel.NONE)
""")


@pytest.mark.parametrize(
    "mode", ["stream_of_changes", pytest.param("snapshot", marks=pytest.mark.slow)]
)
def test_sigkill_and_restart_with_persistence_is_exactly_once(
    pg: PgDatabase, tmp_path: Path, mode: str
) -> None:
    import json

    inputs = tmp_path / "in"
    inputs.mkdir()
    store = tmp_path / "store"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    rng = random.Random(14)
    next_key = 0
    expected: set[int] = set()

    def add_file() -> None:
        nonlocal next_key
        keys = range(next_key, next_key + 50)
        next_key += 50
        path = inputs / f"part-{next_key:06d}.csv"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("k,v\n" + "".join(f"{k},v{k}\n" for k in keys))
        tmp.rename(path)
        expected.update(keys)

    log = tmp_path / "child.log"

    def launch() -> subprocess.Popen[bytes]:
        with open(log, "ab") as sink:
            return subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    str(inputs),
                    str(store),
                    mode,
                    json.dumps(pg.settings),
                ],
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )

    def count() -> int:
        try:
            return int(pg.execute("SELECT count(*) FROM crash")[0][0])
        except Exception:  # noqa: BLE001 - not created yet
            return 0

    for _ in range(2):  # runs killed at random moments while files keep coming
        before = count()
        child = launch()
        deadline = time.monotonic() + 120
        while count() <= before and time.monotonic() < deadline:  # the run is writing
            add_file()
            time.sleep(0.1)
        kill_at = time.monotonic() + rng.uniform(0.3, 1.5)
        while time.monotonic() < kill_at:
            add_file()
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    add_file()
    child = launch()
    try:
        assert wait_for(lambda: count() >= len(expected), timeout=120), log.read_text()[-2000:]
        time.sleep(0.5)  # anything doubled would arrive now
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
    if mode == "snapshot":
        rows = pg.execute("SELECT k, v FROM crash ORDER BY k")
        assert rows == [(k, f"v{k}") for k in sorted(expected)]
    else:
        rows = pg.execute("SELECT k, count(*), sum(diff) FROM crash GROUP BY k ORDER BY k")
        assert rows == [(k, 1, 1) for k in sorted(expected)]
        # Checkpoints come every second, so the kills left rows of later times behind,
        # which the restarts removed before writing those changes again.
        assert "written after the checkpoint" in log.read_text()
    assert os.path.isdir(store)
