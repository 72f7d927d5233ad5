"""Connectors: ``pw.io.csv``, ``pw.io.fs``, ``pw.io.python``, ``pw.io.sqlite`` ...

Each external system is one submodule, imported on first use so that optional client
libraries (boto3 ...) are needed only by programs that use them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# ``pw.io.subscribe`` is a function named as its module: imported here, so that importing the
# module (``subscribe_frames`` does) cannot rebind ``pw.io.subscribe`` to the module.
from deltaflow.io.subscribe import OnChangeCallback, OnFinishCallback, subscribe

# Imported on first use (``__getattr__``); type checkers see them here.
if TYPE_CHECKING:
    from deltaflow.io import (
        connector,
        csv,
        deltalake,
        dynamodb,
        elasticsearch,
        fs,
        http,
        jsonlines,
        kafka,
        logstash,
        minio,
        null,
        plaintext,
        postgres,
        python,
        redpanda,
        s3,
        sqlite,
    )
    from deltaflow.io._core.formats import CsvParserSettings
    from deltaflow.io.frames import OnFrameCallback, subscribe_frames
    from deltaflow.io.synchronization import (
        SynchronizedColumn,
        register_input_synchronization_group,
    )

_SUBMODULES = {
    "csv",
    "jsonlines",
    "plaintext",
    "fs",
    "python",
    "null",
    "sqlite",
    "s3",
    "minio",
    "dynamodb",
    "elasticsearch",
    "postgres",
    "http",
    "kafka",
    "logstash",
    "redpanda",
    "deltalake",
    "connector",
}
_TOP_LEVEL = {
    # deltaflow's addition: each time's changes as one Polars DataFrame.
    "subscribe_frames": "deltaflow.io.frames",
    "OnFrameCallback": "deltaflow.io.frames",
    "CsvParserSettings": "deltaflow.io._core.formats",
    "register_input_synchronization_group": "deltaflow.io.synchronization",
    "SynchronizedColumn": "deltaflow.io.synchronization",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"deltaflow.io.{name}")
    if name in _TOP_LEVEL:
        return getattr(importlib.import_module(_TOP_LEVEL[name]), name)
    raise AttributeError(f"module 'deltaflow.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(
        _SUBMODULES | set(_TOP_LEVEL) | {"subscribe", "OnChangeCallback", "OnFinishCallback"}
    )
