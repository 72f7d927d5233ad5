"""The Kafka writer: a confluent-kafka producer behind an output session.

Each time's messages are handed to librdkafka as they come; it batches and sends them. The
writer does not wait for the broker's acknowledgements at every time (a round trip per time
would cap the number of times per second, and so the latency, at the broker's pace): a thread
serves the acknowledgements, and :meth:`KafkaWriter.durable_time` tells persistence the last
time whose messages are all acknowledged, so a checkpoint never covers a message that could
still be lost. The end of the run waits for every acknowledgement. A message the broker
refuses (after librdkafka's own retries, bounded by ``message.timeout.ms``) fails the run with
an error naming the connector.
"""

from __future__ import annotations

import collections
import logging
import threading
import time as _time
from collections.abc import Mapping
from typing import Any

from deltaflow.engine.boundary import ConnectorError
from deltaflow.io._core.base import Writer
from deltaflow.io._core.retry import BackoffPolicy, OutageTooLong, call_with_retries
from deltaflow.io.kafka._formats import Messages
from deltaflow.io.kafka._reader import make_client

logger = logging.getLogger("deltaflow.io.kafka")


#: Consumer settings a producer does not use: dropped (the same settings often serve both a
#: read and a write), rather than have librdkafka warn about each of them.
_CONSUMER_ONLY = frozenset({
    "group.id", "group.instance.id", "session.timeout.ms", "heartbeat.interval.ms",
    "auto.offset.reset", "enable.auto.commit", "auto.commit.interval.ms",
    "enable.auto.offset.store", "partition.assignment.strategy", "max.poll.interval.ms",
    "group.protocol", "group.remote.assignor", "enable.partition.eof", "check.crcs",
    "fetch.min.bytes", "fetch.max.bytes", "fetch.wait.max.ms", "fetch.error.backoff.ms",
    "fetch.message.max.bytes", "max.partition.fetch.bytes", "queued.min.messages",
    "queued.max.messages.kbytes", "isolation.level", "coordinator.query.interval.ms",
})


class _TimeAcks:
    """Acknowledgements of one time's messages. ``produced`` is counted by the output thread,
    ``acked`` by the thread serving delivery reports: each counter has a single writer."""

    __slots__ = ("acked", "owner", "produced", "time")

    def __init__(self, owner: KafkaWriter) -> None:
        self.owner = owner
        self.produced = 0
        self.acked = 0
        self.time: int | None = None

    def __call__(self, error: Any, message: Any) -> None:
        if error is not None and self.owner._failure is None:
            self.owner._failure = error.str()
        self.acked += 1

    @property
    def complete(self) -> bool:
        return self.acked >= self.produced


class KafkaWriter(Writer):
    """Produces :class:`Messages` to ``topic`` (or each message's own topic)."""

    def __init__(self, settings: Mapping[str, Any], topic: str | None, *, connector: str,
                 policy: BackoffPolicy, limit_hint: str) -> None:
        self.settings = {k: v for k, v in settings.items() if k not in _CONSUMER_ONLY}
        self.topic = topic
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

    def _open(self) -> Any:
        from confluent_kafka import KafkaException, Producer

        producer = make_client(Producer, self.settings, self.connector)

        def reason(exc: BaseException) -> str:
            return str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc)

        try:
            call_with_retries(lambda: producer.list_topics(timeout=1.0), policy=self.policy,
                              is_transient=lambda exc: isinstance(exc, KafkaException),
                              describe=reason, hint=self.limit_hint,
                              failing="stayed unreachable",
                              what=f"{self.connector}: the Kafka broker at {self.bootstrap}")
        except OutageTooLong as exc:
            raise ConnectorError(self.connector, f"cannot reach the Kafka broker at "
                                 f"{self.bootstrap}: {exc.detail}") from None
        self._poller = threading.Thread(target=self._serve_reports, args=(producer,),
                                        name=f"deltaflow-kafka-acks-{self.topic}",
                                        daemon=True)
        self._poller.start()
        return producer

    def _serve_reports(self, producer: Any) -> None:
        """Runs the delivery callbacks (the only caller of ``poll`` while the run goes on)."""
        while not self._stop_polling.is_set():
            producer.poll(0.05)

    def write(self, payload: Messages) -> None:
        if self._producer is None:
            self._producer = self._open()
        self._check()
        if self._current is None:
            self._current = _TimeAcks(self)
        acks = self._current
        produce = self._producer.produce
        topics = payload.topics
        for index, (key, value, headers) in enumerate(zip(payload.keys, payload.values,
                                                          payload.headers, strict=True)):
            topic = topics[index] if topics is not None else self.topic
            acks.produced += 1
            while True:
                try:
                    produce(topic, value=value, key=key, headers=headers, on_delivery=acks)
                    break
                except BufferError:  # librdkafka's queue is full: let it send first
                    _time.sleep(0.005)
                    self._check()

    def flush(self, time: int) -> None:
        self._check()
        acks, self._current = self._current, None
        if acks is None:
            acks = _TimeAcks(self)
        acks.time = time
        with self._lock:
            self._flushed.append(acks)

    def durable_time(self) -> Any:
        with self._lock:
            while self._flushed and self._flushed[0].complete:
                self._durable = self._flushed.popleft().time
            return self._durable

    def close(self) -> None:
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
            raise ConnectorError(self.connector,
                                 f"the Kafka broker at {self.bootstrap} did not accept a "
                                 f"message: {self._failure}")
