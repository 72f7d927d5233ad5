"""Async UDFs: concurrency within a minibatch, capacity, timeouts, retries, AsyncTransformer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import deltaflow as pw
from _util import snapshot, stream

TEN_ROWS = "x\n" + "\n".join(str(i) for i in range(10))


def _timed(table: pw.Table) -> tuple[list[tuple], float]:
    start = time.perf_counter()
    rows = snapshot(table)
    return rows, time.perf_counter() - start


def test_async_udf_calls_of_a_minibatch_run_concurrently() -> None:
    @pw.udf
    async def slow(x: int) -> int:
        await asyncio.sleep(0.1)
        return x + 1

    t = pw.debug.table_from_markdown(TEN_ROWS)
    rows, elapsed = _timed(t.select(y=slow(pw.this.x)))
    assert rows == [(i + 1,) for i in range(10)]
    assert elapsed < 0.6  # ten calls of 0.1 s, concurrently (sequentially: 1 s)


def test_capacity_limits_concurrency() -> None:
    in_flight = [0, 0]  # current, highest

    @pw.udf(executor=pw.udfs.async_executor(capacity=2))
    async def slow(x: int) -> int:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await asyncio.sleep(0.05)
        in_flight[0] -= 1
        return x

    t = pw.debug.table_from_markdown("x\n1\n2\n3\n4\n5\n6")
    rows, elapsed = _timed(t.select(y=slow(pw.this.x)))
    assert len(rows) == 6
    assert in_flight[1] == 2
    assert elapsed >= 0.15


def test_sync_function_with_async_executor_runs_in_threads() -> None:
    @pw.udf(executor=pw.udfs.async_executor())
    def blocking(x: int) -> int:
        time.sleep(0.1)
        return x * 2

    t = pw.debug.table_from_markdown("x\n1\n2\n3\n4")
    rows, elapsed = _timed(t.select(y=blocking(pw.this.x)))
    assert rows == [(2,), (4,), (6,), (8,)]
    assert elapsed < 0.35


def test_apply_async_is_concurrent() -> None:
    async def slow(x: int) -> int:
        await asyncio.sleep(0.1)
        return -x

    t = pw.debug.table_from_markdown(TEN_ROWS)
    rows, elapsed = _timed(t.select(y=pw.apply_async(slow, pw.this.x)))
    assert sorted(r[0] for r in rows) == [-i for i in range(10)][::-1]
    assert elapsed < 0.6


def test_timeout_fails_the_run_with_timeout_error() -> None:
    @pw.udf(executor=pw.udfs.async_executor(timeout=0.05))
    async def slow(x: int) -> int:
        await asyncio.sleep(1)
        return x

    t = pw.debug.table_from_markdown("x\n1")
    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        snapshot(t.select(y=slow(pw.this.x)))
    assert time.perf_counter() - start < 0.8


def test_retries_are_counted_and_timeout_bounds_each_attempt() -> None:
    attempts: list[int] = []

    @pw.udf(
        executor=pw.udfs.async_executor(
            timeout=0.05, retry_strategy=pw.udfs.FixedDelayRetryStrategy(max_retries=2, delay_ms=1)
        )
    )
    async def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            await asyncio.sleep(1)  # the first two attempts time out
        return x * 10

    t = pw.debug.table_from_markdown("x\n7")
    assert snapshot(t.select(y=flaky(pw.this.x))) == [(70,)]
    assert attempts == [7, 7, 7]


def test_retries_give_up_after_max_retries() -> None:
    attempts: list[int] = []

    @pw.udf(
        executor=pw.udfs.async_executor(
            retry_strategy=pw.udfs.ExponentialBackoffRetryStrategy(
                max_retries=3, initial_delay=1, backoff_factor=2, jitter_ms=0
            )
        )
    )
    async def broken(x: int) -> int:
        attempts.append(x)
        raise ValueError("nope")

    t = pw.debug.table_from_markdown("x\n1\n2")
    with pytest.raises(ValueError, match="nope"):
        snapshot(t.select(y=broken(pw.this.x)))
    assert sorted(attempts) == [1, 1, 1, 1, 2, 2, 2, 2]
    strategy = pw.udfs.ExponentialBackoffRetryStrategy(
        max_retries=3, initial_delay=100, backoff_factor=3
    )
    assert strategy.delays() == pytest.approx([0.1, 0.3, 0.9])


def test_async_udf_on_update_stream_and_propagate_none() -> None:
    calls: list[Any] = []

    @pw.udf(propagate_none=True)
    async def double(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.01)
        return 2 * x

    t = pw.debug.table_from_markdown("""
      | x | __time__ | __diff__
    1 | 1 | 2        | 1
    2 |   | 2        | 1
    1 | 1 | 4        | -1
    3 | 4 | 4        | 1
    """)
    assert stream(t.select(y=double(pw.this.x))) == [(2, None, 1), (2, 2, 1), (4, 2, -1), (4, 8, 1)]
    assert calls == [1, 4]


def test_batched_async_udf() -> None:
    @pw.udf(max_batch_size=2)
    async def add_one(xs: list[int]) -> list[int]:
        await asyncio.sleep(0.01)
        return [x + 1 for x in xs]

    t = pw.debug.table_from_markdown("x\n1\n2\n3")
    assert snapshot(t.select(y=add_one(pw.this.x))) == [(2,), (3,), (4,)]


def test_wrappers() -> None:
    calls: list[int] = []

    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    cached = pw.udfs.with_cache_strategy(pw.udfs.coerce_async(inc), pw.udfs.InMemoryCache())
    limited = pw.udfs.with_capacity(cached, 1)
    bounded = pw.udfs.with_timeout(limited, 1.0)
    retried = pw.udfs.with_retry_strategy(bounded, pw.udfs.NoRetryStrategy())

    async def main() -> list[int]:
        return list(await asyncio.gather(retried(1), retried(1), retried(2)))

    assert asyncio.run(main()) in ([2, 2, 3],)
    assert sorted(set(calls)) == [1, 2]
    decorated = pw.udfs.async_options(timeout=1.0)(inc)
    assert asyncio.run(decorated(5)) == 6


class _Out(pw.Schema):
    y: int


class _Doubler(pw.AsyncTransformer, output_schema=_Out):
    async def invoke(self, x: int) -> dict[str, Any]:
        await asyncio.sleep(0.05)
        if x == 2:
            raise ValueError("two is refused")
        return {"y": 2 * x}


def test_async_transformer_tables() -> None:
    t = pw.debug.table_from_markdown("""
      | x | __time__ | __diff__
    1 | 1 | 2        | 1
    2 | 2 | 2        | 1
    3 | 3 | 4        | 1
    1 | 1 | 6        | -1
    """)
    transformer = _Doubler(input_table=t)
    assert transformer.successful.schema.typehints() == {"y": int}
    assert transformer.output_table.schema.typehints() == {"_async_status": str, "y": int | None}
    assert snapshot(transformer.successful) == [(6,)]
    assert snapshot(transformer.failed) == [(None,)]
    assert snapshot(transformer.finished) == [("-FAILURE-", None), ("-SUCCESS-", 6)]
    assert stream(transformer.successful) == [(2, 2, 1), (4, 6, 1), (6, 2, -1)]


def test_async_transformer_checks_signature_and_runs_concurrently() -> None:
    t = pw.debug.table_from_markdown(TEN_ROWS.replace("x", "z", 1))
    with pytest.raises(TypeError, match="invoke"):
        _Doubler(input_table=t)
    t2 = pw.debug.table_from_markdown("x\n" + "\n".join(str(i) for i in range(3, 13)))
    transformer = _Doubler(input_table=t2).with_options(capacity=10)
    rows, elapsed = _timed(transformer.successful)
    assert len(rows) == 10
    assert elapsed < 0.4


class _Picky(pw.AsyncTransformer, output_schema=_Out):
    async def invoke(self, x: int, group: int) -> dict[str, Any]:
        if x < 0:
            raise ValueError("negative")
        return {"y": x}


def test_async_transformer_failure_fails_its_whole_instance() -> None:
    t = pw.debug.table_from_markdown("x | group\n1 | 1\n-1 | 1\n2 | 2\n3 | 2")
    transformer = _Picky(input_table=t, instance=pw.this.group)
    assert snapshot(transformer.finished) == [
        ("-FAILURE-", None),
        ("-FAILURE-", None),
        ("-SUCCESS-", 2),
        ("-SUCCESS-", 3),
    ]
    per_row = _Picky(input_table=t)
    assert snapshot(per_row.successful) == [(1,), (2,), (3,)]


def test_async_transformer_column_checks() -> None:
    t = pw.debug.table_from_markdown("x | extra\n1 | 2")
    with pytest.raises(TypeError, match="Input table has a column 'extra'"):
        _Doubler(input_table=t)
    t2 = pw.debug.table_from_markdown("x\n1")
    with pytest.raises(TypeError, match="Column 'group' is present on the argument list"):
        _Picky(input_table=t2)
    t3 = pw.debug.table_from_markdown("x | group\n1 | 1")
    with pytest.raises(ValueError, match="unhashable"):
        _Picky(input_table=t3, instance=pw.apply_with_type(lambda g: [g], list[int], pw.this.group))


def test_apply_awaits_coroutine_functions() -> None:
    async def inc(x: int) -> int:
        await asyncio.sleep(0.01)
        return x + 1

    t = pw.debug.table_from_markdown("x\n1\n2")
    assert snapshot(t.select(y=pw.apply(inc, pw.this.x))) == [(2,), (3,)]
    assert snapshot(t.select(y=pw.apply_with_type(inc, int, pw.this.x))) == [(2,), (3,)]


def test_async_udf_on_a_streaming_source_keeps_one_loop_per_run() -> None:
    import threading

    class Numbers(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for batch in ([1, 2], [3], [4, 5]):
                for x in batch:
                    self.next(x=x)
                self.commit()
            self.delete(x=1)
            self.commit()

    class Schema(pw.Schema):
        x: int

    loops: set[int] = set()

    @pw.udf
    async def tag(x: int) -> str:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0.01)
        return f"#{x}"

    t = pw.io.python.read(Numbers(), schema=Schema)
    changes: list[tuple[str, bool]] = []
    pw.io.subscribe(
        t.select(y=tag(pw.this.x)),
        on_change=lambda key, row, time, is_addition: changes.append((row["y"], is_addition)),
    )
    pw.run()
    assert sorted(changes) == [
        ("#1", False),
        ("#1", True),
        ("#2", True),
        ("#3", True),
        ("#4", True),
        ("#5", True),
    ]
    assert len(loops) == 1  # one event loop served every minibatch of the run
    assert not [th for th in threading.enumerate() if th.name == "deltaflow-udf-loop"]


def test_async_transformer_results_persist_with_the_run(tmp_path) -> None:
    calls: list[int] = []

    class Plus(pw.AsyncTransformer, output_schema=pw.schema_from_types(ret=int)):
        async def invoke(self, value: int) -> dict[str, Any]:
            calls.append(value)
            return {"ret": value + 1}

    def run_once(persisted: bool) -> list[int]:
        pw.clear_graph()
        table = pw.debug.table_from_markdown("value\n1\n2\n3")
        result = Plus(input_table=table).successful
        config = (
            pw.persistence.Config(
                pw.persistence.Backend.filesystem(tmp_path / "store"),
                persistence_mode=pw.PersistenceMode.SELECTIVE_PERSISTING,
            )
            if persisted
            else None
        )
        got: list[int] = []
        pw.io.subscribe(result, lambda key, row, time, is_addition: got.append(row["ret"]))
        pw.run(persistence_config=config, monitoring_level=pw.MonitoringLevel.NONE)
        return sorted(got)

    assert run_once(persisted=True) == [2, 3, 4] and sorted(calls) == [1, 2, 3]
    assert run_once(persisted=True) == [2, 3, 4]
    assert len(calls) == 3  # the second persisted run reused every result
    assert run_once(persisted=False) == [2, 3, 4]
    assert len(calls) == 6  # without persistence nothing is kept
