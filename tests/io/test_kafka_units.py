"""The Kafka connector's message formats, producer settings and commit pacing, without a
broker."""

from __future__ import annotations

import json
import time
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow import _types as t
from deltaflow._ids import ID_DTYPE
from deltaflow.engine.batch import DIFF, ID
from deltaflow.io._core.base import Commit, Data
from deltaflow.io._core.formats import JsonLinesFormatter, column_specs
from deltaflow.io._core.retry import DEFAULT_POLICY
from deltaflow.io.kafka import _formats as kafka_formats
from deltaflow.io.kafka._formats import (
    MessageFormatter,
    MessageParser,
    MessagesContext,
    PlainJsonLines,
)
from deltaflow.io.kafka._reader import PACING_PAUSE_S, KafkaReader
from deltaflow.io.kafka._writer import DEFAULT_LINGER_MS, KafkaWriter


class Word(pw.Schema):
    word: str
    n: int


_MESSAGES = [
    b'{"word": "a", "n": 1}',
    b'{"word":"b","n":2}',
    b"{",
    b"null",
    b'{"word": 1, "n": 1}',
    b'{"word": "a", "n": 1.5}',
    b'{"word": "c", "n": null}',
    b'{"word": "d"}',
    b'{"word": "e", "n": 3, "n": 4}',
    b"[1]",
    b"",
]


def _context(values: list[bytes], first_offset: int) -> MessagesContext:
    offsets = list(range(first_offset, first_offset + len(values)))
    return MessagesContext("t", 0, offsets, [None] * len(values), list(values))


#: The parser's threshold between line by line and Polars in the test below: the module's
#: (thousands of messages) would make every example that big.
_FEW = 60


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(_MESSAGES), min_size=_FEW, max_size=_FEW + 60)
    | st.lists(st.sampled_from(_MESSAGES[:2]), min_size=_FEW, max_size=_FEW + 60),
    st.integers(min_value=1, max_value=_FEW - 1),
)
def test_json_messages_parse_alike_in_big_and_small_fetches(
    messages: list[bytes], chunk: int
) -> None:
    """Few messages are parsed one by one, many by Polars at once (when all are plain, as in
    the second strategy): the rows and the reported messages are the same whichever way a
    run's fetches cut the stream."""
    assert kafka_formats.JSON_FAST_MIN_MESSAGES > _FEW  # the module's own is bigger
    saved = kafka_formats.JSON_FAST_MIN_MESSAGES
    kafka_formats.JSON_FAST_MIN_MESSAGES = _FEW
    try:
        parser = MessageParser("json", column_specs(Word), with_metadata=False)
    finally:
        kafka_formats.JSON_FAST_MIN_MESSAGES = saved
    whole = parser.parse(_context(messages, 0))
    frames, errors = [], []
    for start in range(0, len(messages), chunk):
        block = parser.parse(_context(messages[start : start + chunk], start))
        frames.append(block.frame)
        errors.extend(block.errors)
    assert whole.frame.equals(pl.concat(frames))
    assert [(e.where, e.reason) for e in whole.errors] == [(e.where, e.reason) for e in errors]
    valid = [
        d
        for d in (json.loads(m) if m.startswith(b'{"') else None for m in messages)
        if isinstance(d, dict) and isinstance(d.get("word"), str) and type(d.get("n")) is int
    ]
    assert whole.frame.height == len(valid)


def test_each_message_carries_its_time_and_diff_headers() -> None:
    batch = pl.DataFrame(
        [
            pl.Series(ID, [1, 2, 3], dtype=ID_DTYPE),
            pl.Series("word", ["a", "b", "c"]),
            pl.Series(DIFF, [1, -1, 1]),
        ]
    )
    formatter = MessageFormatter(
        "json", {"word": t.STR}, key=None, value=None, headers=[], delimiter=",", topic_column=None
    )
    messages = formatter.format(batch, 42)
    assert messages.headers == [
        [("pathway_time", b"42"), ("pathway_diff", b"1")],
        [("pathway_time", b"42"), ("pathway_diff", b"-1")],
        [("pathway_time", b"42"), ("pathway_diff", b"1")],
    ]
    assert messages.values == [
        b'{"word":"a","diff":1,"time":42}',
        b'{"word":"b","diff":-1,"time":42}',
        b'{"word":"c","diff":1,"time":42}',
    ]


_ROW = st.tuples(
    st.text(max_size=6) | st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.none(),
    st.booleans() | st.none(),
    st.sampled_from([1, -1]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ROW, max_size=12), st.integers(min_value=0, max_value=2**64 - 1))
def test_plain_json_batches_are_formatted_as_polars_writes_them(
    rows: list[tuple[str | None, int | None, bool | None, int]], time: int
) -> None:
    """Batches of text, int and bool columns are formatted in Python (small ones) or by a
    Polars struct query (bigger ones): both give the same bytes as the general JSON lines
    writer (escapes, non-ASCII text, nulls, big ints, a name needing escapes), row by row."""
    columns = {'a "%s" \\ é': t.Optional(t.STR), "n": t.Optional(t.INT), "b": t.Optional(t.BOOL)}
    names = list(columns)
    batch = pl.DataFrame(
        [
            pl.Series(ID, list(range(len(rows))), dtype=ID_DTYPE),
            pl.Series(names[0], [r[0] for r in rows], dtype=pl.String),
            pl.Series("n", [r[1] for r in rows], dtype=pl.Int64),
            pl.Series("b", [r[2] for r in rows], dtype=pl.Boolean),
            pl.Series(DIFF, [r[3] for r in rows], dtype=pl.Int64),
        ]
    )
    assert PlainJsonLines.handles(columns)
    expected = JsonLinesFormatter(columns).format(batch, time).split(b"\n")[: len(rows)]
    saved = kafka_formats.JSON_PYTHON_MAX_ROWS
    try:
        for python_below in (10**9, 0):  # every batch in Python, then every one by Polars
            kafka_formats.JSON_PYTHON_MAX_ROWS = python_below
            assert PlainJsonLines(columns).format(batch, time) == expected
    finally:
        kafka_formats.JSON_PYTHON_MAX_ROWS = saved
    for line, row in zip(expected, rows, strict=True):
        assert json.loads(line) == {
            names[0]: row[0],
            "n": row[1],
            "b": row[2],
            "diff": row[3],
            "time": time,
        }
    assert not PlainJsonLines.handles({"x": t.FLOAT})
    # A column named like the appended fields goes to the general writer, whatever its type.
    assert not PlainJsonLines.handles({"time": t.INT}) and not PlainJsonLines.handles(
        {"diff": t.STR}
    )


def test_the_producer_lingers_5_ms_unless_told_and_reports_what_persistence_needs() -> None:
    def producer_settings(given: dict[str, str], persisted: bool = False) -> dict[str, object]:
        writer = KafkaWriter(
            {"bootstrap.servers": "127.0.0.1:1", "group.id": "g", **given},
            "out",
            connector="test",
            policy=DEFAULT_POLICY,
            limit_hint="",
        )
        writer.persisted = persisted
        return writer.producer_settings()

    assert producer_settings({}) == {
        "bootstrap.servers": "127.0.0.1:1",
        "linger.ms": 5,
        "delivery.report.only.error": True,  # failures only: nobody asks for the rest
    }
    assert producer_settings({}, persisted=True)["delivery.report.only.error"] is False
    assert DEFAULT_LINGER_MS == 5
    assert producer_settings({"linger.ms": "20"})["linger.ms"] == "20"
    alias = producer_settings({"queue.buffering.max.ms": "7"})
    assert "linger.ms" not in alias and alias["queue.buffering.max.ms"] == "7"


class _Message:
    """What the reader uses of a confluent-kafka message."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> None:
        return None

    def value(self) -> bytes:
        return b'{"word": "a", "n": 1}'


class _Consumer:
    """A consumer handing out the messages queued in ``waiting`` (a stand-in for librdkafka's,
    which needs a broker; the reader's own code runs unchanged)."""

    def __init__(self) -> None:
        self.waiting: list[Any] = []  # _Message, or confluent-kafka's own

    def consume(self, count: int, timeout: float) -> list[Any]:
        if not self.waiting:
            time.sleep(timeout)
            return []
        taken, self.waiting = self.waiting[:count], self.waiting[count:]
        return taken


def _streaming_reader(commit_every_ms: int | None) -> tuple[KafkaReader, _Consumer]:
    """A streaming reader on a scripted consumer (no broker); ``commit_every_ms`` None: each
    fetch is handed over at once (no paced commits)."""
    reader = KafkaReader(
        {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"},
        "t",
        connector="test",
        static=False,
        with_metadata=False,
        start_from_timestamp_ms=None,
        policy=DEFAULT_POLICY,
        limit_hint="",
        commit_every_ms=commit_every_ms,
    )
    consumer = reader._consumer = _Consumer()
    return reader, consumer


def test_a_streaming_reader_asks_for_commits_at_the_autocommit_period() -> None:
    reader, consumer = _streaming_reader(commit_every_ms=300)
    assert reader.read() is None
    reader.wait(0.01)
    assert reader.read() is None  # nothing read: nothing to commit
    # After a quiet spell, the first messages are committed at once...
    consumer.waiting = [_Message(0), _Message(1)]
    first = reader.read()
    assert isinstance(first, Data) and first.offset == (("t", 0), 2)
    assert isinstance(reader.read(), Commit)
    committed = time.monotonic()
    # ... the next ones one period after that commit, however soon they came: kept until
    # then, and handed over together (one Data event for several fetches).
    consumer.waiting = [_Message(2)]
    assert reader.read() is None
    consumer.waiting = [_Message(3), _Message(4)]
    assert reader.read() is None
    reader.wait(5.0)  # returns when the commit is due, not after 5 s
    assert 0.25 <= time.monotonic() - committed < 2.0
    kept = reader.read()
    assert isinstance(kept, Data) and kept.offset == (("t", 0), 5)
    assert isinstance(kept.context, MessagesContext) and kept.context.offsets == [2, 3, 4]
    assert isinstance(reader.read(), Commit)
    assert reader.read() is None


class _Engine:
    """The engine's backlog of the input, as the session shows it to the reader."""

    backlog_rows = 0

    def wait_backlog_below(self, limit: int, timeout: float | None = None) -> bool:
        return self.backlog_rows < limit


def test_a_streaming_reader_commits_at_once_when_the_engine_is_idle() -> None:
    reader, consumer = _streaming_reader(commit_every_ms=60_000)
    engine = reader.engine = _Engine()
    consumer.waiting = [_Message(0)]
    assert isinstance(reader.read(), Data) and isinstance(reader.read(), Commit)
    # The engine works on that commit: the next messages are kept (for up to a period) ...
    engine.backlog_rows = 1
    consumer.waiting = [_Message(1), _Message(2)]
    assert reader.read() is None
    started = time.monotonic()
    reader.wait(5.0)  # looks again within milliseconds, not after the 60 s period
    assert time.monotonic() - started < 1.0 and reader.read() is None
    # ... and go together, at once, when it has caught up.
    engine.backlog_rows = 0
    kept = reader.read()
    assert isinstance(kept, Data) and kept.offset == (("t", 0), 3)
    assert isinstance(reader.read(), Commit)


def test_pacing_pauses_when_a_commit_comes_a_period_late() -> None:
    reader, consumer = _streaming_reader(commit_every_ms=100)
    consumer.waiting = [_Message(0)]
    assert isinstance(reader.read(), Data)
    assert isinstance(reader.read(), Commit)
    consumer.waiting = [_Message(1)]
    assert reader.read() is None  # kept until the commit
    time.sleep(0.3)  # the thread "starved": the commit due after 0.1 s comes 0.2 s late
    assert isinstance(reader.read(), Data)
    assert isinstance(reader.read(), Commit)
    # Paused for PACING_PAUSE_S: the session's rule, a period after the first message.
    time.sleep(0.05)
    consumer.waiting = [_Message(2)]
    arrived = time.monotonic()
    assert reader.read() is None
    reader.wait(0.25)
    assert time.monotonic() - arrived >= 0.09  # not paced by the last commit (0.05 s ago)
    assert isinstance(reader.read(), Data)
    assert isinstance(reader.read(), Commit)
    # After the pause, pacing resumes with the next messages.
    time.sleep(PACING_PAUSE_S)
    consumer.waiting = [_Message(3)]
    assert isinstance(reader.read(), Data)
    assert isinstance(reader.read(), Commit)
    consumer.waiting = [_Message(4)]
    assert reader.read() is None
    started = time.monotonic()
    reader.wait(5.0)
    assert time.monotonic() - started < 0.6  # one period, not a new pause
    assert isinstance(reader.read(), Data)
    assert isinstance(reader.read(), Commit)


def test_keys_are_taken_only_when_the_parser_reads_them() -> None:
    """A JSON parser without key columns never reads the messages' keys, so the reader does
    not take them (one call per message less); one of the other formats, or JSON with a
    column from the key, does. The rows are the same either way."""
    from confluent_kafka import Message

    class Keyed(pw.Schema):
        word: str
        n: int = pw.column_definition(source_component="key")

    plain = MessageParser("json", column_specs(Word), with_metadata=False)
    keyed = MessageParser("json", column_specs(Keyed), with_metadata=False, key_columns=["n"])
    assert not plain.reads_keys and keyed.reads_keys
    assert MessageParser("raw", [], with_metadata=False).reads_keys
    for one_partition in (True, False):  # the usual fetch, and the message-by-message path
        messages = [
            Message(
                topic="t",
                partition=0 if one_partition or i < 2 else 1,
                offset=i,
                key=b'{"n": %d}' % i,
                value=b'{"word": "w%d", "n": %d}' % (i, i),
            )
            for i in range(4)
        ]
        for parser in (plain, keyed):
            reader, consumer = _streaming_reader(commit_every_ms=None)
            reader.with_keys = parser.reads_keys
            consumer.waiting = list(messages)
            events = [reader.read(), reader.read() if not one_partition else None]
            contexts = [e.context for e in events if isinstance(e, Data)]
            assert len(contexts) == (1 if one_partition else 2)
            rows = []
            for context in contexts:
                assert isinstance(context, MessagesContext)
                assert len(context.keys) == (len(context.values) if parser.reads_keys else 0)
                rows.extend(parser.parse(context).frame.rows())
            assert sorted(rows) == [(f"w{i}", i) for i in range(4)]
