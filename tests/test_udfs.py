"""pw.udfs: UDF options, sync/batched UDFs, deletions, caches, errors (async: test_udfs_async)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given

import deltaflow as pw
from _util import snapshot, stream
from test_stateful_properties import SETTINGS, Event, check, update_streams

STREAM = """
  | x | __time__ | __diff__
1 | 1 | 2        | 1
2 | 2 | 2        | 1
1 | 1 | 4        | -1
2 | 2 | 6        | -1
2 | 5 | 6        | 1
"""


def test_public_names_of_pw_udfs() -> None:
    expected = {
        "AsyncRetryStrategy",
        "CacheStrategy",
        "DefaultCache",
        "DiskCache",
        "ExponentialBackoffRetryStrategy",
        "FixedDelayRetryStrategy",
        "InMemoryCache",
        "NoRetryStrategy",
        "UDF",
        "async_executor",
        "async_options",
        "auto_executor",
        "coerce_async",
        "fully_async_executor",
        "sync_executor",
        "udf",
        "with_cache_strategy",
        "with_capacity",
        "with_retry_strategy",
        "with_timeout",
    }
    assert expected <= set(dir(pw.udfs))
    assert pw.UDF is pw.udfs.UDF
    assert isinstance(pw.udf(lambda x: x), pw.UDF)


def test_udf_with_annotations_kwargs_and_return_type() -> None:
    @pw.udf
    def add(a: int, b: int) -> int:
        return a + b

    @pw.udf(return_type=float)
    def half(a):  # noqa: ANN001, ANN202 - the type comes from return_type
        return a / 2

    t = pw.debug.table_from_markdown("a | b\n1 | 2\n3 | 4")
    r = t.select(s=add(pw.this.a, b=pw.this.b), h=half(pw.this.a))
    assert r.schema.typehints() == {"s": int, "h": float}
    assert snapshot(r) == [(3, 0.5), (7, 1.5)]


def test_udf_subclass_defines_wrapped() -> None:
    class AddK(pw.UDF):
        def __init__(self, k: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.k = k

        def __wrapped__(self, x: int) -> int:
            return x + self.k

    t = pw.debug.table_from_markdown("x\n1\n2")
    assert snapshot(t.select(y=AddK(10, deterministic=True)(pw.this.x))) == [(11,), (12,)]

    class Missing(pw.UDF):
        pass

    with pytest.raises(AttributeError, match="__wrapped__"):
        Missing()


def test_propagate_none_skips_the_call_and_makes_the_type_optional() -> None:
    calls: list[Any] = []

    @pw.udf(propagate_none=True)
    def add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    t = pw.debug.table_from_markdown("a | b\n1 |\n2 | 3")
    r = t.select(s=add(pw.this.a, pw.this.b))
    assert r.schema.typehints() == {"s": int | None}
    assert snapshot(r) == [(None,), (5,)]
    assert calls == [(2, 3)]


def test_deletions_recall_only_deterministic_udfs() -> None:
    calls: dict[str, list[int]] = {"det": [], "nondet": [], "apply": []}

    @pw.udf(deterministic=True)
    def det(x: int) -> int:
        calls["det"].append(x)
        return 2 * x

    @pw.udf
    def nondet(x: int) -> int:
        calls["nondet"].append(x)
        return 3 * x

    def plain(x: int) -> int:
        calls["apply"].append(x)
        return 4 * x

    t = pw.debug.table_from_markdown(STREAM)
    r = t.select(a=det(pw.this.x), b=nondet(pw.this.x), c=pw.apply(plain, pw.this.x))
    assert stream(r) == [
        (2, 2, 3, 4, 1),
        (2, 4, 6, 8, 1),
        (4, 2, 3, 4, -1),
        (6, 4, 6, 8, -1),
        (6, 10, 15, 20, 1),
    ]
    assert calls["det"] == [1, 2, 1, 2, 5]
    assert calls["nondet"] == [1, 2, 5]
    assert calls["apply"] == [1, 2, 5]


def test_nondeterministic_deletion_retracts_the_remembered_value() -> None:
    counter = iter(range(100))

    @pw.udf
    def stamp(x: int) -> int:
        return next(counter)

    t = pw.debug.table_from_markdown(STREAM)
    changes = stream(t.select(x=pw.this.x, s=stamp(pw.this.x)))
    # every retraction matches the insertion of the same row: the stream consolidates
    assert changes == [(2, 1, 0, 1), (2, 2, 1, 1), (4, 1, 0, -1), (6, 2, 1, -1), (6, 5, 2, 1)]


def test_memory_is_per_run() -> None:
    calls: list[int] = []

    @pw.udf
    def f(x: int) -> int:
        calls.append(x)
        return x

    t = pw.debug.table_from_markdown(STREAM)
    r = t.select(y=f(pw.this.x))
    assert stream(r) == stream(r)
    assert calls == [1, 2, 5, 1, 2, 5]


def test_udfs_in_filters_reductions_and_branches_on_streams() -> None:
    calls: list[int] = []

    @pw.udf
    def keep(x: int) -> bool:
        calls.append(x)
        return x != 2

    @pw.udf
    def tenfold(x: int) -> int:
        return 10 * x

    t = pw.debug.table_from_markdown(STREAM)
    kept = t.filter(keep(pw.this.x))
    assert stream(kept) == [(2, 1, 1), (4, 1, -1), (6, 5, 1)]
    assert calls == [1, 2, 5]  # deletions reuse the remembered predicate values
    total = t.reduce(s=pw.reducers.sum(tenfold(pw.this.x)))
    assert stream(total) == [(2, 30, 1), (4, 20, 1), (4, 30, -1), (6, 20, -1), (6, 50, 1)]
    branch = t.select(y=pw.if_else(pw.this.x > 1, tenfold(pw.this.x), -1))
    assert stream(branch) == [(2, -1, 1), (2, 20, 1), (4, -1, -1), (6, 20, -1), (6, 50, 1)]


def test_batched_udf_receives_lists() -> None:
    seen: list[tuple[list[int], list[int]]] = []

    @pw.udf(max_batch_size=2)
    def add(xs: list[int], ys: list[int]) -> list[int]:
        seen.append((list(xs), list(ys)))
        return [x + y for x, y in zip(xs, ys, strict=True)]

    t = pw.debug.table_from_markdown("x | y\n1 | 10\n2 | 20\n3 | 30")
    r = t.select(s=add(pw.this.x, pw.this.y))
    assert r.schema.typehints() == {"s": int}
    assert snapshot(r) == [(11,), (22,), (33,)]
    assert sorted(len(xs) for xs, _ in seen) == [1, 2]


def test_batched_udf_wrong_count_and_annotation() -> None:
    @pw.udf(max_batch_size=8, return_type=int)
    def short(xs: list[int]) -> list[int]:
        return xs[:-1]

    t = pw.debug.table_from_markdown("x\n1\n2")
    with pytest.raises(ValueError, match=r"number of rows produced by a UDF \(1\).*\(2\)"):
        snapshot(t.select(y=short(pw.this.x)))

    @pw.udf(max_batch_size=8)
    def not_a_list(xs: list[int]) -> int:
        return 0

    with pytest.raises(ValueError, match="has to return a list"):
        not_a_list(pw.this.x)


def test_option_errors_at_definition() -> None:
    with pytest.raises(ValueError, match="coroutine"):

        @pw.udf(executor=pw.udfs.sync_executor())
        async def f(x: int) -> int:
            return x

    with pytest.raises(ValueError, match="Batching is not supported"):

        @pw.udf(max_batch_size=4, executor=pw.udfs.fully_async_executor())
        async def g(x: list[int]) -> list[int]:
            return x

    with pytest.raises(TypeError, match="unexpected keyword argument"):
        pw.udf(lambda x: x, foo=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_batch_size"):
        pw.udf(lambda x: x, max_batch_size=0)
    with pytest.raises(TypeError, match="cache_strategy"):
        pw.udf(lambda x: x, cache_strategy="memory")
    with pytest.raises(ValueError, match="capacity"):
        pw.udfs.async_executor(capacity=0)


def test_warns_when_return_type_is_narrower_than_annotation() -> None:
    @pw.udf(return_type=int)
    def f(a: int) -> int | None:
        return a

    with pytest.warns(UserWarning, match="does not match the function's return annotation"):
        f(pw.this.a)


def test_failing_udf_stops_the_run_naming_function_and_row() -> None:
    @pw.udf
    def invert(x: int) -> float:
        return 1 / x

    t = pw.debug.table_from_markdown("x\n1\n0")
    with pytest.raises(pw.UdfError, match=r"'invert' failed on arguments \(0\)") as info:
        snapshot(t.select(y=invert(pw.this.x)))
    assert isinstance(info.value, ZeroDivisionError)  # what Pathway raises


def test_in_memory_cache_calls_once_per_argument() -> None:
    calls: list[int] = []

    @pw.udf(cache_strategy=pw.udfs.InMemoryCache())
    def f(x: int) -> int:
        calls.append(x)
        return x + 1

    t = pw.debug.table_from_markdown("""
      | x | __time__
    1 | 1 | 2
    2 | 1 | 2
    3 | 1 | 4
    4 | 2 | 4
    """)
    assert snapshot(t.select(y=f(pw.this.x))) == [(2,), (2,), (2,), (3,)]
    assert calls == [1, 2]

    uncached: list[int] = []

    @pw.udf(cache_strategy=pw.udfs.InMemoryCache(max_size=0))
    def g(x: int) -> int:
        uncached.append(x)
        return x

    snapshot(t.select(y=g(pw.this.x)))
    assert uncached == [1, 1, 1, 2]


def _write_run(tmp_path: Any, udf: Any, mode: Any) -> list[dict[str, Any]]:
    pw.clear_graph()
    t = pw.debug.table_from_markdown("x\n1\n2\n1")
    rows: list[dict[str, Any]] = []
    pw.io.subscribe(
        t.select(y=udf(pw.this.x)), on_change=lambda key, row, time, is_addition: rows.append(row)
    )
    config = pw.persistence.Config(
        pw.persistence.Backend.filesystem(tmp_path / "store"), persistence_mode=mode
    )
    pw.run(persistence_config=config)
    return rows


@pytest.mark.parametrize("mode", ["UDF_CACHING", "PERSISTING"])
def test_disk_cache_survives_runs(tmp_path: Any, mode: str) -> None:
    calls: list[int] = []

    @pw.udf(deterministic=True, cache_strategy=pw.udfs.DiskCache())
    def f(x: int) -> int:
        calls.append(x)
        return x * 10

    first = _write_run(tmp_path, f, getattr(pw.PersistenceMode, mode))
    assert sorted(r["y"] for r in first) == [10, 10, 20]
    assert sorted(calls) == [1, 2]
    if mode == "UDF_CACHING":  # inputs are not persisted: the rows come again, from the cache
        second = _write_run(tmp_path, f, pw.PersistenceMode.UDF_CACHING)
        assert sorted(r["y"] for r in second) == [10, 10, 20]
    assert sorted(calls) == [1, 2]
    stored = os.listdir(tmp_path / "store" / "runtime_calls")
    assert len(stored) == 1 and stored[0].endswith("f")


def test_disk_cache_needs_persistence() -> None:
    @pw.udf(cache_strategy=pw.udfs.DiskCache())
    def f(x: int) -> int:
        return x

    t = pw.debug.table_from_markdown("x\n1")
    os.environ.pop("PATHWAY_PERSISTENT_STORAGE", None)
    with pytest.raises(RuntimeError, match="no persistent storage"):
        snapshot(t.select(y=f(pw.this.x)))


def test_await_futures_keeps_every_row() -> None:
    @pw.udf(executor=pw.udfs.fully_async_executor())
    async def inc(x: int) -> int:
        return x + 1

    t = pw.debug.table_from_markdown("x\n1\n2")
    r = t.select(y=inc(pw.this.x)).await_futures()
    assert r.schema.typehints() == {"y": int}
    assert snapshot(r) == [(2,), (3,)]


@given(stream=update_streams())
@SETTINGS
def test_udfs_match_recomputation(stream: list[Event]) -> None:
    @pw.udf(deterministic=True)
    def det(k: int, v: int) -> int:
        return k * 10 + v

    @pw.udf
    def nondet(v: int) -> int:
        return v * v

    @pw.udf(max_batch_size=3)
    def batched(vs: list[int]) -> list[int]:
        return [v - 1 for v in vs]

    @pw.udf(cache_strategy=pw.udfs.InMemoryCache())
    async def cached_async(k: int) -> int:
        return k + 100

    def program(t: pw.Table) -> pw.Table:
        return t.select(
            a=det(pw.this.k, pw.this.v),
            b=nondet(pw.this.v),
            c=batched(pw.this.v),
            d=pw.apply(abs, pw.this.v),
            e=cached_async(pw.this.k),
        )

    check(program, stream)


# --- the examples of docs/udfs.md ------------------------------------------------------------


def _doc_examples() -> list[tuple[str, str]]:
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "udfs.md").read_text()
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_doc_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = _doc_examples()[index]
    exec(compile(code, f"docs/udfs.md example {index}", "exec"), {})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]
