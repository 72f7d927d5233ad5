"""Where each operator runs with several workers, and how partitioned inputs are split.

The placements:

* ``INPUT`` / ``SPLIT_INPUT``: an input runs on worker 0, or on every worker when its
  reader can read a share of its paths (see ``inputs``).
* ``LOCAL``: row-by-row operators (select, filter, flatten, reindex, concat, window
  assignment and window ids) run on every worker over the rows that worker holds; nothing
  moves. So does a behavior's gate without an instance (below) whose input row ids each
  stay on one worker at every time (below a partitioned reduce or id operation, another
  gate, an append-only input read on every worker: see ``_keeps_ids_on_one``).
  A gate (with an instance or without) whose input rows are all on worker 0 (an input read
  there, no partitioned operator above) stays there (``SINGLE``): moving its rows and
  agreeing on the frontier would cost more round trips per time than the gate's work.
* ``PARTITIONED``: each input row goes to the worker owning its key, so that the rows an
  operator's result combines meet on one worker, whose state holds only its share:

  - groupby-reduce: the group key;
  - joins, interval joins, asof and asof_now joins: the join key, on both sides (cast to the
    key types first, so that equal keys hash equally);
  - id operations (``update_rows``, ``update_cells``, ``restrict``, ``with_universe_of``,
    ``intersect``, ``difference``) and ``filter_out_results_of_forgetting``: the row id, on
    every input (``ix``/``ix_ref`` are joins of a pointer with the ids, partitioned as joins);
  - ``sort``, ``deduplicate`` and session windows with an instance: the instance (all their
    state is per instance);
  - the behaviors' gates without an instance (``buffer``, ``ignore_late``, ``forget``, as
    windows' ``common_behavior`` / ``exactly_once_behavior`` build them): the row id. They
    compare rows with the largest event time of the whole table, which no worker's share
    knows, so at each time every worker running a gate sends the others a summary of its
    share (its largest event time, and what decides whether rows are held or forgotten
    anywhere) and each finishes its step with the combination of all of them
    (``TimeGateOperator.prepare`` / ``conclude``; ``exchange.Exchange.send_summary``). The
    times they ask for (marked forgetting's odd time, the final time for held rows) are
    then asked for alike on every worker, worker 0's request among them;
  - the gates with an instance (Pathway's private ``_forget`` / ``_buffer`` / ``_freeze``
    with ``instance_column``: a frontier per instance): the instance. Each worker holds
    every row of the instances it owns, so it decides alone what it lets through, holds or
    forgets; only the times a ``buffer`` (held rows: the final time) or a marked ``forget``
    (its odd time) asks for depend on the other workers' rows, so those two exchange the
    same summaries, and ask for their times alike (``is_summarized_gate``).

  The gates keep no saved state: in a persisted run too they are placed so, and a restart
  rebuilds their state by replaying the checkpoint's rows through them, on any number of
  workers (the replay is one time like the others, with its exchanges and summaries).

  A key computed by Python (a UDF would run twice) keeps the operator on worker 0, and so
  does a run keeping errors (the key projection drops and reports rows with errors, once).
* ``SINGLE``: everything else: ``sort``, ``deduplicate`` and sessions without an instance
  (one global state), a ``deduplicate`` in a persisted run (its saved state is kept on
  worker 0), gates whose input rows are all on worker 0, ``iterate``, most outputs, and the
  partitioned kinds when partitioning them is not safe: the inputs are gathered on worker 0,
  which runs the operator over all rows, as with one worker.
* ``EVERY_WORKER``: an output whose destination takes several writers (its sink says so:
  ``Sink.several_writers``, e.g. ``pw.io.kafka.write``) runs on every worker, each writing the
  rows it holds, when what the workers write at a time is together that time's consolidated
  changes: its rows are spread, and no row id can be on two workers at one time (see
  :func:`spread_outputs`). Single-writer destinations (files, SQLite, PostgreSQL,
  ``subscribe``), outputs sorted within a time (``sort_by``) and outputs of rows whose ids may
  be on several workers are gathered on worker 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import numpy as np
import polars as pl

from deltaflow.engine.batch import ID
from deltaflow.engine.operators import (
    ConcatOperator,
    FilterOperator,
    FlattenOperator,
    InputOperator,
    Operator,
    OutputOperator,
    ReindexOperator,
    SelectOperator,
)
from deltaflow.engine.stateful.keys import KH, add_key_columns, key_hash_expr
from deltaflow.engine.temporal_window import WindowAssignOperator, WindowIdOperator

#: The shares of rows by key are taken from the key hash above its low bits, so that a
#: worker's keys do not all share the same low bits.
_SHARE_DIVISOR = 1 << 29

#: Deltas with fewer rows are split by gathering NumPy positions, bigger ones by filters.
_GATHER_ROWS = 100_000


class Placement(Enum):
    INPUT = "input"  # the source's rows enter on worker 0
    SPLIT_INPUT = "split input"  # read on every worker, each its share of the paths
    LOCAL = "local"
    PARTITIONED = "partitioned"
    SINGLE = "single"
    EVERY_WORKER = "output on every worker"  # each worker writes the rows it holds


#: Window assignment and window ids are arithmetic on each row (see ``temporal_window``).
_LOCAL = (
    SelectOperator,
    FilterOperator,
    FlattenOperator,
    ReindexOperator,
    ConcatOperator,
    WindowAssignOperator,
    WindowIdOperator,
)

#: Per input of a partitioned operator: the 64-bit key hash of each row of a delta.
KeyHasher = Callable[[pl.DataFrame], pl.Series]


def _key_hasher(pre: Any, keys: list[str], key_types: list[Any]) -> KeyHasher | None:
    """The key hash of the rows of a delta as the operator's ``pre`` projection keys them, or
    None when the keys cannot be computed cheaply and exactly once more (the projection calls
    Python: user functions would run twice). Divisions are not checked for zeros here: a zero
    divisor fails the operator's own projection, on the worker the row went to."""
    exprs = pre.unchecked_exprs()
    if exprs is None or any(k not in exprs for k in keys):
        return None
    dtypes = [k.to_polars() for k in key_types]
    objects = any(d == pl.Object for d in dtypes)
    key_exprs = [
        exprs[k] if d == pl.Object else exprs[k].cast(d).alias(k)
        for k, d in zip(keys, dtypes, strict=True)
    ]

    def hashes(delta: pl.DataFrame) -> pl.Series:
        if not keys:
            return pl.Series(KH, [0] * delta.height, dtype=pl.UInt64)
        if objects:  # Python-object keys are hashed through their canonical text
            frame, _ = add_key_columns(delta.select(key_exprs), keys)
            return frame[KH]
        return delta.select(key_hash_expr(key_exprs, dtypes).alias(KH))[KH]

    return hashes


def _hash_of_ids(delta: pl.DataFrame) -> pl.Series:
    """The key hash of each row's id (id operations match rows by id)."""
    return delta.select(key_hash_expr([ID], [pl.UInt128]).alias(KH))[KH]


def _instance_hasher(op: Operator) -> KeyHasher | None:
    """For an operator whose state is kept per instance (``sort``, ``deduplicate``, session
    windows), the hash of each row's instance; None without an instance (one global state)."""
    node: Any = op.node
    name = "__inst" if "__inst" in node.pre.types else "_pw_instance"
    if name not in node.pre.types:
        return None
    return _key_hasher(node.pre, [name], [node.pre.types[name]])


def partition_hashers(
    op: Operator, keeps_errors: bool, *, persisted: bool = False
) -> list[KeyHasher] | None:
    """One key hasher per input when ``op`` is partitioned by key, else None. ``persisted``:
    a run with persistence, whose operators with a saved state stay on worker 0."""
    if keeps_errors:  # error policies drop rows in the key projection: run it once, on worker 0
        return None
    from deltaflow.engine.stateful.asof import AsofJoinOperator, AsofNowJoinOperator
    from deltaflow.engine.stateful.deduplicate import DeduplicateOperator
    from deltaflow.engine.stateful.idops import IdOpOperator
    from deltaflow.engine.stateful.interval import IntervalJoinOperator
    from deltaflow.engine.stateful.join import JoinOperator
    from deltaflow.engine.stateful.join_once import ExactlyOnceJoinOperator
    from deltaflow.engine.stateful.ordering import SortOperator
    from deltaflow.engine.stateful.reduce import ReduceOperator
    from deltaflow.engine.stateful.temporal_behavior import (
        ForgettingFilterOperator,
        TimeGateOperator,
    )
    from deltaflow.engine.stateful.temporal_session import SessionOperator

    kind = type(op)
    if kind is ReduceOperator:
        node: Any = op.node
        hasher = _key_hasher(node.pre, list(node.keys), list(node.key_types))
        return None if hasher is None else [hasher]
    if kind is IdOpOperator:  # every input by row id: the rows of one id meet on one worker
        return [_hash_of_ids] * len(op.node.inputs)
    if kind is ForgettingFilterOperator:  # rows shown, by id; the odd times are everyone's
        return [_hash_of_ids]
    if is_frontier_gate(op):  # by id, with the frontier of every worker
        return [_hash_of_ids]
    if (
        kind is TimeGateOperator  # with an instance: a frontier per instance
        or kind in (SortOperator, SessionOperator)
        or (kind is DeduplicateOperator and not persisted)
    ):
        hasher = _instance_hasher(op)
        return None if hasher is None else [hasher]
    if kind in (
        JoinOperator,
        ExactlyOnceJoinOperator,
        IntervalJoinOperator,
        AsofJoinOperator,
        AsofNowJoinOperator,
    ):
        node = op.node
        if node.left_pre is None or node.right_pre is None:
            return None
        keys, types = list(node.keys), list(node.key_types)
        sides = [_key_hasher(node.left_pre, keys, types), _key_hasher(node.right_pre, keys, types)]
        if sides[0] is None or sides[1] is None:
            return None
        return [sides[0], sides[1]]
    return None


def is_frontier_gate(op: Operator) -> bool:
    """Whether ``op`` is a behavior's gate over the whole table (no instance): a gate whose
    workers agree on the frontier at each time (see the module's docstring)."""
    return _is_gate(op) and not op.node.has_instance


def _is_gate(op: Operator) -> bool:
    from deltaflow.engine.stateful.temporal_behavior import TimeGateOperator

    return type(op) is TimeGateOperator


def is_summarized_gate(op: Operator) -> bool:
    """Whether the workers sharing gate ``op`` send each other a summary of their shares at
    each time it runs (``TimeGateOperator.prepare`` / ``conclude``): a gate without an
    instance (for the frontier), a ``buffer`` with one (whether rows are held anywhere: the
    final time is asked for alike) and a marked ``forget`` with one (whether rows are
    forgotten anywhere: the odd time after is asked for alike). An ``ignore_late``, or a
    ``forget`` without marks, with an instance needs nothing from the other workers."""
    if not _is_gate(op):
        return False
    node: Any = op.node
    return not node.has_instance or node.kind == "buffer" or node.mark_forgetting_records


def placement_of(op: Operator, hashers: list[KeyHasher] | None, *, split: bool) -> Placement:
    """Where ``op`` runs; ``split``: an input read on every worker."""
    if isinstance(op, InputOperator):
        return Placement.SPLIT_INPUT if split else Placement.INPUT
    if hashers is not None:
        return Placement.PARTITIONED
    if type(op) in _LOCAL:
        return Placement.LOCAL
    return Placement.SINGLE


def place_operators(
    operators: Sequence[Operator],
    hashers: Sequence[list[KeyHasher] | None],
    inputs_of: list[list[int]],
    split: set[int],
    *,
    persisted: bool = False,
) -> tuple[list[Placement], list[bool]]:
    """Where each operator runs (``split``: the positions of the inputs read on every
    worker), and whether its output may have rows on other workers than 0. ``persisted``:
    a run with persistence; its outputs are placed alike (each worker's part of a checkpoint
    holds the positions of the outputs it writes)."""

    placement = [
        placement_of(op, keyed, split=position in split)
        for position, (op, keyed) in enumerate(zip(operators, hashers, strict=True))
    ]
    # Whether each operator's output may have rows on other workers than 0 (``spread``), and
    # whether each of its row ids stays on one worker (``owned``, see ``_keeps_ids_on_one``).
    # A gate runs on worker 0 when its rows are all there (spreading them would cost more
    # than the gate); else a gate sharing the frontier runs where its rows are when their ids
    # stay on one worker (LOCAL), or takes them by id, and a gate with an instance takes the
    # rows of the instances each worker owns.
    spread: list[bool] = []
    owned: list[bool] = []
    for position, (op, keyed) in enumerate(zip(operators, hashers, strict=True)):
        inputs = inputs_of[position]
        if keyed is not None and _is_gate(op):
            if not spread[inputs[0]]:
                placement[position] = Placement.SINGLE
            elif owned[inputs[0]] and is_frontier_gate(op):
                placement[position] = Placement.LOCAL
        where = placement[position]
        if where is Placement.LOCAL:
            spread.append(any(spread[i] for i in inputs))
        else:
            spread.append(where in (Placement.PARTITIONED, Placement.SPLIT_INPUT))
        owned.append(_keeps_ids_on_one(operators, position, where, inputs, owned))
    # Outputs to destinations with several writers are written where their rows are, in a
    # persisted run too: each worker's writer records its own position in its part of the
    # checkpoint, and worker 0 settles a crashed run's tail for all (``kafka/_replay.py``).
    return spread_outputs(operators, placement, inputs_of, spread, owned), spread


def _keeps_ids_on_one(
    operators: Sequence[Operator],
    position: int,
    where: Placement,
    inputs: list[int],
    owned: list[bool],
) -> bool:
    """Whether every row id of operator ``position``'s output is held by one worker, the same
    at every time ("owned"; ``owned``: the answers for the operators before it). Then each
    worker's delta at a time is consolidated, so is their union, and every change of an id
    reaches the worker that holds its earlier ones. Ids are owned at the output of:

    * an input on worker 0, or one read on every worker whose rows are never taken back
      (``append_only``, a Kafka topic: each message, so each id, is read by one worker);
    * a partitioned reduce (its rows' ids come from the group key, whose owner holds it), a
      partitioned ``deduplicate`` (ids from the instance, whose owner holds it) and a
      partitioned id operation, ``filter_out_results_of_forgetting`` or gate without an
      instance (their rows keep ids, each on the worker owning that id);
    * an operator on worker 0;
    * ``select``, ``filter``, window assignment and gates (row by row, keeping ids or
      deriving them from the row's id) of such rows, and the window ids of a windowed reduce
      (from the window and instance, its group key).

    Not at a join (a pair of rows whose keys both change at one time is retracted on one
    worker and inserted again on another), nor at ``sort``, session windows or a gate with
    an instance (a row whose instance changes moves to another worker), nor at reindexing, ``flatten`` or ``concat``
    (new ids, made on several workers).
    """
    from deltaflow.engine.stateful.deduplicate import DeduplicateOperator
    from deltaflow.engine.stateful.idops import IdOpOperator
    from deltaflow.engine.stateful.reduce import ReduceOperator
    from deltaflow.engine.stateful.temporal_behavior import (
        ForgettingFilterOperator,
        TimeGateOperator,
    )

    op = operators[position]
    if where is Placement.INPUT or where is Placement.SINGLE:
        return True
    if where is Placement.SPLIT_INPUT:
        return bool(getattr(op.node.source, "append_only", False))
    if where is Placement.PARTITIONED:
        if type(op) is TimeGateOperator:  # by id; by instance, a row may change owner
            return not op.node.has_instance
        return type(op) in (
            ReduceOperator,
            DeduplicateOperator,
            IdOpOperator,
            ForgettingFilterOperator,
        )
    if isinstance(op, WindowIdOperator):  # LOCAL from here on
        return type(operators[inputs[0]]) is ReduceOperator and owned[inputs[0]]
    keeps_ids = (
        isinstance(op, SelectOperator | FilterOperator | WindowAssignOperator | TimeGateOperator)
        and len(inputs) == 1
    )
    return keeps_ids and owned[inputs[0]]


def spread_outputs(
    operators: Sequence[Operator],
    placement: list[Placement],
    inputs_of: list[list[int]],
    spread: list[bool],
    owned: list[bool],
) -> list[Placement]:
    """``placement`` with the outputs that are written on every worker made ``EVERY_WORKER``.

    An output is written where its rows are when its sink takes several writers, it does not
    sort a time's rows, its input may have rows on other workers than 0 (``spread``), and
    every row id of its input is held by one worker (``owned``, see
    :func:`_keeps_ids_on_one`): then the rows each worker writes at a time are consolidated,
    and so is their union, with nothing that two workers' rows would cancel.
    """
    out = list(placement)
    for position, op in enumerate(operators):
        if (
            isinstance(op, OutputOperator)
            and getattr(op.sink, "several_writers", False)
            and not op.sort_by
            and spread[inputs_of[position][0]]
            and owned[inputs_of[position][0]]
        ):
            out[position] = Placement.EVERY_WORKER
    return out


def split_by_key(delta: pl.DataFrame, hashes: pl.Series, workers: int) -> list[pl.DataFrame]:
    """The rows of ``delta`` owned by each of ``workers`` workers, in worker order."""
    if delta.height < _GATHER_ROWS:
        # A streaming minibatch: positions by NumPy, one gather per worker (150 rows: about
        # 0.08 ms, where a Polars filter per worker costs 0.18 ms and a Python loop 0.15 ms).
        owners = (hashes.to_numpy() // _SHARE_DIVISOR) % workers
        return [delta[np.flatnonzero(owners == w)] for w in range(workers)]
    # One filter per worker: several times faster than partition_by on millions of rows.
    shares = ((hashes // _SHARE_DIVISOR) % workers).cast(pl.UInt32)
    return [delta.filter(shares == w) for w in range(workers)]
