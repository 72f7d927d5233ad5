"""pw.stdlib.graphs: PageRank, Bellman-Ford, graph contraction and Louvain clustering.

PageRank figures were checked against Pathway 0.33 on the same graphs; incremental runs are
compared with from-scratch runs at every time (``check`` from test_stateful_properties).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow import Table
from deltaflow.stdlib.graphs import Graph, WeightedGraph
from deltaflow.stdlib.graphs.bellman_ford import bellman_ford
from deltaflow.stdlib.graphs.louvain_communities.impl import (
    _approximate_total_weight,
    _louvain_level,
    exact_modularity,
    louvain_communities_fixed_iterations,
)
from deltaflow.stdlib.graphs.pagerank import pagerank
from test_stateful_properties import SETTINGS, Event, check, update_streams

FEW = settings(SETTINGS, max_examples=10)


def _edge_table(edges: list[tuple[Any, ...]], **extra: list[Any]) -> pw.Table:
    frame = pd.DataFrame({"a": [e[0] for e in edges], "b": [e[1] for e in edges], **extra})
    return pw.debug.table_from_pandas(frame)


def _pointed(t: pw.Table) -> pw.Table:
    """Edges whose endpoints are pointers computed from the vertex numbers."""
    return t.with_columns(u=t.pointer_from(t.a), v=t.pointer_from(t.b)).without(
        pw.this.a, pw.this.b
    )


def _by_vertex(result: pw.Table, numbers: list[int], value: str) -> dict[int, Any]:
    """``result`` (keyed by vertex pointers) as {vertex number: value}."""
    frame = pd.DataFrame({"n": numbers})
    names = pw.debug.table_from_pandas(frame)
    names = names.select(names.n, p=result.pointer_from(names.n))
    joined = names.join(result, names.p == result.id).select(names.n, x=result[value])
    keys, columns = pw.debug.table_to_dicts(joined)
    return {columns["n"][k]: columns["x"][k] for k in keys}


def _reference_pagerank(edges: list[tuple[int, int]], steps: int) -> dict[int, int]:
    """The integer recurrence written out in plain Python."""
    out: dict[int, int] = {}
    targets = {v for _, v in edges}
    for u, v in edges:
        out[u] = out.get(u, 0) + 1
        out.setdefault(v, 0)
    rank = dict.fromkeys(out, 6000)
    for _ in range(steps):
        new = {x: 1000 for x in out}
        for u, v in edges:
            new[v] += rank[u] * 5 // (out[u] * 6)
        rank = {x: (new[x] if x in targets else 1000) for x in out}
    return rank


# ---------------------------------------------------------------- pagerank


def test_pagerank_matches_pathway_figures() -> None:
    edges = [(1, 2), (2, 3), (3, 1), (3, 4), (4, 4), (5, 1), (5, 2), (2, 1)]
    ranks = _by_vertex(pagerank(_pointed(_edge_table(edges)), steps=7), [1, 2, 3, 4, 5], "rank")
    # Pathway 0.33 gives these numbers for this graph and 7 steps.
    assert ranks == {1: 5627, 2: 6236, 3: 3663, 4: 13458, 5: 1000}
    assert ranks == _reference_pagerank(edges, 7)


def test_pagerank_default_steps_and_sink_vertices() -> None:
    edges = [(10, 11), (10, 12), (11, 12)]
    table = pagerank(_pointed(_edge_table(edges)))
    assert table.schema.typehints() == {"rank": int}
    assert _by_vertex(table, [10, 11, 12], "rank") == _reference_pagerank(edges, 5)


def test_pagerank_of_no_edges_is_empty() -> None:
    result = pagerank(pw.Table.empty(u=pw.Pointer, v=pw.Pointer), steps=3)
    assert pw.debug.table_to_dicts(result)[0] == []


@FEW
@given(update_streams(max_key=3, max_times=3, changes=st.integers(0, 4)))
def test_pagerank_incremental_matches_recomputation(events: list[Event]) -> None:
    def program(t: pw.Table) -> pw.Table:
        edges = t.select(u=t.pointer_from(t.k), v=t.pointer_from(pw.if_else(t.v < 0, -t.v, t.v)))
        ranks = pagerank(edges, steps=4)
        sources = t.select(p=t.pointer_from(t.k), n=t.k)
        names = sources.groupby(id=sources.p).reduce(n=pw.reducers.min(sources.n))
        return ranks.join_left(names, ranks.id == names.id).select(ranks.rank, names.n)

    check(program, events)


# ---------------------------------------------------------------- bellman-ford


def _bf_input(edges: list[tuple[int, int, float]], sources: set[int], n: int) -> Any:
    vertices = pw.debug.table_from_pandas(
        pd.DataFrame({"n": list(range(n)), "is_source": [i in sources for i in range(n)]})
    )
    vertices = vertices.with_id_from(vertices.n)
    table = _edge_table(edges, dist=[float(e[2]) for e in edges])
    return vertices, table.select(
        u=vertices.pointer_from(table.a), v=vertices.pointer_from(table.b), dist=table.dist
    )


def test_bellman_ford_with_negative_edge_and_unreachable_vertex() -> None:
    edges = [(0, 1, 4.0), (0, 2, 1.0), (2, 1, 2.0), (1, 3, -2.5), (3, 2, 7.0), (4, 0, 1.0)]
    vertices, table = _bf_input(edges, {0}, 5)
    result = bellman_ford(vertices, table)
    assert result.column_names() == ["dist_from_source"]
    distances = _by_vertex(result, list(range(5)), "dist_from_source")
    assert distances == {0: 0.0, 1: 3.0, 2: 1.0, 3: 0.5, 4: math.inf}


def test_bellman_ford_several_sources() -> None:
    edges = [(0, 1, 5.0), (2, 1, 1.0), (1, 3, 1.0)]
    vertices, table = _bf_input(edges, {0, 2}, 4)
    distances = _by_vertex(bellman_ford(vertices, table), list(range(4)), "dist_from_source")
    assert distances == {0: 0.0, 1: 1.0, 2: 0.0, 3: 2.0}


@FEW
@given(update_streams(max_key=3, max_times=3, changes=st.integers(0, 4)))
def test_bellman_ford_incremental_matches_recomputation(events: list[Event]) -> None:
    def program(t: pw.Table) -> pw.Table:
        target = pw.if_else(t.v < 0, -t.v, t.v)
        ends = Table.concat_reindex(t.select(n=t.k), t.select(n=target))
        vertices = (
            ends.groupby(ends.n)
            .reduce(ends.n)
            .with_id_from(pw.this.n)
            .select(pw.this.n, is_source=pw.this.n == 0)
        )
        edges = t.select(
            u=vertices.pointer_from(t.k),
            v=vertices.pointer_from(target),
            dist=pw.cast(float, 1 + (t.k + target) % 3),
        )
        result = bellman_ford(vertices.select(vertices.is_source), edges)
        return result.select(result.dist_from_source, n=vertices.ix(result.id).n)

    check(program, events)


# ---------------------------------------------------------------- graph contraction


def _small_graph() -> tuple[pw.Table, pw.Table, pw.Table]:
    vertices = (
        pw.debug.table_from_pandas(pd.DataFrame({"n": [1, 2, 3, 4]}))
        .with_id_from(pw.this.n)
        .select()
    )
    table = _edge_table([(1, 2), (2, 3), (3, 3), (2, 1), (4, 1)], w=[1.5, 2.0, 1.0, 0.5, 3.0])
    edges = table.select(
        u=vertices.pointer_from(table.a), v=vertices.pointer_from(table.b), weight=table.w
    )
    # 1 and 2 form one cluster; 3 and 4 are left to the singleton default.
    one = vertices.pointer_from(1)
    clustering = pw.debug.table_from_pandas(pd.DataFrame({"n": [1, 2]})).with_id_from(pw.this.n)
    clustering = clustering.select(c=one)
    return vertices, edges, clustering


def _pairs(table: pw.Table, vertices: pw.Table, *extra: str) -> list[tuple[Any, ...]]:
    """Edges as sorted (number of u, number of v, extras...)."""
    numbering = pw.debug.table_from_pandas(pd.DataFrame({"n": [1, 2, 3, 4]}))
    numbering = numbering.select(numbering.n, p=vertices.pointer_from(numbering.n))
    keys, columns = pw.debug.table_to_dicts(table)
    _, names = pw.debug.table_to_dicts(numbering)
    number = {names["p"][k]: names["n"][k] for k in names["p"]}
    return sorted(
        (number[columns["u"][k]], number[columns["v"][k]], *(columns[e][k] for e in extra))
        for k in keys
    )


def test_contractions_of_a_graph() -> None:
    vertices, edges, clustering = _small_graph()
    graph = Graph(vertices, edges.select(edges.u, edges.v))
    multi = graph.contracted_to_multi_graph(clustering)
    assert _pairs(multi.E, vertices) == [(1, 1), (1, 1), (1, 3), (3, 3), (4, 1)]
    assert len(pw.debug.table_to_dicts(multi.V)[0]) == 3
    simple = graph.contracted_to_unweighted_simple_graph(clustering)
    assert _pairs(simple.E, vertices) == [(1, 1), (1, 3), (3, 3), (4, 1)]
    assert _pairs(graph.without_self_loops().E, vertices) == [(1, 2), (2, 1), (2, 3), (4, 1)]


def test_weighted_contraction_reduces_original_columns() -> None:
    vertices, edges, clustering = _small_graph()
    graph = WeightedGraph.from_vertices_and_weighted_edges(vertices, edges)
    merged = graph.contracted_to_weighted_simple_graph(
        clustering, weight=pw.reducers.sum(edges.weight), count=pw.reducers.count()
    )
    assert _pairs(merged.WE, vertices, "weight", "count") == [
        (1, 1, 2.0, 2),
        (1, 3, 2.0, 1),
        (3, 3, 1.0, 1),
        (4, 1, 3.0, 1),
    ]


# ---------------------------------------------------------------- louvain


def _two_triangles() -> WeightedGraph:
    """Two triangles (weight 4 inside) linked by one light edge, both directions listed."""
    undirected = [(1, 2), (2, 3), (1, 3), (4, 5), (5, 6), (4, 6)]
    weights = [4.0] * 6 + [0.25]
    undirected.append((3, 4))
    both = undirected + [(b, a) for a, b in undirected]
    vertices = (
        pw.debug.table_from_pandas(pd.DataFrame({"n": [1, 2, 3, 4, 5, 6]}))
        .with_id_from(pw.this.n)
        .select(pw.this.n)
    )
    table = _edge_table(both, w=weights + weights)
    edges = table.select(
        u=vertices.pointer_from(table.a), v=vertices.pointer_from(table.b), weight=table.w
    )
    return WeightedGraph.from_vertices_and_weighted_edges(vertices, edges)


def _modularity(value: pw.Table) -> float:
    [[m]] = [list(r) for r in pw.debug.table_to_pandas(value).itertuples(index=False)]
    return float(m)


def _expected_split_modularity() -> float:
    m = 2 * (6 * 4.0 + 0.25)
    degree = 2 * (3 * 4.0) + 0.25  # twice the intra weight, plus the bridge once
    return 2 * ((2 * 12.0) * m - degree**2) / m**2


def test_exact_modularity_of_a_given_clustering() -> None:
    graph = _two_triangles()
    v = graph.V
    clustering = v.select(c=v.pointer_from(pw.if_else(v.n <= 3, 0, 1)))
    result = exact_modularity(graph, clustering, round_digits=12)
    assert _modularity(result) == round(_expected_split_modularity(), 12)
    singletons = v.select(c=v.id)
    assert _modularity(exact_modularity(graph, singletons)) < 0


def test_louvain_level_finds_the_two_triangles() -> None:
    graph = _two_triangles()
    total = _approximate_total_weight(graph.WE, 0.01)
    vertices = graph.V.join(total, id=graph.V.id).select(*pw.left, apx_value=pw.right.value)
    level = _louvain_level(WeightedGraph.from_vertices_and_weighted_edges(vertices, graph.WE))
    keys, columns = pw.debug.table_to_dicts(level.select(level.c, n=graph.V.ix(level.id).n))
    groups: dict[Any, set[int]] = {}
    for k in keys:
        groups.setdefault(columns["c"][k], set()).add(columns["n"][k])
    assert sorted(map(sorted, groups.values())) == [[1, 2, 3], [4, 5, 6]]
    modularity = _modularity(exact_modularity(graph, level, round_digits=12))
    assert modularity == round(_expected_split_modularity(), 12)


def test_approximate_total_weight_brackets_the_sum() -> None:
    graph = _two_triangles()
    keys, columns = pw.debug.table_to_dicts(_approximate_total_weight(graph.WE, 0.1))
    [k] = keys
    assert columns["value"][k] == 48.5
    assert columns["lower"][k] <= 48.5 < columns["upper"][k]
    assert math.isclose(columns["upper"][k] / columns["lower"][k], 1.1)


def test_louvain_hierarchy_levels() -> None:
    graph = _two_triangles()
    result = louvain_communities_fixed_iterations(graph, 0.01, 2)
    levels = result.clustering_levels
    assert set(levels.column_names()) == {"c", "level", "v"}
    keys, columns = pw.debug.table_to_dicts(levels)
    assert sorted({columns["level"][k] for k in keys}) == [0, 1, 2]
    per_level: dict[int, dict[Any, Any]] = {}
    for k in keys:
        per_level.setdefault(columns["level"][k], {})[columns["v"][k]] = columns["c"][k]
    assert all(v == c for v, c in per_level[0].items())
    assert len(set(per_level[1].values())) == 2
    # Level 2 merges nothing more: the two triangles stay apart.
    assert len(set(per_level[2].values())) == 2
