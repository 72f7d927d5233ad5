"""Exactly-once Kafka output across a crash: the crashed run's tail is replayed, not doubled.

A topic cannot be cut back, so the writer cannot undo what a crashed run wrote after its
last checkpoint, as the file and SQLite sinks do. Instead, with persistence:

* a checkpoint records, for the writer's topic, the offset after the last acknowledged
  message of every partition at the checkpointed time (its *position*);
* a run resuming from that checkpoint first reads what the crashed run wrote after those
  offsets (its *tail*): :func:`read_tail`;
* while the restarted run recomputes the same changes, each message equal to one of the tail
  (same topic, key, headers and value, the time aside) is *not* produced again: the topic
  already holds it (:meth:`TailReplay.already_written`);
* what the tail holds and the restarted run does not produce again within
  :data:`REPLAY_WINDOW_S` (the restarted run cut its minibatches differently, e.g. an
  aggregate went from 3 to 7 where the crashed run had written 5) is *retracted*: the writer
  produces the opposite change (``diff`` negated) on the same partition
  (:meth:`TailReplay.retractions`), so that the changes in the topic add up to the
  uninterrupted run's. Until then the writer holds checkpoints back (a crash meanwhile
  resumes from the same checkpoint and the same tail).

So a pipeline whose changes after a restart are the same as before the crash (a stateless
pipeline over a replayable input, as in the crash sweep) writes every change exactly once;
any other writes the crashed run's extra changes and their retractions, never a lost change
and never a wrong sum. Kafka transactions would hide the crashed run's tail from
``read_committed`` consumers instead, but Tansu, the broker of the tests, hands aborted
transactional messages to them too, and a transaction cannot be committed in the same step
as a deltaflow checkpoint (see docs/kafka.md).
"""

from __future__ import annotations

import collections
import json
import logging
import time as _time
from collections.abc import Mapping
from typing import Any

from deltaflow.engine.boundary import ConnectorError

logger = logging.getLogger("deltaflow.io.kafka")

REPLAY_WINDOW_S = 10.0
"""How long a resumed writer waits for its tail to be produced again before retracting the
rest (seconds)."""

TIME_HEADER = "pathway_time"
DIFF_HEADER = "pathway_diff"

Fingerprint = tuple[str | None, bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]


class TailMessage:
    """One message of the tail, as read back."""

    __slots__ = ("headers", "key", "partition", "topic", "value")

    def __init__(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers


def fingerprint(
    fmt: str,
    delimiter: str,
    topic: str | None,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
) -> Fingerprint:
    """What makes two messages the same change: everything but the time (in the
    ``pathway_time`` header and, for json and dsv, in the value)."""
    time_text = next((v for n, v in headers if n == TIME_HEADER), None)
    if time_text is not None and value is not None:
        if fmt == "json":  # {..., "diff": d, "time": t}
            suffix = b'"time":' + time_text + b"}"
            if value.endswith(suffix):
                value = value[: -len(suffix)]
        elif fmt == "dsv":  # ...;"t";"d"
            parts = value.rsplit(delimiter.encode(), 2)
            if len(parts) == 3 and parts[1].strip(b'"') == time_text:
                value = parts[0] + b"\0" + parts[2]
    rest = tuple((n, v) for n, v in headers if n != TIME_HEADER)
    return topic, key, value, rest


def retraction(
    fmt: str, message: TailMessage, time: int, delimiter: str
) -> tuple[bytes | None, list[tuple[str, bytes | None]]] | None:
    """The value and headers of the change opposite to ``message``, at ``time``; None for a
    message that is no change (a dsv header line, a message without ``pathway_diff``)."""
    diff_text = next((v for n, v in message.headers if n == DIFF_HEADER), None)
    try:
        diff = int(diff_text) if diff_text is not None else None
    except ValueError:
        diff = None
    if diff is None:
        return None
    new_time, new_diff = str(time).encode(), str(-diff).encode()
    headers = [
        (n, new_time if n == TIME_HEADER else new_diff if n == DIFF_HEADER else v)
        for n, v in message.headers
    ]
    value = message.value
    if fmt == "json" and value is not None:
        try:
            document = json.loads(value)
        except ValueError:
            return None
        if not isinstance(document, dict) or "diff" not in document:
            return None
        document["diff"] = -diff
        document["time"] = time
        value = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    elif fmt == "dsv" and value is not None:
        parts = value.rsplit(delimiter.encode(), 2)
        if len(parts) != 3 or parts[2].strip(b'"') != diff_text:
            return None  # the header line
        quote = b'"' if parts[2].startswith(b'"') else b""
        value = delimiter.encode().join(
            [parts[0], quote + new_time + quote, quote + new_diff + quote]
        )
    return value, headers


class TailReplay:
    """The tail of a crashed run, matched against what the restarted run produces."""

    def __init__(self, fmt: str, delimiter: str, tail: list[TailMessage]) -> None:
        self.fmt = fmt
        self.delimiter = delimiter
        self.started = _time.monotonic()
        self._left: dict[Fingerprint, collections.deque[TailMessage]] = {}
        for message in tail:
            print_ = fingerprint(
                fmt, delimiter, message.topic, message.key, message.value, message.headers
            )
            self._left.setdefault(print_, collections.deque()).append(message)
        self.size = len(tail)
        self.matched = 0
        self.retracted = 0

    @property
    def pending(self) -> int:
        """Tail messages neither produced again nor retracted yet."""
        return self.size - self.matched - self.retracted

    def already_written(
        self,
        topic: str | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
    ) -> bool:
        """Whether this message is in the tail (then it counts as produced)."""
        found = self._left.get(fingerprint(self.fmt, self.delimiter, topic, key, value, headers))
        if not found:
            return False
        found.popleft()
        self.matched += 1
        return True

    def due(self) -> bool:
        """Whether the rest of the tail should be retracted now."""
        return self.pending > 0 and _time.monotonic() - self.started >= REPLAY_WINDOW_S

    def retractions(
        self, time: int
    ) -> list[tuple[TailMessage, bytes | None, list[tuple[str, bytes | None]]]]:
        """The opposite changes of the tail messages not produced again, at ``time``; the
        replay is over after this."""
        out = []
        for queue in self._left.values():
            for message in queue:
                opposite = retraction(self.fmt, message, time, self.delimiter)
                if opposite is not None:
                    out.append((message, *opposite))
        self.retracted = self.size - self.matched
        self._left.clear()
        return out


IDLE_END_S = 0.5
"""Reading a topic to its end stops after this long without a new message (seconds)."""


def _consumer(settings: Mapping[str, Any], connector: str) -> Any:
    from confluent_kafka import Consumer

    from deltaflow.io.kafka._reader import make_client

    return make_client(
        Consumer,
        {
            **settings,
            "group.id": "deltaflow-kafka-writer",
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        },
        connector,
    )


def _partitions_and_marks(
    consumer: Any, topic: str, connector: str, timeout_s: float
) -> dict[int, int]:
    """Every partition of ``topic`` with its high watermark ({}: no such topic yet)."""
    from confluent_kafka import KafkaException, TopicPartition

    try:
        described = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if described is None or described.error is not None:
            return {}
        return {
            p: int(
                consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=timeout_s, cached=False
                )[1]
            )
            for p in described.partitions
        }
    except KafkaException as exc:
        raise ConnectorError(
            connector,
            f"cannot read the end offsets of topic {topic!r}: "
            f"{exc.args[0].str() if exc.args else exc}",
        ) from None


def read_to_end(
    settings: Mapping[str, Any],
    topic: str,
    starts: Mapping[int, int] | None,
    connector: str,
    timeout_s: float,
) -> tuple[list[TailMessage], dict[int, int]]:
    """The messages of ``topic`` after ``starts`` (per partition; a partition absent from it:
    from its start; ``starts=None``: from the high watermarks, to find the true ends) and the
    offset after the last message of each partition.

    The end is where no message comes for :data:`IDLE_END_S` (nobody else writes the topic
    at this moment: the run that wrote it is dead) and not before the high watermark, which
    is only a lower bound: Tansu reports the base offset of the last record batch plus one.
    """
    from confluent_kafka import TopicPartition

    consumer = _consumer(settings, connector)
    try:
        marks = _partitions_and_marks(consumer, topic, connector, timeout_s)
        if not marks:
            return [], {}
        begin = dict(marks) if starts is None else {p: starts.get(p, 0) for p in marks}
        consumer.assign([TopicPartition(topic, p, begin[p]) for p in marks])
        positions = dict(begin)
        tail: dict[int, list[TailMessage]] = {p: [] for p in marks}
        deadline = _time.monotonic() + timeout_s
        last_message = _time.monotonic()
        while True:
            messages = consumer.consume(10_000, timeout=0.1)
            now = _time.monotonic()
            for message in messages:
                if message.error() is not None:
                    continue
                last_message = now
                partition, offset = message.partition(), message.offset()
                positions[partition] = offset + 1
                if starts is not None:
                    tail[partition].append(
                        TailMessage(
                            topic,
                            partition,
                            message.key(),
                            message.value(),
                            list(message.headers() or []),
                        )
                    )
            if messages:
                continue
            if all(positions[p] >= marks[p] for p in marks) and now - last_message >= IDLE_END_S:
                break
            if now > deadline:
                raise ConnectorError(
                    connector, f"could not read topic {topic!r} to its end within {timeout_s:g} s"
                )
            # Offsets taken by transaction markers never arrive as messages (asked only
            # when idle: the position may count messages fetched but not handed out).
            for tp in consumer.position([TopicPartition(topic, p) for p in marks]):
                if tp.offset >= 0:
                    positions[tp.partition] = max(positions[tp.partition], tp.offset)
    finally:
        consumer.close()
    return [m for partition in sorted(tail) for m in tail[partition]], positions


def topic_ends(
    settings: Mapping[str, Any], topic: str, connector: str, timeout_s: float
) -> dict[int, int]:
    """The offset after the last message of every partition of ``topic`` ({} if the topic
    does not exist yet)."""
    return read_to_end(settings, topic, None, connector, timeout_s)[1]


def read_tail(
    settings: Mapping[str, Any],
    topic: str,
    offsets: Mapping[int, int],
    connector: str,
    timeout_s: float,
) -> list[TailMessage]:
    """The messages of ``topic`` after ``offsets`` (a partition absent from it: all of it)."""
    return read_to_end(settings, topic, offsets, connector, timeout_s)[0]
