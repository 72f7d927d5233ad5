"""boto3 clients for the AWS connectors: a shared model loader and botocore's retry modes.

botocore retries a failed request a few times by itself (its ``standard`` mode: connection
errors, throttling and 5xx answers, with exponential backoff; ``adaptive`` adds client-side
rate limiting when the service throttles). That covers short blips inside one attempt of the
connector; the connector's :class:`~deltaflow.io._core.retry.BackoffPolicy` decides how long a
whole outage may last (``docs/retries.md``).
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any, Literal

from deltaflow._extras import missing_extra

RetryMode = Literal["standard", "adaptive"]

BOTOCORE_ATTEMPTS = 3
"""Attempts botocore makes per connector attempt (its own retries, before ours)."""

_LOADER_LOCK = threading.Lock()
_SHARED_LOADER: Any = None


def require_boto3(feature: str, extra: str) -> None:
    """An ``ImportError`` with the install command when boto3 is missing; called when the
    pipeline is defined, without importing boto3 (which costs a few hundred ms)."""
    if importlib.util.find_spec("boto3") is None:
        raise missing_extra(feature, "boto3", extra)


def session_with_shared_loader() -> Any:
    """A fresh botocore session (so the credential chain is resolved anew) sharing one model
    loader: parsing a service description costs ~0.3 s per session otherwise."""
    import botocore.session

    global _SHARED_LOADER
    session = botocore.session.get_session()
    with _LOADER_LOCK:
        if _SHARED_LOADER is None:
            _SHARED_LOADER = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _SHARED_LOADER)
    return session


def botocore_config(
    *, mode: RetryMode = "standard", attempts: int = BOTOCORE_ATTEMPTS, **options: Any
) -> Any:
    """A ``botocore.config.Config`` with the given retry mode and attempts, plus ``options``
    (timeouts, pool size, addressing style ...)."""
    from botocore.config import Config

    return Config(retries={"mode": mode, "total_max_attempts": attempts}, **options)


def new_client(
    service: str,
    *,
    config: Any,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
) -> Any:
    """A boto3 client of ``service``; credentials and region fall back to boto3's standard
    chain (environment, profiles, instance roles) where not given. The region defaults to
    ``us-east-1`` when nothing configures one (S3-compatible stores ignore it)."""
    import boto3.session

    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        region_name=region,
        profile_name=profile,
        botocore_session=session_with_shared_loader(),
    )
    region_name = region or session.region_name or "us-east-1"
    return session.client(
        service, endpoint_url=endpoint_url, region_name=region_name, config=config
    )
