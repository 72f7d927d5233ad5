"""Cache strategies for UDFs (``@pw.udf(cache_strategy=...)``).

A strategy names where results are kept; the storage itself is opened per UDF by
:meth:`CacheStrategy.open_store`. The UDF evaluation (``deltaflow.udfs.evaluation``) looks every
row of a minibatch up at once and calls the function only for the misses, each distinct
argument tuple once. :meth:`CacheStrategy.wrap_sync`/:meth:`wrap_async` wrap a single function
with the same cache, for code that calls functions directly (``pw.udfs.with_cache_strategy``).

* :class:`InMemoryCache` keeps results in this process, shared by every use of the UDF, with an
  optional LRU bound (``max_size``).
* :class:`DiskCache` keeps them in an SQLite file under the persistence directory of the run
  (``pw.run(persistence_config=...)``, any persistence mode, ``UDF_CACHING`` included), in
  ``<root>/runtime_calls/<name>/cache.db``, so that a later run reuses them. A run without a
  persistence directory fails when the UDF is first evaluated, as in Pathway.
"""

from __future__ import annotations

import abc
import collections
import functools
import hashlib
import os
import pickle
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from deltaflow import _types as t

__all__ = ["CacheStrategy", "DefaultCache", "DiskCache", "InMemoryCache"]

_MISSING = object()


class CacheStore(abc.ABC):
    """The storage of one UDF's cache: get/put by a key computed from the arguments."""

    keeps_values = True  # False: a cache that stores nothing (every call is made)

    @abc.abstractmethod
    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        """The key of one call."""

    @abc.abstractmethod
    def get(self, key: Hashable) -> Any:
        """The stored result, or :data:`MISSING`."""

    @abc.abstractmethod
    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` as the result for ``key``."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release files and connections (called when the run ends)."""


MISSING = _MISSING


class CacheStrategy(abc.ABC):
    """Base class of cache strategies."""

    @abc.abstractmethod
    def open_store(self, udf_name: str, run_scope: Any) -> CacheStore:
        """The store for the UDF named ``udf_name`` in the run ``run_scope``."""

    def _current_store(self, func: Callable[..., Any]) -> CacheStore:
        from deltaflow.udfs.context import current_scope

        return current_scope().cache_store(self, default_cache_name(func))

    def wrap_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` answering from the cache when it can (the cache of the current run)."""

        @functools.wraps(func)
        def cached(*args: Any, **kwargs: Any) -> Any:
            store = self._current_store(func)
            key = store.key(args, kwargs)
            value = store.get(key)
            if value is _MISSING:
                value = func(*args, **kwargs)
                store.put(key, value)
            return value

        return cached

    def wrap_async(self, func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The coroutine function ``func`` answering from the cache when it can."""

        @functools.wraps(func)
        async def cached(*args: Any, **kwargs: Any) -> Any:
            store = self._current_store(func)
            key = store.key(args, kwargs)
            value = store.get(key)
            if value is _MISSING:
                value = await func(*args, **kwargs)
                store.put(key, value)
            return value

        return cached


# --- in memory --------------------------------------------------------------------------------
class _MemoryStore(CacheStore):
    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self.keeps_values = max_size != 0
        self.entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self.lock = threading.Lock()

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        return (t.canonical_key(args), t.canonical_key(kwargs) if kwargs else None)

    def get(self, key: Hashable) -> Any:
        with self.lock:
            value = self.entries.get(key, _MISSING)
            if value is not _MISSING:
                self.entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.max_size == 0:
            return
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            if self.max_size is not None:
                while len(self.entries) > self.max_size:
                    self.entries.popitem(last=False)


class InMemoryCache(CacheStrategy):
    """Results kept in memory, shared by every use of the UDF in this process (across runs);
    with ``max_size`` the least recently used entries go first."""

    def __init__(self, max_size: int | None = None) -> None:
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0
        ):
            raise ValueError(
                f"pw.udfs.InMemoryCache: max_size must be None or a non-negative "
                f"integer, got {max_size!r}"
            )
        self.max_size = max_size
        self._stores: dict[str, _MemoryStore] = {}
        self._lock = threading.Lock()

    def open_store(self, udf_name: str, run_scope: Any) -> CacheStore:
        with self._lock:
            store = self._stores.get(udf_name)
            if store is None:
                store = self._stores[udf_name] = _MemoryStore(self.max_size)
            return store

    def __repr__(self) -> str:
        return f"InMemoryCache(max_size={self.max_size})"


# --- on disk ----------------------------------------------------------------------------------
class _DiskStore(CacheStore):
    """One SQLite file; values are pickled, keys are digests of the pickled arguments."""

    def __init__(self, path: str, size_limit: int) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.size_limit = size_limit
        self.lock = threading.Lock()
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, "
            "value BLOB NOT NULL, size INTEGER NOT NULL, "
            "stored INTEGER NOT NULL)"
        )
        row = self.connection.execute(
            "SELECT COALESCE(SUM(size), 0), COALESCE(MAX(stored), 0) FROM calls"
        ).fetchone()
        self.total_size, self.counter = int(row[0]), int(row[1])
        # The file's fixed part counts against size_limit too: the first page (holding the
        # schema) and one root page per table and index, even with no entry at all.
        page_size = int(self.connection.execute("PRAGMA page_size").fetchone()[0])
        objects = int(self.connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0])
        self.budget = size_limit - page_size * (1 + objects)

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        try:
            encoded = pickle.dumps((args, sorted(kwargs.items())), protocol=4)
        except Exception as exc:  # turned into a clear message
            raise TypeError(
                f"pw.udfs.DiskCache: the arguments {args!r} cannot be pickled to "
                f"form a cache key: {exc}"
            ) from exc
        return hashlib.sha256(encoded).hexdigest()

    def get(self, key: Hashable) -> Any:
        with self.lock:
            row = self.connection.execute(
                "SELECT value FROM calls WHERE key = ?", (key,)
            ).fetchone()
        return _MISSING if row is None else pickle.loads(row[0])

    def put(self, key: Hashable, value: Any) -> None:
        blob = pickle.dumps(value, protocol=4)
        if len(blob) > self.budget:
            # Kept nowhere: the caller could not find it again (Pathway's disk cache
            # raises KeyError in this case too).
            raise KeyError(
                f"pw.udfs.DiskCache: a result of {len(blob)} bytes does not fit "
                f"in size_limit={self.size_limit} (of which the database's own "
                f"pages take {self.size_limit - self.budget})"
            )
        with self.lock:
            self.counter += 1
            old = self.connection.execute("SELECT size FROM calls WHERE key = ?", (key,)).fetchone()
            if old is not None:
                self.total_size -= int(old[0])
            self.connection.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?)",
                (key, blob, len(blob), self.counter),
            )
            self.total_size += len(blob)
            while self.total_size > self.budget:
                oldest = self.connection.execute(
                    "SELECT key, size FROM calls ORDER BY stored LIMIT 1"
                ).fetchone()
                self.connection.execute("DELETE FROM calls WHERE key = ?", (oldest[0],))
                self.total_size -= int(oldest[1])

    def close(self) -> None:
        with self.lock:
            self.connection.close()


class DiskCache(CacheStrategy):
    """Results kept on disk under the run's persistence directory, reused by later runs.

    ``name`` names the cache directory (by default the function's module and name);
    ``size_limit`` bounds the bytes kept, the database file's fixed pages included (the
    oldest entries are dropped first; a result that cannot fit raises ``KeyError``)."""

    def __init__(self, name: str | None = None, size_limit: int = 2**30) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"pw.udfs.DiskCache: name must be a string, got {type(name).__name__}")
        if isinstance(size_limit, bool) or not isinstance(size_limit, int) or size_limit < 0:
            raise ValueError(
                f"pw.udfs.DiskCache: size_limit must be a non-negative integer, got {size_limit!r}"
            )
        self._name = name
        self._size_limit = size_limit

    def open_store(self, udf_name: str, run_scope: Any) -> CacheStore:
        root = run_scope.storage_root()
        if root is None:
            raise RuntimeError(
                "pw.udfs.DiskCache: no persistent storage is configured for the "
                "disk cache; run with pw.run(persistence_config="
                "pw.persistence.Config(pw.persistence.Backend.filesystem(...), "
                "persistence_mode=pw.PersistenceMode.UDF_CACHING))"
            )
        directory = _safe_name(self._name or udf_name)
        return _DiskStore(
            os.path.join(root, "runtime_calls", directory, "cache.db"), self._size_limit
        )

    def __repr__(self) -> str:
        return f"DiskCache(name={self._name!r}, size_limit={self._size_limit})"


class DefaultCache(DiskCache):
    """The cache Pathway picks by default: the :class:`DiskCache`."""


class _NothingKept(CacheStore):
    """A store that keeps nothing: every call is made."""

    keeps_values = False

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        return None

    def get(self, key: Hashable) -> Any:
        return _MISSING

    def put(self, key: Hashable, value: Any) -> None:
        """Nothing is kept."""


class DiskCacheWhenPersisted(DiskCache):
    """A :class:`DiskCache` in a run with persistent storage, no cache in a run without.

    ``pw.AsyncTransformer`` uses it by default: with persistence, the results of calls made
    by an earlier run are reused, so a restart does not make them again (as in Pathway,
    whose transformer persists its results)."""

    def open_store(self, udf_name: str, run_scope: Any) -> CacheStore:
        if run_scope.storage_root() is None:
            return _NothingKept()
        return super().open_store(udf_name, run_scope)


def default_cache_name(func: Callable[..., Any]) -> str:
    """``<module>_<qualified name>`` of a function (the default cache directory name)."""
    target = getattr(func, "__wrapped__", func)
    module = getattr(target, "__module__", None) or "udf"
    name = (
        getattr(target, "__qualname__", None)
        or getattr(target, "__name__", None)
        or type(target).__name__
    )
    return f"{module}_{name}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
