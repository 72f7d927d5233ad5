"""pw.io.s3.write against a real S3 HTTP API (moto's server on 127.0.0.1)."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from s3_server import (  # noqa: F401 - *_fixture: the moto_s3 and s3 fixtures
    SECRET_KEY,
    ManualSource,
    MotoS3,
    docs_example,
    moto_s3_fixture,
    run_example,
    run_in_thread,
    s3_fixture,
    wait_for,
)

import deltaflow as pw
from deltaflow.io.s3 import classify_error

DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = pytest.mark.server

BUCKET = "out-bucket"


class KV(pw.Schema):
    k: int
    v: str


class Written(pw.Schema):
    """What a CSV/JSON object written by pw.io.s3.write holds for a KV table."""

    k: int
    v: str
    time: int
    diff: int


def settings(server: MotoS3, **overrides: object) -> pw.io.s3.AwsS3Settings:
    values: dict = {
        "bucket_name": BUCKET,
        "endpoint": server.endpoint,
        "with_path_style": True,
        "region": "us-east-1",
    }
    values.update(overrides)
    return pw.io.s3.AwsS3Settings(**values)


def csv_rows(server: MotoS3, key: str) -> list[dict[str, str]]:
    text = server.get(BUCKET, key).decode()
    return list(csv.DictReader(io.StringIO(text)))


def all_csv_rows(server: MotoS3, prefix: str) -> list[tuple[int, str, int]]:
    rows = []
    for key in server.keys(BUCKET, prefix):
        rows.extend((int(r["k"]), r["v"], int(r["diff"])) for r in csv_rows(server, key))
    return rows


def rows_of(table: pw.Table) -> list[tuple]:
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return sorted(tuple(columns[n][k] for n in names) for k in keys)


def static_table() -> pw.Table:
    return pw.debug.table_from_markdown("""
        k | v     | __time__ | __diff__
        1 | one   | 2        | 1
        2 | two   | 2        | 1
        3 | three | 4        | 1
        1 | one   | 6        | -1
    """)


def test_csv_objects_have_header_time_and_diff(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    pw.io.s3.write(
        static_table(), "results", "csv", aws_s3_settings=settings(s3), write_interval_ms=60_000
    )
    pw.run()
    keys = s3.keys(BUCKET)
    # The interval never elapsed: everything is uploaded once, at the end of the run.
    assert keys == ["results/0000000000000000.csv"]
    text = s3.get(BUCKET, keys[0]).decode()
    lines = text.splitlines()
    assert lines[0] == '"k","v","time","diff"'
    assert lines[1:] == [
        '"1","one","2","1"',
        '"2","two","2","1"',
        '"3","three","4","1"',
        '"1","one","6","-1"',
    ]


def test_json_lines_objects(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    pw.io.s3.write(
        static_table(),
        f"s3://{BUCKET}/json/",
        "json",
        aws_s3_settings=settings(s3, bucket_name=None),
        write_interval_ms=0,
    )
    pw.run()
    keys = s3.keys(BUCKET, "json/")
    assert keys and all(k.endswith(".jsonl") for k in keys)
    rows = [json.loads(line) for key in keys for line in s3.get(BUCKET, key).decode().splitlines()]
    assert sorted((r["k"], r["v"], r["diff"], r["time"]) for r in rows) == [
        (1, "one", -1, 6),
        (1, "one", 1, 2),
        (2, "two", 1, 2),
        (3, "three", 1, 4),
    ]
    # write_interval_ms=0: one object per time with data, in time order.
    assert len(keys) == 3
    first = [json.loads(line) for line in s3.get(BUCKET, keys[0]).decode().splitlines()]
    assert {r["time"] for r in first} == {2}


def test_empty_table_uploads_nothing(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    empty = static_table().filter(pw.this.k > 100)
    pw.io.s3.write(empty, "empty", "csv", aws_s3_settings=settings(s3), write_interval_ms=0)
    pw.run()
    assert s3.keys(BUCKET) == []


def test_monitoring_reports_the_rows_written(s3: MotoS3, caplog: pytest.LogCaptureFixture) -> None:
    # The writer's thread may still be writing when the engine finishes; the run's last
    # monitoring line comes after it is done, so it counts every row (it used to say 0).
    s3.create_bucket(BUCKET)
    pw.io.s3.write(
        static_table(),
        "monitored",
        "csv",
        aws_s3_settings=settings(s3),
        write_interval_ms=60_000,
        name="s3-out",
    )
    with caplog.at_level(logging.INFO, logger="deltaflow.monitoring"):
        pw.run(monitoring_level=pw.MonitoringLevel.IN_OUT)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "deltaflow.monitoring" and r.getMessage().startswith("s3-out:")
    ]
    assert lines and lines[-1].startswith("s3-out: 4 rows written"), lines
    assert len(all_csv_rows(s3, "monitored")) == 4


def test_second_run_continues_after_existing_objects(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    s3.put(BUCKET, "runs/unrelated.txt", "not ours")
    pw.io.s3.write(static_table(), "runs", "csv", aws_s3_settings=settings(s3), write_interval_ms=0)
    pw.run()
    first = s3.keys(BUCKET, "runs/0")
    first_bodies = {k: s3.get(BUCKET, k) for k in first}
    pw.clear_graph()
    pw.io.s3.write(static_table(), "runs", "csv", aws_s3_settings=settings(s3), write_interval_ms=0)
    pw.run()
    keys = s3.keys(BUCKET, "runs/0")
    assert len(first) == 3 and len(keys) == 6
    assert keys[:3] == first and min(keys[3:]) > max(first)
    assert {k: s3.get(BUCKET, k) for k in first} == first_bodies  # nothing overwritten
    assert s3.get(BUCKET, "runs/unrelated.txt") == b"not ours"


def test_no_object_before_interval_then_one_shortly_after(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    source = ManualSource(KV, "k")
    interval = 1.5
    pw.io.s3.write(
        source.table(),
        "timed",
        "csv",
        aws_s3_settings=settings(s3),
        write_interval_ms=int(interval * 1000),
    )
    thread, errors = run_in_thread(pw.run)
    sent = time.monotonic()
    source.send([{"k": 1, "v": "a"}])
    # The flush of that time came early: nothing may be uploaded before the interval.
    assert not wait_for(lambda: s3.keys(BUCKET) != [], timeout=interval * 0.6)
    assert wait_for(lambda: s3.keys(BUCKET) != [], timeout=interval + 5)
    appeared = time.monotonic() - sent
    assert interval * 0.9 <= appeared <= interval + 3.0
    assert [r["v"] for r in csv_rows(s3, s3.keys(BUCKET)[0])] == ["a"]
    source.finish()
    thread.join(20)
    assert not thread.is_alive() and errors == []
    assert len(s3.keys(BUCKET)) == 1  # nothing left to upload at the end


def test_early_flushes_keep_the_buffer(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    source = ManualSource(KV, "k")
    pw.io.s3.write(
        source.table(), "early", "csv", aws_s3_settings=settings(s3), write_interval_ms=2000
    )
    thread, errors = run_in_thread(pw.run)
    for k in range(1, 4):  # three times, each flushed well before the interval
        source.send([{"k": k, "v": f"v{k}"}])
    assert s3.keys(BUCKET) == []
    assert wait_for(lambda: s3.keys(BUCKET) != [], timeout=10)
    keys = s3.keys(BUCKET)
    rows = csv_rows(s3, keys[0])
    assert [r["k"] for r in rows] == ["1", "2", "3"]
    assert len({r["time"] for r in rows}) == 3  # the rows of three flushes in one object
    source.finish()
    thread.join(20)
    assert errors == [] and s3.keys(BUCKET) == keys


def test_multiple_flush_cycles_make_ordered_objects(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    source = ManualSource(KV, "k")
    pw.io.s3.write(
        source.table(), "cycles", "csv", aws_s3_settings=settings(s3), write_interval_ms=100
    )
    thread, errors = run_in_thread(pw.run)
    expected = []
    for cycle in range(4):
        rows = [{"k": cycle * 10 + i, "v": f"c{cycle}"} for i in range(3)]
        expected.extend((r["k"], r["v"], 1) for r in rows)
        source.send(rows)
        assert wait_for(lambda n=cycle + 1: len(s3.keys(BUCKET)) == n, timeout=10)
    source.finish()
    thread.join(20)
    assert errors == []
    keys = s3.keys(BUCKET)
    assert keys == [f"cycles/{n:016d}.csv" for n in range(4)]
    assert all_csv_rows(s3, "cycles/") == expected  # listing order is write order
    # Every object is readable by pw.io.s3.read, and together they hold the whole dataset.
    pw.clear_graph()
    back = pw.io.s3.read("cycles", "csv", schema=KV, mode="static", aws_s3_settings=settings(s3))
    assert rows_of(back) == sorted((k, v) for k, v, _ in expected)


def test_upload_outage_loses_and_duplicates_nothing(
    s3: MotoS3, caplog: pytest.LogCaptureFixture
) -> None:
    s3.create_bucket(BUCKET)
    source = ManualSource(KV, "k")
    pw.io.s3.write(
        source.table(),
        "outage",
        "csv",
        aws_s3_settings=settings(s3, access_key="AKIAOUTAGE", secret_access_key=SECRET_KEY),
        write_interval_ms=50,
        name="outage-writer",
    )
    thread, errors = run_in_thread(pw.run)
    source.send([{"k": 1, "v": "before"}])
    assert wait_for(lambda: len(s3.keys(BUCKET)) == 1, timeout=10)
    caplog.set_level(logging.WARNING, logger="deltaflow.io.s3")
    s3.stop()
    try:
        for k in range(2, 6):
            source.send([{"k": k, "v": "during"}])
            time.sleep(0.1)  # let flushes and retries hit the dead endpoint
        assert wait_for(
            lambda: any("outage-writer" in r.getMessage() for r in caplog.records), timeout=10
        )
    finally:
        s3.restart()
    source.send([{"k": 6, "v": "after"}])
    source.finish()
    thread.join(30)
    assert not thread.is_alive() and errors == []
    rows = all_csv_rows(s3, "outage/")
    assert sorted(r[0] for r in rows) == [1, 2, 3, 4, 5, 6]  # each row exactly once
    pw.clear_graph()
    back = pw.io.s3.read("outage", "csv", schema=KV, mode="static", aws_s3_settings=settings(s3))
    assert rows_of(back) == [
        (1, "before"),
        (2, "during"),
        (3, "during"),
        (4, "during"),
        (5, "during"),
        (6, "after"),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(SECRET_KEY not in w and "AKIAOUTAGE" not in w for w in warnings)


def test_unreachable_store_fails_after_the_limit(
    s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_S3_MAX_OUTAGE_S", "1")
    s3.create_bucket(BUCKET)
    pw.io.s3.write(
        static_table(),
        "never",
        "csv",
        aws_s3_settings=settings(s3),
        write_interval_ms=0,
        name="doomed",
    )
    s3.stop()
    started = time.monotonic()
    with pytest.raises(Exception, match=r"doomed.*kept failing") as info:
        pw.run()
    assert time.monotonic() - started < 15
    assert "DELTAFLOW_S3_MAX_OUTAGE_S" in str(info.value)


def test_missing_bucket_fails_at_definition(s3: MotoS3) -> None:
    table = static_table()
    with pytest.raises(ValueError, match="no bucket given"):
        pw.io.s3.write(
            table, "prefix", "csv", aws_s3_settings=pw.io.s3.AwsS3Settings(endpoint=s3.endpoint)
        )
    with pytest.raises(ValueError, match="format must be one of csv, json"):
        pw.io.s3.write(table, "prefix", "parquet", aws_s3_settings=settings(s3))
    with pytest.raises(ValueError, match="write_interval_ms must be >= 0"):
        pw.io.s3.write(table, "prefix", "csv", aws_s3_settings=settings(s3), write_interval_ms=-5)
    with pytest.raises(ValueError, match="names bucket 'other'"):
        pw.io.s3.write(table, "s3://other/prefix", "csv", aws_s3_settings=settings(s3))


def test_nonexistent_bucket_fails_the_run(s3: MotoS3) -> None:
    pw.io.s3.write(
        static_table(), "prefix", "csv", aws_s3_settings=settings(s3, bucket_name="no-such-bucket")
    )
    with pytest.raises(Exception, match="bucket does not exist"):
        pw.run()


def test_wrong_credentials_fail_the_run(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    access, secret = s3.create_user_with_key("writer")
    s3.require_auth(True)
    # The right key works ...
    pw.io.s3.write(
        static_table(),
        "auth",
        "csv",
        write_interval_ms=0,
        aws_s3_settings=settings(s3, access_key=access, secret_access_key=secret),
    )
    pw.run()
    pw.clear_graph()
    # ... a wrong one fails with an error naming the problem, not the secret.
    pw.io.s3.write(
        static_table(),
        "auth2",
        "csv",
        write_interval_ms=0,
        aws_s3_settings=settings(
            s3, access_key="AKIAWRONGWRONGWRONG", secret_access_key="wrong-secret"
        ),
    )
    with pytest.raises(Exception, match="access key is not known") as info:
        pw.run()
    assert "wrong-secret" not in str(info.value)
    s3.require_auth(False)
    assert len(s3.keys(BUCKET, "auth/")) == 3 and s3.keys(BUCKET, "auth2/") == []


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_read_back_gives_the_same_table(s3: MotoS3, fmt: str) -> None:
    """Objects written by write, read by read, summed by diff: the table that was written."""
    s3.create_bucket(BUCKET)
    source = pw.debug.table_from_markdown("""
          | k | v     | __time__ | __diff__
        1 | 1 | one   | 2        | 1
        2 | 2 | two   | 2        | 1
        3 | 3 | three | 4        | 1
        1 | 1 | one   | 6        | -1
        1 | 1 | uno   | 6        | 1
        2 | 2 | two   | 8        | -1
    """)
    pw.io.s3.write(source, "same", fmt, aws_s3_settings=settings(s3), write_interval_ms=0)
    expected = rows_of(source)  # computes the table itself (the output is not run here)
    pw.run()
    pw.clear_graph()
    back = pw.io.s3.read("same", fmt, schema=Written, mode="static", aws_s3_settings=settings(s3))
    counts: dict[tuple, int] = {}
    for k, v, _time, diff in rows_of(back):
        counts[(k, v)] = counts.get((k, v), 0) + diff
    assert sorted(kv for kv, n in counts.items() for _ in range(n)) == expected
    assert expected == [(1, "uno"), (3, "three")]


def test_errors_are_classified_and_redacted() -> None:
    """Which store errors are retried (unreachable, 5xx, throttling) and which are fatal."""

    def client_error(code: str, status: int, message: str = "details") -> ClientError:
        return ClientError(
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "PutObject",
        )

    assert classify_error(client_error("InternalError", 500), [])[0] is False
    assert classify_error(client_error("ServiceUnavailable", 503), [])[0] is False
    assert classify_error(client_error("SlowDown", 503), [])[0] is False
    assert classify_error(client_error("RequestTimeout", 400), [])[0] is False
    assert classify_error(EndpointConnectionError(endpoint_url="http://x"), [])[0] is False
    fatal, message = classify_error(client_error("NoSuchBucket", 404), [])
    assert fatal and "bucket does not exist" in message
    fatal, message = classify_error(
        client_error("SignatureDoesNotMatch", 403, "bad signature for s3cr3t"), ["s3cr3t"]
    )
    assert fatal and "secret_access_key" in message and "s3cr3t" not in message


def test_docs_example_runs_and_prints_what_the_page_says(tmp_path: Path) -> None:
    code, printed = docs_example(DOCS / "s3.md")
    assert run_example(code, tmp_path).strip() == printed.strip()


def test_overlapping_uploads_keep_every_row_once(s3: MotoS3) -> None:
    """With two uploads allowed in flight, objects still get consecutive numbers in the order
    they were made and hold every row exactly once."""
    from deltaflow.io._core.formats import JsonLinesFormatter
    from deltaflow.io._core.output_session import write_table
    from deltaflow.io.s3 import S3Location, S3Writer

    s3.create_bucket(BUCKET)
    import pandas as pd

    data = [(k, f"t{k % 6}") for k in range(60)]
    table = pw.debug.table_from_pandas(
        pd.DataFrame(
            {
                "k": [k for k, _ in data],
                "v": [v for _, v in data],
                "__time__": [2 * (k % 6) + 2 for k, _ in data],
            }
        )
    )  # six times: six objects
    writer = S3Writer(
        name="overlap",
        settings=settings(s3),
        location=S3Location(BUCKET, "overlap"),
        extension="jsonl",
        header=None,
        interval_s=0.0,
        max_outage_s=10.0,
        max_in_flight=2,
    )
    write_table(table, writer, JsonLinesFormatter(table.schema.dtypes()), name="overlap")
    pw.run()
    keys = s3.keys(BUCKET, "overlap/")
    assert keys == [f"overlap/{n:016d}.jsonl" for n in range(6)]
    rows = [json.loads(line) for key in keys for line in s3.get(BUCKET, key).splitlines()]
    assert sorted((r["k"], r["v"]) for r in rows) == data


def test_rows_formatted_into_the_stream_make_whole_objects(s3: MotoS3) -> None:
    """The formatter writes into the writer's buffer, which starts with the header when it
    begins an object: every object still has the header once, at its top, and the positions
    persistence records count rows only."""
    from deltaflow.io.s3 import S3Location, S3Writer

    s3.create_bucket(BUCKET)

    def writer(prefix: str, interval_s: float) -> S3Writer:
        return S3Writer(
            name=prefix,
            settings=settings(s3),
            location=S3Location(BUCKET, prefix),
            extension="csv",
            header=lambda: b"h\n",
            interval_s=interval_s,
            max_outage_s=10.0,
        )

    def bodies(prefix: str) -> list[bytes]:
        return [s3.get(BUCKET, key) for key in s3.keys(BUCKET, prefix + "/")]

    # One object per time: each is its buffer, header included.
    each = writer("each", 0.0)
    for time_ in (2, 4):
        each.stream().write(f"{time_}\n".encode())
        each.flush(time_)
    each.close()
    assert bodies("each") == [b"h\n2\n", b"h\n4\n"]

    # Several times in one object: streamed and written rows, the header once.
    late = writer("late", 3600.0)
    late.stream().write(b"1\n")
    late.flush(2)
    assert late.position() == [0, 2]
    late.stream().write(b"2\n")
    late.flush(4)
    late.write(b"3\n")
    late.flush(6)
    assert late.position() == [0, 6]
    late.close()
    assert bodies("late") == [b"h\n1\n2\n3\n"]

    # A buffer begun behind buffered rows has no header; when the senders upload those
    # rows meanwhile (their interval passed), the buffer's object gets the header in front.
    timed = writer("timed", 0.3)
    timed.stream().write(b"1\n")
    timed.flush(2)  # not due yet: kept
    buffer = timed.stream()
    assert wait_for(lambda: len(s3.keys(BUCKET, "timed/")) == 1, timeout=10)
    buffer.write(b"2\n")
    timed.flush(4)
    timed.close()
    assert bodies("timed") == [b"h\n1\n", b"h\n2\n"]
