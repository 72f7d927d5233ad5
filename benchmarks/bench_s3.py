"""S3 connectors against a local moto server (started here, in its own process).

* write (deltaflow only; Pathway 0.33 has no ``pw.io.s3.write``): ``BENCH_ROWS`` rows
  (default 1M) in ``BENCH_S3_WRITE_TIMES`` times (default 4, so 4 objects) written as CSV by
  ``pw.io.s3.write(..., write_interval_ms=0)``; ``pw.run()`` is timed (building the input
  table is not). Baseline: the same object bytes uploaded with plain boto3 ``put_object``, one
  object after another, to the same server. After an untimed reference run, the two run in
  ``BENCH_S3_REPEAT`` pairs (default 7), back to back and alternating which goes first, so
  that both see the same machine load; every run's objects are checked to be byte-identical
  (same MD5s) to the reference, and deleted afterwards. Figures (medians):
  ``write_seconds``, ``write_rows_per_s``, ``boto3_put_rows_per_s`` and ``write_vs_boto3``
  (the median of the per-pair ratios; the target is >= 0.9, issue #13).
* read (both implementations): ``BENCH_S3_OBJECTS`` objects (default 100) of
  ``BENCH_S3_OBJECT_ROWS`` rows (default 10k) read by ``pw.io.s3.read(..., mode="static")``
  with ``downloader_threads_count=BENCH_S3_THREADS`` (default 8) and counted, timed from
  defining the read to having the count, ``BENCH_S3_READ_REPEAT`` times (default 3).
  Figures (medians): ``read_seconds``, ``read_rows_per_s``.

The moto server runs in a separate process so it does not share the measured process's GIL;
it is started with this interpreter if it has moto, otherwise with ``BENCH_MOTO_PYTHON``
(default: the repository's ``.venv/bin/python``).

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_ROWS, BENCH_S3_WRITE_TIMES,
BENCH_S3_REPEAT, BENCH_S3_OBJECTS, BENCH_S3_OBJECT_ROWS, BENCH_S3_THREADS,
BENCH_S3_READ_REPEAT, BENCH_MOTO_PYTHON.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _harness import banner, env_int, impl, load_pw, report

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
    process = subprocess.Popen(
        [moto_python(), "-c", _SERVER, str(port)],
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit("the moto server did not start")
    endpoint = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(endpoint + "/moto-api/", timeout=10).read()
    return process, endpoint


def client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def keys_under(s3: Any, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def settings(pw: Any, endpoint: str) -> Any:
    return pw.io.s3.AwsS3Settings(
        bucket_name=BUCKET,
        access_key=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        with_path_style=True,
        region=REGION,
        endpoint=endpoint,
    )


def write_frame(rows: int, times: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "key": np.arange(rows, dtype=np.int64),
            "value": rng.random(rows),
            "label": np.array([f"label-{i % 1000}" for i in range(rows)], dtype=object),
            "__time__": (np.arange(rows) * times // rows) * 2 + 2,
        }
    )


def etags_under(s3: Any, prefix: str) -> list[str]:
    """The ETags (MD5 of single-part uploads) of the objects under ``prefix``, in key order."""
    tags: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        tags.extend(str(item["ETag"]) for item in page.get("Contents", []))
    return tags


def delete_under(s3: Any, prefix: str) -> None:
    keys = keys_under(s3, prefix)
    if keys:
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})


def bench_write(pw: Any, endpoint: str, s3: Any) -> None:
    """Paired runs: the pipeline and plain boto3 upload the same bytes to the same server in
    the same number of objects, one right after the other (alternating which goes first), so
    that both see the same load; the figure is the median of the per-pair ratios."""
    rows = env_int("BENCH_ROWS", 1_000_000)
    times = env_int("BENCH_S3_WRITE_TIMES", 4)
    repeat = env_int("BENCH_S3_REPEAT", 7)
    frame = write_frame(rows, times)

    def run_pipeline(prefix: str) -> float:
        pw.clear_graph()
        table = pw.debug.table_from_pandas(frame)  # preparing the input is not timed
        pw.io.s3.write(
            table, prefix, "csv", aws_s3_settings=settings(pw, endpoint), write_interval_ms=0
        )
        start = time.perf_counter()
        pw.run()
        return time.perf_counter() - start

    def run_boto3(prefix: str, bodies: list[bytes]) -> float:
        start = time.perf_counter()
        for number, body in enumerate(bodies):
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{number:016d}.csv", Body=body)
        return time.perf_counter() - start

    # A first, untimed run gives the reference bytes and warms both clients and the server.
    run_pipeline("reference")
    keys = keys_under(s3, "reference/")
    bodies = [s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys]
    reference_tags = etags_under(s3, "reference/")
    lines = sum(body.count(b"\n") - 1 for body in bodies)  # minus each object's header
    if len(keys) != times or lines != rows:
        raise SystemExit(f"wrote {len(keys)} objects / {lines} rows, expected {times} / {rows}")
    run_boto3("warmup", bodies)
    delete_under(s3, "warmup/")

    pipeline: list[float] = []
    baseline: list[float] = []
    for attempt in range(repeat):
        ours, theirs = f"written{attempt}", f"baseline{attempt}"
        if attempt % 2 == 0:
            pipeline.append(run_pipeline(ours))
            baseline.append(run_boto3(theirs, bodies))
        else:
            baseline.append(run_boto3(theirs, bodies))
            pipeline.append(run_pipeline(ours))
        # Same bytes, same number of objects: compare the stores' MD5s.
        if (
            etags_under(s3, ours + "/") != reference_tags
            or etags_under(s3, theirs + "/") != reference_tags
        ):
            raise SystemExit(f"run {attempt}: the objects differ from the reference run")
        delete_under(s3, ours + "/")  # keep the server's state the same for every pair
        delete_under(s3, theirs + "/")
    ratios = [b / p for p, b in zip(pipeline, baseline, strict=True)]
    report("write_seconds", statistics.median(pipeline), "s", "lower")
    report("write_rows_per_s", rows / statistics.median(pipeline), "rows/s", "higher")
    report("boto3_put_rows_per_s", rows / statistics.median(baseline), "rows/s", "higher")
    report("write_vs_boto3", statistics.median(ratios), "x", "higher")
    print(
        f"{sum(map(len, bodies)) / 1e6:.1f} MB in {len(keys)} objects, {repeat} pairs; "
        f"pipeline {[round(x, 3) for x in pipeline]} s, boto3 "
        f"{[round(x, 3) for x in baseline]} s, ratios {[round(x, 2) for x in ratios]} "
        f"(median {statistics.median(ratios):.2f}, min {min(ratios):.2f})",
        flush=True,
    )


def clear_graph(pw: Any) -> None:
    if hasattr(pw, "clear_graph"):
        pw.clear_graph()
    else:  # Pathway 0.33 has no public way
        pw.internals.parse_graph.G.clear()


def bench_read(pw: Any, endpoint: str) -> None:
    objects = env_int("BENCH_S3_OBJECTS", 100)
    per_object = env_int("BENCH_S3_OBJECT_ROWS", 10_000)
    threads = env_int("BENCH_S3_THREADS", 8)
    repeat = env_int("BENCH_S3_READ_REPEAT", 3)
    subprocess.run(
        [moto_python(), "-c", _POPULATE, endpoint, BUCKET, str(objects), str(per_object)],
        check=True,
    )

    class Row(pw.Schema):
        key: int
        value: float
        label: str

    rows = objects * per_object
    seconds: list[float] = []
    for _ in range(repeat):
        clear_graph(pw)
        start = time.perf_counter()
        # Both implementations download with the same number of threads.
        table = pw.io.s3.read(
            "input/",
            "csv",
            schema=Row,
            mode="static",
            aws_s3_settings=settings(pw, endpoint),
            downloader_threads_count=threads,
        )
        counted = table.reduce(n=pw.reducers.count(), total=pw.reducers.sum(pw.this.key))
        result = pw.debug.table_to_pandas(counted)
        seconds.append(time.perf_counter() - start)
        n, total = int(result["n"].iloc[0]), int(result["total"].iloc[0])
        if n != rows or total != rows * (rows - 1) // 2:
            raise SystemExit(f"read {n} rows (key sum {total}), expected {rows}")
    report("read_seconds", statistics.median(seconds), "s", "lower")
    report("read_rows_per_s", rows / statistics.median(seconds), "rows/s", "higher")
    print(f"read runs {[round(x, 3) for x in seconds]} s", flush=True)


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
            print(
                "pw.io.s3.write does not exist in Pathway 0.33: write figures skipped", flush=True
            )
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
