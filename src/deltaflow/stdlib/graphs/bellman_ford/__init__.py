"""``pw.stdlib.graphs.bellman_ford``: shortest distances from source vertices."""

from deltaflow.stdlib.graphs.bellman_ford.impl import DistFromSource, Vertex, bellman_ford

__all__ = ["DistFromSource", "Vertex", "bellman_ford"]
