"""``pw.io.redpanda``: Redpanda speaks the Kafka protocol, so this is the Kafka connector
(:mod:`deltaflow.io.kafka`) under Redpanda's name, with Pathway 0.33's signatures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from deltaflow.io import kafka
from deltaflow.io.kafka import SchemaRegistrySettings
from deltaflow.schema import Schema

__all__ = ["read", "write"]


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
    """A table of the messages of a Redpanda topic: see :func:`deltaflow.io.kafka.read`."""
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
        _stacklevel=2,
        **kwargs,
    )


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
    :func:`deltaflow.io.kafka.write` (``kwargs`` are its other keywords)."""
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
