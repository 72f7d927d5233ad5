"""The S3 writer: rows buffered per time, uploaded as one new object per interval.

Sender threads upload while the output session formats the next times; a failed upload keeps
its rows and is retried per the connector's retry policy (``docs/retries.md``), under the same
object number, so a retry never duplicates rows. The formatter writes each time's rows straight
into a buffer that already starts with the header when it begins an object, so an object of
one time is uploaded without copying its bytes again.
"""

from __future__ import annotations

import collections
import io
import logging
import re
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from deltaflow.io._aws.errors import classify_error
from deltaflow.io._core import retry
from deltaflow.io._core.base import Writer
from deltaflow.io._core.retry import DEFAULT_POLICY, BackoffPolicy, Outage, OutageTooLong
from deltaflow.io.s3._settings import AwsS3Settings, S3ConnectorError, S3Location

logger = logging.getLogger("deltaflow.io.s3")


_KEY_DIGITS = 16
_OBJECT_NAME = re.compile(rf"^(\d{{{_KEY_DIGITS}}})\.[A-Za-z0-9]+$")


def _directory_prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


MAX_IN_FLIGHT = 2
"""How many objects may be uploading at once (one sender thread each)."""

READY_AHEAD = 1
"""How many more objects may be made while every sender is busy: they wait, complete, for the
first sender that frees up, so the next upload starts at once instead of after the next
time is formatted."""


@dataclass(frozen=True)
class _Chunk:
    """Formatted rows: ``data[start:]``; ``data[:start]`` is the header when the chunk was
    formatted as the beginning of an object (0 otherwise)."""

    data: bytes
    start: int = 0

    @property
    def rows(self) -> int:
        """The bytes of rows (the header not counted)."""
        return len(self.data) - self.start


@dataclass(eq=False)
class _PendingObject:
    """An object made by a flush: its rows are fixed; its number is given when it is first
    sent (in the order objects were made) and kept for every retry."""

    chunks: list[_Chunk]
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
    times; ``max_in_flight`` objects (default :data:`MAX_IN_FLIGHT`) may be uploading at
    once, and :data:`READY_AHEAD` more may be made and wait for a sender (objects waiting to
    retry count too). When all slots are taken, a flush waits for one (backpressure:
    every due flush makes exactly one object), except during an outage, when rows simply stay
    buffered. The senders also make an object of sealed rows that become due when no flush
    comes. Object ``n`` is named ``<prefix>/<n, 16 digits>.<ext>``; ``n`` continues after the
    objects already under the prefix, is given in the order objects are made and kept across
    retries, so a retry overwrites its own object and never duplicates rows.
    """

    def __init__(
        self,
        *,
        name: str,
        settings: AwsS3Settings,
        location: S3Location,
        extension: str,
        header: Callable[[], bytes] | None,
        interval_s: float,
        max_outage_s: float | None = None,
        policy: BackoffPolicy | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.name = name
        self.settings = settings
        self.location = location
        self.extension = extension
        self.header = header
        self.interval_s = interval_s
        self.policy = policy = (policy or DEFAULT_POLICY).with_max_outage(max_outage_s)
        self.max_in_flight = max_in_flight
        self._prefix = _directory_prefix(location.prefix)
        self._lock = threading.Condition()
        self._open: list[_Chunk] = []  # rows of the time being written
        self._sealed: list[_Chunk] = []  # rows of finished times, in no object yet
        # The buffer the formatter is writing the time's rows into (see stream), and where
        # its rows start (after the header, when it begins an object).
        self._stream: io.BytesIO | None = None
        self._stream_start = 0
        self._waiting: collections.deque[_PendingObject] = collections.deque()
        self._sending = 0  # objects whose PUT is running
        self._client: Any = None
        self._next_index: int | None = None
        self._listing = False
        self._last_upload: float | None = None
        self._outage = Outage(
            policy, what=f"output {name}: uploads to {location}", hint=retry.limit_hint("s3")
        )
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
                thread = threading.Thread(
                    target=self._sender,
                    args=(number == 0,),
                    daemon=True,
                    name=f"deltaflow-s3-upload-{self.name}-{number}",
                )
                self._threads.append(thread)
                thread.start()

    def write(self, payload: Any) -> None:
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        if not data:
            return
        self.start()
        with self._lock:
            self._raise_pending()
            self._take_stream()
            self._first_data()
            self._open.append(_Chunk(data))

    def stream(self) -> BinaryIO:
        """The buffer the formatter writes the next rows into (one per flushed time). When
        nothing else is buffered it starts with the header: if the time becomes an object on
        its own, the buffer's bytes are uploaded as they are. The first call also starts the
        sender threads, so that building the client and listing the prefix overlap with
        formatting instead of delaying the first upload."""
        self.start()
        with self._lock:
            self._raise_pending()
            self._first_data()
            if self._stream is None:
                buffer = io.BytesIO()
                if self.header is not None and not self._open and not self._sealed:
                    buffer.write(self.header())
                self._stream, self._stream_start = buffer, buffer.tell()
            return self._stream

    def flush(self, time: int) -> None:
        with self._lock:
            try:
                self._flush(time)
            finally:
                position = (self._made, sum(chunk.rows for chunk in self._sealed))
                self._last_position = position
                self._flushes.append((time, *position))

    def _flush(self, time: int) -> None:
        self._raise_pending()
        self._take_stream()
        if self._open:
            self._sealed.extend(self._open)
            self._open.clear()
            self._lock.notify_all()  # the senders' timer now has rows to wait for
        if not self._sealed or not self._due(_time.monotonic()):
            return
        self._lock.wait_for(
            lambda: self._error is not None or self._outage.ongoing or self._has_room()
        )
        self._raise_pending()
        # A sender may have made the object meanwhile (its timer saw the rows due).
        if self._sealed and self._has_room():
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
                        client.put_object(
                            Bucket=self.location.bucket, Key=key, Body=body[: len(header) + keep]
                        )
                else:
                    logger.warning(
                        "output %s: object %s, uploaded before the checkpoint, is missing",
                        self.name,
                        key,
                    )
            for number in later:
                if number > index or not keep:
                    client.delete_object(Bucket=self.location.bucket, Key=self._object_key(number))
        except Exception as exc:  # noqa: BLE001 - botocore's many error classes
            _, message = classify_error(exc, self.settings._secrets())
            raise S3ConnectorError(
                f"output {self.name}: cannot remove what the crashed run "
                f"wrote to {self.location} after the checkpoint: "
                f"{message}"
            ) from None
        removed = [n for n in later if n > index or not keep]
        if removed:
            logger.info(
                "output %s: removed %d object(s) written after the checkpoint (their "
                "rows are written again by this run)",
                self.name,
                len(removed),
            )
        self._client = client
        self._next_index = self._base_index = index + (1 if keep else 0)

    def _object_key(self, number: int) -> str:
        return f"{self._prefix}{number:0{_KEY_DIGITS}d}.{self.extension}"

    def _object_numbers(self, client: Any) -> list[int]:
        numbers = []
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self.location.bucket, Prefix=self._prefix, Delimiter="/"
        ):
            for item in page.get("Contents", []):
                match = _OBJECT_NAME.match(item["Key"][len(self._prefix) :])
                if match:
                    numbers.append(int(match.group(1)))
        return sorted(numbers)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._take_stream()
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
            if self._stream is not None and self._stream.tell() > self._stream_start:
                left += 1
        for thread in self._threads:
            thread.join(timeout=5)
        if left:
            logger.warning(
                "output %s: the run failed; buffered rows were not all uploaded "
                "(%d chunk(s) or object(s) left)",
                self.name,
                left,
            )

    # --- state (callers hold the lock) ---------------------------------------------------
    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def _first_data(self) -> None:
        if self._last_upload is None:
            # The interval is counted from the first data this writer sees.
            self._last_upload = _time.monotonic()

    def _take_stream(self) -> None:
        """Buffer what the formatter wrote into :meth:`stream` as a chunk of open rows (the
        output session thread, the only one writing there, calls this)."""
        buffer, self._stream = self._stream, None
        if buffer is not None and buffer.tell() > self._stream_start:
            # getvalue() hands over the buffer's own bytes: no copy.
            self._open.append(_Chunk(buffer.getvalue(), self._stream_start))

    def _in_flight(self) -> int:
        return len(self._waiting) + self._sending

    def _has_room(self) -> bool:
        """Whether another object may be made (uploading, ready and retrying ones count)."""
        return self._in_flight() < self.max_in_flight + READY_AHEAD

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
                if (
                    self._sealed
                    and self._has_room()
                    and ((self._closing and now >= self._retry_at) or self._due(now))
                ):
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
                obj.body = self._body(obj.chunks)
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
            self._waiting = collections.deque(
                sorted(self._waiting, key=lambda o: (o.index is None, o.index or 0))
            )
            self._on_failure(error)
            return
        self._uploaded.add(obj.order)
        while self._uploaded_prefix in self._uploaded:
            self._uploaded.discard(self._uploaded_prefix)
            self._uploaded_prefix += 1
        failures = self._outage.succeeded()
        if failures:
            logger.info(
                "output %s: upload to %s succeeded after %d failed attempt(s)",
                self.name,
                self.location,
                failures,
            )
        logger.debug("output %s: uploaded %s (%d bytes)", self.name, key, len(obj.body or b""))
        self._last_upload = _time.monotonic()
        self._retry_at = 0.0

    def _body(self, chunks: list[_Chunk]) -> bytes:
        """An object's bytes: the header, then the chunks' rows. A single chunk formatted
        with the header in front is the whole object already."""
        header = self.header() if self.header is not None else b""
        if len(chunks) == 1 and chunks[0].start == len(header):
            return chunks[0].data
        return b"".join([header, *(memoryview(c.data)[c.start :] for c in chunks)])

    def _first_free_index(self) -> int:
        """One past the highest object number already under the prefix (earlier runs)."""
        highest = -1
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self.location.bucket, Prefix=self._prefix, Delimiter="/"
        ):
            for item in page.get("Contents", []):
                match = _OBJECT_NAME.match(item["Key"][len(self._prefix) :])
                if match:
                    highest = max(highest, int(match.group(1)))
        return highest + 1

    def _on_failure(self, exc: BaseException) -> None:
        """Remember a failed request: fatal errors and outages beyond the limit end the run
        (the next write/flush/close raises them), others are retried after a backoff."""
        fatal, message = classify_error(exc, self.settings._secrets())
        if fatal:
            self._error = S3ConnectorError(
                f"output {self.name}: cannot write to {self.location}: {message}"
            )
            self._lock.notify_all()
            return
        try:
            delay = self._outage.failed(message)
        except OutageTooLong as exc_too_long:
            self._error = S3ConnectorError(str(exc_too_long))
            self._lock.notify_all()
            return
        self._retry_at = _time.monotonic() + delay
        logger.warning(
            "output %s: upload to %s failed (attempt %d), keeping the rows and "
            "retrying in %.1f s: %s",
            self.name,
            self.location,
            self._outage.failures,
            delay,
            message,
        )
        self._lock.notify_all()
