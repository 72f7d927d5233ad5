"""Key-value storage for checkpoints: a local directory or an S3 prefix.

Keys are ``/``-separated relative names (``chunks/<input>/<n>.ipc``). Every ``put`` is atomic:
a reader sees either no value or the whole value, never part of one. On a filesystem this is
write-to-temporary + fsync + rename (+ fsync of the directory); an S3 PUT is atomic by itself.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from typing import Any

from deltaflow.persistence.config import Backend


class Storage(ABC):
    """The few operations a checkpoint store needs."""

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


class FilesystemStorage(Storage):
    """Keys are files under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def put(self, key: str, data: bytes) -> None:
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

    def list(self, prefix: str) -> list[str]:
        found = []
        for directory, _, names in os.walk(self.root):
            relative = os.path.relpath(directory, self.root)
            for name in names:
                if name.startswith(".tmp-"):
                    continue  # a write that never completed
                key = name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix):
                    found.append(key)
        return sorted(found)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))


class S3Storage(Storage):
    """Keys are objects under ``prefix`` in ``bucket``."""

    def __init__(self, settings: Any, bucket: str, prefix: str) -> None:
        self.settings = settings
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self.settings._client()
        return self._client

    def put(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get(self, key: str) -> bytes | None:
        client = self.client()
        try:
            response = client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except client.exceptions.NoSuchKey:
            return None
        return bytes(response["Body"].read())

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys.extend(str(item["Key"])[len(self.prefix):] for item in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=self.prefix + key)


def open_storage(backend: Backend) -> Storage:
    """The storage a :class:`Backend` describes."""
    if backend.kind == "filesystem":
        assert backend.path is not None
        return FilesystemStorage(backend.path)
    if backend.kind == "s3":
        from deltaflow.io.s3 import resolve_location

        location = resolve_location(backend.root_path or "", backend.bucket_settings,
                                    connector="pw.persistence.Backend.s3")
        return S3Storage(backend.bucket_settings, location.bucket, location.prefix)
    raise ValueError(f"unknown persistence backend {backend.kind!r}")
