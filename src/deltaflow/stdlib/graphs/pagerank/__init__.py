"""``pw.stdlib.graphs.pagerank``: integer PageRank over a table of edges."""

from deltaflow.stdlib.graphs.pagerank.impl import Result, pagerank

__all__ = ["Result", "pagerank"]
