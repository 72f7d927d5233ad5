"""pw.io.kafka on several workers (``deltaflow spawn -n N``) against a real broker (Tansu).

Each worker reads its share of the topic's partitions (``p % N == i``) and the outputs to
Kafka are written on every worker, each writing the rows it holds. A word count over a topic
of four partitions must give the counts of one worker, in 2 and 3 workers, with every worker
reading exactly its partitions (from its own log line) and writing some of the output.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import (  # noqa: F401 - *_fixture: the kafka_broker fixture
    TansuBroker,
    kafka_broker_fixture,
)

import deltaflow as pw
from deltaflow.engine.runtime import Runtime
from deltaflow.engine.workers.inputs import WorkerShare
from deltaflow.engine.workers.placement import Placement, partition_hashers, place_operators

PYTHON = sys.executable
PROGRAM = Path(__file__).with_name("kafka_workers_program.py")
SRC = str(Path(__file__).resolve().parents[2] / "src")
PARTITIONS = 4
WORDS = [f"w{i}" for i in range(40)]


def _spawn(workers: int, spec: dict[str, Any], tmp: Path) -> str:
    """Run the program on ``workers`` workers; its stderr (the workers' log lines)."""
    path = tmp / f"spec{workers}-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.pop("PATHWAY_PROCESSES", None)
    env.pop("PATHWAY_PROCESS_ID", None)
    done = subprocess.run(
        [PYTHON, "-m", "deltaflow", "spawn", "-n", str(workers), PYTHON, str(PROGRAM), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def _produce(broker: TansuBroker, topic: str) -> tuple[dict[str, int], dict[int, int]]:
    """Words spread over the partitions unevenly; the expected counts and messages per
    partition."""
    broker.create_topic(topic, partitions=PARTITIONS)
    counts: Counter[str] = Counter()
    per_partition: dict[int, int] = {}
    for partition in range(PARTITIONS):
        chosen = [WORDS[(partition * 7 + i * i) % len(WORDS)] for i in range(20 + 9 * partition)]
        broker.produce(
            topic, [json.dumps({"word": w}).encode() for w in chosen], partition=partition
        )
        counts.update(chosen)
        per_partition[partition] = len(chosen)
    return dict(counts), per_partition


def _messages(
    broker: TansuBroker,
    topic: str,
    complete: Callable[[list[dict[str, Any]]], bool],
    *,
    with_keys: bool = False,
) -> list[dict[str, Any]]:
    """The JSON values of every message of ``topic`` (``with_keys``: each with the message's
    key under ``"_message_key"``): read until ``complete`` says all expected ones came
    (within 60 s: the broker may stall for seconds), then until none came for a second (so
    that a message too many is seen)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(broker.settings(**{"enable.auto.commit": "false"}))
    values: list[dict[str, Any]] = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + 60.0
        quiet_until = None
        while time.monotonic() < (deadline if quiet_until is None else quiet_until):
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                value = json.loads(message.value())
                if with_keys:
                    value["_message_key"] = message.key()
                values.append(value)
                if quiet_until is not None:
                    quiet_until = time.monotonic() + 1.0
            if quiet_until is None and complete(values):
                quiet_until = time.monotonic() + 1.0
    finally:
        consumer.close()
    return values


def _final_counts(messages: list[dict[str, Any]]) -> dict[str, int]:
    state: Counter[tuple[str, int]] = Counter()
    for m in messages:
        state[(m["word"], m["count"])] += m["diff"]
    final = +state
    assert all(n == 1 for n in final.values()), final
    return {word: count for word, count in final}


def _counts_are(expected: dict[str, int]) -> Callable[[list[dict[str, Any]]], bool]:
    def complete(messages: list[dict[str, Any]]) -> bool:
        state: Counter[tuple[str, int]] = Counter()
        for m in messages:
            state[(m["word"], m["count"])] += m["diff"]
        return dict(+state) == {(w, c): 1 for w, c in expected.items()}

    return complete


def _consolidated_per_time(messages: list[dict[str, Any]]) -> None:
    """No time holds a row twice, or a row and its retraction (whatever worker wrote it)."""
    seen = Counter((m["time"], m["word"], m["count"]) for m in messages)
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]


def _worker_lines(stderr: str, workers: int) -> tuple[dict[int, Any], dict[int, int]]:
    """Per worker: the partitions it read with its messages per partition, and the rows its
    outputs on every worker wrote."""
    partitions: dict[int, Any] = {}
    written: dict[int, int] = {}
    for line in stderr.splitlines():
        read = re.search(r"worker (\d+) of \d+ read partitions (\[.*?\]) \(.*?: (\{.*\})\)", line)
        if read:
            partitions[int(read.group(1))] = (
                ast.literal_eval(read.group(2)),
                ast.literal_eval(read.group(3)),
            )
        wrote = re.search(r"worker (\d+) of \d+: .* (\d+) rows written here", line)
        if wrote:
            written[int(wrote.group(1))] = int(wrote.group(2))
    assert sorted(partitions) == list(range(workers)), stderr[-3000:]
    assert sorted(written) == list(range(workers)), stderr[-3000:]
    return partitions, written


def _run(broker: TansuBroker, mode: str, workers: tuple[int, ...], tmp: Path) -> None:
    source = f"words-{uuid.uuid4().hex[:8]}"
    expected, per_partition = _produce(broker, source)
    total = sum(per_partition.values())
    for n in workers:
        target, rows = f"counts-{uuid.uuid4().hex[:8]}", f"rows-{uuid.uuid4().hex[:8]}"
        broker.create_topic(target, partitions=2)
        broker.create_topic(rows, partitions=2)
        spec = {
            "settings": broker.settings(),  # a fresh group: every run reads from the start
            "mode": mode,
            "source": source,
            "target": target,
            "rows": rows,
            "expected": expected,
        }
        stderr = _spawn(n, spec, tmp)
        counted = _messages(broker, target, _counts_are(expected))
        final = _final_counts(counted)
        if final != expected:
            # As for the copies below: the broker's watermarks tell a loss on the way in
            # (fewer messages held than the workers wrote) from one on the way out.
            pytest.fail(
                f"{n} workers: {len(counted)} count messages read; words missing or wrong "
                f"{ {w: (final.get(w), c) for w, c in expected.items() if final.get(w) != c} }; "
                f"broker watermarks {broker.watermarks(target)}; "
                f"workers' log:\n{stderr[-3000:]}\nbroker's log:\n{broker.log_tail()}"
            )
        _consolidated_per_time(counted)
        copied = _messages(broker, rows, lambda messages: len(messages) >= total, with_keys=True)
        if Counter(m["word"] for m in copied) != Counter(expected):
            # Say whether the broker holds fewer messages than the workers wrote (a loss on
            # the way in) or the consumer saw fewer than it holds (a loss on the way out).
            pytest.fail(
                f"{n} workers: {len(copied)} of {total} rows copied; missing "
                f"{dict(Counter(expected) - Counter(m['word'] for m in copied))}; "
                f"broker watermarks {broker.watermarks(rows)}; "
                f"workers' log:\n{stderr[-3000:]}\nbroker's log:\n{broker.log_tail()}"
            )
        # Copied without key=: a message's key is its row's id, distinct for every row even
        # when several workers number the rows of their partitions.
        assert len({m["_message_key"] for m in copied}) == total, f"{n} workers"
        if n == 1:
            continue
        partitions, written = _worker_lines(stderr, n)
        for worker in range(n):
            mine = [p for p in range(PARTITIONS) if p % n == worker]
            assert partitions[worker][0] == mine, partitions
            # Every message of its partitions, and none of another's.
            assert partitions[worker][1] == {p: per_partition[p] for p in mine}, partitions
            assert written[worker] > 0, written  # its share of counts and rows, written here
        # Together the workers wrote every row once: each word's count changes and each copy.
        assert sum(written.values()) == len(counted) + total


def test_static_read_is_split_by_partition_with_the_counts_of_one_worker(
    kafka_broker: TansuBroker, tmp_path: Path
) -> None:
    _run(kafka_broker, "static", (1, 2, 3), tmp_path)


def test_streaming_read_is_split_by_partition_with_the_counts_of_one_worker(
    kafka_broker: TansuBroker, tmp_path: Path
) -> None:
    _run(kafka_broker, "streaming", (1, 2), tmp_path)


def test_partition_shares_are_disjoint_and_cover_the_topic() -> None:
    for count in (1, 2, 3, 5):
        owners = [
            [w for w in range(count) if WorkerShare(w, count).owns_partition(p)] for p in range(12)
        ]
        assert all(len(o) == 1 for o in owners)
        assert [o[0] for o in owners] == [p % count for p in range(12)]
    # Offset keys: Kafka's (topic, partition), else a path.
    share = WorkerShare(1, 2)
    assert share.owns_offset_key(("t", 3)) and not share.owns_offset_key(["t", 2])
    paths = [f"data/{i}.csv" for i in range(20)]
    assert [share.owns_offset_key(p) for p in paths] == [share.owns_path(p) for p in paths]
    assert any(share.owns_path(p) for p in paths) and not all(share.owns_path(p) for p in paths)


def _placements(*, persisted: bool = False) -> dict[str, Placement]:
    """The placement of each output of the current graph, by its sink's name, on 2 workers."""
    from deltaflow.plan import REGISTRY

    runtime = Runtime(REGISTRY.outputs)
    split = {
        position
        for position, op in enumerate(runtime.operators)
        if getattr(getattr(op.node, "source", None), "splits", False)
    }
    hashers = [partition_hashers(op, False) for op in runtime.operators]
    placement, _ = place_operators(
        runtime.operators, hashers, runtime._inputs_of, split, persisted=persisted
    )
    return {
        op.sink.name: where
        for op, where in zip(runtime.operators, placement, strict=True)
        if getattr(op, "sink", None) is not None
    }


def test_outputs_on_every_worker_only_where_rows_stay_consolidated(tmp_path: Path) -> None:
    settings = {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}
    words = pw.io.kafka.read(settings, "in", schema=pw.schema_from_types(word=str), format="json")
    other = pw.io.kafka.read(settings, "in2", schema=pw.schema_from_types(word=str), format="json")
    counts = words.groupby(words.word).reduce(words.word, n=pw.reducers.count())
    joined = words.join(other, words.word == other.word).select(word=words.word)
    pw.io.kafka.write(counts, settings, "counts", name="counts")
    pw.io.kafka.write(counts.filter(counts.n > 1), settings, "many", name="filtered counts")
    pw.io.kafka.write(words, settings, "rows", name="rows")
    pw.io.kafka.write(joined, settings, "joined", name="join")
    pw.io.kafka.write(counts, settings, "dsv", format="dsv", name="dsv")
    pw.io.kafka.write(counts, settings, "sorted", name="sorted", sort_by=[counts.n])
    pw.io.jsonlines.write(counts, str(tmp_path / "counts.jsonl"), name="file")
    pw.io.kafka.write(words.with_id_from(words.word), settings, "reindexed", name="reindexed")
    placed = _placements()
    assert placed == {
        "counts": Placement.EVERY_WORKER,
        "filtered counts": Placement.EVERY_WORKER,
        "rows": Placement.EVERY_WORKER,
        "join": Placement.SINGLE,
        "dsv": Placement.SINGLE,
        "sorted": Placement.SINGLE,
        "file": Placement.SINGLE,
        "reindexed": Placement.SINGLE,
    }
    # A persisted run places them alike: each worker records its own producer's position
    # and worker 0 settles a crashed tail for all (test_kafka_workers_persisted.py).
    assert _placements(persisted=True) == placed


def test_live_commits_of_the_workers_are_taken_in_rounds() -> None:
    """Worker 0's handle of a streaming split input: the k-th live commit of every worker
    makes one commit; a commit with a pinned time stays alone."""
    import polars as pl

    from deltaflow.engine.workers.inputs import RemoteCommit, SplitInputHandle

    handle = SplitInputHandle("in", lambda: None, [1, 2], static=False)
    handle.push(pl.DataFrame({"x": [1, 2]}))
    handle.push(pl.DataFrame({"x": [3]}))
    handle.add_remote(1, [(0, None), (1, None), (2, None)], False)
    handle.add_remote(2, [(0, None), (1, 7)], False)
    taken = handle.take()
    pinned = [p for p in taken if p.time is not None]
    assert len(pinned) == 1 and pinned[0].time == 7
    assert isinstance(pinned[0].batch, RemoteCommit) and pinned[0].batch.remote == [(2, 1)]
    rounds = [p.batch for p in taken if p.time is None]
    assert all(isinstance(r, RemoteCommit) for r in rounds)
    assert [r.remote for r in rounds] == [[(1, 0), (2, 0)], [(1, 1)], [(1, 2)]]
    assert [[f.height for f in r.local] for r in rounds] == [[2], [1], []]
    # worker 0's rows in a placeholder are marked processed by the runtime, after their time
    assert [r.unmarked for r in rounds] == [2, 1, 0]


def test_batches_travel_between_workers_unchanged_in_both_ipc_formats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import polars as pl

    from deltaflow.engine.workers import transport

    monkeypatch.setattr(transport, "IPC_FILE_ROWS", 6)  # the file format from 6 rows
    frame = pl.DataFrame(
        {
            "k": ["a", "b", None, "c", "d", "e"],
            "v": [1, 2, 3, 4, 5, 6],
            "o": pl.Series([(1,), {"x": 1}, None, 2, "s", [3]], dtype=pl.Object),
        }
    )
    for rows in (3, 6):
        batch = frame.head(rows)
        encoded = transport.encode_frame(batch)
        assert encoded is not None
        data, order, objects = encoded
        assert (bytes(data[:6]) == b"ARROW1") == (rows == 6)
        back = transport.decode_frame(data, order, objects)
        assert back.columns == batch.columns
        assert back.drop("o").equals(batch.drop("o"))
        assert back["o"].to_list() == batch["o"].to_list()


def test_deltas_are_split_by_key_alike_small_and_big() -> None:
    """The gather path (small deltas) and the filter path give every worker the same rows."""
    import polars as pl

    from deltaflow.engine.workers import placement

    delta = pl.DataFrame({"w": [f"w{i % 37}" for i in range(300)], "n": list(range(300))})
    hashes = delta.select(placement.key_hash_expr([pl.col("w")], [pl.String]).alias("h"))["h"]
    for workers in (1, 2, 3):
        small = placement.split_by_key(delta, hashes, workers)
        shares = ((hashes // placement._SHARE_DIVISOR) % workers).cast(pl.UInt32)
        big = [delta.filter(shares == w) for w in range(workers)]
        assert [s.to_dicts() for s in small] == [b.to_dicts() for b in big]
        assert sum(s.height for s in small) == 300
        assert all(s.height for s in small)  # 37 keys: every worker gets some
        # a key is never on two workers
        assert len({w for s in small for w in s["w"].unique()}) == sum(
            s["w"].n_unique() for s in small
        )
