"""Schemas shared by the graph algorithms of ``pw.stdlib.graphs``.

A graph is a table of vertices (any columns; the row id is the vertex) and a table of edges
whose ``u`` and ``v`` columns point at vertex rows. Weighted edges add a ``weight``; a
clustering maps each vertex (row id) to the id of its cluster in ``c``.
"""

from __future__ import annotations

from deltaflow._pointer import Pointer
from deltaflow.schema import Schema

__all__ = ["Cluster", "Clustering", "Edge", "Vertex", "Weight"]


class Vertex(Schema):
    """A vertex: a row id, with no required columns."""


class Edge(Schema):
    """A directed edge from the vertex ``u`` to the vertex ``v``."""

    u: Pointer
    v: Pointer


class Weight(Schema):
    """A ``weight`` column, combined with :class:`Edge` (or :class:`Vertex`) by ``|``."""

    weight: float


class Cluster(Vertex):
    """A cluster of vertices, itself usable as a vertex of a contracted graph."""


class Clustering(Schema):
    """Membership: the vertex whose id is the row id belongs to the cluster ``c``."""

    c: Pointer
