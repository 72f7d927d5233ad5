"""The shared retry policy as connectors apply it: SQLite's locked database and the HTTP
connectors' Pathway-style arguments (DynamoDB and S3 outages: test_dynamodb_outage.py,
test_s3_write.py, test_s3_read.py)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorError
from deltaflow.io import sqlite as sqlite_io


def test_sqlite_lock_held_past_the_limit_fails_the_run_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "locked.db"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE t (k INTEGER, time INTEGER, diff INTEGER)")
    connection.commit()
    connection.close()
    monkeypatch.setattr(sqlite_io._settings, "BUSY_TIMEOUT_S", 0.1)
    monkeypatch.setenv("DELTAFLOW_SQLITE_MAX_OUTAGE_S", "1")
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock for the whole run
    try:
        pw.io.sqlite.write(pw.debug.table_from_markdown("k\n1\n2"), db, "t")
        started = time.monotonic()
        with pytest.raises(ConnectorError) as info:
            pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        took = time.monotonic() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    message = str(info.value)
    assert "stayed locked" in message and "DELTAFLOW_SQLITE_MAX_OUTAGE_S" in message
    assert 1.0 <= took < 15
    # Nothing was half-written: the run wrote no row at all.
    check = sqlite3.connect(db)
    assert check.execute("SELECT count(*) FROM t").fetchone() == (0,)
    check.close()


def test_sqlite_limit_is_checked_when_the_pipeline_is_defined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_SQLITE_MAX_OUTAGE_S", "a while")
    with pytest.raises(ValueError, match="DELTAFLOW_SQLITE_MAX_OUTAGE_S"):
        pw.io.sqlite.write(pw.debug.table_from_markdown("k\n1"), tmp_path / "x.db", "t")


def test_http_retry_policy_maps_onto_the_shared_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELTAFLOW_HTTP_MAX_OUTAGE_S", "42")
    policy = pw.io.http.RetryPolicy(first_delay_ms=100, backoff_factor=3, jitter_ms=50)
    backoff = policy.backoff(n_retries=4, connector="pw.io.http.write")
    assert (backoff.first_delay_s, backoff.multiplier, backoff.extra_jitter_s) == (0.1, 3, 0.05)
    assert backoff.max_attempts == 5 and backoff.max_outage_s == 42.0
    # Pathway's waits: the first delay, then times the factor, plus up to the jitter.
    for failures, ceiling in ((1, 0.1), (2, 0.3), (3, 0.9)):
        assert ceiling <= backoff.delay(failures) <= ceiling + 0.05 + 1e-9
    assert pw.io.http.RetryPolicy.default().backoff(0, "x").max_attempts == 1  # no retry


def test_http_outage_limit_is_checked_when_the_pipeline_is_defined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DELTAFLOW_HTTP_MAX_OUTAGE_S", "-3")
    table = pw.debug.table_from_markdown("k\n1")
    with pytest.raises(ValueError, match="DELTAFLOW_HTTP_MAX_OUTAGE_S"):
        pw.io.http.write(table, "http://127.0.0.1:1/sink")


def test_a_missing_boto3_is_an_install_hint_when_the_pipeline_is_defined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "boto3" else real_find_spec(name, *a),
    )
    table = pw.debug.table_from_markdown("k\n1")
    with pytest.raises(ImportError, match=r"pip install 'deltaflow\[s3\]'"):
        pw.io.s3.write(table, "s3://bucket/prefix", "csv")
    with pytest.raises(ImportError, match=r"pip install 'deltaflow\[s3\]'"):
        pw.io.s3.read("s3://bucket/prefix", "plaintext")
    with pytest.raises(ImportError, match=r"pip install 'deltaflow\[dynamodb\]'"):
        pw.io.dynamodb.write(table, "table", table.k)
