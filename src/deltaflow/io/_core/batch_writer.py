"""The one-method writer: a :class:`BatchWriter` receives each time's changes at once.

The full :class:`~deltaflow.io._core.base.Writer` contract separates ``write`` (each payload)
from ``flush`` (the time is complete) so that big times can stream into their destination. A
destination that takes one request per time (an API call, a transaction, a message) needs
less: :meth:`BatchWriter.write_batch` gets the time and all of its changes as Python values,
on the output's own thread, after the previous time's call returned. :func:`write_batches`
registers it; queueing, ordering, failures (a ``ConnectorError`` naming the output) and the
end of the run come from the output session.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID
from deltaflow.io._core.arguments import check_write_options, output_table
from deltaflow.io._core.base import Formatter, Writer


class Change(NamedTuple):
    """One change of a table: the row's id (``pw.Pointer``), its values by column, and
    ``diff``: 1 for an insertion, -1 for a deletion (an update is both, in the same time)."""

    key: t.Pointer
    row: dict[str, Any]
    diff: int


class BatchWriter(ABC):
    """A destination written once per time: implement :meth:`write_batch`.

    Deletions of a time come before its insertions unless the output has ``sort_by``. When
    ``write_batch`` returns, the time's changes must be stored: the run may end (or, with
    persistence, be checkpointed) right after. A restarted persisted run may hand over the
    changes after its last checkpoint once more (at-least-once).
    """

    @abstractmethod
    def write_batch(self, time: int, changes: list[Change]) -> None:
        """Store the ``changes`` of ``time`` (never empty)."""

    def close(self) -> None:  # noqa: B027 - optional
        """The run ended normally; release connections."""


class _ChangesFormatter(Formatter):
    """A delta batch as :class:`Change` tuples, converted column by column."""

    def __init__(self, columns: Mapping[str, t.DType], sorted_by_user: bool) -> None:
        self.names = list(columns)
        self.sorted_by_user = sorted_by_user

    def format(self, batch: pl.DataFrame, time: int) -> list[Change]:
        keys = t.values_from_series(batch[ID])
        diffs = batch[DIFF].to_list()
        rows = t.row_dicts(batch, self.names)
        changes = [Change(*change) for change in zip(keys, rows, diffs, strict=True)]
        if not self.sorted_by_user and any(diff < 0 for diff in diffs):
            changes = [c for c in changes if c.diff < 0] + [c for c in changes if c.diff > 0]
        return changes


class _BatchWriterAdapter(Writer):
    """Collects a time's changes (it may come in several batches) and hands them over at the
    time's flush."""

    def __init__(self, target: BatchWriter) -> None:
        self.target = target
        self.pending: list[Change] = []

    def write(self, payload: list[Change]) -> None:
        self.pending.extend(payload)

    def flush(self, time: int) -> None:
        if self.pending:
            changes, self.pending = self.pending, []
            self.target.write_batch(time, changes)

    def close(self) -> None:
        self.target.close()


def write_batches(
    table: Any, writer: BatchWriter, *, label: str | None = None, **options: Any
) -> None:
    """Write every change of ``table`` through ``writer``, one call per time.

    ``options`` are the common writer arguments (``name``, ``sort_by``), checked now;
    ``label`` names the connector in messages (default: the writer's class name).
    """
    if not isinstance(writer, BatchWriter):
        raise TypeError(f"the writer must be a BatchWriter, got {type(writer).__name__}")
    label = label or type(writer).__name__
    checked = check_write_options(label, table, default_name=label, **options)
    formatter = _ChangesFormatter(checked.columns, sorted_by_user=checked.sort_by is not None)
    output_table(checked, _BatchWriterAdapter(writer), formatter)
