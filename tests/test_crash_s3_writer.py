"""The S3 writer's side of exactly-once: a checkpoint never covers rows still buffered, and
a resume removes what was uploaded after the checkpoint (against a moto server)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "io"))
from s3_server import (  # noqa: E402, F401 - *_fixture: the moto_s3 and s3 fixtures
    MotoS3,
    moto_s3_fixture,
    s3_fixture,
)

import deltaflow as pw  # noqa: E402
from deltaflow.io.s3 import S3Writer, resolve_location  # noqa: E402

BUCKET = "durable"


def _writer(s3: MotoS3, interval_s: float) -> S3Writer:
    settings = pw.io.s3.AwsS3Settings(
        bucket_name=BUCKET, endpoint=s3.endpoint, with_path_style=True, region="us-east-1"
    )
    location = resolve_location(f"s3://{BUCKET}/out/", settings, connector="test")
    return S3Writer(
        name="test",
        settings=settings,
        location=location,
        extension="csv",
        header=lambda: b"k\n",
        interval_s=interval_s,
        max_outage_s=30,
    )


def test_buffered_rows_are_not_durable_until_uploaded(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    writer = _writer(s3, interval_s=3600)  # nothing is due: rows stay buffered
    writer.write(b"1\n")
    writer.flush(10)
    assert writer.durable_time() is None  # a checkpoint of time 10 would lose row 1
    writer.close()  # uploads what is left
    assert writer.durable_time() == 10
    assert s3.keys(BUCKET, "out/") == ["out/0000000000000000.csv"]


def test_resume_cuts_the_object_straddling_the_checkpoint(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    writer = _writer(s3, interval_s=0)
    writer.write(b"1\n")
    writer.flush(10)  # due at once: object 0 = rows of time 10
    deadline = time.monotonic() + 30
    while writer.durable_time() != 10:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    checkpoint = writer.export_position(writer.position())
    assert checkpoint == {"index": 1, "bytes": 0}
    writer.write(b"2\n")
    writer.flush(20)
    writer.write(b"3\n")
    writer.close()
    assert len(s3.keys(BUCKET, "out/")) >= 2

    # A crash after time 20: the restarted run resumes from the checkpoint of time 10.
    restarted = _writer(s3, interval_s=0)
    restarted.resume(checkpoint)
    assert s3.keys(BUCKET, "out/") == ["out/0000000000000000.csv"]
    restarted.write(b"2\n")
    restarted.flush(30)
    restarted.close()
    bodies = [s3.get(BUCKET, key) for key in s3.keys(BUCKET, "out/")]
    assert bodies == [b"k\n1\n", b"k\n2\n"]

    # A checkpoint in the middle of a buffered object keeps its first part only.
    restarted.resume({"index": 1, "bytes": 0})
    third = _writer(s3, interval_s=0)
    third.resume({"index": 0, "bytes": 1})  # keep b"1" of object 0's rows
    assert [s3.get(BUCKET, key) for key in s3.keys(BUCKET, "out/")] == [b"k\n1"]
