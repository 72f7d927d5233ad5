"""A local S3 endpoint for the S3/MinIO connector tests: moto's server mode on 127.0.0.1.

The server runs in this process on a free port. Its state (buckets, objects) lives in moto's
in-process backends, so :meth:`MotoS3.stop` followed by :meth:`MotoS3.restart` on the same port
simulates an outage: the store is unreachable for a while and then comes back with its data.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
from moto.server import ThreadedMotoServer

import deltaflow as pw
from deltaflow._ids import hash_columns
from deltaflow.engine.boundary import Source, SourceHandle
from deltaflow.table import input_table

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoS3:
    """A running moto server plus helpers to inspect and reset it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        # moto's request log would drown the tests' own output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def restart(self) -> None:
        """Start again on the same port (moto's data survives: it lives in this process)."""
        self.start()

    def reset(self) -> None:
        """Forget every bucket and object (between tests)."""
        self._post("/moto-api/reset", b"")

    def require_auth(self, enabled: bool) -> None:
        """Make moto check access keys (off by default: moto accepts any credentials)."""
        self._post("/moto-api/reset-auth", b"0" if enabled else b"inf")

    def _post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(
            self.endpoint + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    # --- clients -------------------------------------------------------------------------
    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )

    def iam_client(self) -> Any:
        return boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return found

    def get(self, bucket: str, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=bucket, Key=key)["Body"].read())

    def put(self, bucket: str, key: str, body: bytes | str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, bucket: str, key: str) -> None:
        self.client().delete_object(Bucket=bucket, Key=key)

    def create_user_with_key(self, user: str) -> tuple[str, str]:
        """An IAM user allowed to do anything on S3; returns its (access key, secret key)."""
        iam = self.iam_client()
        iam.create_user(UserName=user)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


@pytest.fixture(scope="module", name="moto_s3")
def moto_s3_fixture() -> Iterator[MotoS3]:
    """One moto server per test module (tests reset it through :func:`s3`)."""
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="s3")
def s3_fixture(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    """The module's server, emptied, with AWS credentials in the environment for boto3."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # A developer's own profile must not leak into the tests.
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    if moto_s3._server is None:  # a test that simulated an outage may have left it down
        moto_s3.restart()
    moto_s3.reset()
    yield moto_s3
    if moto_s3._server is None:
        moto_s3.restart()
    moto_s3.require_auth(False)


class ManualSource(Source):
    """An engine input the test feeds by hand: each :meth:`send` becomes one minibatch.

    It lets a test decide when rows enter a running pipeline (to observe flush timing and
    outages) through the engine's real source boundary.
    """

    name = "manual"

    def __init__(self, schema: type[pw.Schema], key: str) -> None:
        self.schema = schema
        self.key = key
        self._queue: queue.Queue[tuple[pl.DataFrame, threading.Event] | None] = queue.Queue()
        self._handle: SourceHandle | None = None

    def table(self) -> pw.Table:
        return input_table(self.schema, self, name="manual")

    def start(self, handle: SourceHandle) -> None:
        self._handle = handle
        threading.Thread(target=self._run, args=(handle,), daemon=True).start()

    def _run(self, handle: SourceHandle) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                handle.finish()
                return
            batch, pushed = item
            handle.push(batch)
            pushed.set()

    def send(self, rows: list[dict[str, Any]], diff: int = 1) -> None:
        """Push ``rows`` (ids from the key column) and wait until the engine took them."""
        dtypes = self.schema.dtypes()
        frame = pl.DataFrame(
            {
                name: pl.Series(name, [row[name] for row in rows], dtype=dtype.to_polars())
                for name, dtype in dtypes.items()
            }
        )
        ids = hash_columns(frame, [(self.key, dtypes[self.key])])
        batch = frame.select(ids.alias("_id"), *dtypes, pl.lit(diff, dtype=pl.Int64).alias("_diff"))
        pushed = threading.Event()
        self._queue.put((batch, pushed))
        if not pushed.wait(10):
            raise AssertionError("the pipeline did not start within 10 s")
        handle = self._handle
        assert handle is not None
        if not handle.wait_backlog_below(1, timeout=10):
            raise AssertionError("the engine did not process the batch within 10 s")

    def finish(self) -> None:
        self._queue.put(None)


def run_in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``target`` (usually ``pw.run``) on a thread; errors are collected in the list."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, errors


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def docs_example(doc: Path) -> tuple[str, str]:
    """The code of a docs page's "Example" section and the output the page says it prints."""
    text = doc.read_text()
    section = text[text.index("## Example") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    printed = re.search(r"\nprints\b.*?```\n(.*?)```", section, re.S)
    assert code is not None and printed is not None, f"{doc}: no example with its output"
    return code.group(1), printed.group(1)


def run_example(code: str, cwd: Path) -> str:
    """Run a docs example in a fresh interpreter (it starts its own local server); its
    standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"the example failed:\n{done.stderr[-3000:]}"
    return done.stdout
