"""MinIO: ``pw.io.minio.read`` and ``pw.io.minio.write``.

MinIO speaks the S3 API, so this module only turns :class:`MinIOSettings` into
:class:`~deltaflow.io.s3.AwsS3Settings` and delegates to :mod:`deltaflow.io.s3`.
"""

from __future__ import annotations

from typing import Any

from deltaflow.error_display import user_call
from deltaflow.io.s3 import DEFAULT_WRITE_INTERVAL_MS, AwsS3Settings, _read, _write
from deltaflow.schema import Schema


class MinIOSettings:
    """How to reach a bucket on a MinIO server.

    ``endpoint`` is the server's address (``http://host:9000``; without a scheme, https is
    assumed). Buckets are addressed path-style (``endpoint/bucket/key``) unless
    ``with_path_style=False``. ``region`` is only needed by servers configured with one.
    """

    def __init__(
        self,
        endpoint: str,
        bucket_name: str,
        access_key: str,
        secret_access_key: str,
        *,
        with_path_style: bool = True,
        region: str | None = None,
    ) -> None:
        for arg, value in (
            ("endpoint", endpoint),
            ("bucket_name", bucket_name),
            ("access_key", access_key),
            ("secret_access_key", secret_access_key),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"MinIOSettings: {arg} must be a non-empty string")
        self.endpoint = endpoint
        self.bucket_name = bucket_name
        self.access_key = access_key
        self.secret_access_key = secret_access_key
        self.with_path_style = with_path_style
        self.region = region

    def __repr__(self) -> str:
        return (
            f"MinIOSettings(endpoint={self.endpoint!r}, bucket_name={self.bucket_name!r}, "
            f"with_path_style={self.with_path_style!r}, region={self.region!r})"
        )

    def create_aws_settings(self) -> AwsS3Settings:
        """The equivalent S3 settings."""
        return AwsS3Settings(
            endpoint=self.endpoint,
            bucket_name=self.bucket_name,
            access_key=self.access_key,
            secret_access_key=self.secret_access_key,
            with_path_style=self.with_path_style,
            region=self.region,
        )


def _settings(minio_settings: Any, connector: str) -> AwsS3Settings:
    if not isinstance(minio_settings, MinIOSettings):
        raise TypeError(
            f"{connector}: minio_settings must be pw.io.minio.MinIOSettings, got "
            f"{type(minio_settings).__name__}"
        )
    return minio_settings.create_aws_settings()


@user_call
def read(
    path: str,
    minio_settings: MinIOSettings,
    format: str,
    *,  # noqa: A002
    schema: type[Schema] | None = None,
    mode: str = "streaming",
    with_metadata: bool = False,
    csv_settings: Any = None,
    json_field_paths: dict[str, str] | None = None,
    path_filter: str | None = None,
    downloader_threads_count: int | None = None,
    name: str | None = None,
    autocommit_duration_ms: int | None = 1500,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
    **kwargs: Any,
) -> Any:
    """A table read from the objects under a prefix of a MinIO bucket.

    Same formats, modes and options as :func:`deltaflow.io.s3.read`; see ``docs/minio.md``.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        path: the prefix of the objects read, in the bucket of ``minio_settings``.
        minio_settings: ``pw.io.minio.MinIOSettings``: endpoint, bucket and credentials.
        format: ``csv``, ``json``, ``plaintext``, ``plaintext_by_object``, ``binary`` or
            ``only_metadata``.
        schema: the columns read (``csv`` and ``json``).
        mode: ``streaming`` (default: keep listing the prefix) or ``static``.
        with_metadata: add a ``_metadata`` Json column (path, size, modification time).
        csv_settings: ``pw.io.CsvParserSettings`` for the ``csv`` format.
        json_field_paths: column names mapped to JSON pointers of nested values.
        path_filter: a glob the object keys must match.
        downloader_threads_count: objects downloaded in parallel (default 8).
        name: the connector's name in logs, monitoring and persistence.
        autocommit_duration_ms: how long rows may wait before they are committed to the pipeline.
        max_backlog_size: pause reading while this many rows wait in the pipeline.
        debug_data: accepted for compatibility, ignored.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> minio = pw.io.minio.MinIOSettings("http://127.0.0.1:9000", "logs", "KEY", "SECRET")
        >>> t = pw.io.minio.read("clicks/", minio, "json", schema=Event, mode="static")
        >>> t.typehints()
        {'user': <class 'str'>, 'clicks': <class 'int'>}
    """
    settings = _settings(minio_settings, "pw.io.minio.read")
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
        connector="pw.io.minio.read",
    )


@user_call
def write(
    table: Any,
    path: str,
    format: Any,
    minio_settings: Any = None,
    *,  # noqa: A002
    write_interval_ms: int | float = DEFAULT_WRITE_INTERVAL_MS,
    name: str | None = None,
) -> None:
    """Write the changes of ``table`` as objects under a prefix of a MinIO bucket.

    Same formats and batching as :func:`deltaflow.io.s3.write`: one new, self-contained object
    at most every ``write_interval_ms`` (default 1000), numbered after the objects already
    there. See ``docs/minio.md``.

    Both ``write(table, path, "csv", minio_settings=settings)`` and the order of ``read``,
    ``write(table, path, settings, "csv")``, are accepted.

    Defining the connector only checks its arguments (the server is contacted when the
    pipeline runs), so the example needs no server.

    Parameters:
        table: the table written.
        path: the prefix under which the objects are written.
        format: ``csv`` or ``json`` (JSON lines).
        minio_settings: ``pw.io.minio.MinIOSettings``: endpoint, bucket and credentials.
        write_interval_ms: the least time between two uploaded objects.
        name: the connector's name in logs and monitoring.

    Examples:
        >>> import deltaflow as pw
        >>> class Event(pw.Schema):
        ...     user: str = pw.column_definition(primary_key=True)
        ...     clicks: int
        >>> minio = pw.io.minio.MinIOSettings("http://127.0.0.1:9000", "logs", "KEY", "SECRET")
        >>> t = pw.debug.table_from_rows(Event, [("ann", 3)])
        >>> pw.io.minio.write(t, "click-totals/", "csv", minio_settings=minio)
    """
    if isinstance(format, MinIOSettings) and not isinstance(minio_settings, MinIOSettings):
        format, minio_settings = minio_settings, format  # noqa: A001 - the read-like order
    if minio_settings is None:
        raise TypeError("pw.io.minio.write: minio_settings (pw.io.minio.MinIOSettings) is required")
    if not isinstance(format, str):
        raise TypeError(
            f"pw.io.minio.write: format must be a format name such as 'csv' or 'json', "
            f"got {type(format).__name__}"
        )
    settings = _settings(minio_settings, "pw.io.minio.write")
    _write(
        table,
        path,
        format,
        settings=settings,
        write_interval_ms=write_interval_ms,
        name=name,
        connector="pw.io.minio.write",
    )
