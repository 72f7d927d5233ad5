"""A cutoff bounds the state of a windowed aggregation: windows that can no longer change
are forgotten by the gates and dropped by the reduce (counted in state rows, not RSS)."""

from __future__ import annotations

import polars as pl
import pytest

import deltaflow as pw
from deltaflow import _types as t
from deltaflow.debug import _static_table
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import Sink
from deltaflow.engine.runtime import Runtime
from deltaflow.engine.stateful.reduce import ReduceOperator
from deltaflow.plan import OutputNode

EVENTS = 2_000_000
PER_TIME = 20_000
PER_UNIT = 10  # events per unit of event time


class StateProbe(Sink):
    """Records, after every time, the rows held by the run's stateful operators."""

    name = "probe"

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.largest = 0
        self.times = 0
        self.windows: dict[int, int] = {}

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        for start, count, diff in batch.select("start", "c", DIFF).iter_rows():
            if diff > 0:
                self.windows[start] = count

    def on_time_end(self, time: int) -> None:
        assert self.runtime is not None
        self.times += 1
        self.largest = max(self.largest, state_rows(self.runtime))


def state_rows(runtime: Runtime) -> int:
    total = 0
    for op in runtime.operators:
        if hasattr(op, "state_rows"):
            total += op.state_rows()
        if isinstance(op, ReduceOperator):
            total += op.groups.size + (op.rows.size if op.rows is not None else 0)
    return total


def events() -> pw.Table:
    batches = []
    for first in range(0, EVENTS, PER_TIME):
        index = pl.int_range(first, first + PER_TIME, eager=True)
        batches.append(
            (
                2 * (first // PER_TIME + 1),
                pl.DataFrame(
                    {
                        ID: index.cast(pl.UInt128),
                        "t": index // PER_UNIT,
                        "v": index % 7,
                        DIFF: pl.repeat(1, PER_TIME, dtype=pl.Int64, eager=True),
                    }
                ),
            )
        )
    return _static_table({"t": t.INT, "v": t.INT}, batches, label="events", consolidated=True)


@pytest.mark.parametrize("keep_results", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_a_cutoff_keeps_the_state_of_a_long_stream_bounded(keep_results: bool) -> None:
    table = events()
    result = table.windowby(
        table.t,
        window=pw.temporal.tumbling(100),
        behavior=pw.temporal.common_behavior(cutoff=10, keep_results=keep_results),
    ).reduce(start=pw.this._pw_window_start, c=pw.reducers.count())
    probe = StateProbe()
    output = OutputNode(
        columns=dict(result._columns), inputs=(result._node,), sink=probe, label="probe"
    )
    runtime = Runtime([output])
    probe.runtime = runtime
    runtime.run()
    assert probe.times >= EVENTS // PER_TIME
    # Two windows of 100 time units (1,000 rows each) and one time's batch may be live;
    # the stream is 2M rows long.
    assert probe.largest < 3 * PER_TIME, probe.largest
    windows = EVENTS // PER_UNIT // 100
    if keep_results:  # every window's count stays, at its full value
        assert len(probe.windows) == windows
        assert set(probe.windows.values()) == {100 * PER_UNIT}
