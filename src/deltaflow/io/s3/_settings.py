"""Where the S3 connectors write and read: settings, bucket locations and their errors."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from deltaflow.errors import ConnectorError
from deltaflow.io._aws.clients import BOTOCORE_ATTEMPTS, botocore_config, new_client

__all__ = ["AwsS3Settings", "S3ConnectorError", "S3Location", "check_settings", "resolve_location"]


class AwsS3Settings:
    """How to reach an S3 bucket.

    Every argument is optional. Without ``access_key``/``secret_access_key`` the credentials
    come from boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
    environment variables, ``~/.aws/credentials`` and ``~/.aws/config`` profiles, instance
    roles ...); without ``region`` the region comes from the same chain. ``endpoint`` points at
    an S3-compatible store (MinIO, a local test server ...); ``with_path_style`` addresses
    buckets as ``endpoint/bucket/key`` instead of ``bucket.endpoint/key``. ``bucket_name`` may
    be left out when the path given to ``read``/``write`` is a full ``s3://bucket/...`` URL.
    """

    def __init__(
        self,
        *,
        bucket_name: str | None = None,
        access_key: str | None = None,
        secret_access_key: str | None = None,
        with_path_style: bool = False,
        region: str | None = None,
        endpoint: str | None = None,
        session_token: str | None = None,
    ) -> None:
        for arg, value in (
            ("bucket_name", bucket_name),
            ("access_key", access_key),
            ("secret_access_key", secret_access_key),
            ("region", region),
            ("endpoint", endpoint),
            ("session_token", session_token),
        ):
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"AwsS3Settings: {arg} must be a string or None, got {type(value).__name__}"
                )
        if (access_key is None) != (secret_access_key is None):
            raise ValueError(
                "AwsS3Settings: give both access_key and secret_access_key, or "
                "neither (then the standard AWS credential chain is used)"
            )
        self.bucket_name = bucket_name
        self.access_key = access_key
        self.secret_access_key = secret_access_key
        self.with_path_style = bool(with_path_style)
        self.region = region
        self.endpoint = endpoint
        self.session_token = session_token

    def __repr__(self) -> str:
        # Secrets never appear in reprs (they end up in logs and tracebacks).
        return (
            f"AwsS3Settings(bucket_name={self.bucket_name!r}, endpoint={self.endpoint!r}, "
            f"region={self.region!r}, with_path_style={self.with_path_style!r}, "
            f"access_key={'***' if self.access_key else None})"
        )

    def create_aws_settings(self) -> AwsS3Settings:
        """These settings (other stores' settings classes convert themselves to S3 ones)."""
        return self

    # --- internal ------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        return [s for s in (self.access_key, self.secret_access_key, self.session_token) if s]

    def _endpoint_url(self) -> str | None:
        if not self.endpoint:
            return None
        endpoint = self.endpoint.rstrip("/")
        # MinIO endpoints are commonly written without a scheme ("play.min.io").
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        return endpoint

    def _client(self, *, pool_size: int = 10, attempts: int = BOTOCORE_ATTEMPTS) -> Any:
        """A boto3 S3 client for these settings (clients are thread-safe).

        With explicit keys the client is reused across runs (building one costs tens of
        milliseconds); with the standard credential chain a new one is built each time, so
        that changes to the environment or profiles are seen.
        """
        if self.access_key is None:
            return self._new_client(pool_size, attempts)
        cache_key = (
            self.access_key,
            self.secret_access_key,
            self.session_token,
            self.region,
            self.endpoint,
            self.with_path_style,
            pool_size,
            attempts,
        )
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(cache_key)
        if client is None:
            client = self._new_client(pool_size, attempts)
            with _CLIENTS_LOCK:
                client = _CLIENTS.setdefault(cache_key, client)
        return client

    def _new_client(self, pool_size: int, attempts: int) -> Any:
        config = botocore_config(
            attempts=attempts,
            s3={"addressing_style": "path" if self.with_path_style else "auto"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=max(pool_size, 10),
        )
        return new_client(
            "s3",
            config=config,
            access_key=self.access_key,
            secret_key=self.secret_access_key,
            session_token=self.session_token,
            region=self.region,
            endpoint_url=self._endpoint_url(),
        )


_CLIENTS_LOCK = threading.Lock()
_CLIENTS: dict[tuple[Any, ...], Any] = {}


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix inside it."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def resolve_location(path: str, settings: AwsS3Settings, *, connector: str) -> S3Location:
    """Split ``path`` (``s3://bucket/prefix`` or a bare prefix) into bucket and prefix."""
    if not isinstance(path, str):
        raise TypeError(f"{connector}: path must be a string, got {type(path).__name__}")
    bucket = settings.bucket_name
    prefix = path
    for scheme in ("s3://", "s3a://", "s3n://"):
        if path.startswith(scheme):
            rest = path[len(scheme) :]
            from_path, _, prefix = rest.partition("/")
            if not from_path:
                raise ValueError(f"{connector}: path {path!r} names no bucket")
            if bucket and bucket != from_path:
                raise ValueError(
                    f"{connector}: path {path!r} names bucket {from_path!r} but "
                    f"the settings name bucket {bucket!r}; make them agree"
                )
            bucket = from_path
            break
    if not bucket:
        raise ValueError(
            f"{connector}: no bucket given: use a path like 's3://bucket/prefix' "
            f"or set bucket_name in the settings"
        )
    return S3Location(bucket=bucket, prefix=prefix.lstrip("/"))


def check_settings(settings: Any, connector: str) -> AwsS3Settings:
    if settings is None:
        return AwsS3Settings()
    if hasattr(settings, "create_aws_settings"):
        settings = settings.create_aws_settings()
    if not isinstance(settings, AwsS3Settings):
        raise TypeError(
            f"{connector}: aws_s3_settings must be pw.io.s3.AwsS3Settings, "
            f"got {type(settings).__name__}"
        )
    return settings


class S3ConnectorError(ConnectorError):
    """A request to the store failed; the message names the connector. ``fatal``: retrying
    cannot help (wrong settings)."""

    def __init__(self, message: str, *, fatal: bool = True) -> None:
        super().__init__(message)
        self.fatal = fatal
