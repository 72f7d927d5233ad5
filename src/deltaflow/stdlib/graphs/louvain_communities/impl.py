"""Louvain community detection, computed with table operators.

The graph is directed and weighted (an undirected edge is two directed edges). With ``m``
the total edge weight, ``d(v)`` the weighted degree of ``v``, ``D(C)`` the summed degrees of
cluster ``C`` and ``w(v, C)`` the weight from ``v`` to other members of ``C`` (plus half of
``v``'s self-loops), moving ``v`` into ``C`` scores ``2 w(v, C) - d(v) (2 D(C) + d(v)) / m``
(for ``v``'s own cluster, ``D`` leaves ``v`` out). Each round every vertex proposes its
best-scoring cluster; proposals are applied in parallel on an independent set (a move is kept
only if its pseudo-random priority is the largest among the moves touching its source and
target clusters), so each applied move improves modularity exactly as scored. A level repeats
rounds until nothing moves (``pw.iterate``); the hierarchical variant contracts each level's
clusters into vertices and starts again.
"""

from __future__ import annotations

import hashlib
import math

from deltaflow import reducers
from deltaflow._pointer import Pointer
from deltaflow.expressions.base import ColumnReference
from deltaflow.expressions.functions import apply_with_type, if_else, make_tuple
from deltaflow.expressions.placeholders import this
from deltaflow.iterate import iterate
from deltaflow.stdlib.graphs.common import Clustering, Edge, Weight
from deltaflow.stdlib.graphs.graph import WeightedGraph, _cluster_vertices, _redirected_edges
from deltaflow.stdlib.utils.filtering import argmax_rows
from deltaflow.table import Table

__all__ = [
    "Clustering",
    "Edge",
    "Weight",
    "WeightedGraph",
    "exact_modularity",
    "louvain_communities_fixed_iterations",
]


def _per_vertex_sum(clustering: Table, edges: Table, key: ColumnReference, column: str) -> Table:
    """``clustering``'s universe with ``column`` = the summed edge weight grouped by ``key``
    (0.0 where no edge has that key)."""
    sums = edges.groupby(id=key).reduce(**{column: reducers.sum(edges.weight)})
    return clustering.select(**{column: 0.0}).update_rows(sums)


def _propose_clusters(edges: Table, clustering: Table) -> Table:
    """For each vertex of ``clustering`` (``c``, ``total_weight``), the adjacent cluster (or
    its own) with the best Louvain score; same universe, same columns."""
    degree = _per_vertex_sum(clustering, edges, edges.v, "degree")
    loops = edges.filter(edges.u == edges.v)
    loop_weight = _per_vertex_sum(clustering, loops, loops.v, "loop")

    with_cluster = edges.select(edges.weight, cluster=clustering.ix(edges.u).c)
    cluster_degree = (
        clustering.groupby(id=clustering.c)
        .reduce(total=0.0)
        .update_rows(
            with_cluster.groupby(id=with_cluster.cluster).reduce(
                total=reducers.sum(with_cluster.weight)
            )
        )
    )

    # A zero-weight link from every vertex to its own cluster makes "stay" a candidate.
    own = clustering.select(u=clustering.id, target=clustering.c, weight=0.0)
    proper = edges.filter(edges.u != edges.v)
    outgoing = proper.select(proper.u, target=clustering.ix(proper.v).c, weight=proper.weight)
    links = Table.concat_reindex(own, outgoing)
    link_weight = links.groupby(links.u, links.target).reduce(
        links.u, links.target, link=reducers.sum(links.weight)
    )

    vertex = clustering.ix(link_weight.u)
    d = degree.ix(link_weight.u).degree
    stays = link_weight.target == vertex.c
    penalty = cluster_degree.ix(link_weight.target).total - if_else(stays, d, 0.0)
    gain = (
        2.0 * (link_weight.link + loop_weight.ix(link_weight.u).loop / 2)
        - d * (2.0 * penalty + d) / vertex.total_weight
    )
    scored = link_weight.select(
        link_weight.u,
        link_weight.target,
        total_weight=vertex.total_weight,
        # On equal scores, staying wins: a move must strictly improve modularity.
        score=make_tuple(gain, if_else(stays, 1, 0)),
    )
    best = argmax_rows(scored, scored.u, what=scored.score)
    return (
        best.with_id(best.u)
        .select(c=this.target, total_weight=this.total_weight)
        .with_universe_of(clustering)
    )


def _priority(row: Pointer, round_number: int) -> int:
    """A pseudo-random, reproducible priority for a move (64-bit, from id and round)."""
    digest = hashlib.blake2b(f"{int(row)}/{round_number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _one_step(G: WeightedGraph, clustering: Table, iter: int) -> Table:  # noqa: A002, N803
    """One round: propose moves, apply an independent set of them (no cluster is the source
    or target of two applied moves). ``iter`` seeds the priorities."""
    proposed = _propose_clusters(G.WE, clustering)
    current = clustering.ix(proposed.id).c
    moves = proposed.filter(proposed.c != current)
    moves = moves.select(
        moves.c,
        moves.total_weight,
        source=clustering.ix(moves.id).c,
        priority=apply_with_type(_priority, int, moves.id, iter),
    )
    touching = Table.concat_reindex(
        moves.select(cluster=moves.source, priority=moves.priority),
        moves.select(cluster=moves.c, priority=moves.priority),
    )
    top = touching.groupby(id=touching.cluster).reduce(top=reducers.max(touching.priority))
    applied = moves.filter(
        (moves.priority == top.ix(moves.source).top) & (moves.priority == top.ix(moves.c).top)
    ).select(moves.c, moves.total_weight)
    return clustering.update_rows(applied).with_universe_of(clustering)


def _initial_clustering(G: WeightedGraph) -> Table:  # noqa: N803
    """Every vertex alone in a cluster with a fresh id; ``total_weight`` from ``apx_value``."""
    return G.V.select(c=G.V.pointer_from(G.V.id), total_weight=G.V.apx_value).update_types(
        c=Pointer
    )


def _louvain_level(G: WeightedGraph) -> Table:  # noqa: N803
    """A clustering of ``G`` (whose vertices carry ``apx_value``, the total edge weight) that
    no single move improves: rounds repeated to a fixed point."""

    def body(clustering: Table, V: Table, WE: Table) -> dict[str, Table]:  # noqa: N803
        graph = WeightedGraph.from_vertices_and_weighted_edges(V, WE)
        return {"clustering": _one_step(graph, clustering, 42)}

    result = iterate(body, V=G.V, WE=G.WE, clustering=_initial_clustering(G))
    return result.clustering.without("total_weight")


def _louvain_level_fixed_iterations(G: WeightedGraph, number_of_iterations: int) -> Table:  # noqa: N803
    """Like :func:`_louvain_level`, with exactly ``number_of_iterations`` rounds."""
    clustering = _initial_clustering(G)
    for round_number in range(number_of_iterations):
        clustering = _one_step(G, clustering, round_number)
    return clustering.without("total_weight")


def _power_below(x: float, base: float) -> float:
    return float(base ** math.floor(math.log(x, base)))


def _power_above(x: float, base: float) -> float:
    return float(base ** (math.floor(math.log(x, base)) + 1))


def _approximate_total_weight(edges: Table, epsilon: float) -> Table:
    """One row: the total edge weight ``value`` and the powers of ``1 + epsilon`` around it
    (``lower`` <= value < ``upper``)."""
    exact = edges.groupby().reduce(m=reducers.sum(edges.weight))
    base = 1 + epsilon
    return exact.select(
        lower=apply_with_type(_power_below, float, exact.m, base),
        value=exact.m,
        upper=apply_with_type(_power_above, float, exact.m, base),
    )


def _with_total_weight(vertices: Table, total_weight: Table) -> Table:
    """``vertices`` (same ids) with ``apx_value``, the total weight, on every row."""
    joined = vertices.join(total_weight, id=vertices.id)
    return joined.select(*vertices, apx_value=total_weight.value)


def _contracted(graph: WeightedGraph, clustering: Table, total_weight: Table) -> WeightedGraph:
    """The graph of the clusters of ``clustering`` (which covers every vertex): one edge per
    pair of clusters, weighing the sum of the edges it merges."""
    redirected = _redirected_edges(graph.WE, clustering)
    merged = redirected.groupby(redirected.u, redirected.v).reduce(
        redirected.u, redirected.v, weight=reducers.sum(graph.WE.weight)
    )
    vertices = _with_total_weight(_cluster_vertices(clustering), total_weight)
    return WeightedGraph.from_vertices_and_weighted_edges(vertices, merged)


class louvain_communities_fixed_iterations:  # noqa: N801 - Pathway's name
    """Hierarchical Louvain clustering with ``levels`` levels.

    ``clustering_levels`` has one row per (vertex, level) with the vertex ``v``, its cluster
    ``c`` at that level and ``level`` (0: the vertex itself); ``hierarchical_clustering``
    maps each vertex or cluster to its parent cluster ``c`` one ``level`` up.
    """

    hierarchical_clustering: Table
    clustering_levels: Table
    levels: int
    G: WeightedGraph

    def __init__(self, G: WeightedGraph, apx: float, levels: int) -> None:  # noqa: N803
        self.G = G
        self.levels = levels
        self._build(apx, levels)

    def _build(self, apx: float, levels: int) -> None:
        start = self.G.V.select(c=self.G.V.id, level=0)
        self.hierarchical_clustering = start
        self.clustering_levels = start.with_columns(v=start.id).with_id_from(start.id, start.level)
        total_weight = _approximate_total_weight(self.G.WE, apx)
        self.G.V = _with_total_weight(self.G.V, total_weight)

        graph = self.G
        for level in range(levels):
            clustering = _louvain_level(graph)
            parents = clustering.with_columns(level=level + 1)
            # Level 1 gives a parent to every vertex: it replaces the start table outright.
            self.hierarchical_clustering = (
                parents if level == 0 else self.hierarchical_clustering.update_rows(parents)
            )
            below = self.clustering_levels.filter(self.clustering_levels.level == level)
            lifted = below.select(
                below.v, c=clustering.ix(below.c).c, level=level + 1
            ).with_id_from(below.v, level + 1)
            self.clustering_levels = self.clustering_levels.update_rows(lifted)
            graph = _contracted(graph, clustering, total_weight)


def exact_modularity(G: WeightedGraph, C: Table, round_digits: int = 16) -> Table:  # noqa: N803
    """The modularity of clustering ``C`` (column ``c``) of ``G``, as one row ``modularity``
    rounded to ``round_digits`` decimals. Needs the exact total weight, so any edge change
    recomputes every cluster's term: meant for tests and evaluation."""
    edges = G.WE
    clusters = C.groupby(id=C.c).reduce()
    ends = edges.select(edges.weight, cu=C.ix(edges.u).c, cv=C.ix(edges.v).c)
    degree = clusters.select(degree=0.0).update_rows(
        ends.groupby(id=ends.cu).reduce(degree=reducers.sum(ends.weight))
    )
    inside = ends.filter(ends.cu == ends.cv)
    internal = clusters.select(internal=0.0).update_rows(
        inside.groupby(id=inside.cu).reduce(internal=reducers.sum(inside.weight))
    )
    total = edges.reduce(m=reducers.sum(edges.weight))
    per_cluster = clusters.join(total, id=clusters.id).select(
        internal=internal.ix(clusters.id).internal,
        degree=degree.ix(clusters.id).degree,
        m=total.m,
    )
    terms = per_cluster.select(
        modularity=(per_cluster.internal * per_cluster.m - per_cluster.degree**2)
        / (per_cluster.m * per_cluster.m)
    )
    return terms.reduce(modularity=reducers.sum(terms.modularity).num.round(round_digits))
