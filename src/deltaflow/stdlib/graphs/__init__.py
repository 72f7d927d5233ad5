"""``pw.stdlib.graphs``: graph algorithms over a table of vertices and a table of edges.

- :func:`pagerank.pagerank`: integer PageRank for a fixed number of steps;
- :func:`bellman_ford.bellman_ford`: shortest distances from source vertices (``pw.iterate``);
- :mod:`louvain_communities.impl`: Louvain community detection and ``exact_modularity``;
- :class:`Graph`, :class:`WeightedGraph`: containers with contraction by a clustering.
"""

from deltaflow.stdlib.graphs import bellman_ford, louvain_communities, pagerank
from deltaflow.stdlib.graphs.common import Edge, Vertex
from deltaflow.stdlib.graphs.graph import Graph, WeightedGraph

__all__ = [
    "Edge",
    "Graph",
    "Vertex",
    "WeightedGraph",
    "bellman_ford",
    "louvain_communities",
    "pagerank",
]
