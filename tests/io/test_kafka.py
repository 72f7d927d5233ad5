"""pw.io.kafka / pw.io.redpanda against a real Kafka-compatible broker (Tansu, see
kafka_broker.py). Static reads are used where the test is about formats (no consumer-group
join to wait for); streaming reads where it is about the stream."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from _io_helpers import BackgroundRun, Changes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka_broker import (  # noqa: F401 - *_fixture: the kafka_broker and kafka_topic fixtures
    TansuBroker,
    free_port,
    kafka_broker_fixture,
    kafka_topic_fixture,
)

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorError
from deltaflow.io._core.retry import DEFAULT_POLICY
from deltaflow.io.kafka._formats import Messages
from deltaflow.io.kafka._writer import KafkaWriter


class Word(pw.Schema):
    word: str
    n: int


def _rows(table: Any) -> list[dict[str, Any]]:
    """Run the graph and return the final rows of ``table`` (sorted)."""
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    return sorted(changes.state(), key=repr)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- reading ------------------------------------------------------------------------------


def test_json_static_read_skips_bad_messages(
    kafka_broker: TansuBroker, kafka_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    kafka_broker.produce(
        kafka_topic,
        [
            _json({"word": "a", "n": 1}),
            b"{not json",
            _json({"word": "b", "n": "two"}),
            _json({"word": "c"}),
            b"",
            b'{"word":\n "d", "n": 4}',
            _json([1, 2]),
            _json({"word": "e", "n": 5}),
            b"   ",
        ],
    )
    table = pw.io.kafka.read(
        kafka_broker.settings(), kafka_topic, schema=Word, format="json", mode="static"
    )
    with caplog.at_level(logging.ERROR, logger="deltaflow.io"):
        rows = _rows(table)
    assert rows == [{"n": 1, "word": "a"}, {"n": 4, "word": "d"}, {"n": 5, "word": "e"}]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 6
    assert all(f"{kafka_topic}/0@" in m for m in skipped)
    assert f"{kafka_topic}/0@1" in skipped[0] and "invalid JSON" in skipped[0]


def test_raw_and_plaintext_with_metadata(kafka_broker: TansuBroker, kafka_topic: str) -> None:
    kafka_broker.produce(
        kafka_topic,
        [b"hello", b"\xff\xfe", b"x"],
        keys=[b"k", None, None],
        headers=[[("h", b"v")], None, [("n", None)]],
    )
    raw = pw.io.kafka.read(kafka_broker.settings(), kafka_topic, mode="static", with_metadata=True)
    assert list(raw.schema.columns()) == ["_metadata", "key", "data"]
    rows = sorted(_rows(raw), key=lambda r: r["_metadata"]["offset"].as_int())
    assert [(r["key"], r["data"]) for r in rows] == [
        (b"k", b"hello"),
        (None, b"\xff\xfe"),
        (None, b"x"),
    ]
    first = rows[0]["_metadata"].value
    assert first["topic"] == kafka_topic and first["partition"] == 0 and first["offset"] == 0
    assert first["headers"] == [["h", "dg=="]]
    assert abs(first["timestamp_millis"] - time.time() * 1000) < 60_000
    assert rows[2]["_metadata"].value["headers"] == [["n", None]]
    pw.clear_graph()
    text = pw.io.kafka.read(kafka_broker.settings(), kafka_topic, format="plaintext", mode="static")
    # The message that is not UTF-8 is skipped, not turned into replacement characters.
    assert _rows(text) == [{"data": "hello", "key": "k"}, {"data": "x", "key": None}]


def test_streaming_read_sees_new_messages(kafka_broker: TansuBroker, kafka_topic: str) -> None:
    kafka_broker.produce(kafka_topic, [_json({"word": "a", "n": 1})])
    table = pw.io.kafka.read(
        kafka_broker.settings(), kafka_topic, schema=Word, format="json", autocommit_duration_ms=20
    )
    counts = table.groupby(table.word).reduce(table.word, total=pw.reducers.sum(table.n))
    changes = Changes().subscribe(counts)
    with BackgroundRun():
        changes.wait_for(lambda c: c.state() == [{"total": 1, "word": "a"}])
        kafka_broker.produce(
            kafka_topic, [_json({"word": "a", "n": 2}), _json({"word": "b", "n": 3})]
        )
        changes.wait_for(
            lambda c: c.state() == [{"total": 3, "word": "a"}, {"total": 3, "word": "b"}]
        )
    # The update of "a" is a retraction and an insertion at one time.
    assert ({"word": "a", "total": 1}, False) in [(r, a) for r, _, a in changes.rows]


def test_json_field_paths_and_primary_key(kafka_broker: TansuBroker, kafka_topic: str) -> None:
    class Keyed(pw.Schema):
        word: str = pw.column_definition(primary_key=True)
        n: int

    kafka_broker.produce(
        kafka_topic, [_json({"w": {"x": "a"}, "n": 1}), _json({"w": {"x": "b"}, "n": 2})]
    )
    table = pw.io.kafka.read(
        kafka_broker.settings(),
        kafka_topic,
        schema=Keyed,
        format="json",
        json_field_paths={"word": "/w/x"},
        mode="static",
    )
    rows = _rows(table)
    assert rows == [{"n": 1, "word": "a"}, {"n": 2, "word": "b"}]
    pw.clear_graph()
    table = pw.io.kafka.read(
        kafka_broker.settings(),
        kafka_topic,
        schema=Keyed,
        format="json",
        json_field_paths={"word": "/w/x"},
        mode="static",
    )
    keys, _ = pw.debug.table_to_dicts(table)
    expected = pw.debug.table_from_rows(Keyed, [("a", 1), ("b", 2)])
    expected_keys, _ = pw.debug.table_to_dicts(expected)
    assert sorted(map(int, keys)) == sorted(map(int, expected_keys))


def test_json_columns_read_from_the_message_key(
    kafka_broker: TansuBroker, kafka_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``source_component="key"`` columns come from the key's JSON document, the others from
    the value's (as in Pathway: a field of the same name in the value is not read); a message
    without a key, or whose key is not JSON, is reported and skipped."""

    class Order(pw.Schema):
        shop: str = pw.column_definition(source_component="key", primary_key=True)
        item: str
        qty: int = pw.column_definition(source_component="key")

    kafka_broker.produce(
        kafka_topic,
        [
            _json({"item": "pen"}),
            _json({"item": "ink", "shop": "ignored"}),
            _json({"item": "nib"}),
            _json({"item": "cap"}),
            _json({"item": "box"}),
        ],
        keys=[
            _json({"shop": "north", "qty": 2}),
            _json({"shop": "south", "qty": 5, "extra": True}),
            None,
            b"not json",
            _json({"shop": "west"}),
        ],
    )
    table = pw.io.kafka.read(
        kafka_broker.settings(), kafka_topic, schema=Order, format="json", mode="static"
    )
    assert table.column_names() == ["shop", "item", "qty"]
    with caplog.at_level(logging.ERROR, logger="deltaflow.io"):
        rows = _rows(table)
    assert rows == [
        {"item": "ink", "qty": 5, "shop": "south"},
        {"item": "pen", "qty": 2, "shop": "north"},
    ]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3
    assert f"{kafka_topic}/0@2" in skipped[0] and "empty key" in skipped[0]
    assert f"{kafka_topic}/0@3" in skipped[1] and "invalid JSON" in skipped[1]
    assert f"{kafka_topic}/0@4" in skipped[2] and "'qty'" in skipped[2]
    # Only Kafka has message keys.
    with pytest.raises(ValueError, match="'shop'.*source_component"):
        pw.io.jsonlines.read("unused.jsonl", schema=Order)
    with pytest.raises(ValueError, match="source_component must be 'payload' or 'key'"):
        pw.column_definition(source_component="headers")  # type: ignore[arg-type]


def test_several_partitions_and_start_timestamp(kafka_broker: TansuBroker) -> None:
    topic = "multi-" + str(free_port())
    kafka_broker.create_topic(topic, partitions=3)
    kafka_broker.produce(topic, [b"old0"], partition=0)
    kafka_broker.produce(topic, [b"old2"], partition=2)
    time.sleep(0.05)
    cutoff = int(time.time() * 1000)
    time.sleep(0.05)
    for partition in range(3):
        kafka_broker.produce(topic, [f"new{partition}".encode()], partition=partition)
    everything = pw.io.kafka.read(kafka_broker.settings(), topic, format="plaintext", mode="static")
    assert sorted(r["data"] for r in _rows(everything)) == ["new0", "new1", "new2", "old0", "old2"]
    pw.clear_graph()
    recent = pw.io.kafka.read(
        kafka_broker.settings(),
        topic,
        format="plaintext",
        mode="static",
        start_from_timestamp_ms=cutoff,
    )
    assert sorted(r["data"] for r in _rows(recent)) == ["new0", "new1", "new2"]


def test_persistence_resumes_after_the_checkpoint(
    kafka_broker: TansuBroker, kafka_topic: str, tmp_path: Any
) -> None:
    config = pw.persistence.Config(pw.persistence.Backend.filesystem(tmp_path / "state"))

    def run() -> list[dict[str, Any]]:
        pw.clear_graph()
        table = pw.io.kafka.read(
            kafka_broker.settings(),
            kafka_topic,
            schema=Word,
            format="json",
            mode="static",
            name="words",
        )
        totals = table.groupby(table.word).reduce(table.word, total=pw.reducers.sum(table.n))
        changes = Changes().subscribe(totals)
        pw.run(monitoring_level=pw.MonitoringLevel.NONE, persistence_config=config)
        return sorted((tuple(sorted(row.items())), added) for row, _, added in changes.rows)

    kafka_broker.produce(kafka_topic, [_json({"word": "a", "n": 1}), _json({"word": "b", "n": 2})])
    assert run() == [((("total", 1), ("word", "a")), True), ((("total", 2), ("word", "b")), True)]
    assert run() == []  # nothing new: nothing read again, nothing output again
    kafka_broker.produce(kafka_topic, [_json({"word": "a", "n": 10})])
    # Only the new message is read, but the total covers the earlier runs' rows too.
    assert run() == [((("total", 1), ("word", "a")), False), ((("total", 11), ("word", "a")), True)]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.builds(
                lambda w, n: _json({"word": w, "n": n}), st.sampled_from("abc"), st.integers(-5, 5)
            ),
            st.sampled_from([b"{", b"null", b'{"word": 1, "n": 1}', b'{"word": "a", "n": 1.5}']),
        ),
        max_size=30,
    )
)
def test_json_read_equals_the_valid_messages(
    kafka_broker: TansuBroker, messages: list[bytes]
) -> None:
    """Whatever mix of good and bad messages, the table is exactly the good ones, and a
    groupby over it equals the same groupby computed from scratch on them."""
    pw.clear_graph()
    topic = f"prop-{free_port()}-{time.monotonic_ns()}"
    kafka_broker.create_topic(topic)
    if messages:
        kafka_broker.produce(topic, messages)
    valid = []
    for message in messages:
        try:
            document = json.loads(message)
        except ValueError:
            continue
        if (
            isinstance(document, dict)
            and isinstance(document.get("word"), str)
            and type(document.get("n")) is int
        ):
            valid.append(document)
    table = pw.io.kafka.read(
        kafka_broker.settings(), topic, schema=Word, format="json", mode="static"
    )
    totals = table.groupby(table.word).reduce(table.word, total=pw.reducers.sum(table.n))
    changes = Changes().subscribe(totals)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    expected: dict[str, int] = {}
    for document in valid:
        expected[document["word"]] = expected.get(document["word"], 0) + document["n"]
    assert changes.state() == sorted(
        ({"total": v, "word": k} for k, v in expected.items()), key=repr
    )


# --- writing -----------------------------------------------------------------------------


def _messages(broker: TansuBroker, topic: str, count: int) -> list[tuple[Any, ...]]:
    found = broker.consume(topic, count)
    assert len(found) == count
    return sorted(((m.key(), m.value(), m.headers()) for m in found), key=repr)


_CHANGES = """
  | word | n | __time__ | __diff__
1 | a    | 1 | 2        | 1
2 | b    | 2 | 2        | 1
1 | a    | 1 | 4        | -1
"""


def test_write_json_with_key_and_headers(kafka_broker: TansuBroker, kafka_topic: str) -> None:
    table = pw.debug.table_from_markdown(_CHANGES)
    pw.io.kafka.write(
        table, kafka_broker.settings(), kafka_topic, key=table.word, headers=[table.n]
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert _messages(kafka_broker, kafka_topic, 3) == [
        (
            b"a",
            b'{"word":"a","n":1,"diff":-1,"time":4}',
            [("pathway_time", b"4"), ("pathway_diff", b"-1"), ("n", b"1")],
        ),
        (
            b"a",
            b'{"word":"a","n":1,"diff":1,"time":2}',
            [("pathway_time", b"2"), ("pathway_diff", b"1"), ("n", b"1")],
        ),
        (
            b"b",
            b'{"word":"b","n":2,"diff":1,"time":2}',
            [("pathway_time", b"2"), ("pathway_diff", b"1"), ("n", b"2")],
        ),
    ]


@pytest.mark.parametrize("tracked", [False, True])
def test_a_full_producer_queue_loses_and_repeats_nothing(
    kafka_broker: TansuBroker, kafka_topic: str, tracked: bool
) -> None:
    """librdkafka's queue holds 3 messages here: a batch of 40 fills it again and again, and
    every message still goes out once, in order, with its key, value and headers (with each
    message's acknowledgement counted when persistence asks for them: ``tracked``)."""
    writer = KafkaWriter(
        {**kafka_broker.settings(), "queue.buffering.max.messages": "3"},
        kafka_topic,
        connector="kafka-out",
        policy=DEFAULT_POLICY,
        limit_hint="",
    )
    writer.persisted = tracked
    messages = Messages(
        keys=[b"k%d" % i for i in range(40)],
        values=[b"v%d" % i for i in range(40)],
        headers=[[("pathway_time", b"6"), ("pathway_diff", b"%d" % (i % 2))] for i in range(40)],
    )
    writer.write(messages)
    writer.flush(6)
    writer.close()
    assert writer.durable_time() == (6 if tracked else None)
    found = kafka_broker.consume(kafka_topic, 40)
    assert [(m.key(), m.value(), m.headers()) for m in found] == list(
        zip(messages.keys, messages.values, messages.headers, strict=True)
    )
    assert all(abs(m.timestamp()[1] - time.time() * 1000) < 60_000 for m in found)


def test_write_dsv_plaintext_raw(kafka_broker: TansuBroker) -> None:
    table = pw.debug.table_from_markdown(_CHANGES)
    topics = {fmt: f"w-{fmt}-{free_port()}" for fmt in ("dsv", "plaintext", "raw")}
    for topic in topics.values():
        kafka_broker.create_topic(topic)
    pw.io.kafka.write(table, kafka_broker.settings(), topics["dsv"], format="dsv", delimiter=";")
    pw.io.kafka.write(
        table, kafka_broker.settings(), topics["plaintext"], format="plaintext", value=table.word
    )
    pw.io.kafka.write(
        table.select(data=table.word.str.upper()),
        kafka_broker.settings(),
        topics["raw"],
        format="raw",
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    dsv = _messages(kafka_broker, topics["dsv"], 4)
    assert sorted(value for _, value, _ in dsv) == [
        b'"a";"1";"2";"1"',
        b'"a";"1";"4";"-1"',
        b'"b";"2";"2";"1"',
        b'"word";"n";"time";"diff"',
    ]
    plain = _messages(kafka_broker, topics["plaintext"], 3)
    assert sorted(value for _, value, _ in plain) == [b"a", b"a", b"b"]
    # The key is the row id (16 bytes): the same for both changes of "a".
    keys: dict[bytes, set[bytes]] = {}
    for key, value, _ in plain:
        keys.setdefault(value, set()).add(key)
    assert len(keys[b"a"]) == 1 and len(keys[b"b"]) == 1 and keys[b"a"] != keys[b"b"]
    assert all(len(key) == 16 for key in keys[b"a"] | keys[b"b"])
    assert {key for key, _, _ in dsv} == keys[b"a"] | keys[b"b"]
    raw = _messages(kafka_broker, topics["raw"], 3)
    assert sorted(value for _, value, _ in raw) == [b"A", b"A", b"B"]


def test_round_trip_of_an_update_stream(kafka_broker: TansuBroker, kafka_topic: str) -> None:
    """A written stream read back holds every change with its time and diff."""
    table = pw.debug.table_from_markdown(_CHANGES)
    pw.io.kafka.write(table, kafka_broker.settings(), kafka_topic)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    pw.clear_graph()

    class Change(pw.Schema):
        word: str
        n: int
        time: int
        diff: int

    back = pw.io.kafka.read(
        kafka_broker.settings(), kafka_topic, schema=Change, format="json", mode="static"
    )
    assert _rows(back) == [
        {"diff": -1, "n": 1, "time": 4, "word": "a"},
        {"diff": 1, "n": 1, "time": 2, "word": "a"},
        {"diff": 1, "n": 2, "time": 2, "word": "b"},
    ]


def test_redpanda_is_the_same_connector(kafka_broker: TansuBroker, kafka_topic: str) -> None:
    table = pw.debug.table_from_markdown("word | n\nz | 9")
    pw.io.redpanda.write(table, kafka_broker.settings(), kafka_topic)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    pw.clear_graph()
    back = pw.io.redpanda.read(
        kafka_broker.settings(), kafka_topic, schema=Word, format="json", mode="static"
    )
    assert _rows(back) == [{"n": 9, "word": "z"}]


@pytest.mark.slow  # its own consumer group with default timings: Tansu takes ~20 s to settle
def test_simple_read_from_the_beginning(kafka_broker: TansuBroker, kafka_topic: str) -> None:
    kafka_broker.produce(kafka_topic, [b"one"])
    table = pw.io.kafka.simple_read(
        kafka_broker.address, kafka_topic, format="plaintext", autocommit_duration_ms=20
    )
    changes = Changes().subscribe(table.select(table.data))
    with BackgroundRun():
        changes.wait_for(lambda c: c.state() == [{"data": "one"}], timeout=30)


def test_write_to_a_topic_per_row(kafka_broker: TansuBroker) -> None:
    topics = [f"dyn-{free_port()}-{i}" for i in range(2)]
    for topic in topics:
        kafka_broker.create_topic(topic)
    table = pw.debug.table_from_rows(
        pw.schema_from_types(topic=str, value=str),
        [(topics[0], "x"), (topics[1], "y"), (topics[1], "z")],
    )
    pw.io.kafka.write(
        table, kafka_broker.settings(), table.topic, format="plaintext", value=table.value
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert [m[1] for m in _messages(kafka_broker, topics[0], 1)] == [b"x"]
    assert sorted(m[1] for m in _messages(kafka_broker, topics[1], 2)) == [b"y", b"z"]


def test_kafka_to_kafka_with_persistence(
    kafka_broker: TansuBroker, kafka_topic: str, tmp_path: Any
) -> None:
    """Outputs of a persisted run go out once: the restarted run writes only what the new
    message changed (the writer reports a time durable only once the broker acknowledged
    it, and the end of the run waits for every acknowledgement)."""
    target = f"out-{free_port()}"
    kafka_broker.create_topic(target)
    config = pw.persistence.Config(pw.persistence.Backend.filesystem(tmp_path / "state"))

    def run() -> None:
        pw.clear_graph()
        words = pw.io.kafka.read(
            kafka_broker.settings(),
            kafka_topic,
            schema=Word,
            format="json",
            mode="static",
            name="words",
        )
        totals = words.groupby(words.word).reduce(words.word, total=pw.reducers.sum(words.n))
        pw.io.kafka.write(totals, kafka_broker.settings(), target)
        pw.run(monitoring_level=pw.MonitoringLevel.NONE, persistence_config=config)

    kafka_broker.produce(kafka_topic, [_json({"word": "a", "n": 1}), _json({"word": "b", "n": 2})])
    run()
    kafka_broker.produce(kafka_topic, [_json({"word": "a", "n": 5})])
    run()
    found = [json.loads(m[1]) for m in _messages(kafka_broker, target, 4)]
    assert sorted((d["word"], d["total"], d["diff"]) for d in found) == [
        ("a", 1, -1),
        ("a", 1, 1),
        ("a", 6, 1),
        ("b", 2, 1),
    ]
    assert kafka_broker.consume(target, 5, timeout=1.0)[4:] == []  # nothing more


# --- failures and arguments -----------------------------------------------------------------


def test_broker_down_at_start_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pw.io.kafka, "CONNECT_TIMEOUT_S", 1.0)
    address = f"127.0.0.1:{free_port()}"
    secret = "s3cr3t-password"
    settings = {
        "bootstrap.servers": address,
        "group.id": "g",
        "sasl.password": secret,
        "sasl.username": "user",
    }
    table = pw.io.kafka.read(settings, "nowhere", format="plaintext")
    pw.io.null.write(table)
    started = time.monotonic()
    with pytest.raises(ConnectorError) as raised:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert time.monotonic() - started < 15
    message = str(raised.value)
    assert "kafka" in message and address in message and secret not in message
    pw.clear_graph()
    pw.io.kafka.write(pw.debug.table_from_markdown("a\n1"), settings, "nowhere")
    with pytest.raises(ConnectorError, match=address) as raised:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert secret not in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"format": "csv"}, TypeError),
        ({"format": "json"}, ValueError),  # no schema
        ({"schema": Word}, ValueError),  # raw takes no schema
        ({"autocommit_duration_ms": -1}, ValueError),
        ({"parallel_readers": 0}, ValueError),
        ({"unknown": 1}, TypeError),
        ({"format": "json", "schema": Word, "json_field_paths": {"nope": "/x"}}, ValueError),
        ({"mode": "batch"}, ValueError),
        ({"topic": None}, ValueError),
        ({"autocommit_duration_ms": None}, ValueError),  # a stream would never commit
    ],
)
def test_read_arguments_fail_at_definition(kwargs: dict[str, Any], error: type) -> None:
    kwargs = {"topic": "t", **kwargs}
    with pytest.raises(error):
        pw.io.kafka.read({"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, **kwargs)


def test_tables_read_from_kafka_are_append_only() -> None:
    settings = {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}
    assert pw.io.kafka.read(settings, "t").is_append_only
    assert pw.io.kafka.read(settings, "t", format="json", schema=Word, mode="static").is_append_only
    assert pw.io.kafka.simple_read("127.0.0.1:1", "t").is_append_only


def test_a_refused_setting_is_a_value_error_at_run(kafka_broker: TansuBroker) -> None:
    settings = kafka_broker.settings(bootstrap_servers="typo")  # "_" for "."
    table = pw.io.kafka.read(settings, "t", format="plaintext", mode="static")
    pw.io.null.write(table)
    with pytest.raises(ValueError, match="bootstrap_servers"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def test_read_needs_group_id_and_write_needs_servers() -> None:
    with pytest.raises(ValueError, match="group.id"):
        pw.io.kafka.read({"bootstrap.servers": "127.0.0.1:1"}, "t")
    table = pw.debug.table_from_markdown("a\n1")
    with pytest.raises(ValueError, match="bootstrap.servers"):
        pw.io.kafka.write(table, {}, "t")


def test_write_arguments_fail_at_definition() -> None:
    table = pw.debug.table_from_markdown("word | n\na | 1")
    settings = {"bootstrap.servers": "127.0.0.1:1"}
    with pytest.raises(ValueError, match="one column"):
        pw.io.kafka.write(table, settings, "t", format="plaintext")
    with pytest.raises(ValueError, match="'n'"):
        pw.io.kafka.write(table, settings, "t", format="raw", value=table.n)
    with pytest.raises(ValueError, match="'n'"):
        pw.io.kafka.write(table, settings, "t", key=table.n)
    with pytest.raises(ValueError, match="value"):
        pw.io.kafka.write(table, settings, "t", format="json", value=table.word)
    with pytest.raises(ValueError, match="value"):
        words = table.select(table.word)
        pw.io.kafka.write(words, settings, "t", format="raw", key=words.word)
    with pytest.raises(ValueError, match="str"):
        pw.io.kafka.write(table, settings, table.n)  # topic names are text
    with pytest.raises(ValueError, match="delimiter"):
        pw.io.kafka.write(table, settings, "t", format="dsv", delimiter=";;")
    with pytest.raises(TypeError):
        pw.io.kafka.write(table, settings, "t", format="xml")
    with pytest.raises(ValueError, match="sort_by"):
        pw.io.kafka.write(
            table, settings, "t", format="plaintext", value=table.word, sort_by=[table.n]
        )
    with pytest.raises(NotImplementedError, match="schema regist"):
        pw.io.kafka.write(
            table, settings, "t", schema_registry_settings=pw.io.kafka.SchemaRegistrySettings(["x"])
        )


def test_static_read_ends_after_a_transaction_marker(
    kafka_broker: TansuBroker, kafka_topic: str
) -> None:
    """A committed transaction ends with a marker that takes an offset but is no message: a
    static read must still see that it reached the end."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": kafka_broker.address, "transactional.id": f"tx-{kafka_topic}"}
    )
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(kafka_topic, b"in a transaction")
    producer.commit_transaction(10)
    table = pw.io.kafka.read(
        kafka_broker.settings(), kafka_topic, format="plaintext", mode="static"
    )
    assert _rows(table) == [{"data": "in a transaction", "key": None}]


def test_streaming_read_survives_a_broker_restart() -> None:
    """The broker goes away mid-run and comes back: the reader reconnects by itself and goes
    on at its position. (Tansu keeps topics in memory, so the new broker starts empty; the
    two messages sent again stand in for the ones the old broker had at offsets 0 and 1.)"""
    broker = TansuBroker().start()
    try:
        broker.create_topic("restart")
        broker.produce("restart", [b"a", b"b"])
        table = pw.io.kafka.read(
            broker.settings(), "restart", format="plaintext", autocommit_duration_ms=20
        )
        changes = Changes().subscribe(table.select(table.data))
        with BackgroundRun():
            changes.wait_for(lambda c: len(c.rows) == 2, timeout=30)
            broker.stop()
            time.sleep(0.5)
            broker = TansuBroker(port=broker.port).start()
            broker.create_topic("restart")
            broker.produce("restart", [b"a again", b"b again", b"c"])
            changes.wait_for(lambda c: len(c.rows) >= 3, timeout=60)
            time.sleep(0.5)
        assert changes.state() == [{"data": "a"}, {"data": "b"}, {"data": "c"}]
    finally:
        broker.stop()
