"""PageRank in integer arithmetic, unrolled for a fixed number of steps.

Ranks are integers scaled by 1000: every vertex starts at 6000; at each step a vertex of
out-degree ``d`` sends ``rank * 5 // (6 * d)`` along each of its edges (a damping factor of
5/6, rounded down) and a vertex's new rank is 1000 plus what it receives. A vertex with no
incoming edge keeps 1000. Integer division makes the result exact and reproducible.
"""

from __future__ import annotations

from deltaflow import reducers
from deltaflow.expressions.functions import if_else
from deltaflow.schema import Schema
from deltaflow.table import Table

__all__ = ["Result", "pagerank"]

_SCALE = 1_000
_START = 6 * _SCALE


class Result(Schema):
    """The rank of a vertex (the row id), scaled by 1000."""

    rank: int


def pagerank(edges: Table, steps: int = 5) -> Table:
    """The PageRank of every vertex that has an edge, after ``steps`` steps.

    ``edges`` has pointer columns ``u`` (source) and ``v`` (target); the result has one row
    per vertex appearing in ``edges``, keyed by the vertex id, with an integer ``rank``.
    """
    targets = edges.groupby(id=edges.v).reduce(degree=0)
    sources = edges.groupby(id=edges.u).reduce(degree=reducers.count())
    out_degree = targets.update_rows(sources)
    unreached = sources.difference(targets).select(rank=_SCALE)

    ranks = out_degree.select(rank=_START)
    for _ in range(steps):
        sent = out_degree.select(
            share=if_else(
                out_degree.degree == 0,
                0,
                (ranks.rank * 5) // (out_degree.degree * 6),
            )
        )
        received = edges.groupby(id=edges.v).reduce(
            rank=reducers.sum(sent.ix(edges.u).share) + _SCALE
        )
        ranks = Table.concat(unreached, received).with_universe_of(out_degree)
    return ranks
