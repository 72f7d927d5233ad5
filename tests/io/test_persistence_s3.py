"""Persistence with the S3 backend and the S3 reader's seek, against a moto server."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from s3_server import (  # noqa: F401 - *_fixture: the moto_s3 and s3 fixtures
    MotoS3,
    moto_s3_fixture,
    s3_fixture,
)

import deltaflow as pw
from deltaflow.persistence.checkpoints import CheckpointStore
from deltaflow.persistence.storage import S3Storage, StorageError

BUCKET = "persist"


class KV(pw.Schema):
    k: str
    v: int


def _settings(server: MotoS3) -> pw.io.s3.AwsS3Settings:
    return pw.io.s3.AwsS3Settings(
        bucket_name=BUCKET, endpoint=server.endpoint, with_path_style=True, region="us-east-1"
    )


def _run(server: MotoS3, out: Path) -> list[tuple[str, str, str, str]]:
    """One static run of S3 objects -> groupby -> CSV file, checkpointed in S3; the
    output rows as (k, sum, count, diff)."""
    pw.clear_graph()
    table = pw.io.s3.read(
        "data/", "csv", schema=KV, aws_s3_settings=_settings(server), mode="static", name="objects"
    )
    result = table.groupby(table.k).reduce(
        table.k, s=pw.reducers.sum(table.v), c=pw.reducers.count()
    )
    pw.io.csv.write(result, out)
    backend = pw.persistence.Backend.s3(f"s3://{BUCKET}/checkpoints-root", _settings(server))
    pw.run(
        persistence_config=pw.persistence.Config(backend), monitoring_level=pw.MonitoringLevel.NONE
    )
    lines = out.read_text().splitlines()[1:]
    rows = [tuple(f.strip('"') for f in line.split(",")) for line in lines]
    return sorted((r[0], r[1], r[2], r[4]) for r in rows)  # type: ignore[misc]


def test_s3_backend_and_reader_resume(s3: MotoS3, tmp_path: Path) -> None:
    s3.create_bucket(BUCKET)
    out = tmp_path / "out.csv"
    s3.put(BUCKET, "data/1.csv", "k,v\na,1\nb,2\n")
    assert _run(s3, out) == [("a", "1", "1", "1"), ("b", "2", "1", "1")]
    assert any(k.startswith("checkpoints-root/checkpoints/") for k in s3.keys(BUCKET))

    assert _run(s3, out) == []  # nothing new
    s3.put(BUCKET, "data/2.csv", "k,v\na,5\n")
    assert _run(s3, out) == [("a", "1", "1", "-1"), ("a", "6", "2", "1")]
    s3.put(BUCKET, "data/1.csv", "k,v\na,1\nb,7\n")  # changed object: rows replaced
    assert _run(s3, out) == [("b", "2", "1", "-1"), ("b", "7", "1", "1")]
    s3.delete(BUCKET, "data/2.csv")  # deleted object: rows retracted
    assert _run(s3, out) == [("a", "1", "1", "1"), ("a", "6", "2", "-1")]

    store = CheckpointStore(S3Storage(_settings(s3), BUCKET, "checkpoints-root"))
    latest = store.load_latest()
    assert latest is not None and set(latest.inputs["objects"].frontier) == {
        "data/1.csv",
        "data/2.csv",
    }


def test_s3_store_waits_out_an_outage(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint write during an S3 outage is retried with the connectors' policy: it
    succeeds once the service is back; past the outage limit it is a persistence error."""
    monkeypatch.setenv("DELTAFLOW_RETRY_FIRST_DELAY_S", "0.1")
    monkeypatch.setenv("DELTAFLOW_RETRY_MAX_DELAY_S", "0.3")
    monkeypatch.setenv("DELTAFLOW_S3_MAX_OUTAGE_S", "20")
    s3.create_bucket(BUCKET)
    storage = S3Storage(_settings(s3), BUCKET, "outage")
    storage.put("before", b"1")
    s3.stop()
    back = threading.Timer(1.5, s3.restart)
    back.start()
    try:
        storage.put("during", b"2")  # blocks until the server is back
    finally:
        back.join()
    assert s3.get(BUCKET, "outage/during") == b"2"

    monkeypatch.setenv("DELTAFLOW_S3_MAX_OUTAGE_S", "1")
    short = S3Storage(_settings(s3), BUCKET, "outage")
    s3.stop()
    try:
        with pytest.raises(StorageError) as info:
            short.put("lost", b"3")
    finally:
        s3.restart()
    message = str(info.value)
    assert message.startswith("persistence: cannot write to the checkpoint store")
    assert "DELTAFLOW_S3_MAX_OUTAGE_S" in message
