"""``pw.io.kafka``: read a table from a Kafka topic, write a table's changes to one.

Built on confluent-kafka (librdkafka), the ``kafka`` extra. ``rdkafka_settings`` are
librdkafka's settings (``bootstrap.servers``, ``group.id``, ``security.protocol``,
``sasl.*`` ...) passed through unchanged. See ``docs/kafka.md``.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable
from typing import Any, Literal

from deltaflow import _types as t
from deltaflow.io._core.formats import column_specs
from deltaflow.io._core.output_session import write_table
from deltaflow.io._core.read_table import check_backlog, check_mode, check_schema, reader_table
from deltaflow.io._core.retry import BackoffPolicy, limit_hint, policy_for
from deltaflow.io.kafka._formats import MessageFormatter, MessageParser
from deltaflow.io.kafka._reader import KafkaReader
from deltaflow.io.kafka._writer import KafkaWriter
from deltaflow.schema import Schema, schema_from_types

__all__ = [
    "CONNECT_TIMEOUT_S",
    "SchemaRegistryHeader",
    "SchemaRegistrySettings",
    "read",
    "simple_read",
    "write",
]

#: How long a broker that cannot be reached when a run starts is retried before the run fails
#: (seconds). None: the shared retry policy's outage limit (``DELTAFLOW_KAFKA_MAX_OUTAGE_S``,
#: default 300 s; docs/retries.md). A module setting, as Pathway's functions have no parameter.
CONNECT_TIMEOUT_S: float | None = None


def _connect_policy(connector: str) -> tuple[BackoffPolicy, str]:
    """The retry policy for reaching the broker at start, and what sets its limit."""
    policy = policy_for("kafka", connector)
    if CONNECT_TIMEOUT_S is not None:
        return policy.with_max_outage(CONNECT_TIMEOUT_S), "pw.io.kafka.CONNECT_TIMEOUT_S"
    return policy, limit_hint("kafka")


READ_FORMATS = ("plaintext", "raw", "json")
WRITE_FORMATS = ("raw", "plaintext", "json", "dsv")
_MESSAGE_TYPES = (t.BYTES, t.STR, t.ANY)


class SchemaRegistryHeader:
    """A header sent to a schema registry (accepted; the registry itself is not supported)."""

    def __init__(self, key: str, value: str) -> None:
        self.key = key
        self.value = value


class SchemaRegistrySettings:
    """Settings of a Confluent schema registry (accepted; using them is not supported)."""

    def __init__(
        self,
        urls: list[str],
        token_authorization: str | None = None,
        username: str | None = None,
        password: str | None = None,
        headers: Iterable[SchemaRegistryHeader] | None = None,
        proxy: str | None = None,
        timeout: Any = None,
    ) -> None:
        self.urls = list(urls)
        self.token_authorization = token_authorization
        self.username = username
        self.password = password
        self.headers = list(headers or [])
        self.proxy = proxy
        self.timeout = timeout

    def __repr__(self) -> str:  # never the credentials
        return f"SchemaRegistrySettings(urls={self.urls!r})"


def _no_schema_registry(settings: Any, connector: str) -> None:
    if settings is not None:
        raise NotImplementedError(
            f"{connector}: schema_registry_settings (Avro/JSON Schema through "
            f"a Confluent-compatible schema registry) are not supported by "
            f"deltaflow: no such registry can be run by its tests, so none is "
            f"implemented untested; read or write plain 'json', 'raw' or "
            f"'plaintext' messages"
        )


def _check_settings(settings: Any, connector: str, *, needs_group: bool) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise TypeError(
            f"{connector}: rdkafka_settings must be a dict of librdkafka "
            f"settings, got {type(settings).__name__}"
        )
    if not settings.get("bootstrap.servers"):
        raise ValueError(
            f"{connector}: rdkafka_settings must name the brokers in a non-empty "
            f"'bootstrap.servers' entry"
        )
    if needs_group and not settings.get("group.id"):
        raise ValueError(
            f"{connector}: rdkafka_settings must contain a non-empty 'group.id' "
            f"(the reader joins that consumer group to get its partitions)"
        )
    return dict(settings)


def _check_positive(
    value: Any, parameter: str, connector: str, *, allow_none: bool = True
) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{connector}: {parameter} must be a positive integer, got {value!r}")
    return value


def read(
    rdkafka_settings: dict,
    topic: str | list[str] | None = None,
    *,
    schema: type[Schema] | None = None,
    mode: Literal["streaming", "static"] = "streaming",
    format: Literal["plaintext", "raw", "json"] = "raw",  # noqa: A002
    schema_registry_settings: SchemaRegistrySettings | None = None,
    debug_data: Any = None,
    autocommit_duration_ms: int | None = 1500,
    json_field_paths: dict[str, str] | None = None,
    autogenerate_key: bool = False,
    with_metadata: bool = False,
    start_from_timestamp_ms: int | None = None,
    parallel_readers: int | None = None,
    name: str | None = None,
    max_backlog_size: int | None = None,
    _stacklevel: int = 1,
    **kwargs: Any,
) -> Any:
    """A table of the messages of the Kafka topic ``topic``.

    ``format="raw"`` gives ``key: bytes | None, data: bytes`` per message; ``"plaintext"`` the
    same as UTF-8 text; ``"json"`` one row of ``schema`` per message (a JSON object; columns
    found by name or through ``json_field_paths``' JSON pointers). ``with_metadata=True`` adds
    a ``_metadata`` Json column (topic, partition, offset, timestamp, headers).
    ``mode="static"`` reads what the topic holds when the run starts, then finishes.
    ``start_from_timestamp_ms`` starts every partition at its first message at or after that
    time. Rows are committed every ``autocommit_duration_ms``. ``parallel_readers`` is accepted
    and checked; one consumer reads every assigned partition. On several workers (``deltaflow
    spawn -n N``), worker ``i`` reads the partitions ``p`` with ``p % N == i``. Persistence
    resumes each partition right after its last checkpointed message.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        rdkafka_settings: librdkafka settings: ``bootstrap.servers`` and ``group.id`` at least.
        topic: the topic read.
        schema: the columns of each JSON message (``format="json"``).
        mode: ``streaming`` (default) or ``static`` (what the topic holds at the start).
        format: ``raw`` (bytes), ``plaintext`` (text) or ``json``.
        schema_registry_settings: a schema registry holding the messages' schema.
        debug_data: accepted for compatibility, ignored.
        autocommit_duration_ms: how long messages may wait before they are committed to the
            pipeline.
        json_field_paths: column names mapped to JSON pointers of nested values.
        autogenerate_key: accepted for compatibility (ids come from topic, partition and offset).
        with_metadata: add a ``_metadata`` Json column (topic, partition, offset, timestamp,
            headers).
        start_from_timestamp_ms: start each partition at its first message at or after this time.
        parallel_readers: accepted and checked; one consumer reads every partition.
        name: the connector's name in logs, monitoring and persistence.
        max_backlog_size: pause reading while this many rows wait in the pipeline.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> t = pw.io.kafka.read({"bootstrap.servers": "127.0.0.1:9092", "group.id": "stats"},
        ...                      "clicks", schema=Event, format="json")
        >>> t.typehints()
        {'user': <class 'str'>, 'clicks': <class 'int'>}
    """
    connector = "pw.io.kafka.read"
    if kwargs:
        raise TypeError(
            f"{connector}: unexpected keyword arguments: {', '.join(map(repr, kwargs))}"
        )
    if format not in READ_FORMATS:
        raise TypeError(
            f"{connector}: format must be one of {', '.join(READ_FORMATS)}, got {format!r}"
        )
    settings = _check_settings(rdkafka_settings, connector, needs_group=True)
    if isinstance(topic, list):
        warnings.warn(
            "pw.io.kafka.read: topic should be a str, not a list; the first element is used",
            DeprecationWarning,
            stacklevel=2 + _stacklevel,
        )
        topic = topic[0] if topic else None
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"{connector}: a topic name is required, got {topic!r}")
    connector = f"pw.io.kafka.read({topic!r})"
    check_mode(mode, connector)
    _no_schema_registry(schema_registry_settings, connector)
    if autocommit_duration_ms is not None:
        _check_positive(autocommit_duration_ms, "autocommit_duration_ms", connector)
    elif mode == "streaming":
        raise ValueError(
            f"{connector}: autocommit_duration_ms=None would never commit a "
            f"streaming topic's messages (it never ends); give a duration in "
            f"milliseconds"
        )
    _check_positive(parallel_readers, "parallel_readers", connector)
    backlog = check_backlog(max_backlog_size, connector)
    if start_from_timestamp_ms is not None and (
        isinstance(start_from_timestamp_ms, bool) or not isinstance(start_from_timestamp_ms, int)
    ):
        raise TypeError(
            f"{connector}: start_from_timestamp_ms must be an int (milliseconds "
            f"since the epoch), got {start_from_timestamp_ms!r}"
        )
    if format == "json":
        if schema is None:
            raise ValueError(f"{connector}: format 'json' needs a schema (schema=MySchema)")
        table_schema = check_schema(schema, connector, components=("payload", "key"))
        assert table_schema is not None
        if json_field_paths is not None:
            if not isinstance(json_field_paths, dict):
                raise TypeError(
                    f"{connector}: json_field_paths must be a dict of column -> JSON pointer"
                )
            unknown = sorted(set(json_field_paths) - set(table_schema.columns()))
            if unknown:
                raise ValueError(
                    f"{connector}: json_field_paths names {unknown}, not columns "
                    f"of the schema {list(table_schema.columns())}"
                )
    else:
        if schema is not None:
            raise ValueError(
                f"{connector}: format {format!r} has fixed columns (key, data) and takes no schema"
            )
        if json_field_paths:
            raise ValueError(f"{connector}: json_field_paths applies to format 'json' only")
        table_schema = (
            schema_from_types(key=bytes | None, data=bytes)
            if format == "raw"
            else schema_from_types(key=str | None, data=str)
        )
    parser = MessageParser(
        format,
        column_specs(table_schema),
        with_metadata=with_metadata,
        json_field_paths=json_field_paths,
        key_columns=[
            name
            for name, column in table_schema.columns().items()
            if column.source_component == "key"
        ],
    )
    if with_metadata:  # as in Pathway, _metadata comes first
        table_schema = schema_from_types(_metadata=t.Json) | table_schema
    static = mode == "static"
    chosen_topic = topic
    policy, hint = _connect_policy(connector)

    def make_reader() -> KafkaReader:
        return KafkaReader(
            settings,
            chosen_topic,
            connector=connector,
            static=static,
            with_metadata=with_metadata,
            start_from_timestamp_ms=start_from_timestamp_ms,
            policy=policy,
            limit_hint=hint,
            commit_every_ms=None if static else autocommit_duration_ms,
            with_keys=parser.reads_keys,
        )

    table = reader_table(
        schema=table_schema,
        reader_factory=make_reader,
        parser=parser,
        name=name or f"kafka:{topic}",
        named=name is not None,
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=backlog,
        splits=True,  # several workers each read a share of the partitions
        static=static,
    )
    # A message is never taken back: Table.is_append_only, as in Pathway (with a primary key
    # too: a message with a key seen before is not an update of its row).
    table._node.source.append_only = True
    return table


def simple_read(
    server: str,
    topic: str,
    *,
    read_only_new: bool = False,
    schema: type[Schema] | None = None,
    format: Literal["plaintext", "raw", "json"] = "raw",  # noqa: A002
    debug_data: Any = None,
    autocommit_duration_ms: int | None = 1500,
    json_field_paths: dict[str, str] | None = None,
    parallel_readers: int | None = None,
    name: str | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`read` from the broker ``server`` in a consumer group of its own: from the
    topic's beginning, or only messages arriving after the start with ``read_only_new``.

    Defining the connector only checks its arguments (the broker is contacted when the
    pipeline runs), so the example needs no broker.

    Parameters:
        server: the broker's address (``host:port``).
        topic: the topic read.
        read_only_new: skip the messages the topic holds when the run starts.
        schema: the columns of each JSON message.
        format: ``raw`` (bytes), ``plaintext`` (text) or ``json``.
        debug_data: accepted for compatibility, ignored.
        autocommit_duration_ms: how long messages may wait before they are committed to the
            pipeline.
        json_field_paths: column names mapped to JSON pointers of nested values.
        parallel_readers: accepted and checked.
        name: the connector's name in logs, monitoring and persistence.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.io.kafka.simple_read("127.0.0.1:9092", "logs", format="plaintext")
        >>> t.typehints()
        {'key': str | None, 'data': <class 'str'>}
    """
    if not isinstance(server, str) or not server:
        raise ValueError(
            f"pw.io.kafka.simple_read: server must be a 'host:port' string, got {server!r}"
        )
    settings = {
        "bootstrap.servers": server,
        "group.id": str(uuid.uuid4()),
        "auto.offset.reset": "latest" if read_only_new else "earliest",
        "enable.auto.commit": False,
    }
    return read(
        settings,
        topic,
        schema=schema,
        format=format,
        debug_data=debug_data,
        autocommit_duration_ms=autocommit_duration_ms,
        json_field_paths=json_field_paths,
        parallel_readers=parallel_readers,
        name=name,
        _stacklevel=2,
        **kwargs,
    )


def _column(
    table: Any,
    reference: Any,
    parameter: str,
    connector: str,
    types: tuple[t.DType, ...] | None = None,
) -> str:
    from deltaflow.expressions.base import ColumnReference

    if not isinstance(reference, ColumnReference):
        raise TypeError(
            f"{connector}: {parameter} must be a column of the table (e.g. "
            f"table.name), got {reference!r}"
        )
    owner = reference.table
    if owner is not table and getattr(owner, "_node", None) is not table._node:
        raise ValueError(
            f"{connector}: {parameter} column {reference.name!r} belongs to "
            f"another table; use a column of the table being written"
        )
    name = reference.name
    if name not in table._columns:
        raise table._missing(name)
    if types is not None and table._columns[name].strip_optional() not in types:
        raise ValueError(
            f"{connector}: the {parameter} column {name!r} has type "
            f"{table._columns[name]!r}; it must be str, bytes or Any"
        )
    return name


def write(
    table: Any,
    rdkafka_settings: dict,
    topic_name: Any,
    *,
    format: Literal["raw", "plaintext", "json", "dsv"] = "json",  # noqa: A002
    schema_registry_settings: SchemaRegistrySettings | None = None,
    subject: str | None = None,
    delimiter: str = ",",
    key: Any = None,
    value: Any = None,
    headers: Iterable[Any] | None = None,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Write every change of ``table`` to the Kafka topic ``topic_name`` (a name, or a str
    column naming each row's topic), one message per change.

    Formats: ``"json"`` (the row's columns plus ``diff`` and ``time``), ``"dsv"`` (quoted
    fields joined by ``delimiter``, then time and diff; a header line first), ``"plaintext"`` /
    ``"raw"`` (the ``value`` column, or the table's only column). The message key is the
    ``key`` column or else the row id (16 bytes); every message has the headers
    ``pathway_time`` and ``pathway_diff`` plus one per column of ``headers``.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        table: the table written.
        rdkafka_settings: librdkafka settings: ``bootstrap.servers`` at least.
        topic_name: the topic, or a str column naming each row's topic.
        format: ``json`` (default), ``dsv``, ``plaintext`` or ``raw``.
        schema_registry_settings: a schema registry to register and encode with.
        subject: the schema registry subject.
        delimiter: the field separator of the ``dsv`` format.
        key: the column whose value is each message's key (else the row id).
        value: the column sent as the message (``plaintext``/``raw``).
        headers: columns sent as message headers.
        name: the connector's name in logs and monitoring.
        sort_by: columns ordering the messages of one time.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> t = pw.debug.table_from_rows(Event, [("ann", 3)])
        >>> pw.io.kafka.write(t, {"bootstrap.servers": "127.0.0.1:9092"}, "clicks-out")
        >>> pw.io.kafka.write(t, {"bootstrap.servers": "127.0.0.1:9092"}, "clicks-out",
        ...                   format="xml")
        Traceback (most recent call last):
        ...
        TypeError: pw.io.kafka.write: format must be one of ...
    """
    from deltaflow.expressions.base import ColumnReference
    from deltaflow.table import Table

    connector = "pw.io.kafka.write"
    if not isinstance(table, Table):
        raise TypeError(f"{connector}: table must be a deltaflow Table, got {type(table).__name__}")
    if format not in WRITE_FORMATS:
        raise TypeError(
            f"{connector}: format must be one of {', '.join(WRITE_FORMATS)}, got {format!r}"
        )
    settings = _check_settings(rdkafka_settings, connector, needs_group=False)
    topic_column: str | None = None
    if isinstance(topic_name, ColumnReference):
        topic_column = _column(table, topic_name, "topic_name", connector, (t.STR,))
        fixed_topic = None
    elif isinstance(topic_name, str) and topic_name:
        fixed_topic = topic_name
        connector = f"pw.io.kafka.write({topic_name!r})"
    else:
        raise ValueError(
            f"{connector}: topic_name must be a topic name or a str column, got {topic_name!r}"
        )
    _no_schema_registry(schema_registry_settings, connector)
    if subject is not None:
        raise NotImplementedError(
            f"{connector}: subject belongs to schema registries, which deltaflow does not support"
        )
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"{connector}: delimiter must be a single character, got {delimiter!r}")
    key_name = None if key is None else _column(table, key, "key", connector, _MESSAGE_TYPES)
    header_names = [_column(table, h, "headers", connector) for h in (headers or ())]
    value_name: str | None = None
    if format in ("raw", "plaintext") and key is not None and value is None:
        raise ValueError(
            f"{connector}: with format {format!r}, a key= column needs a value= "
            f"column too (which column is the message?)"
        )
    if format in ("json", "dsv"):
        if value is not None:
            raise ValueError(
                f"{connector}: format {format!r} writes every column; value= is "
                f"for 'raw' and 'plaintext'"
            )
    elif value is not None:
        value_name = _column(table, value, "value", connector, _MESSAGE_TYPES)
    else:
        if len(table._columns) != 1:
            raise ValueError(
                f"{connector}: format {format!r} without value= needs a table "
                f"of one column; this one has {list(table._columns)}"
            )
        only = next(iter(table._columns))
        _column(table, table[only], "value", connector, _MESSAGE_TYPES)
        value_name = only
    order = list(sort_by or ())
    if format in ("raw", "plaintext"):
        forwarded = {value_name, key_name, topic_column, *header_names}
        for column in order:
            column_name = column.name if isinstance(column, ColumnReference) else str(column)
            if column_name not in forwarded:
                raise ValueError(
                    f"{connector}: sort_by column {column_name!r} is not written;"
                    f" with format {format!r} only the value, key, topic and "
                    f"header columns are"
                )
    formatter = MessageFormatter(
        format,
        table._columns,
        key=key_name,
        value=value_name,
        headers=header_names,
        delimiter=delimiter,
        topic_column=topic_column,
    )
    policy, hint = _connect_policy(connector)
    writer = KafkaWriter(
        settings,
        fixed_topic,
        connector=connector,
        policy=policy,
        limit_hint=hint,
        fmt=format,
        delimiter=delimiter,
    )
    write_table(
        table, writer, formatter, name=name or connector, sort_by=order or None, named=bool(name)
    )
