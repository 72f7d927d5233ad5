"""The values of non-deterministic UDFs kept on disk: ``pw.run(udf_cache_directory=...)``.

A non-deterministic UDF remembers the value it gave each row until the row is deleted (see
``deltaflow.udfs.evaluation``); by default that memory is a dictionary. With a
``udf_cache_directory`` it is an SQLite file there instead, so that a long run over many rows
keeps that memory out of RAM. The files are the run's own scratch space, never read by another
run:

* each UDF node of a run gets ``run-<pid>-worker-<worker>-op-<n>.sqlite``; with
  ``PATHWAY_THREADS`` = k (Pathway's worker threads per process) its rows are split by id into
  k files, ``worker-<process index * k + i>``, the files a Pathway run with as many workers
  would use (:class:`ShardedRowValues`);
* when a run opens the directory, files of processes that are no longer alive (a crashed run)
  and files carrying this process's pid (left over by an earlier crash of a process that had
  the same pid) are deleted, never read;
* the run deletes its files when it ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

logger = logging.getLogger("deltaflow.udfs")

FILE_NAME = re.compile(r"^run-(\d+)-worker-(\d+)-op-(\d+)\.sqlite$")


def file_name(operator: int, worker: int = 0) -> str:
    """The name of the file of one UDF node of this process's run."""
    return f"run-{os.getpid()}-worker-{worker}-op-{operator}.sqlite"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31  # another user's process (or an impossible pid: not alive)
    return True


def sweep(directory: str) -> None:
    """Create ``directory`` if needed and delete the files that no live run of another
    process owns: those of dead processes and those with this process's pid."""
    os.makedirs(directory, exist_ok=True)
    own = os.getpid()
    for name in os.listdir(directory):
        match = FILE_NAME.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == own or not _alive(pid):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))
            logger.debug("removed the leftover UDF value file %s", name)


def _key(row_id: int) -> bytes:
    return row_id.to_bytes(16, "big")


class DiskRowValues(MutableMapping[int, Any]):
    """A ``{row id: value}`` mapping stored in one SQLite file (values pickled)."""

    def __init__(self, path: str) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # never read what an earlier process left under this name
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE rows (id BLOB PRIMARY KEY, value BLOB NOT NULL)")

    def __getitem__(self, row_id: int) -> Any:
        found = self._db.execute("SELECT value FROM rows WHERE id = ?", (_key(row_id),)).fetchone()
        if found is None:
            raise KeyError(row_id)
        return pickle.loads(found[0])

    def __setitem__(self, row_id: int, value: Any) -> None:
        self.update(((row_id, value),))

    def __delitem__(self, row_id: int) -> None:
        if self._db.execute("DELETE FROM rows WHERE id = ?", (_key(row_id),)).rowcount == 0:
            raise KeyError(row_id)

    def __contains__(self, row_id: object) -> bool:
        if not isinstance(row_id, int):
            return False
        query = "SELECT 1 FROM rows WHERE id = ?"
        return self._db.execute(query, (_key(row_id),)).fetchone() is not None

    def __iter__(self) -> Iterator[int]:
        for (key,) in self._db.execute("SELECT id FROM rows"):
            yield int.from_bytes(key, "big")

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM rows").fetchone()[0])

    def __bool__(self) -> bool:
        # Asked once per minibatch: one row is enough, no count over the whole file.
        return self._db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is not None

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store many values in one statement (the per-minibatch path)."""
        if kwargs:
            raise TypeError("DiskRowValues.update: row ids are integers, not keywords")
        pairs: Iterable[tuple[int, Any]] = other.items() if isinstance(other, Mapping) else other
        self._db.executemany(
            "INSERT OR REPLACE INTO rows VALUES (?, ?)",
            ((_key(k), pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)) for k, v in pairs),
        )

    def close(self) -> None:
        """Close the file and delete it (the values mean nothing after the run)."""
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


class ShardedRowValues(MutableMapping[int, Any]):
    """One UDF node's ``{row id: value}`` mapping split over several files by row id (one per
    worker slot, see the module docstring); the files are opened, and exist, from the start."""

    def __init__(self, shards: list[DiskRowValues]) -> None:
        if not shards:
            raise ValueError("ShardedRowValues needs at least one file")
        self.shards = shards

    def _shard(self, row_id: int) -> DiskRowValues:
        return self.shards[row_id % len(self.shards)]

    def __getitem__(self, row_id: int) -> Any:
        return self._shard(row_id)[row_id]

    def __setitem__(self, row_id: int, value: Any) -> None:
        self._shard(row_id)[row_id] = value

    def __delitem__(self, row_id: int) -> None:
        del self._shard(row_id)[row_id]

    def __contains__(self, row_id: object) -> bool:
        return isinstance(row_id, int) and row_id in self._shard(row_id)

    def __iter__(self) -> Iterator[int]:
        for shard in self.shards:
            yield from shard

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def __bool__(self) -> bool:
        return any(self.shards)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store many values, one statement per file."""
        if kwargs:
            raise TypeError("ShardedRowValues.update: row ids are integers, not keywords")
        pairs: Iterable[tuple[int, Any]] = other.items() if isinstance(other, Mapping) else other
        split: list[list[tuple[int, Any]]] = [[] for _ in self.shards]
        for row_id, value in pairs:
            split[row_id % len(self.shards)].append((row_id, value))
        for shard, part in zip(self.shards, split, strict=True):
            if part:
                shard.update(part)

    def close(self) -> None:
        """Close and delete every file."""
        for shard in self.shards:
            shard.close()
