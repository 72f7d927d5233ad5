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
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow import _types as t
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
        computed, failures = _PLAIN.run(node.fun, args, rows, node.kwarg_names, None,
                                        _fail_fast())
    elif options.cache_strategy is None:
        computed, failures = options.executor.run(node.fun, args, rows, node.kwarg_names,
                                                  options.max_batch_size, _fail_fast())
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


def _run_cached(node: Any, options: CallOptions, args: list[list[Any]],
                rows: Sequence[int]) -> tuple[list[Any], Failures]:
    assert options.cache_strategy is not None
    store = current_scope().cache_store(options.cache_strategy, options.cache_name)
    if not store.keeps_values:
        return options.executor.run(node.fun, args, rows, node.kwarg_names,
                                    options.max_batch_size, True)
    positional = len(args) - len(node.kwarg_names)
    keys: list[Hashable] = []
    results: list[Any] = []
    first_row_of: dict[Hashable, int] = {}  # distinct missing keys -> index in ``rows``
    for index, row in enumerate(rows):
        values = [column[row] for column in args]
        key = store.key(tuple(values[:positional]),
                        dict(zip(node.kwarg_names, values[positional:], strict=True)))
        keys.append(key)
        value = store.get(key)
        if value is MISSING and key not in first_row_of:
            first_row_of[key] = index
        results.append(value)
    failures: Failures = {}
    if first_row_of:
        missing = list(first_row_of.values())
        computed, call_failures = options.executor.run(
            node.fun, args, [rows[i] for i in missing], node.kwarg_names,
            options.max_batch_size, _fail_fast())
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
    """The values a UDF gave the rows that are still present, by row id."""

    def __init__(self) -> None:
        self.values: dict[int, Any] = {}
        self.pending: list[tuple[pl.Series, pl.Series]] = []

    def keep(self, ids: pl.Series, values: pl.Series) -> None:
        """Remember a minibatch's results: small ones at once (a stream of tiny minibatches
        must not pile up chunks), big ones lazily, when a deletion needs them. Either way a
        row's entry is written before its deletion can be seen, so the order is safe."""
        size = ids.len()
        if size > _INDEX_AT_ONCE:
            self.pending.append((ids, values))
        elif size:
            self.values.update(zip(ids.to_list(), t.values_from_series(values), strict=True))

    def take(self, ids: list[int]) -> list[Any]:
        """The remembered values of ``ids`` (forgotten now), :data:`MISSING` when unknown."""
        if self.pending:
            for chunk_ids, chunk_values in self.pending:
                self.values.update(zip(chunk_ids.to_list(), t.values_from_series(chunk_values),
                                       strict=True))
            self.pending = []
        pop = self.values.pop
        return [pop(row_id, MISSING) for row_id in ids]


def compute_with_rows(node: Any, args: list[pl.Series], size: int, dtype: t.DType,
                      ids: pl.Series, diffs: pl.Series) -> pl.Series:
    """The node's column for a delta batch (``ids`` and ``diffs`` of its rows)."""
    if node.deterministic or size == 0:
        return node.compute(args, size, dtype)
    state = current_scope().node_state
    memory = state.get(node._uid)
    if memory is None:
        memory = state[node._uid] = _RowMemory()
    if diffs.min() > 0:  # insertions only (one cheap call: tiny deltas are the hot path)
        column = node.compute(args, size, dtype)
        memory.keep(ids, column)
        return column
    # Python lists from here: batches with deletions are mostly small streaming deltas.
    id_list, diff_list = ids.to_list(), diffs.to_list()
    deleted = [row for row in range(size) if diff_list[row] < 0]
    remembered = memory.take([id_list[row] for row in deleted])
    known = {row: value for row, value in zip(deleted, remembered, strict=True)
             if value is not MISSING}
    _KNOWN.values = known
    try:
        column = node.compute(args, size, dtype)
    finally:
        _KNOWN.values = None
    inserted = [row for row in range(size) if diff_list[row] > 0]
    if inserted:
        values = t.values_from_series(column)
        memory.values.update((id_list[row], values[row]) for row in inserted)
    return column
