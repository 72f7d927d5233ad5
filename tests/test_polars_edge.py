"""deltaflow's additions for Polars/Arrow users: ``pw.io.subscribe_frames`` and
``pw.debug.table_to_arrow`` / ``table_from_arrow`` (docs/polars.md)."""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorError
from test_connector_docs import _examples
from test_stateful_properties import SETTINGS, _state_at, _stream_table, _times, update_streams

NONE = pw.MonitoringLevel.NONE

STOCK = """
  | name | qty | __time__ | __diff__
1 | pen  | 2   | 2        | 1
2 | ink  | 1   | 2        | 1
1 | pen  | 2   | 4        | -1
1 | pen  | 5   | 4        | 1
3 | cap  | 7   | 6        | 1
"""


def _frames(table: pw.Table, **options: Any) -> list[pl.DataFrame]:
    frames: list[pl.DataFrame] = []
    pw.io.subscribe_frames(table, frames.append, **options)
    pw.run(monitoring_level=NONE)
    return frames


# ------------------------------------------------------------------------------------------
# subscribe_frames
# ------------------------------------------------------------------------------------------


def test_static_table_arrives_as_one_frame() -> None:
    table = pw.debug.table_from_markdown("""
    name | qty
    pen  | 2
    ink  | 1
    """)
    (frame,) = _frames(table)
    assert frame.columns == ["id", "name", "qty", "time", "diff"]
    assert frame.schema["id"] == pl.UInt128 and frame.schema["time"] == pl.UInt64
    assert sorted(frame.select("name", "qty", "diff").rows()) == [("ink", 1, 1), ("pen", 2, 1)]
    ids, _ = pw.debug.table_to_dicts(table)
    assert sorted(frame["id"].to_list()) == sorted(int(i) for i in ids)


def test_update_stream_arrives_one_frame_per_time() -> None:
    table = pw.debug.table_from_markdown(STOCK)
    frames = _frames(table, include_id=False)
    assert [f["time"].unique().to_list() for f in frames] == [[2], [4], [6]]
    assert [sorted(f.rows()) for f in frames] == [
        [("ink", 1, 2, 1), ("pen", 2, 2, 1)],
        [("pen", 2, 4, -1), ("pen", 5, 4, 1)],
        [("cap", 7, 6, 1)],
    ]


def test_frames_carry_the_same_changes_as_subscribe() -> None:
    table = pw.debug.table_from_markdown(STOCK)
    result = table.groupby(table.name).reduce(table.name, total=pw.reducers.sum(table.qty))
    rows: list[tuple[Any, ...]] = []
    pw.io.subscribe(
        result,
        lambda key, row, time, is_addition: rows.append(
            (int(key), row["name"], row["total"], time, 1 if is_addition else -1)
        ),
    )
    frames: list[pl.DataFrame] = []
    pw.io.subscribe_frames(result, frames.append)
    pw.run(monitoring_level=NONE)
    assert Counter(r for f in frames for r in f.rows()) == Counter(rows)


def test_on_end_and_async_callbacks() -> None:
    table = pw.debug.table_from_markdown(STOCK)
    seen: list[Any] = []

    async def on_change(frame: pl.DataFrame) -> None:
        await asyncio.sleep(0)
        seen.append(frame.height)

    pw.io.subscribe_frames(table, on_change, on_end=lambda: seen.append("end"))
    pw.run(monitoring_level=NONE)
    assert seen == [2, 2, 1, "end"]


def test_a_failing_callback_stops_the_run_naming_the_output() -> None:
    table = pw.debug.table_from_markdown(STOCK)

    def explode(frame: pl.DataFrame) -> None:
        raise RuntimeError("boom")

    pw.io.subscribe_frames(table, explode, name="scorer")
    with pytest.raises(ConnectorError, match="scorer.*boom"):
        pw.run(monitoring_level=NONE)


def test_wrong_arguments_fail_when_the_pipeline_is_defined() -> None:
    table = pw.debug.table_from_markdown(STOCK)
    with pytest.raises(TypeError, match="expected a table"):
        pw.io.subscribe_frames([1, 2], print)
    with pytest.raises(TypeError, match="on_change must be callable"):
        pw.io.subscribe_frames(table, 42)
    with pytest.raises(TypeError, match="include_id must be a bool"):
        pw.io.subscribe_frames(table, print, include_id="yes")
    with pytest.raises(TypeError):
        pw.io.subscribe_frames(table, print, sort_by=[table.name])  # type: ignore[call-arg]
    clashing = table.select(time=table.qty, diff=table.qty)
    with pytest.raises(ValueError, match=r"\['diff', 'time'\]"):
        pw.io.subscribe_frames(clashing, print)


@SETTINGS
@given(stream=update_streams(max_times=4))
def test_frames_replayed_match_recomputation_at_every_time(
    stream: list[tuple[int, int, int, int, int]],
) -> None:
    pw.clear_graph()
    table = _stream_table(stream)
    result = table.groupby(table.k).reduce(
        table.k, total=pw.reducers.sum(table.v), count=pw.reducers.count()
    )
    frames = _frames(result)
    state: Counter[tuple[int, int, int]] = Counter()
    by_time = {int(f["time"][0]): f for f in frames}
    assert all(f["time"].n_unique() == 1 for f in frames)
    for time in _times(stream):
        if time in by_time:
            for _, k, total, count, _, diff in by_time[time].rows():
                state[(k, total, count)] += diff
        expected: Counter[tuple[int, int, int]] = Counter()
        groups: dict[int, list[int]] = {}
        for k, v in _state_at(stream, time).values():
            groups.setdefault(k, []).append(v)
        for k, values in groups.items():
            expected[(k, sum(values), len(values))] += 1
        assert +state == expected, time


# ------------------------------------------------------------------------------------------
# Arrow in and out
# ------------------------------------------------------------------------------------------


class Everything(pw.Schema):
    n: int
    label: str | None
    at: pw.DateTimeUtc
    local: pw.DateTimeNaive
    took: pw.Duration
    doc: pw.Json
    pair: tuple[int, str]
    values: list[float]
    ref: pw.Pointer
    raw: bytes
    ok: bool
    matrix: np.ndarray[tuple[int, int], np.dtype[np.int64]]  # type: ignore[type-var]


_UTC = datetime.timezone.utc
_ROWS = [
    (
        1,
        "x",
        datetime.datetime(2024, 1, 1, tzinfo=_UTC),
        datetime.datetime(2020, 1, 1, 1, 2, 3),
        datetime.timedelta(seconds=3),
        pw.Json({"k": [1, 2]}),
        (1, "a"),
        [1.5, 2.0],
        pw.Pointer(5),
        b"zz",
        True,
        np.array([[1, 2], [3, 4]]),
    ),
    (
        2,
        None,
        datetime.datetime(2024, 1, 2, 5, tzinfo=_UTC),
        datetime.datetime(1999, 12, 31),
        datetime.timedelta(0),
        pw.Json(None),
        (2, "b"),
        [],
        pw.Pointer(7),
        b"",
        False,
        np.array([[0, 0]]),
    ),
]


def _by_id(table: pw.Table) -> dict[Any, tuple[Any, ...]]:
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return {k: tuple(_plain(columns[n][k]) for n in names) for k in keys}


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def test_arrow_round_trip_keeps_types_values_and_ids() -> None:
    table = pw.debug.table_from_rows(Everything, _ROWS)
    arrow = pw.debug.table_to_arrow(table)
    assert isinstance(arrow, pa.Table) and arrow.num_rows == 2
    assert arrow.schema.field("at").type == pa.timestamp("ns", "UTC")
    assert arrow.schema.field("took").type == pa.duration("ns")
    assert arrow.schema.field("pair").type == pa.struct(
        [("0", pa.int64()), ("1", pa.large_string())]
    )
    assert arrow.schema.field("id").type == pa.string()
    assert not arrow.schema.field("n").nullable and arrow.schema.field("label").nullable
    ref = {r["n"]: r["ref"] for r in arrow.to_pylist()}
    assert ref == {1: str(pw.Pointer(5)), 2: str(pw.Pointer(7))}
    back = pw.debug.table_from_arrow(arrow)
    assert back.schema.typehints() == table.schema.typehints()
    assert _by_id(back) == _by_id(table)


def test_arrow_without_ids() -> None:
    table = pw.debug.table_from_rows(Everything, _ROWS)
    arrow = pw.debug.table_to_arrow(table, include_id=False)
    assert "id" not in arrow.column_names
    back = pw.debug.table_from_arrow(arrow, id_from=["n"])
    assert sorted(_by_id(back).values()) == sorted(_by_id(table).values())


def test_arrow_from_a_plain_arrow_table_infers_types() -> None:
    data = pa.table({"x": [1, 2, 3], "y": ["a", None, "c"], "z": [0.5, 1.5, None]})
    table = pw.debug.table_from_arrow(data)
    assert table.schema.typehints() == {"x": int, "y": str | None, "z": float | None}
    assert sorted(_by_id(table).values()) == [(1, "a", 0.5), (2, None, 1.5), (3, "c", None)]
    batch = data.to_batches()[0]
    assert sorted(_by_id(pw.debug.table_from_arrow(batch)).values()) == sorted(
        _by_id(table).values()
    )


def test_arrow_with_a_schema_converts_columns() -> None:
    class Typed(pw.Schema):
        key: str = pw.column_definition(primary_key=True)
        ref: pw.Pointer
        doc: pw.Json

    data = pa.table(
        {
            "key": ["a", "b"],
            "ref": [str(pw.Pointer(1)), str(pw.Pointer(2))],
            "doc": ['{"a": 1}', "[1, 2]"],
            "ignored": [0, 0],
        }
    )
    table = pw.debug.table_from_arrow(data, schema=Typed)
    assert table.column_names() == ["key", "ref", "doc"]
    rows = sorted(_by_id(table).values(), key=lambda row: row[0])
    assert rows == [("a", pw.Pointer(1), pw.Json({"a": 1})), ("b", pw.Pointer(2), pw.Json([1, 2]))]
    same_key = pw.debug.table_from_arrow(data.slice(0, 1), schema=Typed)
    assert set(_by_id(same_key)) < set(_by_id(table))  # ids come from the primary key


def test_arrow_update_stream_from_time_and_diff_columns() -> None:
    data = pa.table(
        {
            "name": ["pen", "pen", "pen"],
            "qty": [2, 2, 5],
            "__time__": [2, 4, 4],
            "__diff__": [1, -1, 1],
        }
    )
    table = pw.debug.table_from_arrow(data, id_from=["name"])
    frames = _frames(table, include_id=False)
    assert [sorted(f.rows()) for f in frames] == [
        [("pen", 2, 2, 1)],
        [("pen", 2, 4, -1), ("pen", 5, 4, 1)],
    ]
    final = pw.debug.table_to_arrow(table, include_id=False)
    assert final.to_pylist() == [{"name": "pen", "qty": 5}]


def test_frames_convert_to_arrow_without_ids() -> None:
    table = pw.debug.table_from_markdown(STOCK)
    frames = _frames(table, include_id=False)
    arrow = pa.concat_tables([f.to_arrow() for f in frames])
    assert arrow.num_rows == 5 and arrow.column_names == ["name", "qty", "time", "diff"]


def test_arrow_errors() -> None:
    with pytest.raises(TypeError, match="pyarrow Table or RecordBatch"):
        pw.debug.table_from_arrow({"x": [1]})
    with pytest.raises(ValueError, match=r"lacks the schema's columns \['b'\]"):
        pw.debug.table_from_arrow(pa.table({"a": [1]}), schema=pw.schema_from_types(a=int, b=int))
    with pytest.raises(ValueError, match="id_from"):
        pw.debug.table_from_arrow(pa.table({"a": [1]}), id_from=["nope"])

    class Objects(pw.Schema):
        n: int
        anything: Any

    table = pw.debug.table_from_rows(Objects, [(1, object())])
    with pytest.raises(TypeError, match="'anything'.*no Arrow form"):
        pw.debug.table_to_arrow(table)
    ragged = pw.debug.table_from_rows(
        pw.schema_from_types(a=np.ndarray), [(np.array([1]),), (np.array([[1]]),)]
    )
    with pytest.raises(TypeError, match="'a'.*one Arrow type"):
        pw.debug.table_to_arrow(ragged)


# ------------------------------------------------------------------------------------------
# docs/polars.md
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(_examples("polars.md"))))
def test_docs_example(
    index: int, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, expected = _examples("polars.md")[index]
    monkeypatch.chdir(tmp_path)
    pw.clear_graph()
    # dont_inherit: this file's `from __future__ import annotations` must not apply.
    exec(
        compile(code, f"docs/polars.md example {index}", "exec", dont_inherit=True),  # noqa: S102
        {"__name__": "__doc__"},
    )
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]


def test_arrow_types_narrower_than_the_storage_are_widened() -> None:
    data = pa.table(
        {
            "n": pa.array([1, 2], pa.int32()),
            "x": pa.array([0.5, 1.0], pa.float32()),
            "at": pa.array([1_000_000, 2_000_000], pa.timestamp("us")),
        }
    )
    table = pw.debug.table_from_arrow(data)
    assert table.schema.typehints() == {"n": int, "x": float, "at": pw.DateTimeNaive}
    rows = sorted(_by_id(table).values())
    assert [r[2].value for r in rows] == [1_000_000_000, 2_000_000_000]  # nanoseconds
    assert pw.debug.table_to_arrow(table, include_id=False).schema.field("n").type == pa.int64()
