"""A throwaway PostgreSQL server for the connector tests.

The server comes from Debian's ``postgresql`` package: ``initdb`` into a temporary directory,
``pg_ctl start`` on 127.0.0.1 and a free port, ``wal_level=logical`` so change data capture
works. PostgreSQL refuses to run as root, so when the tests run as root (as CI does) the server
runs as the ``postgres`` system user (created by the Debian package) or, failing that, ``nobody``.

Use the session-scoped ``postgres_server`` fixture for the server and the function-scoped
``pg`` fixture for a fresh database per test (dropped afterwards).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SUPERUSER = "deltaflow"
PASSWORD = "deltaflow-test-password"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live (Debian keeps them out of PATH)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _run_as() -> str | None:
    """The unprivileged user to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """One running PostgreSQL cluster; :meth:`settings` gives connection settings in Pathway's form."""

    def __init__(self) -> None:
        bin_dir = _find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found; install Debian's 'postgresql' package "
                "(.ci/run does this on CI)"
            )
        self.bin_dir = bin_dir
        self.user = _run_as()
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.root = Path(tempfile.mkdtemp(prefix="deltaflow-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "server.log"

    # --- lifecycle ------------------------------------------------------------------------
    def _cmd(self, *argv: str) -> list[str]:
        if self.user is None:
            return list(argv)
        return ["runuser", "-u", self.user, "--", *argv]

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.socket_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} "
            "-c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.conninfo("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart`` with shutdown ``mode`` (``fast``: clean; ``immediate``: as a
        crash, recovered from the WAL); every connection is cut."""
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "restart",
            ),
            check=True,
            capture_output=True,
        )
        self._wait_ready()

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "-w",
                "stop",
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    # --- connection helpers ---------------------------------------------------------------
    def settings(self, dbname: str = "postgres") -> dict[str, Any]:
        """Connection settings as ``pw.io.postgres`` takes them (libpq keywords)."""
        return {
            "host": self.host,
            "port": str(self.port),
            "dbname": dbname,
            "user": SUPERUSER,
            "password": PASSWORD,
        }

    def conninfo(self, dbname: str = "postgres") -> str:
        return " ".join(f"{key}={value}" for key, value in self.settings(dbname).items())

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            # Replication slots pin a database; drop them first. A slot may still be held by
            # the walsender of a run that just ended (it exits a moment after its client
            # closed): end that backend, then wait until the slot is free.
            for (slot,) in conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
            ).fetchall():
                deadline = time.monotonic() + 30
                while True:
                    conn.execute(
                        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                        "WHERE slot_name = %s AND active_pid IS NOT NULL",
                        (slot,),
                    )
                    try:
                        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                        break
                    except psycopg.errors.ObjectInUse:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PgDatabase:
    """A fresh database on the shared server, for one test."""

    def __init__(self, server: PostgresServer, dbname: str) -> None:
        self.server = server
        self.dbname = dbname
        self.settings = server.settings(dbname)
        self.conninfo = server.conninfo(dbname)

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode; the rows it returns, if any."""
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="pg")
def pg_fixture(postgres_server: PostgresServer) -> Iterator[PgDatabase]:
    name = postgres_server.create_database()
    try:
        yield PgDatabase(postgres_server, name)
    finally:
        postgres_server.drop_database(name)
