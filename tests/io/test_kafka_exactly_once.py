"""The Kafka writer across a crash (see src/deltaflow/io/kafka/_replay.py): what a crashed run
wrote after its checkpoint is not written again by the restarted run, and what the restarted
run does not write again is retracted. The writer is driven the way an output session and
persistence drive it, against the real broker of kafka_broker.py."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kafka_broker import (  # noqa: F401 - *_fixture: the kafka_broker fixture
    TansuBroker,
    free_port,
    kafka_broker_fixture,
)

from deltaflow.io._core.retry import DEFAULT_POLICY
from deltaflow.io.kafka import _replay
from deltaflow.io.kafka._formats import Messages
from deltaflow.io.kafka._writer import KafkaWriter


def _writer(broker: TansuBroker, topic: str, fmt: str = "json") -> KafkaWriter:
    writer = KafkaWriter(
        {"bootstrap.servers": broker.address},
        topic,
        connector=f"pw.io.kafka.write({topic!r})",
        policy=DEFAULT_POLICY,
        limit_hint="",
        fmt=fmt,
        delimiter=";",
    )
    writer.persisted = True  # as persistence sets it (FlushWatch) before the run writes
    return writer


def _changes(time: int, changes: list[tuple[str, int, int]]) -> Messages:
    """JSON messages as the formatter makes them: key = the word, value with diff and time."""
    return Messages(
        keys=[word.encode() for word, _, _ in changes],
        values=[
            json.dumps(
                {"word": word, "n": n, "diff": diff, "time": time}, separators=(",", ":")
            ).encode()
            for word, n, diff in changes
        ],
        headers=[
            [("pathway_time", str(time).encode()), ("pathway_diff", str(diff).encode())]
            for _, _, diff in changes
        ],
    )


def _flush(writer: KafkaWriter, time: int) -> Any:
    """flush + wait for the acknowledgements; the position a checkpoint would record."""
    writer.flush(time)
    position = writer.position()
    writer._producer.flush(10)
    # (durable_time() itself stays None while a resumed writer settles the crashed tail.)
    while writer.durable_time() != time and writer._durable != time:
        pass
    return writer.export_position(position)


def _topic_changes(broker: TansuBroker, topic: str, count: int) -> list[tuple[str, int, int]]:
    messages = broker.consume(topic, count + 1, timeout=3.0)
    return [(d["word"], d["n"], d["diff"]) for d in (json.loads(m.value()) for m in messages)]


def test_the_crashed_tail_is_not_written_twice(kafka_broker: TansuBroker) -> None:
    topic = f"eo-{free_port()}"
    kafka_broker.create_topic(topic, partitions=2)
    first = _writer(kafka_broker, topic)
    start = first.position()  # the fresh start's checkpoint: the topic's ends
    assert start == {"topic": topic, "offsets": {"0": 0, "1": 0}}
    first.write(_changes(10, [("a", 1, 1), ("b", 2, 1)]))
    checkpoint = _flush(first, 10)
    assert sum(checkpoint["offsets"].values()) == 2
    first.write(_changes(20, [("c", 3, 1), ("d", 4, 1)]))  # after the checkpoint ...
    _flush(first, 20)
    first.abort()  # ... then the process dies

    second = _writer(kafka_broker, topic)
    second.resume(checkpoint)
    assert second._replay is not None and second._replay.size == 2
    assert second.durable_time() is None  # no checkpoint until the tail is settled
    # The restarted run computes the same changes at other times, in other minibatches.
    second.write(_changes(31, [("c", 3, 1)]))
    second.write(_changes(31, [("d", 4, 1), ("e", 5, 1)]))
    _flush(second, 31)
    assert second._replay is None
    second.close()
    assert sorted(_topic_changes(kafka_broker, topic, 5)) == [
        ("a", 1, 1),
        ("b", 2, 1),
        ("c", 3, 1),
        ("d", 4, 1),
        ("e", 5, 1),
    ]


def test_what_the_restart_does_not_write_again_is_retracted(
    kafka_broker: TansuBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"eo-{free_port()}"
    kafka_broker.create_topic(topic)
    first = _writer(kafka_broker, topic)
    first.position()
    first.write(_changes(10, [("a", 3, 1)]))
    checkpoint = _flush(first, 10)
    first.write(_changes(20, [("a", 3, -1), ("a", 5, 1)]))  # an aggregate moved 3 -> 5
    _flush(first, 20)
    first.abort()

    second = _writer(kafka_broker, topic)
    second.resume(checkpoint)
    # The restarted run reads more input in one minibatch: 3 -> 7 directly.
    second.write(_changes(30, [("a", 3, -1)]))  # the same as the tail's: not written again
    _flush(second, 30)
    assert second._replay is not None and second._replay.pending == 1
    monkeypatch.setattr(_replay, "REPLAY_WINDOW_S", 0.0)  # the window is over
    second.write(_changes(31, [("a", 7, 1)]))  # the tail's 5 is retracted first
    _flush(second, 31)
    assert second._replay is None
    second.close()
    found = _topic_changes(kafka_broker, topic, 4)
    assert found == [("a", 3, 1), ("a", 3, -1), ("a", 5, 1), ("a", 5, -1), ("a", 7, 1)]
    net: dict[tuple[str, int], int] = {}
    for word, n, diff in found:
        net[(word, n)] = net.get((word, n), 0) + diff
    assert {k: v for k, v in net.items() if v} == {("a", 7): 1}  # as an uninterrupted run


def test_positions_of_several_workers_merge_to_their_lowest_offsets_and_the_time() -> None:
    worker0 = {"topic": "t", "offsets": {"0": 5, "1": 9}, "time": 40}
    worker1 = {"topic": "t", "offsets": {"0": 7, "1": 3, "2": 4}, "time": 40}
    merged = _replay.merge_positions([worker0, None, worker1], 40)
    # A partition worker 0 has no offset for (created after it started): from its start.
    assert merged["offsets"] == {"0": 5, "1": 3, "2": 0} and merged["time"] == 40
    assert merged["workers"] == [worker0["offsets"], worker1["offsets"]]
    # The ends of the topic at a fresh start (no time): the tail is everything after them.
    start = {"topic": "t", "offsets": {"0": 5}}
    assert _replay.merge_positions([start], 0) == start
    assert _replay.merge_positions([start, worker1], 40)["time"] is None
    assert _replay.merge_positions([None, None], 40) is None


def test_a_tail_written_by_two_workers_is_settled_once_for_both(
    kafka_broker: TansuBroker,
) -> None:
    """Two workers' messages interleave in one partition; the checkpoint of time 10 holds
    their merged positions. After the crash, the workers that resume (the rows moved between
    them) each skip what they produce again; worker 0 settles the rest for both."""
    topic = f"eo-{free_port()}"
    kafka_broker.create_topic(topic, partitions=1)
    first0, first1 = _writer(kafka_broker, topic), _writer(kafka_broker, topic)
    first0.position()
    first1.position()
    first0.write(_changes(10, [("a", 1, 1)]))  # offset 0
    position0 = _flush(first0, 10)
    first0.write(_changes(20, [("c", 1, 1), ("e", 1, 1)]))  # offsets 1, 2: after the checkpoint
    _flush(first0, 20)
    first1.write(_changes(10, [("b", 1, 1)]))  # offset 3: time 10, arriving late
    position1 = _flush(first1, 10)
    first1.write(_changes(20, [("d", 1, 1), ("f", 1, 1)]))  # offsets 4, 5
    _flush(first1, 20)
    first0.abort()
    first1.abort()
    checkpoint = _replay.merge_positions([position0, position1], 10)
    assert checkpoint["offsets"] == {"0": 1} and checkpoint["time"] == 10

    again0, again1 = _writer(kafka_broker, topic), _writer(kafka_broker, topic)
    for writer in (again0, again1):
        writer.shared_replay = True
        writer.resume(checkpoint)
        # c, e, d, f: b (time 10) is covered by the checkpoint although after offset 1.
        assert writer._replay is not None and writer._replay.size == 4
    # The restart: d moved to worker 0, c to worker 1, both compute e (a key both write),
    # worker 1 a new x, and nobody f.
    again0.write(_changes(30, [("d", 1, 1), ("e", 1, 1)]))
    _flush(again0, 30)
    again1.write(_changes(30, [("c", 1, 1), ("e", 1, 1), ("x", 1, 1)]))
    _flush(again1, 30)
    assert again0.durable_time() is None and again1.durable_time() is None  # held back
    skipped = again1.end_shared_replay()
    assert len(skipped) == 2 and again1.durable_time() == 30
    again0.settle_shared([skipped], 30)
    assert again0._replay is None and again0.durable_time() == 30
    position = again0.export_position(again0.position())
    again0.close()
    again1.close()
    found = _topic_changes(kafka_broker, topic, 9)
    # c and d once (not written again), e written again once (skipped twice, in the tail
    # once), f retracted, x written.
    assert sorted(found[6:]) == [("e", 1, 1), ("f", 1, -1), ("x", 1, 1)]
    assert len(found) == 9
    # The compensations are in worker 0's position from time 30 on.
    assert position["offsets"] == {"0": 9} and position["time"] == 30


@pytest.mark.parametrize("fmt", ["json", "dsv"])
def test_fingerprints_ignore_the_time_only(fmt: str) -> None:
    def message(time: int, n: int, diff: int) -> tuple[bytes, list[tuple[str, bytes]]]:
        value = (
            f'{{"n":{n},"diff":{diff},"time":{time}}}'
            if fmt == "json"
            else f'"{n}";"{time}";"{diff}"'
        ).encode()
        return value, [("pathway_time", str(time).encode()), ("pathway_diff", str(diff).encode())]

    def fingerprint(time: int, n: int, diff: int) -> Any:
        value, headers = message(time, n, diff)
        return _replay.fingerprint(fmt, ";", "t", b"k", value, headers)

    assert fingerprint(1, 1, 1) == fingerprint(22, 1, 1)  # time 1 = diff 1: still found
    assert fingerprint(1, 1, 1) != fingerprint(1, 2, 1)
    assert fingerprint(1, 1, 1) != fingerprint(1, 1, -1)
    value, headers = message(5, 1, 1)
    tail = _replay.TailMessage("t", 0, b"k", value, headers)
    opposite = _replay.retraction(fmt, tail, 9, ";")
    assert opposite is not None
    assert opposite == message(9, 1, -1)


@pytest.mark.parametrize("persisted", [False, True])
def test_a_message_the_broker_never_takes_fails_the_run(persisted: bool) -> None:
    """With or without persistence (each message tracked, or failures alone reported), a
    message librdkafka gives up on is an error naming the connector, while the run goes on
    (the next time's flush raises it) and when it ends."""
    from deltaflow.engine.boundary import ConnectorError

    broker = TansuBroker().start()
    try:
        broker.create_topic("gone")
        writer = KafkaWriter(
            {"bootstrap.servers": broker.address, "message.timeout.ms": "500"},
            "gone",
            connector="pw.io.kafka.write('gone')",
            policy=DEFAULT_POLICY,
            limit_hint="",
        )
        writer.persisted = persisted
        writer.write(_changes(2, [("a", 1, 1)]))
        writer.flush(2)
        writer._producer.flush(10)  # delivered while the broker is there
        broker.stop()
        writer.write(_changes(4, [("b", 1, 1)]))
        writer.flush(4)
        failed = r"pw\.io\.kafka\.write\('gone'\).*accept"
        deadline = time.monotonic() + 20
        with pytest.raises(ConnectorError, match=failed):
            while time.monotonic() < deadline:  # the message times out after 0.5 s
                time.sleep(0.05)
                writer.flush(6)
        with pytest.raises(ConnectorError, match=failed):
            writer.close()
        assert (writer.durable_time() == 2) if persisted else writer.durable_time() is None
    finally:
        broker.stop()
