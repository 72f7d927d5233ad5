"""pw.io.minio.read/write: MinIO-style settings (path-style, custom endpoint, static keys)
against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3_server import (  # noqa: F401 - *_fixture: the moto_s3 and s3 fixtures
    MotoS3,
    docs_example,
    moto_s3_fixture,
    run_example,
    s3_fixture,
)

import deltaflow as pw

pytestmark = pytest.mark.server

BUCKET = "minio-bucket"


class KV(pw.Schema):
    k: int
    v: str


def minio_settings(server: MotoS3, **overrides: object) -> pw.io.minio.MinIOSettings:
    values: dict = {
        "endpoint": server.endpoint,
        "bucket_name": BUCKET,
        "access_key": "minio-user",
        "secret_access_key": "minio-password",
    }
    values.update(overrides)
    return pw.io.minio.MinIOSettings(**values)


def rows_of(table: pw.Table) -> list[tuple]:
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return sorted(tuple(columns[n][k] for n in names) for k in keys)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_minio_write_then_read(s3: MotoS3, fmt: str) -> None:
    s3.create_bucket(BUCKET)
    data = [(k, f"row {k}") for k in range(20)]
    pw.io.minio.write(
        pw.debug.table_from_rows(KV, data),
        "exports",
        fmt,
        minio_settings=minio_settings(s3),
        write_interval_ms=0,
    )
    pw.run()
    keys = s3.keys(BUCKET, "exports/")
    assert keys == ["exports/0000000000000000." + ("csv" if fmt == "csv" else "jsonl")]
    pw.clear_graph()
    back = pw.io.minio.read(
        "exports", minio_settings(s3), fmt, schema=KV, mode="static", with_metadata=True
    )
    keys_, columns = pw.debug.table_to_dicts(back)
    assert {columns["_metadata"][k].value["path"] for k in keys_} == set(keys)
    assert sorted((columns["k"][k], columns["v"][k]) for k in keys_) == data


def test_minio_endpoint_without_scheme_and_s3_url_path(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    s3.put(BUCKET, "plain/a.txt", "hello\nworld\n")
    # "127.0.0.1:port" without a scheme would mean https; the explicit http:// URL is kept.
    settings = minio_settings(s3)
    assert settings.create_aws_settings()._endpoint_url() == s3.endpoint
    no_scheme = minio_settings(s3, endpoint=s3.endpoint.removeprefix("http://"))
    assert no_scheme.create_aws_settings()._endpoint_url() == "https://" + s3.endpoint.removeprefix(
        "http://"
    )
    table = pw.io.minio.read(f"s3://{BUCKET}/plain", settings, "plaintext", mode="static")
    assert rows_of(table) == [("hello",), ("world",)]


def test_minio_bad_settings(s3: MotoS3) -> None:
    with pytest.raises(ValueError, match="MinIOSettings: bucket_name"):
        pw.io.minio.MinIOSettings(s3.endpoint, "", "user", "password")
    with pytest.raises(TypeError, match="minio_settings must be pw.io.minio.MinIOSettings"):
        pw.io.minio.read("x", pw.io.s3.AwsS3Settings(bucket_name=BUCKET), "csv", schema=KV)
    assert "minio-password" not in repr(minio_settings(s3))
    pw.io.minio.write(
        pw.debug.table_from_rows(KV, [(1, "a")]),
        "x",
        minio_settings(s3, bucket_name="missing-bucket"),
        "csv",
    )
    with pytest.raises(Exception, match="bucket does not exist"):
        pw.run()


def test_docs_example_runs_and_prints_what_the_page_says(tmp_path: Path) -> None:
    code, printed = docs_example(Path(__file__).resolve().parents[2] / "docs" / "minio.md")
    assert run_example(code, tmp_path).strip() == printed.strip()


def test_minio_write_accepts_both_argument_orders(s3: MotoS3) -> None:
    s3.create_bucket(BUCKET)
    table = pw.debug.table_from_rows(KV, [(1, "a")])
    pw.io.minio.write(
        table, "seed-order", "csv", minio_settings=minio_settings(s3), write_interval_ms=0
    )
    pw.io.minio.write(table, "read-order", minio_settings(s3), "json", write_interval_ms=0)
    pw.run()
    assert s3.keys(BUCKET, "seed-order/") == ["seed-order/0000000000000000.csv"]
    assert s3.keys(BUCKET, "read-order/") == ["read-order/0000000000000000.jsonl"]
    with pytest.raises(TypeError, match="minio_settings"):
        pw.io.minio.write(table, "x", "csv")
