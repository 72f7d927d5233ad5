"""The Kafka reader: a confluent-kafka consumer feeding an input session.

One consumer per input, on the session's thread. In streaming mode it joins the consumer group
of ``group.id`` (``subscribe``, as Pathway does), so partitions are assigned by the group; in
static mode it is assigned every partition of the topic directly and stops at the end offsets
the topic had when the run started.

Several workers: each worker's reader is given its share (``keep_share``) and is assigned the
topic's partitions ``p`` with ``p % N == i`` directly, in both modes (no group rebalance: the
shares are fixed, disjoint and the same in every run, which per-worker checkpoints of the
partitions' offsets rely on). Partitions without a saved position start where the group's
committed offset or ``auto.offset.reset`` says, as with ``subscribe``. In streaming mode the
topic's partitions are looked up again every :data:`PARTITIONS_REFRESH_S`, so that a topic
created later, or partitions added to it, are read by their owners.

Offsets: each ``Data`` event holds the messages of one partition and carries the offset key
``(topic, partition)`` with the offset of the next message to read. With persistence, the
frontier of the last checkpoint is handed to :meth:`KafkaReader.seek`; when the group assigns
a partition, the consumer starts exactly there (whatever offset the group has committed), so a
restart neither skips nor repeats a checkpointed message. Partitions without a saved position
start at ``start_from_timestamp_ms`` if given, else where the group and ``auto.offset.reset``
say.

Commits: in streaming mode the reader itself asks for a commit (a ``Commit`` event) once
``autocommit_duration_ms`` has passed since its last one, so that commits follow each other
at that period and a message waits half of it on average. (The input session's own rule
counts the period from the first row waiting, which stretches the gap between commits by
the time the next fetch takes, and makes the first message after a quiet spell wait a whole
period.) A message arriving after a quiet spell longer than the period is committed at once,
and so are the messages waiting whenever the engine has processed everything this input
committed: the period then only bounds the wait while the engine is busy, and minibatches
grow with the load instead of following a timer. Pacing costs more minibatches per second;
when a paced commit comes a whole period late (the process is short of CPU), the reader follows the session's rule for a second instead (a
commit a period after the first message waiting: fewer, bigger minibatches).

The reader keeps the messages it takes until the commit is due and then hands them over at
once, one ``Data`` event per partition: a live topic arrives in many small fetches (one every
few milliseconds), and parsing and turning each of them into rows has a fixed cost that would
otherwise be paid per fetch instead of once per minibatch. For the same reason it waits for
the due commit with one ``consume`` call rather than waking up for every fetch. More than
:data:`BATCH_MESSAGES` kept messages are handed over at once.

A broker that cannot be reached when the run starts is retried per the shared retry policy
(``docs/retries.md``: backoff with jitter, for the outage limit), then the run fails with an
error naming the connector and the bootstrap address; mid-run, librdkafka reconnects by
itself. Settings (which may hold passwords) never appear in logs or errors.
"""

from __future__ import annotations

import collections
import logging
import time as _time
from collections.abc import Mapping
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from deltaflow.engine.boundary import ConnectorError
from deltaflow.io._core.base import (
    ENGINE_POLL_S,
    Commit,
    Data,
    Finished,
    OffsetAntichain,
    Reader,
    ReadEvent,
)
from deltaflow.io._core.retry import BackoffPolicy, Outage, OutageTooLong
from deltaflow.io.kafka._formats import MessagesContext

if TYPE_CHECKING:
    from deltaflow.engine.workers.inputs import WorkerShare

logger = logging.getLogger("deltaflow.io.kafka")

#: Messages taken from the consumer per call (a Data event per partition among them).
BATCH_MESSAGES = 20_000

_ERROR = methodcaller("error")
_PARTITION = methodcaller("partition")
_OFFSET = methodcaller("offset")
_KEY = methodcaller("key")
_VALUE = methodcaller("value")

#: How often a worker reading its share of a topic's partitions in streaming mode looks for
#: partitions it does not read yet (seconds).
PARTITIONS_REFRESH_S = 5.0

#: How long commits are left to the session's own rule after a paced one came a whole
#: period late (seconds; see ``KafkaReader._commit``).
PACING_PAUSE_S = 1.0


class KafkaSettingsError(ConnectorError, ValueError):
    """librdkafka refused a setting (an unknown property, a bad value): still a
    ``ValueError``, as the same mistake is in Pathway."""


def make_client(kind: Any, config: Mapping[str, Any], connector: str) -> Any:
    """A confluent-kafka Consumer/Producer; a refused setting is a :class:`KafkaSettingsError`
    (librdkafka's message names the property, never its value)."""
    from confluent_kafka import KafkaException

    try:
        return kind({**config, "logger": logger})
    except KafkaException as exc:
        reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        raise KafkaSettingsError(connector, f"rdkafka_settings refused: {reason}") from None


class _RateLimitedWarnings:
    """Logs a warning at most once per ``interval_s`` per kind (a broken broker repeats them)."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}

    def warn(self, kind: str, message: str, *args: Any) -> None:
        now = _time.monotonic()
        if now - self._last.get(kind, -1e9) >= self.interval_s:
            self._last[kind] = now
            logger.warning(message, *args)


class KafkaReader(Reader):
    """Consumes ``topic`` with ``settings`` (librdkafka settings, ``group.id`` included)."""

    poll_interval_s = 0.05

    def __init__(
        self,
        settings: Mapping[str, Any],
        topic: str,
        *,
        connector: str,
        static: bool,
        with_metadata: bool,
        start_from_timestamp_ms: int | None,
        policy: BackoffPolicy,
        limit_hint: str,
        commit_every_ms: int | None = None,
        with_keys: bool = True,
    ) -> None:
        self.settings = dict(settings)
        # Whether the messages' keys are taken (a Python call per message); False when the
        # parser never reads them (MessageParser.reads_keys): the groups' keys stay empty.
        self.with_keys = with_keys
        self.commit_every_s = None if commit_every_ms is None else commit_every_ms / 1000.0
        self._last_commit = -float("inf")  # monotonic time of the last Commit asked for
        self._uncommitted = False  # messages were handed over since then
        self._first_uncommitted = 0.0  # when the first of them was
        self._paced_again_at = 0.0  # pacing paused until then (the process fell behind)
        self.topic = topic
        self.connector = connector
        self.static = static
        self.with_metadata = with_metadata
        self.start_from_timestamp_ms = start_from_timestamp_ms
        self.bootstrap = str(self.settings.get("bootstrap.servers", "?"))
        self._connecting = Outage(
            policy,
            what=f"{connector}: the Kafka broker at {self.bootstrap}",
            hint=limit_hint,
            failing="stayed unreachable",
        )
        self._next_connect = 0.0
        self._resume: dict[tuple[str, int], int] = {}
        self._consumer: Any = None
        self._pending: collections.deque[ReadEvent] = collections.deque()
        # Messages taken and kept until the paced commit is due, per partition.
        self._kept: dict[tuple[str, int], MessagesContext] = {}
        self._kept_count = 0
        self._warnings = _RateLimitedWarnings()
        # Static mode: the offset each partition must reach, and where it is now.
        self._end_offsets: dict[tuple[str, int], int] = {}
        self._positions: dict[tuple[str, int], int] = {}
        # Several workers: this worker's share of the partitions, the partitions assigned so
        # far, when to look for new ones, and the messages read per partition (logged).
        self._share: WorkerShare | None = None
        self._assigned: set[int] = set()
        self._next_refresh = 0.0
        self.messages_read: collections.Counter[int] = collections.Counter()

    # --- Reader ---------------------------------------------------------------------------
    def keep_share(self, share: WorkerShare) -> None:
        """Read only the partitions of this worker's ``share``, assigned directly."""
        self._share = share

    def seek(self, frontier: OffsetAntichain) -> None:
        for key, offset in frontier.items():
            if isinstance(key, tuple | list) and len(key) == 2 and key[0] == self.topic:
                self._resume[(str(key[0]), int(key[1]))] = int(offset)

    def read(self) -> ReadEvent | None:
        if self._pending:
            return self._pending.popleft()
        if self._commit_in() == 0.0:  # before new messages: they would delay it
            if self._kept:
                self._hand_over_kept()
                return self._pending.popleft()
            return self._commit()
        if self._consumer is None and not self._connect():
            return None
        # _connect set it; a checker still sees the None tested above without the annotation
        consumer: Any = self._consumer
        if self._share is not None and not self.static and _time.monotonic() >= self._next_refresh:
            self._assign_share(consumer, self._topic_metadata(consumer))
        self._take(consumer.consume(BATCH_MESSAGES, timeout=0))
        if self._pending:
            return self._pending.popleft()
        if self._commit_in() == 0.0 and self._kept:  # a first message after a quiet spell
            self._hand_over_kept()
            return self._pending.popleft()
        if self.static and self._static_done():
            return Finished()
        return None

    def _hand_over_kept(self) -> None:
        """Queue the kept messages as Data events, one per partition."""
        for key, group in self._kept.items():
            self._pending.append(self._data(key, group))
        self._kept = {}
        self._kept_count = 0

    def _data(self, key: tuple[str, int], group: MessagesContext) -> Data:
        """The Data event of one partition's messages (counted per partition)."""
        self.messages_read[key[1]] += len(group.offsets)
        return Data(group, offset=(key, group.offsets[-1] + 1))

    def _keeps(self) -> bool:
        """Whether taken messages are kept until the commit (streaming mode)."""
        return self.commit_every_s is not None

    def _commit(self) -> Commit:
        """Ask for the commit due now. When a paced one comes a whole period late (this
        thread did not get the CPU in time, or the engine held it back), pace no more for a
        while: the session's rule then makes fewer, bigger minibatches, which costs less per
        row and lets a starved process catch up."""
        assert self.commit_every_s is not None
        now = _time.monotonic()
        if now >= self._paced_again_at:
            due = max(self._last_commit + self.commit_every_s, self._first_uncommitted)
            if now - due > self.commit_every_s:
                self._paced_again_at = now + PACING_PAUSE_S
        self._uncommitted = False
        self._last_commit = now
        return Commit()

    def _commit_in(self) -> float | None:
        """Seconds until the next commit is due (0: now); None when there is nothing to
        commit or the session commits by its own rule (static mode). A commit is due at once
        when the engine has processed everything this input committed: waiting for the
        period would only add latency (``autocommit_duration_ms`` is the longest wait)."""
        if not self._uncommitted or self.commit_every_s is None:
            return None
        if self.engine_idle():
            return 0.0
        now = _time.monotonic()
        if now < self._paced_again_at:  # paused: a period after the first message waiting
            return max(0.0, self._first_uncommitted + self.commit_every_s - now)
        return max(0.0, self._last_commit + self.commit_every_s - now)

    def wait(self, timeout: float) -> None:
        due = self._commit_in()
        if due is not None:
            if due == 0.0:
                return
            timeout = min(timeout, due)
        if self._consumer is None or self._pending:
            _time.sleep(min(timeout, self.poll_interval_s))
            return
        if self._kept and due is not None:
            # A commit is due soon and will take whatever comes until then: one call,
            # which returns when the commit is due (or a whole batch is there), or sooner
            # to see whether the busy engine has caught up (then the commit is due at once).
            if self.engine is not None:
                timeout = min(timeout, ENGINE_POLL_S)
            self._take(self._consumer.consume(BATCH_MESSAGES, timeout=max(timeout, 0.001)))
            return
        # ``consume(n, timeout)`` waits for n messages or the timeout, so wait for one message
        # (it returns as soon as one is there), then take what else has arrived.
        first = self._consumer.consume(1, timeout=max(timeout, 0.001))
        if first:
            self._take(first + self._consumer.consume(BATCH_MESSAGES, timeout=0))

    def close(self) -> None:
        if self._share is not None:
            logger.info(
                "%s: worker %d of %d read partitions %s (messages per partition: %s)",
                self.connector,
                self._share.index,
                self._share.count,
                sorted(self._assigned),
                dict(sorted(self.messages_read.items())),
            )
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                consumer.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the outcome
                logger.warning("%s: closing the consumer failed: %s", self.connector, exc)

    # --- connecting -------------------------------------------------------------------------
    def _connect(self) -> bool:
        """One attempt to reach the broker; True once the consumer is subscribed/assigned."""
        from confluent_kafka import Consumer, KafkaException

        if _time.monotonic() < self._next_connect:
            return False  # backing off after a failed attempt
        config = dict(self.settings)
        if self.static:
            config.setdefault("enable.auto.commit", False)
        consumer = make_client(Consumer, config, self.connector)
        try:
            metadata = consumer.list_topics(self.topic, timeout=1.0)
        except KafkaException as exc:
            consumer.close()
            reason = str(exc.args[0].str() if exc.args else exc)
            try:
                wait = self._connecting.failed(reason)
            except OutageTooLong as too_long:
                raise ConnectorError(
                    self.connector,
                    f"cannot reach the Kafka broker at {self.bootstrap}: {too_long.detail}",
                ) from None
            self._next_connect = _time.monotonic() + wait
            self._warnings.warn(
                "connect",
                "%s: the Kafka broker at %s is not reachable yet (%s); retrying",
                self.connector,
                self.bootstrap,
                reason,
            )
            return False
        self._connecting.succeeded()
        self._consumer = consumer
        if self.static:
            self._assign_all(consumer, metadata)
        elif self._share is not None:
            self._assign_share(consumer, metadata)
        else:
            consumer.subscribe([self.topic], on_assign=self._on_assign)
        return True

    def _partitions(self, metadata: Any) -> list[int]:
        """The topic's partitions this reader reads (its share of them, with a share)."""
        topic = None if metadata is None else metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            return []
        share = self._share
        return sorted(p for p in topic.partitions if share is None or share.owns_partition(p))

    def _topic_metadata(self, consumer: Any) -> Any:
        """The topic's metadata, or None when the broker does not answer now (the next
        refresh asks again; librdkafka reconnects by itself)."""
        from confluent_kafka import KafkaException

        try:
            return consumer.list_topics(self.topic, timeout=1.0)
        except KafkaException as exc:
            self._warnings.warn(
                "metadata", "%s: looking up the topic's partitions failed: %s", self.connector, exc
            )
            return None

    def _assign_share(self, consumer: Any, metadata: Any) -> None:
        """Streaming, several workers: add this worker's partitions not assigned yet."""
        from confluent_kafka import TopicPartition

        self._next_refresh = _time.monotonic() + PARTITIONS_REFRESH_S
        new = [
            TopicPartition(self.topic, p)
            for p in self._partitions(metadata)
            if p not in self._assigned
        ]
        if not new:
            return
        self._start_positions(consumer, new, default_beginning=False)
        consumer.incremental_assign(new)
        self._assigned.update(tp.partition for tp in new)
        share = self._share
        assert share is not None  # only readers given a share assign it
        logger.info(
            "%s: worker %d of %d reads partitions %s",
            self.connector,
            share.index,
            share.count,
            sorted(self._assigned),
        )

    def _assign_all(self, consumer: Any, metadata: Any) -> None:
        from confluent_kafka import TopicPartition

        assignment = [TopicPartition(self.topic, p) for p in self._partitions(metadata)]
        self._assigned.update(tp.partition for tp in assignment)
        for tp in assignment:
            low, high = consumer.get_watermark_offsets(tp, timeout=5.0, cached=False)
            self._end_offsets[(self.topic, tp.partition)] = high
            self._positions[(self.topic, tp.partition)] = low
        self._start_positions(consumer, assignment, default_beginning=True)
        consumer.assign(assignment)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self._start_positions(consumer, partitions, default_beginning=False)
        consumer.assign(partitions)

    def _start_positions(
        self, consumer: Any, partitions: list[Any], *, default_beginning: bool
    ) -> None:
        """Set where each partition starts: the checkpoint, the timestamp, or the default."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        by_time = []
        for tp in partitions:
            saved = self._resume.get((tp.topic, tp.partition))
            if saved is not None:
                tp.offset = saved
            elif self.start_from_timestamp_ms is not None:
                by_time.append(tp)
            elif default_beginning:
                tp.offset = OFFSET_BEGINNING
        if by_time:
            assert self.start_from_timestamp_ms is not None  # only then is by_time filled
            found = consumer.offsets_for_times(
                [
                    TopicPartition(tp.topic, tp.partition, self.start_from_timestamp_ms)
                    for tp in by_time
                ],
                timeout=10.0,
            )
            for tp, result in zip(by_time, found, strict=True):
                # -1: no message at or after the timestamp, i.e. start at the end.
                tp.offset = result.offset if result.offset >= 0 else self._end_offset(consumer, tp)
        for tp in partitions:
            if tp.offset >= 0:
                self._positions[(tp.topic, tp.partition)] = tp.offset

    @staticmethod
    def _end_offset(consumer: Any, tp: Any) -> int:
        return int(consumer.get_watermark_offsets(tp, timeout=5.0, cached=False)[1])

    # --- messages ----------------------------------------------------------------------------
    def _take(self, messages: list[Any]) -> None:
        """Group consumed messages per partition (in order): kept until the commit when
        pacing, else queued as Data events at once."""
        if not messages:
            return
        keep = self._keeps()
        groups = self._kept if keep else {}
        taken = 0 if self.with_metadata else self._take_one_partition(messages, groups)
        if not taken:
            taken = self._take_each(messages, groups)
        if not taken:
            return
        for key, group in groups.items():
            after = group.offsets[-1] + 1
            self._positions[key] = after
            # A partition taken away by a rebalance and given back later resumes here (its
            # rows read so far are in the session or kept here already), not at an older
            # position.
            self._resume[key] = after
        if keep and not self._uncommitted:
            self._uncommitted = True
            self._first_uncommitted = _time.monotonic()
        if not keep:
            for key, group in groups.items():
                self._pending.append(self._data(key, group))
            return
        self._kept_count += taken
        if self._kept_count >= BATCH_MESSAGES:  # parse these while more come
            self._hand_over_kept()

    def _take_each(
        self, messages: list[Any], groups: dict[tuple[str, int], MessagesContext]
    ) -> int:
        """Add each message to its partition's group (errors are reported and skipped);
        the number of messages added."""
        metadata = self.with_metadata
        keys = self.with_keys
        topic = self.topic  # the only topic subscribed to or assigned
        taken = 0
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_error(error)
                continue
            key = (topic, message.partition())
            group = groups.get(key)
            if group is None:
                group = groups[key] = MessagesContext(topic, key[1], [], [], [])
            group.offsets.append(message.offset())
            if keys:
                group.keys.append(message.key())
            group.values.append(message.value())
            if metadata:
                kind, stamp = message.timestamp()
                group.timestamps.append(stamp if kind else None)
                group.headers.append(message.headers())
            taken += 1
        return taken

    def _take_one_partition(
        self, messages: list[Any], groups: dict[tuple[str, int], MessagesContext]
    ) -> int:
        """The usual fetch, messages of one partition without errors, taken a list at a time
        rather than message by message (a few C calls instead of a Python loop over five
        method calls per message); 0 when the fetch is not like that."""
        if list(map(_ERROR, messages)).count(None) != len(messages):
            return 0
        partitions = list(map(_PARTITION, messages))
        if partitions.count(partitions[0]) != len(partitions):
            return 0
        key = (self.topic, partitions[0])
        group = groups.get(key)
        if group is None:
            group = groups[key] = MessagesContext(self.topic, key[1], [], [], [])
        group.offsets.extend(map(_OFFSET, messages))
        if self.with_keys:
            group.keys.extend(map(_KEY, messages))
        group.values.extend(map(_VALUE, messages))
        return len(messages)

    def _on_error(self, error: Any) -> None:
        from confluent_kafka import KafkaError

        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise ConnectorError(self.connector, f"Kafka consumer failed: {error.str()}")
        self._warnings.warn(
            f"consume-{error.code()}", "%s: Kafka reports: %s", self.connector, error.str()
        )

    def _static_done(self) -> bool:
        waiting = [
            key for key, end in self._end_offsets.items() if self._positions.get(key, 0) < end
        ]
        if not waiting:
            return True
        # Offsets may have gaps the consumer never sees as messages (transaction markers,
        # compacted records): librdkafka's own position moves past them.
        from confluent_kafka import TopicPartition

        positions = self._consumer.position([TopicPartition(t, p) for t, p in waiting])
        for tp in positions:
            if tp.offset >= 0:
                key = (tp.topic, tp.partition)
                self._positions[key] = max(self._positions.get(key, 0), tp.offset)
        return all(self._positions.get(key, 0) >= self._end_offsets[key] for key in waiting)
