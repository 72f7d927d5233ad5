"""The Kafka writer: a confluent-kafka producer behind an output session.

Each time's messages are produced as they come (librdkafka batches them), and ``flush(time)``
waits until the broker acknowledged every one of them: a time is done only when all of its
messages are stored. A message the broker refuses (after librdkafka's own retries, bounded by
``message.timeout.ms``) fails the run with an error naming the connector.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Mapping
from typing import Any

from deltaflow.engine.boundary import ConnectorError
from deltaflow.io._core.base import Writer
from deltaflow.io.kafka._formats import Messages

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


class KafkaWriter(Writer):
    """Produces :class:`Messages` to ``topic`` (or each message's own topic)."""

    def __init__(self, settings: Mapping[str, Any], topic: str | None, *, connector: str,
                 connect_timeout_s: float) -> None:
        self.settings = {k: v for k, v in settings.items() if k not in _CONSUMER_ONLY}
        self.topic = topic
        self.connector = connector
        self.connect_timeout_s = connect_timeout_s
        self.bootstrap = str(self.settings.get("bootstrap.servers", "?"))
        self._producer: Any = None
        self._failure: str | None = None

    def _open(self) -> Any:
        from confluent_kafka import KafkaException, Producer

        producer = Producer({**self.settings, "logger": logger})
        deadline = _time.monotonic() + self.connect_timeout_s
        warned = False
        while True:
            try:
                producer.list_topics(timeout=1.0)
                return producer
            except KafkaException as exc:
                reason = str(exc.args[0].str() if exc.args else exc)
                if _time.monotonic() >= deadline:
                    raise ConnectorError(
                        self.connector,
                        f"cannot reach the Kafka broker at {self.bootstrap} within "
                        f"{self.connect_timeout_s:g} s: {reason}") from None
                if not warned:
                    warned = True
                    logger.warning("%s: the Kafka broker at %s is not reachable yet (%s); "
                                   "retrying", self.connector, self.bootstrap, reason)

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None and self._failure is None:
            self._failure = error.str()

    def write(self, payload: Messages) -> None:
        if self._producer is None:
            self._producer = self._open()
        producer = self._producer
        produce = producer.produce
        callback = self._delivered
        topics = payload.topics
        for index, (key, value, headers) in enumerate(zip(payload.keys, payload.values,
                                                          payload.headers, strict=True)):
            topic = topics[index] if topics is not None else self.topic
            while True:
                try:
                    produce(topic, value=value, key=key, headers=headers,
                            on_delivery=callback)
                    break
                except BufferError:  # librdkafka's queue is full: let it send first
                    producer.poll(0.05)
                    self._check()
        producer.poll(0)
        self._check()

    def flush(self, time: int) -> None:
        if self._producer is None:
            return
        while self._producer.flush(1.0) > 0:
            self._check()
        self._check()

    def close(self) -> None:
        self.flush(-1)

    def abort(self) -> None:
        if self._producer is not None:
            self._producer.purge()
            self._producer.flush(0)

    def _check(self) -> None:
        if self._failure is not None:
            raise ConnectorError(self.connector,
                                 f"the Kafka broker at {self.bootstrap} did not accept a "
                                 f"message: {self._failure}")
