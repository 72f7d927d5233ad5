"""Property tests of pw.iterate: for random update streams (edges inserted, deleted and
updated over several times), the incremental output equals, at every time, the difference of
from-scratch recomputations (``check`` from test_stateful_properties)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import deltaflow as pw
from test_iterate import _ping_pong, closure, components, distances
from test_stateful_properties import SETTINGS, Event, check, update_streams

# Random graphs on vertices 0..3: edge (k, |v|), so that cycles, self-loops, parallel edges,
# splits and merges of components all occur.
graphs = update_streams(max_key=3, max_times=4, changes=st.integers(0, 5))


def _edges(t: pw.Table) -> pw.Table:
    return t.select(u=t.k, v=pw.if_else(t.v < 0, -t.v, t.v))


@SETTINGS
@given(graphs)
def test_connected_components_match_recomputation(events: list[Event]) -> None:
    check(lambda t: components(_edges(t)), events)


@SETTINGS
@given(graphs)
def test_transitive_closure_matches_recomputation(events: list[Event]) -> None:
    check(lambda t: closure(_edges(t)), events)


@SETTINGS
@given(graphs)
def test_shortest_paths_match_recomputation(events: list[Event]) -> None:
    def program(t: pw.Table) -> pw.Table:
        edges = _edges(t).with_columns(w=1 + (pw.this.u + pw.this.v) % 3)
        return distances(edges, 0)

    check(program, events)


@SETTINGS
@given(update_streams(max_key=5), st.sampled_from([None, 1, 3]))
def test_per_row_iteration_matches_recomputation(events: list[Event], limit: int | None) -> None:
    def program(t: pw.Table) -> pw.Table:
        start = t.select(n=t.k + pw.if_else(t.v < 0, -t.v, t.v) + 1, steps=0)

        def step(s: pw.Table) -> pw.Table:
            even = s.n % 2 == 0
            return s.select(
                n=pw.if_else(s.n == 1, 1, pw.if_else(even, s.n // 2, 3 * s.n + 1)),
                steps=pw.if_else(s.n == 1, s.steps, s.steps + 1),
            )

        return pw.iterate(step, iteration_limit=limit, s=start)

    check(program, events)


def iterate_read_only(t: pw.Table, c: pw.Table) -> pw.Table:
    """Labels spread along edges up to a bound that a second, read-only table sets."""
    edges = _edges(t)
    bound = c.reduce(b=pw.reducers.max(c.k))
    start = edges.groupby(pw.this.u).reduce(vertex=pw.this.u, label=pw.this.u)

    def step(labels: pw.Table, edges: pw.Table, bound: pw.Table) -> dict[str, pw.Table]:
        offered = edges.join(labels, edges.u == labels.vertex).select(
            vertex=pw.left.v, label=pw.right.label
        )
        allowed = (
            offered.join(bound)
            .filter(pw.this.vertex <= pw.this.b)
            .select(pw.this.vertex, pw.this.label)
        )
        merged = (
            labels.concat_reindex(allowed)
            .groupby(pw.this.vertex)
            .reduce(pw.this.vertex, label=pw.reducers.max(pw.this.label))
        )
        return {"labels": merged}

    return pw.iterate(step, labels=pw.iterate_universe(start), edges=edges, bound=bound).labels


@SETTINGS
@given(graphs, update_streams(label_base=1000, max_key=3))
def test_read_only_table_changes_match_recomputation(
    events: list[Event], caps: list[Event]
) -> None:
    """Labels spread along edges only up to a bound that a second, read-only stream sets."""
    check(iterate_read_only, events, caps)


@SETTINGS
@given(update_streams(max_key=4))
def test_nested_iteration_matches_recomputation(events: list[Event]) -> None:
    def program(t: pw.Table) -> pw.Table:
        start = t.select(a=t.k + pw.if_else(t.v < 0, -t.v, t.v))

        def outer(s: pw.Table) -> pw.Table:
            inner = pw.iterate(lambda u: u.select(a=pw.if_else(u.a % 3 == 0, u.a, u.a + 1)), u=s)
            return inner.select(a=pw.if_else(inner.a < 12, inner.a + 1, inner.a))

        return pw.iterate(outer, s=start)

    check(program, events)


@SETTINGS
@given(update_streams(max_key=3), update_streams(label_base=1000, max_key=3))
def test_two_iterated_tables_match_recomputation(a: list[Event], b: list[Event]) -> None:
    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        def per_key(t: pw.Table) -> pw.Table:
            return t.groupby(t.k).reduce(t.k, v=pw.reducers.max(t.v))

        new_a, new_b = _ping_pong(per_key(a), per_key(b))
        return new_a.select(new_a.k, new_a.v, side=0).concat_reindex(
            new_b.select(new_b.k, new_b.v, side=1)
        )

    check(program, a, b)
