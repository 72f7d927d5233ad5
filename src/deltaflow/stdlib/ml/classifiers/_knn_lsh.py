"""Approximate k nearest neighbours and k-NN classification through LSH.

Training computes the bucket of every data point in each of the ``L`` bands. A query's
candidates are the data points sharing at least one band's bucket with it; among them the
``k`` closest (by the chosen distance, ties by id) are its neighbours. Everything is a join
or a groupby on the bucket numbers, so data points and queries may arrive, change or go away
as streams and only the queries whose candidates changed are recomputed.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from statistics import mode
from typing import Any, Literal

import numpy as np

from deltaflow import reducers
from deltaflow._pointer import Pointer
from deltaflow.expressions.functions import apply_with_type, coalesce
from deltaflow.stdlib.ml.classifiers._lsh import (
    generate_cosine_lsh_bucketer,
    generate_euclidean_lsh_bucketer,
)
from deltaflow.table import Table

__all__ = [
    "DistanceTypes",
    "knn_lsh_classifier_train",
    "knn_lsh_classify",
    "knn_lsh_euclidean_classifier_train",
    "knn_lsh_generic_classifier_train",
]

logger = logging.getLogger(__name__)

DistanceTypes = Literal["euclidean", "cosine"]

Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _euclidean_distance(points: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances from each row of ``points`` to ``query``."""
    return np.sum((points - query) ** 2, axis=1).astype(float)


def _cosine_distance(points: np.ndarray, query: np.ndarray) -> np.ndarray:
    """One minus the cosine similarity of each row of ``points`` with ``query``."""
    norms = np.linalg.norm(points, axis=1) * np.linalg.norm(query)
    return 1 - (points @ query) / norms


def _banded(table: Table, bucketer: Callable[[Any], np.ndarray]) -> Table:
    """One row per (row of ``table``, band): ``origin`` (the row id) and ``bucket``, a
    (band index, bucket number) pair."""
    buckets = table.select(
        bucket=apply_with_type(
            lambda v: [(i, int(b)) for i, b in enumerate(bucketer(v))], list, table.data
        )
    )
    return buckets.flatten(buckets.bucket, origin_id="origin")


def _jmespath() -> Any:
    """The ``jmespath`` module (needed only for metadata filters)."""
    try:
        return importlib.import_module("jmespath")
    except ImportError as error:
        raise ImportError(
            "k-NN metadata filters are JMESPath expressions and need the jmespath package: "
            "pip install jmespath"
        ) from error


def _metadata_accepts(metadata: Any, metadata_filter: str | None) -> bool:
    """Whether a data point's metadata (Json) passes a JMESPath filter (None: no filter)."""
    if metadata_filter is None:
        return True
    jmespath = _jmespath()
    value = getattr(metadata, "value", metadata)
    try:
        return jmespath.search(metadata_filter, value) is True
    except jmespath.exceptions.JMESPathError:
        logger.exception("invalid JMESPath metadata filter %r", metadata_filter)
        return False


def knn_lsh_generic_classifier_train(
    data: Table,
    lsh_projection: Callable[[Any], np.ndarray],
    distance_function: Distance,
    L: int,  # noqa: N803 - Pathway's name
) -> Callable[..., Table]:
    """Index ``data`` (a ``data`` column of vectors, optionally ``metadata``) with the
    bucketer ``lsh_projection``; returns ``query(queries, k=None, with_distances=False)``.

    The query result is keyed by the query ids, with ``query_id`` and ``knns_ids`` (the
    neighbours' ids, closest first) or ``knns_ids_with_dists`` (pairs of id and distance).
    ``k`` is the number of neighbours, or None to read it from the queries' ``k`` column;
    a ``metadata_filter`` column of the queries (JMESPath) restricts the candidates.
    """
    has_metadata = "metadata" in data.column_names()
    data_bands = _banded(data, lsh_projection)

    def query(queries: Table, k: int | None = None, with_distances: bool = False) -> Table:
        count = queries.k if k is None else k
        has_filter = "metadata_filter" in queries.column_names()
        query_bands = _banded(queries, lsh_projection)
        pairs = query_bands.join(data_bands, query_bands.bucket == data_bands.bucket).select(
            q=query_bands.origin, p=data_bands.origin
        )
        pairs = pairs.groupby(pairs.q, pairs.p).reduce(pairs.q, pairs.p)
        if has_metadata or has_filter:
            accepted = apply_with_type(
                _metadata_accepts,
                bool,
                data.ix(pairs.p).metadata if has_metadata else None,
                queries.ix(pairs.q).metadata_filter if has_filter else None,
            )
            pairs = pairs.filter(accepted)
        scored = pairs.select(
            pairs.q,
            candidate=apply_with_type(
                lambda p, x, y: (float(distance_function(np.asarray([x]), np.asarray(y))[0]), p),
                tuple,
                pairs.p,
                data.ix(pairs.p).data,
                queries.ix(pairs.q).data,
            ),
        )
        nearest = scored.groupby(id=scored.q).reduce(found=reducers.sorted_tuple(scored.candidate))
        everyone = queries.select(query_id=queries.id, k=count)
        found = everyone.join_left(nearest, everyone.id == nearest.id, id=everyone.id).select(
            everyone.query_id, everyone.k, found=coalesce(nearest.found, ())
        )
        best = found.select(
            found.query_id,
            knns_ids_with_dists=apply_with_type(
                lambda pairs, k: tuple((p, d) for d, p in pairs[:k]), tuple, found.found, found.k
            ),
        )
        if with_distances:
            return best
        return best.select(
            best.query_id,
            knns_ids=apply_with_type(
                lambda pairs: tuple(p for p, _ in pairs), tuple, best.knns_ids_with_dists
            ),
        )

    return query


def knn_lsh_euclidean_classifier_train(
    data: Table,
    d: int,
    M: int,  # noqa: N803 - Pathway's names
    L: int,  # noqa: N803
    A: float,  # noqa: N803
) -> Callable[..., Table]:
    """:func:`knn_lsh_generic_classifier_train` with the Euclidean bucketer (``d``
    dimensions, ``L`` bands of ``M`` projections, intervals of length ``A``)."""
    bucketer = generate_euclidean_lsh_bucketer(d, M, L, A)
    return knn_lsh_generic_classifier_train(data, bucketer, _euclidean_distance, L)


def knn_lsh_classifier_train(
    data: Table,
    L: int,  # noqa: N803 - Pathway's name
    type: DistanceTypes = "euclidean",  # noqa: A002 - Pathway's name
    **kwargs: Any,
) -> Callable[..., Table]:
    """Index ``data`` for approximate k-NN: ``type="euclidean"`` takes ``d``, ``M``, ``A``;
    ``type="cosine"`` takes ``d`` and ``M`` (see :mod:`._lsh`)."""
    if type == "euclidean":
        return knn_lsh_euclidean_classifier_train(data, kwargs["d"], kwargs["M"], L, kwargs["A"])
    if type == "cosine":
        bucketer = generate_cosine_lsh_bucketer(kwargs["d"], kwargs["M"], L)
        return knn_lsh_generic_classifier_train(data, bucketer, _cosine_distance, L)
    raise ValueError(
        f"knn_lsh_classifier_train: type must be 'euclidean' or 'cosine', not {type!r}"
    )


def knn_lsh_classify(
    knn_model: Callable[..., Table], data_labels: Table, queries: Table, k: int
) -> Table:
    """Label each query with the most common label (``data_labels.label``) among its ``k``
    approximate nearest neighbours (the nearest one's label first on a tie); None when it
    has no neighbour. Keyed by the query ids, one column ``predicted_label``."""
    knns = knn_model(queries, k)
    label_type = data_labels.schema.typehints()["label"]
    ranked = knns.select(
        ranked=apply_with_type(lambda ids: list(enumerate(ids)), list, knns.knns_ids)
    )
    flat = ranked.flatten(ranked.ranked, origin_id="query")
    flat = flat.select(
        flat.query,
        rank=apply_with_type(lambda item: item[0], int, flat.ranked),
        neighbour=apply_with_type(lambda item: item[1], Pointer, flat.ranked),
    )
    votes = flat.select(
        flat.query,
        vote=apply_with_type(
            lambda rank, label: (rank, label),
            tuple,
            flat.rank,
            data_labels.ix(flat.neighbour).label,
        ),
    )
    tally = votes.groupby(id=votes.query).reduce(votes=reducers.sorted_tuple(votes.vote))
    joined = knns.join_left(tally, knns.id == tally.id, id=knns.id)
    return joined.select(
        predicted_label=apply_with_type(_majority, label_type | None, coalesce(tally.votes, ()))
    )


def _majority(votes: tuple[tuple[int, Any], ...]) -> Any:
    """The most common label, the nearest neighbour's first among equally common ones."""
    return mode(label for _, label in votes) if votes else None
