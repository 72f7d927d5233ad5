"""The DynamoDB formatter: a delta batch becomes the puts and deletes it asks for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF
from deltaflow.io._core.base import Formatter
from deltaflow.io.dynamodb._types import MAX_ITEM_BYTES, scalar_payloads, serialize_column


@dataclass
class RejectedRow:
    """A change that was not sent: which key it had and why."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"row with key {self.key}: {self.reason}"


@dataclass
class DynamoDBChanges:
    """What one delta batch asks of DynamoDB, after collapsing by key.

    ``puts`` are full items, ``deletes`` are keys; ``put_keys``/``delete_keys`` identify them
    (for merging several batches of one time). ``rejected`` rows are reported at flush.
    """

    time: int
    puts: list[dict[str, Any]]
    put_keys: list[tuple[Any, ...]]
    deletes: list[dict[str, Any]]
    delete_keys: list[tuple[Any, ...]]
    rejected: list[RejectedRow]


class DynamoDBFormatter(Formatter):
    """Delta batch → :class:`DynamoDBChanges` with low-level (pre-serialized) values."""

    def __init__(self, columns: dict[str, t.DType], key_columns: Sequence[str]) -> None:
        self.columns = dict(columns)
        self.key_columns = list(key_columns)

    def _key_payloads(self, frame: pl.DataFrame) -> list[tuple[str, pl.Series]]:
        found = []
        for name in self.key_columns:
            scalar = scalar_payloads(frame[name], self.columns[name])
            assert scalar is not None  # write() accepts only keys with an S/N/B mapping
            found.append(scalar)
        return found

    def _describe_key(self, frame: pl.DataFrame, row: int) -> str:
        parts = []
        for name in self.key_columns:
            value = t.values_from_series(frame[name].slice(row, 1))[0]
            parts.append(f"{name}={value!r}")
        return ", ".join(parts)

    def format(self, batch: pl.DataFrame, time: int) -> DynamoDBChanges:
        if batch.height == 0:
            return DynamoDBChanges(time, [], [], [], [], [])
        # Collapse every key to its final effect: after sorting deletions before insertions
        # (stably), the last change of a key is an insertion whenever the key has one.
        key_names = [f"__dynamodb_key{i}" for i in range(len(self.key_columns))]
        payloads = self._key_payloads(batch)
        frame = batch.with_columns(
            [series.alias(name) for name, (_, series) in zip(key_names, payloads, strict=True)]
        )
        frame = frame.sort(DIFF, maintain_order=True).unique(
            subset=key_names, keep="last", maintain_order=True
        )
        rejected: list[RejectedRow] = []
        frame = self._drop_empty_keys(frame, key_names, rejected)
        inserted = frame[DIFF] > 0
        puts_frame = frame.filter(inserted)
        deletes_frame = frame.filter(~inserted)
        deletes, delete_keys = self._keys_of(deletes_frame, key_names, payloads)
        puts, put_keys = self._items_of(puts_frame, key_names, rejected)
        return DynamoDBChanges(time, puts, put_keys, deletes, delete_keys, rejected)

    def _drop_empty_keys(
        self, frame: pl.DataFrame, key_names: list[str], rejected: list[RejectedRow]
    ) -> pl.DataFrame:
        empty = pl.Series([False] * frame.height)
        for name, key in zip(key_names, self.key_columns, strict=True):
            series = frame[name]
            if series.dtype == pl.Binary:
                empty = empty | (series.bin.size() == 0)
            elif self.columns[key].strip_optional() in (t.STR, t.JSON):
                empty = empty | (series.str.len_bytes() == 0)
        if not empty.any():
            return frame
        for row in np.flatnonzero(empty.to_numpy()):
            rejected.append(
                RejectedRow(
                    self._describe_key(frame, int(row)),
                    "DynamoDB does not accept an empty string or empty bytes as a key value",
                )
            )
        return frame.filter(~empty)

    def _keys_of(
        self, frame: pl.DataFrame, key_names: list[str], payloads: list[tuple[str, pl.Series]]
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        columns = [frame[name].to_list() for name in key_names]
        tags = [tag for tag, _ in payloads]
        identities = list(zip(*columns, strict=True))
        keys = [
            {
                name: {tag: value}
                for name, tag, value in zip(self.key_columns, tags, identity, strict=True)
            }
            for identity in identities
        ]
        return keys, identities

    def _items_of(
        self, frame: pl.DataFrame, key_names: list[str], rejected: list[RejectedRow]
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        if frame.height == 0:
            return [], []
        names = list(self.columns)
        serialized = [serialize_column(frame[name], self.columns[name]) for name in names]
        sizes = np.zeros(frame.height, dtype=np.int64)
        for name, column in zip(names, serialized, strict=True):
            sizes += column.sizes + len(name.encode())
        problems: dict[int, list[str]] = {}
        for name, column in zip(names, serialized, strict=True):
            for row, reason in column.errors.items():
                problems.setdefault(row, []).append(f"column {name!r}: {reason}")
        for big in np.flatnonzero(sizes > MAX_ITEM_BYTES):
            problems.setdefault(int(big), []).append(
                f"the item is about {int(sizes[big])} bytes, over DynamoDB's limit of "
                f"{MAX_ITEM_BYTES} bytes (400 KB)"
            )
        identities = list(zip(*[frame[name].to_list() for name in key_names], strict=True))
        rows = zip(*[column.values for column in serialized], strict=True)
        if not problems:
            return [dict(zip(names, row, strict=True)) for row in rows], identities
        items, kept = [], []
        for index, row in enumerate(rows):
            if index in problems:
                rejected.append(
                    RejectedRow(self._describe_key(frame, index), "; ".join(problems[index]))
                )
            else:
                items.append(dict(zip(names, row, strict=True)))
                kept.append(identities[index])
        return items, kept
