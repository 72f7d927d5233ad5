"""pw.io.kafka.write on several workers in a persisted run, against a real broker (Tansu).

A Kafka output whose rows are each worker's share is written by every worker with
persistence too. Every worker's producer records its own position in its part of the
checkpoint; after a crash every worker reads the crashed run's tail, skips what it produces
again, and worker 0 settles the rest for all (src/deltaflow/io/kafka/_replay.py). Here a
two-worker word count is killed (SIGKILL of worker 0) after a checkpoint, with output written
after it, and restarted on 2, 1 and 3 workers: the topic of the words copied must hold every
word exactly once (nothing written twice, nothing retracted), and the counts' topic the final
counts of one uninterrupted worker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import (  # noqa: F401 - *_fixture: the kafka_broker fixture
    TansuBroker,
    kafka_broker_fixture,
)
from test_kafka_workers import _counts_are, _final_counts, _messages, _worker_lines

PYTHON = sys.executable
PROGRAM = Path(__file__).with_name("kafka_workers_persist_program.py")
SRC = str(Path(__file__).resolve().parents[2] / "src")
PARTITIONS = 4
WORDS = [f"w{i}" for i in range(32)]  # a multiple of PARTITIONS: see _batch


def _command(workers: int, spec: dict[str, Any], tmp: Path) -> list[str]:
    path = tmp / f"spec-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(spec))
    return [PYTHON, "-m", "deltaflow", "spawn", "-n", str(workers), PYTHON, str(PROGRAM), str(path)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.pop("PATHWAY_PROCESSES", None)
    env.pop("PATHWAY_PROCESS_ID", None)
    return env


def _batch(seed: int, *, disjoint: bool = False) -> dict[int, list[str]]:
    """Words for every partition; ``disjoint``: no word in two partitions (then each count
    changes once, however the workers' commits are cut into times)."""
    return {
        p: [
            WORDS[(seed + p * 7 + i * i) % len(WORDS)]
            if not disjoint
            else WORDS[(p + PARTITIONS * (seed + i * i)) % len(WORDS)]
            for i in range(12 + 3 * p)
        ]
        for p in range(PARTITIONS)
    }


def _send(broker: TansuBroker, topic: str, batch: dict[int, list[str]]) -> None:
    for partition, words in batch.items():
        broker.produce(
            topic, [json.dumps({"word": w}).encode() for w in words], partition=partition
        )


def _wait_for(path: Path, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never came"
        time.sleep(0.05)
    time.sleep(0.05)  # written in one call; let it land
    return json.loads(path.read_text())


def _wait_for_checkpoint(state: Path, covering: int, timeout: float = 60.0) -> None:
    """Until a checkpoint of a time at or after ``covering`` is written."""
    deadline = time.monotonic() + timeout
    while True:
        times = []
        for manifest in (state / "checkpoints").glob("*.json"):
            try:
                times.append(json.loads(manifest.read_text()).get("time") or 0)
            except (OSError, ValueError):
                continue
        if any(t >= covering for t in times):
            return
        assert time.monotonic() < deadline, f"no checkpoint of time {covering}: {times}"
        time.sleep(0.05)


def _settled(stderr: str) -> dict[str, list[str]]:
    """The log lines of the settled tails: worker 0's, and the other workers'."""
    return {
        "all": re.findall(r"tail is settled for every worker: .*", stderr),
        "here": re.findall(
            r"(\d+) message\(s\) of the crashed tail not written again here", stderr
        ),
    }


@pytest.mark.parametrize("restart_on", [2, 1, 3])
def test_a_persisted_output_on_every_worker_is_exactly_once_across_a_kill(
    kafka_broker: TansuBroker, tmp_path: Path, restart_on: int
) -> None:
    tag = uuid.uuid4().hex[:8]
    source, counts, rows = f"words-{tag}", f"counts-{tag}", f"rows-{tag}"
    kafka_broker.create_topic(source, partitions=PARTITIONS)
    kafka_broker.create_topic(counts, partitions=2)
    kafka_broker.create_topic(rows, partitions=2)
    first, second = _batch(0), _batch(5, disjoint=True)
    words_first = [w for ws in first.values() for w in ws]
    words_all = words_first + [w for ws in second.values() for w in ws]
    expected = dict(Counter(words_all))
    marks = tmp_path / "marks"
    marks.mkdir()
    state = tmp_path / "state"
    spec = {
        "settings": kafka_broker.settings(),
        "mode": "streaming",
        "source": source,
        "counts": counts,
        "rows": rows,
        "state": str(state),
        "marks": str(marks),
        "stages": {"first": dict(Counter(words_first)), "all": expected},
        "crash_at": "all",
        # The second batch comes right after the first one's checkpoint and is all written
        # (with half a second to deliver) before the next checkpoint is due.
        "interval_ms": 1500,
    }
    # The first run: the first batch, checkpointed; then the second, written (on both
    # workers) but not checkpointed when worker 0 is killed.
    _send(kafka_broker, source, first)
    crashed = subprocess.Popen(
        _command(2, spec, tmp_path),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        mark = _wait_for(marks / "first.json")
        _wait_for_checkpoint(state, mark["time"])
        _send(kafka_broker, source, second)
        _, crash_log = crashed.communicate(timeout=60)
    finally:
        if crashed.poll() is None:
            crashed.kill()
    assert crashed.returncode != 0, crash_log[-3000:]
    assert (marks / "all.json").exists(), crash_log[-3000:]
    written = _messages(kafka_broker, rows, lambda m: len(m) >= len(words_all))
    # The crashed run wrote the second batch's rows after its last checkpoint.
    assert len(written) == len(words_all), (len(written), len(words_all))

    # The restart reads what is left (static) on ``restart_on`` workers and ends.
    done = subprocess.run(
        _command(restart_on, {**spec, "mode": "static", "crash_at": None}, tmp_path),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    copied = _messages(kafka_broker, rows, lambda m: len(m) >= len(words_all))
    # Every word once: nothing written twice, nothing retracted.
    assert sorted(m["word"] for m in copied) == sorted(words_all)
    assert all(m["diff"] == 1 for m in copied)
    counted = _messages(kafka_broker, counts, _counts_are(expected))
    assert _final_counts(counted) == expected
    # Every change of a count once, as in one uninterrupted run: counts only grow, so no
    # (word, count, diff) comes twice.
    changes = Counter((m["word"], m["count"], m["diff"]) for m in counted)
    assert max(changes.values()) == 1, [c for c, n in changes.items() if n > 1]
    if restart_on == 1:  # one writer: the replay of one worker (test_kafka_exactly_once.py)
        assert "retracted" in done.stderr and "tail is settled: " in done.stderr
        return
    # Worker 0 settled both outputs' tails: every message of them written again, none
    # retracted. The other workers skipped tail messages of their own, in both outputs.
    settled = _settled(done.stderr)
    assert len(settled["all"]) == 2, done.stderr[-3000:]
    assert all(
        re.search(r": [1-9]\d* message\(s\) not written again, 0 retracted, 0 written", line)
        for line in settled["all"]
    ), settled
    assert len(settled["here"]) == 2 * (restart_on - 1), done.stderr[-3000:]
    assert all(int(n) > 0 for n in settled["here"]), settled
    _, rows_written = _worker_lines(done.stderr, restart_on)
    assert all(n > 0 for n in rows_written.values()), rows_written
