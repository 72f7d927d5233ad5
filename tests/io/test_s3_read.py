"""pw.io.s3.read (and the write → read round trip) against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from _io_helpers import BackgroundRun, Changes
from s3_server import (  # noqa: F401 - *_fixture: the moto_s3 and s3 fixtures
    ManualSource,
    MotoS3,
    moto_s3_fixture,
    s3_fixture,
)

import deltaflow as pw

pytestmark = pytest.mark.server

BUCKET = "in-bucket"


class KV(pw.Schema):
    k: int
    v: str


def settings(server: MotoS3, **overrides: object) -> pw.io.s3.AwsS3Settings:
    values: dict = {
        "bucket_name": BUCKET,
        "endpoint": server.endpoint,
        "with_path_style": True,
        "region": "us-east-1",
    }
    values.update(overrides)
    return pw.io.s3.AwsS3Settings(**values)


def rows_of(table: pw.Table) -> list[tuple]:
    """The final contents of ``table`` as sorted tuples (ids left out)."""
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return sorted((tuple(columns[n][k] for n in names) for k in keys), key=repr)


def state(changes: Changes) -> list[tuple[Any, ...]]:
    """The (k, v) rows a stream of changes leaves in the table."""
    counts: dict[tuple[Any, ...], int] = {}
    for row, _, added in changes.rows:
        key = (row["k"], row["v"])
        counts[key] = counts.get(key, 0) + (1 if added else -1)
    assert all(n >= 0 for n in counts.values()), counts
    return sorted(key for key, n in counts.items() for _ in range(n))


def test_write_then_read_back_csv_and_json(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    data = [(k, f'value {k}, with "quotes"') for k in range(50)]
    source = pw.debug.table_from_rows(KV, data)
    pw.io.s3.write(source, "rt/csv", "csv", aws_s3_settings=settings(s3), write_interval_ms=0)
    pw.io.s3.write(source, "rt/json", "json", aws_s3_settings=settings(s3), write_interval_ms=0)
    pw.run()
    pw.clear_graph()
    for fmt in ("csv", "json"):
        back = pw.io.s3.read(
            f"rt/{fmt}", fmt, schema=KV, mode="static", aws_s3_settings=settings(s3)
        )
        assert rows_of(back) == sorted(data, key=repr)
        pw.clear_graph()


def test_many_objects_all_read_with_parallel_downloads(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    expected = []
    for obj in range(30):
        rows = [(obj * 100 + i, f"o{obj}") for i in range(20)]
        expected.extend(rows)
        s3.put(BUCKET, f"many/{obj:03d}.csv", "k,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
    table = pw.io.s3.read(
        f"s3://{BUCKET}/many/",
        "csv",
        schema=KV,
        mode="static",
        downloader_threads_count=4,
        aws_s3_settings=settings(s3, bucket_name=None),
    )
    assert rows_of(table) == sorted(expected, key=repr)


def test_other_formats_metadata_and_path_filter(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    s3.put(BUCKET, "mix/a.txt", "first line\nsecond line\n")
    s3.put(BUCKET, "mix/sub/b.txt", "third\n")
    s3.put(BUCKET, "mix/c.bin", b"\x00\x01\xff")
    s3.put(BUCKET, "other/d.txt", "not under the prefix\n")
    st = settings(s3)

    lines = pw.io.s3.read(
        "mix", "plaintext", mode="static", aws_s3_settings=st, path_filter="*.txt"
    )
    assert rows_of(lines) == [("first line",), ("second line",), ("third",)]
    pw.clear_graph()

    whole = pw.io.s3.read(
        "mix",
        "plaintext_by_object",
        mode="static",
        aws_s3_settings=st,
        path_filter="mix/*.txt",
        with_metadata=True,
    )
    keys, columns = pw.debug.table_to_dicts(whole)
    found = sorted(
        (
            columns["data"][k],
            columns["_metadata"][k].value["path"],
            columns["_metadata"][k].value["size"],
        )
        for k in keys
    )
    assert found == [
        ("first line\nsecond line", "mix/a.txt", 23),
        ("third", "mix/sub/b.txt", 6),
    ]
    pw.clear_graph()

    binary = pw.io.s3.read("mix", "binary", mode="static", aws_s3_settings=st, path_filter="*.bin")
    assert rows_of(binary) == [(b"\x00\x01\xff",)]
    pw.clear_graph()

    meta = pw.io.s3.read("mix/", "only_metadata", mode="static", aws_s3_settings=st)
    keys, columns = pw.debug.table_to_dicts(meta)
    values = [columns["_metadata"][k].value for k in keys]
    assert sorted(v["path"] for v in values) == ["mix/a.txt", "mix/c.bin", "mix/sub/b.txt"]
    assert all(isinstance(v["modified_at"], int) and "seen_at" in v for v in values)


def test_csv_settings_and_json_field_paths(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    s3.put(BUCKET, "semi/a.csv", "k;v\n1;x,y\n2;z\n")
    table = pw.io.s3.read(
        "semi",
        "csv",
        schema=KV,
        mode="static",
        aws_s3_settings=settings(s3),
        csv_settings=pw.io.CsvParserSettings(delimiter=";"),
    )
    assert rows_of(table) == [(1, "x,y"), (2, "z")]
    pw.clear_graph()
    docs = [{"id": {"n": 1}, "payload": {"text": "a"}}, {"id": {"n": 2}, "payload": {"text": "b"}}]
    s3.put(BUCKET, "nested/a.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    table = pw.io.s3.read(
        "nested",
        "json",
        schema=KV,
        mode="static",
        aws_s3_settings=settings(s3),
        json_field_paths={"k": "/id/n", "v": "/payload/text"},
    )
    assert rows_of(table) == [(1, "a"), (2, "b")]


def test_streaming_picks_up_new_changed_and_deleted_objects(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    s3.put(BUCKET, "live/0.csv", "k,v\n1,a\n")
    table = pw.io.s3.read(
        "live", "csv", schema=KV, aws_s3_settings=settings(s3), autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)

    with BackgroundRun():
        changes.wait_for(lambda c: state(c) == [(1, "a")])
        s3.put(BUCKET, "live/1.csv", "k,v\n2,b\n3,c\n")  # written while the run goes on
        changes.wait_for(lambda c: state(c) == [(1, "a"), (2, "b"), (3, "c")])
        s3.put(BUCKET, "live/1.csv", "k,v\n2,B\n")  # changed: its rows are replaced
        changes.wait_for(lambda c: state(c) == [(1, "a"), (2, "B")])
        s3.delete(BUCKET, "live/0.csv")  # deleted: its rows are retracted
        changes.wait_for(lambda c: state(c) == [(2, "B")])
    # A replacement is one transaction: the old rows leave at the time the new ones enter.
    removed = {(r["k"], r["v"]): t for r, t, added in changes.rows if not added}
    added = {(r["k"], r["v"]): t for r, t, added_ in changes.rows if added_}
    assert removed[(2, "b")] == removed[(3, "c")] == added[(2, "B")]


def test_streaming_read_of_a_running_writer(s3: MotoS3) -> None:
    """One pipeline writes objects while a streaming read of the same prefix, in the same
    run, picks each of them up as it appears."""
    s3.create_bucket(BUCKET)
    source = ManualSource(KV, "k")
    pw.io.s3.write(
        source.table(), "chain", "json", aws_s3_settings=settings(s3), write_interval_ms=0
    )
    table = pw.io.s3.read(
        "chain", "json", schema=KV, aws_s3_settings=settings(s3), autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    expected: list[tuple[int, str]] = []
    with BackgroundRun():
        for cycle in range(3):
            rows = [{"k": cycle * 10 + i, "v": f"c{cycle}"} for i in range(3)]
            source.send(rows)
            expected.extend((r["k"], r["v"]) for r in rows)
            changes.wait_for(lambda c, n=len(expected): state(c) == sorted(expected))
    assert s3.keys(BUCKET, "chain/") == [f"chain/{n:016d}.jsonl" for n in range(3)]
    assert sum(1 for _, _, added in changes.rows if added) == 9  # each row read once


def test_read_rejects_bad_arguments_at_definition(s3: MotoS3) -> None:
    st = settings(s3)
    with pytest.raises(ValueError, match="no bucket given"):
        pw.io.s3.read(
            "prefix", "csv", schema=KV, aws_s3_settings=pw.io.s3.AwsS3Settings(endpoint=s3.endpoint)
        )
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        pw.io.s3.read("prefix", "xml", schema=KV, aws_s3_settings=st)
    with pytest.raises(ValueError, match="a schema is required"):
        pw.io.s3.read("prefix", "csv", aws_s3_settings=st)
    with pytest.raises(ValueError, match="downloader_threads_count"):
        pw.io.s3.read("prefix", "csv", schema=KV, aws_s3_settings=st, downloader_threads_count=0)
    with pytest.raises(ValueError, match="mode must be"):
        pw.io.s3.read("prefix", "csv", schema=KV, aws_s3_settings=st, mode="batch")
    with pytest.raises(ValueError, match="json_field_paths names columns"):
        pw.io.s3.read(
            "prefix", "json", schema=KV, aws_s3_settings=st, json_field_paths={"nope": "/a"}
        )
    with pytest.raises(ValueError, match="both access_key and secret_access_key"):
        pw.io.s3.AwsS3Settings(access_key="only-half")


def test_read_of_missing_bucket_or_wrong_credentials_fails_clearly(s3: MotoS3) -> None:
    table = pw.io.s3.read(
        "x",
        "csv",
        schema=KV,
        mode="static",
        aws_s3_settings=settings(s3, bucket_name="no-such-bucket"),
    )
    with pytest.raises(Exception, match="bucket does not exist"):
        pw.debug.table_to_dicts(table)
    pw.clear_graph()
    s3.create_bucket(BUCKET)
    s3.create_user_with_key("reader")
    s3.require_auth(True)
    table = pw.io.s3.read(
        "x",
        "csv",
        schema=KV,
        mode="static",
        aws_s3_settings=settings(s3, access_key="AKIANOBODY", secret_access_key="not-the-secret"),
    )
    with pytest.raises(Exception, match="access key is not known") as info:
        pw.debug.table_to_dicts(table)
    assert "not-the-secret" not in str(info.value)


def test_credentials_from_the_environment_chain(s3: MotoS3) -> None:
    """Without keys in the settings, boto3's chain (here: the environment) is used."""
    s3.create_bucket(BUCKET)
    s3.put(BUCKET, "env/a.csv", "k,v\n7,env\n")
    table = pw.io.s3.read(
        "env",
        "csv",
        schema=KV,
        mode="static",
        aws_s3_settings=pw.io.s3.AwsS3Settings(
            bucket_name=BUCKET, endpoint=s3.endpoint, with_path_style=True
        ),
    )
    assert rows_of(table) == [(7, "env")]


def test_credentials_from_a_shared_credentials_profile(
    s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without keys in the settings or the environment, a profile of the AWS config files
    is used (the server checks the key)."""
    s3.create_bucket(BUCKET)
    s3.put(BUCKET, "profile/a.csv", "k,v\n8,profile\n")
    access, secret = s3.create_user_with_key("profile-reader")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[reader]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n"
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_PROFILE", "reader")
    s3.require_auth(True)
    table = pw.io.s3.read(
        "profile",
        "csv",
        schema=KV,
        mode="static",
        aws_s3_settings=pw.io.s3.AwsS3Settings(
            bucket_name=BUCKET, endpoint=s3.endpoint, with_path_style=True
        ),
    )
    assert rows_of(table) == [(8, "profile")]


def test_streaming_read_survives_an_outage(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    s3.put(BUCKET, "flaky/0.csv", "k,v\n1,a\n")
    table = pw.io.s3.read(
        "flaky", "csv", schema=KV, aws_s3_settings=settings(s3), autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: state(c) == [(1, "a")])
        s3.stop()
        try:
            time.sleep(1.2)  # the outage: several listing polls fail meanwhile
        finally:
            s3.restart()
        s3.put(BUCKET, "flaky/1.csv", "k,v\n2,b\n")
        changes.wait_for(lambda c: state(c) == [(1, "a"), (2, "b")])
    assert sum(1 for _, _, added in changes.rows if added) == 2  # nothing read twice


def test_read_fails_when_the_store_stays_unreachable(
    s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_S3_MAX_OUTAGE_S", "1")
    table = pw.io.s3.read("gone", "csv", schema=KV, mode="static", aws_s3_settings=settings(s3))
    s3.stop()
    with pytest.raises(Exception, match="stayed unreachable"):
        pw.debug.table_to_dicts(table)


_WORKERS_PROGRAM = """
import json, os, sys
import deltaflow as pw

class KV(pw.Schema):
    k: int
    v: str

settings = pw.io.s3.AwsS3Settings(
    bucket_name=sys.argv[2], endpoint=sys.argv[1], with_path_style=True, region="us-east-1"
)
table = pw.io.s3.read("split/", "csv", schema=KV, mode="static", aws_s3_settings=settings)
counts = table.groupby(table.v).reduce(table.v, n=pw.reducers.count())
changes = []
pw.io.subscribe(
    counts, on_change=lambda key, row, time, is_addition: changes.append([row, is_addition])
)
pw.run(monitoring_level=pw.MonitoringLevel.NONE)
if os.environ.get("PATHWAY_PROCESS_ID", "0") == "0":
    json.dump(changes, open(sys.argv[3], "w"))
"""


def test_objects_are_split_between_workers_by_key(s3: MotoS3, tmp_path: Path) -> None:
    """With ``deltaflow spawn -n 2``, each worker downloads its share of the objects, and
    the results are those of one worker."""
    import os
    import re
    import subprocess
    import sys

    s3.create_bucket(BUCKET)
    for obj in range(12):
        rows = [(obj * 100 + i, f"v{(obj + i) % 5}") for i in range(10 + obj)]
        s3.put(BUCKET, f"split/{obj:03d}.csv", "k,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
    program = tmp_path / "program.py"
    program.write_text(_WORKERS_PROGRAM)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    results = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "deltaflow",
                "spawn",
                "-n",
                str(workers),
                sys.executable,
                str(program),
                s3.endpoint,
                BUCKET,
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results.append(json.loads(out.read_text()))
        if workers == 2:
            read = re.findall(r"(\d+) rows read here from split inputs", done.stderr)
            assert len(read) == 2 and all(int(n) > 0 for n in read), done.stderr[-3000:]
            assert sum(int(n) for n in read) == sum(10 + obj for obj in range(12))
    one, two = results
    assert sorted(map(json.dumps, one)) == sorted(map(json.dumps, two))
    assert len(one) == 5
