"""pw.stdlib.ml: fuzzy matching (smart_table_ops).

Expected scores are worked out by hand from the feature counts; the incremental runs are
compared with from-scratch runs at every time (``check`` from test_stateful_properties).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

import deltaflow as pw
from deltaflow.stdlib.ml.classifiers import (
    knn_lsh_classifier_train,
    knn_lsh_classify,
    knn_lsh_euclidean_classifier_train,
    knn_lsh_train,
)
from deltaflow.stdlib.ml.smart_table_ops import (
    FuzzyJoinFeatureGeneration,
    FuzzyJoinNormalization,
    fuzzy_match,
    fuzzy_match_tables,
    fuzzy_match_with_hint,
    fuzzy_self_match,
    smart_fuzzy_match,
)
from test_stateful_properties import SETTINGS, Event, check, update_streams


def _table(**columns: list[Any]) -> pw.Table:
    return pw.debug.table_from_pandas(pd.DataFrame(columns))


def _named_matches(
    matches: pw.Table, left: pw.Table, right: pw.Table, column: str, right_column: str = ""
) -> list[tuple[Any, ...]]:
    """The matches as sorted (left value, right value, rounded weight)."""
    named = matches.select(
        l=left.ix(matches.left)[column],
        r=right.ix(matches.right)[right_column or column],
        w=pw.apply_with_type(lambda x: round(x, 9), float, matches.weight),
    )
    keys, columns = pw.debug.table_to_dicts(named)
    return sorted((columns["l"][k], columns["r"][k], columns["w"][k]) for k in keys)


# ---------------------------------------------------------------- normalizations


def test_normalizations_and_feature_generation() -> None:
    weight = FuzzyJoinNormalization.WEIGHT.normalize
    assert [weight(c) for c in (0, 1, 2, 3, 4, 5)] == [0.0, 1.0, 0.5, 0.25, 0.25, 0.125]
    log = FuzzyJoinNormalization.LOGWEIGHT.normalize
    assert [log(c) for c in (0, 1, 2, 3, 4)] == [0.0, 1.0, 0.5, 0.5, 1 / 3]
    assert FuzzyJoinNormalization.NONE.normalize(7) == 7
    assert FuzzyJoinFeatureGeneration.TOKENIZE.generate("Big  Red-Box") == ["Big", "Red-Box"]
    assert FuzzyJoinFeatureGeneration.AUTO.generate(12) == ["12"]
    assert FuzzyJoinFeatureGeneration.LETTERS.generate("A-b 3") == ["a", "b", "3"]
    assert int(FuzzyJoinNormalization.LOGWEIGHT) == 2


# ---------------------------------------------------------------- whole tables


def test_fuzzy_match_tables_by_words() -> None:
    left = _table(name=["red apple", "green pear", "blue berry"])
    right = _table(name=["apple red", "pear", "banana"])
    matches = fuzzy_match_tables(left, right)
    assert matches.column_names() == ["right", "left", "weight"]
    # red, apple and pear occur twice (weight 1/ceil(log2 3) = 1/2 each), the rest once.
    assert _named_matches(matches, left, right, "name") == [
        ("green pear", "pear", 0.5),
        ("red apple", "apple red", 1.0),
    ]


def test_fuzzy_match_tables_joins_all_columns_as_text() -> None:
    left = _table(qty=[3, 7], unit=["kg", "box"])
    right = _table(qty=["7", "three"], unit=["box", "kg"])
    matches = fuzzy_match_tables(left, right)
    pairs = _named_matches(matches, left, right, "qty")
    assert pairs == [(3, "three", 0.5), (7, "7", 1.0)]


def test_fuzzy_match_tables_with_projections() -> None:
    left = _table(src=["oslo", "rome"], dst=["rome", "lima"])
    right = _table(frm=["rome", "lima"], to=["oslo", "rome"])
    # Compare left.src with right.to and left.dst with right.frm.
    matches = fuzzy_match_tables(
        left,
        right,
        left_projection={"src": "from", "dst": "to"},
        right_projection={"to": "from", "frm": "to"},
    )
    # Each shared word occurs twice in its bucket: 1/2 per bucket, two buckets per pair.
    assert _named_matches(matches, left, right, "src", "frm") == [
        ("oslo", "rome", 1.0),
        ("rome", "lima", 1.0),
    ]


def test_fuzzy_match_tables_rejects_one_sided_bucket() -> None:
    left = _table(a=["x"])
    right = _table(b=["x"])
    with pytest.raises(ValueError, match="one side"):
        fuzzy_match_tables(left, right, left_projection={"a": "A"}, right_projection={"b": "B"})


# ---------------------------------------------------------------- columns


def test_smart_self_match_by_letters() -> None:
    names = _table(name=["abc", "cab", "xyz", "zy"])
    matches = smart_fuzzy_match(
        names.name,
        names.name,
        normalization=FuzzyJoinNormalization.WEIGHT,
        feature_generation=FuzzyJoinFeatureGeneration.LETTERS,
    )
    rows = _named_matches(matches, names, names, "name")
    # a, b, c, y, z occur twice (weight 1/2); each pair is listed once, never a row with itself.
    assert sorted((min(a, b), max(a, b), w) for a, b, w in rows) == [
        ("abc", "cab", 1.5),
        ("xyz", "zy", 1.0),
    ]
    keys, columns = pw.debug.table_to_dicts(matches)
    assert all(columns["left"][k] < columns["right"][k] for k in keys)


def test_smart_match_of_two_columns_is_one_to_one() -> None:
    left = _table(word=["alpha", "alps"])
    right = _table(word=["alpha"])
    matches = smart_fuzzy_match(
        left.word, right.word, feature_generation=FuzzyJoinFeatureGeneration.LETTERS
    )
    # "alpha" beats "alps" for the only right row; a right row is matched once.
    rows = _named_matches(matches, left, right, "word")
    assert [(a, b) for a, b, _ in rows] == [("alpha", "alpha")]


# ---------------------------------------------------------------- explicit feature graphs


def _feature_graph() -> tuple[pw.Table, pw.Table, pw.Table, pw.Table]:
    nodes = _table(name=["p", "q", "r", "P", "Q", "R"]).with_id_from(pw.this.name)
    features = _table(f=[1, 2, 3], w=[2.0, 1.0, 1.0]).with_id_from(pw.this.f)
    features = features.select(
        weight=pw.this.w, normalization_type=int(FuzzyJoinNormalization.NONE)
    )

    def edges(rows: list[tuple[str, int, float]]) -> pw.Table:
        t = _table(n=[r[0] for r in rows], f=[r[1] for r in rows], w=[r[2] for r in rows])
        return t.select(
            node=nodes.pointer_from(t.n), feature=features.pointer_from(t.f), weight=t.w
        )

    left = edges([("p", 1, 1.0), ("q", 2, 1.0), ("r", 3, 0.5)])
    right = edges([("P", 1, 1.0), ("Q", 2, 3.0), ("R", 3, 1.0), ("R", 2, 1.0)])
    return nodes, features, left, right


def test_fuzzy_match_on_feature_graph() -> None:
    nodes, features, left, right = _feature_graph()
    matches = fuzzy_match(left, right, features)
    # NONE normalization multiplies by the edge count: f1 has 2 edges, f2 3, f3 2.
    # p-P: 1*1*2*2 = 4; q-Q: 1*3*1*3 = 9; q-R: 1*1*3 = 3; r-R: 0.5*1*1*2 = 1.
    assert _named_matches(matches, nodes, nodes, "name") == [
        ("p", "P", 4.0),
        ("q", "Q", 9.0),
        ("r", "R", 1.0),
    ]


def test_fuzzy_match_with_hint_keeps_hand_matches() -> None:
    nodes, features, left, right = _feature_graph()
    hint = _table(a=["q"], b=["R"], weight=[0.25]).select(
        left=nodes.pointer_from(pw.this.a),
        right=nodes.pointer_from(pw.this.b),
        weight=pw.this.weight,
    )
    matches = fuzzy_match_with_hint(left, right, features, hint)
    # q and R are taken by hand; without them f2 has 1 edge and f3 one: r is left alone.
    assert _named_matches(matches, nodes, nodes, "name") == [
        ("p", "P", 4.0),
        ("q", "R", 0.25),
    ]


def test_heavy_features_only_add_to_light_pairs() -> None:
    nodes = _table(name=["a", "b", "c", "d"]).with_id_from(pw.this.name)
    features = _table(f=[1, 2]).with_id_from(pw.this.f)
    features = features.select(weight=1.0, normalization_type=int(FuzzyJoinNormalization.NONE))
    rows = [("a", 1), ("b", 1), ("c", 1), ("d", 1), ("a", 2), ("b", 2)]
    t = _table(n=[r[0] for r in rows], f=[r[1] for r in rows])
    edges = t.select(node=nodes.pointer_from(t.n), feature=features.pointer_from(t.f), weight=1.0)
    # Feature 1 (4 edges) is heavy at threshold 3: alone it pairs nothing.
    matches = fuzzy_self_match(edges, features, HEAVY_LIGHT_THRESHOLD=3)
    assert _named_matches(matches, nodes, nodes, "name") in (
        [("a", "b", 2.0 + 4.0)],
        [("b", "a", 2.0 + 4.0)],
    )
    heavy_edges = edges.filter(edges.feature == features.pointer_from(1))
    only_heavy = fuzzy_self_match(heavy_edges, features, HEAVY_LIGHT_THRESHOLD=3)
    assert pw.debug.table_to_dicts(only_heavy)[0] == []


# ---------------------------------------------------------------- incremental


def _fuzzy_tables_program(left: pw.Table, right: pw.Table) -> pw.Table:
    words = ["oak", "elm", "ash", "fir"]

    def text(t: pw.Table) -> pw.Table:
        return t.select(
            text=pw.apply_with_type(lambda k, v: f"{words[k]} n{abs(v)}", str, t.k, t.v)
        )

    matches = fuzzy_match_tables(text(left), text(right))
    return matches.select(matches.left, matches.right, matches.weight)


@settings(SETTINGS, max_examples=10)
@given(update_streams(max_key=3, max_times=3), update_streams(label_base=1000, max_key=3))
def test_fuzzy_match_tables_incremental_matches_recomputation(
    left_events: list[Event], right_events: list[Event]
) -> None:
    check(_fuzzy_tables_program, left_events, right_events)


def test_fuzzy_match_tables_equal_partners_do_not_depend_on_the_last_bit() -> None:
    # Found by Hypothesis: two right rows become equally good partners, and the pair weight
    # summed incrementally differed from the one summed at once in the last bit, which
    # picked a different partner than a from-scratch run.
    left = [(1, 1, 2, 2, 1), (2, 1, 0, 2, 1)]
    right = [
        (1001, 0, 0, 2, 1),
        (1002, 1, 2, 2, 1),
        (1001, 0, 0, 4, -1),
        (1003, 1, 0, 6, 1),
        (1002, 1, 2, 6, -1),
        (1002, 1, 0, 6, 1),
    ]
    check(_fuzzy_tables_program, left, right)


# ---------------------------------------------------------------- k-NN through LSH


def _points(vectors: list[list[float]]) -> pw.Table:
    frame = pd.DataFrame({"data": [np.array(v, dtype=float) for v in vectors]})
    return pw.debug.table_from_pandas(frame)


_CLOUDS = [[20, 21], [21, 20], [22, 22], [-20, -21], [-21, -20], [-22, -22], [0, 1], [1, 0]]


def _neighbour_rows(result: pw.Table, data: pw.Table, queries: pw.Table) -> dict[Any, Any]:
    """{query's first coordinate: tuple of its neighbours' first coordinates}."""
    named = result.select(
        q=pw.apply_with_type(lambda v: float(v[0]), float, queries.ix(result.query_id).data),
        ids=result.knns_ids,
    )
    _, rows = pw.debug.table_to_dicts(named)
    _, points = pw.debug.table_to_dicts(data)
    first = {k: float(v[0]) for k, v in points["data"].items()}
    return {rows["q"][k]: tuple(first[i] for i in rows["ids"][k]) for k in rows["q"]}


def test_knn_lsh_finds_points_of_the_same_cloud() -> None:
    data = _points(_CLOUDS)
    queries = _points([[21, 21], [-21, -21], [0.5, 0.5], [500, -500]])
    index = knn_lsh_classifier_train(data, L=6, type="euclidean", d=2, M=4, A=8)
    result = index(queries, k=2)
    assert result.column_names() == ["query_id", "knns_ids"]
    found = _neighbour_rows(result, data, queries)
    assert set(found) == {21.0, -21.0, 0.5, 500.0}
    assert 0 < len(found[21.0]) <= 2 and set(found[21.0]) <= {20.0, 21.0, 22.0}
    assert 0 < len(found[-21.0]) <= 2 and set(found[-21.0]) <= {-20.0, -21.0, -22.0}
    assert len(found[0.5]) > 0 and set(found[0.5]) <= {0.0, 1.0}
    assert found[500.0] == ()


def test_knn_lsh_distances_are_sorted_and_k_may_be_a_column() -> None:
    data = _points(_CLOUDS)
    queries = _points([[21, 21], [0, 0]]).with_columns(k=pw.this.data[0] > 10)
    queries = queries.with_columns(k=pw.if_else(pw.this.k, 3, 1))
    index = knn_lsh_euclidean_classifier_train(data, d=2, M=2, L=8, A=20)
    result = index(queries, with_distances=True)
    _, rows = pw.debug.table_to_dicts(result)
    lengths = sorted(len(v) for v in rows["knns_ids_with_dists"].values())
    assert lengths == [1, 3]
    for pairs in rows["knns_ids_with_dists"].values():
        distances = [d for _, d in pairs]
        assert distances == sorted(distances)
    # Squared distances: from (0, 0) the nearest point is (0, 1) or (1, 0), at 1.
    assert [d for v in rows["knns_ids_with_dists"].values() if len(v) == 1 for _, d in v] == [1.0]


def test_knn_lsh_cosine_and_bad_type() -> None:
    data = _points([[1, 0.1], [2, 0.3], [-1, 0.05], [0.1, 5]])
    queries = _points([[10, 1], [0, -3]])
    index = knn_lsh_train(data, L=8, type="cosine", d=2, M=3)
    found = _neighbour_rows(index(queries, k=1), data, queries)
    assert found[10.0] in ((1.0,), (2.0,))
    assert found[0.0] in ((), (0.1,), (-1.0,))
    with pytest.raises(ValueError, match="euclidean"):
        knn_lsh_classifier_train(data, L=2, type="manhattan", d=2, M=2)


def test_knn_lsh_classify_votes() -> None:
    data = _points(_CLOUDS)
    labels = data.select(label=pw.apply_with_type(lambda v: int(np.sign(v[0])), int, data.data))
    queries = _points([[19, 22], [-22, -19], [0.2, 0.7], [900, 900]])
    index = knn_lsh_classifier_train(data, L=6, type="euclidean", d=2, M=4, A=8)
    result = knn_lsh_classify(index, labels, queries, k=3)
    assert result.schema.typehints() == {"predicted_label": int | None}
    named = result.select(
        result.predicted_label,
        q=pw.apply_with_type(lambda v: float(v[0]), float, queries.ix(result.id).data),
    )
    _, rows = pw.debug.table_to_dicts(named)
    assert {rows["q"][k]: rows["predicted_label"][k] for k in rows["q"]} == {
        19.0: 1,
        -22.0: -1,
        0.2: 0,
        900.0: None,
    }


@settings(SETTINGS, max_examples=10)
@given(update_streams(max_key=3, max_times=3), update_streams(label_base=1000, max_key=3))
def test_knn_lsh_incremental_matches_recomputation(
    data_events: list[Event], query_events: list[Event]
) -> None:
    def vectors(t: pw.Table) -> pw.Table:
        return t.select(
            data=pw.apply_with_type(
                lambda k, v: np.array([k, v], dtype=float), np.ndarray, t.k, t.v
            )
        )

    def program(data: pw.Table, queries: pw.Table) -> pw.Table:
        index = knn_lsh_classifier_train(vectors(data), L=3, type="euclidean", d=2, M=2, A=3)
        return index(vectors(queries), k=2, with_distances=True)

    check(program, data_events, query_events)


# ---------------------------------------------------------------- hmm, utils, datasets


_WEATHER = ("rain", "sun", "fog")
_EMIT = {
    ("rain", "umbrella"): 0.8,
    ("rain", "none"): 0.2,
    ("sun", "umbrella"): 0.15,
    ("sun", "none"): 0.85,
    ("fog", "umbrella"): 0.4,
    ("fog", "none"): 0.6,
}
_MOVE = {
    ("rain", "rain"): 0.6,
    ("rain", "sun"): 0.3,
    ("rain", "fog"): 0.1,
    ("sun", "sun"): 0.7,
    ("sun", "rain"): 0.2,
    ("sun", "fog"): 0.1,
    ("fog", "fog"): 0.5,
    ("fog", "rain"): 0.5,
}


def _weather_graph() -> Any:
    nx = pytest.importorskip("networkx")
    graph = nx.DiGraph()
    for state in _WEATHER:
        graph.add_node(
            state,
            calc_emission_log_ppb=lambda obs, state=state: float(np.log(_EMIT[(state, obs)])),
        )
    for (a, b), p in _MOVE.items():
        graph.add_edge(a, b, log_transition_ppb=float(np.log(p)))
    graph.graph["start_nodes"] = ["rain", "sun"]
    return graph


def _most_likely(observations: list[str]) -> tuple[str, ...]:
    """Brute force over every state sequence (an independent check of Viterbi)."""
    import itertools

    best: tuple[float, tuple[str, ...]] = (-np.inf, ())
    for path in itertools.product(_WEATHER, repeat=len(observations)):
        if path[0] not in ("rain", "sun"):
            continue
        if any((a, b) not in _MOVE for a, b in itertools.pairwise(path)):
            continue
        score = sum(np.log(_EMIT[(s, o)]) for s, o in zip(path, observations, strict=True))
        score += sum(np.log(_MOVE[(a, b)]) for a, b in itertools.pairwise(path))
        best = max(best, (score, path))
    return best[1]


def _observations(observations: list[str]) -> pw.Table:
    """One observation per time, in order (rows of one time reach a reducer in id order)."""
    lines = [f"{o} | {2 * i + 2}" for i, o in enumerate(observations)]
    return pw.debug.table_from_markdown("obs | __time__\n" + "\n".join(lines))


@pytest.mark.parametrize("kept", [None, 2])
def test_hmm_reducer_decodes_each_prefix(kept: int | None) -> None:
    observations = ["umbrella", "none", "none", "umbrella", "umbrella", "none"]
    table = _observations(observations)
    reducer = pw.reducers.udf_reducer(
        pw.stdlib.ml.hmm.create_hmm_reducer(_weather_graph(), num_results_kept=kept)
    )
    decoded = table.reduce(path=reducer(table.obs))
    inserted = [row["path"] for _, row, diff in pw.debug.table_to_stream(decoded) if diff > 0]
    expected = [_most_likely(observations[: n + 1]) for n in range(len(observations))]
    if kept is not None:
        expected = [path[-kept:] for path in expected]
    assert inserted == expected


def test_hmm_reducer_beam_of_one_is_greedy() -> None:
    observations = ["umbrella", "umbrella", "none", "umbrella"]
    table = _observations(observations)
    accumulator = pw.stdlib.ml.hmm.create_hmm_reducer(_weather_graph(), beam_size=1)
    decoded = table.reduce(path=pw.reducers.udf_reducer(accumulator)(table.obs))
    [[path]] = [list(r) for r in pw.debug.table_to_pandas(decoded).itertuples(index=False)]
    # Keeping one state per step, "none" moves the walk to sun, and it cannot come back
    # to the all-rain path that exact decoding finds.
    assert _most_likely(observations) == ("rain", "rain", "rain", "rain")
    assert path == ("rain", "rain", "sun", "rain")


def test_classifier_accuracy_counts_hits_and_misses() -> None:
    exact = _table(label=["a", "b", "a", "c", "b"])
    predicted = exact.select(
        predicted_label=pw.apply_with_type(
            lambda x: {"a": "a", "b": "c", "c": "c"}[x], str, exact.label
        )
    ).filter(pw.this.predicted_label != "zzz")
    accuracy = pw.stdlib.ml.utils.classifier_accuracy(predicted, exact)
    _, columns = pw.debug.table_to_dicts(accuracy)
    assert {columns["value"][k]: columns["cnt"][k] for k in columns["cnt"]} == {
        True: 3,
        False: 2,
    }


def test_mnist_split_sizes() -> None:
    from deltaflow.stdlib.ml.datasets.classification import _split_tables

    images = np.arange(70_000 * 2, dtype=float).reshape(70_000, 2)
    labels = np.array([str(i % 10) for i in range(70_000)])
    train, train_labels, test, test_labels = _split_tables(images, labels, 70)
    sizes = [len(pw.debug.table_to_dicts(t)[0]) for t in (train, train_labels, test, test_labels)]
    assert sizes == [60, 60, 10, 10]
    first_test = sorted(float(v[0]) for v in pw.debug.table_to_dicts(test)[1]["data"].values())
    assert first_test[0] == 120_000.0  # row 60,000: the first of MNIST's test images


# ---------------------------------------------------------------- module paths


def test_pathway_module_paths_of_stdlib() -> None:
    import importlib

    from deltaflow.stdlib.ordered.diff import diff
    from deltaflow.stdlib.stateful.deduplicate import deduplicate
    from deltaflow.stdlib.temporal import utils as temporal_utils

    assert diff is pw.stdlib.ordered.diff
    assert deduplicate is pw.stdlib.stateful.deduplicate
    assert importlib.import_module("deltaflow.stdlib.ordered.diff").diff is diff
    assert pw.graphs is pw.stdlib.graphs and pw.ml is pw.stdlib.ml
    assert temporal_utils.zero_length_interval(float) == 0.0
    assert temporal_utils.get_default_origin(pw.Type.INT) == 0
    t = _table(at=[1.5])
    temporal_utils.check_joint_types(
        {"time": (t.at, temporal_utils.TimeEventType), "hop": (2, temporal_utils.IntervalType)}
    )
    with pytest.raises(TypeError, match="one kind"):
        temporal_utils.check_joint_types(
            {
                "time": (t.at, temporal_utils.TimeEventType),
                "hop": ("2", temporal_utils.IntervalType),
            }
        )
