"""pw.io.dynamodb.write versus boto3's own ``Table.batch_writer``, same items, same server.

A moto DynamoDB server runs in a separate process on 127.0.0.1 (so that it does not share the
benchmark's interpreter lock). In one run the script writes BENCH_ROWS items (default 100k)
twice, into two empty tables created beforehand:

* ``boto3_batch_writer``: boto3's resource-level ``Table.batch_writer`` putting the items
  (Python dicts) one by one, the way an application would without deltaflow;
* ``end_to_end``: a deltaflow pipeline, ``table_from_pandas`` → ``pw.io.dynamodb.write`` →
  ``pw.run()``, timed as a whole (building the table included).

Figures: ``end_to_end_rows_per_s``, ``boto3_batch_writer_rows_per_s`` and
``ratio_vs_batch_writer`` (deltaflow / boto3; the target is at least 0.8). Both tables are
checked to hold every item. The script needs boto3 and moto[server]; Pathway's DynamoDB
connector needs a commercial licence, so with BENCH_IMPL=pathway it only says it is skipped.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS (default 100_000).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from _harness import Timer, banner, env_int, impl, load_pw, report

REGION = "us-west-2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
                return process, endpoint
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("the moto server did not start") from None
            time.sleep(0.1)


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "key": np.arange(rows, dtype=np.int64),
            "name": [f"user-{i:07d}" for i in range(rows)],
            "score": rng.integers(0, 10_000, size=rows).astype(np.float64) / 4,
            "active": rng.integers(0, 2, size=rows).astype(bool),
        }
    )


def create(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "N"}],
    )


def count(client: Any, name: str) -> int:
    total, kwargs = 0, {"TableName": name, "Select": "COUNT"}
    while True:
        page = client.scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def run_batch_writer(resource: Any, frame: pd.DataFrame) -> float:
    table = resource.Table("baseline")
    records = frame.to_dict("records")
    with Timer() as timer, table.batch_writer() as batch:
        for record in records:
            batch.put_item(
                Item={
                    "key": int(record["key"]),
                    "name": record["name"],
                    "score": Decimal(repr(float(record["score"]))),
                    "active": bool(record["active"]),
                }
            )
    return timer.seconds


def run_deltaflow(frame: pd.DataFrame) -> float:
    pw = load_pw()
    with Timer() as timer:
        table = pw.debug.table_from_pandas(frame)
        pw.io.dynamodb.write(table, "bench", table.key)
        pw.run()
    return timer.seconds


def main() -> None:
    rows = env_int("BENCH_ROWS", 100_000)
    banner(f"dynamodb rows={rows}")
    if impl() == "pathway":
        print("skipped: Pathway's DynamoDB connector needs a commercial licence", flush=True)
        return
    import boto3

    process, endpoint = start_moto()
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_REGION=REGION,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
        )
        client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
        resource = boto3.resource("dynamodb", region_name=REGION, endpoint_url=endpoint)
        create(client, "baseline")
        create(client, "bench")
        frame = make_frame(rows)

        baseline_s = run_batch_writer(resource, frame)
        deltaflow_s = run_deltaflow(frame)

        report("boto3_batch_writer_seconds", baseline_s, "s", "lower")
        report("boto3_batch_writer_rows_per_s", rows / baseline_s, "rows/s", "higher")
        report("end_to_end_seconds", deltaflow_s, "s", "lower")
        report("end_to_end_rows_per_s", rows / deltaflow_s, "rows/s", "higher")
        report("ratio_vs_batch_writer", baseline_s / deltaflow_s, "x", "higher")
        for name in ("baseline", "bench"):
            found = count(client, name)
            if found != rows:
                raise SystemExit(f"table {name!r} holds {found} items, expected {rows}")
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
