"""pw.io.dynamodb.write waits out a DynamoDB outage as long as the retry policy allows.

A real DynamoDB HTTP API (moto's server mode on 127.0.0.1) is stopped in the middle of a
streaming run and started again on the same port (moto keeps its tables in this process), so
the writer sees refused connections for the whole outage, as with a network cut.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from s3_server import ManualSource, MotoS3, run_in_thread, wait_for

import deltaflow as pw

REGION = "us-west-2"
OUTAGE_S = 10.0
"""Longer than the 5-9 s the writer survived before the shared retry policy."""


class MotoDynamoDB(MotoS3):
    """The S3 tests' moto server (it serves every AWS API, DynamoDB's too): it can be
    stopped and started again on the same port with its tables kept."""

    def dynamodb(self) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def values(self, table: str) -> dict[int, str]:
        items = self.dynamodb().scan(TableName=table)["Items"]
        return {int(item["key"]["N"]): item["value"]["S"] for item in items}


@pytest.fixture()
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoDynamoDB]:
    server = MotoDynamoDB()
    server.start()
    environment = {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # A short policy keeps the test fast: retries at most 0.5 s apart.
        "DELTAFLOW_RETRY_MAX_DELAY_S": "0.5",
        # Only these count (a developer's own AWS setup must not leak in).
        "AWS_ENDPOINT_URL_DYNAMODB": None,
        "AWS_DEFAULT_REGION": None,
        "AWS_PROFILE": None,
        "AWS_SESSION_TOKEN": None,
    }
    for variable, value in environment.items():
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    try:
        yield server
    finally:
        server.stop()


class KV(pw.Schema):
    key: int
    value: str


def _create(server: MotoDynamoDB, name: str) -> None:
    server.dynamodb().create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "N"}],
    )


def test_outage_shorter_than_the_limit_loses_nothing(
    dynamodb: MotoDynamoDB, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DELTAFLOW_DYNAMODB_MAX_OUTAGE_S", "40")
    _create(dynamodb, "outage")
    source = ManualSource(KV, "key")
    table = source.table()
    pw.io.dynamodb.write(table, "outage", table.key, name="ddb-outage")
    thread, errors = run_in_thread(pw.run)
    source.send([{"key": 1, "value": "before"}])
    assert wait_for(lambda: dynamodb.values("outage") == {1: "before"}, timeout=10)
    caplog.set_level(logging.WARNING, logger="deltaflow.io.retry")
    dynamodb.stop()
    down_at = time.monotonic()
    source.send([{"key": 2, "value": "during"}, {"key": 3, "value": "during"}])
    time.sleep(OUTAGE_S)
    dynamodb.start()
    outage = time.monotonic() - down_at
    source.send([{"key": 4, "value": "after"}])
    source.finish()
    thread.join(60)
    assert not thread.is_alive() and errors == []
    assert outage > 9.0
    assert dynamodb.values("outage") == {1: "before", 2: "during", 3: "during", 4: "after"}
    retries = [r.getMessage() for r in caplog.records if "ddb-outage" in r.getMessage()]
    assert len(retries) >= 5  # it kept trying during the outage, with a warning each time
    assert all("testing" not in message for message in retries)


def test_outage_longer_than_the_limit_fails_the_run_naming_it(
    dynamodb: MotoDynamoDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELTAFLOW_DYNAMODB_MAX_OUTAGE_S", "2")
    _create(dynamodb, "doomed")
    table = pw.debug.table_from_rows(KV, [(1, "a"), (2, "b")])
    pw.io.dynamodb.write(table, "doomed", table.key, name="ddb-doomed")
    dynamodb.stop()
    started = time.monotonic()
    with pytest.raises(pw.ConnectorError, match="ddb-doomed") as info:
        pw.run()
    took = time.monotonic() - started
    assert 2.0 <= took < 20
    message = str(info.value)
    assert "kept failing" in message and "DELTAFLOW_DYNAMODB_MAX_OUTAGE_S" in message
