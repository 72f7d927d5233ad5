"""Big files: read in pieces of whole lines, streamed through row-wise operators in parts of
one time, and the engine side of parts (``SourceHandle.push(..., more=True)``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import polars as pl
import pytest
from _io_helpers import BackgroundRun, Changes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.debug import capture
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import Source, SourceHandle
from deltaflow.io import fs
from deltaflow.io._core.base import Writer
from deltaflow.io._core.output_session import OutputSession
from deltaflow.table import input_table

ROWS = 450_000  # about 12 MB of CSV: several pieces (fs.CHUNK_BYTES is 4 MB)


class Row(pw.Schema):
    key: int
    name: str
    qty: int


def write_csv(
    path: Path, rows: int, *, qty_offset: int = 0, bad_line: int | None = None
) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "key": range(rows),
            "name": [f"customer-{i % 977:04d}" for i in range(rows)],
            "qty": [(i % 13) + qty_offset for i in range(rows)],
        }
    )
    text = frame.write_csv()
    if bad_line is not None:  # a malformed row deep inside a later piece
        lines = text.split("\n")
        lines[bad_line] = "oops,not,a,row"
        text = "\n".join(lines)
        frame = frame.filter(pl.int_range(pl.len()) != bad_line - 1)
    path.write_text(text)
    assert path.stat().st_size > 1.2 * fs.CHUNK_BYTES
    return frame


def test_a_big_file_streams_through_in_parts_of_one_time(tmp_path: Path) -> None:
    expected = write_csv(tmp_path / "big.csv", ROWS)
    table = pw.io.csv.read(tmp_path / "big.csv", schema=Row, mode="static")
    doubled = table.filter(pw.this.qty >= 0).select(pw.this.key, pw.this.name, qty=pw.this.qty * 2)
    (sink,) = capture(doubled)
    # More than one batch reached the sink, all at the same time, and together they are
    # the whole file: the parts of one transaction.
    assert len(sink.batches) > 1
    assert len({time for time, _ in sink.batches}) == 1
    rows = pl.concat([batch for _, batch in sink.batches])
    assert rows[ID].n_unique() == ROWS
    assert (rows[DIFF] == 1).all()
    assert (
        rows.sort("key")
        .select("key", "name", "qty")
        .equals(expected.with_columns(qty=pl.col("qty") * 2))
    )


def test_a_big_file_into_a_groupby_and_a_csv_file(tmp_path: Path) -> None:
    expected = write_csv(tmp_path / "big.csv", ROWS, bad_line=ROWS - 5)
    table = pw.io.csv.read(tmp_path / "big.csv", schema=Row, mode="static")
    totals = table.groupby(pw.this.name).reduce(
        pw.this.name, total=pw.reducers.sum(pw.this.qty), n=pw.reducers.count()
    )
    pw.io.csv.write(table, tmp_path / "copy.csv")
    pw.io.csv.write(totals, tmp_path / "totals.csv")
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    copy = pl.read_csv(tmp_path / "copy.csv")
    assert copy["time"].n_unique() == 1 and (copy["diff"] == 1).all()
    assert copy.sort("key").select("key", "name", "qty").equals(expected)
    got = pl.read_csv(tmp_path / "totals.csv").sort("name")
    want = expected.group_by("name").agg(total=pl.col("qty").sum(), n=pl.len()).sort("name")
    assert got.select("name", "total", "n").equals(want)
    assert got["time"].n_unique() == 1  # the groupby saw the file as one time


def test_the_bad_row_of_a_later_piece_is_reported_with_its_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_csv(tmp_path / "big.csv", ROWS, bad_line=ROWS - 5)
    table = pw.io.csv.read(tmp_path / "big.csv", schema=Row, mode="static")
    assert pw.debug.table_to_pandas(table).shape[0] == ROWS - 1
    # The header is line 1, so the row replaced at index ROWS - 5 of the text is that line + 1.
    assert f"big.csv:{ROWS - 4}" in caplog.text


def test_a_big_file_modified_while_streaming_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    write_csv(path, ROWS)
    table = pw.io.csv.read(tmp_path, schema=Row, autocommit_duration_ms=10, object_pattern="*.csv")
    totals = table.reduce(total=pw.reducers.sum(pw.this.qty), n=pw.reducers.count())
    changes = Changes().subscribe(totals)
    first_total = sum(i % 13 for i in range(ROWS))
    with BackgroundRun():
        changes.wait_for(lambda c: c.state() == [{"total": first_total, "n": ROWS}], 30)
        # Written aside and renamed into place, so that the reader never sees half of it.
        write_csv(tmp_path / "next.tmp", ROWS - 10, qty_offset=1)
        os.replace(tmp_path / "next.tmp", path)
        second_total = sum(i % 13 + 1 for i in range(ROWS - 10))
        changes.wait_for(lambda c: c.state() == [{"total": second_total, "n": ROWS - 10}], 30)
    # The old rows were retracted and the new ones added in one time.
    assert len({time for _, time, _ in changes.rows[1:]}) == 1


# --- the engine side ----------------------------------------------------------------------


class PartsSource(Source):
    """Pushes the first part of a time, waits until the output saw it, then the rest."""

    def __init__(self, name: str, seen: threading.Event, other_pushed: threading.Event) -> None:
        self.name = name
        self.seen = seen
        self.other_pushed = other_pushed
        self.streamed: bool | None = None

    def start(self, handle: SourceHandle) -> None:
        threading.Thread(target=self._run, args=(handle,), daemon=True).start()

    def _run(self, handle: SourceHandle) -> None:
        handle.push(_batch([1, 2]), consolidated=True, more=True)
        self.streamed = self.seen.wait(10)
        self.other_pushed.wait(10)
        handle.push(_batch([3]), consolidated=True)
        handle.finish()


class OneBatchSource(Source):
    def __init__(self, name: str, after: threading.Event, done: threading.Event) -> None:
        self.name = name
        self.after = after
        self.done = done

    def start(self, handle: SourceHandle) -> None:
        def run() -> None:
            self.after.wait(10)
            handle.push(_batch([10, 20]))
            self.done.set()
            handle.finish()

        threading.Thread(target=run, daemon=True).start()


def _batch(values: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {ID: pl.Series(values, dtype=pl.UInt128), "v": values, DIFF: [1] * len(values)}
    )


def test_parts_reach_the_sink_before_their_time_ends_and_hold_other_inputs() -> None:
    seen, other_pushed = threading.Event(), threading.Event()
    schema = pw.schema_from_types(v=int)
    parts = PartsSource("parts", seen, other_pushed)
    streamed = input_table(schema, parts, name="parts")
    other = input_table(schema, OneBatchSource("other", seen, other_pushed), name="other")
    events: list[tuple[str, int, int]] = []

    def on_change(key: object, row: dict, time: int, is_addition: bool) -> None:
        events.append(("row", row["v"], time))
        seen.set()

    pw.io.subscribe(
        streamed.select(v=pw.this.v * 10),
        on_change,
        on_time_end=lambda time: events.append(("end", 0, time)),
    )
    counted = other.reduce(n=pw.reducers.count())
    other_times: list[int] = []
    pw.io.subscribe(counted, lambda key, row, time, is_addition: other_times.append(time))
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert parts.streamed is True  # the first part was seen before the last was pushed
    rows = [e for e in events if e[0] == "row"]
    assert sorted(v for _, v, _ in rows) == [10, 20, 30]
    time = rows[0][2]
    assert {t for _, _, t in rows} == {time}
    assert next(e for e in events if e[0] == "end") == ("end", 0, time)
    # The other input pushed while the time was open: its rows joined that same time.
    assert other_times == [time]


def test_a_part_needs_a_handle_that_accepts_parts() -> None:
    handle = SourceHandle("h", lambda: None)
    with pytest.raises(ValueError, match="more=True"):
        handle.push(_batch([1]), consolidated=True, more=True)
    handle.accepts_parts = True
    with pytest.raises(ValueError, match="consolidated=True"):
        handle.push(_batch([1]), more=True)


class GatedWriter(Writer):
    """Writes nothing until ``go`` is set: an output slower than the engine."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.rows = 0

    def write(self, payload: pl.DataFrame) -> None:
        self.go.wait(10)
        self.rows += payload.height


def test_an_output_session_holds_a_bounded_number_of_rows() -> None:
    writer = GatedWriter()
    session = OutputSession("gated", writer, max_queued_rows=150)
    session.start()
    session.on_batch(2, _batch([1]))  # taken by the writer thread, which then waits
    session.on_batch(2, _batch(list(range(100, 200))))  # 100 rows queued: room left
    blocked = threading.Thread(target=session.on_batch, args=(2, _batch(list(range(300, 400)))))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # 200 queued rows would exceed the bound: the engine waits
    writer.go.set()
    blocked.join(10)
    assert not blocked.is_alive()
    session.on_time_end(2)
    session.on_end()
    assert writer.rows == 201


# --- many small pieces and parts (the constants shrunk, the code paths unchanged) ----------

_NAMES = ["a", "b", "c,d", "e f", ""]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(-5, 5), st.sampled_from(_NAMES)), max_size=30),
        min_size=1,
        max_size=4,
    ),
    st.integers(min_value=8, max_value=60),
    st.integers(min_value=1, max_value=7),
)
def test_files_in_many_pieces_and_parts_give_the_whole_result(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    files: list[list[tuple[int, str]]],
    chunk_bytes: int,
    part_rows: int,
) -> None:
    from deltaflow.io._core import input_session

    monkeypatch.setattr(fs, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(input_session, "_PART_ROWS", part_rows)
    folder = tmp_path_factory.mktemp("files")
    expected: list[tuple[int, str]] = []
    for index, rows in enumerate(files):
        lines = ["key,name"]
        for key, name in rows:
            lines.append(f'{key},"{name}"' if "," in name else f"{key},{name}")
            expected.append((key, name))
        (folder / f"f{index}.csv").write_text("\n".join(lines) + "\n")
    pw.clear_graph()
    schema = pw.schema_from_types(key=int, name=str)
    # Two reads: the row-wise one streams parts, the one under a groupby takes whole times.
    table = pw.io.csv.read(folder, schema=schema, mode="static")
    kept = table.filter(pw.this.key >= 0).select(pw.this.name, twice=pw.this.key * 2)
    again = pw.io.csv.read(folder, schema=schema, mode="static")
    counts = again.groupby(pw.this.name).reduce(pw.this.name, n=pw.reducers.count())
    kept_sink, count_sink = capture(kept, counts)
    got = pl.concat([b for _, b in kept_sink.batches]) if kept_sink.batches else None
    want = sorted((name, 2 * key) for key, name in expected if key >= 0)
    rows = sorted(got.select("name", "twice").rows()) if got is not None else []
    assert rows == want
    if got is not None:  # the parts of the times together: each row once, all insertions
        assert got[ID].n_unique() == got.height and (got[DIFF] == 1).all()
    final: dict[str, int] = {}
    for _, batch in count_sink.batches:
        for name, n, diff in batch.select("name", "n", DIFF).rows():
            if diff > 0:
                final[name] = n
            elif final.get(name) == n:
                del final[name]
    assert final == {
        name: sum(1 for _, m in expected if m == name) for name in {m for _, m in expected}
    }


def test_a_small_file_in_tiny_pieces_comes_in_parts_of_one_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deltaflow.io._core import input_session

    monkeypatch.setattr(fs, "CHUNK_BYTES", 16)
    monkeypatch.setattr(input_session, "_PART_ROWS", 2)
    (tmp_path / "f.csv").write_text("key,name\n" + "".join(f"{i},n{i}\n" for i in range(40)))
    table = pw.io.csv.read(
        tmp_path / "f.csv", schema=pw.schema_from_types(key=int, name=str), mode="static"
    )
    (sink,) = capture(table.select(pw.this.key))
    assert len(sink.batches) > 5 and len({time for time, _ in sink.batches}) == 1
    assert sorted(pl.concat([b for _, b in sink.batches])["key"].to_list()) == list(range(40))
