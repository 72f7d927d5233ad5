"""Fuzzy matching of rows through shared features (words, letters, or any given features).

The input is a bipartite node-feature graph: ``Edge`` rows link a node (a row to match) to a
feature with a weight. A feature seen on ``cnt`` edges weighs ``weight * normalize(cnt)`` (rare
features count more). Two nodes score the sum, over their shared features, of the product of
their edge weights and the feature's weight; each left node keeps its best right node and
each right node the best of the left nodes that chose it (ties go to the larger pair of ids),
so the result is a one-to-one matching.

Features on at least ``HEAVY_LIGHT_THRESHOLD`` edges are *heavy*: joining on them would pair
almost everything, so they only add to the score of pairs that already share a light feature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import IntEnum, auto
from typing import Any

from deltaflow import reducers
from deltaflow._pointer import Pointer
from deltaflow.expressions.base import ColumnReference
from deltaflow.expressions.functions import apply_with_type, if_else, make_tuple
from deltaflow.expressions.placeholders import this
from deltaflow.schema import Schema
from deltaflow.stdlib.utils.filtering import argmax_rows
from deltaflow.table import Table

__all__ = [
    "Edge",
    "Feature",
    "FuzzyJoinFeatureGeneration",
    "FuzzyJoinNormalization",
    "JoinResult",
    "Node",
    "fuzzy_match",
    "fuzzy_match_tables",
    "fuzzy_match_with_hint",
    "fuzzy_self_match",
    "smart_fuzzy_match",
]

_DEFAULT_THRESHOLD = 100


class Node(Schema):
    """A node to match (its row id); no required columns."""


class Feature(Schema):
    """A feature: its base ``weight`` and a :class:`FuzzyJoinNormalization` value."""

    weight: float
    normalization_type: int


class Edge(Schema):
    """A node having a feature, with a weight."""

    node: Pointer
    feature: Pointer
    weight: float


class JoinResult(Schema):
    """A matched pair of nodes and the score of the match."""

    left: Pointer
    right: Pointer
    weight: float


def _words(value: Any) -> list[str]:
    return str(value).split()


def _alphanumerics(value: Any) -> list[str]:
    return [ch.lower() for ch in str(value) if ch.isalnum()]


class FuzzyJoinFeatureGeneration(IntEnum):
    """How :func:`smart_fuzzy_match` cuts a value into features."""

    AUTO = auto()  # words, for now
    TOKENIZE = auto()  # whitespace-separated words
    LETTERS = auto()  # letters and digits, lowercased

    @property
    def generate(self) -> Callable[[Any], Any]:
        """The function from a value to its list of features."""
        return _alphanumerics if self is FuzzyJoinFeatureGeneration.LETTERS else _words


def _power_of_two_weight(count: float) -> float:
    return 0.0 if count == 0 else 1 / 2 ** math.ceil(math.log2(count))


def _log_weight(count: float) -> float:
    return 0.0 if count == 0 else 1 / math.ceil(math.log2(count + 1))


def _unchanged(count: float) -> float:
    return count


class FuzzyJoinNormalization(IntEnum):
    """How a feature's weight falls with the number ``cnt`` of edges having it."""

    WEIGHT = auto()  # 1 / (cnt rounded up to a power of two)
    LOGWEIGHT = auto()  # 1 / ceil(log2(cnt + 1))
    NONE = auto()  # cnt itself

    @property
    def normalize(self) -> Callable[[Any], Any]:
        """The function from an edge count to a weight factor."""
        if self is FuzzyJoinNormalization.WEIGHT:
            return _power_of_two_weight
        if self is FuzzyJoinNormalization.LOGWEIGHT:
            return _log_weight
        return _unchanged


def _normalized(count: int, normalization_type: int) -> float:
    return float(FuzzyJoinNormalization(normalization_type).normalize(count))


def _without_hand_matched(edges: Table, matched: Table, side: str) -> Table:
    """``edges`` without the edges of nodes that ``matched`` pairs on its ``side`` column."""
    taken = edges.join(matched, edges.node == matched[side], id=edges.id).select()
    return edges.difference(taken)


def _times_feature_weight(pairs: Table, feature_weight: Table) -> Table:
    """``pairs`` (``left``, ``right``, ``feature``, ``weight``) with the weight multiplied by
    the feature's normalized weight, and without the feature."""
    return pairs.select(
        pairs.left,
        pairs.right,
        weight=pairs.weight * feature_weight.ix(pairs.feature).weight,
    )


def _pair_scores(left: Table, right: Table, feature_weight: Table, symmetric: bool) -> Table:
    """Summed score of each (left node, right node) pair sharing a feature."""
    joined = left.join(right, left.feature == right.feature).select(
        left=left.node, right=right.node, feature=left.feature, weight=left.weight * right.weight
    )
    pairs = _times_feature_weight(joined, feature_weight)
    if symmetric:
        pairs = pairs.filter(pairs.left != pairs.right)
    return pairs.groupby(pairs.left, pairs.right).reduce(
        pairs.left, pairs.right, weight=reducers.sum(pairs.weight)
    )


def _heavy_scores(
    light: Table, left_heavy: Table, right_heavy: Table, feature_weight: Table
) -> Table:
    """What the heavy features add to the pairs that already share a light feature."""
    with_left = light.join(left_heavy, light.left == left_heavy.node).select(
        light.left, light.right, left_heavy.feature, left_weight=left_heavy.weight
    )
    both = with_left.join(
        right_heavy,
        with_left.right == right_heavy.node,
        with_left.feature == right_heavy.feature,
    )
    joined = both.select(
        with_left.left,
        with_left.right,
        with_left.feature,
        weight=with_left.left_weight * right_heavy.weight,
    )
    return _times_feature_weight(joined, feature_weight)


def _best_partners(scores: Table) -> Table:
    """Each left node's best right node, then each right node's best left node among those;
    ties are broken by the pair of ids (the larger wins). Weights are compared rounded to 9
    decimals: a weight summed incrementally may differ from the same sum made at once in the
    last bit, and that must not decide between equally good partners (it would make the
    result depend on the order the edges came in)."""
    first = if_else(scores.left < scores.right, scores.left, scores.right)
    second = if_else(scores.left < scores.right, scores.right, scores.left)
    keyed = scores.with_columns(key=make_tuple(scores.weight.num.round(9), first, second))
    per_left = argmax_rows(keyed, keyed.left, what=keyed.key)
    per_right = argmax_rows(per_left, per_left.right, what=per_left.key)
    return per_right.with_id_from(this.right).select(this.right, this.left, this.weight)


def _fuzzy_match(
    edges_left: Table,
    edges_right: Table,
    features: Table,
    *,
    symmetric: bool,
    threshold: int,
    by_hand_match: Table | None,
) -> Table:
    if by_hand_match is not None:
        edges_left = _without_hand_matched(edges_left, by_hand_match, "left")
        if symmetric:
            edges_right = edges_left
        else:
            edges_right = _without_hand_matched(edges_right, by_hand_match, "right")

    every = edges_left if symmetric else Table.concat_reindex(edges_left, edges_right)
    counts = features.select(cnt=0).update_rows(
        every.groupby(id=every.feature).reduce(cnt=reducers.count())
    )
    feature_weight = features.select(
        weight=features.weight
        * apply_with_type(
            _normalized, float, counts.ix(features.id).cnt, features.normalization_type
        )
    )

    def split(edges: Table) -> tuple[Table, Table]:
        count = counts.ix(edges.feature).cnt
        return edges.filter(count < threshold), edges.filter(count >= threshold)

    left_light, left_heavy = split(edges_left)
    right_light, right_heavy = (
        (left_light.copy(), left_heavy.copy()) if symmetric else split(edges_right)
    )

    light = _pair_scores(left_light, right_light, feature_weight, symmetric)
    heavy = _heavy_scores(light, left_heavy, right_heavy, feature_weight)
    combined = Table.concat_reindex(light, heavy)
    scores = combined.groupby(combined.left, combined.right).reduce(
        combined.left, combined.right, weight=reducers.sum(combined.weight)
    )
    matched = _best_partners(scores)
    if symmetric:
        matched = matched.filter(matched.left < matched.right)
    if by_hand_match is not None:
        matched = matched.update_rows(by_hand_match.select(*_hand_columns(by_hand_match)))
    return matched


def _hand_columns(by_hand_match: Table) -> list[ColumnReference]:
    return [by_hand_match.right, by_hand_match.left, by_hand_match.weight]


def fuzzy_match(
    edges_left: Table,
    edges_right: Table,
    features: Table,
    by_hand_match: Table | None = None,
    HEAVY_LIGHT_THRESHOLD: int = _DEFAULT_THRESHOLD,  # noqa: N803 - Pathway's name
) -> Table:
    """Match the nodes of ``edges_left`` with those of ``edges_right`` (both ``Edge``
    tables over ``features``); pairs in ``by_hand_match`` are kept as given and their nodes
    left out of the automatic matching. Columns ``right``, ``left``, ``weight``."""
    return _fuzzy_match(
        edges_left,
        edges_right,
        features,
        symmetric=False,
        threshold=HEAVY_LIGHT_THRESHOLD,
        by_hand_match=by_hand_match,
    )


def fuzzy_match_with_hint(
    edges_left: Table,
    edges_right: Table,
    features: Table,
    by_hand_match: Table,
    HEAVY_LIGHT_THRESHOLD: int = _DEFAULT_THRESHOLD,  # noqa: N803 - Pathway's name
) -> Table:
    """:func:`fuzzy_match` with a required table of pairs matched by hand."""
    return fuzzy_match(edges_left, edges_right, features, by_hand_match, HEAVY_LIGHT_THRESHOLD)


def fuzzy_self_match(
    edges: Table,
    features: Table,
    by_hand_match: Table | None = None,
    HEAVY_LIGHT_THRESHOLD: int = _DEFAULT_THRESHOLD,  # noqa: N803 - Pathway's name
) -> Table:
    """Match the nodes of ``edges`` among themselves: each pair appears once, with
    ``left < right``, and no node is matched with itself."""
    return _fuzzy_match(
        edges,
        edges,
        features,
        symmetric=True,
        threshold=HEAVY_LIGHT_THRESHOLD,
        by_hand_match=by_hand_match,
    )


def _feature_graph(
    column: ColumnReference, normalization: FuzzyJoinNormalization, generate: Callable
) -> tuple[Table, Table]:
    """The ``Edge`` table (rows of ``column``'s table to their features) and the
    ``Feature`` table (keyed by the feature value) of one column."""
    table = column.table
    values = table.select(feature=apply_with_type(generate, list[str], column))
    flat = values.flatten(values.feature, origin_id="origin_id")
    features = (
        flat.groupby(flat.feature)
        .reduce(flat.feature)
        .with_id_from(this.feature)
        .select(normalization_type=int(normalization), weight=1.0)
    )
    edges = flat.select(
        node=flat.origin_id, feature=features.pointer_from(flat.feature), weight=1.0
    )
    return edges, features


def smart_fuzzy_match(
    left_col: ColumnReference,
    right_col: ColumnReference,
    *,
    by_hand_match: Table | None = None,
    normalization: FuzzyJoinNormalization = FuzzyJoinNormalization.LOGWEIGHT,
    feature_generation: FuzzyJoinFeatureGeneration = FuzzyJoinFeatureGeneration.AUTO,
    HEAVY_LIGHT_THRESHOLD: int = _DEFAULT_THRESHOLD,  # noqa: N803 - Pathway's name
) -> Table:
    """Match the rows of ``left_col``'s table with those of ``right_col``'s by the features
    ``feature_generation`` finds in the two columns. The same column on both sides makes a
    self-match (see :func:`fuzzy_self_match`). ``left``/``right`` point at the rows."""
    generate = FuzzyJoinFeatureGeneration(feature_generation).generate
    norm = FuzzyJoinNormalization(normalization)
    if left_col.table is right_col.table and left_col.name == right_col.name:
        edges, features = _feature_graph(left_col, norm, generate)
        return fuzzy_self_match(edges, features, by_hand_match, HEAVY_LIGHT_THRESHOLD)
    edges_left, features_left = _feature_graph(left_col, norm, generate)
    edges_right, features_right = _feature_graph(right_col, norm, generate)
    features = features_left.update_rows(features_right)
    return fuzzy_match(edges_left, edges_right, features, by_hand_match, HEAVY_LIGHT_THRESHOLD)


def _joined_text(*values: Any) -> str:
    return " ".join(str(v) for v in values)


def _as_text(table: Table) -> Table:
    """One ``desc`` column: the table's values as text, separated by spaces."""
    columns = [table[name] for name in table.column_names()]
    return table.select(desc=apply_with_type(_joined_text, str, *columns))


def _match_as_text(
    left_table: Table,
    right_table: Table,
    by_hand_match: Table | None,
    normalization: FuzzyJoinNormalization,
    feature_generation: FuzzyJoinFeatureGeneration,
) -> Table:
    left, right = _as_text(left_table), _as_text(right_table)
    return smart_fuzzy_match(
        left.desc,
        right.desc,
        by_hand_match=by_hand_match,
        normalization=normalization,
        feature_generation=feature_generation,
    )


def _buckets(table: Table, projection: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name in table.column_names():
        if name in projection:
            grouped.setdefault(projection[name], []).append(name)
    return grouped


def fuzzy_match_tables(
    left_table: Table,
    right_table: Table,
    *,
    by_hand_match: Table | None = None,
    normalization: FuzzyJoinNormalization = FuzzyJoinNormalization.LOGWEIGHT,
    feature_generation: FuzzyJoinFeatureGeneration = FuzzyJoinFeatureGeneration.AUTO,
    left_projection: dict[str, str] = {},  # noqa: B006 - Pathway's signature
    right_projection: dict[str, str] = {},  # noqa: B006 - Pathway's signature
) -> Table:
    """Match whole rows of two tables by the words of all their columns.

    With both projections given (column name -> bucket name), columns are compared only
    with columns of the same bucket: each bucket is matched on its own and the scores of a
    pair are summed over the buckets.
    """
    if not left_projection or not right_projection:
        return _match_as_text(
            left_table, right_table, by_hand_match, normalization, feature_generation
        )
    left_buckets = _buckets(left_table, left_projection)
    right_buckets = _buckets(right_table, right_projection)
    order = list(dict.fromkeys([*left_buckets, *right_buckets]))
    one_sided = [b for b in order if b not in left_buckets or b not in right_buckets]
    if one_sided:
        raise ValueError(
            f"fuzzy_match_tables: bucket(s) {one_sided} have columns on one side only; "
            "every bucket of a projection needs columns of both tables"
        )
    per_bucket = [
        _match_as_text(
            left_table[left_buckets[bucket]],
            right_table[right_buckets[bucket]],
            by_hand_match,
            normalization,
            feature_generation,
        )
        for bucket in order
    ]
    every = Table.concat_reindex(*per_bucket)
    return every.groupby(every.left, every.right).reduce(
        every.left, every.right, weight=reducers.sum(every.weight)
    )
