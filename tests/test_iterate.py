"""pw.iterate and pw.iterate_universe: classic fixed-point programs on static tables and on
update streams, result shapes, universes, and errors for bad arguments."""

from __future__ import annotations

from typing import Any

import pytest

import deltaflow as pw
from _util import snapshot, stream
from deltaflow.engine import iterate as iterate_engine


def _edges(markdown: str) -> pw.Table:
    return pw.debug.table_from_markdown(markdown)


# --- programs used by several tests --------------------------------------------------------


def components(edges: pw.Table) -> pw.Table:
    """Connected components by min-label propagation: (vertex, smallest vertex reachable)."""
    both = edges.concat_reindex(edges.select(u=pw.this.v, v=pw.this.u))
    vertices = both.groupby(pw.this.u).reduce(vertex=pw.this.u)
    labels = vertices.select(pw.this.vertex, label=pw.this.vertex)

    def step(labels: pw.Table, both: pw.Table) -> dict[str, pw.Table]:
        offered = both.join(labels, both.v == labels.vertex).select(
            vertex=pw.left.u, label=pw.right.label
        )
        best = offered.groupby(pw.this.vertex).reduce(
            pw.this.vertex, label=pw.reducers.min(pw.this.label)
        )
        joined = labels.join_left(best, labels.vertex == best.vertex, id=labels.id).select(
            labels.vertex, own=labels.label, offered=pw.coalesce(best.label, labels.label)
        )
        return {
            "labels": joined.select(
                pw.this.vertex,
                label=pw.if_else(pw.this.offered < pw.this.own, pw.this.offered, pw.this.own),
            )
        }

    return pw.iterate(step, labels=labels, both=both).labels


def closure(edges: pw.Table) -> pw.Table:
    """Transitive closure: every (u, v) with a path from u to v."""
    start = edges.groupby(pw.this.u, pw.this.v).reduce(pw.this.u, pw.this.v)

    def step(reach: pw.Table, edges: pw.Table) -> pw.Table:
        longer = reach.join(edges, reach.v == edges.u).select(u=reach.u, v=edges.v)
        return (
            reach.concat_reindex(longer).groupby(pw.this.u, pw.this.v).reduce(pw.this.u, pw.this.v)
        )

    return pw.iterate(step, reach=pw.iterate_universe(start), edges=edges)


def distances(edges: pw.Table, source: int) -> pw.Table:
    """Bellman-Ford: the length of the shortest path from ``source`` to every vertex."""
    start = edges.filter(pw.this.u == source).groupby(pw.this.u).reduce(vertex=pw.this.u, dist=0)

    def step(dist: pw.Table, edges: pw.Table) -> pw.Table:
        further = dist.join(edges, dist.vertex == edges.u).select(
            vertex=edges.v, dist=dist.dist + edges.w
        )
        return (
            dist.concat_reindex(further)
            .groupby(pw.this.vertex)
            .reduce(pw.this.vertex, dist=pw.reducers.min(pw.this.dist))
        )

    return pw.iterate(step, dist=pw.iterate_universe(start), edges=edges)


def _collatz(t: pw.Table) -> pw.Table:
    return t.select(
        n=pw.if_else(t.n == 1, 1, pw.if_else(t.n % 2 == 0, t.n // 2, 3 * t.n + 1)),
        steps=pw.if_else(t.n == 1, t.steps, t.steps + 1),
    )


# --- static programs ----------------------------------------------------------------------


def test_connected_components_static() -> None:
    edges = _edges("""
    u | v
    1 | 2
    2 | 3
    4 | 5
    6 | 5
    7 | 7
    """)
    assert snapshot(components(edges)) == [(1, 1), (2, 1), (3, 1), (4, 4), (5, 4), (6, 4), (7, 7)]


def test_transitive_closure_static() -> None:
    edges = _edges("""
    u | v
    1 | 2
    2 | 3
    3 | 1
    4 | 1
    """)
    cycle = [(a, b) for a in (1, 2, 3) for b in (1, 2, 3)]
    assert snapshot(closure(edges)) == sorted([*cycle, (4, 1), (4, 2), (4, 3)])


def test_shortest_paths_static() -> None:
    edges = _edges("""
    u | v | w
    1 | 2 | 7
    1 | 3 | 2
    3 | 2 | 1
    2 | 4 | 1
    5 | 1 | 1
    """)
    assert snapshot(distances(edges, 1)) == [(1, 0), (2, 3), (3, 2), (4, 4)]


def test_collatz_per_row_keeps_ids_and_types() -> None:
    numbers = pw.debug.table_from_markdown("""
      | n  | steps
    1 | 1  | 0
    2 | 6  | 0
    3 | 27 | 0
    """)
    result = pw.iterate(_collatz, t=numbers)
    assert result.typehints() == numbers.typehints()
    assert pw.debug.table_to_dicts(result)[0] == pw.debug.table_to_dicts(numbers)[0]
    assert snapshot(result) == [(1, 0), (1, 8), (1, 111)]


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_iteration_limit_counts_rounds(limit: int) -> None:
    counter = pw.debug.table_from_markdown("""
    n | m
    0 | 100
    """)
    result = pw.iterate(lambda t: t.select(n=t.n + 1, m=t.m), iteration_limit=limit, t=counter)
    assert snapshot(result) == [(limit, 100)]


def test_iteration_limit_beyond_the_fixed_point_changes_nothing() -> None:
    numbers = pw.debug.table_from_markdown("""
    n | steps
    6 | 0
    """)
    limited = pw.iterate(_collatz, iteration_limit=3, t=numbers)
    assert snapshot(limited) == [(5, 3)]
    free = pw.iterate(_collatz, iteration_limit=1000, t=numbers)
    assert snapshot(free) == [(1, 8)]


def test_result_column_order_is_the_inputs() -> None:
    t = pw.debug.table_from_markdown("""
    a | b
    1 | x
    """)
    result = pw.iterate(lambda t: t.select(b=t.b, a=t.a * 0), t=t)
    assert list(result.column_names()) == ["a", "b"]
    assert snapshot(result) == [(0, "x")]


def test_result_keeps_the_input_universe() -> None:
    t = pw.debug.table_from_markdown("""
    a | c
    1 | 0
    2 | 3
    """)
    other = t.select(x=t.c * 3)
    result = pw.iterate(lambda t: t.select(a=t.a * 2, c=t.c), iteration_limit=2, t=t)
    assert snapshot(result.select(result.a, other.x)) == [(4, 0), (8, 9)]
    grown = pw.iterate(
        lambda t: t.select(a=t.a * 2, c=t.c), iteration_limit=2, t=pw.iterate_universe(t)
    )
    with pytest.raises(ValueError):
        grown.select(grown.a, other.x)


def test_iterate_universe_shrinks_to_nothing() -> None:
    t = pw.debug.table_from_markdown("""
    foo
    1
    2
    3
    """)

    def drop_smallest(t: pw.Table) -> pw.Table:
        smallest = t.reduce(m=pw.reducers.min(t.foo))
        return t.filter(t.foo != smallest.ix_ref(context=t).m)

    result = pw.iterate(drop_smallest, t=pw.iterate_universe(t))
    assert snapshot(result) == []
    assert result.typehints() == t.typehints()


def test_iterate_universe_grows() -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    3
    """)

    def double(t: pw.Table) -> pw.Table:
        bigger = t.filter(t.a < 20).select(a=pw.this.a * 2)
        return t.concat_reindex(bigger).groupby(pw.this.a).reduce(pw.this.a)

    result = pw.iterate(double, t=pw.iterate_universe(t))
    assert snapshot(result) == [(1,), (2,), (3,), (4,), (6,), (8,), (12,), (16,), (24,), (32,)]


def test_nested_iterate() -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    5
    """)

    def outer(t: pw.Table) -> pw.Table:
        # inner: climb to the next multiple of 3; outer: step past it, up to 30
        inner = pw.iterate(lambda u: u.select(a=pw.if_else(u.a % 3 == 0, u.a, u.a + 1)), u=t)
        return inner.select(a=pw.if_else(inner.a < 30, inner.a + 1, inner.a))

    assert snapshot(pw.iterate(outer, t=t)) == [(30,), (30,)]


def test_body_reads_a_table_it_did_not_get() -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    5
    """)
    caps = pw.debug.table_from_markdown("""
    cap
    40
    """)

    def step(t: pw.Table) -> pw.Table:
        cap = caps.reduce(cap=pw.reducers.max(caps.cap))
        return t.select(a=pw.if_else(t.a * 2 <= cap.ix_ref(context=t).cap, t.a * 2, t.a))

    assert snapshot(pw.iterate(step, t=t)) == [(32,), (40,)]


def test_update_rows_and_read_only_table_in_body() -> None:
    t = pw.debug.table_from_markdown("""
      | a
    1 | 1
    2 | 2
    """)
    bump = pw.debug.table_from_markdown("""
      | by
    1 | 3
    """)

    def step(t: pw.Table, bump: pw.Table) -> dict[str, pw.Table]:
        total = bump.reduce(by=pw.reducers.sum(bump.by))
        small = t.filter(t.a < 10)
        bumped = small.select(a=small.a + total.ix_ref(context=small).by)
        return {"t": t.update_rows(bumped).with_universe_of(t)}

    result = pw.iterate(step, t=t, bump=bump)
    assert list(result.keys()) == ["t"]
    assert snapshot(result.t) == [(10,), (11,)]


# --- result shapes ------------------------------------------------------------------------


def _pair() -> tuple[pw.Table, pw.Table]:
    t = pw.debug.table_from_markdown("""
    a
    1
    """)
    s = pw.debug.table_from_markdown("""
    x
    7
    """)
    return t, s


def test_body_returning_a_table_iterates_the_first_argument() -> None:
    t, s = _pair()
    result = pw.iterate(lambda t, s: t.select(a=t.a + 1), iteration_limit=3, t=t, s=s)
    assert isinstance(result, pw.Table)
    assert snapshot(result) == [(4,)]


def test_body_returning_a_dict_gives_a_mapping_in_argument_order() -> None:
    t, s = _pair()
    result = pw.iterate(
        lambda t, s: {"s": s, "t": t.select(a=t.a + 1)}, iteration_limit=2, t=t, s=s
    )
    assert list(result.keys()) == ["t", "s"]
    assert len(result) == 2 and "t" in result and "z" not in result
    assert result["t"] is result.t
    assert [list(tb.column_names()) for tb in result] == [["a"], ["x"]]
    assert snapshot(result.t) == [(3,)] and snapshot(result.s) == [(7,)]
    with pytest.raises(AttributeError):
        _ = result.z
    with pytest.raises(KeyError):  # (what Pathway raises)
        _ = result.z


def test_body_returning_a_tuple_gives_a_tuple() -> None:
    t, s = _pair()
    result = pw.iterate(lambda t, s: (t.select(a=t.a + 1), s), iteration_limit=2, t=t, s=s)
    assert isinstance(result, tuple) and len(result) == 2
    assert snapshot(result[0]) == [(3,)]
    single = pw.iterate(lambda t, s: [t.select(a=t.a + 1)], iteration_limit=2, t=t, s=s)
    assert isinstance(single, tuple) and len(single) == 1


def test_func_is_called_once_with_tables_of_the_same_schema() -> None:
    t, s = _pair()
    calls: list[dict[str, Any]] = []

    def body(t: pw.Table, s: pw.Table) -> pw.Table:
        calls.append({"t": t.typehints(), "s": s.typehints()})
        return t

    pw.iterate(body, t=t, s=s)
    assert calls == [{"t": {"a": int}, "s": {"x": int}}]


# --- errors when the iteration is defined ---------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1])
def test_non_positive_limit_is_a_value_error(limit: int) -> None:
    t, _ = _pair()
    with pytest.raises(ValueError, match="iteration_limit"):
        pw.iterate(lambda t: t, iteration_limit=limit, t=t)


@pytest.mark.parametrize("limit", [2.5, "3"])
def test_non_int_limit_is_a_type_error(limit: Any) -> None:
    t, _ = _pair()
    with pytest.raises(TypeError, match="iteration_limit"):
        pw.iterate(lambda t: t, iteration_limit=limit, t=t)


def test_bad_arguments_are_type_errors() -> None:
    t, _ = _pair()
    with pytest.raises(TypeError, match="t="):
        pw.iterate(lambda t: t, t=5)
    with pytest.raises(TypeError, match="callable"):
        pw.iterate(5, t=t)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keyword"):
        pw.iterate(lambda: t)
    with pytest.raises(TypeError):
        pw.iterate(lambda u: u, t=t)  # the function has no parameter t
    with pytest.raises(TypeError):
        pw.iterate_universe(5)  # type: ignore[arg-type]


def test_bad_results_of_the_body() -> None:
    t, s = _pair()
    with pytest.raises(TypeError, match="return"):
        pw.iterate(lambda t: 5, t=t)
    with pytest.raises(ValueError, match="z"):
        pw.iterate(lambda t, s: {"t": t, "z": s}, t=t, s=s)
    with pytest.raises(ValueError):
        pw.iterate(lambda t, s: (t, s, t), t=t, s=s)


@pytest.mark.parametrize(
    "body",
    [
        lambda t: t.select(a=t.a, extra=1),
        lambda t: t.select(b=t.a),
        lambda t: t.select(a=t.a * 0.5),
        lambda t: t.select(a=pw.if_else(t.a > 5, None, t.a)),
    ],
)
def test_schema_changes_are_value_errors(body: Any) -> None:
    t, _ = _pair()
    with pytest.raises(ValueError, match="correspond"):
        pw.iterate(body, t=t)


@pytest.mark.parametrize(
    "body",
    [
        lambda t: t.filter(t.a > 1),
        lambda t: t.groupby(t.a).reduce(t.a),
        lambda t: t.concat_reindex(t),
    ],
)
def test_changing_rows_needs_iterate_universe(body: Any) -> None:
    t, _ = _pair()
    with pytest.raises(ValueError, match="iterate_universe"):
        pw.iterate(body, t=t)
    pw.iterate(body, t=pw.iterate_universe(t))  # allowed when marked


def test_update_cells_and_update_rows_keep_the_universe() -> None:
    t = pw.debug.table_from_markdown("""
      | a | b
    1 | 1 | 10
    2 | 2 | 20
    """)
    cells = pw.iterate(lambda t: t << t.filter(t.a < 5).select(a=pw.this.a + 1), t=t)
    assert snapshot(cells) == [(5, 10), (5, 20)]
    rows = pw.iterate(lambda t: t.update_rows(t.select(a=t.a + 1, b=t.b)), iteration_limit=2, t=t)
    assert snapshot(rows) == [(3, 10), (4, 20)]


def test_with_universe_of_keeps_the_universe() -> None:
    t, _ = _pair()
    result = pw.iterate(lambda t: t.filter(t.a > 0).with_universe_of(t), t=t)
    assert snapshot(result) == [(1,)]


# --- update streams -----------------------------------------------------------------------


def test_component_split_by_a_deletion_is_recomputed() -> None:
    # Continuing from the old fixed point would keep label 1 on 3 and 4: wrong.
    edges = _edges("""
      | u | v | __time__ | __diff__
    1 | 1 | 2 | 2        | 1
    2 | 2 | 3 | 2        | 1
    3 | 3 | 4 | 2        | 1
    2 | 2 | 3 | 4        | -1
    4 | 4 | 1 | 6        | 1
    """)
    assert stream(components(edges)) == [
        (2, 1, 1, 1),
        (2, 2, 1, 1),
        (2, 3, 1, 1),
        (2, 4, 1, 1),
        (4, 3, 1, -1),
        (4, 3, 3, 1),
        (4, 4, 1, -1),
        (4, 4, 3, 1),
        (6, 3, 1, 1),
        (6, 3, 3, -1),
        (6, 4, 1, 1),
        (6, 4, 3, -1),
    ]


def test_shortest_path_grows_after_an_edge_is_removed() -> None:
    edges = _edges("""
      | u | v | w | __time__ | __diff__
    1 | 1 | 2 | 5 | 2        | 1
    2 | 1 | 3 | 1 | 2        | 1
    3 | 3 | 2 | 1 | 2        | 1
    3 | 3 | 2 | 1 | 4        | -1
    3 | 3 | 2 | 9 | 4        | 1
    """)
    assert stream(distances(edges, 1)) == [
        (2, 1, 0, 1),
        (2, 2, 2, 1),
        (2, 3, 1, 1),
        (4, 2, 2, -1),
        (4, 2, 5, 1),
    ]


def test_read_only_input_change_reaches_every_round() -> None:
    t = pw.debug.table_from_markdown("""
    a | __time__
    1 | 2
    """)
    caps = pw.debug.table_from_markdown("""
      | cap | __time__ | __diff__
    1 | 10  | 2        | 1
    1 | 10  | 4        | -1
    2 | 100 | 4        | 1
    3 | 3   | 6        | 1
    """)

    def step(t: pw.Table, caps: pw.Table) -> pw.Table:
        cap = caps.reduce(cap=pw.reducers.min(caps.cap))
        return t.select(a=pw.if_else(t.a * 2 <= cap.ix_ref(context=t).cap, t.a * 2, t.a))

    assert stream(pw.iterate(step, t=t, caps=caps)) == [
        (2, 8, 1),
        (4, 8, -1),
        (4, 64, 1),
        (6, 2, 1),
        (6, 64, -1),
    ]


def test_iteration_limit_on_a_stream() -> None:
    t = pw.debug.table_from_markdown("""
      | n | __time__ | __diff__
    1 | 0 | 2        | 1
    2 | 5 | 4        | 1
    1 | 0 | 6        | -1
    """)
    result = pw.iterate(lambda t: t.select(n=t.n + 1), iteration_limit=3, t=t)
    assert stream(result) == [(2, 3, 1), (4, 8, 1), (6, 3, -1)]


def test_rows_added_and_removed_under_iterate_universe() -> None:
    t = pw.debug.table_from_markdown("""
      | a | __time__ | __diff__
    1 | 1 | 2        | 1
    2 | 3 | 4        | 1
    1 | 1 | 6        | -1
    """)

    def double(t: pw.Table) -> pw.Table:
        bigger = t.filter(t.a < 5).select(a=pw.this.a * 2)
        return t.concat_reindex(bigger).groupby(pw.this.a).reduce(pw.this.a)

    assert stream(pw.iterate(double, t=pw.iterate_universe(t))) == [
        (2, 1, 1),
        (2, 2, 1),
        (2, 4, 1),
        (2, 8, 1),
        (4, 3, 1),
        (4, 6, 1),
        (6, 1, -1),
        (6, 2, -1),
        (6, 4, -1),
        (6, 8, -1),
    ]


def test_rounds_are_built_once_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    original = iterate_engine.BodyRound.__init__

    def counting(self: Any, body: Any) -> None:
        built.append(1)
        original(self, body)

    monkeypatch.setattr(iterate_engine.BodyRound, "__init__", counting)
    rows = ["u | v | __time__"] + [f"{i} | {i + 1} | 2" for i in range(1, 12)]
    rows += ["20 | 21 | 4", "30 | 31 | 6"]
    result = components(_edges("\n".join(rows)))
    changes = stream(result)
    # the path of 12 vertices needs about 12 rounds at time 2; later, small components
    # converge within the rounds that exist: no round is built again
    assert 11 <= len(built) <= 14
    assert [c for c in changes if c[0] > 2] == [
        (4, 20, 20, 1),
        (4, 21, 20, 1),
        (6, 30, 30, 1),
        (6, 31, 30, 1),
    ]


# --- the examples of docs/iterate.md --------------------------------------------------------


def _doc_examples() -> list[tuple[str, str]]:
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "iterate.md").read_text()
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_doc_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = _doc_examples()[index]
    exec(compile(code, f"docs/iterate.md example {index}", "exec"), {})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]


def test_run_all_computes_the_result_and_not_the_body() -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    5
    """)
    result = pw.iterate(lambda t: t.select(a=pw.if_else(t.a < 10, t.a + 1, t.a)), t=t)
    seen: list[int] = []
    pw.io.subscribe(result, on_change=lambda key, row, time, is_addition: seen.append(row["a"]))
    pw.run_all()
    assert seen == [10, 10]


def test_a_body_table_used_outside_is_an_error() -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    """)
    leaked: list[pw.Table] = []

    def body(t: pw.Table) -> pw.Table:
        leaked.append(t.select(b=t.a))
        return t

    pw.iterate(body, t=t)
    with pytest.raises(ValueError, match="inside the body of pw.iterate"):
        pw.debug.table_to_dicts(leaked[0])


def _ping_pong(a: pw.Table, b: pw.Table) -> Any:
    """Two iterated tables feeding each other: per key, each climbs to one more than the
    other, up to 10 (a key present on one side only keeps its start value)."""

    def step(a: pw.Table, b: pw.Table) -> tuple[pw.Table, pw.Table]:
        def climb(mine: pw.Table, other: pw.Table) -> pw.Table:
            pairs = mine.join_left(other, mine.k == other.k, id=mine.id).select(
                mine.k, own=mine.v, offer=pw.coalesce(other.v, mine.v - 1) + 1
            )
            return pairs.select(
                pw.this.k,
                v=pw.if_else(
                    (pw.this.offer > pw.this.own) & (pw.this.offer <= 10),
                    pw.this.offer,
                    pw.this.own,
                ),
            )

        return climb(a, b), climb(b, a)

    return pw.iterate(step, a=a, b=b)


def test_two_iterated_tables() -> None:
    a = pw.debug.table_from_markdown("""
      | k | v | __time__ | __diff__
    1 | 1 | 0 | 2        | 1
    2 | 2 | 7 | 2        | 1
    """)
    b = pw.debug.table_from_markdown("""
      | k | v | __time__ | __diff__
    1 | 1 | 3 | 2        | 1
    1 | 1 | 3 | 4        | -1
    """)
    new_a, new_b = _ping_pong(a, b)
    assert stream(new_a) == [(2, 1, 10, 1), (2, 2, 7, 1), (4, 1, 0, 1), (4, 1, 10, -1)]
    assert stream(new_b) == [(2, 1, 9, 1), (4, 1, 9, -1)]


def test_kept_contents_stay_proportional_to_the_table() -> None:
    import polars as pl

    contents = iterate_engine.Contents(["_id", "x", "_diff"])

    def change(x: int, diff: int) -> pl.DataFrame:
        return pl.DataFrame({"_id": pl.Series([7], dtype=pl.UInt128), "x": [x], "_diff": [diff]})

    contents.add(change(0, 1))
    for x in range(1, 3_000):  # one row updated over and over
        contents.add(change(x - 1, -1))
        contents.add(change(x, 1))
    assert sum(part.height for part in contents.parts) < 4096  # compacted once
    frame = contents.frame()
    assert frame is not None and frame.rows() == [(7, 2_999, 1)]


def test_body_returning_a_table_it_did_not_compute_from_the_argument() -> None:
    t = pw.debug.table_from_markdown("""
      | a | __time__
    1 | 1 | 2
    """)
    other = pw.debug.table_from_markdown("""
      | a | __time__ | __diff__
    5 | 7 | 2        | 1
    5 | 7 | 4        | -1
    6 | 8 | 4        | 1
    """)
    result = pw.iterate(lambda t: other, t=pw.iterate_universe(t))
    assert stream(result) == [(2, 7, 1), (4, 7, -1), (4, 8, 1)]


def test_error_values_inside_the_body() -> None:
    t = pw.debug.table_from_markdown("""
      | a | __time__
    1 | 1 | 2
    2 | 0 | 2
    3 | 2 | 4
    """)
    result = pw.iterate(lambda t: t.select(a=pw.if_else(t.a < 10, t.a + 10 // t.a, t.a)), t=t)
    seen: list[tuple[int, int, bool]] = []
    pw.io.subscribe(
        result,
        on_change=lambda key, row, time, is_addition: seen.append((time, row["a"], is_addition)),
    )
    pw.run(terminate_on_error=False)  # the row dividing by zero holds an error: not written
    assert seen == [(2, 11, True), (4, 10, True)]
