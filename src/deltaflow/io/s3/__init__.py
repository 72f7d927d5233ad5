"""Amazon S3 (and S3-compatible stores): ``pw.io.s3.read`` and ``pw.io.s3.write``.

Everything that talks to the store goes through boto3 (clients and error classification are
shared with the other AWS connectors in :mod:`deltaflow.io._aws`). The package holds:

- :mod:`._settings`: :class:`AwsS3Settings`, bucket locations and :class:`S3ConnectorError`;
- :mod:`._reader`: the object-store reader (listing polls + parallel downloads);
- :mod:`._writer`: the batching writer (one complete object per upload);
- this module: the public functions, which check their arguments when the pipeline is
  defined. Parsing and formatting of CSV/JSON rows is the shared code of
  :mod:`deltaflow.io._core`; retries follow :mod:`deltaflow.io._core.retry`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deltaflow.error_display import user_call
from deltaflow.io._aws.clients import require_boto3
from deltaflow.io._aws.errors import MIN_REDACTED_LENGTH as MIN_REDACTED_LENGTH
from deltaflow.io._aws.errors import classify_error
from deltaflow.io._aws.errors import redact as _redact  # noqa: F401 - tests import it here
from deltaflow.io._core.formats import (
    CsvFormatter,
    CsvParserSettings,
    JsonLinesFormatter,
    column_specs,
    parser_for_format,
)
from deltaflow.io._core.output_session import write_table
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_backlog,
    check_extra_kwargs,
    check_mode,
    format_schema,
    reader_table,
    with_metadata_column,
)
from deltaflow.io._core.retry import CONNECTOR_ENV, DEFAULT_POLICY, policy_for
from deltaflow.io.s3._reader import DEFAULT_DOWNLOADER_THREADS, S3Lister, S3Reader
from deltaflow.io.s3._reader import LISTING_POLL_S as LISTING_POLL_S
from deltaflow.io.s3._reader import ObjectChange as ObjectChange
from deltaflow.io.s3._reader import ObjectInfo as ObjectInfo
from deltaflow.io.s3._settings import (
    AwsS3Settings,
    S3ConnectorError,
    S3Location,
    check_settings,
    resolve_location,
)
from deltaflow.io.s3._writer import MAX_IN_FLIGHT as MAX_IN_FLIGHT
from deltaflow.io.s3._writer import S3Writer
from deltaflow.schema import Schema

__all__ = [
    "DEFAULT_WRITE_INTERVAL_MS",
    "MAX_OUTAGE_ENV",
    "AwsS3Settings",
    "S3ConnectorError",
    "S3Location",
    "classify_error",
    "read",
    "resolve_location",
    "write",
]

_FORMATS = ("csv", "json", "plaintext", "plaintext_by_object", "binary", "only_metadata")
_WRITE_FORMATS = ("csv", "json")
_EXTENSIONS = {"csv": "csv", "json": "jsonl"}

DEFAULT_WRITE_INTERVAL_MS = 1000
"""``write_interval_ms`` when not given: at most one new object per second."""

MAX_OUTAGE_ENV = CONNECTOR_ENV["s3"]
"""Environment variable: how long (seconds) the store may keep failing before the run fails."""

DEFAULT_MAX_OUTAGE_S = DEFAULT_POLICY.max_outage_s


# ------------------------------------------------------------------------------------------
# Public API: read
# ------------------------------------------------------------------------------------------


def _read(
    path: str,
    fmt: str,
    *,
    settings: AwsS3Settings,
    schema: Any,
    mode: str,
    with_metadata: bool,
    csv_settings: Any,
    json_field_paths: Any,
    path_filter: Any,
    downloader_threads_count: Any,
    autocommit_duration_ms: Any,
    name: str | None,
    max_backlog_size: Any,
    kwargs: dict[str, Any],
    connector: str,
) -> Any:
    """The body of ``pw.io.s3.read`` / ``pw.io.minio.read`` (``connector`` names the API)."""
    if fmt not in _FORMATS:
        raise ValueError(
            f"{connector}: unknown format {fmt!r}; expected one of {', '.join(_FORMATS)}"
        )
    check_mode(mode, connector)
    require_boto3(connector, "s3")
    autocommit = check_autocommit(autocommit_duration_ms, connector)
    backlog = check_backlog(max_backlog_size, connector)
    check_extra_kwargs(kwargs, connector)
    location = resolve_location(path, settings, connector=connector)
    if csv_settings is not None and not isinstance(csv_settings, CsvParserSettings):
        raise TypeError(
            f"{connector}: csv_settings must be a pw.io.CsvParserSettings, got "
            f"{type(csv_settings).__name__}"
        )
    if json_field_paths is not None and not isinstance(json_field_paths, dict):
        raise TypeError(
            f"{connector}: json_field_paths must be a dict of column -> JSON "
            f"pointer, got {type(json_field_paths).__name__}"
        )
    if path_filter is not None and not isinstance(path_filter, str):
        raise TypeError(
            f"{connector}: path_filter must be a glob pattern string, got "
            f"{type(path_filter).__name__}"
        )
    threads = (
        DEFAULT_DOWNLOADER_THREADS if downloader_threads_count is None else downloader_threads_count
    )
    if isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0:
        raise ValueError(
            f"{connector}: downloader_threads_count must be a positive integer "
            f"or None, got {downloader_threads_count!r}"
        )
    table_schema = format_schema(fmt, schema, connector)
    if json_field_paths:
        unknown = set(json_field_paths) - set(table_schema.columns())
        if unknown:
            raise ValueError(
                f"{connector}: json_field_paths names columns that are not in "
                f"the schema: {', '.join(sorted(unknown))}"
            )
    parser_format = "plaintext_by_file" if fmt == "plaintext_by_object" else fmt
    parser = parser_for_format(
        parser_format,
        column_specs(table_schema),
        csv_settings=csv_settings,
        json_field_paths=json_field_paths,
    )
    if with_metadata or fmt == "only_metadata":
        table_schema = with_metadata_column(table_schema)
    label = name or str(location)
    streaming = mode == "streaming"
    policy = policy_for("s3", connector)

    def make_reader() -> S3Reader:
        lister = S3Lister(
            name=label,
            settings=settings,
            location=location,
            path_filter=path_filter,
            threads=threads,
            download=fmt != "only_metadata",
        )
        return S3Reader(lister, streaming=streaming, policy=policy)

    return reader_table(
        schema=table_schema,
        reader_factory=make_reader,
        parser=parser,
        name=label,
        autocommit_duration_ms=autocommit,
        max_backlog_size=backlog,
        named=name is not None,
        splits=True,  # several workers each read a share of the objects
        static=not streaming,
    )


@user_call
def read(
    path: str,
    format: str,
    *,  # noqa: A002 - Pathway's name
    aws_s3_settings: AwsS3Settings | None = None,
    schema: type[Schema] | None = None,
    mode: str = "streaming",
    with_metadata: bool = False,
    csv_settings: Any = None,
    json_field_paths: dict[str, str] | None = None,
    path_filter: str | None = None,
    downloader_threads_count: int | None = None,
    autocommit_duration_ms: int | None = 1500,
    name: str | None = None,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
    **kwargs: Any,
) -> Any:
    """A table read from the objects under an S3 prefix.

    ``path`` is ``s3://bucket/prefix`` or a prefix of the bucket named in
    ``aws_s3_settings``; every object whose key starts with the prefix (and matches the
    ``path_filter`` glob, if given) is read, oldest first. Formats: ``csv`` and ``json``
    (JSON lines) need a ``schema``; ``plaintext`` gives a ``data: str`` row per line,
    ``plaintext_by_object`` one per object, ``binary`` one ``data: bytes`` row per object,
    ``only_metadata`` one ``_metadata`` row per object without downloading it.
    ``with_metadata=True`` adds the ``_metadata`` Json column (path, size, modified_at,
    seen_at). ``mode="static"`` reads the prefix once; ``"streaming"`` keeps listing it: new
    objects add rows, changed objects replace theirs, deleted objects retract theirs.
    ``downloader_threads_count`` objects (default 8) are downloaded in parallel.
    ``debug_data`` is accepted for compatibility and ignored. See ``docs/s3.md``.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        path: ``s3://bucket/prefix``, or a prefix of the bucket of ``aws_s3_settings``.
        format: ``csv``, ``json``, ``plaintext``, ``plaintext_by_object``, ``binary`` or
            ``only_metadata``.
        aws_s3_settings: ``pw.io.s3.AwsS3Settings``: bucket, region, credentials, endpoint.
        schema: the columns read (``csv`` and ``json``).
        mode: ``streaming`` (default: keep listing the prefix) or ``static``.
        with_metadata: add a ``_metadata`` Json column (path, size, modification time).
        csv_settings: ``pw.io.CsvParserSettings`` for the ``csv`` format.
        json_field_paths: column names mapped to JSON pointers of nested values.
        path_filter: a glob the object keys must match.
        downloader_threads_count: objects downloaded in parallel (default 8).
        autocommit_duration_ms: how long rows may wait before they are committed to the pipeline.
        name: the connector's name in logs, monitoring and persistence.
        max_backlog_size: pause reading while this many rows wait in the pipeline.
        debug_data: accepted for compatibility, ignored.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> settings = pw.io.s3.AwsS3Settings(region="eu-west-1", access_key="KEY",
        ...                                   secret_access_key="SECRET")
        >>> t = pw.io.s3.read("s3://logs/clicks/", format="json", schema=Event,
        ...                   aws_s3_settings=settings, mode="static")
        >>> t.typehints()
        {'user': <class 'str'>, 'clicks': <class 'int'>}
    """
    settings = check_settings(aws_s3_settings, "pw.io.s3.read")
    return _read(
        path,
        format,
        settings=settings,
        schema=schema,
        mode=mode,
        with_metadata=with_metadata,
        csv_settings=csv_settings,
        json_field_paths=json_field_paths,
        path_filter=path_filter,
        downloader_threads_count=downloader_threads_count,
        autocommit_duration_ms=autocommit_duration_ms,
        name=name,
        max_backlog_size=max_backlog_size,
        kwargs=kwargs,
        connector="pw.io.s3.read",
    )


# ------------------------------------------------------------------------------------------
# Public API: write
# ------------------------------------------------------------------------------------------


def _check_interval(write_interval_ms: Any, connector: str) -> float:
    if isinstance(write_interval_ms, bool) or not isinstance(write_interval_ms, int | float):
        raise TypeError(
            f"{connector}: write_interval_ms must be a number of milliseconds, "
            f"got {type(write_interval_ms).__name__}"
        )
    if write_interval_ms < 0:
        raise ValueError(f"{connector}: write_interval_ms must be >= 0, got {write_interval_ms}")
    return float(write_interval_ms) / 1000.0


def _write(
    table: Any,
    path: str,
    format: str,
    *,
    settings: AwsS3Settings,  # noqa: A002
    write_interval_ms: int | float,
    name: str | None,
    connector: str,
) -> None:
    """The body of ``pw.io.s3.write`` / ``pw.io.minio.write`` (``connector`` names the API)."""
    from deltaflow.table import Table  # deltaflow.table imports the io package lazily

    if not isinstance(table, Table):
        raise TypeError(f"{connector}: table must be a pw.Table, got {type(table).__name__}")
    if format not in _WRITE_FORMATS:
        raise ValueError(
            f"{connector}: format must be one of {', '.join(_WRITE_FORMATS)}, got {format!r}"
        )
    interval_s = _check_interval(write_interval_ms, connector)
    location = resolve_location(path, settings, connector=connector)
    policy = policy_for("s3", connector)
    require_boto3(connector, "s3")
    columns = table.schema.dtypes()
    session_name = name or f"{connector}({location})"
    if format == "csv":
        csv_formatter = CsvFormatter(columns)
        formatter: Any = csv_formatter
        header: Callable[[], bytes] | None = csv_formatter.header
    else:
        formatter = JsonLinesFormatter(columns)
        header = None
    writer = S3Writer(
        name=session_name,
        settings=settings,
        location=location,
        extension=_EXTENSIONS[format],
        header=header,
        interval_s=interval_s,
        policy=policy,
    )
    write_table(
        table,
        writer,
        formatter,
        name=session_name,
        named=name is not None,
    )


@user_call
def write(
    table: Any,
    path: str,
    format: str,
    *,  # noqa: A002 - Pathway's name
    aws_s3_settings: AwsS3Settings | None = None,
    write_interval_ms: int | float = DEFAULT_WRITE_INTERVAL_MS,
    name: str | None = None,
) -> None:
    """Write the changes of ``table`` as objects under an S3 prefix.

    ``format`` is ``"csv"`` (a header line, then every field quoted, with ``time`` and
    ``diff`` columns) or ``"json"`` (one JSON object per line with ``diff`` and ``time``).
    Rows are buffered and uploaded as one new, self-contained object at most once per
    ``write_interval_ms`` (default 1000 ms), named ``<prefix>/<16-digit number>.csv|jsonl``
    with numbers continuing after those already under the prefix; what is buffered when the
    run ends is uploaded then. A failed upload keeps the rows and is retried with backoff; if
    uploads keep failing for longer than ``DELTAFLOW_S3_MAX_OUTAGE_S`` seconds (default 300)
    the run fails. See ``docs/s3.md`` and ``docs/retries.md``.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        table: the table written.
        path: ``s3://bucket/prefix`` under which the objects are written.
        format: ``csv`` or ``json`` (JSON lines).
        aws_s3_settings: ``pw.io.s3.AwsS3Settings``: bucket, region, credentials, endpoint.
        write_interval_ms: the least time between two uploaded objects.
        name: the connector's name in logs and monitoring.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> t = pw.debug.table_from_rows(Event, [("ann", 3)])
        >>> pw.io.s3.write(t, "s3://logs/click-totals/", format="csv")
    """
    settings = check_settings(aws_s3_settings, "pw.io.s3.write")
    _write(
        table,
        path,
        format,
        settings=settings,
        write_interval_ms=write_interval_ms,
        name=name,
        connector="pw.io.s3.write",
    )
