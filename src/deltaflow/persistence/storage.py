"""Key-value storage for checkpoints: a local directory or an S3 prefix.

Keys are ``/``-separated relative names (``chunks/<input>/<n>.ipc``). Every ``put`` is atomic:
a reader sees either no value or the whole value, never part of one. On a filesystem this is
write-to-temporary + fsync + rename (+ fsync of the directory); an S3 PUT is atomic by itself.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from deltaflow.errors import PersistenceError
from deltaflow.persistence.config import Backend

_Result = TypeVar("_Result")


class StorageError(PersistenceError, OSError):
    """The checkpoint store cannot be read or written; the message names the store and the
    operation that failed."""


class Storage(ABC):
    """The few operations a checkpoint store needs."""

    def describe(self) -> str:
        """Where the store is (a directory, an ``s3://`` location), for messages."""
        return type(self).__name__

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, atomically (replacing any previous value)."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None if there is none."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (no error if it is absent)."""


def _fail(storage: Storage, action: str, key: str, exc: BaseException) -> StorageError:
    where = storage.describe()
    target = f" ({key})" if key else ""
    return StorageError(
        f"persistence: cannot {action} the checkpoint store {where}{target}: "
        f"{type(exc).__name__}: {exc}"
    )


class FilesystemStorage(Storage):
    """Keys are files under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise _fail(self, "create", "", exc) from exc
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StorageError(
                f"persistence: the checkpoint store {self.root} is not "
                f"readable and writable by this process (check its "
                f"permissions)"
            )

    def describe(self) -> str:
        return self.root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def put(self, key: str, data: bytes) -> None:
        try:
            self._put(key, data)
        except OSError as exc:
            raise _fail(self, "write to", key, exc) from exc

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        # The rename itself must survive a power loss too.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def get(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _fail(self, "read", key, exc) from exc

    def list(self, prefix: str) -> list[str]:
        found = []

        def unreadable(exc: OSError) -> None:
            # os.walk skips what it cannot read by default: a restart would then miss
            # checkpoints and output everything again.
            raise _fail(self, "list", prefix, exc) from exc

        for directory, _, names in os.walk(self.root, onerror=unreadable):
            relative = os.path.relpath(directory, self.root)
            for name in names:
                if name.startswith(".tmp-"):
                    continue  # a write that never completed
                key = name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix):
                    found.append(key)
        return sorted(found)

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _fail(self, "delete from", key, exc) from exc


def _s3_errors(action: str) -> Callable[[Callable[..., _Result]], Callable[..., _Result]]:
    """Turn a failed request of an :class:`S3Storage` method into a :class:`StorageError`
    naming persistence, the location and the key, with the settings' secrets redacted."""

    def decorate(method: Callable[..., _Result]) -> Callable[..., _Result]:
        @functools.wraps(method)
        def wrapped(self: S3Storage, key: str, *args: Any) -> _Result:
            from deltaflow.io._aws.errors import classify_error, is_retryable
            from deltaflow.io._core.retry import OutageTooLong, call_with_retries, limit_hint

            secrets = self.settings._secrets() if hasattr(self.settings, "_secrets") else []
            where = f"the checkpoint store {self.describe()} ({self.prefix + key})"
            try:
                # An outage is waited out as the S3 connectors wait it out (one policy).
                return call_with_retries(
                    lambda: method(self, key, *args),
                    policy=self.policy,
                    is_transient=is_retryable,
                    what=f"persistence: {action} {where}",
                    describe=lambda exc: classify_error(exc, secrets)[1],
                    hint=limit_hint("s3"),
                )
            except StorageError:
                raise
            except OutageTooLong as exc:
                raise StorageError(f"persistence: cannot {action} {where}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - botocore's many error classes
                _, message = classify_error(exc, secrets)
                raise StorageError(f"persistence: cannot {action} {where}: {message}") from None

        return wrapped

    return decorate


class S3Storage(Storage):
    """Keys are objects under ``prefix`` in ``bucket``."""

    def __init__(self, settings: Any, bucket: str, prefix: str) -> None:
        from deltaflow.io._core.retry import policy_for

        self.settings = settings
        self.policy = policy_for("s3", "pw.persistence.Backend.s3")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self.settings._client()
        return self._client

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @_s3_errors("write to")
    def put(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    @_s3_errors("read")
    def get(self, key: str) -> bytes | None:
        client = self.client()
        try:
            response = client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except client.exceptions.NoSuchKey:
            return None
        return bytes(response["Body"].read())

    @_s3_errors("list")
    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys.extend(str(item["Key"])[len(self.prefix) :] for item in page.get("Contents", []))
        return sorted(keys)

    @_s3_errors("delete from")
    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=self.prefix + key)


def open_storage(backend: Backend) -> Storage:
    """The storage a :class:`Backend` describes."""
    if backend.kind == "filesystem":
        assert backend.path is not None
        return FilesystemStorage(backend.path)
    if backend.kind == "s3":
        from deltaflow.io.s3 import resolve_location

        location = resolve_location(
            backend.root_path or "", backend.bucket_settings, connector="pw.persistence.Backend.s3"
        )
        return S3Storage(backend.bucket_settings, location.bucket, location.prefix)
    raise ValueError(f"unknown persistence backend {backend.kind!r}")
