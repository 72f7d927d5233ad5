"""The engine loop with live sources and sinks (the boundary the connectors build on)."""

from __future__ import annotations

import threading

import polars as pl
import pytest

import deltaflow as pw
from deltaflow._ids import hash_columns
from deltaflow._types import INT
from deltaflow.engine.boundary import ConnectorError, Sink, Source, SourceHandle
from deltaflow.table import add_output, input_table


def batch(values: list[int], diff: int = 1) -> pl.DataFrame:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Int64})
    return frame.with_columns(
        hash_columns(frame, [("v", INT)]).alias("_id"), pl.lit(diff, dtype=pl.Int64).alias("_diff")
    ).select("_id", "v", "_diff")


class ThreadSource(Source):
    def __init__(self, batches: list[pl.DataFrame], fail_with: Exception | None = None) -> None:
        self.batches = batches
        self.fail_with = fail_with
        self.name = "thread-source"
        self.stopped = threading.Event()

    def start(self, handle: SourceHandle) -> None:
        def work() -> None:
            for b in self.batches:
                handle.push(b)
                handle.wait_backlog_below(1, timeout=5)  # one batch at a time: separate times
            if self.fail_with is not None:
                handle.fail(self.fail_with)
            else:
                handle.finish()

        threading.Thread(target=work, daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()


class Recorder(Sink):
    def __init__(self, fail_on_flush: bool = False) -> None:
        self.name = "recorder"
        self.events: list[tuple] = []
        self.fail_on_flush = fail_on_flush
        self.ended = False

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        self.events.append(("batch", time, sorted(batch["v"].to_list())))

    def on_time_end(self, time: int) -> None:
        if self.fail_on_flush:
            raise OSError("disk full")
        self.events.append(("flush", time))

    def on_end(self) -> None:
        self.ended = True


def live_table(source: Source) -> pw.Table:
    return input_table(pw.schema_from_types(v=int), source, name="live")


def test_live_batches_get_increasing_even_times_and_flushes() -> None:
    source = ThreadSource([batch([1, 2]), batch([3]), batch([1], diff=-1)])
    sink = Recorder()
    add_output(live_table(source).select(v=pw.this.v * 10), sink)
    pw.run()
    batches = [e for e in sink.events if e[0] == "batch"]
    assert [e[2] for e in batches] == [[10, 20], [30], [10]]
    times = [e[1] for e in batches]
    assert times == sorted(set(times)) and all(t % 2 == 0 for t in times)
    # every batch is followed by the flush of its time
    for event in batches:
        position = sink.events.index(event)
        assert sink.events[position + 1] == ("flush", event[1])
    assert sink.ended and source.stopped.is_set()


def test_failing_source_stops_the_run_naming_it() -> None:
    source = ThreadSource([batch([1])], fail_with=OSError("connection reset"))
    add_output(live_table(source), Recorder())
    with pytest.raises(ConnectorError, match="live.*connection reset"):
        pw.run()
    assert source.stopped.is_set()


def test_failing_sink_stops_the_run() -> None:
    source = ThreadSource([batch([1])])
    add_output(live_table(source), Recorder(fail_on_flush=True))
    with pytest.raises(ConnectorError, match="recorder.*disk full"):
        pw.run()


def test_udf_error_names_function_and_row() -> None:
    def explode(v: int) -> int:
        raise ValueError("boom")

    t = pw.debug.table_from_markdown("v\n7")
    with pytest.raises(pw.UdfError, match=r"'explode' failed on arguments \(7\).*boom"):
        pw.debug.compute_and_print(t.select(x=pw.apply(explode, t.v)))


def test_run_without_outputs_is_a_no_op() -> None:
    pw.run()


def test_run_accepts_pathway_keywords() -> None:
    add_output(pw.debug.table_from_markdown("v\n1"), Recorder())
    pw.run(
        debug=False,
        monitoring_level=pw.MonitoringLevel.NONE,
        with_http_server=False,
        default_logging=True,
        persistence_config=None,
        runtime_typechecking=None,
        terminate_on_error=True,
        max_expression_batch_size=1024,
        event_loop=None,
        udf_cache_directory=None,
    )


def test_two_inputs_given_one_name_are_refused_before_anything_runs(tmp_path) -> None:
    for number in (1, 2):
        (tmp_path / f"{number}.txt").write_text(f"line {number}\n")
    first = pw.io.plaintext.read(tmp_path / "1.txt", name="shared", mode="static")
    second = pw.io.plaintext.read(tmp_path / "2.txt", name="shared", mode="static")
    seen: list[str] = []
    pw.io.subscribe(first, lambda key, row, time, is_addition: seen.append(row["data"]))
    pw.io.subscribe(second, lambda key, row, time, is_addition: seen.append(row["data"]))
    with pytest.raises(
        ValueError, match=r"two connectors have the name 'shared' \(an input defined at .*"
    ):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert seen == []  # refused before any input was read
    # Default names (no name= given) may repeat: two reads of one path run fine.
    pw.clear_graph()
    again = [pw.io.plaintext.read(tmp_path / "1.txt", mode="static") for _ in range(2)]
    for table in again:
        pw.io.subscribe(table, lambda key, row, time, is_addition: seen.append(row["data"]))
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert seen == ["line 1", "line 1"]


def test_an_input_and_an_output_given_one_name_are_refused(tmp_path) -> None:
    """Names are unique among inputs and outputs together, as in Pathway: a streaming read
    named like an output fails at once instead of running for ever."""
    (tmp_path / "in.txt").write_text("hello\n")
    table = pw.io.plaintext.read(tmp_path / "in.txt", name="one")  # streaming
    pw.io.jsonlines.write(table, tmp_path / "out.jsonl", name="one")
    with pytest.raises(ValueError, match=r"'one' \(an input defined at .* an output defined at"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    for make_outputs in (
        lambda t: [pw.io.subscribe(t, lambda **kw: None, name="two") for _ in range(2)],
        lambda t: [pw.io.csv.write(t, tmp_path / f"{n}.csv", name="two") for n in range(2)],
        lambda t: [pw.io.null.write(t, name="two"), pw.io.python.write(t, Observer(), name="two")],
    ):
        pw.clear_graph()
        make_outputs(pw.io.plaintext.read(tmp_path / "in.txt", mode="static"))
        with pytest.raises(ValueError, match=r"'two' \(an output defined at .* an output"):
            pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    # Outputs with default names may repeat.
    pw.clear_graph()
    table = pw.io.plaintext.read(tmp_path / "in.txt", mode="static")
    pw.io.csv.write(table, tmp_path / "a.csv")
    pw.io.csv.write(table, tmp_path / "b.csv")
    pw.io.null.write(table)
    pw.io.null.write(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert (tmp_path / "b.csv").read_text().count("hello") == 1


class Observer(pw.io.python.ConnectorObserver):
    def on_change(self, key, row, time, is_addition) -> None:
        pass
