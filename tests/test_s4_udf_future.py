"""The ``Future[T]`` type of fully asynchronous UDFs, ``await_futures()``, and the disk cache's
size limit."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests._util import snapshot, stream

import deltaflow as pw


@pw.udf(executor=pw.udfs.fully_async_executor())
async def inc(a: int) -> int:
    await asyncio.sleep(0)
    return a + 1


@pw.udf(executor=pw.udfs.async_executor())
async def inc_async(a: int) -> int:
    return a + 1


def _with_future() -> pw.Table:
    t = pw.debug.table_from_markdown("a | b\n1 | 10\n2 | 20\n3 | 30")
    return t.with_columns(ret=inc(pw.this.a))


def test_the_column_is_a_future_until_awaited() -> None:
    t = _with_future()
    assert t.schema.typehints()["ret"] == asyncio.Future[int]
    assert t.schema.typehints()["a"] is int
    awaited = t.await_futures()
    assert awaited.schema.typehints() == {"a": int, "b": int, "ret": int}
    assert snapshot(awaited) == [(1, 10, 2), (2, 20, 3), (3, 30, 4)]


@pw.udf
def plain(a: int) -> int:
    return a


@pw.udf
async def other_async(a: int) -> int:
    return a


REFUSED: dict[str, Callable[[pw.Table], Any]] = {
    "arithmetic": lambda t: t.select(x=t.ret + 1),
    "comparison": lambda t: t.select(x=t.ret == 2),
    "negation": lambda t: t.select(x=-t.ret),
    "filter": lambda t: t.filter(t.ret > 2),
    "plain udf": lambda t: t.select(x=plain(t.ret)),
    "async udf": lambda t: t.select(x=other_async(t.ret)),
    "pw.apply": lambda t: t.select(x=pw.apply(lambda v: v, t.ret)),
    "is_none": lambda t: t.select(x=t.ret.is_none()),
    "is_not_none": lambda t: t.select(x=t.ret.is_not_none()),
    "coalesce": lambda t: t.select(x=pw.coalesce(t.ret, t.b)),
    "if_else": lambda t: t.select(x=pw.if_else(t.a > 2, t.ret, 2)),
    "make_tuple": lambda t: t.select(x=pw.make_tuple(t.ret, 2)),
    "pointer_from": lambda t: t.select(x=t.pointer_from(t.ret)),
    "require": lambda t: t.select(x=pw.require(t.ret, t.a)),
    "fill_error": lambda t: t.select(x=pw.fill_error(t.ret, 0)),
    "groupby key": lambda t: t.groupby(t.ret),
    "groupby instance": lambda t: t.groupby(t.a, instance=t.ret),
    "reducer": lambda t: t.reduce(s=pw.reducers.sum(t.ret)),
    "grouped reducer": lambda t: t.groupby(t.b).reduce(s=pw.reducers.max(t.ret)),
    "sort key": lambda t: t.sort(t.ret),
    "sort instance": lambda t: t.sort(t.a, instance=t.ret),
    "deduplicate value": lambda t: t.deduplicate(value=t.ret, acceptor=lambda n, o: n > o),
    "deduplicate instance": lambda t: t.deduplicate(
        value=t.a, instance=t.ret, acceptor=lambda n, o: n > o
    ),
    "join key": lambda t: t.join(pw.debug.table_from_markdown("k\n2"), t.ret == pw.right.k),
    "flatten": lambda t: t.flatten(t.ret),
    "windowby": lambda t: t.windowby(t.ret, window=pw.temporal.tumbling(2)).reduce(
        n=pw.reducers.count()
    ),
}


@pytest.mark.parametrize("operation", sorted(REFUSED))
def test_reading_a_future_is_refused_when_defined(operation: str) -> None:
    # every refusal says what to do (also where the types would not fit anyway)
    with pytest.raises(TypeError, match="await_futures"):
        REFUSED[operation](_with_future())


@pytest.mark.parametrize(
    "operation",
    [
        "arithmetic",
        "groupby key",
        "reducer",
        "sort key",
        "deduplicate value",
        "join key",
        "plain udf",
    ],
)
def test_after_await_futures_the_same_operations_work(operation: str) -> None:
    REFUSED[operation](_with_future().await_futures())


def test_allowed_uses_of_a_future_column() -> None:
    t = _with_future()
    passed = t.select(t.a, t.ret)
    assert passed.schema.typehints()["ret"] == asyncio.Future[int]
    chained = t.select(x=inc(t.ret))  # another fully asynchronous UDF may take it
    assert chained.schema.typehints()["x"] == asyncio.Future[int]
    cast = t.select(f=pw.cast(float, t.ret))
    assert cast.schema.typehints() == {"f": float}
    assert snapshot(cast) == [(2.0,), (3.0,), (4.0,)]
    both = t.concat_reindex(t)
    assert both.schema.typehints()["ret"] == asyncio.Future[int]
    assert len(snapshot(both)) == 6
    other = pw.debug.table_from_markdown("k | c\n1 | 5")
    joined = t.join(other, t.a == other.k).select(t.ret, other.c)
    assert snapshot(joined.await_futures()) == [(2, 5)]
    assert snapshot(chained.await_futures()) == [(3,), (4,), (5,)]
    assert snapshot(t.await_futures().reduce(s=pw.reducers.sum(pw.this.ret))) == [(9,)]


def test_future_values_reach_outputs(tmp_path: Path) -> None:
    t = _with_future()
    seen: list[int] = []
    pw.io.subscribe(t, lambda key, row, time, is_addition: seen.append(row["ret"]))
    pw.io.csv.write(t.select(pw.this.ret), tmp_path / "out.csv")
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert sorted(seen) == [2, 3, 4]
    assert "4" in (tmp_path / "out.csv").read_text()


def test_update_stream_of_a_fully_async_udf() -> None:
    t = pw.debug.table_from_markdown("""
          | a | __time__ | __diff__
        1 | 1 | 2        | 1
        2 | 5 | 2        | 1
        1 | 1 | 4        | -1
        1 | 7 | 4        | 1
        2 | 5 | 6        | -1
    """)
    result = t.select(ret=inc(pw.this.a)).await_futures()
    assert stream(result) == [(2, 2, 1), (2, 6, 1), (4, 2, -1), (4, 8, 1), (6, 6, -1)]


@settings(max_examples=20, deadline=None)
@given(
    changes=st.lists(
        st.tuples(st.integers(0, 4), st.integers(-5, 5), st.booleans()), min_size=1, max_size=10
    )
)
def test_awaited_fully_async_equals_async_at_every_time(
    changes: list[tuple[int, int, bool]],
) -> None:
    """Random inserts/deletes by key: after await_futures, the fully asynchronous UDF's
    update stream is the asynchronous one's (deltaflow delivers results in the row's time)."""
    alive: dict[int, int] = {}
    lines = []
    for time, (key, value, insert) in enumerate(changes, start=1):
        if key in alive:
            lines.append(f"{key} | {alive.pop(key)} | {2 * time} | -1")
        if insert:
            alive[key] = value
            lines.append(f"{key} | {value} | {2 * time} | 1")
    if not lines:
        return
    markdown = "  | a | __time__ | __diff__\n" + "\n".join(lines)

    def run(udf: Any, wait: bool) -> list[tuple]:
        pw.clear_graph()
        table = pw.debug.table_from_markdown(markdown)
        result = table.select(table.a, r=udf(pw.this.a))
        return stream(result.await_futures() if wait else result)

    assert run(inc, True) == run(inc_async, False)


# --- the disk cache's size limit -------------------------------------------------------------
def _cached_run(size_limit: int) -> list[tuple]:
    @pw.udf(deterministic=True, cache_strategy=pw.udfs.DiskCache(size_limit=size_limit))
    def double(a: int) -> int:
        return 2 * a

    table = pw.debug.table_from_markdown("a\n1\n2")
    config = pw.persistence.Config(
        pw.persistence.Backend.filesystem(tempfile.mkdtemp()),
        persistence_mode=pw.PersistenceMode.UDF_CACHING,
    )
    return snapshot_with(table.select(r=double(pw.this.a)), persistence_config=config)


def snapshot_with(table: pw.Table, **options: Any) -> list[tuple]:
    rows = pw.debug.table_to_stream(table, **options)
    return sorted((row["r"],) for _, row, diff in rows if diff > 0)


def test_a_size_limit_below_the_database_pages_holds_nothing() -> None:
    with pytest.raises(KeyError, match="size_limit=10"):
        _cached_run(10)


def test_a_roomy_size_limit_caches() -> None:
    assert _cached_run(1 << 20) == [(2,), (4,)]


def test_propagate_none_keeps_the_future() -> None:
    @pw.udf(executor=pw.udfs.fully_async_executor(), propagate_none=True)
    async def double(a: int) -> int:
        return 2 * a

    t = pw.debug.table_from_markdown("a\n1\nNone")
    result = t.select(d=double(pw.this.a))
    assert result.schema.typehints()["d"] == asyncio.Future[int | None]
    assert snapshot(result.await_futures()) == [(None,), (2,)]
