"""Where a Delta table lives: local directories and S3, credentials, retries, redaction.

delta-rs reaches S3 through its own object store client, configured with ``storage_options``
(keys such as ``AWS_ENDPOINT_URL``); they are built here from the connector's
``s3_connection_settings`` (``pw.io.s3.AwsS3Settings``, ``pw.io.minio.MinIOSettings`` or any
settings object with ``create_aws_settings()``). Secrets only ever live in those options: every
message that may carry text from delta-rs goes through :func:`redact`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike, fspath
from typing import Any, TypeVar

from deltaflow.errors import ConnectorError
from deltaflow.io._aws.errors import redact
from deltaflow.io._core.retry import (
    CONNECTOR_ENV,
    DEFAULT_POLICY,
    OutageTooLong,
    call_with_retries,
    policy_for,
)

logger = logging.getLogger("deltaflow.io.deltalake")

MAX_OUTAGE_ENV = CONNECTOR_ENV["deltalake"]
"""Environment variable: how long (seconds) an unreachable store is retried before the run
fails (default :data:`DEFAULT_MAX_OUTAGE_S`, the shared retry policy's: docs/retries.md)."""

DEFAULT_MAX_OUTAGE_S = DEFAULT_POLICY.max_outage_s
_S3_SCHEMES = ("s3://", "s3a://")

# Words in delta-rs / object store errors meaning "could not reach the store" (worth a retry)
# rather than "the store answered no" (wrong settings, missing table: fatal).
_TRANSIENT_MARKERS = (
    "connect",
    "timed out",
    "timeout",
    "error sending request",
    "connection reset",
    "broken pipe",
    "dns",
    "temporarily unavailable",
    "slowdown",
    "503",
    "500 internal",
    "service unavailable",
    "io error",
    "http error",
    "request error",
)

T = TypeVar("T")


def is_s3_uri(uri: str) -> bool:
    return uri.startswith(_S3_SCHEMES)


@dataclass
class Location:
    """A Delta table's URI and the options delta-rs needs to reach it."""

    uri: str
    storage_options: dict[str, str] | None = None
    secrets: list[str] = field(default_factory=list)
    max_outage_s: float = DEFAULT_MAX_OUTAGE_S

    @property
    def is_local(self) -> bool:
        return self.storage_options is None

    def __repr__(self) -> str:  # never show the options: they hold the keys
        return f"Location({self.uri!r})"


def max_outage_s(connector: str) -> float:
    return policy_for("deltalake", connector).max_outage_s


def resolve(uri: Any, settings: Any, connector: str) -> Location:
    """Check ``uri`` and ``settings`` (when the pipeline is defined) and build the location."""
    if not isinstance(uri, str | PathLike):
        raise TypeError(f"{connector}: uri must be a str or os.PathLike, got {type(uri).__name__}")
    text = fspath(uri)
    if not isinstance(text, str) or not text:
        raise ValueError(f"{connector}: uri must be a non-empty path or s3:// URI")
    outage = max_outage_s(connector)
    if not is_s3_uri(text):
        if "://" in text and not text.startswith("file://"):
            raise ValueError(
                f"{connector}: uri {text!r} uses a scheme this connector does not "
                "support; use a local path or s3:// (s3a://)"
            )
        if settings is not None:
            raise ValueError(
                f"{connector}: s3_connection_settings were given but uri {text!r} "
                "is not an s3:// URI"
            )
        local = text[len("file://") :] if text.startswith("file://") else text
        return Location(os.path.abspath(local), None, [], outage)
    return _s3_location(text, settings, connector, outage)


def _s3_location(uri: str, settings: Any, connector: str, outage: float) -> Location:
    from deltaflow.io.s3 import AwsS3Settings

    if settings is not None and hasattr(settings, "create_aws_settings"):
        settings = settings.create_aws_settings()
    if settings is not None and not isinstance(settings, AwsS3Settings):
        raise TypeError(
            f"{connector}: s3_connection_settings must be pw.io.s3.AwsS3Settings "
            f"or pw.io.minio.MinIOSettings, got {type(settings).__name__}"
        )
    _scheme, _, rest = uri.partition("://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"{connector}: uri {uri!r} names no bucket")
    if settings is not None and settings.bucket_name and settings.bucket_name != bucket:
        raise ValueError(
            f"{connector}: uri {uri!r} names bucket {bucket!r} but the settings "
            f"name bucket {settings.bucket_name!r}; make them agree"
        )
    options: dict[str, str] = {
        # delta-rs's own retries stay short: ours (max_outage_s) decide when to give up.
        "timeout": "30s",
        "connect_timeout": "5s",
        "max_retries": "1",
        "retry_timeout": "5s",
    }
    secrets: list[str] = []
    if settings is not None:
        if settings.access_key is not None:
            options["AWS_ACCESS_KEY_ID"] = settings.access_key
            options["AWS_SECRET_ACCESS_KEY"] = settings.secret_access_key or ""
        if settings.session_token:
            options["AWS_SESSION_TOKEN"] = settings.session_token
        if settings.region:
            options["AWS_REGION"] = settings.region
        endpoint = settings._endpoint_url()
        if endpoint:
            options["AWS_ENDPOINT_URL"] = endpoint
            if endpoint.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        if settings.with_path_style:
            options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        secrets = settings._secrets()
    if (
        "AWS_REGION" not in options
        and not os.environ.get("AWS_REGION")
        and not os.environ.get("AWS_DEFAULT_REGION")
    ):
        options["AWS_REGION"] = "us-east-1"
    # One writer per table is the connector's contract (as for Pathway); without it delta-rs
    # refuses to commit to S3 unless a locking provider is configured.
    options["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
    return Location(f"s3://{bucket}/{prefix.strip('/')}".rstrip("/"), options, secrets, outage)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` means the store could not be reached (a retry may help)."""
    from deltalake.exceptions import TableNotFoundError

    if isinstance(error, TableNotFoundError):
        return False
    text = str(error).lower()
    if (
        "404 not found" in text
        or "403 forbidden" in text
        or "nosuchbucket" in text
        or "invalidaccesskeyid" in text
        or "signaturedoesnotmatch" in text
    ):
        return False
    return any(marker in text for marker in _TRANSIENT_MARKERS)


class StoreUnreachable(ConnectorError):
    """The store stayed unreachable for longer than the configured outage limit."""


def with_retries(
    location: Location,
    action: str,
    call: Callable[[], T],
    *,
    connector: str,
    stop: Callable[[], bool] | None = None,
) -> T:
    """``call()``, retried per the shared retry policy while it fails because the store is
    unreachable, for at most ``location.max_outage_s``; other errors are raised at once
    (redacted)."""

    def describe(exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}", location.secrets)

    policy = policy_for("deltalake", connector).with_max_outage(location.max_outage_s)
    try:
        return call_with_retries(
            call,
            policy=policy,
            is_transient=is_transient,
            describe=describe,
            stop=stop,
            what=f"{connector}: {action} {location.uri}",
            hint=MAX_OUTAGE_ENV,
            failing="the store stayed unreachable",
        )
    except OutageTooLong as exc:
        raise StoreUnreachable(
            f"{connector}: cannot {action} {location.uri}: {exc.detail}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - not transient: the settings or the table
        raise RuntimeError(
            f"{connector}: cannot {action} {location.uri}: {describe(exc)}"
        ) from None


class _HostedS3Settings:
    """Settings of an S3-compatible hosting service (bucket, keys and region), turned into
    ``pw.io.s3.AwsS3Settings`` with the service's endpoint for that region."""

    _endpoint_template = ""

    def __init__(
        self,
        bucket_name: str,
        *,
        access_key: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket_name = bucket_name
        self.access_key = access_key
        self.secret_access_key = secret_access_key
        self.region = region

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bucket_name={self.bucket_name!r}, region={self.region!r})"

    def create_aws_settings(self) -> Any:
        from deltaflow.io.s3 import AwsS3Settings

        if not self.region:
            raise ValueError(f"{type(self).__name__}: a region is needed to find the endpoint")
        return AwsS3Settings(
            bucket_name=self.bucket_name,
            access_key=self.access_key,
            secret_access_key=self.secret_access_key,
            region=self.region,
            endpoint=self._endpoint_template.format(region=self.region),
        )


class DigitalOceanS3Settings(_HostedS3Settings):
    """A DigitalOcean Spaces bucket (endpoint ``https://<region>.digitaloceanspaces.com``)."""

    _endpoint_template = "https://{region}.digitaloceanspaces.com"


class WasabiS3Settings(_HostedS3Settings):
    """A Wasabi bucket (endpoint ``https://s3.<region>.wasabisys.com``)."""

    _endpoint_template = "https://s3.{region}.wasabisys.com"
