"""pw.io.deltalake on S3: moto's S3 server on 127.0.0.1, in a child process.

delta-rs keeps the GIL during some of its requests, so a moto server on a thread of the test
process could not answer them; here it runs in its own process (its buckets are lost when it
stops, which the outage test takes into account).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _io_helpers import BackgroundRun, Changes
from deltalake import DeltaTable, write_deltalake
from s3_server import MotoS3

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorError

pytestmark = [pytest.mark.server, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

BUCKET = "lake"
SECRET = "deltalake-test-secret-key-0123456789"
ACCESS = "deltalake-test-access-key"

_SERVER = """
import sys, time, logging
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
# Buckets named after the port exist before the port opens: no client sees the store
# without them (a missing bucket is an error at once, not an outage).
if sys.argv[2:]:
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID
    for name in sys.argv[2:]:
        get_backend("s3")[DEFAULT_ACCOUNT_ID]["global"].create_bucket(name, "us-east-1")
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
while True:
    time.sleep(3600)
"""


class ChildMotoS3(MotoS3):
    """:class:`MotoS3` whose server runs in a child process."""

    def start(self, buckets: tuple[str, ...] = ()) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(self.port), *buckets],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("moto did not start")

    def stop(self) -> None:
        process = getattr(self, "_process", None)
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
            self._process = None


@pytest.fixture(scope="module", name="moto")
def moto_fixture() -> Iterator[ChildMotoS3]:
    server = ChildMotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="s3")
def s3_fixture(moto: ChildMotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChildMotoS3]:
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    moto.reset()
    moto.create_bucket(BUCKET)
    yield moto


def settings(server: MotoS3, **overrides: object) -> pw.io.s3.AwsS3Settings:
    values: dict = {
        "bucket_name": BUCKET,
        "endpoint": server.endpoint,
        "with_path_style": True,
        "region": "us-east-1",
        "access_key": ACCESS,
        "secret_access_key": SECRET,
    }
    values.update(overrides)
    return pw.io.s3.AwsS3Settings(**values)


def options(server: MotoS3) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": ACCESS,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }


class KV(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    v: str


UPDATES = """
k | v | __time__ | __diff__
1 | a | 2        | 1
2 | b | 2        | 1
1 | a | 4        | -1
1 | c | 4        | 1
"""


def final_rows(table: pw.Table) -> list[tuple]:
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return sorted(tuple(columns[n][k] for n in names) for k in keys)


def test_write_and_read_back_on_s3(s3: ChildMotoS3) -> None:
    table = pw.debug.table_from_markdown(UPDATES, schema=KV)
    pw.io.deltalake.write(
        table,
        f"s3://{BUCKET}/changes",
        s3_connection_settings=settings(s3),
        min_commit_frequency=None,
    )
    pw.io.deltalake.write(
        table,
        f"s3://{BUCKET}/state",
        s3_connection_settings=settings(s3),
        output_table_type="snapshot",
        min_commit_frequency=None,
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert any(key.startswith("changes/_delta_log/") for key in s3.keys(BUCKET))
    changes = DeltaTable(f"s3://{BUCKET}/changes", storage_options=options(s3)).to_pandas()
    assert sorted(zip(changes["k"], changes["v"], changes["diff"], strict=True)) == [
        (1, "a", -1),
        (1, "a", 1),
        (1, "c", 1),
        (2, "b", 1),
    ]
    for path in ("changes", "state"):
        pw.clear_graph()
        back = pw.io.deltalake.read(
            f"s3a://{BUCKET}/{path}", mode="static", s3_connection_settings=settings(s3)
        )
        assert final_rows(back) == [(1, "c"), (2, "b")]


def test_streaming_read_on_s3(s3: ChildMotoS3) -> None:
    uri = f"s3://{BUCKET}/stream"
    write_deltalake(uri, pd.DataFrame({"k": [1], "v": ["a"]}), storage_options=options(s3))
    table = pw.io.deltalake.read(
        uri, KV, s3_connection_settings=settings(s3), autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: c.state() == [{"k": 1, "v": "a"}], timeout=20)
        write_deltalake(
            uri, pd.DataFrame({"k": [2], "v": ["b"]}), mode="append", storage_options=options(s3)
        )
        DeltaTable(uri, storage_options=options(s3)).delete("k = 1")
        changes.wait_for(lambda c: c.state() == [{"k": 2, "v": "b"}], timeout=20)


def test_minio_settings_are_accepted(s3: ChildMotoS3) -> None:
    minio = pw.io.minio.MinIOSettings(
        endpoint=s3.endpoint,
        bucket_name=BUCKET,
        access_key=ACCESS,
        secret_access_key=SECRET,
        region="us-east-1",
    )
    pw.io.deltalake.write(
        pw.debug.table_from_markdown("k | v\n1 | a", schema=KV),
        f"s3://{BUCKET}/minio",
        s3_connection_settings=minio,
        min_commit_frequency=None,
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert len(DeltaTable(f"s3://{BUCKET}/minio", storage_options=options(s3)).to_pandas()) == 1


def test_unreachable_store_fails_after_the_limit_without_secrets(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from s3_server import free_port

    monkeypatch.setenv("DELTAFLOW_DELTALAKE_MAX_OUTAGE_S", "1.5")
    closed = MotoS3()
    closed.port = free_port()
    closed.endpoint = f"http://127.0.0.1:{closed.port}"
    pw.io.deltalake.write(
        pw.debug.table_from_markdown("k | v\n1 | a", schema=KV),
        f"s3://{BUCKET}/down",
        s3_connection_settings=settings(closed),
    )
    started = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(ConnectorError) as failure:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    elapsed = time.monotonic() - started
    message = str(failure.value)
    assert "unreachable" in message and f"s3://{BUCKET}/down" in message
    assert "DELTAFLOW_DELTALAKE_MAX_OUTAGE_S" in message
    assert 1.5 <= elapsed < 30
    assert SECRET not in message and SECRET not in caplog.text
    assert "retrying" in caplog.text

    pw.clear_graph()
    table = pw.io.deltalake.read(
        f"s3://{BUCKET}/down", KV, mode="static", s3_connection_settings=settings(closed)
    )
    with pytest.raises(ConnectorError, match="unreachable"):
        pw.debug.table_to_dicts(table)


def test_store_back_within_the_limit(
    moto: ChildMotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DELTAFLOW_DELTALAKE_MAX_OUTAGE_S", "30")
    moto.stop()
    try:
        pw.io.deltalake.write(
            pw.debug.table_from_markdown("k | v\n1 | a", schema=KV),
            f"s3://{BUCKET}/later",
            s3_connection_settings=settings(moto),
            min_commit_frequency=None,
        )
        with BackgroundRun() as background:
            time.sleep(1.0)
            moto.start(buckets=(BUCKET,))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                k.endswith(".parquet") for k in moto.keys(BUCKET)
            ):
                time.sleep(0.1)
            background.stop()
        rows = DeltaTable(f"s3://{BUCKET}/later", storage_options=options(moto)).to_pandas()
        assert list(rows["k"]) == [1]
    finally:
        if getattr(moto, "_process", None) is None:
            moto.start()


def test_wrong_settings_fail_at_once_without_secrets(
    s3: ChildMotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_DELTALAKE_MAX_OUTAGE_S", "30")
    pw.io.deltalake.write(
        pw.debug.table_from_markdown("k | v\n1 | a", schema=KV),
        "s3://no-such-bucket/t",
        s3_connection_settings=settings(s3, bucket_name=None),
    )
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="NoSuchBucket") as failure:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert time.monotonic() - started < 10
    assert "s3://no-such-bucket/t" in str(failure.value)

    pw.clear_graph()
    s3.require_auth(True)
    try:
        table = pw.io.deltalake.read(
            f"s3://{BUCKET}/t", KV, mode="static", s3_connection_settings=settings(s3)
        )
        with pytest.raises(ConnectorError) as failure:
            pw.debug.table_to_dicts(table)
        assert SECRET not in str(failure.value)
    finally:
        s3.require_auth(False)
