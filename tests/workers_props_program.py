"""A program that ``tests/test_workers_properties.py`` runs with ``deltaflow spawn -n N``.

``python workers_props_program.py CASES.json OUT.json``: CASES holds
``{"terminate_on_error": bool, "cases": [{"pipeline": NAME, "streams": [...]}, ...]}``, each
stream a list of events ``(label, k, v, time, diff)`` as ``update_streams`` of
``test_stateful_properties`` draws them. Every case's pipeline (one of :data:`PIPELINES`, which
cover every operator family of the engine and of the temporal operators) is built in one graph
and run by one ``pw.run()``; worker 0 writes what each output produced to OUT, as
``[time, key, row, diff]`` lists (see ``workers_program.main``).

Pipelines whose names start with ``spread`` first move their input's rows by a join to the
workers owning their values, so that the operators after it get rows from every worker (debug
tables enter on worker 0).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import deltaflow as pw
from test_errors_properties import PROGRAMS as ERROR_PROGRAMS
from test_incremental_properties import PIPELINES as STATELESS
from test_interpolate import _gappy_program
from test_iterate import _ping_pong, closure, components, distances
from test_iterate_properties import _edges, iterate_read_only
from test_join_chain import CHAINS, join_chain
from test_s4_reducers_properties import NEW_REDUCERS
from test_stateful_properties import REDUCERS, id_operation
from workers_program import main

Pipeline = Callable[..., pw.Table]


def spread(t: pw.Table) -> pw.Table:
    """``t`` itself (the same ids and rows), its rows held by the workers owning their ``v``."""
    values = t.groupby(t.v).reduce(t.v)
    return t.join(values, t.v == values.v, id=t.id).select(t.k, t.v)


def with_text(t: pw.Table) -> pw.Table:
    """Columns ``k``, ``v`` and ``s`` (a short string) for the stateless pipelines."""
    return t.select(t.k, t.v, s=pw.if_else(t.v > 0, "ab", pw.if_else(t.v == 0, "", "b")))


def with_nones(t: pw.Table) -> pw.Table:
    """``v`` is None where it was 0."""
    return t.select(t.k, v=pw.if_else(t.v == 0, None, t.v))


# --- the engine ------------------------------------------------------------------------------


def _stateless(name: str) -> Pipeline:
    return lambda t: STATELESS[name](with_text(t))


def _stateless_then_reduce(name: str) -> Pipeline:
    """The rows a stateless pipeline made (on the workers holding its input), grouped."""

    def pipeline(t: pw.Table) -> pw.Table:
        out = STATELESS[name](with_text(t))
        first = out[out.column_names()[0]]
        return out.groupby(first).reduce(first, n=pw.reducers.count())

    return pipeline


#: Reducers also accepting None values.
_OPTIONAL_REDUCERS: dict[str, Callable[[pw.Table], Any]] = {
    "count": lambda t: pw.reducers.count(),
    "min": lambda t: pw.reducers.min(t.v),
    "max": lambda t: pw.reducers.max(t.v),
    "any": lambda t: pw.reducers.any(t.v),
    "tuple": lambda t: pw.reducers.tuple(t.v),
    "tuple_skip": lambda t: pw.reducers.tuple(t.v, skip_nones=True),
    "sorted_tuple": lambda t: pw.reducers.sorted_tuple(t.v, skip_nones=True),
    "earliest": lambda t: pw.reducers.earliest(t.v),
    "latest": lambda t: pw.reducers.latest(t.v),
    "count_distinct": lambda t: pw.reducers.count_distinct(t.v),
}

ALL_REDUCERS = {
    **REDUCERS,
    **NEW_REDUCERS,
    "float_avg": lambda t: pw.reducers.avg(t.v / 3 + 0.1),
    "float_min": lambda t: pw.reducers.min(t.v * 0.1),
    "earliest": lambda t: pw.reducers.earliest(t.v),
    "latest": lambda t: pw.reducers.latest(t.v),
}


def _reduce(name: str) -> Pipeline:
    return lambda t: t.groupby(t.k).reduce(t.k, r=ALL_REDUCERS[name](t))


def _reduce_nones(name: str) -> Pipeline:
    def pipeline(t: pw.Table) -> pw.Table:
        n = with_nones(t)
        return n.groupby(n.k).reduce(n.k, r=_OPTIONAL_REDUCERS[name](n))

    return pipeline


def reduce_by_value(t: pw.Table) -> pw.Table:
    return t.groupby(t.v).reduce(
        t.v, n=pw.reducers.count(), s=pw.reducers.sum(t.k), ks=pw.reducers.sorted_tuple(t.k)
    )


def reduce_two_columns(t: pw.Table) -> pw.Table:
    return t.groupby(t.k, t.v).reduce(t.k, t.v, n=pw.reducers.count())


def reduce_object_key(t: pw.Table) -> pw.Table:
    keyed = t.select(t.v, p=pw.make_tuple(t.k, t.v % 2))
    return keyed.groupby(keyed.p).reduce(keyed.p, n=pw.reducers.count(), s=pw.reducers.sum(keyed.v))


def reduce_nested(t: pw.Table) -> pw.Table:
    sums = t.groupby(t.k).reduce(t.k, s=pw.reducers.sum(t.v))
    return sums.groupby(sums.s).reduce(sums.s, n=pw.reducers.count(), m=pw.reducers.max(sums.k))


def global_reduce(t: pw.Table) -> pw.Table:
    return t.reduce(
        n=pw.reducers.count(),
        s=pw.reducers.sum(t.v),
        m=pw.reducers.max(t.v),
        tu=pw.reducers.sorted_tuple(t.v),
    )


def reindexed(t: pw.Table) -> pw.Table:
    unique = t.groupby(t.k, t.v).reduce(t.k, t.v, n=pw.reducers.count())
    return unique.with_id_from(unique.v, unique.k).select(pw.this.k, pw.this.v, pw.this.n)


def with_id_from_reduce(t: pw.Table) -> pw.Table:
    per_key = t.groupby(t.k).reduce(t.k, s=pw.reducers.sum(t.v))
    return per_key.with_id_from(per_key.k + 100).filter(pw.this.s != 0)


def float_sums(t: pw.Table) -> pw.Table:
    # Floats whose sum depends on the order of the terms unless summed exactly.
    f = t.select(t.k, f=pw.if_else(t.v > 0, 1e17, 0.1) * t.v + t.k * 0.3)
    by_key = f.groupby(f.k).reduce(f.k, s=pw.reducers.sum(f.f), a=pw.reducers.avg(f.f))
    return by_key.concat_reindex(f.reduce(k=-1, s=pw.reducers.sum(f.f), a=pw.reducers.avg(f.f)))


def diff(t: pw.Table) -> pw.Table:
    return t + t.diff(t.v, t.k, instance=t.k)


def interpolate(t: pw.Table) -> pw.Table:
    return _gappy_program(t)


def sort(t: pw.Table) -> pw.Table:
    return t + t.sort(key=t.v, instance=t.k)


def sort_all(t: pw.Table) -> pw.Table:
    return t.sort(key=t.v * 10 + t.k)


def deduplicate(t: pw.Table) -> pw.Table:
    return t.deduplicate(value=t.v, instance=t.k, acceptor=lambda new, old: new > old)


def deduplicate_all(t: pw.Table) -> pw.Table:
    return t.deduplicate(value=t.v, acceptor=lambda new, old: abs(new - old) >= 2)


def deduplicate_first(t: pw.Table) -> pw.Table:
    # The first row of each instance stays: which is first among a time's rows matters.
    return t.deduplicate(value=t.v, instance=t.k % 2, acceptor=lambda new, old: False)


def ix_ref(t: pw.Table) -> pw.Table:
    per_key = t.groupby(t.k).reduce(t.k, s=pw.reducers.sum(t.v))
    return t.select(t.v, s=per_key.ix_ref(t.k).s)


def ix(t: pw.Table) -> pw.Table:
    per_key = t.groupby(t.k).reduce(t.k, m=pw.reducers.min(t.v))
    pointers = t.select(t.v, p=per_key.pointer_from(t.k))
    return pointers.select(pointers.v, m=per_key.ix(pointers.p).m)


def ix_optional(a: pw.Table, b: pw.Table) -> pw.Table:
    per_key = b.groupby(b.k).reduce(b.k, m=pw.reducers.max(b.v))
    return a.select(a.v, m=per_key.ix_ref(a.k, optional=True, allow_misses=True).m)


def _join(how: str) -> Pipeline:
    def pipeline(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"join_{how}")(b, a.k == b.k)
        return joined.select(lv=pw.left.v, rv=pw.right.v, k=pw.this.k, lid=a.id, rid=b.id)

    return pipeline


def join_two_columns_left_ids(a: pw.Table, b: pw.Table) -> pw.Table:
    unique_right = b.groupby(b.k, b.v).reduce(b.k, b.v, n=pw.reducers.count())
    return a.join_left(unique_right, a.k == unique_right.k, a.v == unique_right.v, id=a.id).select(
        a.k, a.v, n=unique_right.n
    )


def join_right_ids(a: pw.Table, b: pw.Table) -> pw.Table:
    unique_left = a.groupby(a.k).reduce(a.k, s=pw.reducers.sum(a.v))
    return unique_left.join_right(b, unique_left.k == b.k, id=b.id).select(
        b.k, b.v, s=unique_left.s
    )


def join_expression_keys(a: pw.Table, b: pw.Table) -> pw.Table:
    return a.join(b, a.k + a.v == b.v * 2).select(a.k, a.v, w=b.k)


def join_then_reduce(a: pw.Table, b: pw.Table) -> pw.Table:
    joined = a.join_outer(b, a.k == b.k).select(
        k=pw.this.k, x=pw.coalesce(pw.left.v, 0) + pw.coalesce(pw.right.v, 0)
    )
    totals = joined.groupby(pw.this.k).reduce(pw.this.k, v=pw.reducers.sum(pw.this.x))
    per_key = a.groupby(a.k).reduce(a.k, v=pw.reducers.max(a.v))
    return per_key.update_rows(totals).filter(pw.this.v > -2)


def exactly_once_join(a: pw.Table, b: pw.Table) -> pw.Table:
    counts = b.groupby(b.k).reduce(b.k, n=pw.reducers.count())  # one partner per left row
    return a.join(counts, a.k == counts.k, left_exactly_once=True).select(a.v, counts.n, lid=a.id)


def join_chain_groupby(t1: pw.Table, t2: pw.Table, t3: pw.Table) -> pw.Table:
    chained = t1.join_left(t2, t1.k == t2.k).join(t3, pw.left.k == pw.right.k)
    return chained.groupby(t3.v).reduce(t3.v, n=pw.reducers.count(), s=pw.reducers.sum(t1.v))


def concat_reduces(a: pw.Table, b: pw.Table) -> pw.Table:
    left = a.groupby(a.k).reduce(a.k, s=pw.reducers.sum(a.v))
    right = b.groupby(b.v).reduce(k=b.v, s=pw.reducers.count())
    return (
        left.concat_reindex(right)
        .groupby(pw.this.k)
        .reduce(pw.this.k, s=pw.reducers.sum(pw.this.s))
    )


# --- iterate ---------------------------------------------------------------------------------


def iterate_components(t: pw.Table) -> pw.Table:
    return components(_edges(t))


def iterate_closure(t: pw.Table) -> pw.Table:
    return closure(_edges(t))


def iterate_distances(t: pw.Table) -> pw.Table:
    return distances(_edges(t).with_columns(w=1 + (pw.this.u + pw.this.v) % 3), 0)


def iterate_per_row(t: pw.Table) -> pw.Table:
    start = t.select(n=t.k + pw.if_else(t.v < 0, -t.v, t.v) + 1, steps=0)

    def step(s: pw.Table) -> pw.Table:
        return s.select(
            n=pw.if_else(s.n == 1, 1, pw.if_else(s.n % 2 == 0, s.n // 2, 3 * s.n + 1)),
            steps=pw.if_else(s.n == 1, s.steps, s.steps + 1),
        )

    return pw.iterate(step, iteration_limit=3, s=start)


def iterate_two_tables(a: pw.Table, b: pw.Table) -> pw.Table:
    def per_key(t: pw.Table) -> pw.Table:
        return t.groupby(t.k).reduce(t.k, v=pw.reducers.max(t.v))

    new_a, new_b = _ping_pong(per_key(a), per_key(b))
    return new_a.select(new_a.k, new_a.v, side=0).concat_reindex(
        new_b.select(new_b.k, new_b.v, side=1)
    )


# --- temporal --------------------------------------------------------------------------------

WINDOWS = {
    "tumbling": pw.temporal.tumbling(duration=3),
    "sliding": pw.temporal.sliding(hop=2, duration=4),
    "session": pw.temporal.session(max_gap=2),
}

BEHAVIORS = {
    "none": None,
    "delay": pw.temporal.common_behavior(delay=2),
    "cutoff": pw.temporal.common_behavior(cutoff=2),
    "cutoff_nokeep": pw.temporal.common_behavior(cutoff=2, keep_results=False),
    "delay_cutoff_nokeep": pw.temporal.common_behavior(delay=3, cutoff=1, keep_results=False),
    "exactly_once": pw.temporal.exactly_once_behavior(),
    "exactly_once_shift": pw.temporal.exactly_once_behavior(shift=1),
}


def _event_time(t: pw.Table) -> pw.Table:
    """Event times that mostly grow with the processing time, some late."""
    return t.select(t.k, t.v, at=t.v * 2 + t.k)


def _time_behavior(method: str, threshold: int) -> Pipeline:
    return lambda t: getattr(_event_time(t), method)(pw.this.at, threshold)


def forget_marked(t: pw.Table) -> pw.Table:
    # Marked forgetting happens at odd times that the operator asks for itself.
    marked = _event_time(t).forget(pw.this.at, 3, mark_forgetting_records=True)
    return marked.reduce(s=pw.reducers.sum(pw.this.v), n=pw.reducers.count())


def forget_marked_filtered(t: pw.Table) -> pw.Table:
    marked = _event_time(t).forget(pw.this.at, 2, mark_forgetting_records=True)
    total = marked.groupby(pw.this.k).reduce(pw.this.k, s=pw.reducers.sum(pw.this.v))
    return total.filter_out_results_of_forgetting()


#: The gates with an instance (Pathway's private ``_buffer`` / ``_freeze`` / ``_forget`` with
#: ``instance_column``): a frontier per instance. Rows change instance when updated.
BY_INSTANCE: dict[str, Callable[[pw.Table], pw.Table]] = {
    "buffer": lambda e: e._buffer(e.at + 3, e.at, instance_column=e.k % 3),
    "ignore_late": lambda e: e._freeze(e.at + 1, e.at, instance_column=e.k),
    "forget": lambda e: e._forget(e.at + 2, e.at, False, instance_column=e.k % 2),
    "forget_marked": lambda e: e._forget(e.at + 2, e.at, True, instance_column=e.k),
}


def _by_instance(kind: str) -> Pipeline:
    return lambda t: BY_INSTANCE[kind](_event_time(t))


def by_instance_buffer_nones(t: pw.Table) -> pw.Table:
    # Rows without a threshold (or without a time) pass at once.
    e = _event_time(with_nones(t))
    return e._buffer(e.v * 2 + 1, e.at, instance_column=e.k % 2)


def by_instance_forget_marked_reduced(t: pw.Table) -> pw.Table:
    # The odd times of marked forgetting, asked for by the workers that forgot rows only.
    marked = BY_INSTANCE["forget_marked"](_event_time(t))
    return marked.reduce(s=pw.reducers.sum(pw.this.v), n=pw.reducers.count())


def by_instance_forget_marked_filtered(t: pw.Table) -> pw.Table:
    marked = BY_INSTANCE["forget_marked"](_event_time(t))
    total = marked.groupby(pw.this.k).reduce(pw.this.k, s=pw.reducers.sum(pw.this.v))
    return total.filter_out_results_of_forgetting()


def by_instance_chain(t: pw.Table) -> pw.Table:
    # A held row's time is later than the frontier of another instance below.
    e = _event_time(t)
    held = e._buffer(e.at + 2, e.at, instance_column=e.k % 2)
    return held._forget(held.at + 4, held.at, True, instance_column=held.v % 2)


#: The pipelines with gates by instance (also in :data:`PIPELINES`, each also spread).
GATES_BY_INSTANCE: dict[str, Pipeline] = {
    **{f"by_instance_{kind}": _by_instance(kind) for kind in BY_INSTANCE},
    "by_instance_buffer_nones": by_instance_buffer_nones,
    "by_instance_forget_marked_reduced": by_instance_forget_marked_reduced,
    "by_instance_forget_marked_filtered": by_instance_forget_marked_filtered,
    "by_instance_chain": by_instance_chain,
}


def _reduced(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` over the largest ``v`` per ``k``: rows updated at later times, each id held
    by the worker owning its group (the gates below run where the rows are)."""

    def reduced_first(t: pw.Table) -> pw.Table:
        return pipeline(t.groupby(t.k).reduce(t.k, v=pw.reducers.max(t.v)))

    return reduced_first


def _windows(window: str, behavior: str, instance: bool) -> Pipeline:
    def pipeline(t: pw.Table) -> pw.Table:
        e = _event_time(t)
        return e.windowby(
            e.at,
            window=WINDOWS[window],
            instance=e.k % 2 if instance else None,
            behavior=BEHAVIORS[behavior],
        ).reduce(
            start=pw.this._pw_window_start,
            end=pw.this._pw_window_end,
            instance=pw.this._pw_instance,
            n=pw.reducers.count(),
            s=pw.reducers.sum(pw.this.v),
            ats=pw.reducers.sorted_tuple(pw.this.at),
        )

    return pipeline


def intervals_over(a: pw.Table, b: pw.Table) -> pw.Table:
    return a.windowby(
        a.v,
        window=pw.temporal.intervals_over(at=b.v, lower_bound=-2, upper_bound=1, is_outer=True),
    ).reduce(
        pw.this._pw_window_location, n=pw.reducers.count(), ks=pw.reducers.sorted_tuple(pw.this.k)
    )


def _asof(how: str, direction: str) -> Pipeline:
    def pipeline(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"asof_join_{how}")(
            b, a.v, b.v, a.k == b.k, direction=getattr(pw.temporal.Direction, direction)
        )
        return joined.select(lid=a.id, rid=b.id, lv=pw.left.v, rv=pw.right.v, t=pw.this.t)

    return pipeline


def _interval_join(how: str, behavior: str) -> Pipeline:
    def pipeline(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"interval_join_{how}")(
            b, a.v, b.v, pw.temporal.interval(-1, 2), a.k == b.k, behavior=BEHAVIORS[behavior]
        )
        return joined.select(lid=a.id, rid=b.id, lv=pw.left.v, rv=pw.right.v)

    return pipeline


def _asof_behavior(behavior: str) -> Pipeline:
    def pipeline(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = a.asof_join_left(b, a.v, b.v, a.k == b.k, behavior=BEHAVIORS[behavior])
        return joined.select(lid=a.id, rid=b.id, lv=pw.left.v, rv=pw.right.v)

    return pipeline


def _window_join(how: str, window: str) -> Pipeline:
    def pipeline(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"window_join_{how}")(b, a.v, b.v, WINDOWS[window], a.k == b.k)
        return joined.select(lv=pw.left.v, rv=pw.right.v, lk=pw.left.k, rk=pw.right.k)

    return pipeline


def _asof_now(how: str) -> Pipeline:
    def pipeline(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"asof_now_join_{how}")(b, a.k == b.k)
        return joined.select(qv=pw.left.v, v=pw.right.v, lid=a.id)

    return pipeline


# --- all of them -----------------------------------------------------------------------------


def _spread(pipeline: Pipeline) -> Pipeline:
    @functools.wraps(pipeline)  # the same parameters
    def spread_first(*tables: pw.Table) -> pw.Table:
        return pipeline(*map(spread, tables))

    return spread_first


_BASE: dict[str, Pipeline] = {
    **{f"stateless_{name}": _stateless(name) for name in STATELESS if name != "reindex"},
    **{
        f"stateless_{name}_reduced": _stateless_then_reduce(name)
        for name in STATELESS
        if name != "reindex"
    },
    **{f"reduce_{name}": _reduce(name) for name in ALL_REDUCERS},
    **{f"reduce_nones_{name}": _reduce_nones(name) for name in _OPTIONAL_REDUCERS},
    "reduce_by_value": reduce_by_value,
    "reduce_two_columns": reduce_two_columns,
    "reduce_object_key": reduce_object_key,
    "reduce_nested": reduce_nested,
    "global_reduce": global_reduce,
    "reindexed": reindexed,
    "with_id_from_reduce": with_id_from_reduce,
    "float_sums": float_sums,
    "diff": diff,
    "interpolate": interpolate,
    "sort": sort,
    "sort_all": sort_all,
    "deduplicate": deduplicate,
    "deduplicate_all": deduplicate_all,
    "deduplicate_first": deduplicate_first,
    "ix_ref": ix_ref,
    "ix": ix,
    "ix_optional": ix_optional,
    **{f"join_{how}": _join(how) for how in ("inner", "left", "right", "outer")},
    "join_two_columns_left_ids": join_two_columns_left_ids,
    "join_right_ids": join_right_ids,
    "join_expression_keys": join_expression_keys,
    "join_then_reduce": join_then_reduce,
    **{
        f"join_chain_{chain}_{'right' if right else 'left'}": join_chain(chain, right)
        for chain in CHAINS
        for right in (False, True)
    },
    "join_chain_groupby": join_chain_groupby,
    "concat_reduces": concat_reduces,
    **{
        f"ids_{kind}": id_operation(kind)
        for kind in ("update_rows", "update_cells", "restrict", "difference", "intersect")
    },
    "iterate_components": iterate_components,
    "iterate_closure": iterate_closure,
    "iterate_distances": iterate_distances,
    "iterate_per_row": iterate_per_row,
    "iterate_read_only": iterate_read_only,
    "iterate_two_tables": iterate_two_tables,
}

_TEMPORAL: dict[str, Pipeline] = {
    **{
        f"windows_{window}_{behavior}_{'instance' if instance else 'all'}": _windows(
            window, behavior, instance
        )
        for window in WINDOWS
        for behavior in BEHAVIORS
        for instance in (False, True)
        if (behavior in ("none", "delay", "cutoff")) or not instance
    },
    "intervals_over": intervals_over,
    **{
        f"{method}_{threshold}": _time_behavior(method, threshold)
        for method in ("ignore_late", "buffer", "forget")
        for threshold in (0, 3)
    },
    "forget_marked": forget_marked,
    "forget_marked_filtered": forget_marked_filtered,
    **GATES_BY_INSTANCE,
    "reduced_by_instance_buffer": _reduced(_by_instance("buffer")),
    "reduced_by_instance_forget_marked": _reduced(by_instance_forget_marked_reduced),
    **{
        f"reduced_{method}_3": _reduced(_time_behavior(method, 3))
        for method in ("ignore_late", "buffer", "forget")
    },
    "reduced_forget_marked": _reduced(forget_marked),
    **{
        f"reduced_windows_tumbling_{behavior}": _reduced(_windows("tumbling", behavior, False))
        for behavior in ("delay_cutoff_nokeep", "exactly_once", "cutoff")
    },
    **{
        f"asof_{how}_{direction.lower()}": _asof(how, direction)
        for how in ("left", "right", "outer")
        for direction in ("BACKWARD", "FORWARD", "NEAREST")
    },
    **{
        f"interval_join_{how}_{behavior}": _interval_join(how, behavior)
        for how in ("inner", "left", "right", "outer")
        for behavior in ("none", "delay", "cutoff", "cutoff_nokeep")
    },
    **{f"asof_left_{behavior}": _asof_behavior(behavior) for behavior in ("delay", "cutoff")},
    **{
        f"window_join_{how}_{window}": _window_join(how, window)
        for how in ("inner", "left", "right", "outer")
        for window in WINDOWS
    },
    **{f"asof_now_{how}": _asof_now(how) for how in ("inner", "left")},
}

#: The pipelines of the runs that stop at the first error (the default).
PIPELINES: dict[str, Pipeline] = {
    **_BASE,
    **_TEMPORAL,
    **{f"spread_{name}": _spread(p) for name, p in {**_BASE, **_TEMPORAL}.items()},
    "exactly_once_join": exactly_once_join,
}

#: The pipelines of the runs that keep errors as values (``terminate_on_error=False``).
ERROR_PIPELINES: dict[str, Pipeline] = {
    **{f"errors_{name}": p for name, p in ERROR_PROGRAMS.items()},
    **{f"spread_errors_{name}": _spread(p) for name, p in ERROR_PROGRAMS.items()},
}

#: Pipelines whose inputs must only grow (their operators assume it).
APPEND_ONLY = {"exactly_once_join"}


if __name__ == "__main__":
    main({**PIPELINES, **ERROR_PIPELINES})
