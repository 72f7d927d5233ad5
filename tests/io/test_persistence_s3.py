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


_WORKERS_PROGRAM = """
import sys
import deltaflow as pw

class KV(pw.Schema):
    k: int
    v: str

settings = pw.io.s3.AwsS3Settings(
    bucket_name=sys.argv[2], endpoint=sys.argv[1], with_path_style=True, region="us-east-1"
)
table = pw.io.s3.read(
    "split/", "csv", schema=KV, mode="static", aws_s3_settings=settings, name="objects"
)
counts = table.groupby(table.v).reduce(table.v, n=pw.reducers.count())
pw.io.jsonlines.write(counts, sys.argv[3])
backend = pw.persistence.Backend.s3(f"s3://{sys.argv[2]}/state", settings)
pw.run(
    monitoring_level=pw.MonitoringLevel.NONE,
    persistence_config=pw.persistence.Config(backend),
)
"""


def test_workers_checkpoint_in_s3_and_restart_on_another_count(s3: MotoS3, tmp_path: Path) -> None:
    """Two workers each checkpoint their share of the objects in S3; a restart on one
    worker takes over both shares and outputs only what changed since."""
    import json
    import os
    import subprocess
    import sys
    from collections import Counter

    s3.create_bucket(BUCKET)
    expected: Counter[str] = Counter()

    def put(obj: int, rows: int) -> None:
        body = "".join(f"{obj * 100 + i},v{(obj + i) % 4}\n" for i in range(rows))
        s3.put(BUCKET, f"split/{obj:03d}.csv", "k,v\n" + body)

    for obj in range(8):
        put(obj, 5 + obj)
    program = tmp_path / "program.py"
    program.write_text(_WORKERS_PROGRAM)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    totals: Counter[tuple[str, int]] = Counter()
    for run, workers in enumerate((2, 1)):
        out = tmp_path / f"out{run}.jsonl"
        command = ["-m", "deltaflow", "spawn", "-n", str(workers), sys.executable, str(program)]
        done = subprocess.run(
            [sys.executable, *command, s3.endpoint, BUCKET, str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        for line in out.read_text().splitlines():
            row = json.loads(line)
            totals[(row["v"], row["n"])] += row["diff"]
        if run == 0:
            # Worker 1's chunks are in the bucket, named by the one manifest.
            assert any(k.endswith("-w1.ipc") for k in s3.keys(BUCKET))
            put(8, 3)  # a new object, and one changed
            put(3, 2)
    for obj, rows in [(o, 5 + o) for o in range(8) if o != 3] + [(8, 3), (3, 2)]:
        for i in range(rows):
            expected[f"v{(obj + i) % 4}"] += 1
    assert {key: n for key, n in totals.items() if n} == {(v, n): 1 for v, n in expected.items()}
    # The restart updated the counts it restored (retracting their old values).
    assert any(json.loads(line)["diff"] == -1 for line in out.read_text().splitlines())
