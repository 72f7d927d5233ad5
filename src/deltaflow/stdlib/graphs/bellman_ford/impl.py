"""Single- or multi-source shortest paths by Bellman-Ford relaxation under ``pw.iterate``.

Each round sets a vertex's distance to the smallest of its start distance and
``distance(u) + dist`` over its incoming edges; the fixed point holds the shortest distances
(``inf`` for vertices no source reaches). Because it runs under ``pw.iterate``, a change to the vertices or edges updates
only the distances it affects. Negative edges are allowed; negative cycles never converge.
"""

from __future__ import annotations

import math

from deltaflow import reducers
from deltaflow.expressions.functions import if_else
from deltaflow.iterate import iterate
from deltaflow.schema import Schema
from deltaflow.table import Table

__all__ = ["Dist", "DistFromSource", "Vertex", "bellman_ford"]


class Vertex(Schema):
    """A vertex of the shortest-path problem; sources have ``is_source`` set."""

    is_source: bool


class Dist(Schema):
    """The length of an edge."""

    dist: float


class DistFromSource(Schema):
    """The distance from the nearest source."""

    dist_from_source: float


def _relax(vertices_dist: Table, edges: Table, start: Table) -> Table:
    """One relaxation round: a vertex keeps its start distance or gets closer through the
    source of one of its incoming edges."""
    through_edge = edges.select(
        edges.v,
        candidate=vertices_dist.ix(edges.u).dist_from_source + edges.dist,
    )
    candidates = Table.concat_reindex(
        start.select(v=start.id, candidate=start.dist_from_source),
        through_edge,
    )
    best = candidates.groupby(id=candidates.v).reduce(
        dist_from_source=reducers.min(candidates.candidate)
    )
    return best.with_universe_of(vertices_dist)


def bellman_ford(vertices: Table, edges: Table) -> Table:
    """Distances from the sources (``vertices.is_source``) along ``edges`` (``u``, ``v``,
    ``dist``): a table keyed like ``vertices`` with a float ``dist_from_source``.

    Each round takes, for every vertex, the smallest of its start distance (0 for sources,
    ``inf`` otherwise) and ``distance(u) + dist`` over its incoming edges, so sources stay at
    0 and positive cycles settle (Pathway 0.33 leaves the start distance out of the minimum:
    there a cycle through a reached vertex never converges).
    """
    start = vertices.select(dist_from_source=if_else(vertices.is_source, 0.0, math.inf))
    return iterate(
        lambda vertices_dist, edges, start: _relax(vertices_dist, edges, start),
        vertices_dist=start,
        edges=edges,
        start=start,
    )
