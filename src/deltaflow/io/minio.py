"""MinIO: ``pw.io.minio.read`` and ``pw.io.minio.write``.

MinIO speaks the S3 API, so this module only turns :class:`MinIOSettings` into
:class:`~deltaflow.io.s3.AwsS3Settings` and delegates to :mod:`deltaflow.io.s3`.
"""

from __future__ import annotations

from typing import Any

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

    Both ``write(table, path, "csv", minio_settings=settings)`` (the form of seed 002) and the
    order of ``read``, ``write(table, path, settings, "csv")``, are accepted.
    """
    if isinstance(format, MinIOSettings) and not isinstance(minio_settings, MinIOSettings):
        format, minio_settings = minio_settings, format  # noqa: A001 - the read-like order
    if minio_settings is None:
        raise TypeError("pw.io.minio.write: minio_settings (pw.io.minio.MinIOSettings) is required")
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
