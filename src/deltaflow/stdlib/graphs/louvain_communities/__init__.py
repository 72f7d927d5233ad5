"""``pw.stdlib.graphs.louvain_communities``: Louvain community detection (see ``impl``)."""
