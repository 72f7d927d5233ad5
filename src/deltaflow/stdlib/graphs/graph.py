"""Graph containers of ``pw.stdlib.graphs``: :class:`Graph` and :class:`WeightedGraph`.

Both are plain pairs of tables (vertices, edges). Contraction merges the vertices of each
cluster of a clustering into one vertex whose id is the cluster's id; vertices the clustering
leaves out stay on their own (their cluster id is their own id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deltaflow.stdlib.graphs.common import Clustering, Edge, Vertex, Weight
from deltaflow.table import Table

__all__ = ["Clustering", "Edge", "Graph", "Vertex", "Weight", "WeightedGraph"]


def _extended_to_full_clustering(vertices: Table, clustering: Table) -> Table:
    """Complete a partial clustering: vertices without a cluster become singleton clusters
    whose id is the vertex id."""
    return vertices.select(c=vertices.id).update_rows(clustering)


def _cluster_vertices(full_clustering: Table) -> Table:
    """One id-only row per cluster of ``full_clustering``, keyed by the cluster id."""
    return full_clustering.groupby(id=full_clustering.c).reduce()


def _redirected_edges(edges: Table, full_clustering: Table) -> Table:
    """``edges`` (same ids) with both endpoints replaced by their clusters."""
    return edges.select(
        u=full_clustering.ix(edges.u).c,
        v=full_clustering.ix(edges.v).c,
    )


@dataclass
class Graph:
    """An unweighted (multi)graph: vertices ``V`` and edges ``E`` (columns ``u``, ``v``)."""

    V: Table
    E: Table

    def contracted_to_multi_graph(self, clustering: Table) -> Graph:
        """Merge each cluster into one vertex; every edge is kept (same id), redirected to
        the clusters of its endpoints."""
        full = _extended_to_full_clustering(self.V, clustering)
        return Graph(_cluster_vertices(full), _redirected_edges(self.E, full))

    def contracted_to_unweighted_simple_graph(
        self, clustering: Table, **reducer_expressions: Any
    ) -> Graph:
        """Like :meth:`contracted_to_multi_graph`, keeping one edge per pair of clusters."""
        contracted = self.contracted_to_multi_graph(clustering)
        edges = contracted.E
        contracted.E = edges.groupby(edges.u, edges.v).reduce(edges.u, edges.v)
        return contracted

    def contracted_to_weighted_simple_graph(
        self, clustering: Table, **reducer_expressions: Any
    ) -> WeightedGraph:
        """One edge per pair of clusters, with the columns computed by
        ``reducer_expressions`` over the original edges merged into it."""
        contracted = self.contracted_to_multi_graph(clustering)
        edges = contracted.E
        merged = edges.groupby(edges.u, edges.v).reduce(edges.u, edges.v, **reducer_expressions)
        return WeightedGraph.from_vertices_and_weighted_edges(contracted.V, merged)

    def without_self_loops(self) -> Graph:
        """The same graph without the edges whose two endpoints are the same vertex."""
        return Graph(self.V, self.E.filter(self.E.u != self.E.v))


@dataclass
class WeightedGraph(Graph):
    """A weighted (multi)graph; ``WE`` holds the edges with their ``weight``."""

    WE: Table

    @staticmethod
    def from_vertices_and_weighted_edges(V: Table, WE: Table) -> WeightedGraph:  # noqa: N803
        """The graph of vertices ``V`` and weighted edges ``WE`` (also its ``E``)."""
        return WeightedGraph(V, WE, WE)

    def contracted_to_multi_graph(self, clustering: Table) -> WeightedGraph:
        """Merge each cluster into one vertex; edges keep their ids and point at clusters
        (their other columns are dropped: reduce them from the original ``WE``)."""
        full = _extended_to_full_clustering(self.V, clustering)
        return WeightedGraph.from_vertices_and_weighted_edges(
            _cluster_vertices(full), _redirected_edges(self.WE, full)
        )

    def contracted_to_weighted_simple_graph(
        self, clustering: Table, **reducer_expressions: Any
    ) -> WeightedGraph:
        """One edge per pair of clusters, with the columns computed by
        ``reducer_expressions`` (over columns of the original ``WE``)."""
        contracted = self.contracted_to_multi_graph(clustering)
        edges = contracted.WE
        contracted.WE = edges.groupby(edges.u, edges.v).reduce(
            edges.u, edges.v, **reducer_expressions
        )
        return contracted

    def without_self_loops(self) -> WeightedGraph:
        """The same graph without its self-loops."""
        edges = self.WE.filter(self.WE.u != self.WE.v)
        return WeightedGraph.from_vertices_and_weighted_edges(self.V, edges)
