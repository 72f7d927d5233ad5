"""A program that ``tests/test_workers.py`` runs with ``deltaflow spawn -n N``.

``python workers_program.py CASES.json OUT.json``: CASES holds a list of cases, each a
pipeline name and its input update streams (events ``(label, k, v, time, diff)``). Every
case's pipeline is built in one graph and run by one ``pw.run()``; worker 0 writes what each
output produced, as ``[time, key, row, diff]`` lists, to OUT.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import deltaflow as pw


class S(pw.Schema):
    k: int
    v: int


def _table(events: list[list[int]]) -> pw.Table:
    lines = ["  | k | v | __time__ | __diff__"]
    lines += ["  " + " | ".join(str(c) for c in event) for event in events]
    return pw.debug.table_from_markdown("\n".join(lines), schema=S)


def groupby(t: pw.Table) -> pw.Table:
    return t.groupby(t.k).reduce(
        t.k,
        n=pw.reducers.count(),
        s=pw.reducers.sum(t.v),
        lo=pw.reducers.min(t.v),
        hi=pw.reducers.max(t.v),
        avg=pw.reducers.avg(t.v),
        values=pw.reducers.sorted_tuple(t.v),  # a Python-object column crosses workers
        latest=pw.reducers.argmax(t.v),
    )


def counts_and_sums(t: pw.Table) -> pw.Table:
    # Only counts and integer sums: each worker combines its rows before the exchange.
    by_k = t.groupby(t.k).reduce(
        t.k, n=pw.reducers.count(), s=pw.reducers.sum(t.v), avg=pw.reducers.avg(t.v)
    )
    by_v = t.groupby(t.v).reduce(t.v, n=pw.reducers.count())
    return by_k.join_left(by_v, by_k.k == by_v.v).select(by_k.k, by_k.n, by_k.s, by_k.avg, m=by_v.n)


def join_groupby(a: pw.Table, b: pw.Table) -> pw.Table:
    joined = a.join_left(b, a.k == b.k).select(k=a.k, x=a.v * 10 + pw.coalesce(b.v, 0))
    return joined.groupby(pw.this.k).reduce(
        pw.this.k, n=pw.reducers.count(), s=pw.reducers.sum(pw.this.x)
    )


def outer_join(a: pw.Table, b: pw.Table) -> pw.Table:
    return a.join_outer(b, a.k == b.k).select(
        k=pw.coalesce(a.k, b.k), lv=a.v, rv=b.v, lid=a.id, rid=b.id
    )


def reduce_then_join(a: pw.Table, b: pw.Table) -> pw.Table:
    # The join's left input comes out of a partitioned reduce: every worker sends to all.
    totals = a.groupby(a.v).reduce(v=a.v, n=pw.reducers.count())
    return totals.join(b, totals.n == b.k).select(totals.v, totals.n, w=b.v)


def two_keys_and_sort(a: pw.Table, b: pw.Table) -> pw.Table:
    # A join on two columns, a reduce by two columns, then sort (gathered on worker 0).
    joined = a.join(b, a.k == b.k, a.v % 2 == b.v % 2).select(k=a.k, p=a.v % 2, x=a.v + b.v)
    sums = joined.groupby(pw.this.k, pw.this.p).reduce(
        pw.this.k, pw.this.p, s=pw.reducers.sum(pw.this.x)
    )
    return sums + sums.sort(key=sums.s)


def global_reduce(t: pw.Table) -> pw.Table:
    return t.reduce(n=pw.reducers.count(), s=pw.reducers.sum(t.v))


def concat_and_filter(a: pw.Table, b: pw.Table) -> pw.Table:
    left = a.groupby(a.k).reduce(a.k, s=pw.reducers.sum(a.v))
    right = b.groupby(b.k).reduce(b.k, s=pw.reducers.sum(b.v))
    both = pw.Table.concat_reindex(left, right)
    return both.filter(both.s > 0).groupby(both.k).reduce(both.k, s=pw.reducers.sum(both.s))


def windows(t: pw.Table) -> pw.Table:
    # Window assignment runs where the rows are, the reduce by window is partitioned.
    return t.windowby(t.v, window=pw.temporal.tumbling(duration=4), instance=t.k % 3).reduce(
        start=pw.this._pw_window_start,
        instance=pw.this._pw_instance,
        n=pw.reducers.count(),
        s=pw.reducers.sum(pw.this.k),
    )


def udf_key_and_update_rows(a: pw.Table, b: pw.Table) -> pw.Table:
    # A key computed by a UDF (in a select: local) and update_rows (gathered on worker 0).
    @pw.udf
    def parity(k: int) -> int:
        return k % 2

    keyed = a.select(a.v, p=parity(a.k))
    # A UDF in a reducer's argument keeps this reduce on worker 0 (it would run twice).
    sums = keyed.groupby(keyed.p).reduce(keyed.p, s=pw.reducers.sum(parity(keyed.v)))
    other_keyed = b.select(b.v, p=b.k % 2)
    other = other_keyed.groupby(other_keyed.p).reduce(
        other_keyed.p, s=pw.reducers.sum(other_keyed.v)
    )
    return sums.with_id_from(sums.p).update_rows(other.with_id_from(other.p))


def id_updates(a: pw.Table, b: pw.Table) -> pw.Table:
    # update_rows and update_cells: partitioned by row id.
    tripled = a.filter(a.v % 3 == 0)
    return a.update_rows(b).update_cells(tripled.select(v=tripled.v * 100))


def id_filters(a: pw.Table, b: pw.Table) -> pw.Table:
    # intersect, difference and restrict: partitioned by row id.
    evens = a.filter(a.v % 2 == 0)
    common = a.intersect(b).difference(evens)
    return a.restrict(common).select(a.k, w=a.v * 2)


def lookups(a: pw.Table, b: pw.Table) -> pw.Table:
    # ix_ref: a left join of pointers with the looked-up table's ids.
    sums = b.groupby(b.k).reduce(b.k, s=pw.reducers.sum(b.v))
    found = sums.ix_ref(a.k, context=a, allow_misses=True)
    return a.select(a.k, a.v, s=found.s)


def deduplicate_by_instance(t: pw.Table) -> pw.Table:
    # Partitioned by the instance; the acceptor sees each instance's rows in order.
    return t.deduplicate(value=t.v, instance=t.k % 4, acceptor=lambda new, old: new > old)


def sort_by_instance(t: pw.Table) -> pw.Table:
    # Partitioned by the instance, and a sort without instance (worker 0) next to it.
    links = t.sort(key=t.v, instance=t.k)
    everything = t.sort(key=t.k)
    return links.select(links.prev, links.next, p=everything.prev)


def sessions(t: pw.Table) -> pw.Table:
    # Session windows per instance: partitioned by the instance.
    return t.windowby(t.v, window=pw.temporal.session(max_gap=3), instance=t.k % 3).reduce(
        start=pw.this._pw_window_start,
        end=pw.this._pw_window_end,
        instance=pw.this._pw_instance,
        n=pw.reducers.count(),
        s=pw.reducers.sum(pw.this.k),
    )


def sliding_windows(t: pw.Table) -> pw.Table:
    # Sliding windows (assigned where the rows are), one through panes, one row by window.
    by_panes = t.windowby(t.v, window=pw.temporal.sliding(hop=2, duration=6), instance=t.k % 2)
    counts = by_panes.reduce(start=pw.this._pw_window_start, n=pw.reducers.count())
    by_rows = t.windowby(t.v, window=pw.temporal.sliding(hop=3, duration=5))
    latest = by_rows.reduce(start=pw.this._pw_window_start, top=pw.reducers.max(pw.this.k))
    return counts.join(latest, counts.start == latest.start).select(
        counts.start, counts.n, latest.top
    )


def behaviors(t: pw.Table) -> pw.Table:
    # Delay and cutoff need the frontier of the whole table: the gates run on worker 0.
    return t.windowby(
        t.v,
        window=pw.temporal.tumbling(duration=5),
        instance=t.k % 2,
        behavior=pw.temporal.common_behavior(delay=2, cutoff=6),
    ).reduce(start=pw.this._pw_window_start, n=pw.reducers.count())


def temporal_joins(a: pw.Table, b: pw.Table) -> pw.Table:
    # Interval and asof joins: partitioned by their join key.
    pairs = a.interval_join_left(b, a.v, b.v, pw.temporal.interval(-3, 3), a.k == b.k).select(
        k=a.k, lv=a.v, rv=b.v
    )
    nearest = a.asof_join_left(b, a.v, b.v, a.k == b.k).select(k=a.k, lv=a.v, rv=b.v)
    counts = pairs.groupby(pairs.k, pairs.lv).reduce(pairs.k, pairs.lv, n=pw.reducers.count())
    return nearest.join_left(counts, nearest.k == counts.k, nearest.lv == counts.lv).select(
        nearest.k, nearest.lv, nearest.rv, counts.n
    )


PIPELINES: dict[str, Callable[..., pw.Table]] = {
    "windows": windows,
    "udf_key_and_update_rows": udf_key_and_update_rows,
    "groupby": groupby,
    "counts_and_sums": counts_and_sums,
    "join_groupby": join_groupby,
    "outer_join": outer_join,
    "reduce_then_join": reduce_then_join,
    "two_keys_and_sort": two_keys_and_sort,
    "global_reduce": global_reduce,
    "concat_and_filter": concat_and_filter,
    "id_updates": id_updates,
    "id_filters": id_filters,
    "lookups": lookups,
    "deduplicate_by_instance": deduplicate_by_instance,
    "sort_by_instance": sort_by_instance,
    "sessions": sessions,
    "sliding_windows": sliding_windows,
    "behaviors": behaviors,
    "temporal_joins": temporal_joins,
}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value  # exact (JSON keeps every bit): float sums must not depend on the order
    if isinstance(value, int | str | bool) or value is None:
        return value
    return repr(value)  # pointers


def main(pipelines: dict[str, Callable[..., pw.Table]] = PIPELINES) -> None:
    """Run the cases of ``sys.argv[1]``: a list of cases, or ``{"cases": [...],
    "terminate_on_error": bool}``; write what each output produced to ``sys.argv[2]``."""
    with open(sys.argv[1]) as spec:
        loaded = json.loads(spec.read())
    if isinstance(loaded, list):
        loaded = {"cases": loaded}
    cases = loaded["cases"]
    produced: list[list[list[Any]]] = []
    for case in cases:
        changes: list[list[Any]] = []
        produced.append(changes)
        table = pipelines[case["pipeline"]](*[_table(s) for s in case["streams"]])

        def on_change(
            key: Any, row: dict[str, Any], time: int, is_addition: bool, out: list = changes
        ) -> None:
            fields = sorted((name, _plain(value)) for name, value in row.items())
            out.append([time, repr(key), fields, 1 if is_addition else -1])

        pw.io.subscribe(table, on_change=on_change)
    pw.run(
        monitoring_level=pw.MonitoringLevel.NONE,
        terminate_on_error=loaded.get("terminate_on_error", True),
    )
    if os.environ.get("PATHWAY_PROCESS_ID", "0") == "0":
        with open(sys.argv[2], "w") as out:
            json.dump(produced, out)


if __name__ == "__main__":
    main()
