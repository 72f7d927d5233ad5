"""Kafka message formats: messages to rows (parser) and rows to messages (formatter).

A batch of consumed messages arrives as a :class:`MessagesContext` (one partition's messages
in offset order). The parser turns it into rows of the table's schema:

* ``raw``: ``key: bytes | None``, ``data: bytes``, the message as it is;
* ``plaintext``: the same decoded as UTF-8 (a message that is not UTF-8 is reported, skipped);
* ``json``: each message value is one JSON object, read into the schema's columns (by name or
  by ``json_field_paths``) with the shared JSON lines parser, so Polars reads a whole batch in
  one call when it can; a message that is not a JSON object of the right types is reported
  and skipped.

With ``with_metadata=True`` each row also gets the ``_metadata`` Json of its own message:
``timestamp_millis``, ``topic``, ``partition``, ``offset``, ``headers`` (a list of
``[name, base64 value]`` pairs), as Pathway 0.33 shows them.

On output, :class:`MessageFormatter` turns each delta batch into parallel lists of keys,
values and headers, the way Pathway 0.33 writes them (checked on the same broker): the key is
the ``key=`` column or else the 16 little-endian bytes of the row id, every message carries the
headers ``pathway_time`` and ``pathway_diff`` then one per ``headers=`` column (its text), and
the value is a JSON object (the key column, header columns, then the others, then ``diff`` and
``time``), a DSV line of quoted fields (after one header line), or a single column's text/bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID
from deltaflow.io._core.base import (
    Formatter,
    ParsedBlock,
    ParseError,
    Parser,
    RawContext,
    ReaderContext,
)
from deltaflow.io._core.formats import (
    METADATA_COLUMN,
    ColumnSpec,
    CsvFormatter,
    JsonLinesFormatter,
    JsonLinesParser,
)
from deltaflow.io._core.serialization import text_column

# ------------------------------------------------------------------------------------------
# Input
# ------------------------------------------------------------------------------------------


#: Fewer JSON messages than this are parsed line by line (Python's C JSON scanner), more by
#: Polars at once. Counted in CPU time (its threads' included), Polars costs more up to a few
#: thousand messages: ~0.2 ms a call whatever the count, and checks per column that its
#: reading matches the exact reader's. One string column: 0.55 us a message line by line,
#: against 1.0 us by Polars at 400 messages, 0.6 at 1,000, the same from ~2,000 on; five
#: columns of four types: 1.65 against 2.5 at 400 and 1.9 at 4,000. A live topic's
#: minibatches are mostly smaller; a backlog's (``BATCH_MESSAGES``) are not.
JSON_FAST_MIN_MESSAGES = 4000


@dataclass
class MessagesContext(ReaderContext):
    """Consumed messages of one partition, in offset order (parallel lists; ``keys`` is
    empty when the parser does not read them, see :attr:`MessageParser.reads_keys`)."""

    topic: str
    partition: int
    offsets: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    timestamps: list[int | None] = field(default_factory=list)
    headers: list[list[tuple[str, bytes | None]] | None] = field(default_factory=list)

    def where(self, index: int) -> str:
        """Where message ``index`` is, for error messages: ``topic/partition@offset``."""
        return f"{self.topic}/{self.partition}@{self.offsets[index]}"

    def metadata(self, index: int) -> t.Json:
        headers = self.headers[index] if self.headers else None
        return t.Json(
            {
                "timestamp_millis": self.timestamps[index] if self.timestamps else None,
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offsets[index],
                "headers": [
                    [name, None if value is None else base64.b64encode(value).decode()]
                    for name, value in (headers or [])
                ],
            }
        )


class MessageParser(Parser):
    """Rows of one of Pathway's Kafka read formats (``raw``, ``plaintext``, ``json``)."""

    def __init__(
        self,
        fmt: str,
        columns: Sequence[ColumnSpec],
        *,
        with_metadata: bool,
        json_field_paths: Mapping[str, str] | None = None,
        key_columns: Sequence[str] = (),
    ) -> None:
        self.fmt = fmt
        self.with_metadata = with_metadata
        self._order = [spec.name for spec in columns]
        in_key = set(key_columns)
        self._json = (
            JsonLinesParser(
                [spec for spec in columns if spec.name not in in_key],
                json_field_paths,
                fast_min_lines=JSON_FAST_MIN_MESSAGES,
            )
            if fmt == "json"
            else None
        )
        # Columns with ``source_component="key"`` are read from the message's key, a JSON
        # document of its own (as in Pathway); the others from its value.
        self._key_json = (
            JsonLinesParser([spec for spec in columns if spec.name in in_key], json_field_paths)
            if fmt == "json" and in_key
            else None
        )

    @property
    def reads_keys(self) -> bool:
        """Whether rows come from the messages' keys too (``raw`` and ``plaintext`` rows
        hold them, ``json`` only with columns read from the key): if not, the reader need
        not take them."""
        return self.fmt != "json" or self._key_json is not None

    def parse(self, context: ReaderContext) -> ParsedBlock:
        if not isinstance(context, MessagesContext):
            raise TypeError(f"Kafka messages come as MessagesContext, not {type(context).__name__}")
        if self.fmt == "raw":
            frame = pl.DataFrame(
                {
                    "key": pl.Series(context.keys, dtype=pl.Binary),
                    "data": pl.Series([v or b"" for v in context.values], dtype=pl.Binary),
                }
            )
            return self._with_metadata(
                ParsedBlock(frame), context, list(range(len(context.values)))
            )
        if self.fmt == "plaintext":
            return self._plaintext(context)
        return self._json_rows(context)

    def _plaintext(self, context: MessagesContext) -> ParsedBlock:
        keys: list[str | None] = []
        data: list[str] = []
        good: list[int] = []
        errors: list[ParseError] = []
        for index, (key, value) in enumerate(zip(context.keys, context.values, strict=True)):
            try:
                text_key = None if key is None else key.decode("utf-8")
                text = "" if value is None else value.decode("utf-8")
            except UnicodeDecodeError as exc:
                errors.append(ParseError(context.where(index), f"not UTF-8 text: {exc}"))
                continue
            keys.append(text_key)
            data.append(text)
            good.append(index)
        frame = pl.DataFrame(
            {"key": pl.Series(keys, dtype=pl.String), "data": pl.Series(data, dtype=pl.String)}
        )
        return self._with_metadata(ParsedBlock(frame, errors=errors), context, good)

    def _json_rows(self, context: MessagesContext) -> ParsedBlock:
        assert self._json is not None
        block, good = self._json_documents(context, context.values, self._json, "message")
        if self._key_json is not None:
            keys, keys_good = self._json_documents(context, context.keys, self._key_json, "key")
            both = sorted(set(good) & set(keys_good))
            frame = pl.concat(
                [_rows_of(block.frame, good, both), _rows_of(keys.frame, keys_good, both)],
                how="horizontal",
            ).select(self._order)
            errors = sorted(
                block.errors + keys.errors, key=lambda e: int(e.where.rpartition("@")[2])
            )
            block, good = ParsedBlock(frame, block.kind, None, errors), both
        return self._with_metadata(block, context, good)

    def _json_documents(
        self,
        context: MessagesContext,
        documents: Sequence[bytes | None],
        parser: JsonLinesParser,
        what: str,
    ) -> tuple[ParsedBlock, list[int]]:
        """Rows of the JSON ``documents`` (the messages' values, or their keys) and the
        indices of the messages they come from; the others are reported in the block."""
        if None not in documents and all(documents):
            data = b"\n".join(documents)  # type: ignore[arg-type]
            if data.count(b"\n") == len(documents) - 1 and b"\r" not in data:
                # The common case, one line per document: no per-message Python work.
                parsed = self._json_lines(parser, context, data + b"\n", range(len(documents)), [])
                if parsed is not None:
                    return parsed
        errors: list[ParseError] = []
        lines: list[bytes] = []
        line_message: list[int] = []  # message index of each line given to the JSON parser
        for index, document in enumerate(documents):
            if document is None or not document.strip():
                errors.append(ParseError(context.where(index), f"empty {what}"))
                continue
            # Raw line breaks can only be whitespace in valid JSON (inside strings they must
            # be escaped), so replacing them keeps one document per line and its meaning.
            if b"\n" in document or b"\r" in document:
                document = document.replace(b"\r", b" ").replace(b"\n", b" ")
            lines.append(document)
            line_message.append(index)
        if lines:
            parsed = self._json_lines(
                parser, context, b"\n".join(lines) + b"\n", line_message, errors
            )
            if parsed is None:  # never attach a message's metadata to another message
                raise RuntimeError("the JSON parser skipped a message without reporting it")
            return parsed
        empty = parser.parse(RawContext([b""])).frame
        return ParsedBlock(empty, errors=errors), []

    @staticmethod
    def _json_lines(
        parser: JsonLinesParser,
        context: MessagesContext,
        data: bytes,
        line_message: Sequence[int],
        errors: list[ParseError],
    ) -> tuple[ParsedBlock, list[int]] | None:
        """Rows of ``data`` (line i holds message ``line_message[i]``) and their messages;
        None when the parser skipped a line silently (a blank message), so rows and messages
        no longer pair up."""
        block = parser.parse(RawContext([data], first_line=1))
        failed: set[int] = set()
        found = list(errors)
        for error in block.errors:
            line = int(error.where.rpartition(":")[2])
            failed.add(line - 1)
            found.append(ParseError(context.where(line_message[line - 1]), error.reason))
        good = [line_message[i] for i in range(len(line_message)) if i not in failed]
        if block.frame.height != len(good):
            return None
        found.sort(key=lambda e: int(e.where.rpartition("@")[2]))
        return ParsedBlock(block.frame, block.kind, block.keys, found), good

    def _with_metadata(
        self, block: ParsedBlock, context: MessagesContext, good: list[int]
    ) -> ParsedBlock:
        if not self.with_metadata:
            return block
        metadata = pl.Series(METADATA_COLUMN, [context.metadata(i) for i in good], dtype=pl.Object)
        block.frame = (
            block.frame.with_columns(metadata) if block.frame.width else pl.DataFrame([metadata])
        )
        return block


def _rows_of(frame: pl.DataFrame, rows_of: list[int], wanted: list[int]) -> pl.DataFrame:
    """The rows of ``frame`` (row i came from message ``rows_of[i]``) of the ``wanted``
    messages, in their order."""
    if rows_of == wanted:
        return frame
    position = {message: row for row, message in enumerate(rows_of)}
    return frame[[position[message] for message in wanted]]


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------


@dataclass
class Messages:
    """Messages to produce: parallel lists (``topics`` None: the writer's fixed topic)."""

    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[list[tuple[str, bytes | None]]]
    topics: list[str] | None = None


def _bytes_column(series: pl.Series, dtype: t.DType) -> list[bytes | None]:
    """Message bytes of a column: bytes as they are, text as UTF-8, others as their text."""
    base = dtype.strip_optional()
    if base == t.BYTES:
        return series.to_list()
    if base == t.STR:
        return [None if v is None else v.encode() for v in series.to_list()]
    if base == t.ANY:  # each value as what it is: bytes, text, or its text form
        return [
            v
            if v is None or isinstance(v, bytes)
            else v.encode()
            if isinstance(v, str)
            else text_column(pl.Series([v], dtype=pl.Object), dtype)[0].encode()
            for v in t.values_from_series(series)
        ]
    text = text_column(series, dtype)
    return [v.encode() for v in text.to_list()]


def _header_column(series: pl.Series, dtype: t.DType) -> list[bytes | None]:
    """A header's value: the column's text (None stays a header without value)."""
    base = dtype.strip_optional()
    if base in (t.BYTES, t.ANY):
        return _bytes_column(series, dtype)
    nulls = series.is_null().to_list()
    text = text_column(series, dtype).to_list()
    return [None if null else value.encode() for value, null in zip(text, nulls, strict=True)]


#: JSON values of batches with fewer rows than this are formatted in plain Python, bigger
#: ones by one Polars query (see :class:`PlainJsonLines`). Counted in CPU time (the query's
#: threads included), Python costs less up to ~600 rows of a word count (0.36 us a row; the
#: query ~0.2-0.25 ms up to 1,000 rows): 256 rows cost 0.1 ms in Python, 0.23 by the query.
JSON_PYTHON_MAX_ROWS = 512


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


#: JSON text of a value of each type the Python path formats (None is ``null``).
_JSON_TEXT: dict[t.DType, Callable[[Any], str]] = {
    t.STR: encode_basestring,
    t.INT: str,
    t.BOOL: _bool_text,
}


class PlainJsonLines:
    """JSON values of batches whose columns are all text, ints or bools: the columns in
    order, then ``diff`` and ``time``, byte for byte as :class:`JsonLinesFormatter` writes
    them, but cheaper.

    Below :data:`JSON_PYTHON_MAX_ROWS` rows the values are formatted in Python (~0.35 us a
    row: ints are written by the row's template itself, text through ``encode_basestring``);
    from there on one Polars query encodes each row as a struct (a fixed ~0.2 ms and a few
    tens of ns a row in wall time, more in CPU time, as its threads work too). Polars' JSON
    lines writer, the general path, costs ~0.4 ms a call and more per row."""

    def __init__(self, columns: Mapping[str, t.DType]) -> None:
        self.names = list(columns)
        self.texts = [_JSON_TEXT[dtype.strip_optional()] for dtype in columns.values()]
        # A %-template of one row (a name holding "%" is escaped), closed per time.
        self._fields = [encode_basestring(name).replace("%", "%%") + ":%s" for name in columns]

    @staticmethod
    def handles(columns: Mapping[str, t.DType]) -> bool:
        """Whether every column has a type this path formats (and no column is named like
        the ``diff`` and ``time`` fields, which the general writer would replace)."""
        return not {"diff", "time"} & columns.keys() and all(
            dtype.strip_optional() in _JSON_TEXT for dtype in columns.values()
        )

    def format(self, batch: pl.DataFrame, time: int) -> list[bytes | None]:
        if batch.height == 0:
            return []
        if batch.height >= JSON_PYTHON_MAX_ROWS:
            return self._polars(batch, time)
        template = "{" + ",".join([*self._fields, '"diff":%s', f'"time":{time}']) + "}"
        columns: list[Sequence[Any]] = []
        for name, text in zip(self.names, self.texts, strict=True):
            values = batch[name].to_list()
            if None in values:
                columns.append(["null" if v is None else text(v) for v in values])
            elif text is str:
                columns.append(values)  # ints: "%s" writes their text itself
            else:
                columns.append(list(map(text, values)))
        columns.append(batch[DIFF].to_list())
        # Escaped JSON holds no raw line break: one encode and one split for the batch.
        lines = "\n".join([template % row for row in zip(*columns, strict=True)])
        return list(lines.encode().split(b"\n"))

    def _polars(self, batch: pl.DataFrame, time: int) -> list[bytes | None]:
        stamp = pl.lit(time, dtype=pl.Int64 if time < 2**63 else pl.UInt64)
        fields = [*map(pl.col, self.names), pl.col(DIFF).alias("diff"), stamp.alias("time")]
        encoded = batch.select(pl.struct(fields).struct.json_encode().cast(pl.Binary))
        return encoded.to_series().to_list()


class MessageFormatter(Formatter):
    """Delta batches to :class:`Messages` in one of Pathway's Kafka write formats."""

    def __init__(
        self,
        fmt: str,
        columns: Mapping[str, t.DType],
        *,
        key: str | None,
        value: str | None,
        headers: Sequence[str],
        delimiter: str,
        topic_column: str | None,
    ) -> None:
        self.fmt = fmt
        self.columns = dict(columns)
        self.key = key
        self.value = value
        self.headers = list(headers)
        self.topic_column = topic_column
        self._header_sent = False
        # Pathway's field order: the key column, the header columns, then the others.
        order: list[str] = list(
            dict.fromkeys([*([key] if key else []), *self.headers, *self.columns])
        )
        ordered = {n: self.columns[n] for n in order}
        if fmt == "json":
            self._json = JsonLinesFormatter(ordered)
            self._plain_json = PlainJsonLines(ordered) if PlainJsonLines.handles(ordered) else None
        elif fmt == "dsv":
            self._csv = CsvFormatter(ordered, delimiter)

    def format(self, batch: pl.DataFrame, time: int) -> Messages:
        count = batch.height
        keys: list[bytes | None]
        if self.key is not None:
            keys = _bytes_column(batch[self.key], self.columns[self.key])
        else:
            keys = [i.to_bytes(16, "little") for i in batch[ID].to_list()]
        time_header = ("pathway_time", str(time).encode())
        diffs = batch[DIFF].to_list()
        headers: list[list[tuple[str, bytes | None]]]
        if self.headers:
            extra = [(n, _header_column(batch[n], self.columns[n])) for n in self.headers]
            headers = [
                [
                    time_header,
                    ("pathway_diff", str(diff).encode()),
                    *((name, values[i]) for name, values in extra),
                ]
                for i, diff in enumerate(diffs)
            ]
        else:
            # Without header columns every message of a time with the same diff has the same
            # headers: one list per diff, shared (nobody changes them), instead of one per row.
            by_diff: dict[int, list[tuple[str, bytes | None]]] = {
                diff: [time_header, ("pathway_diff", str(diff).encode())] for diff in set(diffs)
            }
            headers = [by_diff[diff] for diff in diffs]
        values = self._values(batch, time, count)
        topics = batch[self.topic_column].to_list() if self.topic_column else None
        if self.fmt == "dsv" and not self._header_sent and count:
            # Pathway sends the header line once, before the first row, as a message with
            # that row's key and headers.
            self._header_sent = True
            keys.insert(0, keys[0])
            headers.insert(0, headers[0])
            values.insert(0, self._csv.header().rstrip(b"\n"))
            if topics is not None:
                topics.insert(0, topics[0])
        return Messages(keys, values, headers, topics)

    def _values(self, batch: pl.DataFrame, time: int, count: int) -> list[bytes | None]:
        if self.fmt == "json":
            if self._plain_json is not None:
                return self._plain_json.format(batch, time)
            lines: list[bytes | None] = list(self._json.format(batch, time).split(b"\n"))
            return lines[:count]
        if self.fmt == "dsv":
            rows: list[bytes | None] = list(self._csv.format(batch, time).split(b"\n")[:-1])
            if len(rows) == count:
                return rows
            # A field holding a line break: format the rows one by one.
            return [self._csv.format(batch.slice(i, 1), time).rstrip(b"\n") for i in range(count)]
        name = self.value if self.value is not None else next(iter(self.columns))
        return _bytes_column(batch[name], self.columns[name])
