"""Amazon S3 (and S3-compatible stores): ``pw.io.s3.read`` and ``pw.io.s3.write``.

Everything that talks to the store goes through boto3. This module holds the settings class,
the object-store :class:`Reader` (listing polls + parallel downloads) and the batching
:class:`Writer` (one complete object per upload); parsing and formatting of CSV/JSON rows is
the shared code of :mod:`deltaflow.io._core`.
"""

from __future__ import annotations

import collections
import fnmatch
import itertools
import logging
import re
import threading
import time as _time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow.io._core.base import (
    Data,
    Finished,
    FinishedSource,
    Formatter,
    NewSource,
    OffsetAntichain,
    RawContext,
    Reader,
    ReadEvent,
    Writer,
)
from deltaflow.io._core.environment import seconds_from_env
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
from deltaflow.schema import Schema

logger = logging.getLogger("deltaflow.io.s3")

_FORMATS = ("csv", "json", "plaintext", "plaintext_by_object", "binary", "only_metadata")
_WRITE_FORMATS = ("csv", "json")
_EXTENSIONS = {"csv": "csv", "json": "jsonl"}

DEFAULT_WRITE_INTERVAL_MS = 1000
"""``write_interval_ms`` when not given: at most one new object per second."""

MAX_OUTAGE_ENV = "DELTAFLOW_S3_MAX_OUTAGE_S"
"""Environment variable: how long (seconds) uploads may keep failing before the run fails."""

DEFAULT_MAX_OUTAGE_S = 300.0
_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 10.0

# Error codes after which retrying cannot help: the settings are wrong.
_FATAL_CODES = {
    "NoSuchBucket": "the bucket does not exist",
    "InvalidBucketName": "the bucket name is not valid",
    "InvalidAccessKeyId": "the access key is not known to the store (check access_key)",
    "SignatureDoesNotMatch": "the request signature was rejected (check secret_access_key)",
    "AccessDenied": "access was denied (check the credentials and the bucket's permissions)",
    "AllAccessDisabled": "all access to this bucket is disabled",
    "InvalidToken": "the session token was rejected (check session_token)",
    "ExpiredToken": "the session token has expired (check session_token)",
    "AuthorizationHeaderMalformed": "the request was rejected (check region)",
    "PermanentRedirect": "the bucket is in another region (check region or endpoint)",
}
_FATAL_STATUS = {400, 401, 403, 404, 405, 411, 413}


# ------------------------------------------------------------------------------------------
# Settings and locations
# ------------------------------------------------------------------------------------------


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

    def __init__(self, *, bucket_name: str | None = None, access_key: str | None = None,
                 secret_access_key: str | None = None, with_path_style: bool = False,
                 region: str | None = None, endpoint: str | None = None,
                 session_token: str | None = None) -> None:
        for arg, value in (("bucket_name", bucket_name), ("access_key", access_key),
                           ("secret_access_key", secret_access_key), ("region", region),
                           ("endpoint", endpoint), ("session_token", session_token)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"AwsS3Settings: {arg} must be a string or None, "
                                f"got {type(value).__name__}")
        if (access_key is None) != (secret_access_key is None):
            raise ValueError("AwsS3Settings: give both access_key and secret_access_key, or "
                             "neither (then the standard AWS credential chain is used)")
        self.bucket_name = bucket_name
        self.access_key = access_key
        self.secret_access_key = secret_access_key
        self.with_path_style = bool(with_path_style)
        self.region = region
        self.endpoint = endpoint
        self.session_token = session_token

    def __repr__(self) -> str:
        # Secrets never appear in reprs (they end up in logs and tracebacks).
        return (f"AwsS3Settings(bucket_name={self.bucket_name!r}, endpoint={self.endpoint!r}, "
                f"region={self.region!r}, with_path_style={self.with_path_style!r}, "
                f"access_key={'***' if self.access_key else None})")

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

    def _client(self, *, pool_size: int = 10, attempts: int = 3) -> Any:
        """A boto3 S3 client for these settings (clients are thread-safe).

        With explicit keys the client is reused across runs (building one costs tens of
        milliseconds); with the standard credential chain a new one is built each time, so
        that changes to the environment or profiles are seen.
        """
        if self.access_key is None:
            return self._new_client(pool_size, attempts)
        cache_key = (self.access_key, self.secret_access_key, self.session_token, self.region,
                     self.endpoint, self.with_path_style, pool_size, attempts)
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(cache_key)
        if client is None:
            client = self._new_client(pool_size, attempts)
            with _CLIENTS_LOCK:
                client = _CLIENTS.setdefault(cache_key, client)
        return client

    def _new_client(self, pool_size: int, attempts: int) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token, region_name=self.region,
            botocore_session=_botocore_session(),
        )
        region = self.region or session.region_name or "us-east-1"
        config = Config(
            s3={"addressing_style": "path" if self.with_path_style else "auto"},
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=5, read_timeout=60, max_pool_connections=max(pool_size, 10),
        )
        return session.client("s3", endpoint_url=self._endpoint_url(), region_name=region,
                              config=config)


_LOADER_LOCK = threading.Lock()
_SHARED_LOADER: Any = None
_CLIENTS_LOCK = threading.Lock()
_CLIENTS: dict[tuple[Any, ...], Any] = {}


def _botocore_session() -> Any:
    """A fresh botocore session (so the credential chain is resolved anew) sharing one model
    loader: parsing the S3 service description costs ~0.3 s per session otherwise."""
    import botocore.session

    global _SHARED_LOADER
    session = botocore.session.get_session()
    with _LOADER_LOCK:
        if _SHARED_LOADER is None:
            _SHARED_LOADER = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _SHARED_LOADER)
    return session


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
            rest = path[len(scheme):]
            from_path, _, prefix = rest.partition("/")
            if not from_path:
                raise ValueError(f"{connector}: path {path!r} names no bucket")
            if bucket and bucket != from_path:
                raise ValueError(f"{connector}: path {path!r} names bucket {from_path!r} but "
                                 f"the settings name bucket {bucket!r}; make them agree")
            bucket = from_path
            break
    if not bucket:
        raise ValueError(f"{connector}: no bucket given: use a path like 's3://bucket/prefix' "
                         f"or set bucket_name in the settings")
    return S3Location(bucket=bucket, prefix=prefix.lstrip("/"))


def _check_settings(settings: Any, connector: str) -> AwsS3Settings:
    if settings is None:
        return AwsS3Settings()
    if hasattr(settings, "create_aws_settings"):
        settings = settings.create_aws_settings()
    if not isinstance(settings, AwsS3Settings):
        raise TypeError(f"{connector}: aws_s3_settings must be pw.io.s3.AwsS3Settings, "
                        f"got {type(settings).__name__}")
    return settings


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


class S3ConnectorError(RuntimeError):
    """A request to the store failed. ``fatal``: retrying cannot help (wrong settings)."""

    def __init__(self, message: str, *, fatal: bool = True) -> None:
        super().__init__(message)
        self.fatal = fatal


MIN_REDACTED_LENGTH = 4
"""Shorter "secrets" (test keys such as ``s`` or ``key``) are not redacted: replacing every
occurrence of a few letters mangles the message and hides nothing worth hiding."""


def _redact(text: str, secrets: list[str]) -> str:
    """``text`` with every whole occurrence of a secret replaced by ``***``. A secret counts
    only where no letter or digit touches it, so an error message is never cut up
    mid-word."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < MIN_REDACTED_LENGTH:
            continue
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])",
                      "***", text)
    return text


def classify_error(error: BaseException, secrets: list[str]) -> tuple[bool, str]:
    """(fatal, message) for a boto3 error: fatal errors are the settings' fault."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return True, ("no AWS credentials found: pass access_key and secret_access_key in the "
                      "settings or configure the standard AWS credential chain")
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = _redact(str(details.get("Message", "")), secrets)
        if code in _FATAL_CODES:
            return True, f"{_FATAL_CODES[code]} ({code}: {message})"
        if status in _FATAL_STATUS and code not in {"RequestTimeout", "SlowDown", "Throttling",
                                                    "ThrottlingException"}:
            return True, f"the store rejected the request ({code or status}: {message})"
        return False, f"{code or status}: {message}"
    return False, _redact(f"{type(error).__name__}: {error}", secrets)


# ------------------------------------------------------------------------------------------
# Writer
# ------------------------------------------------------------------------------------------

_KEY_DIGITS = 16
_OBJECT_NAME = re.compile(rf"^(\d{{{_KEY_DIGITS}}})\.[A-Za-z0-9]+$")


def _directory_prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


MAX_IN_FLIGHT = 2
"""How many objects may be uploading (or waiting to retry) at once."""


@dataclass(eq=False)
class _PendingObject:
    """An object made by a flush: its rows are fixed; its number is given when it is first
    sent (in the order objects were made) and kept for every retry."""

    chunks: list[bytes]
    body: bytes | None = None
    index: int | None = None
    order: int = 0  # objects made before this one in this run


class S3Writer(Writer):
    """Buffers formatted rows and uploads them as one new object per interval.

    Rows written for a time are "sealed" by ``flush(time)``; only sealed rows go into an
    object, so an object never holds part of a time. A flush makes a new object of all sealed
    rows if at least ``interval_s`` passed since the last successful upload and since the
    last object was made (since the first rows, before any), and keeps them buffered
    otherwise. Sender threads upload the objects while the session thread formats the next
    times; ``max_in_flight`` objects (default :data:`MAX_IN_FLIGHT`) may be uploading or
    waiting to retry at once. When all slots are taken, a flush waits for one (backpressure:
    every due flush makes exactly one object), except during an outage, when rows simply stay
    buffered. The senders also make an object of sealed rows that become due when no flush
    comes. Object ``n`` is named ``<prefix>/<n, 16 digits>.<ext>``; ``n`` continues after the
    objects already under the prefix, is given in the order objects are made and kept across
    retries, so a retry overwrites its own object and never duplicates rows.
    """

    def __init__(self, *, name: str, settings: AwsS3Settings, location: S3Location,
                 extension: str, header: Callable[[], bytes] | None, interval_s: float,
                 max_outage_s: float, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.name = name
        self.settings = settings
        self.location = location
        self.extension = extension
        self.header = header
        self.interval_s = interval_s
        self.max_outage_s = max_outage_s
        self.max_in_flight = max_in_flight
        self._prefix = _directory_prefix(location.prefix)
        self._lock = threading.Condition()
        self._open: list[bytes] = []  # rows of the time being written
        self._sealed: list[bytes] = []  # rows of finished times, in no object yet
        self._waiting: collections.deque[_PendingObject] = collections.deque()
        self._sending = 0  # objects whose PUT is running
        self._client: Any = None
        self._next_index: int | None = None
        self._listing = False
        self._last_upload: float | None = None
        self._failures = 0
        self._first_failure: float | None = None
        self._retry_at = 0.0
        self._error: BaseException | None = None
        self._closing = False
        self._stopped = False
        self._threads: list[threading.Thread] = []
        # Exactly once with persistence (docs/persistence.md): after each flush, where its
        # rows will be — (objects made before them, their bytes at the start of the next
        # object) — until they are uploaded; a checkpoint only covers uploaded times.
        self._made = 0
        self._base_index: int | None = None  # the number of this run's first object
        self._uploaded: set[int] = set()
        self._uploaded_prefix = 0  # objects 0..n-1 of this run are all uploaded
        self._flushes: collections.deque[tuple[int, int, int]] = collections.deque()
        self._durable: int | None = None
        self._last_position: tuple[int, int] = (0, 0)

    # --- Writer API (output session thread) ----------------------------------------------
    def start(self) -> None:
        """Start the sender threads (idempotent). Called when the first batch of the run
        arrives, before it is formatted, so that building the client and listing the prefix
        overlap with formatting instead of delaying the first upload."""
        with self._lock:
            if self._threads:
                return
            for number in range(self.max_in_flight):
                thread = threading.Thread(target=self._sender, args=(number == 0,),
                                          daemon=True,
                                          name=f"deltaflow-s3-upload-{self.name}-{number}")
                self._threads.append(thread)
                thread.start()

    def write(self, payload: Any) -> None:
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        if not data:
            return
        self.start()
        with self._lock:
            self._raise_pending()
            if self._last_upload is None:
                # The interval is counted from the first data this writer sees.
                self._last_upload = _time.monotonic()
            self._open.append(data)

    def flush(self, time: int) -> None:
        with self._lock:
            try:
                self._flush(time)
            finally:
                position = (self._made, sum(len(chunk) for chunk in self._sealed))
                self._last_position = position
                self._flushes.append((time, *position))

    def _flush(self, time: int) -> None:
        self._raise_pending()
        if self._open:
            self._sealed.extend(self._open)
            self._open.clear()
            self._lock.notify_all()  # the senders' timer now has rows to wait for
        if not self._sealed or not self._due(_time.monotonic()):
            return
        self._lock.wait_for(lambda: self._error is not None or self._failures > 0
                            or self._in_flight() < self.max_in_flight)
        self._raise_pending()
        # A sender may have made the object meanwhile (its timer saw the rows due).
        if self._sealed and self._in_flight() < self.max_in_flight:
            self._make_object()

    # --- persistence: what a checkpoint may cover, and undoing what followed it ----------
    def position(self) -> list[int]:
        """(objects made before the rows of the last flushed time's successors, bytes of
        those rows at the start of the next object), relative to this run's first object."""
        with self._lock:
            return list(self._last_position)

    def durable_time(self) -> int | None:
        """The last flushed time whose rows are all uploaded (None: none yet)."""
        with self._lock:
            while self._flushes:
                _, made, pending = self._flushes[0]
                if self._uploaded_prefix < made + (1 if pending else 0):
                    break
                self._durable = self._flushes.popleft()[0]
            return self._durable

    def export_position(self, position: Any) -> Any:
        """An absolute position: the number of the first object that holds rows after the
        checkpoint and how many bytes of its rows (after the header) precede them."""
        if not isinstance(position, list):
            return position  # the resumed position, already absolute (or None)
        made, pending = position
        with self._lock:
            if self._base_index is None:
                if self._next_index is None:
                    self._lock.release()
                    try:
                        if self._client is None:
                            self._client = self.settings._client(attempts=2)
                        first = self._first_free_index()
                    finally:
                        self._lock.acquire()
                    if self._next_index is None:
                        self._next_index = self._base_index = first
                if self._base_index is None:
                    self._base_index = self._next_index
            return {"index": self._base_index + made, "bytes": pending}

    def resume(self, position: Any) -> None:
        """Undo what the crashed run uploaded after the checkpoint: objects from ``index`` on
        are deleted, except that object ``index`` keeps its first ``bytes`` bytes of rows
        (rewritten). Numbering then continues right after what is kept."""
        if not isinstance(position, dict):
            return
        index, keep = int(position["index"]), int(position["bytes"])
        client = self.settings._client(attempts=3)
        try:
            later = [i for i in self._object_numbers(client) if i >= index]
            if keep:
                key = self._object_key(index)
                if index in later:
                    body = client.get_object(Bucket=self.location.bucket, Key=key)["Body"].read()
                    header = self.header() if self.header is not None else b""
                    if len(body) > len(header) + keep:
                        client.put_object(Bucket=self.location.bucket, Key=key,
                                          Body=body[:len(header) + keep])
                else:
                    logger.warning("output %s: object %s, uploaded before the checkpoint, is "
                                   "missing", self.name, key)
            for number in later:
                if number > index or not keep:
                    client.delete_object(Bucket=self.location.bucket,
                                         Key=self._object_key(number))
        except Exception as exc:
            _, message = classify_error(exc, self.settings._secrets())
            raise S3ConnectorError(f"output {self.name}: cannot remove what the crashed run "
                                   f"wrote to {self.location} after the checkpoint: "
                                   f"{message}") from None
        removed = [n for n in later if n > index or not keep]
        if removed:
            logger.info("output %s: removed %d object(s) written after the checkpoint (their "
                        "rows are written again by this run)", self.name, len(removed))
        self._client = client
        self._next_index = self._base_index = index + (1 if keep else 0)

    def _object_key(self, number: int) -> str:
        return f"{self._prefix}{number:0{_KEY_DIGITS}d}.{self.extension}"

    def _object_numbers(self, client: Any) -> list[int]:
        numbers = []
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self._prefix,
                                       Delimiter="/"):
            for item in page.get("Contents", []):
                match = _OBJECT_NAME.match(item["Key"][len(self._prefix):])
                if match:
                    numbers.append(int(match.group(1)))
        return sorted(numbers)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._sealed.extend(self._open)
            self._open.clear()
            self._lock.notify_all()
            # The senders upload what is left regardless of the interval, retrying with
            # backoff until the outage limit.
            if self._threads:
                self._lock.wait_for(lambda: self._error is not None or self._drained())
            self._stopped = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join()
        with self._lock:
            self._raise_pending()

    def abort(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
            left = len(self._open) + len(self._sealed) + len(self._waiting) + self._sending
        for thread in self._threads:
            thread.join(timeout=5)
        if left:
            logger.warning("output %s: the run failed; buffered rows were not all uploaded "
                           "(%d chunk(s) or object(s) left)", self.name, left)

    # --- state (callers hold the lock) ---------------------------------------------------
    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def _in_flight(self) -> int:
        return len(self._waiting) + self._sending

    def _drained(self) -> bool:
        return not self._open and not self._sealed and not self._in_flight()

    def _due(self, now: float) -> bool:
        last = self._last_upload if self._last_upload is not None else now
        return now - last >= self.interval_s and now >= self._retry_at

    def _make_object(self) -> None:
        assert self._sealed, "an empty buffer is never uploaded"
        self._waiting.append(_PendingObject(chunks=self._sealed, order=self._made))
        self._made += 1
        self._sealed = []
        # The next object is due an interval after this one was made (and after the last
        # success): overlapping uploads never make objects more often than the interval.
        self._last_upload = _time.monotonic()
        self._lock.notify_all()

    # --- sender threads ------------------------------------------------------------------
    def _sender(self, prepare: bool) -> None:
        """Uploads objects (retrying failed ones after the backoff) and makes an object of
        sealed rows that become due when no flush comes."""
        if prepare:
            # The client and the first free number get ready while the first rows are being
            # formatted; if the listing fails here, the first upload repeats it.
            with self._lock:
                self._listing = True
            try:
                self._client = self.settings._client(attempts=2)
                first = self._first_free_index()
            except Exception:  # noqa: BLE001 - retried (and reported) by the first upload
                first = None
            with self._lock:
                if self._next_index is None and first is not None:
                    self._next_index = self._base_index = first
                self._listing = False
                self._lock.notify_all()
        with self._lock:
            while self._error is None and not self._stopped:
                now = _time.monotonic()
                if self._waiting and now >= self._retry_at:
                    if self._next_index is None and self._waiting[0].index is None:
                        if not self._listing:
                            self._find_first_index()
                        else:
                            self._lock.wait()
                        continue
                    self._send(self._waiting.popleft())
                    continue
                if self._sealed and self._in_flight() < self.max_in_flight and \
                        (self._closing and now >= self._retry_at or self._due(now)):
                    self._make_object()
                    continue
                self._lock.wait(self._sleep_time(now))

    def _sleep_time(self, now: float) -> float | None:
        """How long the senders may sleep before a retry or a due upload needs them."""
        if self._waiting:
            return max(self._retry_at - now, 0.0)
        if self._sealed:
            last = self._last_upload if self._last_upload is not None else now
            return max(last + self.interval_s, self._retry_at) - now
        return None  # woken by a flush, close or abort

    def _find_first_index(self) -> None:
        """List the prefix (lock released meanwhile) to learn the first free number."""
        self._listing = True
        self._lock.release()
        error: BaseException | None = None
        first = None
        try:
            if self._client is None:
                self._client = self.settings._client(attempts=2)
            first = self._first_free_index()
        except Exception as exc:  # noqa: BLE001 - classified below
            error = exc
        finally:
            self._lock.acquire()
        self._listing = False
        self._lock.notify_all()
        if error is not None:
            self._on_failure(error)
        elif self._next_index is None:
            self._next_index = self._base_index = first

    def _send(self, obj: _PendingObject) -> None:
        """One PUT of ``obj`` (the lock is released during the request)."""
        if obj.index is None:
            assert self._next_index is not None
            obj.index = self._next_index
            self._next_index += 1
        self._sending += 1
        self._lock.release()
        error: BaseException | None = None
        key = f"{self._prefix}{obj.index:0{_KEY_DIGITS}d}.{self.extension}"
        try:
            if obj.body is None:
                header = self.header() if self.header is not None else b""
                obj.body = b"".join([header, *obj.chunks])
                obj.chunks = []
            self._client.put_object(Bucket=self.location.bucket, Key=key, Body=obj.body)
        except Exception as exc:  # noqa: BLE001 - classified below
            error = exc
        finally:
            self._lock.acquire()
        self._sending -= 1
        self._lock.notify_all()
        if error is not None:
            # Back in line, in number order, to be retried after the backoff.
            self._waiting.appendleft(obj)
            self._waiting = collections.deque(sorted(
                self._waiting, key=lambda o: (o.index is None, o.index or 0)))
            self._on_failure(error)
            return
        self._uploaded.add(obj.order)
        while self._uploaded_prefix in self._uploaded:
            self._uploaded.discard(self._uploaded_prefix)
            self._uploaded_prefix += 1
        if self._failures:
            logger.info("output %s: upload to %s succeeded after %d failed attempt(s)",
                        self.name, self.location, self._failures)
        logger.debug("output %s: uploaded %s (%d bytes)", self.name, key, len(obj.body or b""))
        self._last_upload = _time.monotonic()
        self._failures = 0
        self._first_failure = None
        self._retry_at = 0.0

    def _first_free_index(self) -> int:
        """One past the highest object number already under the prefix (earlier runs)."""
        highest = -1
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self._prefix,
                                       Delimiter="/"):
            for item in page.get("Contents", []):
                match = _OBJECT_NAME.match(item["Key"][len(self._prefix):])
                if match:
                    highest = max(highest, int(match.group(1)))
        return highest + 1

    def _on_failure(self, exc: BaseException) -> None:
        """Remember a failed request: fatal errors and outages beyond the limit end the run
        (the next write/flush/close raises them), others are retried after a backoff."""
        fatal, message = classify_error(exc, self.settings._secrets())
        if fatal:
            self._error = S3ConnectorError(f"output {self.name}: cannot write to "
                                           f"{self.location}: {message}")
            self._lock.notify_all()
            return
        now = _time.monotonic()
        self._failures += 1
        if self._first_failure is None:
            self._first_failure = now
        outage = now - self._first_failure
        if outage >= self.max_outage_s:
            self._error = S3ConnectorError(
                f"output {self.name}: uploads to {self.location} kept failing for "
                f"{outage:.1f} s ({self._failures} attempts; limit {self.max_outage_s:g} s, "
                f"set by {MAX_OUTAGE_ENV}); last error: {message}")
            self._lock.notify_all()
            return
        delay = min(_BACKOFF_FIRST_S * 2 ** (self._failures - 1), _BACKOFF_MAX_S)
        self._retry_at = now + delay
        logger.warning("output %s: upload to %s failed (attempt %d), keeping the rows and "
                       "retrying in %.1f s: %s", self.name, self.location, self._failures,
                       delay, message)
        self._lock.notify_all()


class _StartingFormatter(Formatter):
    """The shared formatter, unchanged, plus a wake-up call: the first batch starts the
    writer's uploader before the batch is formatted (see :meth:`S3Writer.start`)."""

    def __init__(self, inner: Formatter, writer: S3Writer) -> None:
        self.inner = inner
        self.writer = writer

    def format(self, batch: pl.DataFrame, time: int) -> Any:
        self.writer.start()
        return self.inner.format(batch, time)


def _max_outage_s(connector: str) -> float:
    return seconds_from_env(MAX_OUTAGE_ENV, DEFAULT_MAX_OUTAGE_S, connector)



# ------------------------------------------------------------------------------------------
# Reader: listing polls and parallel downloads
# ------------------------------------------------------------------------------------------

DEFAULT_DOWNLOADER_THREADS = 8
LISTING_POLL_S = 0.5
"""How often streaming mode lists the prefix again."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing says about one object."""

    key: str
    etag: str
    size: int
    modified_s: int

    def metadata(self, seen_s: int) -> dict[str, Any]:
        """The ``_metadata`` value of rows from this object (as Pathway's S3 reader)."""
        return {"created_at": None, "modified_at": self.modified_s, "owner": None,
                "path": self.key, "size": self.size, "seen_at": seen_s}


@dataclass
class ObjectChange:
    """An object appeared or changed (``content`` downloaded unless metadata-only) or was
    deleted (``deleted``)."""

    info: ObjectInfo
    content: bytes | None = None
    deleted: bool = False


class S3Lister:
    """Lists a prefix, tells what changed since the previous listing, downloads the changes."""

    def __init__(self, *, name: str, settings: AwsS3Settings, location: S3Location,
                 path_filter: str | None, threads: int, download: bool) -> None:
        self.name = name
        self.settings = settings
        self.location = location
        self.path_filter = path_filter
        self.threads = threads
        self.download = download
        self.known: dict[str, ObjectInfo] = {}
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self.settings._client(pool_size=self.threads)
        return self._client

    def list(self) -> list[ObjectInfo]:
        """Every object under the prefix that passes ``path_filter``."""
        found: list[ObjectInfo] = []
        try:
            paginator = self.client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.location.bucket,
                                           Prefix=self.location.prefix):
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    if key.endswith("/"):
                        continue  # "directory" placeholder objects hold no data
                    if self.path_filter is not None and \
                            not fnmatch.fnmatchcase(key, self.path_filter):
                        continue
                    found.append(ObjectInfo(
                        key=key, etag=str(item.get("ETag", "")), size=int(item.get("Size", 0)),
                        modified_s=int(item["LastModified"].timestamp())))
        except Exception as exc:  # noqa: BLE001 - classified
            raise self._error("list", exc) from None
        return found

    def changes(self) -> Iterator[ObjectChange]:
        """New, changed and deleted objects since the last call, in order: deletions first,
        then by modification time and key (the order of Pathway's reader). Downloads run in
        parallel, a few objects per thread at a time, as the iterator is consumed."""
        listing = {info.key: info for info in self.list()}
        deleted = [ObjectChange(info, deleted=True) for key, info in sorted(self.known.items())
                   if key not in listing]
        updated = sorted((info for key, info in listing.items() if self.known.get(key) != info),
                         key=lambda info: (info.modified_s, info.key))
        self.known = listing
        yield from deleted
        yield from self._downloaded(updated)

    def _downloaded(self, infos: Sequence[ObjectInfo]) -> Iterator[ObjectChange]:
        if not self.download:
            yield from (ObjectChange(info) for info in infos)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads,
                                            thread_name_prefix=f"deltaflow-s3-{self.name}")
        # A bounded window of downloads in flight keeps memory proportional to the threads,
        # not to the number of objects.
        window = self.threads * 2
        futures: collections.deque[tuple[ObjectInfo, Future[bytes | None]]] = \
            collections.deque()
        remaining = iter(infos)
        for info in itertools.islice(remaining, window):
            futures.append((info, self._pool.submit(self._get, info)))
        while futures:
            info, future = futures.popleft()
            try:
                content = future.result()
            except S3ConnectorError:
                # Objects not delivered yet are forgotten, so that the next listing offers
                # them again (as new or changed).
                for pending in [info, *(i for i, _ in futures), *remaining]:
                    self.known.pop(pending.key, None)
                raise
            following = next(remaining, None)
            if following is not None:
                futures.append((following, self._pool.submit(self._get, following)))
            if content is not None:
                yield ObjectChange(info, content=content)
            else:
                # Deleted between listing and download: forget it, so that it counts as new
                # if it comes back.
                self.known.pop(info.key, None)

    def _get(self, info: ObjectInfo) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client().get_object(Bucket=self.location.bucket, Key=info.key)
            return bytes(response["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise self._error(f"download {info.key!r}", exc) from None
        except Exception as exc:  # noqa: BLE001 - classified
            raise self._error(f"download {info.key!r}", exc) from None

    def _error(self, action: str, exc: BaseException) -> S3ConnectorError:
        fatal, message = classify_error(exc, self.settings._secrets())
        return S3ConnectorError(f"input {self.name}: cannot {action} in {self.location}: "
                                f"{message}", fatal=fatal)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class S3Reader(Reader):
    """One source block per object: static mode reads the prefix once, streaming mode lists
    it again every ``poll_interval_s`` and turns new, changed and deleted objects into
    inserted, replaced and retracted rows."""

    def __init__(self, lister: S3Lister, *, streaming: bool, max_outage_s: float,
                 poll_interval_s: float = LISTING_POLL_S) -> None:
        self.lister = lister
        self.streaming = streaming
        self.max_outage_s = max_outage_s
        self.poll_interval_s = poll_interval_s
        self._failures = 0
        self._first_failure: float | None = None
        # Only streaming mode replaces objects, so only it needs the session to keep rows.
        self.retracts_sources = streaming
        self._events: collections.deque[ReadEvent] = collections.deque()
        self._changes: Iterator[ObjectChange] | None = None
        self._next_listing = 0.0
        self._listed_once = False
        self._emitted: set[str] = set()

    def seek(self, frontier: OffsetAntichain) -> None:
        """Resume after ``frontier`` (object key -> ETag when it was read).

        One listing tells which of those objects are unchanged (not read again), changed (read
        again, replacing their earlier rows) or gone (their rows retracted) — in static mode
        as in streaming mode, so the reader now declares ``retracts_sources``.
        """
        if not frontier:
            return
        listing = {info.key: info for info in self.lister.list()}
        for key, etag in frontier.items():
            key = str(key)
            info = listing.get(key)
            # An ETag no object has makes the next listing see a change (or a deletion).
            self.lister.known[key] = info if info is not None and info.etag == etag else \
                ObjectInfo(key=key, etag=f"{etag} (checkpointed)", size=-1, modified_s=-1)
            self._emitted.add(key)
        self.retracts_sources = True

    def read(self) -> ReadEvent | None:
        try:
            return self._read()
        except S3ConnectorError as exc:
            if exc.fatal:
                raise
            return self._on_transient_failure(exc)

    def _on_transient_failure(self, exc: S3ConnectorError) -> ReadEvent | None:
        """Keep going after a failed listing or download; fail after ``max_outage_s``."""
        now = _time.monotonic()
        self._changes = None
        self._listed_once = False
        self._failures += 1
        if self._first_failure is None:
            self._first_failure = now
        if now - self._first_failure >= self.max_outage_s:
            raise S3ConnectorError(f"{exc} (the store stayed unreachable for "
                                   f"{now - self._first_failure:.1f} s; limit "
                                   f"{self.max_outage_s:g} s, set by {MAX_OUTAGE_ENV})") from None
        delay = min(_BACKOFF_FIRST_S * 2 ** (self._failures - 1), _BACKOFF_MAX_S)
        self._next_listing = now + max(delay, self.poll_interval_s)
        logger.warning("%s; retrying in %.1f s", exc, self._next_listing - now)
        return None

    def _read(self) -> ReadEvent | None:
        while not self._events:
            if self._changes is not None:
                change = next(self._changes, None)
                if change is None:
                    self._changes = None
                    self._recovered()
                    continue
                self._emit(change)
                continue
            if self._listed_once and not self.streaming:
                return Finished()
            if _time.monotonic() < self._next_listing:
                return None
            self._changes = self.lister.changes()
            change = next(self._changes, None)
            self._listed_once = True
            self._next_listing = _time.monotonic() + self.poll_interval_s
            if change is None:
                self._changes = None
                self._recovered()
                return None if self.streaming else Finished()
            self._emit(change)
        return self._events.popleft()

    def _recovered(self) -> None:
        """A listing and all its downloads succeeded."""
        if self._failures:
            logger.info("%s: the store is reachable again", self.lister.name)
        self._failures = 0
        self._first_failure = None

    def _emit(self, change: ObjectChange) -> None:
        key = change.info.key
        replaces = key in self._emitted
        if change.deleted:
            if replaces:
                self._emitted.discard(key)
                self._events.append(NewSource({"path": key}, key=key, replaces=True))
                self._events.append(FinishedSource())
            return
        metadata = change.info.metadata(int(_time.time()))
        content = change.content if change.content is not None else b""
        self._emitted.add(key)
        self._events.append(NewSource(metadata, key=key, replaces=replaces))
        self._events.append(Data(RawContext([content], metadata),
                                 offset=(key, change.info.etag)))
        self._events.append(FinishedSource())

    def close(self) -> None:
        self.lister.close()


def _read(path: str, fmt: str, *, settings: AwsS3Settings, schema: Any, mode: str,
          with_metadata: bool, csv_settings: Any, json_field_paths: Any, path_filter: Any,
          downloader_threads_count: Any, autocommit_duration_ms: Any, name: str | None,
          max_backlog_size: Any, kwargs: dict[str, Any], connector: str) -> Any:
    """The body of ``pw.io.s3.read`` / ``pw.io.minio.read`` (``connector`` names the API)."""
    if fmt not in _FORMATS:
        raise ValueError(f"{connector}: unknown format {fmt!r}; expected one of "
                         f"{', '.join(_FORMATS)}")
    check_mode(mode, connector)
    autocommit = check_autocommit(autocommit_duration_ms, connector)
    backlog = check_backlog(max_backlog_size, connector)
    check_extra_kwargs(kwargs, connector)
    location = resolve_location(path, settings, connector=connector)
    if csv_settings is not None and not isinstance(csv_settings, CsvParserSettings):
        raise TypeError(f"{connector}: csv_settings must be a pw.io.CsvParserSettings, got "
                        f"{type(csv_settings).__name__}")
    if json_field_paths is not None and not isinstance(json_field_paths, dict):
        raise TypeError(f"{connector}: json_field_paths must be a dict of column -> JSON "
                        f"pointer, got {type(json_field_paths).__name__}")
    if path_filter is not None and not isinstance(path_filter, str):
        raise TypeError(f"{connector}: path_filter must be a glob pattern string, got "
                        f"{type(path_filter).__name__}")
    threads = DEFAULT_DOWNLOADER_THREADS if downloader_threads_count is None \
        else downloader_threads_count
    if isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0:
        raise ValueError(f"{connector}: downloader_threads_count must be a positive integer "
                         f"or None, got {downloader_threads_count!r}")
    table_schema = format_schema(fmt, schema, connector)
    if json_field_paths:
        unknown = set(json_field_paths) - set(table_schema.columns())
        if unknown:
            raise ValueError(f"{connector}: json_field_paths names columns that are not in "
                             f"the schema: {', '.join(sorted(unknown))}")
    parser_format = "plaintext_by_file" if fmt == "plaintext_by_object" else fmt
    parser = parser_for_format(parser_format, column_specs(table_schema),
                               csv_settings=csv_settings, json_field_paths=json_field_paths)
    if with_metadata or fmt == "only_metadata":
        table_schema = with_metadata_column(table_schema)
    label = name or str(location)
    streaming = mode == "streaming"
    max_outage_s = _max_outage_s(connector)

    def make_reader() -> S3Reader:
        lister = S3Lister(name=label, settings=settings, location=location,
                          path_filter=path_filter, threads=threads,
                          download=fmt != "only_metadata")
        return S3Reader(lister, streaming=streaming, max_outage_s=max_outage_s)

    return reader_table(schema=table_schema, reader_factory=make_reader, parser=parser,
                        name=label, autocommit_duration_ms=autocommit,
                        max_backlog_size=backlog, named=name is not None)


def read(path: str, format: str, *,  # noqa: A002 - Pathway's name
         aws_s3_settings: AwsS3Settings | None = None, schema: type[Schema] | None = None,
         mode: str = "streaming", with_metadata: bool = False,
         csv_settings: Any = None, json_field_paths: dict[str, str] | None = None,
         path_filter: str | None = None, downloader_threads_count: int | None = None,
         autocommit_duration_ms: int | None = 1500, name: str | None = None,
         max_backlog_size: int | None = None, debug_data: Any = None,
         **kwargs: Any) -> Any:
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
    """
    settings = _check_settings(aws_s3_settings, "pw.io.s3.read")
    return _read(path, format, settings=settings, schema=schema, mode=mode,
                 with_metadata=with_metadata, csv_settings=csv_settings,
                 json_field_paths=json_field_paths, path_filter=path_filter,
                 downloader_threads_count=downloader_threads_count,
                 autocommit_duration_ms=autocommit_duration_ms, name=name,
                 max_backlog_size=max_backlog_size, kwargs=kwargs, connector="pw.io.s3.read")


# ------------------------------------------------------------------------------------------
# Public API: write
# ------------------------------------------------------------------------------------------


def _check_interval(write_interval_ms: Any, connector: str) -> float:
    if isinstance(write_interval_ms, bool) or not isinstance(write_interval_ms, int | float):
        raise TypeError(f"{connector}: write_interval_ms must be a number of milliseconds, "
                        f"got {type(write_interval_ms).__name__}")
    if write_interval_ms < 0:
        raise ValueError(f"{connector}: write_interval_ms must be >= 0, "
                         f"got {write_interval_ms}")
    return float(write_interval_ms) / 1000.0


def _write(table: Any, path: str, format: str, *, settings: AwsS3Settings,  # noqa: A002
           write_interval_ms: int | float, name: str | None, connector: str) -> None:
    """The body of ``pw.io.s3.write`` / ``pw.io.minio.write`` (``connector`` names the API)."""
    from deltaflow.table import Table  # deltaflow.table imports the io package lazily

    if not isinstance(table, Table):
        raise TypeError(f"{connector}: table must be a pw.Table, got {type(table).__name__}")
    if format not in _WRITE_FORMATS:
        raise ValueError(f"{connector}: format must be one of {', '.join(_WRITE_FORMATS)}, "
                         f"got {format!r}")
    interval_s = _check_interval(write_interval_ms, connector)
    location = resolve_location(path, settings, connector=connector)
    max_outage_s = _max_outage_s(connector)
    columns = table.schema.dtypes()
    session_name = name or f"{connector}({location})"
    if format == "csv":
        csv_formatter = CsvFormatter(columns)
        formatter: Any = csv_formatter
        header: Callable[[], bytes] | None = csv_formatter.header
    else:
        formatter = JsonLinesFormatter(columns)
        header = None
    writer = S3Writer(name=session_name, settings=settings, location=location,
                      extension=_EXTENSIONS[format], header=header, interval_s=interval_s,
                      max_outage_s=max_outage_s)
    write_table(table, writer, _StartingFormatter(formatter, writer), name=session_name)


def write(table: Any, path: str, format: str, *,  # noqa: A002 - Pathway's name
          aws_s3_settings: AwsS3Settings | None = None,
          write_interval_ms: int | float = DEFAULT_WRITE_INTERVAL_MS,
          name: str | None = None) -> None:
    """Write the changes of ``table`` as objects under an S3 prefix.

    ``format`` is ``"csv"`` (a header line, then every field quoted, with ``time`` and
    ``diff`` columns) or ``"json"`` (one JSON object per line with ``diff`` and ``time``).
    Rows are buffered and uploaded as one new, self-contained object at most once per
    ``write_interval_ms`` (default 1000 ms), named ``<prefix>/<16-digit number>.csv|jsonl``
    with numbers continuing after those already under the prefix; what is buffered when the
    run ends is uploaded then. A failed upload keeps the rows and is retried with backoff; if
    uploads keep failing for longer than ``DELTAFLOW_S3_MAX_OUTAGE_S`` seconds (default 300)
    the run fails. See ``docs/s3.md``.
    """
    settings = _check_settings(aws_s3_settings, "pw.io.s3.write")
    _write(table, path, format, settings=settings, write_interval_ms=write_interval_ms,
           name=name, connector="pw.io.s3.write")
