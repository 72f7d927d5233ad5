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

On several workers (the output written on every worker, each its share: see
``engine/workers/placement.py``) each worker's producer records its own position, and the
checkpoint keeps their merge (:func:`merge_positions`): per partition the lowest of the
workers' offsets, and the checkpointed time. Two workers' messages interleave in a
partition, so the tail is what lies after those offsets *with a later time*
(:func:`read_tail` with ``after_time``): every message of a time up to the checkpoint was
acknowledged on every worker before it was taken. After a restart, on any number of workers,
every worker reads that whole tail (before any of them writes) and skips what it produces
again; worker 0 then settles it for all of them (:meth:`TailReplay.compensations`): for each
distinct change, the copies all workers skipped are counted against the copies in the tail,
and the difference is retracted (skipped fewer) or written again (skipped more: two workers
skipped the same copy). A message's key is its row's id unless the output sets ``key=``, and
a row id is held by one worker, so only one worker ever skips a given message of the tail.

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


def time_of(headers: list[tuple[str, bytes | None]]) -> int | None:
    """The time a message's ``pathway_time`` header holds (None: no such header)."""
    text = next((v for n, v in headers if n == TIME_HEADER), None)
    try:
        return int(text) if text else None
    except ValueError:
        return None


def retraction(
    fmt: str, message: TailMessage, time: int, delimiter: str, *, negate: bool = True
) -> tuple[bytes | None, list[tuple[str, bytes | None]]] | None:
    """The value and headers of the change opposite to ``message`` (``negate=False``: the
    same change again), at ``time``; None for a message that is no change (a dsv header line,
    a message without ``pathway_diff``)."""
    diff_text = next((v for n, v in message.headers if n == DIFF_HEADER), None)
    try:
        diff = int(diff_text) if diff_text is not None else None
    except ValueError:
        diff = None
    if diff is None:
        return None
    diff_out = -diff if negate else diff
    new_time, new_diff = str(time).encode(), str(diff_out).encode()
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
        document["diff"] = diff_out
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
        self.tail = tail
        # Per distinct change, the positions in ``tail`` of its copies not yet matched.
        self._left: dict[Fingerprint, collections.deque[int]] = {}
        self._prints: list[Fingerprint] = []
        for index, message in enumerate(tail):
            print_ = fingerprint(
                fmt, delimiter, message.topic, message.key, message.value, message.headers
            )
            self._prints.append(print_)
            self._left.setdefault(print_, collections.deque()).append(index)
        self.size = len(tail)
        self.matched = 0
        self.retracted = 0
        #: The positions in ``tail`` of the messages matched here (produced again).
        self.matched_indices: list[int] = []

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
        self.matched_indices.append(found.popleft())
        self.matched += 1
        return True

    def due(self) -> bool:
        """Whether the rest of the tail should be retracted now."""
        return self.pending > 0 and _time.monotonic() - self.started >= REPLAY_WINDOW_S

    def settle_due(self, others_matched: int) -> bool:
        """Whether worker 0 should settle a tail read by several workers now: every copy
        matched somewhere (``others_matched``: by the other workers), or the window over."""
        return (
            self.matched + others_matched >= self.size
            or _time.monotonic() - self.started >= REPLAY_WINDOW_S
        )

    def retractions(
        self, time: int
    ) -> list[tuple[TailMessage, bytes | None, list[tuple[str, bytes | None]]]]:
        """The opposite changes of the tail messages not produced again, at ``time``; the
        replay is over after this."""
        out = []
        for queue in self._left.values():
            for index in queue:
                message = self.tail[index]
                opposite = retraction(self.fmt, message, time, self.delimiter)
                if opposite is not None:
                    out.append((message, *opposite))
        self.retracted = self.size - self.matched
        self._left.clear()
        return out

    def compensations(
        self, matched: list[list[int]], time: int
    ) -> list[tuple[TailMessage, bytes | None, list[tuple[str, bytes | None]]]]:
        """Settle the tail for all the workers that read it (on worker 0, which holds it as
        every worker does): ``matched`` holds, per worker, the positions in the tail of the
        messages it matched. For each distinct change, the copies in the tail are compared
        with the copies matched anywhere: the missing ones are retracted, the extra ones (two
        workers matched the same copy) written again, at ``time``. The replay is over after
        this."""
        copies: dict[Fingerprint, list[int]] = {}
        for index, print_ in enumerate(self._prints):
            copies.setdefault(print_, []).append(index)
        taken: collections.Counter[Fingerprint] = collections.Counter()
        anywhere: set[int] = set()
        for indices in matched:
            anywhere.update(indices)
            taken.update(self._prints[i] for i in indices)
        out = []
        retracted = 0
        for print_, indices in copies.items():
            surplus = len(indices) - taken[print_]
            if surplus == 0:
                continue
            # Retract copies nobody matched first (they differ only in partition and time).
            ordered = sorted(indices, key=lambda i: i in anywhere)
            for index in ordered[: abs(surplus)]:
                change = retraction(
                    self.fmt, self.tail[index], time, self.delimiter, negate=surplus > 0
                )
                if change is not None:
                    out.append((self.tail[index], *change))
                    retracted += 1 if surplus > 0 else 0
        self.matched = sum(len(indices) for indices in matched)
        self.retracted = retracted
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


def merge_positions(positions: list[Any], time: int) -> Any:
    """One position for the checkpoint of ``time`` from the positions of the workers that
    write the output (None entries: workers that wrote nothing yet): per partition the lowest
    offset (every worker's messages after its own offset are of later times), ``time`` (the
    tail is what comes after the offsets *and* after that time: two workers' messages
    interleave), and each worker's own offsets, for the record. A position without a time (the
    ends of the topic before the run wrote anything) keeps the merge without one."""
    given = [p for p in positions if isinstance(p, dict)]
    if not given:
        return None
    if len(given) == 1 and len(positions) == 1:
        return given[0]
    offsets: dict[str, int] = {}
    for position in given:
        for partition, offset in position.get("offsets", {}).items():
            offsets[partition] = min(int(offset), offsets.get(partition, int(offset)))
    # A partition some worker has no offset for (created after it started): from its start.
    for position in given:
        for partition in offsets:
            if partition not in position.get("offsets", {}):
                offsets[partition] = 0
    timed = all(p.get("time") is not None for p in given)
    return {
        "topic": given[0].get("topic"),
        "offsets": offsets,
        "time": time if timed else None,
        "workers": [p.get("offsets", {}) for p in given],
    }


def read_to_end(
    settings: Mapping[str, Any],
    topic: str,
    starts: Mapping[int, int] | None,
    connector: str,
    timeout_s: float,
    after_time: int | None = None,
) -> tuple[list[TailMessage], dict[int, int]]:
    """The messages of ``topic`` after ``starts`` (per partition; a partition absent from it:
    from its start; ``starts=None``: from the high watermarks, to find the true ends) and the
    offset after the last message of each partition. With ``after_time``, only the messages
    of later times (or without a time) are kept.

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
                headers = list(message.headers() or [])
                if starts is not None and _later(headers, after_time):
                    tail[partition].append(
                        TailMessage(
                            topic,
                            partition,
                            message.key(),
                            message.value(),
                            headers,
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


def _later(headers: list[tuple[str, bytes | None]], after_time: int | None) -> bool:
    """Whether a message belongs after a checkpoint of ``after_time`` (None: any does)."""
    if after_time is None:
        return True
    time = time_of(headers)
    return time is None or time > after_time


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
    after_time: int | None = None,
) -> tuple[list[TailMessage], dict[int, int]]:
    """The messages of ``topic`` after ``offsets`` (a partition absent from it: all of it),
    of times after ``after_time`` when given, and the offsets after the topic's last
    messages."""
    return read_to_end(settings, topic, offsets, connector, timeout_s, after_time)
