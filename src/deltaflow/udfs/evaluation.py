"""Evaluating a UDF (an ``Apply`` expression node) over the rows of one minibatch.

:func:`evaluate` runs the calls: rows with a None argument are skipped under
``propagate_none``, a cache answers what it can (each distinct argument tuple is computed once
per minibatch), and the executor makes the remaining calls. Failures come back as exceptions by
row; ``Apply.fail`` decides what they become.

:func:`compute_with_rows` adds what Pathway does for non-deterministic functions (the default):
the value computed for a row is remembered under the row's id, and the row's deletion retracts
that same value without calling the function again. Remembering is cheap on the way in (the
result column of the minibatch is kept as it is); the values are turned into a per-id dictionary
only when a deletion has to look one up, so an insert-only run pays nothing per row.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import polars as pl

from deltaflow import _types as t
from deltaflow.errors import InconsistentDataError
from deltaflow.udfs.caches import MISSING, CacheStrategy
from deltaflow.udfs.context import current_scope
from deltaflow.udfs.executors import Executor, SyncExecutor

Failures = dict[int, BaseException]

_PLAIN = SyncExecutor()


@dataclass(frozen=True)
class CallOptions:
    """How a UDF's calls are made: the (resolved) executor, the cache and its name, and the
    batch size (None: one row per call)."""

    executor: Executor
    cache_strategy: CacheStrategy | None = None
    cache_name: str = "udf"
    max_batch_size: int | None = None


def _fail_fast() -> bool:
    """Stop at a row's failure unless failures become error values (every row is then
    computed; see deltaflow.errors)."""
    from deltaflow.errors import keeps_errors

    return not keeps_errors()


def evaluate(node: Any, args: list[list[Any]], size: int) -> tuple[list[Any], Failures]:
    """The results of ``node.fun`` on every row (None where skipped or failed) and the
    failures by row position."""
    options: CallOptions | None = node.options
    rows: Sequence[int] = range(size)
    known: dict[int, Any] | None = getattr(_KNOWN, "values", None)
    if known:  # rows whose value was remembered (deletions): no call
        rows = [row for row in rows if row not in known]
    if node.propagate_none and args:
        rows = [row for row in rows if all(column[row] is not None for column in args)]
    if options is None:
        computed, failures = _PLAIN.run(node.fun, args, rows, node.kwarg_names, None, _fail_fast())
    elif options.cache_strategy is None:
        computed, failures = options.executor.run(
            node.fun, args, rows, node.kwarg_names, options.max_batch_size, _fail_fast()
        )
    else:
        computed, failures = _run_cached(node, options, args, rows)
    if isinstance(rows, range):
        return computed, failures
    results: list[Any] = [None] * size
    for row, value in zip(rows, computed, strict=True):
        results[row] = value
    if known:
        for row, value in known.items():
            results[row] = value
    return results, {rows[index]: error for index, error in failures.items()}


def _run_cached(
    node: Any, options: CallOptions, args: list[list[Any]], rows: Sequence[int]
) -> tuple[list[Any], Failures]:
    assert options.cache_strategy is not None
    store = current_scope().cache_store(options.cache_strategy, options.cache_name)
    if not store.keeps_values:
        return options.executor.run(
            node.fun, args, rows, node.kwarg_names, options.max_batch_size, True
        )
    positional = len(args) - len(node.kwarg_names)
    keys: list[Hashable] = []
    results: list[Any] = []
    first_row_of: dict[Hashable, int] = {}  # distinct missing keys -> index in ``rows``
    for index, row in enumerate(rows):
        values = [column[row] for column in args]
        key = store.key(
            tuple(values[:positional]),
            dict(zip(node.kwarg_names, values[positional:], strict=True)),
        )
        keys.append(key)
        value = store.get(key)
        if value is MISSING and key not in first_row_of:
            first_row_of[key] = index
        results.append(value)
    failures: Failures = {}
    if first_row_of:
        missing = list(first_row_of.values())
        computed, call_failures = options.executor.run(
            node.fun,
            args,
            [rows[i] for i in missing],
            node.kwarg_names,
            options.max_batch_size,
            _fail_fast(),
        )
        fresh: dict[Hashable, Any] = {}
        failed: dict[Hashable, BaseException] = {}
        for position, (index, value) in enumerate(zip(missing, computed, strict=True)):
            if position in call_failures:
                failed[keys[index]] = call_failures[position]
            else:
                fresh[keys[index]] = value
                store.put(keys[index], value)
        for index, value in enumerate(results):
            if value is MISSING:
                key = keys[index]
                if key in failed:
                    failures[index] = failed[key]
                    results[index] = None
                else:
                    results[index] = fresh.get(key)
    return results, failures


# --- non-deterministic functions: one value per row, kept until the row is deleted ----------
_INDEX_AT_ONCE = 256  # rows: smaller results are indexed by row id when computed
_KNOWN = threading.local()  # .values: {row position: remembered value} during one compute


class _RowMemory:
    """The values a UDF gave the rows that are still present, by row id.

    It also watches the promise that makes remembering by id sound: a row id is inserted
    again only after its deletion. A repeated insertion is noted (``repeated``) and stops the
    run once the table shows it is not append-only (a deletion arrives), as in Pathway, where
    an append-only table's repeated ids pass through."""

    def __init__(self, values: MutableMapping[int, Any] | None = None) -> None:
        self.values: MutableMapping[int, Any] = {} if values is None else values
        self.pending: list[tuple[pl.Series, pl.Series]] = []
        self.repeated: int | None = None  # the first id seen inserted twice without deletion
        self.saw_deletion = False

    def keep(self, ids: pl.Series, values: pl.Series, repeated_in_batch: bool = False) -> None:
        """Remember a minibatch's results: small ones at once (a stream of tiny minibatches
        must not pile up chunks), big ones lazily, when a deletion needs them. Either way a
        row's entry is written before its deletion can be seen, so the order is safe."""
        size = ids.len()
        if size > _INDEX_AT_ONCE:
            self.pending.append((ids, values))
            if repeated_in_batch:
                self._note_repeated(ids.to_list())
        elif size:
            id_list = ids.to_list()
            if self.repeated is None and (
                repeated_in_batch
                or len(set(id_list)) < size
                or (self.values and not self.values.keys().isdisjoint(id_list))
            ):
                self._note_repeated(id_list)
            self.values.update(zip(id_list, t.values_from_series(values), strict=True))

    def _note_repeated(self, id_list: list[int]) -> None:
        if self.repeated is not None:
            return
        seen: set[int] = set()
        for row_id in id_list:
            if row_id in seen or row_id in self.values:
                self.repeated = row_id
                return
            seen.add(row_id)
        self.repeated = id_list[0] if id_list else None  # one row inserted twice (diff 2)

    def take(self, ids: list[int]) -> list[Any]:
        """The remembered values of ``ids`` (forgotten now), :data:`MISSING` when unknown."""
        self._index_pending()
        pop = self.values.pop
        return [pop(row_id, MISSING) for row_id in ids]

    def _index_pending(self) -> None:
        """Move the lazily kept chunks into the per-id dictionary."""
        if self.pending:
            for chunk_ids, chunk_values in self.pending:
                id_list = chunk_ids.to_list()
                if self.repeated is None and (
                    len(set(id_list)) < len(id_list) or not self.values.keys().isdisjoint(id_list)
                ):
                    self._note_repeated(id_list)
                self.values.update(zip(id_list, t.values_from_series(chunk_values), strict=True))
            self.pending = []

    def check(self, name: str) -> None:
        """Stop the run if a row id was inserted twice in a table known to delete rows."""
        if self.saw_deletion and self.repeated is not None:
            raise InconsistentDataError(
                f"{name}: row {t.Pointer(self.repeated)} was inserted again without being "
                f"deleted first (a source repeating a primary key?); a non-deterministic UDF "
                f"keeps one value per row to retract it later, so the table's rows must have "
                f"distinct ids (make the source an upsert source, or deduplicate it)"
            )


def compute_with_rows(
    node: Any, args: list[pl.Series], size: int, dtype: t.DType, ids: pl.Series, diffs: pl.Series
) -> pl.Series:
    """The node's column for a delta batch (``ids`` and ``diffs`` of its rows)."""
    if node.deterministic or size == 0:
        return node.compute(args, size, dtype)
    state = current_scope().node_state
    memory = state.get(node._uid)
    if memory is None:
        memory = state[node._uid] = _RowMemory(current_scope().row_values())
    if getattr(node, "keeps_values_forever", False):
        return _compute_forever(node, memory, args, size, dtype, ids)
    # Diffs are non-null integers and size > 0, so min/max are ints (casts for the checker).
    if cast(int, diffs.min()) > 0:  # insertions only (one cheap call: tiny deltas are hot)
        column = node.compute(args, size, dtype)
        memory.keep(ids, column, repeated_in_batch=cast(int, diffs.max()) > 1)
        memory.check(_udf_name(node))
        return column
    # Python lists from here: batches with deletions are mostly small streaming deltas.
    id_list, diff_list = ids.to_list(), diffs.to_list()
    memory.saw_deletion = True
    deleted = [row for row in range(size) if diff_list[row] < 0]
    over_deleted = next((id_list[row] for row in deleted if diff_list[row] < -1), None)
    if over_deleted is not None:
        raise InconsistentDataError(
            f"{_udf_name(node)}: row {t.Pointer(over_deleted)} was deleted more "
            f"often than it was inserted (a source deleting a row twice?)"
        )
    remembered = memory.take([id_list[row] for row in deleted])
    memory.check(_udf_name(node))
    known = {
        row: value for row, value in zip(deleted, remembered, strict=True) if value is not MISSING
    }
    _KNOWN.values = known
    try:
        column = node.compute(args, size, dtype)
    finally:
        _KNOWN.values = None
    inserted = [row for row in range(size) if diff_list[row] > 0]
    if inserted:
        values = t.values_from_series(column)
        # Ids that stay in the memory (inserted before, not deleted now) are repeated.
        still = [
            id_list[row] for row in inserted if id_list[row] in memory.values or diff_list[row] > 1
        ]
        if still:
            memory._note_repeated(still)
        memory.values.update((id_list[row], values[row]) for row in inserted)
        memory.check(_udf_name(node))
    return column


def _compute_forever(
    node: Any, memory: _RowMemory, args: list[pl.Series], size: int, dtype: t.DType, ids: pl.Series
) -> pl.Series:
    """A UDF whose arguments are append-only columns (deltaflow.column_properties): a row
    id's arguments never change, so the value computed the first time the id appeared is
    its value for good. It is kept when the row is deleted and served again, without a
    call, when the row comes back (an update of other columns, a reinsertion)."""
    memory._index_pending()
    stored = memory.values
    id_list = ids.to_list()
    known = {row: stored[row_id] for row, row_id in enumerate(id_list) if row_id in stored}
    if not known:
        column = node.compute(args, size, dtype)
        memory.keep(ids, column)
        return column
    _KNOWN.values = known
    try:
        column = node.compute(args, size, dtype)
    finally:
        _KNOWN.values = None
    if len(known) < size:
        values = t.values_from_series(column)
        stored.update(
            (row_id, values[row]) for row, row_id in enumerate(id_list) if row not in known
        )
    return column


def _udf_name(node: Any) -> str:
    return f"UDF {getattr(node, 'name', None) or getattr(node, 'label', 'apply')}"
