"""``pw.io.redpanda``: Redpanda speaks the Kafka protocol, so this is the Kafka connector
(:mod:`deltaflow.io.kafka`) under Redpanda's name, with Pathway 0.33's signatures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from deltaflow.error_display import user_call
from deltaflow.io import kafka
from deltaflow.io.kafka import SchemaRegistrySettings
from deltaflow.schema import Schema

__all__ = ["read", "write"]


@user_call
def read(
    rdkafka_settings: dict,
    topic: str | list[str] | None = None,
    *,
    schema: type[Schema] | None = None,
    mode: Literal["streaming", "static"] = "streaming",
    format: Literal["raw", "csv", "json"] = "raw",  # noqa: A002
    schema_registry_settings: SchemaRegistrySettings | None = None,
    debug_data: Any = None,
    autocommit_duration_ms: int | None = 1500,
    json_field_paths: dict[str, str] | None = None,
    parallel_readers: int | None = None,
    name: str | None = None,
    max_backlog_size: int | None = None,
    **kwargs: Any,
) -> Any:
    """A table of the messages of a Redpanda topic: see :func:`deltaflow.io.kafka.read`.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        rdkafka_settings: librdkafka settings: ``bootstrap.servers`` and ``group.id`` at least.
        topic: the topic read.
        schema: the columns of each JSON message (``format='json'``).
        mode: ``streaming`` (default) or ``static``.
        format: ``raw`` or ``json`` (``csv`` is refused, as by ``pw.io.kafka.read``).
        schema_registry_settings: a schema registry holding the messages' schema.
        debug_data: accepted for compatibility, ignored.
        autocommit_duration_ms: how long messages may wait before they are committed to the
            pipeline.
        json_field_paths: column names mapped to JSON pointers of nested values.
        parallel_readers: accepted and checked.
        name: the connector's name in logs, monitoring and persistence.
        max_backlog_size: pause reading while this many rows wait in the pipeline.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> t = pw.io.redpanda.read({"bootstrap.servers": "127.0.0.1:9092", "group.id": "stats"},
        ...                         "clicks", schema=Event, format="json")
        >>> t.typehints()
        {'user': <class 'str'>, 'clicks': <class 'int'>}
    """
    # Pathway's signature names "csv", which kafka.read refuses with a clear error.
    return kafka.read(
        rdkafka_settings,
        topic,
        schema=schema,
        mode=mode,
        format=format,  # type: ignore[arg-type]
        schema_registry_settings=schema_registry_settings,
        debug_data=debug_data,
        autocommit_duration_ms=autocommit_duration_ms,
        json_field_paths=json_field_paths,
        parallel_readers=parallel_readers,
        name=name,
        max_backlog_size=max_backlog_size,
        _stacklevel=3,  # our caller is the user_call wrapper of this function
        **kwargs,
    )


@user_call
def write(
    table: Any,
    rdkafka_settings: dict,
    topic_name: str,
    *,
    format: Literal["json"] = "json",  # noqa: A002
    schema_registry_settings: SchemaRegistrySettings | None = None,
    subject: str | None = None,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
    **kwargs: Any,
) -> None:
    """Write the changes of ``table`` to a Redpanda topic: see
    :func:`deltaflow.io.kafka.write` (``kwargs`` are its other keywords).

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        table: the table written.
        rdkafka_settings: librdkafka settings: ``bootstrap.servers`` at least.
        topic_name: the topic.
        format: ``json``.
        schema_registry_settings: a schema registry to register and encode with.
        subject: the schema registry subject.
        name: the connector's name in logs and monitoring.
        sort_by: columns ordering the messages of one time.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> t = pw.debug.table_from_rows(Event, [("ann", 3)])
        >>> pw.io.redpanda.write(t, {"bootstrap.servers": "127.0.0.1:9092"}, "click-totals")
    """
    kafka.write(
        table,
        rdkafka_settings,
        topic_name,
        format=format,
        schema_registry_settings=schema_registry_settings,
        subject=subject,
        name=name,
        sort_by=sort_by,
        **kwargs,
    )
