"""The Kafka writer: a confluent-kafka producer behind an output session.

Each time's messages are handed to librdkafka as they come; it batches and sends them. The
writer does not wait for the broker's acknowledgements at every time (a round trip per time
would cap the number of times per second, and so the latency, at the broker's pace): a thread
serves the acknowledgements, and :meth:`KafkaWriter.durable_time` tells persistence the last
time whose messages are all acknowledged, so a checkpoint never covers a message that could
still be lost. The end of the run waits for every acknowledgement. A message the broker
refuses (after librdkafka's own retries, bounded by ``message.timeout.ms``) fails the run with
an error naming the connector.

With persistence, a checkpoint records the offsets the topic's partitions had reached at the
checkpointed time, and a run resuming after a crash replays what the crashed run wrote after
them instead of doubling it (``_replay.py``, docs/kafka.md). On several workers every worker
records its own offsets, the checkpoint their merge, and worker 0 settles the crashed tail
for all of them (:meth:`KafkaWriter.settle_shared`).

Only persistence asks which times are acknowledged and where the topic stood. So only when
persistence records this output (``Writer.persisted``) does every message get its own
delivery callback (a Python call per message on the acknowledgements' thread); otherwise the
producer reports failed messages alone (``delivery.report.only.error``) to one callback, which
fails the run as before, and the end of the run still waits for every acknowledgement.
"""

from __future__ import annotations

import collections
import logging
import threading
import time as _time
from collections import deque
from collections.abc import Iterable, Mapping
from itertools import repeat
from operator import length_hint
from typing import Any

from deltaflow.engine.boundary import ConnectorError
from deltaflow.io._core.base import Writer
from deltaflow.io._core.retry import BackoffPolicy, OutageTooLong, call_with_retries
from deltaflow.io.kafka._formats import Messages
from deltaflow.io.kafka._reader import make_client
from deltaflow.io.kafka._replay import TailReplay, merge_positions, read_tail, topic_ends

logger = logging.getLogger("deltaflow.io.kafka")

TAIL_TIMEOUT_S = 60.0
"""How long a resuming writer may take to read the end offsets and the crashed run's tail."""


#: Consumer settings a producer does not use: dropped (the same settings often serve both a
#: read and a write), rather than have librdkafka warn about each of them.
_CONSUMER_ONLY = frozenset(
    {
        "group.id",
        "group.instance.id",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "auto.offset.reset",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "enable.auto.offset.store",
        "partition.assignment.strategy",
        "max.poll.interval.ms",
        "group.protocol",
        "group.remote.assignor",
        "enable.partition.eof",
        "check.crcs",
        "fetch.min.bytes",
        "fetch.max.bytes",
        "fetch.wait.max.ms",
        "fetch.error.backoff.ms",
        "fetch.message.max.bytes",
        "max.partition.fetch.bytes",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "isolation.level",
        "coordinator.query.interval.ms",
    }
)


#: How long librdkafka waits for more messages before it sends a batch, unless the settings
#: say (``linger.ms`` or its alias ``queue.buffering.max.ms``): librdkafka's own default, set
#: explicitly. 1 ms made a minibatch's first messages leave sooner (p50 ~3 ms lower up to 20k
#: messages/s), but from 20k/s on the p95 was higher in 7 of 8 paired runs (50k/s: 58-180 ms
#: against 48-108): with a request to the broker every millisecond, librdkafka's sender
#: competes with the writer's ``produce`` loop for the partition's queue while that loop
#: holds the GIL, and the broker serves five times as many requests.
DEFAULT_LINGER_MS = 5
_LINGER_SETTINGS = frozenset({"linger.ms", "queue.buffering.max.ms"})

#: ``produce``'s partition for "the partitioner chooses" (librdkafka's RD_KAFKA_PARTITION_UA).
_ANY_PARTITION = -1


class _TimeAcks:
    """Acknowledgements of one time's messages. ``produced`` is counted by the output thread,
    ``acked`` by the thread serving delivery reports: each counter has a single writer."""

    __slots__ = ("acked", "cumulative", "offsets", "owner", "produced", "time")

    def __init__(self, owner: KafkaWriter) -> None:
        self.owner = owner
        self.produced = 0
        self.acked = 0
        self.time: int | None = None
        self.offsets: dict[int, int] = {}  # partition of the fixed topic -> next offset
        self.cumulative: dict[int, int] | None = None  # all times up to this one

    def __call__(self, error: Any, message: Any) -> None:
        if error is not None:
            # Not counted: a time holding a lost message never becomes durable, so no
            # checkpoint covers it before the run stops on the failure.
            if self.owner._failure is None:
                self.owner._failure = error.str()
            return
        if message.topic() == self.owner.topic:
            partition, after = message.partition(), message.offset() + 1
            if after > self.offsets.get(partition, -1):
                self.offsets[partition] = after
        self.acked += 1

    @property
    def complete(self) -> bool:
        return self.acked >= self.produced


def _time_of(headers: list[tuple[str, bytes | None]]) -> int:
    """The time a message's ``pathway_time`` header holds."""
    text = next((v for n, v in headers if n == "pathway_time"), None)
    return int(text) if text else 0


class KafkaWriter(Writer):
    """Produces :class:`Messages` to ``topic`` (or each message's own topic)."""

    inline = True  # produce() only queues the message for librdkafka's own threads

    def __init__(
        self,
        settings: Mapping[str, Any],
        topic: str | None,
        *,
        connector: str,
        policy: BackoffPolicy,
        limit_hint: str,
        fmt: str = "json",
        delimiter: str = ",",
    ) -> None:
        self.settings = {k: v for k, v in settings.items() if k not in _CONSUMER_ONLY}
        self.topic = topic
        self.fmt = fmt
        self.delimiter = delimiter
        # On several workers, each writes the messages of the rows it holds (a topic takes
        # any number of producers) — except a DSV stream, whose one header line must come
        # first: it is written by worker 0 alone.
        self.several_writers = fmt != "dsv"
        self._cumulative: dict[int, int] = {}  # acked offsets of durable times
        self._last_flushed: _TimeAcks | None = None
        self._replay: TailReplay | None = None  # a resumed run's crashed tail
        #: Written by several workers in a persisted run (set by persistence before
        #: :meth:`resume`): the crashed tail is settled by worker 0 for all of them.
        self.shared_replay = False
        self.connector = connector
        self.policy = policy
        self.limit_hint = limit_hint
        self.bootstrap = str(self.settings.get("bootstrap.servers", "?"))
        self._producer: Any = None
        self._failure: str | None = None
        self._current: _TimeAcks | None = None  # the time being written
        self._lock = threading.Lock()
        self._flushed: collections.deque[_TimeAcks] = collections.deque()
        self._durable: int | None = None
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None
        # Whether each time's acknowledgements are counted (persistence records this output);
        # decided when the producer is made.
        self._tracked = True

    def producer_settings(self) -> dict[str, Any]:
        """The producer's librdkafka settings: the given ones, with :data:`DEFAULT_LINGER_MS`
        unless they set how long to linger, and delivery reports for every message when
        persistence records this output, else for failed ones only."""
        config = dict(self.settings)
        if not _LINGER_SETTINGS & config.keys():
            config["linger.ms"] = DEFAULT_LINGER_MS
        config["delivery.report.only.error"] = not self.persisted
        return config

    def _open(self) -> Any:
        from confluent_kafka import KafkaException, Producer

        self._tracked = self.persisted
        config = self.producer_settings()
        if not self._tracked:
            config["on_delivery"] = self._on_failed_delivery
        producer = make_client(Producer, config, self.connector)

        def reason(exc: BaseException) -> str:
            return str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc)

        try:
            call_with_retries(
                lambda: producer.list_topics(timeout=1.0),
                policy=self.policy,
                is_transient=lambda exc: isinstance(exc, KafkaException),
                describe=reason,
                hint=self.limit_hint,
                failing="stayed unreachable",
                what=f"{self.connector}: the Kafka broker at {self.bootstrap}",
            )
        except OutageTooLong as exc:
            raise ConnectorError(
                self.connector, f"cannot reach the Kafka broker at {self.bootstrap}: {exc.detail}"
            ) from None
        self._poller = threading.Thread(
            target=self._serve_reports,
            args=(producer,),
            name=f"deltaflow-kafka-acks-{self.topic}",
            daemon=True,
        )
        self._poller.start()
        return producer

    def _on_failed_delivery(self, error: Any, message: Any) -> None:
        """The producer's report of a message it could not deliver (untracked mode)."""
        if error is not None and self._failure is None:
            self._failure = error.str()

    def _serve_reports(self, producer: Any) -> None:
        """Runs the delivery callbacks (the only caller of ``poll`` while the run goes on)."""
        while not self._stop_polling.is_set():
            producer.poll(0.05)

    def write(self, payload: Messages) -> None:
        if self._producer is None:
            self._producer = self._open()
        self._check()
        replay = self._replay
        if (
            replay is not None
            and not self.shared_replay
            and self._current is None
            and replay.due()
            and payload.headers
        ):
            # A new time: retract the rest of the crashed tail before its changes, so that
            # a consumer keeping the last change of each key ends with the right one.
            self._end_replay(_time_of(payload.headers[0]))
            replay = None
        topics = payload.topics
        if self._tracked and self._current is None:
            self._current = _TimeAcks(self)
        # Tracked: each message reports to its time's acknowledgements; untracked, nobody asks
        # which times are acknowledged: failures alone are reported (to _on_failed_delivery),
        # and close() waits for the acknowledgements.
        acks = self._current if self._tracked else None
        if replay is None:
            # The usual case: every message is produced, with no Python loop per message.
            if acks is not None:
                # Counted before they are produced: a time is never complete too early.
                acks.produced += len(payload.keys)
            self._produce_all(payload, acks)
            return
        assert acks is not None  # only a persisted (so tracked) output replays a tail
        produce = self._producer.produce
        rows = zip(payload.keys, payload.values, payload.headers, strict=True)
        for index, (key, value, headers) in enumerate(rows):
            topic = topics[index] if topics is not None else self.topic
            if replay.already_written(topic, key, value, headers):
                continue  # the crashed run wrote it after the checkpoint
            acks.produced += 1
            try:
                produce(topic, value, key, headers=headers, on_delivery=acks)
            except BufferError:
                self._produce_when_room(topic, value, key, headers, acks)

    def _produce_all(self, payload: Messages, acks: _TimeAcks | None) -> None:
        """Hand every message of ``payload`` to librdkafka, waiting for room in its queue
        when it is full (``acks`` None: untracked, only a failure is reported).

        ``produce`` is called by ``map`` with positional arguments only: a Python loop with
        keyword arguments costs about twice as much per message (~1.2 against ~0.5 us), and a
        word count writes two messages per changed count. The positions are those of
        confluent-kafka's ``produce`` (topic, value, key, partition, callback, on_delivery,
        timestamp, headers): partition -1 lets the partitioner choose, timestamp 0 is now."""
        count = len(payload.keys)
        if len(payload.values) != count or len(payload.headers) != count:
            raise ValueError("a batch of messages needs as many values and headers as keys")
        topics: Iterable[str | None] = (
            payload.topics if payload.topics is not None else repeat(self.topic, count)
        )
        arguments = [
            iter(topics),
            iter(payload.values),
            iter(payload.keys),
            repeat(_ANY_PARTITION),
            repeat(acks),
            repeat(None),
            repeat(0),
            iter(payload.headers),
        ]
        keys = arguments[2]
        while True:
            try:
                deque(map(self._producer.produce, *arguments), maxlen=0)
                return
            except BufferError:  # librdkafka's queue is full: let it send first
                # ``map`` took the message's arguments from every iterator before the call
                # failed: the one that failed is the last taken, the rest is still there.
                index = count - length_hint(keys) - 1
                topic = payload.topics[index] if payload.topics is not None else self.topic
                self._produce_when_room(
                    topic, payload.values[index], payload.keys[index], payload.headers[index], acks
                )

    def _produce_when_room(
        self,
        topic: str | None,
        value: bytes | None,
        key: bytes | None,
        headers: list[tuple[str, bytes | None]],
        acks: _TimeAcks | None,
    ) -> None:
        """Produce one message once librdkafka's full queue has room again (``acks`` None:
        untracked, only a failure is reported)."""
        while True:
            _time.sleep(0.005)
            self._check()
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=acks)
                return
            except BufferError:
                continue

    def flush(self, time: int) -> None:
        self._check()
        if not (self._tracked if self._producer is not None else self.persisted):
            return  # untracked: no time's acknowledgements are waited for
        replay = self._replay
        if replay is not None and not self.shared_replay and (replay.pending == 0 or replay.due()):
            self._end_replay(time)
        acks, self._current = self._current, None
        if acks is None:
            acks = _TimeAcks(self)
        acks.time = time
        with self._lock:
            self._flushed.append(acks)
            self._last_flushed = acks

    def durable_time(self) -> Any:
        with self._lock:
            while self._flushed and self._flushed[0].complete:
                acks = self._flushed.popleft()
                for partition, after in acks.offsets.items():
                    if after > self._cumulative.get(partition, -1):
                        self._cumulative[partition] = after
                acks.cumulative = dict(self._cumulative)
                self._durable = acks.time
            # A resumed run holds checkpoints back until the crashed tail is settled: a
            # crash meanwhile must find the same checkpoint and the same tail.
            return None if self._replay is not None else self._durable

    # --- persistence ------------------------------------------------------------------------
    def position(self) -> Any:
        """The acknowledgements of the last flushed time (their offsets become known when
        the time is durable, see :meth:`export_position`); before any flush, the end offsets
        the topic has now. None (no undo: at-least-once) for a topic per row."""
        if self.topic is None:
            return None
        with self._lock:
            last = self._last_flushed
        if last is not None:
            return last
        ends = topic_ends(self.settings, self.topic, self.connector, TAIL_TIMEOUT_S)
        with self._lock:
            self._cumulative = dict(ends)
        return {"topic": self.topic, "offsets": {str(p): o for p, o in ends.items()}}

    def export_position(self, position: Any) -> Any:
        if not isinstance(position, _TimeAcks):
            return position
        offsets = position.cumulative
        if offsets is None:  # not durable yet: cannot happen for a checkpointed time
            with self._lock:
                offsets = dict(self._cumulative)
        return {
            "topic": self.topic,
            "offsets": {str(p): o for p, o in offsets.items()},
            "time": position.time,
        }

    def merge_positions(self, positions: list[Any], time: int) -> Any:
        """The position of a checkpoint of ``time`` from every worker's (``_replay.py``)."""
        return merge_positions(positions, time)

    def resume(self, position: Any) -> None:
        """Read what the crashed run wrote after ``position``, to replay it (_replay.py)."""
        if (
            not isinstance(position, dict)
            or position.get("topic") != self.topic
            or self.topic is None
        ):
            return
        offsets = {int(p): int(o) for p, o in position.get("offsets", {}).items()}
        after = position.get("time")
        tail, ends = read_tail(
            self.settings,
            self.topic,
            offsets,
            self.connector,
            TAIL_TIMEOUT_S,
            after_time=int(after) if after is not None else None,
        )
        # Everything up to the ends is settled before the next checkpoint (held back until
        # then), so this run's positions start from them.
        self._cumulative = {**offsets, **ends}
        if tail:
            self._replay = TailReplay(self.fmt, self.delimiter, tail)
            logger.info(
                "%s: the crashed run wrote %d message(s) after the checkpoint; "
                "equal ones the restarted run produces are not written again%s",
                self.connector,
                len(tail),
                " (settled by worker 0 for every worker)" if self.shared_replay else "",
            )

    # --- a crashed tail shared by several workers --------------------------------------------
    def shared_tail(self) -> TailReplay | None:
        """The crashed tail this worker still matches (several workers), or None."""
        return self._replay if self.shared_replay else None

    def end_shared_replay(self) -> list[int]:
        """On a worker other than 0, at the time worker 0 settles the tail: stop matching it;
        the positions in the tail of the messages this worker did not write again."""
        replay, self._replay = self._replay, None
        if replay is None:
            return []
        logger.info(
            "%s: %d message(s) of the crashed tail not written again here",
            self.connector,
            replay.matched,
        )
        return replay.matched_indices

    def settle_shared(self, matched: list[list[int]], time: int) -> None:
        """On worker 0, at a time every worker has finished (``time``; none in progress):
        settle the crashed tail for every worker (``matched``: the other workers' matched
        positions, see :meth:`TailReplay.compensations`). The compensating messages are
        acknowledged before this returns and counted in the positions of ``time`` and
        later, so no checkpoint can cover the crashed tail without them."""
        replay = self._replay
        if replay is None:
            return
        changes = replay.compensations([replay.matched_indices, *matched], time)
        acks = _TimeAcks(self)
        if changes:
            if self._producer is None:
                self._producer = self._open()
            for message, value, headers in changes:
                acks.produced += 1
                self._produce_to(
                    message.topic, value, message.key, headers, message.partition, acks
                )
            while self._producer.flush(1.0) > 0:
                self._check()
        elif self._producer is not None:
            while self._producer.flush(1.0) > 0:  # every time before it acknowledged
                self._check()
        self._check()
        self.durable_time()  # every flushed time is complete now: fold their offsets
        with self._lock:
            for partition, after in acks.offsets.items():
                if after > self._cumulative.get(partition, -1):
                    self._cumulative[partition] = after
            last = self._last_flushed
            if last is not None and last.cumulative is not None:
                last.cumulative = dict(self._cumulative)
            self._replay = None
        logger.info(
            "%s: the crashed run's tail is settled for every worker: %d message(s) not "
            "written again, %d retracted, %d written again",
            self.connector,
            replay.matched,
            replay.retracted,
            len(changes) - replay.retracted,
        )

    def _end_replay(self, time: int) -> None:
        """Retract what the crashed run wrote and the restarted one did not write again."""
        replay, self._replay = self._replay, None
        assert replay is not None
        retractions = replay.retractions(time)
        if retractions:
            if self._producer is None:
                self._producer = self._open()
            if self._current is None:
                self._current = _TimeAcks(self)
            acks = self._current
            for message, value, headers in retractions:
                acks.produced += 1
                self._produce_to(
                    message.topic, value, message.key, headers, message.partition, acks
                )
        logger.info(
            "%s: the crashed run's tail is settled: %d message(s) not written again, %d retracted",
            self.connector,
            replay.matched,
            len(retractions),
        )

    def _produce_to(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: list[tuple[str, bytes | None]],
        partition: int,
        acks: _TimeAcks,
    ) -> None:
        """Produce one message to a given partition, waiting for room in librdkafka's queue."""
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,
                    partition=partition,
                    on_delivery=acks,
                )
                return
            except BufferError:  # librdkafka's queue is full: let it send first
                _time.sleep(0.005)
                self._check()

    def close(self) -> None:
        if self._replay is not None and self.shared_replay:
            # Worker 0 settles a shared tail before the run ends; ending without that (a
            # run stopped early) leaves it to the next restart, which reads it again.
            logger.warning("%s: the crashed tail was not settled before the end", self.connector)
            self._replay = None
        elif self._replay is not None:
            last = self._last_flushed
            self._end_replay(last.time if last is not None and last.time is not None else 0)
        self._stop_reports()
        if self._producer is not None:
            while self._producer.flush(1.0) > 0:
                self._check()
        self._check()

    def abort(self) -> None:
        self._stop_reports()
        if self._producer is not None:
            self._producer.purge()
            self._producer.flush(0)

    def _stop_reports(self) -> None:
        self._stop_polling.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None

    def _check(self) -> None:
        if self._failure is not None:
            raise ConnectorError(
                self.connector,
                f"the Kafka broker at {self.bootstrap} did not accept a message: {self._failure}",
            )
