"""pw.io.deltalake on local directories: writing, reading, following versions, persistence.

Tables are checked with delta-rs itself (``deltalake.DeltaTable``), and tables written by
delta-rs (as Spark, pandas or DuckDB would write them) are read by the connector.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _io_helpers import BackgroundRun, Changes
from deltalake import DeltaTable, write_deltalake

import deltaflow as pw
from deltaflow._ids import pointer_from_values
from deltaflow.engine.boundary import ConnectorError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class KV(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    v: str


class Plain(pw.Schema):
    k: int
    v: str


UPDATES = """
k | v | __time__ | __diff__
1 | a | 2        | 1
2 | b | 2        | 1
1 | a | 4        | -1
1 | c | 4        | 1
2 | b | 6        | -1
3 | d | 6        | 1
"""


def run() -> None:
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def lake_rows(path: Path | str, *columns: str, version: int | None = None) -> list[tuple]:
    table = DeltaTable(str(path), version=version).to_pyarrow_table()
    names = columns or tuple(table.column_names)
    data = table.to_pydict()
    return sorted(zip(*(data[n] for n in names), strict=True))


def final_rows(table: pw.Table) -> list[tuple]:
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return sorted(tuple(columns[n][k] for n in names) for k in keys)


# ------------------------------------------------------------------------------------------
# write
# ------------------------------------------------------------------------------------------


def test_stream_of_changes_appends_every_change_with_time_and_diff(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown(UPDATES, schema=KV)
    pw.io.deltalake.write(table, tmp_path / "lake", min_commit_frequency=None)
    run()
    assert lake_rows(tmp_path / "lake", "k", "v", "time", "diff") == [
        (1, "a", 2, -1 * -1),
        (1, "a", 4, -1),
        (1, "c", 4, 1),
        (2, "b", 2, 1),
        (2, "b", 6, -1),
        (3, "d", 6, 1),
    ]
    delta = DeltaTable(str(tmp_path / "lake"))
    # One commit creates the table, then one commit per time.
    assert delta.version() == 3
    fields = {f.name: f for f in pa.schema(delta.schema().to_arrow())}
    assert not fields["k"].nullable and not fields["time"].nullable
    described = json.loads(fields["k"].metadata[b"pathway.column.metadata"])
    assert described["dtype"] == {"type": "INT"} and described["primary_key"] is True


def test_min_commit_frequency_groups_times_into_one_commit(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown(UPDATES, schema=KV)
    pw.io.deltalake.write(table, tmp_path / "lake")  # default: at most one commit a minute
    run()
    delta = DeltaTable(str(tmp_path / "lake"))
    assert delta.version() == 1  # created, then everything at the end of the run
    assert len(lake_rows(tmp_path / "lake")) == 6


def test_a_second_run_appends(tmp_path: Path) -> None:
    for _ in range(2):
        pw.clear_graph()
        pw.io.deltalake.write(
            pw.debug.table_from_markdown("k | v\n1 | a\n2 | b", schema=KV),
            str(tmp_path / "lake"),
            min_commit_frequency=None,
        )
        run()
    assert len(lake_rows(tmp_path / "lake")) == 4


def test_snapshot_keeps_the_current_state_at_every_version(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown(UPDATES, schema=KV)
    pw.io.deltalake.write(
        table, tmp_path / "lake", output_table_type="snapshot", min_commit_frequency=None
    )
    run()
    path = tmp_path / "lake"
    assert lake_rows(path, "k", "v", version=1) == [(1, "a"), (2, "b")]
    assert lake_rows(path, "k", "v", version=2) == [(1, "c"), (2, "b")]
    assert lake_rows(path, "k", "v", version=3) == [(1, "c"), (3, "d")]
    assert DeltaTable(str(path)).version() == 3
    ids = lake_rows(path, "_id", "k")
    assert all(i.startswith("^") for i, _ in ids)
    # The _id column holds the row ids: reading with the stored schema gives the same ids.
    pw.clear_graph()
    back = pw.io.deltalake.read(path, mode="static")
    keys, columns = pw.debug.table_to_dicts(back)
    assert sorted((str(key), columns["k"][key]) for key in keys) == sorted(ids)


def test_snapshot_merges_onto_an_existing_table(tmp_path: Path) -> None:
    path = tmp_path / "lake"
    pw.io.deltalake.write(
        pw.debug.table_from_markdown("k | v\n1 | a\n2 | b", schema=KV),
        path,
        output_table_type="snapshot",
        min_commit_frequency=None,
    )
    run()
    pw.clear_graph()
    # A later run (no persistence) upserts its rows by id: k=2 is updated, k=5 added.
    pw.io.deltalake.write(
        pw.debug.table_from_markdown("k | v\n2 | z\n5 | e", schema=KV),
        path,
        output_table_type="snapshot",
        min_commit_frequency=None,
    )
    run()
    assert lake_rows(path, "k", "v") == [(1, "a"), (2, "z"), (5, "e")]


def test_partition_columns(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown("k | v\n1 | a\n2 | a\n3 | b", schema=KV)
    pw.io.deltalake.write(
        table, tmp_path / "lake", partition_columns=[table.v], min_commit_frequency=None
    )
    run()
    delta = DeltaTable(str(tmp_path / "lake"))
    assert delta.metadata().partition_columns == ["v"]
    assert (tmp_path / "lake" / "v=a").is_dir()
    pw.clear_graph()
    back = pw.io.deltalake.read(tmp_path / "lake", mode="static")
    assert final_rows(back) == [(1, "a"), (2, "a"), (3, "b")]


class AllTypes(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    f: float
    b: bool
    s: str
    by: bytes
    tn: pw.DateTimeNaive
    tu: pw.DateTimeUtc
    d: pw.Duration
    j: pw.Json
    p: pw.Pointer
    tup: tuple[int, str]
    li: list[float]
    o: int | None
    arr: np.ndarray


def _all_types_table() -> pw.Table:
    rows = [
        (
            1,
            0.5,
            True,
            "x",
            b"\x00\xff",
            pd.Timestamp("2025-05-22 10:57:43.123456"),
            pd.Timestamp("2025-03-22 10:57:43.5", tz="UTC"),
            pd.Timedelta(microseconds=1500),
            pw.Json({"a": [1, 2]}),
            pointer_from_values(1),
            (7, "t"),
            [1.5, 2.5],
            None,
            np.array([[1.0, 2.0], [3.0, 4.0]]),
        ),
        (
            2,
            -1.25,
            False,
            "ünï",
            b"",
            pd.Timestamp("1999-12-31 23:59:59"),
            pd.Timestamp("2030-01-01", tz="UTC"),
            pd.Timedelta(days=-1),
            pw.Json(None),
            pointer_from_values(2),
            (-1, ""),
            [],
            5,
            np.array([0.5]),
        ),
    ]
    return pw.debug.table_from_rows(AllTypes, rows)


def _canon(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.ravel().tolist())
    if isinstance(value, pw.Json):
        return ("json", json.dumps(value.value))
    if isinstance(value, list):
        return tuple(value)
    return value


@pytest.mark.parametrize("stored_schema", [False, True])
def test_every_type_round_trips(tmp_path: Path, stored_schema: bool) -> None:
    table = _all_types_table()
    pw.io.deltalake.write(table, tmp_path / "lake", min_commit_frequency=None)
    run()
    keys, columns = pw.debug.table_to_dicts(table)
    expected = {
        columns["k"][k]: tuple(_canon(columns[c][k]) for c in AllTypes.columns()) for k in keys
    }
    pw.clear_graph()
    back = pw.io.deltalake.read(
        tmp_path / "lake", None if stored_schema else AllTypes, mode="static"
    )
    keys, columns = pw.debug.table_to_dicts(back)
    got = {columns["k"][k]: tuple(_canon(columns[c][k]) for c in AllTypes.columns()) for k in keys}
    assert got == expected


def test_external_table_with_narrow_and_other_types(tmp_path: Path) -> None:
    """Types other tools write: narrow integers and floats, dates, millisecond timestamps,
    decimals (as float, or exactly as text), zoned timestamps."""
    import decimal

    schema = pa.schema(
        [
            pa.field("k", pa.int16(), nullable=False),
            pa.field("f", pa.float32()),
            pa.field("day", pa.date32()),
            pa.field("ms", pa.timestamp("ms")),
            pa.field("price", pa.decimal128(8, 2)),
            pa.field("exact", pa.decimal128(8, 2)),
            pa.field("zoned", pa.timestamp("us", tz="UTC")),
        ]
    )
    data = pa.table(
        {
            "k": [1, 2],
            "f": [1.5, 2.5],
            "day": [datetime.date(2025, 1, 1), datetime.date(2025, 6, 30)],
            "ms": [
                datetime.datetime(2025, 1, 1, 12, 30, 45, 123000),
                datetime.datetime(2025, 1, 2),
            ],
            "price": [decimal.Decimal("100.50"), decimal.Decimal("-3.25")],
            "exact": [decimal.Decimal("100.50"), decimal.Decimal("-3.25")],
            "zoned": [datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)] * 2,
        },
        schema=schema,
    )
    write_deltalake(str(tmp_path / "ext"), data)

    class External(pw.Schema):
        k: int = pw.column_definition(primary_key=True)
        f: float
        day: pw.DateTimeNaive
        ms: pw.DateTimeNaive
        price: float
        exact: str
        zoned: pw.DateTimeUtc

    table = pw.io.deltalake.read(tmp_path / "ext", External, mode="static")
    rows = final_rows(table)
    assert rows[0][:6] == (
        1,
        1.5,
        pd.Timestamp("2025-01-01"),
        pd.Timestamp("2025-01-01 12:30:45.123"),
        100.5,
        "100.50",
    )
    assert rows[1][4:6] == (-3.25, "-3.25")
    assert rows[0][6] == pd.Timestamp("2025-01-01", tz="UTC")


# ------------------------------------------------------------------------------------------
# read: static, versions, streams of changes
# ------------------------------------------------------------------------------------------


def test_static_read_sees_deletions_and_updates_made_by_other_tools(tmp_path: Path) -> None:
    path = str(tmp_path / "lake")
    write_deltalake(path, pd.DataFrame({"k": range(6), "v": list("abcdef")}))
    DeltaTable(path).delete("k > 1 and k < 4")
    DeltaTable(path).update(predicate="k = 5", updates={"v": "'z'"})
    table = pw.io.deltalake.read(path, KV, mode="static")
    assert final_rows(table) == [(0, "a"), (1, "b"), (4, "e"), (5, "z")]


def test_a_stream_of_changes_reads_back_as_the_table(tmp_path: Path) -> None:
    pw.io.deltalake.write(
        pw.debug.table_from_markdown(UPDATES, schema=Plain),
        tmp_path / "lake",
        min_commit_frequency=None,
    )
    run()
    for schema in (KV, Plain, None):
        pw.clear_graph()
        table = pw.io.deltalake.read(tmp_path / "lake", schema, mode="static")
        assert final_rows(table) == [(1, "c"), (3, "d")], schema


def test_a_stream_of_changes_with_repeated_rows_and_no_key(tmp_path: Path) -> None:
    markdown = """
      | k | v | __time__ | __diff__
    1 | 1 | a | 2        | 1
    2 | 1 | a | 2        | 1
    1 | 1 | a | 4        | -1
    3 | 1 | a | 6        | 1
    2 | 1 | a | 6        | -1
    4 | 2 | b | 6        | 1
    """
    pw.io.deltalake.write(pw.debug.table_from_markdown(markdown, schema=Plain), tmp_path / "lake")
    run()
    pw.clear_graph()
    table = pw.io.deltalake.read(tmp_path / "lake", Plain, mode="static")
    assert final_rows(table) == [(1, "a"), (2, "b")]


def test_time_and_diff_in_the_schema_read_the_changes_as_rows(tmp_path: Path) -> None:
    pw.io.deltalake.write(
        pw.debug.table_from_markdown(UPDATES, schema=KV),
        tmp_path / "lake",
        min_commit_frequency=None,
    )
    run()
    pw.clear_graph()

    class Log(pw.Schema):
        k: int
        v: str
        time: int
        diff: int

    table = pw.io.deltalake.read(tmp_path / "lake", Log, mode="static")
    assert len(final_rows(table)) == 6


def _wait_state(changes: Changes, expected: list[dict[str, Any]]) -> None:
    changes.wait_for(lambda c: c.state() == expected)


def test_streaming_follows_appends_deletes_updates_and_compaction(tmp_path: Path) -> None:
    path = str(tmp_path / "lake")
    write_deltalake(path, pd.DataFrame({"k": [0], "v": ["zero"]}))
    table = pw.io.deltalake.read(path, KV, autocommit_duration_ms=10)
    changes = Changes().subscribe(table)
    with BackgroundRun():
        _wait_state(changes, [{"k": 0, "v": "zero"}])
        for k in (1, 2, 3):
            write_deltalake(path, pd.DataFrame({"k": [k], "v": [str(k)]}), mode="append")
        _wait_state(
            changes,
            [{"k": 0, "v": "zero"}, {"k": 1, "v": "1"}, {"k": 2, "v": "2"}, {"k": 3, "v": "3"}],
        )
        DeltaTable(path).delete("k = 2")
        DeltaTable(path).update(predicate="k = 3", updates={"v": "'three'"})
        expected = [{"k": 0, "v": "zero"}, {"k": 1, "v": "1"}, {"k": 3, "v": "three"}]
        _wait_state(changes, expected)
        count = len(changes.rows)
        DeltaTable(path).optimize.compact()
        write_deltalake(path, pd.DataFrame({"k": [4], "v": ["4"]}), mode="append")
        _wait_state(changes, [*expected, {"k": 4, "v": "4"}])
        # The compaction rewrote every row but changed none: only k=4 came.
        assert len(changes.rows) == count + 1
    # The update (one Delta version) came in one time: its retraction and insertion together.
    update_times = {
        time
        for row, time, _ in changes.rows
        if row["k"] == 3 and row["v"] in ("3", "three") and time != changes.rows[0][1]
    }
    assert len(update_times) <= 2


def test_streaming_waits_for_the_table_to_be_created(tmp_path: Path) -> None:
    path = tmp_path / "later"
    table = pw.io.deltalake.read(path, KV, autocommit_duration_ms=10)
    changes = Changes().subscribe(table)
    with BackgroundRun():
        write_deltalake(str(path), pd.DataFrame({"k": [1], "v": ["a"]}))
        _wait_state(changes, [{"k": 1, "v": "a"}])


def test_deltaflow_to_deltaflow_through_a_lake(tmp_path: Path) -> None:
    """One pipeline writes a stream of changes, another follows it."""
    path = tmp_path / "lake"
    pw.io.deltalake.write(
        pw.debug.table_from_markdown("k | v\n1 | a", schema=KV), path, min_commit_frequency=None
    )
    run()
    pw.clear_graph()
    table = pw.io.deltalake.read(path, autocommit_duration_ms=10)
    changes = Changes().subscribe(table)
    with BackgroundRun():
        _wait_state(changes, [{"k": 1, "v": "a"}])
        write_deltalake(
            str(path),
            pa.table(
                {"k": [1, 1, 2], "v": ["a", "b", "c"], "time": [10, 10, 10], "diff": [-1, 1, 1]},
                schema=pa.schema(
                    [
                        pa.field("k", pa.int64(), False),
                        pa.field("v", pa.string(), False),
                        pa.field("time", pa.int64(), False),
                        pa.field("diff", pa.int64(), False),
                    ]
                ),
            ),
            mode="append",
        )
        _wait_state(changes, [{"k": 1, "v": "b"}, {"k": 2, "v": "c"}])


def test_start_from_timestamp(tmp_path: Path) -> None:
    import time

    path = str(tmp_path / "lake")
    stamps = []
    for k in range(3):
        stamps.append(int(time.time() * 1000))
        time.sleep(0.02)
        write_deltalake(path, pd.DataFrame({"k": [k], "v": ["x"]}), mode="append")
        time.sleep(0.02)
    after_all = int(time.time() * 1000)
    counts = []
    for stamp in (*stamps, after_all):
        pw.clear_graph()
        counts.append(
            len(
                final_rows(
                    pw.io.deltalake.read(path, KV, mode="static", start_from_timestamp_ms=stamp)
                )
            )
        )
    assert counts == [3, 2, 1, 0]


# ------------------------------------------------------------------------------------------
# persistence
# ------------------------------------------------------------------------------------------


def _persistent_run(lake: str, store: Path, out: Path) -> Counter:
    pw.clear_graph()
    table = pw.io.deltalake.read(lake, KV, mode="static", name="lake")
    pw.io.jsonlines.write(table, out)
    pw.run(
        monitoring_level=pw.MonitoringLevel.NONE,
        persistence_config=pw.persistence.Config(pw.persistence.Backend.filesystem(store)),
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    return Counter((row["k"], row["diff"]) for row in lines)


def test_restart_resumes_after_the_checkpointed_version(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    store, out = tmp_path / "store", tmp_path / "out.jsonl"
    write_deltalake(lake, pd.DataFrame({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    assert _persistent_run(lake, store, out) == Counter({(1, 1): 1, (2, 1): 1, (3, 1): 1})
    write_deltalake(lake, pd.DataFrame({"k": [7, 8], "v": ["g", "h"]}), mode="append")
    assert _persistent_run(lake, store, out) == Counter({(7, 1): 1, (8, 1): 1})
    DeltaTable(lake).optimize.compact()
    assert _persistent_run(lake, store, out) == Counter()
    DeltaTable(lake).delete("k > 2 and k < 8")
    assert _persistent_run(lake, store, out) == Counter({(3, -1): 1, (7, -1): 1})
    assert _persistent_run(lake, store, out) == Counter()


# ------------------------------------------------------------------------------------------
# bad input and arguments
# ------------------------------------------------------------------------------------------


def test_schema_column_missing_from_the_table_fails_at_definition(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "lake"), pd.DataFrame({"k": [1], "w": ["a"]}))
    with pytest.raises(ValueError, match=r"pw.io.deltalake.read\(.*lake\).*column 'v'"):
        pw.io.deltalake.read(tmp_path / "lake", KV)


def test_column_of_another_type_fails_at_definition(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "lake"), pd.DataFrame({"k": [1], "v": [2.5]}))
    with pytest.raises(
        ValueError,
        match=r"column 'v' is stored as .*double.* cannot be read "
        r"as str",
    ):
        pw.io.deltalake.read(tmp_path / "lake", KV)


def test_values_that_do_not_fit_are_skipped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    schema = pa.schema(
        [pa.field("k", pa.int64()), pa.field("j", pa.string()), pa.field("p", pa.string())]
    )
    good = str(pointer_from_values(1))
    write_deltalake(
        str(tmp_path / "lake"),
        pa.table(
            {
                "k": [1, 2, None, 4],
                "j": ['{"a": 1}', "[1]", "2", "not json"],
                "p": [good, "^not-a-pointer", good, good],
            },
            schema=schema,
        ),
    )

    class S(pw.Schema):
        k: int
        j: pw.Json
        p: pw.Pointer

    with caplog.at_level(logging.ERROR, logger="deltaflow.io.deltalake"):
        table = pw.io.deltalake.read(tmp_path / "lake", S, mode="static")
        rows = final_rows(table)
    assert [(k, j.value, str(p)) for k, j, p in rows] == [(1, {"a": 1}, good)]
    message = caplog.text
    assert "skipped 3 row(s)" in message and "lake" in message
    assert "'k'" in message and "'j'" in message and "'p'" in message


def test_missing_static_table_fails_at_definition(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no Delta table at"):
        pw.io.deltalake.read(tmp_path / "nothing", KV, mode="static")


def test_read_without_schema_needs_stored_descriptions(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "lake"), pd.DataFrame({"k": [1]}))
    with pytest.raises(ValueError, match="stores no column descriptions"):
        pw.io.deltalake.read(tmp_path / "lake")


def test_existing_table_that_does_not_fit_stops_the_run(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "lake"), pd.DataFrame({"k": [1], "w": ["x"]}))
    pw.io.deltalake.write(
        pw.debug.table_from_markdown("k | v\n1 | a", schema=KV), tmp_path / "lake"
    )
    with pytest.raises(ConnectorError, match=r"column 'v' is missing"):
        run()


def test_write_arguments_are_checked_at_definition(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown("k | v\n1 | a", schema=KV)
    other = pw.debug.table_from_markdown("k | v\n1 | a", schema=KV)
    with pytest.raises(TypeError):
        pw.io.deltalake.write(table, tmp_path, unknown=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="output_table_type"):
        pw.io.deltalake.write(table, tmp_path, output_table_type="upsert")  # type: ignore
    with pytest.raises(ValueError, match="partition_columns column 'v' belongs to another"):
        pw.io.deltalake.write(table, tmp_path, partition_columns=[other.v])
    with pytest.raises(ValueError, match="min_commit_frequency"):
        pw.io.deltalake.write(table, tmp_path, min_commit_frequency=-1)
    with pytest.raises(ValueError, match=r"clash with"):
        pw.io.deltalake.write(table.select(time=table.k), tmp_path)
    with pytest.raises(TypeError, match="column 'a'.*no Delta Lake type"):
        pw.io.deltalake.write(table.select(a=pw.apply(lambda x: x, table.k)), tmp_path)
    with pytest.raises(ValueError, match="not an s3:// URI"):
        pw.io.deltalake.write(table, tmp_path, s3_connection_settings=pw.io.s3.AwsS3Settings())


def test_table_optimizer_compacts_old_partitions(tmp_path: Path) -> None:
    today = datetime.date.today()
    old = (today - datetime.timedelta(days=21)).isoformat()

    def write(rows: list[tuple[int, str]]) -> None:
        pw.clear_graph()
        table = pw.debug.table_from_rows(pw.schema_from_types(k=int, day=str), rows)
        pw.io.deltalake.write(
            table,
            tmp_path / "lake",
            partition_columns=[table.day],
            table_optimizer=pw.io.deltalake.TableOptimizer(
                tracked_column=table.day,
                time_format="%Y-%m-%d",
                quick_access_window=datetime.timedelta(days=7),
                compression_frequency=3600,
            ),
        )
        run()

    write([(1, today.isoformat()), (2, old)])
    assert len(DeltaTable(str(tmp_path / "lake")).file_uris()) == 2
    write([(3, old)])
    delta = DeltaTable(str(tmp_path / "lake"))
    assert len(delta.file_uris()) == 2  # the old partition's two files became one
    assert len(delta.to_pandas()) == 3
    assert [h["operation"] for h in delta.history()][:3] == [
        "VACUUM END",
        "VACUUM START",
        "OPTIMIZE",
    ]


def test_table_optimizer_arguments(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown("k | v | day\n1 | a | 2025-01-01")
    optimizer = pw.io.deltalake.TableOptimizer(
        tracked_column=table.day,
        time_format="%Y-%m-%d",
        quick_access_window=datetime.timedelta(days=7),
        compression_frequency=3600,
    )
    assert optimizer.quick_access_window == datetime.timedelta(days=7)
    assert optimizer.compression_frequency == datetime.timedelta(hours=1)
    with pytest.raises(ValueError, match="not a partition column"):
        pw.io.deltalake.write(table, tmp_path, table_optimizer=optimizer)
    with pytest.raises(ValueError, match="compression_frequency"):
        pw.io.deltalake.TableOptimizer(
            tracked_column=table.day,
            time_format="%Y",
            quick_access_window=1,
            compression_frequency=-1,
        )
    with pytest.raises(TypeError, match="quick_access_window"):
        pw.io.deltalake.TableOptimizer(
            tracked_column=table.day,
            time_format="%Y",
            quick_access_window="7d",
            compression_frequency=1,
        )


@pytest.mark.parametrize("column", ["f", "b", "s", "tn", "tu", "d", "j", "p", "o"])
def test_partition_by_each_primitive_type_round_trips(tmp_path: Path, column: str) -> None:
    table = _all_types_table().select(
        pw.this.k,
        pw.this.f,
        pw.this.b,
        pw.this.s,
        pw.this.by,
        pw.this.tn,
        pw.this.tu,
        pw.this.d,
        pw.this.j,
        pw.this.p,
        pw.this.o,
    )
    pw.io.deltalake.write(
        table, tmp_path / "lake", partition_columns=[table[column]], min_commit_frequency=None
    )
    run()
    assert DeltaTable(str(tmp_path / "lake")).metadata().partition_columns == [column]
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    expected = sorted(tuple(_canon(columns[n][k]) for n in names) for k in keys)
    pw.clear_graph()
    back = pw.io.deltalake.read(tmp_path / "lake", mode="static")
    keys, columns = pw.debug.table_to_dicts(back)
    assert sorted(tuple(_canon(columns[n][k]) for n in names) for k in keys) == expected


def test_empty_partition_value_is_refused_clearly(tmp_path: Path) -> None:
    table = pw.debug.table_from_rows(pw.schema_from_types(k=int, by=bytes), [(1, b"")])
    pw.io.deltalake.write(table, tmp_path / "lake", partition_columns=[table.by])
    with pytest.raises(ConnectorError, match="partition column 'by' holds an empty value"):
        run()


def test_existing_table_with_other_types_or_nullability_is_a_type_error(tmp_path: Path) -> None:
    write_deltalake(
        str(tmp_path / "a"), pd.DataFrame({"k": [1], "v": [2], "time": [0], "diff": [1]})
    )
    pw.io.deltalake.write(pw.debug.table_from_markdown("k | v\n1 | a", schema=KV), tmp_path / "a")
    with pytest.raises(
        TypeError,
        match=r"does not fit.*column 'v' is int64 in the table, "
        r"but string is written",
    ):
        run()
    pw.clear_graph()
    schema = pa.schema(
        [
            pa.field("k", pa.int64(), False),
            pa.field("v", pa.string(), True),
            pa.field("time", pa.int64(), False),
            pa.field("diff", pa.int64(), False),
        ]
    )
    write_deltalake(
        str(tmp_path / "b"),
        pa.table({"k": [1], "v": ["x"], "time": [0], "diff": [1]}, schema=schema),
    )
    pw.io.deltalake.write(pw.debug.table_from_markdown("k | v\n1 | a", schema=KV), tmp_path / "b")
    with pytest.raises(TypeError, match=r"column 'v' is nullable in the table"):
        run()


def test_restart_on_a_stream_of_changes_without_a_key(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    store, out = tmp_path / "store", tmp_path / "out.jsonl"
    log_schema = pa.schema(
        [
            pa.field("k", pa.int64(), False),
            pa.field("v", pa.string(), False),
            pa.field("time", pa.int64(), False),
            pa.field("diff", pa.int64(), False),
        ]
    )

    def append(rows: list[tuple[int, str, int, int]]) -> None:
        k, v, time, diff = zip(*rows, strict=True)
        write_deltalake(
            lake,
            pa.table({"k": k, "v": v, "time": time, "diff": diff}, schema=log_schema),
            mode="append",
        )

    def restart() -> Counter:
        pw.clear_graph()
        table = pw.io.deltalake.read(lake, Plain, mode="static", name="log")
        pw.io.jsonlines.write(table, out)
        pw.run(
            monitoring_level=pw.MonitoringLevel.NONE,
            persistence_config=pw.persistence.Config(pw.persistence.Backend.filesystem(store)),
        )
        return Counter(
            (json.loads(line)["k"], json.loads(line)["diff"])
            for line in out.read_text().splitlines()
        )

    append([(1, "a", 2, 1), (1, "a", 2, 1), (2, "b", 2, 1)])
    assert restart() == Counter({(1, 1): 2, (2, 1): 1})
    append([(1, "a", 4, -1), (2, "b", 4, -1), (3, "c", 4, 1)])
    assert restart() == Counter({(1, -1): 1, (2, -1): 1, (3, 1): 1})
    pw.clear_graph()
    assert final_rows(pw.io.deltalake.read(lake, Plain, mode="static")) == [(1, "a"), (3, "c")]


def test_str_into_an_existing_decimal_column(tmp_path: Path) -> None:
    import decimal

    schema = pa.schema(
        [
            pa.field("k", pa.int64(), False),
            pa.field("v", pa.decimal128(8, 2), False),
            pa.field("time", pa.int64(), False),
            pa.field("diff", pa.int64(), False),
        ]
    )
    for name in ("good", "bad"):
        write_deltalake(str(tmp_path / name), schema.empty_table())
    good = pw.debug.table_from_markdown("k | v\n1 | 100.50\n2 | -0.01\n3 | 7", schema=KV)
    pw.io.deltalake.write(good, tmp_path / "good")
    run()
    values = lake_rows(tmp_path / "good", "k", "v")
    assert values == [
        (1, decimal.Decimal("100.50")),
        (2, decimal.Decimal("-0.01")),
        (3, decimal.Decimal("7.00")),
    ]
    pw.clear_graph()
    bad = pw.debug.table_from_markdown("k | v\n1 | 1.005", schema=KV)
    pw.io.deltalake.write(bad, tmp_path / "bad")
    with pytest.raises(ConnectorError, match=r"'1.005' of column 'v' .*decimal\(8, 2\).*after"):
        run()


def test_snapshot_table_read_without_a_key_keeps_the_written_ids(tmp_path: Path) -> None:
    path = tmp_path / "lake"
    table = pw.debug.table_from_markdown(UPDATES, schema=Plain)
    pw.io.deltalake.write(table, path, output_table_type="snapshot", min_commit_frequency=None)
    run()
    written = {str(key): row for key, row in zip(*_ids_and_rows(table), strict=True)}
    pw.clear_graph()
    back = pw.io.deltalake.read(path, Plain, mode="static")
    assert {str(key): row for key, row in zip(*_ids_and_rows(back), strict=True)} == written


def _ids_and_rows(table: pw.Table) -> tuple[list[Any], list[tuple]]:
    keys, columns = pw.debug.table_to_dicts(table)
    return list(keys), [tuple(columns[n][k] for n in table.column_names()) for k in keys]


def test_bad_diff_values_are_skipped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_deltalake(
        str(tmp_path / "lake"),
        pa.table({"k": [1, 2], "v": ["a", "b"], "time": [2, 2], "diff": [1, 7]}),
    )
    with caplog.at_level(logging.ERROR, logger="deltaflow.io.deltalake"):
        rows = final_rows(pw.io.deltalake.read(tmp_path / "lake", KV, mode="static"))
    assert rows == [(1, "a")]
    assert "'diff'" in caplog.text and "1 or -1" in caplog.text


def test_hosted_s3_settings_give_the_service_endpoint() -> None:
    from deltaflow.io.deltalake._storage import resolve

    spaces = pw.io.deltalake.DigitalOceanS3Settings(
        "b", access_key="key-id", secret_access_key="secret-key", region="ams3"
    )
    location = resolve("s3://b/t", spaces, "test")
    assert location.storage_options is not None
    assert location.storage_options["AWS_ENDPOINT_URL"] == "https://ams3.digitaloceanspaces.com"
    assert "secret-key" not in repr(spaces) and "secret-key" not in repr(location)
    wasabi = pw.io.deltalake.WasabiS3Settings("b", region="eu-central-1")
    assert (
        resolve("s3://b/t", wasabi, "test").storage_options["AWS_ENDPOINT_URL"]
        == "https://s3.eu-central-1.wasabisys.com"
    )
