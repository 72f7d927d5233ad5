"""Ids of rows known only by their position in a part of a source (a file, a stream).

A row without a primary key or an id of its source gets the id of its position: position
``n`` of part ``key`` of input ``name`` always gets the same id (``_ids.sequence_ids``), in
every run, so a restart or a re-read of a file gives its rows their old ids.
"""

from __future__ import annotations

from collections.abc import Hashable

import polars as pl

from deltaflow._ids import sequence_ids

#: Position ids computed at once for the small commits of a part (see :meth:`PositionIds.take`)
#: ...
ID_BLOCK = 4096
#: ... growing up to this many for a part that keeps committing ...
ID_BLOCK_MAX = 65_536
#: ... and kept for this many parts.
ID_BLOCKS_KEPT = 4


class PositionIds:
    """The next position of every part of an input, and the ids of those positions.

    A part (a file) is named by its key: its ids are the same whichever worker reads it.
    ``stream_seed`` names the positions of the input without parts (a stream): for a worker
    other than the first, with the worker's index (see ``InputSession._stream_seed``).
    """

    def __init__(self, name: str, stream_seed: str) -> None:
        self.name = name
        self.stream_seed = stream_seed
        self.positions: dict[Hashable, int] = {}
        # Per part read lately: the ids of its next positions (the first one, the ids).
        self.blocks: dict[Hashable, tuple[int, pl.Series]] = {}

    def skip(self, key: Hashable | None, count: int) -> None:
        """Count ``count`` positions of part ``key`` as used (rows replayed from a checkpoint)."""
        self.positions[key] = self.positions.get(key, 0) + count

    def restart(self, key: Hashable | None) -> None:
        """Part ``key`` is read again from its start (a changed file): its positions too."""
        self.positions.pop(key, None)

    def take(self, key: Hashable | None, count: int) -> pl.Series:
        """The ids of the next ``count`` positions of part ``key``."""
        start = self.positions.get(key, 0)
        self.positions[key] = start + count
        seed = self.stream_seed if key is None else f"{self.name}|{key}"
        if count >= ID_BLOCK:
            return sequence_ids(seed, start, count)
        # Small commits (a stream) take their ids from a block computed ahead: computing ids
        # has a fixed cost of a few hundred microseconds per call whatever the count, and ids
        # depend only on the position. Blocks are kept for the few parts read last (a stream,
        # files being appended to): a source of many small files must not keep one per file.
        # A part that keeps needing blocks gets bigger ones (4x, up to ID_BLOCK_MAX): the
        # commit that computes one waits for it, so they come rarer.
        blocks = self.blocks
        block = blocks.get(key)
        if block is None:
            # The part's first small commit: its own ids (a few are cheap, computed in
            # Python), as a small file has no other; a block from the part's next commit.
            size = count
        elif block[1].len() < ID_BLOCK or not block[0] <= start:
            size = ID_BLOCK
        elif start + count > block[0] + block[1].len():
            size = min(ID_BLOCK_MAX, 4 * block[1].len())
        else:
            return block[1].slice(start - block[0], count)
        ids = sequence_ids(seed, start, size)
        blocks.pop(key, None)
        blocks[key] = (start, ids)
        if len(blocks) > ID_BLOCKS_KEPT:
            del blocks[next(iter(blocks))]  # the part whose block is the oldest
        return ids.slice(0, count)
