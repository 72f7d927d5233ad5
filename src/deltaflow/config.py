"""Process-wide settings Pathway programs set: the license key and the monitoring endpoint.

deltaflow needs no license: the key is accepted and kept only so a program that sets it runs
unchanged. The monitoring endpoint is stored for the monitoring layer.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass
class _Settings:
    license_key: str | None = None
    monitoring_server: str | None = None
    detailed_metrics_dir: str | None = None


SETTINGS = _Settings()


def set_license_key(key: str | None) -> None:
    """Accept a Pathway license key; no feature of deltaflow needs one."""
    SETTINGS.license_key = key


def set_monitoring_config(
    *,
    server_endpoint: str | None = None,
    detailed_metrics_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Remember where monitoring data would be sent (an OpenTelemetry endpoint) and where
    detailed metrics would be written."""
    SETTINGS.monitoring_server = server_endpoint
    SETTINGS.detailed_metrics_dir = (
        None if detailed_metrics_dir is None else os.fspath(detailed_metrics_dir)
    )
    if server_endpoint is not None:
        logger.info(
            "monitoring endpoint set to %s (deltaflow does not export to it yet)", server_endpoint
        )
