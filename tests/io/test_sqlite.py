"""pw.io.sqlite: writes read back, init modes, type round trips, bad input, failures."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorError
from deltaflow.io import sqlite as sqlite_io


def _rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def _execute(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def _values(table: pw.Table) -> list[dict[str, Any]]:
    """Final rows of ``table`` as dicts, ordered by their repr (values may not be orderable)."""
    keys, columns = pw.debug.table_to_dicts(table)
    rows = [{name: columns[name][key] for name in table.column_names()} for key in keys]
    return sorted(rows, key=repr)


_STREAM = """
 k | v  | s  | __time__ | __diff__
 1 | 10 | a  | 2        | 1
 2 | 20 | b  | 2        | 1
 1 | 10 | a  | 4        | -1
 1 | 11 | a2 | 4        | 1
 3 | 30 | c  | 4        | 1
 2 | 20 | b  | 6        | -1
"""


class KVS(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    v: int
    s: str


# ------------------------------------------------------------------------------------------
# Writing and reading back
# ------------------------------------------------------------------------------------------


def test_stream_of_changes_write_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    table = pw.debug.table_from_markdown(_STREAM)
    pw.io.sqlite.write(table, db, "changes", init_mode="create_if_not_exists")
    pw.run()
    stored = _rows(db, "SELECT k, v, s, time, diff FROM changes ORDER BY time, diff, k")
    assert stored == [
        (1, 10, "a", 2, 1),
        (2, 20, "b", 2, 1),
        (1, 10, "a", 4, -1),
        (1, 11, "a2", 4, 1),
        (3, 30, "c", 4, 1),
        (2, 20, "b", 6, -1),
    ]
    declared = {r[1]: r[2] for r in _rows(db, "PRAGMA table_info(changes)")}
    assert declared["time"] == "INTEGER" and declared["diff"] == "INTEGER"

    class Log(pw.Schema):
        k: int
        v: int
        s: str
        time: int
        diff: int

    pw.clear_graph()
    back = pw.io.sqlite.read(db, "changes", Log, mode="static")
    rows = _values(back)
    assert sorted((r["k"], r["v"], r["s"], r["time"], r["diff"]) for r in rows) == sorted(stored)


def test_snapshot_write_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    table = pw.debug.table_from_markdown(_STREAM)
    pw.io.sqlite.write(
        table,
        db,
        "state",
        init_mode="create_if_not_exists",
        output_table_type="snapshot",
        primary_key=[table.k],
    )
    pw.run()
    assert _rows(db, "SELECT k, v, s FROM state ORDER BY k") == [(1, 11, "a2"), (3, 30, "c")]
    columns = [r[1] for r in _rows(db, "PRAGMA table_info(state)")]
    assert columns == ["k", "v", "s"]  # no time/diff in snapshot mode
    pk = [r[1] for r in _rows(db, "PRAGMA table_info(state)") if r[5]]
    assert pk == ["k"]

    pw.clear_graph()
    back = pw.io.sqlite.read(db, "state", KVS, mode="static")
    assert _values(back) == [{"k": 1, "v": 11, "s": "a2"}, {"k": 3, "v": 30, "s": "c"}]
    # With a primary key the ids are those of the key, as for any keyed input.
    expected = pw.debug.table_from_rows(KVS, [(1, 11, "a2"), (3, 30, "c")])
    pw.clear_graph()
    back = pw.io.sqlite.read(db, "state", KVS, mode="static")
    assert set(pw.debug.table_to_dicts(back)[0]) == set(pw.debug.table_to_dicts(expected)[0])


def test_snapshot_composite_key_and_split_batches(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    rows = [(i % 7, i % 5, i, 2, 1) for i in range(35)]
    rows += [(i % 7, i % 5, i, 4, -1) for i in range(0, 35, 3)]
    rows += [(i % 7, i % 5, i + 100, 4, 1) for i in range(0, 35, 6)]

    class S(pw.Schema):
        a: int
        b: int
        v: int

    table = pw.debug.table_from_rows(S, rows, is_stream=True)
    table = table.with_id_from(table.a, table.b)
    pw.io.sqlite.write(
        table,
        db,
        "state",
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[table.a, table.b],
        max_batch_size=4,
    )
    pw.run()
    expected = {(i % 7, i % 5): i for i in range(35) if i % 3}
    expected.update({(i % 7, i % 5): i + 100 for i in range(0, 35, 6)})
    stored = {(a, b): v for a, b, v in _rows(db, "SELECT a, b, v FROM state")}
    assert stored == expected


def test_stream_of_changes_max_batch_size_writes_each_row_once(tmp_path: Path) -> None:
    db = tmp_path / "out.db"

    class S(pw.Schema):
        n: int

    table = pw.debug.table_from_rows(
        S, [(i, 2 * (i // 10 + 1), 1) for i in range(95)], is_stream=True
    )
    pw.io.sqlite.write(table, db, "log", init_mode="create_if_not_exists", max_batch_size=7)
    pw.run()
    stored = _rows(db, "SELECT n, time FROM log ORDER BY n")
    assert stored == [(i, 2 * (i // 10 + 1)) for i in range(95)]


# ------------------------------------------------------------------------------------------
# init_mode
# ------------------------------------------------------------------------------------------


def test_init_mode_default_appends_to_existing_table(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    _execute(
        db,
        "CREATE TABLE t (k INTEGER, v INTEGER, s TEXT, extra TEXT DEFAULT 'x', "
        "time INTEGER, diff INTEGER)",
        "INSERT INTO t (k, v, s, time, diff) VALUES (0, 0, 'old', 0, 1)",
    )
    table = pw.debug.table_from_markdown(_STREAM)
    pw.io.sqlite.write(table, db, "t")
    pw.run()
    stored = _rows(db, "SELECT k, s, extra FROM t ORDER BY time, diff, k")
    assert stored[0] == (0, "old", "x")
    assert len(stored) == 7


def test_init_mode_default_missing_table_fails_before_reading(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    table = pw.debug.table_from_markdown(_STREAM)
    pw.io.sqlite.write(table, db, "nowhere")
    with pytest.raises(ConnectorError, match="does not exist.*create_if_not_exists"):
        pw.run()


def test_init_mode_default_rejects_unfitting_table(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    _execute(
        db, "CREATE TABLE t (k INTEGER, v TEXT, time INTEGER, diff INTEGER, must TEXT NOT NULL)"
    )
    table = pw.debug.table_from_markdown(_STREAM)
    pw.io.sqlite.write(table, db, "t")
    with pytest.raises(ConnectorError) as info:
        pw.run()
    message = str(info.value)
    assert "column 's' is missing" in message
    assert "'must' is NOT NULL" in message
    assert "'v' is declared 'TEXT'" in message


def test_init_mode_default_snapshot_needs_key_constraint(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    _execute(db, "CREATE TABLE t (k INTEGER, v INTEGER, s TEXT)")
    table = pw.debug.table_from_markdown(_STREAM)
    pw.io.sqlite.write(table, db, "t", output_table_type="snapshot", primary_key=[table.k])
    with pytest.raises(ConnectorError, match="PRIMARY KEY or UNIQUE"):
        pw.run()


def test_init_mode_create_if_not_exists_keeps_existing_rows(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    for _ in range(2):
        pw.clear_graph()
        table = pw.debug.table_from_markdown(_STREAM)
        pw.io.sqlite.write(table, db, "t", init_mode="create_if_not_exists")
        pw.run()
    assert _rows(db, "SELECT count(*) FROM t") == [(12,)]


def test_init_mode_replace_drops_old_contents_and_shape(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    _execute(db, "CREATE TABLE t (other TEXT)", "INSERT INTO t VALUES ('stale')")
    table = pw.debug.table_from_markdown(_STREAM)
    pw.io.sqlite.write(
        table, db, "t", init_mode="replace", output_table_type="snapshot", primary_key=[table.k]
    )
    pw.run()
    assert [r[1] for r in _rows(db, "PRAGMA table_info(t)")] == ["k", "v", "s"]
    assert _rows(db, "SELECT k, v, s FROM t ORDER BY k") == [(1, 11, "a2"), (3, 30, "c")]


def test_writer_switches_database_to_wal(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    table = pw.debug.table_from_markdown(_STREAM)
    pw.io.sqlite.write(table, db, "t", init_mode="create_if_not_exists")
    pw.run()
    assert _rows(db, "PRAGMA journal_mode") == [("wal",)]


# ------------------------------------------------------------------------------------------
# Types
# ------------------------------------------------------------------------------------------


class AllTypes(pw.Schema):
    key: int = pw.column_definition(primary_key=True)
    i: int
    f: float
    b: bool
    s: str
    y: bytes
    dn: pw.DateTimeNaive
    du: pw.DateTimeUtc
    d: pw.Duration
    j: pw.Json
    p: pw.Pointer
    tp: tuple[int, str | None, tuple[float, bool]]
    tx: tuple[pw.DateTimeNaive, pw.Duration, bytes, pw.Pointer, pw.Json]
    ls: list[int]
    arr: np.ndarray
    oi: int | None
    of: float | None
    os_: str | None
    ody: bytes | None
    odn: pw.DateTimeNaive | None
    odu: pw.DateTimeUtc | None
    od: pw.Duration | None
    oj: pw.Json | None
    op: pw.Pointer | None
    otp: tuple[int, int] | None
    oarr: np.ndarray | None


def _all_types_rows() -> list[tuple]:
    ts = pd.Timestamp
    return [
        (
            1,
            2**63 - 1,
            1.5,
            True,
            "hello",
            b"\x00\xffab",
            ts("2024-01-02 03:04:05.123456789"),
            ts("2024-01-02 03:04:05.123456789", tz="UTC"),
            pd.Timedelta(1_500_000_001, unit="ns"),
            pw.Json({"a": [1, None], "b": "x"}),
            pw.Pointer(12345),
            (1, "a", (2.5, False)),
            (
                ts("1969-12-31 23:59:59.999999999"),
                pd.Timedelta(-5, unit="s"),
                b"\x01",
                pw.Pointer(2**127 + 3),
                pw.Json([1, {"z": None}]),
            ),
            (1, 2, 3),
            np.array([[1.5, 2.0], [3.0, 4.0]]),
            -(2**63),
            -0.25,
            "ü€ 'q' \"dq\"\n",
            b"",
            ts("1900-01-01"),
            ts("2262-04-11 23:47:16.854775807", tz="UTC"),
            pd.Timedelta(0),
            pw.Json("just text"),
            pw.Pointer(2**128 - 1),
            (7, 8),
            np.array([1, 2, 3]),
        ),
        (
            2,
            0,
            float("inf"),
            False,
            "",
            b"bytes",
            ts("2000-02-29 00:00:00"),
            ts("2024-06-30 12:00:00", tz="Europe/Paris"),
            pd.Timedelta(-1, unit="ns"),
            pw.Json(None),
            pw.Pointer(0),
            (-1, None, (1e20, True)),
            (ts("2024-01-01"), pd.Timedelta(1, unit="ns"), b"", pw.Pointer(1), pw.Json(3.5)),
            (),
            np.array([[[1, 2]], [[3, 4]]]),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            3,
            -7,
            float("-inf"),
            True,
            "x",
            b"z",
            ts("2024-01-02 03:04:05"),
            ts("2024-01-02 03:04:05", tz="UTC"),
            pd.Timedelta(days=3),
            pw.Json([1, 2.0, "three", True]),
            pw.Pointer(2**64),
            (0, "", (0.1, True)),
            (ts("2024-01-01"), pd.Timedelta(0), b"abc", pw.Pointer(5), pw.Json({})),
            (5,),
            np.array([0.1, 1e-300]),
            0,
            1e-300,
            "",
            b"\xff",
            ts("1970-01-01"),
            ts("1970-01-01", tz="UTC"),
            pd.Timedelta(1, unit="ns"),
            pw.Json(None),
            pw.Pointer(9),
            (0, 0),
            np.array([[1.0]]),
        ),
    ]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool((a == b).all())
        )
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, pd.Timestamp) and isinstance(b, pd.Timestamp):
        return a.value == b.value and (a.tzinfo is None) == (b.tzinfo is None)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("mode", ["stream_of_changes", "snapshot"])
def test_every_type_round_trips(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "types.db"
    source = pw.debug.table_from_rows(AllTypes, _all_types_rows())
    expected = _values(source)
    pw.clear_graph()
    source = pw.debug.table_from_rows(AllTypes, _all_types_rows())
    kwargs: dict[str, Any] = {"primary_key": [source.key]} if mode == "snapshot" else {}
    pw.io.sqlite.write(source, db, "types", init_mode="replace", output_table_type=mode, **kwargs)
    pw.run()
    pw.clear_graph()
    # a stream_of_changes table has no key constraint: read it by rowid
    schema = AllTypes if mode == "snapshot" else pw.schema_from_types(**AllTypes.typehints())
    back = _values(pw.io.sqlite.read(db, "types", schema, mode="static"))
    assert len(back) == len(expected) == 3
    by_key = {row["key"]: row for row in back}
    for want in expected:
        got = by_key[want["key"]]
        for column, value in want.items():
            assert _same(got[column], value), (column, got[column], value)


def test_type_mapping_covers_every_storable_type_and_matches_declared_columns(
    tmp_path: Path,
) -> None:
    db = tmp_path / "types.db"
    table = pw.debug.table_from_rows(AllTypes, _all_types_rows())
    pw.io.sqlite.write(table, db, "types", init_mode="replace")
    pw.run()
    declared = {r[1]: (r[2], r[3]) for r in _rows(db, "PRAGMA table_info(types)")}
    for column, dtype in AllTypes.dtypes().items():
        key = sqlite_io.mapping_key(dtype)
        assert key in sqlite_io.TYPE_MAPPING
        assert declared[column] == (
            sqlite_io.TYPE_MAPPING[key].declared,
            0 if dtype.is_optional else 1,
        )
    typeofs = _rows(
        db,
        "SELECT typeof(i), typeof(f), typeof(b), typeof(s), typeof(y), "
        "typeof(dn), typeof(du), typeof(d), typeof(j), typeof(p), typeof(tp), "
        "typeof(arr) FROM types WHERE key = 1",
    )
    assert typeofs == [
        (
            "integer",
            "real",
            "integer",
            "text",
            "blob",
            "text",
            "text",
            "integer",
            "text",
            "text",
            "text",
            "text",
        )
    ]


def test_stored_encodings_are_pathway_s(tmp_path: Path) -> None:
    """The exact texts Pathway 0.33 stores for the same values (observed with its writer)."""
    db = tmp_path / "enc.db"

    class S(pw.Schema):
        b: bool
        dn: pw.DateTimeNaive
        du: pw.DateTimeUtc
        d: pw.Duration
        j: pw.Json
        tp: tuple[int, str]
        ls: list[int]
        arr: np.ndarray
        ai: np.ndarray
        tx: tuple[pw.Pointer, bytes, pw.DateTimeNaive, pw.Duration, pw.DateTimeUtc, pw.Json]

    row = (
        True,
        pd.Timestamp("2024-01-02 03:04:05.123456789"),
        pd.Timestamp("2024-01-02 03:04:05.123456789", tz="UTC"),
        pd.Timedelta(1_500_000_001, unit="ns"),
        pw.Json({"a": [1, None], "b": "x"}),
        (1, "a"),
        [1, 2, 3],
        np.array([[1.5, 2.0], [3.0, 4.0]]),
        np.array([1, 2, 3]),
        (
            pw.Pointer(7),
            b"xy",
            pd.Timestamp("2024-01-01 00:00:01"),
            pd.Timedelta(3, unit="s"),
            pd.Timestamp("2024-01-01", tz="UTC"),
            pw.Json({"x": 1}),
        ),
    )
    table = pw.debug.table_from_rows(S, [row])
    pw.io.sqlite.write(table, db, "t", init_mode="replace")
    pw.run()
    stored = _rows(db, "SELECT b, dn, du, d, j, tp, ls, arr, ai, tx FROM t")[0]
    assert stored[:9] == (
        1,
        "2024-01-02T03:04:05.123456789",
        "2024-01-02T03:04:05.123456789+0000",
        1500000001,
        '{"a":[1,null],"b":"x"}',
        '[1,"a"]',
        "[1,2,3]",
        '{"shape":[2,2],"elements":[1.5,2.0,3.0,4.0]}',
        '{"shape":[3],"elements":[1,2,3]}',
    )
    assert stored[9] == (
        f'["{pw.Pointer(7)}","eHk=","2024-01-01T00:00:01.000000000",'
        '3000000000,"2024-01-01T00:00:00.000000000+0000",{"x":1}]'
    )


def test_reads_a_database_laid_out_by_pathway(tmp_path: Path) -> None:
    """A table with the DDL and values Pathway 0.33's writer produced."""
    db = tmp_path / "pathway.db"
    _execute(
        db,
        'CREATE TABLE "soc" ("i" INTEGER NOT NULL, "f" REAL NOT NULL, '
        '"b" INTEGER NOT NULL, "y" BLOB NOT NULL, "dn" TEXT NOT NULL, '
        '"du" TEXT NOT NULL, "d" INTEGER NOT NULL, "j" TEXT NOT NULL, '
        '"ls" TEXT NOT NULL, "arr" TEXT NOT NULL, "on" INTEGER, '
        '"p" TEXT NOT NULL, time BIGINT NOT NULL, diff SMALLINT NOT NULL )',
        "INSERT INTO soc VALUES (1, 1.5, 1, x'00ff', '2024-01-02T03:04:05.123456789', "
        "'2024-01-02T03:04:05.123456789+0000', 1500000001, '{\"a\":[1,null]}', "
        "'[1,2,3]', '{\"shape\":[3],\"elements\":[1,2,3]}', NULL, "
        "'^X1MXHYYG4YM0DB900V28XN5T4W', 0, 1)",
        # SQL-92 datetimes (what CURRENT_TIMESTAMP writes) are accepted too
        "INSERT INTO soc VALUES (2, 2, 0, x'', '2024-01-02 03:04:05', "
        "'2024-01-02 03:04:05.5+01:00', 0, 'null', '[]', "
        "'{\"shape\":[0],\"elements\":[]}', 4, '^X', 0, 1)",
    )

    class S(pw.Schema):
        i: int
        f: float
        b: bool
        y: bytes
        dn: pw.DateTimeNaive
        du: pw.DateTimeUtc
        d: pw.Duration
        j: pw.Json
        ls: list[int]
        arr: np.ndarray
        on: int | None
        p: str  # pointers are ids of the writing system; read them as text
        time: int
        diff: int

    rows = {r["i"]: r for r in _values(pw.io.sqlite.read(db, "soc", S, mode="static"))}
    first = rows[1]
    assert first["y"] == b"\x00\xff" and first["b"] is True and first["f"] == 1.5
    assert first["dn"] == pd.Timestamp("2024-01-02 03:04:05.123456789")
    assert first["du"] == pd.Timestamp("2024-01-02 03:04:05.123456789", tz="UTC")
    assert first["d"] == pd.Timedelta(1_500_000_001, unit="ns")
    assert first["j"] == pw.Json({"a": [1, None]})
    assert first["ls"] == (1, 2, 3)
    assert _same(first["arr"], np.array([1, 2, 3]))
    assert first["on"] is None and first["p"] == "^X1MXHYYG4YM0DB900V28XN5T4W"
    second = rows[2]
    assert second["f"] == 2.0 and isinstance(second["f"], float)
    assert second["dn"] == pd.Timestamp("2024-01-02 03:04:05")
    assert second["du"] == pd.Timestamp("2024-01-02 02:04:05.5", tz="UTC")
    assert second["j"] == pw.Json(None) and second["ls"] == ()


def test_rows_not_fitting_the_schema_are_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "mixed.db"
    _execute(
        db,
        "CREATE TABLE t (k, when_ TEXT)",
        "INSERT INTO t VALUES (1, '2024-01-01T00:00:00')",
        "INSERT INTO t VALUES ('two', '2024-01-01T00:00:00')",
        "INSERT INTO t VALUES (3, 'not a date')",
        "INSERT INTO t VALUES (NULL, '2024-01-01T00:00:00')",
    )

    class S(pw.Schema):
        k: int
        when_: pw.DateTimeNaive

    with caplog.at_level("ERROR", logger="deltaflow.io.sqlite"):
        rows = _values(pw.io.sqlite.read(db, "t", S, mode="static"))
    assert [r["k"] for r in rows] == [1]
    assert "skipped" in caplog.text


# ------------------------------------------------------------------------------------------
# Names that need quoting
# ------------------------------------------------------------------------------------------


def test_odd_table_and_column_names_are_quoted(tmp_path: Path) -> None:
    db = tmp_path / "odd.db"
    _execute(db, "CREATE TABLE sentinel (x)")
    table_name = 'my "odd" table; DROP TABLE sentinel; --'
    source = pw.debug.table_from_markdown("""
     a | b
     1 | x
     2 | y
    """)
    source = source.select(**{"select": source.a, "a b": source.b, 'q"t': source.a * 10})
    pw.io.sqlite.write(
        source,
        db,
        table_name,
        init_mode="create_if_not_exists",
        output_table_type="snapshot",
        primary_key=[source["select"]],
    )
    pw.run()
    assert _rows(db, "SELECT name FROM sqlite_master WHERE name = 'sentinel'") == [("sentinel",)]
    quoted = '"' + table_name.replace('"', '""') + '"'
    assert sorted(_rows(db, f'SELECT "select", "a b", "q""t" FROM {quoted}')) == [
        (1, "x", 10),
        (2, "y", 20),
    ]

    S = pw.schema_from_types(**{"select": int, "a b": str, 'q"t': int})
    pw.clear_graph()
    back = _values(pw.io.sqlite.read(db, table_name, S, mode="static"))
    assert back == [{"select": 1, "a b": "x", 'q"t': 10}, {"select": 2, "a b": "y", 'q"t': 20}]


# ------------------------------------------------------------------------------------------
# Bad input, rejected when the pipeline is defined
# ------------------------------------------------------------------------------------------


@pytest.fixture
def kv_table() -> pw.Table:
    return pw.debug.table_from_markdown(_STREAM)


def test_snapshot_without_primary_key_is_rejected(tmp_path: Path, kv_table: pw.Table) -> None:
    with pytest.raises(ValueError, match="requires primary_key"):
        pw.io.sqlite.write(kv_table, tmp_path / "x.db", "t", output_table_type="snapshot")


def test_primary_key_in_stream_of_changes_is_rejected(tmp_path: Path, kv_table: pw.Table) -> None:
    with pytest.raises(ValueError, match="only used with output_table_type='snapshot'"):
        pw.io.sqlite.write(kv_table, tmp_path / "x.db", "t", primary_key=[kv_table.k])


def test_optional_or_repeated_primary_key_is_rejected(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown("""
     k | v
     1 | 2
     2 | None
    """)
    with pytest.raises(ValueError, match=r"\['v'\] are Optional"):
        pw.io.sqlite.write(
            table, tmp_path / "x.db", "t", output_table_type="snapshot", primary_key=[table.v]
        )
    with pytest.raises(ValueError, match=r"repeats column\(s\) \['k'\]"):
        pw.io.sqlite.write(
            table,
            tmp_path / "x.db",
            "t",
            output_table_type="snapshot",
            primary_key=[table.k, table.k],
        )
    with pytest.raises(ValueError, match="not a column"):
        pw.io.sqlite.write(
            table, tmp_path / "x.db", "t", output_table_type="snapshot", primary_key=["nope"]
        )


def test_column_names_equal_up_to_case_are_rejected(tmp_path: Path, kv_table: pw.Table) -> None:
    table = kv_table.select(name=kv_table.s, NAME=kv_table.v)
    with pytest.raises(ValueError, match="differ only in case"):
        pw.io.sqlite.write(table, tmp_path / "x.db", "t")


def test_time_or_diff_columns_in_stream_of_changes_are_rejected(
    tmp_path: Path, kv_table: pw.Table
) -> None:
    table = kv_table.select(kv_table.k, Time=kv_table.v)
    with pytest.raises(ValueError, match=r"\['Time'\] clash"):
        pw.io.sqlite.write(table, tmp_path / "x.db", "t")
    # ... but fine in snapshot mode
    pw.io.sqlite.write(
        table, tmp_path / "x.db", "t", output_table_type="snapshot", primary_key=[table.k]
    )


def test_bad_paths_are_rejected(tmp_path: Path, kv_table: pw.Table) -> None:
    not_db = tmp_path / "notes.txt"
    not_db.write_text("this is not a database, just some text long enough")
    for path in (tmp_path, not_db):
        with pytest.raises(ValueError, match="directory|not an SQLite database"):
            pw.io.sqlite.write(kv_table, path, "t")
        with pytest.raises(ValueError, match="directory|not an SQLite database"):
            pw.io.sqlite.read(path, "t", KVS)
    with pytest.raises(ValueError, match="does not exist"):
        pw.io.sqlite.read(tmp_path / "missing.db", "t", KVS)
    with pytest.raises(ValueError, match="does not exist; create it first"):
        pw.io.sqlite.write(kv_table, tmp_path / "no" / "dir.db", "t")


def test_bad_arguments_are_rejected(tmp_path: Path, kv_table: pw.Table) -> None:
    db = tmp_path / "x.db"
    with pytest.raises(ValueError, match="init_mode"):
        pw.io.sqlite.write(kv_table, db, "t", init_mode="truncate")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="output_table_type"):
        pw.io.sqlite.write(kv_table, db, "t", output_table_type="log")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_batch_size"):
        pw.io.sqlite.write(kv_table, db, "t", max_batch_size=0)
    with pytest.raises(ValueError, match="table_name"):
        pw.io.sqlite.write(kv_table, db, "")
    with_any = kv_table.select(x=pw.apply(lambda v: v, kv_table.v))
    with pytest.raises(TypeError, match="no SQLite mapping"):
        pw.io.sqlite.write(with_any, db, "t")
    _execute(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER, s TEXT)")
    with pytest.raises(ValueError, match="mode"):
        pw.io.sqlite.read(db, "t", KVS, mode="once")  # type: ignore[arg-type]


def test_read_rejects_missing_tables_and_columns(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    _execute(
        db,
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)",
        "CREATE TABLE nokey (k INTEGER, v INTEGER, s TEXT)",
        "CREATE VIEW w AS SELECT k, v, 'x' AS s FROM t",
        "CREATE TABLE shadow (rowid_ INTEGER, oid TEXT, k INTEGER, v INTEGER, s TEXT)",
    )
    with pytest.raises(ValueError, match=r"column\(s\) \['s'\] are not in table 't'"):
        pw.io.sqlite.read(db, "t", KVS)
    with pytest.raises(ValueError, match="no table or view 'absent'"):
        pw.io.sqlite.read(db, "absent", KVS)
    with pytest.raises(ValueError, match="PRIMARY KEY or UNIQUE"):
        pw.io.sqlite.read(db, "nokey", KVS)

    class NoKey(pw.Schema):
        k: int
        v: int
        s: str

    with pytest.raises(ValueError, match="it is a view"):
        pw.io.sqlite.read(db, "w", NoKey)
    with pytest.raises(ValueError, match="hide SQLite's rowid"):
        pw.io.sqlite.read(db, "shadow", NoKey)
    # a view with a declared key is trusted; names match case-insensitively
    view = pw.io.sqlite.read(db, "W", KVS, mode="static")
    assert _values(view) == []


@pytest.mark.parametrize(
    ("ddl", "name", "kind"),
    [
        ("CREATE TRIGGER audit AFTER INSERT ON base BEGIN SELECT 1; END", "Audit", "trigger"),
        ("CREATE INDEX by_v ON base(v)", "by_v", "index"),
    ],
)
@pytest.mark.parametrize("init_mode", ["create_if_not_exists", "replace"])
def test_write_refuses_a_name_of_an_index_or_trigger(
    tmp_path: Path, ddl: str, name: str, kind: str, init_mode: str
) -> None:
    db = tmp_path / "x.db"
    _execute(db, "CREATE TABLE base (k INTEGER PRIMARY KEY, v INTEGER)", ddl)
    table = pw.debug.table_from_markdown("k | v\n1 | 2")
    pw.io.sqlite.write(table, db, name, init_mode=init_mode)
    with pytest.raises(ConnectorError, match=f"names a SQLite {kind}"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    with sqlite3.connect(db) as connection:  # nothing was created beside it
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert [row[0] for row in tables] == ["base"]


# ------------------------------------------------------------------------------------------
# Failures: rollback, retry
# ------------------------------------------------------------------------------------------


def test_failed_transaction_is_rolled_back_and_reported(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    _execute(
        db,
        "CREATE TABLE t (k INTEGER, v INTEGER CHECK (v < 100), s TEXT, time INTEGER, diff INTEGER)",
    )
    table = pw.debug.table_from_markdown("""
     k | v   | s | __time__
     1 | 1   | a | 2
     2 | 2   | b | 4
     3 | 500 | c | 4
    """)
    pw.io.sqlite.write(table, db, "t")
    with pytest.raises(ConnectorError, match="rolled back.*CHECK constraint"):
        pw.run()
    # time 2 was committed; nothing of time 4 (its second row failed) is in the table
    assert _rows(db, "SELECT k, time FROM t") == [(1, 2)]


def test_busy_database_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "x.db"
    _execute(
        db,
        "PRAGMA journal_mode = WAL",
        "CREATE TABLE t (k INTEGER, v INTEGER, s TEXT, time INTEGER, diff INTEGER)",
    )
    monkeypatch.setattr(sqlite_io._settings, "BUSY_TIMEOUT_S", 0.2)
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    release = threading.Timer(0.6, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        table = pw.debug.table_from_markdown(_STREAM)
        pw.io.sqlite.write(table, db, "t")
        with caplog.at_level("WARNING", logger="deltaflow.io.sqlite"):
            pw.run()
    finally:
        release.join()
        blocker.close()
    assert "retrying" in caplog.text
    assert _rows(db, "SELECT count(*) FROM t") == [(6,)]  # every row once


# ------------------------------------------------------------------------------------------
# Reading details
# ------------------------------------------------------------------------------------------


def test_rowid_identity_and_backlog_limit(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    _execute(db, "CREATE TABLE t (v INTEGER, s TEXT)")
    connection = sqlite3.connect(db)
    connection.executemany("INSERT INTO t VALUES (?, ?)", [(i, str(i)) for i in range(1000)])
    connection.commit()
    connection.close()

    class S(pw.Schema):
        v: int
        s: str

    table = pw.io.sqlite.read(db, "t", S, mode="static", max_backlog_size=64)
    keys, columns = pw.debug.table_to_dicts(table)
    assert len(keys) == 1000 and sorted(columns["v"].values()) == list(range(1000))


def test_reader_reports_updates_and_deletions_between_polls(tmp_path: Path) -> None:
    """Drives the Reader contract directly: read(), change the table, read() again."""
    db = tmp_path / "x.db"
    _execute(
        db,
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER, s TEXT)",
        "INSERT INTO t VALUES (1, 10, 'a'), (2, 20, 'b')",
    )
    spec = sqlite_io._inspect_source("test", str(db), "t", KVS.dtypes(), ["k"])
    reader = sqlite_io.SqliteReader(spec, static=False)
    try:
        first = reader.read()
        assert isinstance(first, sqlite_io.Data)
        assert sorted(first.context.frame["k"].to_list()) == [1, 2]
        assert reader.read() is None  # nothing committed since
        _execute(
            db,
            "UPDATE t SET v = 11 WHERE k = 1",
            "DELETE FROM t WHERE k = 2",
            "INSERT INTO t VALUES (3, 30, 'c')",
        )
        second = reader.read()
        assert isinstance(second, sqlite_io.Data)
        frame = second.context.frame
        changes = sorted(zip(frame["_kind"], frame["k"], frame["v"], strict=True))
        assert changes == [
            ("delete", 1, 10),
            ("delete", 2, 20),
            ("insert", 1, 11),
            ("insert", 3, 30),
        ]
        _execute(db, "UPDATE t SET v = v WHERE k = 1")  # a commit without a change
        assert reader.read() is None
    finally:
        reader.close()


def test_nan_in_a_non_optional_float_column_is_reported(tmp_path: Path) -> None:
    db = tmp_path / "x.db"

    class S(pw.Schema):
        k: int
        f: float

    table = pw.debug.table_from_rows(S, [(1, 1.0), (2, float("nan"))])
    pw.io.sqlite.write(table, db, "t", init_mode="create_if_not_exists")
    with pytest.raises(ConnectorError, match="column 'f' .*NaN.*Optional"):
        pw.run()
    assert _rows(db, "SELECT count(*) FROM t") == [(0,)]


def test_nan_in_an_optional_float_column_is_stored_as_null(tmp_path: Path) -> None:
    db = tmp_path / "x.db"

    class S(pw.Schema):
        k: int
        f: float | None

    table = pw.debug.table_from_rows(S, [(1, 1.0), (2, float("nan"))])
    pw.io.sqlite.write(table, db, "t", init_mode="create_if_not_exists")
    pw.run()
    assert _rows(db, "SELECT k, f FROM t ORDER BY k") == [(1, 1.0), (2, None)]


def test_rows_sharing_a_key_in_one_poll_keep_the_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "x.db"
    _execute(
        db,
        "CREATE TABLE t (k INTEGER UNIQUE, v INTEGER)",
        "INSERT INTO t VALUES (NULL, 1), (NULL, 2), (5, 3)",
    )

    class S(pw.Schema):
        k: int | None = pw.column_definition(primary_key=True)
        v: int

    with caplog.at_level("ERROR", logger="deltaflow.io.sqlite"):
        rows = _values(pw.io.sqlite.read(db, "t", S, mode="static"))
    assert rows == [{"k": 5, "v": 3}, {"k": None, "v": 1}]
    assert "primary key already used" in caplog.text
