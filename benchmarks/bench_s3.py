"""S3 connectors against a local moto server (started here, in its own process).

* write (deltaflow only; Pathway 0.33 has no ``pw.io.s3.write``): ``BENCH_ROWS`` rows
  (default 1M) in ``BENCH_S3_WRITE_TIMES`` times (default 4, so 4 objects) written as CSV by
  ``pw.io.s3.write``; timed ``pw.run()``. Baseline: the same object bytes uploaded with plain
  boto3 ``put_object``, one after another. Each side runs ``BENCH_S3_REPEAT`` times (default
  3) and the best time counts. Figures: ``write_rows_per_s``,
  ``boto3_put_rows_per_s`` and ``write_vs_boto3`` (the ratio; the target is >= 0.7).
* read (both implementations): ``BENCH_S3_OBJECTS`` objects (default 100) of
  ``BENCH_S3_OBJECT_ROWS`` rows (default 10k) read by ``pw.io.s3.read(..., mode="static")``
  and counted; deltaflow downloads with ``BENCH_S3_THREADS`` threads (default 8).
  Figures: ``read_seconds``, ``read_rows_per_s``.

The moto server runs in a separate process so it does not share the measured process's GIL;
it is started with this interpreter if it has moto, otherwise with ``BENCH_MOTO_PYTHON``
(default: the repository's ``.venv/bin/python``).

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS, BENCH_S3_WRITE_TIMES,
BENCH_S3_OBJECTS, BENCH_S3_OBJECT_ROWS, BENCH_S3_THREADS, BENCH_S3_REPEAT, BENCH_MOTO_PYTHON.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_int, impl, load_pw, report, timed

BUCKET = "bench-bucket"
ACCESS_KEY = "bench-access"
SECRET_KEY = "bench-secret"
REGION = "us-east-1"

_SERVER = """
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()  # run until the benchmark closes our stdin
server.stop()
"""


# Writes the read benchmark's objects (with an interpreter that has boto3: Pathway's may not).
_POPULATE = """
import sys
import boto3
endpoint, bucket, objects, per_object = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="bench-access", aws_secret_access_key="bench-secret")
s3.create_bucket(Bucket=bucket)
for number in range(objects):
    start = number * per_object
    body = "key,value,label\\n" + "".join(
        f"{i},{i * 0.5},label-{i % 1000}\\n" for i in range(start, start + per_object))
    s3.put_object(Bucket=bucket, Key=f"input/{number:04d}.csv", Body=body.encode())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def moto_python() -> str:
    if importlib.util.find_spec("moto") is not None:
        return sys.executable
    default = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    return os.environ.get("BENCH_MOTO_PYTHON", str(default))


def start_server() -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen([moto_python(), "-c", _SERVER, str(port)], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit("the moto server did not start")
    endpoint = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(endpoint + "/moto-api/", timeout=10).read()
    return process, endpoint


def client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def keys_under(s3: Any, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def settings(pw: Any, endpoint: str) -> Any:
    return pw.io.s3.AwsS3Settings(bucket_name=BUCKET, access_key=ACCESS_KEY,
                                  secret_access_key=SECRET_KEY, with_path_style=True,
                                  region=REGION, endpoint=endpoint)


def bench_write(pw: Any, endpoint: str, s3: Any) -> None:
    rows = env_int("BENCH_ROWS", 1_000_000)
    times = env_int("BENCH_S3_WRITE_TIMES", 4)
    repeat = env_int("BENCH_S3_REPEAT", 3)
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "key": np.arange(rows, dtype=np.int64),
        "value": rng.random(rows),
        "label": np.array([f"label-{i % 1000}" for i in range(rows)], dtype=object),
        "__time__": (np.arange(rows) * times // rows) * 2 + 2,
    })
    # The machine is shared and moto's speed varies: the best of a few runs of each side.
    pipeline = []
    for attempt in range(repeat):
        pw.clear_graph()
        table = pw.debug.table_from_pandas(frame)
        pw.io.s3.write(table, f"written{attempt}", "csv",
                       aws_s3_settings=settings(pw, endpoint), write_interval_ms=0)
        start = time.perf_counter()
        pw.run()
        pipeline.append(time.perf_counter() - start)
    keys = keys_under(s3, "written0/")
    bodies = [s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys]
    lines = sum(body.count(b"\n") - 1 for body in bodies)  # minus each object's header
    if len(keys) != times or lines != rows:
        raise SystemExit(f"wrote {len(keys)} objects / {lines} rows, expected {times} / {rows}")
    baseline = []
    for attempt in range(repeat):
        start = time.perf_counter()
        for number, body in enumerate(bodies):
            s3.put_object(Bucket=BUCKET, Key=f"baseline{attempt}/{number:04d}.csv", Body=body)
        baseline.append(time.perf_counter() - start)
    best, best_baseline = min(pipeline), min(baseline)
    report("write_seconds", best, "s", "lower")
    report("write_rows_per_s", rows / best, "rows/s", "higher")
    report("boto3_put_rows_per_s", rows / best_baseline, "rows/s", "higher")
    report("write_vs_boto3", best_baseline / best, "x", "higher")
    print(f"{sum(map(len, bodies)) / 1e6:.1f} MB in {len(keys)} objects; pipeline runs "
          f"{[round(x, 3) for x in pipeline]} s, boto3 {[round(x, 3) for x in baseline]} s",
          flush=True)


def bench_read(pw: Any, endpoint: str) -> None:
    objects = env_int("BENCH_S3_OBJECTS", 100)
    per_object = env_int("BENCH_S3_OBJECT_ROWS", 10_000)
    subprocess.run([moto_python(), "-c", _POPULATE, endpoint, BUCKET, str(objects),
                    str(per_object)], check=True)

    class Row(pw.Schema):
        key: int
        value: float
        label: str

    options: dict[str, Any] = {}
    if impl() == "deltaflow":
        options["downloader_threads_count"] = env_int("BENCH_S3_THREADS", 8)
    rows = objects * per_object
    with timed("read", rows=rows):
        table = pw.io.s3.read("input/", "csv", schema=Row, mode="static",
                              aws_s3_settings=settings(pw, endpoint), **options)
        counted = table.reduce(n=pw.reducers.count(), total=pw.reducers.sum(pw.this.key))
        result = pw.debug.table_to_pandas(counted)
    n, total = int(result["n"].iloc[0]), int(result["total"].iloc[0])
    if n != rows or total != rows * (rows - 1) // 2:
        raise SystemExit(f"read {n} rows (key sum {total}), expected {rows}")


def main() -> None:
    banner("s3 write/read against moto")
    process, endpoint = start_server()
    try:
        pw = load_pw()
        bench_read(pw, endpoint)
        if impl() == "deltaflow":
            pw.clear_graph()
            bench_write(pw, endpoint, client(endpoint))
        else:
            print("pw.io.s3.write does not exist in Pathway 0.33: write figures skipped",
                  flush=True)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
