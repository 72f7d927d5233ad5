"""Inputs read on every worker, each worker reading its share of the input.

An input whose reader can read a share of it (``InputSession.splits``) runs on every worker,
and its reader is given this worker's :class:`WorkerShare` (``Reader.keep_share``). What a
share is depends on the reader: the file connectors and S3 split their paths (worker ``i``
reads the paths whose stable hash falls to it, :func:`path_owner`), Kafka splits the topic's
partitions (worker ``i`` of N reads the partitions ``p`` with ``p % N == i``). Every other
input (the Python subject, databases, HTTP) runs on worker 0 only.

Times stay worker 0's to decide, by the rules of one worker (``Runtime._loop``) applied to
the commits of all workers. A worker other than 0 keeps the commits its sources push and
reports each one to worker 0 (``("report", run, commits, finished, joined)``: input
position, a sequence number and the pinned time, if any, of each commit, the inputs that
finished there, and the commits it joined to a time, see :class:`HeldCommits`). On worker 0, a :class:`SplitInputHandle` stands for the input: the engine loop takes
from it the commits pushed there and, for each commit reported by another worker, a
:class:`RemoteCommit` placeholder, so the loop gives every commit its time exactly as if all
of them had been pushed on one worker. The time message then tells each worker which of its
commits make the time; none of their rows move before that, and a commit is never split.

A static input is held until it has finished on every worker and then makes one commit of
all their rows, as a static read on one worker that finishes within its autocommit
duration does: a static read gives the same times whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow.engine.boundary import Pushed, SourceHandle


def path_owner(path: str, count: int) -> int:
    """The worker, of ``count``, that reads ``path`` (a stable hash of the path's text, the
    same in every process and every run)."""
    digest = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % count


@dataclass(frozen=True)
class WorkerShare:
    """Worker ``index``'s share, among ``count`` workers, of an input read on every worker.

    The same fixed rules on every worker and in every run (no negotiation between workers,
    no consumer-group rebalance), so the shares are disjoint, cover the whole input, and a
    worker's share does not move while the run lasts."""

    index: int
    count: int

    def owns_path(self, path: str) -> bool:
        """Whether this worker reads the file (object) at ``path``."""
        return path_owner(path, self.count) == self.index

    def owns_partition(self, partition: int) -> bool:
        """Whether this worker reads the partition numbered ``partition`` of a topic."""
        return partition % self.count == self.index

    def owns_offset_key(self, key: Any) -> bool:
        """Whether an input's offset key (a frontier's key, a restored row's source part) is
        this worker's: ``(topic, partition)`` for Kafka, a path (object key) for files and
        S3. Persistence splits a restored input's frontier and rows by it."""
        if isinstance(key, tuple | list) and len(key) == 2 and isinstance(key[1], int):
            return self.owns_partition(key[1])
        return self.owns_path(str(key))


def splits(source: Any) -> bool:
    """Whether an input's source can run on every worker, each reading its share (not when
    it belongs to a synchronization group, whose order is kept on one worker)."""
    return bool(getattr(source, "splits", False)) and getattr(source, "sync_group", None) is None


class RemoteCommit(pl.DataFrame):
    """A placeholder the engine loop on worker 0 takes as one commit of a split input: the
    rows pushed on worker 0 that belong to it (``local``) and the commits of other workers
    (``remote``: ``(worker, sequence number)``) that make it. It has no rows of its own, so
    the loop counts none of ``local`` as processed: ``unmarked`` are the rows of ``local``
    the runtime marks processed once the commit's time is done (0 when they were already)."""

    local: list[pl.DataFrame]
    remote: list[tuple[int, int]]
    unmarked: int

    @classmethod
    def of(
        cls, local: list[pl.DataFrame], remote: list[tuple[int, int]], *, unmarked: int = 0
    ) -> RemoteCommit:
        placeholder = cls()
        placeholder.local = local
        placeholder.remote = remote
        placeholder.unmarked = unmarked
        return placeholder


class SplitInputHandle(SourceHandle):
    """Worker 0's handle of an input read on every worker: its own source pushes into it
    as usual, and the commits the other workers report are added to what it gives the
    engine loop. It has finished when the input has finished on every worker."""

    def __init__(
        self, name: str, notify: Callable[[], None], peers: list[int], *, static: bool
    ) -> None:
        super().__init__(name, notify)
        self.static = static
        self._remote: list[tuple[int, int, int | None]] = []  # (worker, sequence, pinned)
        self._peers_finished = dict.fromkeys(peers, False)

    def push(
        self,
        batch: pl.DataFrame,
        *,
        time: int | None = None,
        offsets: Any = None,
        consolidated: bool = False,
        more: bool = False,
    ) -> None:
        super().push(batch, time=time, offsets=offsets, consolidated=consolidated, more=more)
        if self.static:  # held until every worker finished: it must not hold the reader up
            self.mark_processed(batch.height)

    def add_remote(self, worker: int, commits: list[tuple[int, int | None]], done: bool) -> None:
        """Worker ``worker`` reported ``commits`` (sequence number, pinned time) of this
        input, and, with ``done``, that the input has finished there."""
        with self._lock:
            self._remote.extend((worker, sequence, pinned) for sequence, pinned in commits)
            if done:
                self._peers_finished[worker] = True
        self._notify()

    def forget(self, worker: int, sequences: list[int]) -> None:
        """Worker ``worker`` joined its commits ``sequences`` to a time already (see
        :class:`HeldCommits`): those not taken yet need no time of their own."""
        gone = set(sequences)
        with self._lock:
            self._remote = [r for r in self._remote if r[0] != worker or r[1] not in gone]

    def _everywhere_finished(self) -> bool:
        return self._finished and all(self._peers_finished.values())

    def take(self) -> list[Pushed]:
        with self._lock:
            if self.static and not self._everywhere_finished():
                return []
            local, self._pending = self._pending, []
            remote, self._remote = self._remote, []
        if self.static:
            if not local and not remote:
                return []
            frames = [pushed.batch for pushed in local if pushed.batch.height]
            commit = RemoteCommit.of(frames, [(worker, seq) for worker, seq, _ in remote])
            return [Pushed(commit, None, local[-1].offsets if local else None, False)]
        return _rounds(local, remote)

    def has_pending(self) -> bool:
        return bool(self._pending or self._remote)

    @property
    def finished(self) -> bool:
        with self._lock:
            return self._everywhere_finished() and not self._pending and not self._remote


def _rounds(local: list[Pushed], remote: list[tuple[int, int, int | None]]) -> list[Pushed]:
    """The commits of a streaming split input, as the engine loop takes them: a commit with
    a pinned time alone, and the live ones in rounds, the k-th commit of every worker (worker
    0's own and each other's, in their order) making the k-th commit of the input. One reader
    reading every partition commits what all of them brought in its commit period; on
    several workers the readers commit at about the same moments, and a time per worker's
    commit would multiply the times, each paying the whole round of messages between the
    workers."""
    out = [pushed for pushed in local if pushed.time is not None]
    out.extend(
        Pushed(RemoteCommit.of([], [(worker, sequence)]), pinned, None, False)
        for worker, sequence, pinned in remote
        if pinned is not None
    )
    own = [pushed for pushed in local if pushed.time is None]
    theirs: dict[int, list[int]] = {}
    for worker, sequence, pinned in remote:
        if pinned is None:
            theirs.setdefault(worker, []).append(sequence)
    rounds = max([len(own), *map(len, theirs.values())])
    for k in range(rounds):
        mine = own[k] if k < len(own) else None
        others = [
            (worker, sequences[k]) for worker, sequences in theirs.items() if k < len(sequences)
        ]
        if not others:
            assert mine is not None  # a round holds at least one commit
            out.append(mine)
            continue
        frames = [] if mine is None else [mine.batch]
        rows = 0 if mine is None else mine.batch.height
        commit = RemoteCommit.of(frames, others, unmarked=rows)
        out.append(Pushed(commit, None, None if mine is None else mine.offsets, False))
    return out


class HeldCommits:
    """On a worker other than 0: the commits its split inputs pushed, each reported to worker
    0 under a sequence number and kept until a time takes it.

    A time worker 0 announces for live commits lets the other workers *join* it: each then
    adds every live commit of a streaming input it holds, reported or not (rows that come
    in while the workers are busy ride with the next time, as a reader reading every
    partition would have committed them together), instead of waiting for worker 0 to hear
    of them and announce a time for them. Worker 0 forgets the joined commits it has not
    taken yet; a later time that still names one gets nothing more from it here."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[int, pl.DataFrame, bool]] = {}  # (input, rows, joinable)
        self._sequences = itertools.count()
        self._joined: set[int] = set()
        self.reported_finished: set[int] = set()

    def add(self, index: int, batch: pl.DataFrame, *, joinable: bool) -> int:
        """Keep a commit of input ``index``; its sequence number."""
        sequence = next(self._sequences)
        self._held[sequence] = (index, batch, joinable)
        return sequence

    def take(self, chosen: list[int]) -> list[tuple[int, pl.DataFrame]]:
        """The commits a time names (less those joined to an earlier time)."""
        taken = []
        for sequence in chosen:
            if sequence in self._joined:
                self._joined.discard(sequence)
                continue
            index, batch, _ = self._held.pop(sequence)
            taken.append((index, batch))
        return taken

    def join(self) -> tuple[list[tuple[int, pl.DataFrame]], list[int]]:
        """Every joinable commit held: the commits, and their sequence numbers."""
        sequences = [s for s, (_, _, joinable) in self._held.items() if joinable]
        self._joined.update(sequences)
        return [self._held.pop(s)[:2] for s in sequences], sequences
