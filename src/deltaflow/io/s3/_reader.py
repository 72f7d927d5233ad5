"""The S3 reader: listing polls of a prefix and parallel downloads of what changed.

A failed listing or download is retried per the connector's retry policy
(``docs/retries.md``): the reader reports "nothing yet" meanwhile, and objects not delivered
are offered again by the next listing.
"""

from __future__ import annotations

import collections
import fnmatch
import itertools
import logging
import time as _time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deltaflow.io._aws.errors import classify_error
from deltaflow.io._core import retry
from deltaflow.io._core.base import (
    Data,
    Finished,
    FinishedSource,
    NewSource,
    OffsetAntichain,
    RawContext,
    Reader,
    ReadEvent,
)
from deltaflow.io._core.retry import DEFAULT_POLICY, BackoffPolicy, Outage, OutageTooLong
from deltaflow.io.s3._settings import AwsS3Settings, S3ConnectorError, S3Location

if TYPE_CHECKING:
    from deltaflow.engine.workers.inputs import WorkerShare

logger = logging.getLogger("deltaflow.io.s3")


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
        return {
            "created_at": None,
            "modified_at": self.modified_s,
            "owner": None,
            "path": self.key,
            "size": self.size,
            "seen_at": seen_s,
        }


@dataclass
class ObjectChange:
    """An object appeared or changed (``content`` downloaded unless metadata-only) or was
    deleted (``deleted``)."""

    info: ObjectInfo
    content: bytes | None = None
    deleted: bool = False


class S3Lister:
    """Lists a prefix, tells what changed since the previous listing, downloads the changes."""

    def __init__(
        self,
        *,
        name: str,
        settings: AwsS3Settings,
        location: S3Location,
        path_filter: str | None,
        threads: int,
        download: bool,
    ) -> None:
        self.name = name
        self.settings = settings
        self.location = location
        self.path_filter = path_filter
        self.threads = threads
        self.download = download
        self.known: dict[str, ObjectInfo] = {}
        #: With several workers: the object keys this worker reads (None: all).
        self.owns: Callable[[str], bool] | None = None
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
            for page in paginator.paginate(
                Bucket=self.location.bucket, Prefix=self.location.prefix
            ):
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    if key.endswith("/"):
                        continue  # "directory" placeholder objects hold no data
                    if self.path_filter is not None and not fnmatch.fnmatchcase(
                        key, self.path_filter
                    ):
                        continue
                    if self.owns is not None and not self.owns(key):
                        continue
                    found.append(
                        ObjectInfo(
                            key=key,
                            etag=str(item.get("ETag", "")),
                            size=int(item.get("Size", 0)),
                            modified_s=int(item["LastModified"].timestamp()),
                        )
                    )
        except Exception as exc:  # noqa: BLE001 - classified
            raise self._error("list", exc) from None
        return found

    def changes(self) -> Iterator[ObjectChange]:
        """New, changed and deleted objects since the last call, in order: deletions first,
        then by modification time and key (the order of Pathway's reader). Downloads run in
        parallel, a few objects per thread at a time, as the iterator is consumed."""
        listing = {info.key: info for info in self.list()}
        deleted = [
            ObjectChange(info, deleted=True)
            for key, info in sorted(self.known.items())
            if key not in listing
        ]
        updated = sorted(
            (info for key, info in listing.items() if self.known.get(key) != info),
            key=lambda info: (info.modified_s, info.key),
        )
        self.known = listing
        yield from deleted
        yield from self._downloaded(updated)

    def _downloaded(self, infos: Sequence[ObjectInfo]) -> Iterator[ObjectChange]:
        if not self.download:
            yield from (ObjectChange(info) for info in infos)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.threads, thread_name_prefix=f"deltaflow-s3-{self.name}"
            )
        # A bounded window of downloads in flight keeps memory proportional to the threads,
        # not to the number of objects.
        window = self.threads * 2
        futures: collections.deque[tuple[ObjectInfo, Future[bytes | None]]] = collections.deque()
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
        return S3ConnectorError(
            f"input {self.name}: cannot {action} in {self.location}: {message}", fatal=fatal
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class S3Reader(Reader):
    """One source block per object: static mode reads the prefix once, streaming mode lists
    it again every ``poll_interval_s`` and turns new, changed and deleted objects into
    inserted, replaced and retracted rows."""

    def __init__(
        self,
        lister: S3Lister,
        *,
        streaming: bool,
        max_outage_s: float | None = None,
        policy: BackoffPolicy | None = None,
        poll_interval_s: float = LISTING_POLL_S,
    ) -> None:
        self.lister = lister
        self.streaming = streaming
        self.policy = policy = (policy or DEFAULT_POLICY).with_max_outage(max_outage_s)
        self.poll_interval_s = poll_interval_s
        self._outage = Outage(
            policy,
            what=f"input {lister.name}: {lister.location}",
            failing="stayed unreachable",
            hint=retry.limit_hint("s3"),
        )
        # Only streaming mode replaces objects, so only it needs the session to keep rows.
        self.retracts_sources = streaming
        self._events: collections.deque[ReadEvent] = collections.deque()
        self._changes: Iterator[ObjectChange] | None = None
        self._next_listing = 0.0
        self._listed_once = False
        self._emitted: set[str] = set()

    def keep_share(self, share: WorkerShare) -> None:
        """List only the objects of this worker's share (judged by their key)."""
        self.lister.owns = share.owns_path

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
            self.lister.known[key] = (
                info
                if info is not None and info.etag == etag
                else ObjectInfo(key=key, etag=f"{etag} (checkpointed)", size=-1, modified_s=-1)
            )
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
        self._changes = None
        self._listed_once = False
        try:
            delay = self._outage.failed(str(exc))
        except OutageTooLong as too_long:
            raise S3ConnectorError(str(too_long)) from None
        now = _time.monotonic()
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
        if self._outage.succeeded():
            logger.info("%s: the store is reachable again", self.lister.name)

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
        self._events.append(Data(RawContext([content], metadata), offset=(key, change.info.etag)))
        self._events.append(FinishedSource())

    def close(self) -> None:
        self.lister.close()
