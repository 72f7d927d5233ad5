"""``sort``: per-instance ordered state kept in Python structures.

Neighbours in key order are inherently sequential per instance, so the state is a sorted list
per instance and an update touches only the neighbours of the rows it moves. (``deduplicate``
lives in :mod:`deltaflow.engine.stateful.deduplicate`.)
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.stateful.nodes import SortNode


def _sort_key(value: Any) -> Any:
    if value is None:
        return (0, 0)
    if isinstance(value, t.Pointer):
        return (1, value.value)
    return (1, value)


class SortOperator(Operator[SortNode]):
    handles_errors = True  # only its key projection reads the rows (error policy)

    def __init__(self, node: SortNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.has_instance = "__inst" in node.pre.types
        self.pre.set_error_policy(
            list(node.pre.types), "row skipped: an Error value in the sort key"
        )
        self.lists: dict[Any, list[tuple[Any, int]]] = {}
        self.where: dict[int, tuple[Any, Any]] = {}  # id -> (instance key, sort entry)
        self.links: dict[int, tuple[int | None, int | None]] = {}

    def _neighbours(
        self, entries: list[tuple[Any, int]], entry: tuple[Any, int]
    ) -> tuple[int | None, int | None]:
        position = bisect.bisect_left(entries, entry)
        prev = entries[position - 1][1] if position > 0 else None
        nxt = entries[position + 1][1] if position + 1 < len(entries) else None
        return prev, nxt

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        frame = self.pre.run(delta, keep=[ID, DIFF])
        ids = frame[ID].to_list()
        keys = t.values_from_series(frame["__key"])
        instances = (
            [t.canonical_key(v) for v in t.values_from_series(frame["__inst"])]
            if self.has_instance
            else [None] * frame.height
        )
        diffs = frame[DIFF].to_list()
        affected: set[int] = set()
        # Deletions first, so that an update (delete + insert of one id) moves the row.
        order = sorted(range(len(ids)), key=lambda i: diffs[i] > 0)
        for i in order:
            row_id = ids[i]
            if diffs[i] < 0:
                placed = self.where.pop(row_id, None)
                if placed is None:
                    continue
                instance, entry = placed
                entries = self.lists[instance]
                prev, nxt = self._neighbours(entries, entry)
                affected.update(x for x in (row_id, prev, nxt) if x is not None)
                del entries[bisect.bisect_left(entries, entry)]
                if not entries:
                    del self.lists[instance]
            else:
                entry = (_sort_key(keys[i]), row_id)
                entries = self.lists.setdefault(instances[i], [])
                bisect.insort(entries, entry)
                self.where[row_id] = (instances[i], entry)
                affected.add(row_id)
        for row_id in list(affected):
            placed = self.where.get(row_id)
            if placed is not None:
                prev, nxt = self._neighbours(self.lists[placed[0]], placed[1])
                affected.update(x for x in (prev, nxt) if x is not None)
        return links_delta(affected, self.links, self._new_links)

    def _new_links(self, row_id: int) -> tuple[int | None, int | None] | None:
        placed = self.where.get(row_id)
        return self._neighbours(self.lists[placed[0]], placed[1]) if placed else None


def links_delta(
    affected: Iterable[int],
    links: dict[int, tuple[int | None, int | None]],
    new_links: Callable[[int], tuple[int | None, int | None] | None],
) -> Delta:
    """The changes of the (prev, next) links of the ``affected`` rows: each row whose links
    differ from the ones last emitted (``links``, updated here) is retracted and re-inserted;
    ``new_links(row)`` gives a row's links now (None when it is gone)."""
    out_ids: list[int] = []
    prevs: list[int | None] = []
    nexts: list[int | None] = []
    signs: list[int] = []
    for row_id in affected:
        old = links.get(row_id)
        new = new_links(row_id)
        if old == new:
            continue
        if old is not None:
            out_ids.append(row_id)
            prevs.append(old[0])
            nexts.append(old[1])
            signs.append(-1)
        if new is not None:
            out_ids.append(row_id)
            prevs.append(new[0])
            nexts.append(new[1])
            signs.append(1)
            links[row_id] = new
        else:
            links.pop(row_id, None)
    if not out_ids:
        return None
    return consolidate(
        pl.DataFrame(
            {
                ID: pl.Series(out_ids, dtype=pl.UInt128),
                "prev": pl.Series(prevs, dtype=pl.UInt128),
                "next": pl.Series(nexts, dtype=pl.UInt128),
                DIFF: pl.Series(signs, dtype=pl.Int64),
            }
        )
    )
