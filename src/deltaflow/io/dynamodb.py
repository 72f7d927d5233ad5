"""DynamoDB output: ``pw.io.dynamodb.write`` keeps a DynamoDB table equal to a deltaflow table.

The pieces, in the order data flows through them:

- :data:`TYPE_MAPPING` / :func:`dynamodb_type`: which DynamoDB attribute type each deltaflow
  type becomes (the connector's type-mapping table, also printed in ``docs/dynamodb.md``).
- :class:`DynamoDBSettings`: endpoint, region and client options, read from the standard AWS
  environment when the pipeline is defined.
- :class:`DynamoDBFormatter`: turns one delta batch into pre-serialized low-level attribute
  values, collapsing all changes of one key to their final effect and setting aside rows that
  DynamoDB cannot store.
- :class:`DynamoDBWriter`: prepares the table (``init_mode``) and sends ``BatchWriteItem``
  requests of at most 25 changes, retrying throttling and unprocessed items until written.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import pickle
import random
import threading
import time as _time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF
from deltaflow.expressions.base import ColumnReference
from deltaflow.io._core.base import Formatter, Writer
from deltaflow.io._core.output_session import write_table

__all__ = ["write", "TYPE_MAPPING", "dynamodb_type", "DynamoDBSettings", "DynamoDBWriteError"]

logger = logging.getLogger("deltaflow.io.dynamodb")

InitMode = Literal["default", "create_if_not_exists", "replace"]
_INIT_MODES = ("default", "create_if_not_exists", "replace")

# --------------------------------------------------------------------------------------------
# The type-mapping table
# --------------------------------------------------------------------------------------------

TYPE_MAPPING: dict[str, str] = {
    "bool": "BOOL",
    "int": "N",
    "float": "N",
    "Pointer": "S",
    "str": "S",
    "bytes": "B",
    "DateTimeNaive": "S",
    "DateTimeUtc": "S",
    "Duration": "N",
    "Json": "S",
    "np.ndarray": "M",
    "tuple": "L",
    "list": "L",
    "PyObjectWrapper": "B",
    "None": "NULL",
}
"""deltaflow type name → DynamoDB attribute type. ``None`` (a missing optional value) is NULL."""

KEY_TYPES = ("S", "N", "B")
"""The attribute types DynamoDB accepts for partition and sort keys."""

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit (attribute names plus values)."""

MAX_BATCH = 25
"""DynamoDB's limit of put/delete requests in one BatchWriteItem call."""

_NULL: dict[str, Any] = {"NULL": True}
_NAIVE_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f"
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f%z"
# DynamoDB numbers: up to 38 significant digits, magnitudes in [1e-130, 1e126).
_MAX_DIGITS = 38
_MAX_MAGNITUDE = 1e126
_MIN_MAGNITUDE = 1e-130


def dynamodb_type(dtype: t.DType) -> str:
    """The DynamoDB attribute type that values of ``dtype`` are written as.

    Optional types map like the type they wrap (their missing values are written as NULL).
    Raises ``TypeError`` for ``Any``: without a declared type the mapping would depend on each
    value, so the column could not be relied on by readers of the table.
    """
    base = dtype.strip_optional()
    if isinstance(base, t.Array):
        return "M"
    if isinstance(base, t.Tuple | t.List):
        return "L"
    if base == t.ANY:
        raise TypeError("columns of type Any cannot be written to DynamoDB")
    return TYPE_MAPPING[base.name]


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DynamoDBSettings:
    """Where and how to connect. Built from the environment by :meth:`from_env`.

    ``endpoint_url`` None means the AWS endpoint of ``region`` (botocore's own resolution,
    which also honours ``endpoint_url`` in the AWS config file). Credentials are found by
    boto3's usual chain (environment, profile, instance role ...).
    """

    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    max_workers: int = 4
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    @classmethod
    def from_env(cls) -> DynamoDBSettings:
        import os

        import boto3

        profile = os.environ.get("AWS_PROFILE") or None
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            region = boto3.session.Session(profile_name=profile).region_name
        if not region:
            raise ValueError(
                "pw.io.dynamodb.write: no AWS region is configured; set AWS_REGION (or "
                "AWS_DEFAULT_REGION) in the environment, e.g. AWS_REGION=us-west-2 (any region "
                "works with a local DynamoDB)"
            )
        endpoint = (os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
                    or os.environ.get("AWS_ENDPOINT_URL") or None)
        return cls(region=region, endpoint_url=endpoint, profile=profile)

    def client(self, *, probe: bool = False) -> Any:
        """A low-level DynamoDB client. ``probe``: short timeouts, no retries."""
        import boto3
        from botocore.config import Config

        if probe:
            config = Config(connect_timeout=3, read_timeout=10,
                            retries={"mode": "standard", "max_attempts": 1})
        else:
            # Our own loop retries throttling with jitter; botocore only retries transport
            # errors here. Parameter validation is skipped because the formatter already
            # produces well-formed attribute values and validation costs per attribute.
            config = Config(connect_timeout=self.connect_timeout_s,
                            read_timeout=self.read_timeout_s,
                            retries={"mode": "standard", "max_attempts": 3},
                            parameter_validation=False,
                            max_pool_connections=self.max_workers + 2)
        session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
        return session.client("dynamodb", endpoint_url=self.endpoint_url, config=config)

    def describe(self) -> str:
        return f"{self.endpoint_url or 'AWS'} (region {self.region})"


# --------------------------------------------------------------------------------------------
# Serialization of values
# --------------------------------------------------------------------------------------------


class _BadValue(ValueError):
    """A value DynamoDB cannot store; the message says why."""


def _number_text(value: int | float) -> str:
    """The N payload of a Python number, or _BadValue when DynamoDB cannot store it."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _BadValue(f"{value!r} is not a number DynamoDB can store (NaN and infinity "
                            f"are not allowed)")
        magnitude = abs(value)
        if magnitude != 0 and not _MIN_MAGNITUDE <= magnitude < _MAX_MAGNITUDE:
            raise _BadValue(f"{value!r} is outside DynamoDB's number range (1e-130 to 1e126)")
        return repr(value)
    text = str(value)
    if len(text.lstrip("-").rstrip("0")) > _MAX_DIGITS:
        raise _BadValue(f"{text} has more than {_MAX_DIGITS} significant digits, more than a "
                        f"DynamoDB number holds")
    return text


def _timestamp_text(value: Any) -> str:
    ts = pd.Timestamp(value)
    suffix = ""
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
        suffix = "+0000"
    fraction = ts.microsecond * 1000 + ts.nanosecond
    return f"{ts.strftime('%Y-%m-%dT%H:%M:%S')}.{fraction:09d}{suffix}"


def _json_default(value: Any) -> Any:
    if isinstance(value, t.Json):
        return value.value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_text(value: Any) -> str:
    """Compact JSON (no spaces), the way Pathway serializes Json values."""
    inner = value.value if isinstance(value, t.Json) else value
    return json.dumps(inner, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _pickled(wrapper: t.PyObjectWrapper) -> bytes:
    serializer = getattr(wrapper, "serializer", None)
    if serializer is not None:
        return bytes(serializer.dumps(wrapper.value))
    return pickle.dumps(wrapper.value, protocol=pickle.HIGHEST_PROTOCOL)


def _attribute(value: Any) -> tuple[dict[str, Any], int]:
    """The DynamoDB attribute value of one Python value and its size in bytes.

    Used for the values inside tuples, lists and arrays (whose element types are only known
    from the values) and for columns without a column-wise fast path.
    """
    if value is None:
        return _NULL, 1
    if isinstance(value, bool | np.bool_):
        return {"BOOL": bool(value)}, 1
    if isinstance(value, int | np.integer):
        text = _number_text(int(value))
        return {"N": text}, len(text)
    if isinstance(value, float | np.floating):
        text = _number_text(float(value))
        return {"N": text}, len(text)
    if isinstance(value, str):
        return {"S": value}, len(value.encode())
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return {"B": data}, len(data)
    if isinstance(value, t.Pointer):
        text = str(value)
        return {"S": text}, len(text)
    if isinstance(value, datetime.datetime | np.datetime64):
        text = _timestamp_text(value)
        return {"S": text}, len(text)
    if isinstance(value, datetime.timedelta | np.timedelta64):
        text = str(pd.Timedelta(value).value)
        return {"N": text}, len(text)
    if isinstance(value, t.Json | dict):
        text = _json_text(value)
        return {"S": text}, len(text.encode())
    if isinstance(value, np.ndarray):
        shape, shape_size = _attribute(list(value.shape))
        elements, elements_size = _attribute(value.ravel().tolist())
        # 3 bytes of overhead per map and list, as DynamoDB counts them.
        size = 3 + len("shape") + shape_size + len("elements") + elements_size
        return {"M": {"shape": shape, "elements": elements}}, size
    if isinstance(value, tuple | list):
        parts = [_attribute(v) for v in value]
        return {"L": [p[0] for p in parts]}, 3 + sum(p[1] for p in parts)
    if isinstance(value, t.PyObjectWrapper):
        data = _pickled(value)
        return {"B": data}, len(data)
    raise _BadValue(f"a value of type {type(value).__name__} has no DynamoDB representation")


@dataclass
class _Column:
    """One column of a batch, serialized: attribute values, sizes and per-row problems."""

    values: list[dict[str, Any]]
    sizes: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)


def _scalar_payloads(series: pl.Series, dtype: t.DType) -> tuple[str, pl.Series] | None:
    """For types written as S, N or B: the tag and the payloads as a String/Binary series.

    Computed column-wise with Polars where the type allows; None for other types.
    """
    base = dtype.strip_optional()
    if base in (t.INT, t.DURATION):
        return "N", series.cast(pl.Int64).cast(pl.String)
    if base == t.FLOAT:
        return "N", series.cast(pl.String)
    if base == t.STR:
        return "S", series
    if base == t.BYTES:
        return "B", series
    if base == t.DATE_TIME_NAIVE:
        return "S", series.dt.to_string(_NAIVE_FORMAT)
    if base == t.DATE_TIME_UTC:
        return "S", series.dt.convert_time_zone("UTC").dt.to_string(_UTC_FORMAT)
    if base == t.POINTER:
        texts = [None if v is None else str(t.Pointer(v)) for v in series.to_list()]
        return "S", pl.Series(series.name, texts, dtype=pl.String)
    if base == t.JSON:
        texts = [None if v is None else _json_text(v) for v in series.to_list()]
        return "S", pl.Series(series.name, texts, dtype=pl.String)
    if base == t.PY_OBJECT_WRAPPER:
        blobs = [None if v is None else _pickled(v) for v in series.to_list()]
        return "B", pl.Series(series.name, blobs, dtype=pl.Binary)
    return None


def _payload_sizes(tag: str, payloads: pl.Series) -> np.ndarray:
    if tag == "B":
        sizes = payloads.bin.size()
    elif tag == "S":
        sizes = payloads.str.len_bytes()
    else:
        sizes = payloads.str.len_chars()
    return sizes.fill_null(1).cast(pl.Int64).to_numpy()


def _float_problems(series: pl.Series) -> dict[int, str]:
    """Rows of a float column DynamoDB cannot store (checked column-wise)."""
    magnitude = series.abs()
    bad = (series.is_nan() | series.is_infinite()
           | ((magnitude != 0) & ((magnitude < _MIN_MAGNITUDE) | (magnitude >= _MAX_MAGNITUDE))))
    bad = bad.fill_null(False)
    if not bad.any():
        return {}
    problems = {}
    values = series.to_list()
    for index in np.flatnonzero(bad.to_numpy()):
        try:
            _number_text(values[index])
        except _BadValue as exc:
            problems[int(index)] = str(exc)
    return problems


def _serialize_column(series: pl.Series, dtype: t.DType) -> _Column:
    base = dtype.strip_optional()
    if base == t.BOOL:
        values = [_NULL if v is None else {"BOOL": v} for v in series.to_list()]
        return _Column(values, np.ones(len(values), dtype=np.int64))
    scalar = _scalar_payloads(series, dtype)
    if scalar is not None:
        tag, payloads = scalar
        values = [_NULL if v is None else {tag: v} for v in payloads.to_list()]
        errors: dict[int, str] = _float_problems(series) if base == t.FLOAT else {}
        return _Column(values, _payload_sizes(tag, payloads), errors)
    values = []
    sizes = np.empty(series.len(), dtype=np.int64)
    errors = {}
    for index, value in enumerate(series.to_list()):
        try:
            attribute, size = _attribute(value)
        except _BadValue as exc:
            attribute, size = _NULL, 1
            errors[index] = str(exc)
        values.append(attribute)
        sizes[index] = size
    return _Column(values, sizes, errors)


# --------------------------------------------------------------------------------------------
# Formatter
# --------------------------------------------------------------------------------------------


@dataclass
class RejectedRow:
    """A change that was not sent: which key it had and why."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"row with key {self.key}: {self.reason}"


@dataclass
class DynamoDBChanges:
    """What one delta batch asks of DynamoDB, after collapsing by key.

    ``puts`` are full items, ``deletes`` are keys; ``put_keys``/``delete_keys`` identify them
    (for merging several batches of one time). ``rejected`` rows are reported at flush.
    """

    time: int
    puts: list[dict[str, Any]]
    put_keys: list[tuple[Any, ...]]
    deletes: list[dict[str, Any]]
    delete_keys: list[tuple[Any, ...]]
    rejected: list[RejectedRow]


class DynamoDBFormatter(Formatter):
    """Delta batch → :class:`DynamoDBChanges` with low-level (pre-serialized) values."""

    def __init__(self, columns: dict[str, t.DType], key_columns: Sequence[str]) -> None:
        self.columns = dict(columns)
        self.key_columns = list(key_columns)

    def _key_payloads(self, frame: pl.DataFrame) -> list[tuple[str, pl.Series]]:
        found = []
        for name in self.key_columns:
            scalar = _scalar_payloads(frame[name], self.columns[name])
            assert scalar is not None  # write() accepts only keys with an S/N/B mapping
            found.append(scalar)
        return found

    def _describe_key(self, frame: pl.DataFrame, row: int) -> str:
        parts = []
        for name in self.key_columns:
            value = t.values_from_series(frame[name].slice(row, 1))[0]
            parts.append(f"{name}={value!r}")
        return ", ".join(parts)

    def format(self, batch: pl.DataFrame, time: int) -> DynamoDBChanges:
        if batch.height == 0:
            return DynamoDBChanges(time, [], [], [], [], [])
        # Collapse every key to its final effect: after sorting deletions before insertions
        # (stably), the last change of a key is an insertion whenever the key has one.
        key_names = [f"__dynamodb_key{i}" for i in range(len(self.key_columns))]
        payloads = self._key_payloads(batch)
        frame = batch.with_columns(
            [series.alias(name) for name, (_, series) in zip(key_names, payloads, strict=True)]
        )
        frame = frame.sort(DIFF, maintain_order=True).unique(
            subset=key_names, keep="last", maintain_order=True)
        rejected: list[RejectedRow] = []
        frame = self._drop_empty_keys(frame, key_names, rejected)
        inserted = frame[DIFF] > 0
        puts_frame = frame.filter(inserted)
        deletes_frame = frame.filter(~inserted)
        deletes, delete_keys = self._keys_of(deletes_frame, key_names, payloads)
        puts, put_keys = self._items_of(puts_frame, key_names, rejected)
        return DynamoDBChanges(time, puts, put_keys, deletes, delete_keys, rejected)

    def _drop_empty_keys(self, frame: pl.DataFrame, key_names: list[str],
                         rejected: list[RejectedRow]) -> pl.DataFrame:
        empty = pl.Series([False] * frame.height)
        for name, key in zip(key_names, self.key_columns, strict=True):
            series = frame[name]
            if series.dtype == pl.Binary:
                empty = empty | (series.bin.size() == 0)
            elif self.columns[key].strip_optional() in (t.STR, t.JSON):
                empty = empty | (series.str.len_bytes() == 0)
        if not empty.any():
            return frame
        for row in np.flatnonzero(empty.to_numpy()):
            rejected.append(RejectedRow(self._describe_key(frame, int(row)),
                                        "DynamoDB does not accept an empty string or empty "
                                        "bytes as a key value"))
        return frame.filter(~empty)

    def _keys_of(self, frame: pl.DataFrame, key_names: list[str],
                 payloads: list[tuple[str, pl.Series]]
                 ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        columns = [frame[name].to_list() for name in key_names]
        tags = [tag for tag, _ in payloads]
        identities = list(zip(*columns, strict=True))
        keys = [
            {name: {tag: value} for name, tag, value
             in zip(self.key_columns, tags, identity, strict=True)}
            for identity in identities
        ]
        return keys, identities

    def _items_of(self, frame: pl.DataFrame, key_names: list[str],
                  rejected: list[RejectedRow]
                  ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        if frame.height == 0:
            return [], []
        names = list(self.columns)
        serialized = [_serialize_column(frame[name], self.columns[name]) for name in names]
        sizes = np.zeros(frame.height, dtype=np.int64)
        for name, column in zip(names, serialized, strict=True):
            sizes += column.sizes + len(name.encode())
        problems: dict[int, list[str]] = {}
        for name, column in zip(names, serialized, strict=True):
            for row, reason in column.errors.items():
                problems.setdefault(row, []).append(f"column {name!r}: {reason}")
        for big in np.flatnonzero(sizes > MAX_ITEM_BYTES):
            problems.setdefault(int(big), []).append(
                f"the item is about {int(sizes[big])} bytes, over DynamoDB's limit of "
                f"{MAX_ITEM_BYTES} bytes (400 KB)")
        identities = list(zip(*[frame[name].to_list() for name in key_names], strict=True))
        rows = zip(*[column.values for column in serialized], strict=True)
        if not problems:
            return [dict(zip(names, row, strict=True)) for row in rows], identities
        items, kept = [], []
        for index, row in enumerate(rows):
            if index in problems:
                rejected.append(RejectedRow(self._describe_key(frame, index),
                                            "; ".join(problems[index])))
            else:
                items.append(dict(zip(names, row, strict=True)))
                kept.append(identities[index])
        return items, kept


# --------------------------------------------------------------------------------------------
# Table preparation (init_mode)
# --------------------------------------------------------------------------------------------


class DynamoDBWriteError(RuntimeError):
    """Some changes could not be written; every other change of the minibatch was."""


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _describe_table(client: Any, table_name: str) -> dict[str, Any] | None:
    try:
        return dict(client.describe_table(TableName=table_name)["Table"])
    except Exception as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _schema_mismatch(description: dict[str, Any], key_schema: list[tuple[str, str]]
                     ) -> str | None:
    """Why the existing table's key schema differs from ours (None if it matches)."""
    roles = {"HASH": "partition key", "RANGE": "sort key"}
    theirs = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
    types = {a["AttributeName"]: a["AttributeType"]
             for a in description.get("AttributeDefinitions", [])}
    ours = {role: name for (name, _), role in zip(key_schema, ("HASH", "RANGE"), strict=False)}
    ours_types = dict(key_schema)
    if theirs != ours:
        have = ", ".join(f"{roles[r]} {n!r}" for r, n in sorted(theirs.items()))
        want = ", ".join(f"{roles[r]} {n!r}" for r, n in sorted(ours.items()))
        return f"the table has {have or 'no key'}, but the connector writes with {want}"
    for name, wanted in ours_types.items():
        if types.get(name, wanted) != wanted:
            return (f"key attribute {name!r} has type {types[name]} in the table, but the "
                    f"column is written as {wanted}")
    return None


def _wait_for(client: Any, table_name: str, *, gone: bool, timeout_s: float = 300.0) -> None:
    """Poll until the table is ACTIVE (or deleted); DynamoDB does both asynchronously."""
    deadline = _time.monotonic() + timeout_s
    delay = 0.05
    while True:
        description = _describe_table(client, table_name)
        if gone and description is None:
            return
        if not gone and description is not None and description.get("TableStatus") == "ACTIVE":
            return
        if _time.monotonic() > deadline:
            state = "deleted" if gone else "active"
            raise TimeoutError(f"DynamoDB table {table_name!r} did not become {state} within "
                               f"{timeout_s:.0f} s")
        _time.sleep(delay)
        delay = min(delay * 2, 1.0)


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------

_THROTTLING = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "Throttling", "TooManyRequestsException", "InternalServerError", "ServiceUnavailable",
    "TransactionInProgressException",
}
_MAX_TRANSPORT_RETRIES = 8


class DynamoDBWriter(Writer):
    """Sends the changes of each time with ``BatchWriteItem``; ``flush`` returns when stored."""

    def __init__(self, settings: DynamoDBSettings, table_name: str,
                 key_schema: list[tuple[str, str]], init_mode: InitMode, name: str, *,
                 backoff_base_s: float = 0.05, backoff_cap_s: float = 5.0) -> None:
        self.settings = settings
        self.table_name = table_name
        self.key_schema = key_schema
        self.init_mode = init_mode
        self.name = name
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._client: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._prepared = False
        self._pending: list[DynamoDBChanges] = []
        self._lock = threading.Lock()
        self._resumed = False
        self.retries = 0  # throttling/unprocessed resends, for statistics and tests

    # --- preparation ---------------------------------------------------------------------
    def _prepare(self) -> None:
        if self._prepared:
            return
        self._client = self.settings.client()
        self.prepare_table(self._client)
        self._prepared = True

    def prepare_table(self, client: Any) -> None:
        """Apply ``init_mode`` (done once, by the output thread when the run starts)."""
        where = f"DynamoDB table {self.table_name!r} at {self.settings.describe()}"
        # A run resuming after a crash continues the table: writes by key are idempotent, so
        # the changes written again after the checkpoint leave it as they found it.
        if self.init_mode == "replace" and not self._resumed:
            if _describe_table(client, self.table_name) is not None:
                logger.info("%s: replacing %s", self.name, where)
                client.delete_table(TableName=self.table_name)
                _wait_for(client, self.table_name, gone=True)
            self._create(client)
            return
        description = _describe_table(client, self.table_name)
        if description is None:
            if self.init_mode == "default":
                raise ValueError(f"{where} does not exist; create it, or pass "
                                 f"init_mode='create_if_not_exists'")
            self._create(client)
            return
        mismatch = _schema_mismatch(description, self.key_schema)
        if mismatch is not None:
            raise ValueError(f"{where} cannot be written: {mismatch}; use "
                             f"init_mode='replace' to recreate it")
        if description.get("TableStatus") != "ACTIVE":
            _wait_for(client, self.table_name, gone=False)

    def _create(self, client: Any) -> None:
        key_schema = [{"AttributeName": name, "KeyType": role}
                      for (name, _), role in zip(self.key_schema, ("HASH", "RANGE"),
                                                 strict=False)]
        definitions = [{"AttributeName": name, "AttributeType": kind}
                       for name, kind in self.key_schema]
        try:
            client.create_table(TableName=self.table_name, KeySchema=key_schema,
                                AttributeDefinitions=definitions,
                                BillingMode="PAY_PER_REQUEST")
            logger.info("%s: created DynamoDB table %r", self.name, self.table_name)
        except Exception as exc:
            if _error_code(exc) != "ResourceInUseException":
                raise
            # Somebody created it meanwhile: fine if its keys are ours.
            description = _describe_table(client, self.table_name) or {}
            mismatch = _schema_mismatch(description, self.key_schema)
            if mismatch is not None:
                raise ValueError(f"DynamoDB table {self.table_name!r} cannot be written: "
                                 f"{mismatch}") from exc
        _wait_for(client, self.table_name, gone=False)

    # --- the Writer contract -------------------------------------------------------------
    def resume(self, position: Any) -> None:
        """The run resumes after a crash: keep the table even with ``init_mode='replace'``."""
        self._resumed = True

    def write(self, payload: DynamoDBChanges) -> None:
        self._prepare()
        self._pending.append(payload)

    def flush(self, time: int) -> None:
        self._prepare()
        pending, self._pending = self._pending, []
        if not pending:
            return
        requests, rejected = self._merge(pending)
        failures = self._send(requests)
        problems = [str(r) for r in rejected] + failures
        if problems:
            shown = "; ".join(problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise DynamoDBWriteError(
                f"{len(problems)} change(s) at time {time} could not be written to DynamoDB "
                f"table {self.table_name!r} (all other changes of that time were written): "
                f"{shown}{more}")

    def close(self) -> None:
        try:
            self._prepare()
            if self._pending:
                self.flush(self._pending[-1].time)
        finally:
            self._shutdown()

    def abort(self) -> None:
        self._pending = []
        # Do not wait: a request may be retrying throttling, and the run already failed.
        self._shutdown(wait=False)

    def _shutdown(self, *, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None

    # --- sending -------------------------------------------------------------------------
    @staticmethod
    def _merge(pending: list[DynamoDBChanges]
               ) -> tuple[list[dict[str, Any]], list[RejectedRow]]:
        rejected = [row for changes in pending for row in changes.rejected]
        if len(pending) == 1:
            (only,) = pending
            requests = [{"PutRequest": {"Item": item}} for item in only.puts]
            requests += [{"DeleteRequest": {"Key": key}} for key in only.deletes]
            return requests, rejected
        # Several batches in one time: a later change of a key replaces an earlier one,
        # because one BatchWriteItem request must not name a key twice.
        final: dict[tuple[Any, ...], dict[str, Any]] = {}
        for changes in pending:
            for identity, key in zip(changes.delete_keys, changes.deletes, strict=True):
                final[identity] = {"DeleteRequest": {"Key": key}}
            for identity, item in zip(changes.put_keys, changes.puts, strict=True):
                final[identity] = {"PutRequest": {"Item": item}}
        return list(final.values()), rejected

    def _send(self, requests: list[dict[str, Any]]) -> list[str]:
        chunks = [requests[i:i + MAX_BATCH] for i in range(0, len(requests), MAX_BATCH)]
        if len(chunks) <= 1:
            return [f for chunk in chunks for f in self._send_chunk(chunk)]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.settings.max_workers,
                thread_name_prefix=f"deltaflow-dynamodb-{self.table_name}")
        futures = [self._executor.submit(self._send_chunk, chunk) for chunk in chunks]
        failures: list[str] = []
        first_error: BaseException | None = None
        for future in futures:  # wait for all, so a failure never leaves requests running
            try:
                failures.extend(future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return failures

    def _sleep(self, attempt: int) -> None:
        # Exponential backoff with full jitter (spreads retries of concurrent senders).
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** min(attempt, 30)))
        _time.sleep(random.uniform(0, ceiling))

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        """One API call, retried on throttling (forever) and transport errors (a few times)."""
        attempt = transport_failures = 0
        while True:
            try:
                return method(**kwargs)
            except Exception as exc:
                code = _error_code(exc)
                if code in _THROTTLING:
                    with self._lock:
                        self.retries += 1
                elif code is None and _is_transport_error(exc) and \
                        transport_failures < _MAX_TRANSPORT_RETRIES:
                    transport_failures += 1
                    logger.warning("%s: DynamoDB unreachable (%s), retrying", self.name, exc)
                else:
                    raise
                self._sleep(attempt)
                attempt += 1

    def _send_chunk(self, chunk: list[dict[str, Any]]) -> list[str]:
        remaining = chunk
        attempt = 0
        while remaining:
            try:
                response = self._call(self._client.batch_write_item,
                                      RequestItems={self.table_name: remaining})
            except Exception as exc:
                if _error_code(exc) == "ValidationException":
                    # One bad change fails the whole request: write them one by one so that
                    # only the bad ones are lost, and report those.
                    return self._send_one_by_one(remaining)
                raise
            remaining = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if remaining:
                with self._lock:
                    self.retries += 1
                self._sleep(attempt)
                attempt += 1
        return []

    def _send_one_by_one(self, requests: list[dict[str, Any]]) -> list[str]:
        failures = []
        for request in requests:
            try:
                if "PutRequest" in request:
                    self._call(self._client.put_item, TableName=self.table_name,
                               Item=request["PutRequest"]["Item"])
                else:
                    self._call(self._client.delete_item, TableName=self.table_name,
                               Key=request["DeleteRequest"]["Key"])
            except Exception as exc:
                if _error_code(exc) != "ValidationException":
                    raise
                failures.append(f"row with key {self._key_text(request)}: DynamoDB rejected "
                                f"it: {exc}")
        return failures

    def _key_text(self, request: dict[str, Any]) -> str:
        item = request["PutRequest"]["Item"] if "PutRequest" in request \
            else request["DeleteRequest"]["Key"]
        parts = []
        for name, _ in self.key_schema:
            ((kind, value),) = item[name].items()
            parts.append(f"{name}={value}" if kind == "N" else f"{name}={value!r}")
        return ", ".join(parts)


def _is_transport_error(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, BotoConnectionError | HTTPClientError)


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------


def _key_column(table: Any, reference: Any, parameter: str) -> str:
    if not isinstance(reference, ColumnReference):
        raise TypeError(f"pw.io.dynamodb.write: {parameter} must be a column of the table "
                        f"(e.g. table.key), got {reference!r}")
    if reference.table is not table and getattr(reference.table, "_node", None) \
            is not table._node:
        raise ValueError(f"pw.io.dynamodb.write: {parameter} {reference.name!r} is a column of "
                         f"another table; use a column of the table being written")
    name = reference.name
    if name not in table._columns:
        if name == "id":
            raise ValueError(f"pw.io.dynamodb.write: {parameter} cannot be the row id; add it "
                             f"as a column first, e.g. table.with_columns(row_id=table.id)")
        raise table._missing(name)
    dtype = table._columns[name]
    if dtype.is_optional:
        raise TypeError(f"pw.io.dynamodb.write: {parameter} column {name!r} has type "
                        f"{dtype!r}; DynamoDB keys cannot be missing, so filter out the None "
                        f"values and declare the column non-optional (pw.unwrap or "
                        f"update_types)")
    try:
        kind = dynamodb_type(dtype)
    except TypeError:
        kind = "?"
    if kind not in KEY_TYPES:
        raise TypeError(f"pw.io.dynamodb.write: {parameter} column {name!r} of type {dtype!r} "
                        f"is written as {kind if kind != '?' else 'no fixed type'}, but "
                        f"DynamoDB keys must be strings (S), numbers (N) or binary (B); see the "
                        f"type conversion table in docs/dynamodb.md")
    return name


def _check_existing_table(settings: DynamoDBSettings, table_name: str,
                          key_schema: list[tuple[str, str]], init_mode: InitMode) -> None:
    """Read-only check of the destination when the pipeline is defined.

    ``replace`` and ``create_if_not_exists`` change the database only when the run starts;
    here we only catch what would fail then. An unreachable endpoint is not an error yet: the
    run checks again when it starts.
    """
    if init_mode == "replace":
        return
    from botocore.exceptions import NoCredentialsError

    client = settings.client(probe=True)
    try:
        description = _describe_table(client, table_name)
    except NoCredentialsError:
        raise ValueError("pw.io.dynamodb.write: no AWS credentials found; set "
                         "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)") from None
    except Exception as exc:  # noqa: BLE001 - anything else is re-checked at run start
        logger.info("pw.io.dynamodb.write: could not check table %r at %s now (%s); it will "
                    "be checked when the run starts", table_name, settings.describe(), exc)
        return
    where = f"DynamoDB table {table_name!r} at {settings.describe()}"
    if description is None:
        if init_mode == "default":
            raise ValueError(f"pw.io.dynamodb.write: {where} does not exist; create it, or "
                             f"pass init_mode='create_if_not_exists'")
        return
    mismatch = _schema_mismatch(description, key_schema)
    if mismatch is not None:
        raise ValueError(f"pw.io.dynamodb.write: {where} cannot be written: {mismatch}; use "
                         f"init_mode='replace' to recreate it")


def write(table: Any, table_name: str, partition_key: ColumnReference, *,
          sort_key: ColumnReference | None = None, init_mode: InitMode = "default",
          name: str | None = None) -> None:
    """Keep the DynamoDB table ``table_name`` equal to ``table``.

    Every row of ``table`` is an item keyed by ``partition_key`` (and ``sort_key``): an
    inserted row is put, a deleted row's key is deleted, an updated row's item is replaced.
    Connection settings come from the environment (``AWS_ENDPOINT_URL_DYNAMODB`` or
    ``AWS_ENDPOINT_URL``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, and the usual credentials).

    ``init_mode``: ``"default"`` writes to an existing table whose keys must match;
    ``"create_if_not_exists"`` creates an on-demand table when missing; ``"replace"`` deletes
    and recreates it. Arguments, key types and (when the endpoint is reachable) the existing
    table are checked here; creating or replacing the table happens when the run starts.
    Column types map to DynamoDB types as in :data:`TYPE_MAPPING`.
    """
    from deltaflow.table import Table

    if not isinstance(table, Table):
        raise TypeError(f"pw.io.dynamodb.write: table must be a pw.Table, got {table!r}")
    if not isinstance(table_name, str) or not 3 <= len(table_name) <= 255:
        raise ValueError(f"pw.io.dynamodb.write: table_name must be a string of 3 to 255 "
                         f"characters, got {table_name!r}")
    if init_mode not in _INIT_MODES:
        raise ValueError(f"pw.io.dynamodb.write: init_mode must be one of "
                         f"{', '.join(map(repr, _INIT_MODES))}, got {init_mode!r}")
    keys = [_key_column(table, partition_key, "partition_key")]
    if sort_key is not None:
        keys.append(_key_column(table, sort_key, "sort_key"))
        if keys[1] == keys[0]:
            raise ValueError(f"pw.io.dynamodb.write: sort_key {keys[1]!r} is also the "
                             f"partition key; use a different column")
    columns = dict(table._columns)
    for column, dtype in columns.items():
        try:
            dynamodb_type(dtype)
        except TypeError:
            raise TypeError(f"pw.io.dynamodb.write: column {column!r} has type {dtype!r}, "
                            f"which cannot be written to DynamoDB; declare a concrete type "
                            f"with update_types or pw.cast") from None
    key_schema = [(column, dynamodb_type(columns[column])) for column in keys]
    settings = DynamoDBSettings.from_env()
    _check_existing_table(settings, table_name, key_schema, init_mode)
    connector = name or f"dynamodb:{table_name}"
    writer = DynamoDBWriter(settings, table_name, key_schema, init_mode, connector)
    write_table(table, writer, DynamoDBFormatter(columns, keys), name=connector)
