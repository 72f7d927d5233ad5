"""pw.io.postgres.write / write_snapshot against a real PostgreSQL: modes, init modes, every
type read back, bad rows, quoting, argument checks."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
from postgres_server import (  # noqa: F401 - *_fixture: the postgres_server and pg fixtures
    PgDatabase,
    PostgresServer,
    pg_fixture,
    postgres_server_fixture,
)

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorError

pytestmark = pytest.mark.server

_STREAM = """
 k | v  | s  | __time__ | __diff__
 1 | 10 | a  | 2        | 1
 2 | 20 | b  | 2        | 1
 1 | 10 | a  | 4        | -1
 1 | 11 | a2 | 4        | 1
 3 | 30 | c  | 4        | 1
 2 | 20 | b  | 6        | -1
"""


def _run() -> None:
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def _stream_table() -> pw.Table:
    return pw.debug.table_from_markdown(_STREAM)


def test_stream_of_changes_appends_every_change_with_time_and_diff(pg: PgDatabase) -> None:
    pw.io.postgres.write(_stream_table(), pg.settings, "changes", init_mode="create_if_not_exists")
    _run()
    rows = pg.execute("SELECT k, v, s, time, diff FROM changes ORDER BY time, diff, k")
    assert rows == [
        (1, 10, "a", 2, 1),
        (2, 20, "b", 2, 1),
        (1, 10, "a", 4, -1),
        (1, 11, "a2", 4, 1),
        (3, 30, "c", 4, 1),
        (2, 20, "b", 6, -1),
    ]
    columns = pg.execute(
        "SELECT column_name, data_type, is_nullable FROM "
        "information_schema.columns WHERE table_name = 'changes' "
        "ORDER BY ordinal_position"
    )
    assert columns == [
        ("k", "bigint", "NO"),
        ("v", "bigint", "NO"),
        ("s", "text", "NO"),
        ("time", "bigint", "NO"),
        ("diff", "smallint", "NO"),
    ]


def test_each_minibatch_is_one_transaction(pg: PgDatabase) -> None:
    pw.io.postgres.write(_stream_table(), pg.settings, "changes", init_mode="replace")
    _run()
    # Rows inserted by one transaction share its xmin: one per time here.
    per_time = pg.execute(
        "SELECT time, count(DISTINCT xmin::text) FROM changes GROUP BY time ORDER BY time"
    )
    assert per_time == [(2, 1), (4, 1), (6, 1)]
    assert pg.execute("SELECT count(DISTINCT xmin::text) FROM changes") == [(3,)]


def test_max_batch_size_splits_stream_transactions(pg: PgDatabase) -> None:
    table = pw.debug.table_from_markdown("\n".join(["k"] + [str(i) for i in range(10)]))
    pw.io.postgres.write(table, pg.settings, "split", init_mode="replace", max_batch_size=3)
    _run()
    assert pg.execute("SELECT count(*), count(DISTINCT k) FROM split") == [(10, 10)]
    assert pg.execute("SELECT count(DISTINCT xmin::text) FROM split") == [(4,)]


def test_snapshot_keeps_current_rows(pg: PgDatabase) -> None:
    table = _stream_table()
    pw.io.postgres.write(
        table,
        pg.settings,
        "snap",
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[table.k],
    )
    _run()
    assert pg.execute("SELECT k, v, s FROM snap ORDER BY k") == [(1, 11, "a2"), (3, 30, "c")]
    assert pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE "
        "table_name = 'snap' ORDER BY ordinal_position"
    ) == [("k",), ("v",), ("s",)]
    key = pg.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE "
        "conrelid = 'snap'::regclass AND contype = 'p'"
    )
    assert key == [("PRIMARY KEY (k)",)]


def test_snapshot_composite_key_and_shared_key_within_a_batch(pg: PgDatabase) -> None:
    table = pw.debug.table_from_markdown("""
        a | b | v | __time__ | __diff__
        1 | x | 1 | 2        | 1
        1 | y | 2 | 2        | 1
        2 | x | 3 | 2        | 1
        1 | x | 1 | 4        | -1
        2 | x | 3 | 4        | -1
        2 | x | 4 | 4        | 1
        """)
    pw.io.postgres.write(
        table,
        pg.settings,
        "comp",
        init_mode="create_if_not_exists",
        output_table_type="snapshot",
        primary_key=[table.a, table.b],
    )
    _run()
    assert pg.execute("SELECT a, b, v FROM comp ORDER BY a, b") == [(1, "y", 2), (2, "x", 4)]


def test_write_snapshot_legacy_form_keeps_time_and_diff(pg: PgDatabase) -> None:
    with pytest.warns(DeprecationWarning):
        pw.io.postgres.write_snapshot(
            _stream_table(), pg.settings, "legacy", ["k"], init_mode="replace"
        )
    _run()
    assert pg.execute("SELECT k, v, s, time, diff FROM legacy ORDER BY k") == [
        (1, 11, "a2", 4, 1),
        (3, 30, "c", 4, 1),
    ]


def test_init_mode_default_needs_an_existing_table(pg: PgDatabase) -> None:
    pw.io.postgres.write(_stream_table(), pg.settings, "missing")
    with pytest.raises(ValueError, match="missing.*does not exist") as caught:
        _run()
    assert isinstance(caught.value, ConnectorError)
    assert pg.settings["password"] not in str(caught.value)


def test_init_mode_default_appends_to_a_fitting_table(pg: PgDatabase) -> None:
    pg.execute(
        "CREATE TABLE existing (note TEXT DEFAULT 'x', k INTEGER, v NUMERIC, s VARCHAR, "
        "time BIGINT, diff INTEGER)"
    )
    pg.execute("INSERT INTO existing (k, v, s, time, diff) VALUES (0, 0, 'old', 0, 1)")
    pw.io.postgres.write(_stream_table(), pg.settings, "existing")
    _run()
    assert pg.execute("SELECT count(*), sum(diff) FROM existing") == [(7, 3)]
    assert pg.execute("SELECT note, s FROM existing WHERE k = 3") == [("x", "c")]


def test_init_mode_default_rejects_unfitting_tables(pg: PgDatabase) -> None:
    pg.execute("CREATE TABLE lacking (k BIGINT, time BIGINT, diff SMALLINT, extra INT NOT NULL)")
    pw.io.postgres.write(_stream_table(), pg.settings, "lacking")
    with pytest.raises(ValueError, match=r"'v' is missing.*'extra' is NOT NULL"):
        _run()
    pw.clear_graph()
    pg.execute("CREATE TABLE nokey (k BIGINT, v BIGINT, s TEXT)")
    table = _stream_table()
    pw.io.postgres.write(
        table, pg.settings, "nokey", output_table_type="snapshot", primary_key=[table.k]
    )
    with pytest.raises(ValueError, match="PRIMARY KEY or UNIQUE"):
        _run()


def test_create_if_not_exists_keeps_rows_and_replace_drops_them(pg: PgDatabase) -> None:
    for mode, expected in (
        ("create_if_not_exists", 6),
        ("create_if_not_exists", 12),
        ("replace", 6),
    ):
        pw.clear_graph()
        pw.io.postgres.write(_stream_table(), pg.settings, "again", init_mode=mode)
        _run()
        assert pg.execute("SELECT count(*) FROM again") == [(expected,)]


def test_schema_name(pg: PgDatabase) -> None:
    pg.execute('CREATE SCHEMA "Other"')
    pw.io.postgres.write(
        _stream_table(), pg.settings, "t", schema_name="Other", init_mode="replace"
    )
    _run()
    assert pg.execute('SELECT count(*) FROM "Other".t') == [(6,)]
    pw.clear_graph()
    pw.io.postgres.write(
        _stream_table(), pg.settings, "t", schema_name="absent", init_mode="replace"
    )
    with pytest.raises(ValueError, match="schema 'absent' does not exist"):
        _run()


def test_identifiers_are_quoted(pg: PgDatabase) -> None:
    table = pw.debug.table_from_markdown("k\n1\n2").select(
        **{'a"b; DROP TABLE x; --': pw.this.k, "Mixed Case": pw.this.k * 2}
    )
    name = 'we"ird; DROP TABLE victim; --'
    pg.execute("CREATE TABLE victim (x INT)")
    pw.io.postgres.write(
        table,
        pg.settings,
        name,
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[table['a"b; DROP TABLE x; --']],
    )
    _run()
    assert pg.execute(
        'SELECT "a""b; DROP TABLE x; --", "Mixed Case" FROM '
        '"we""ird; DROP TABLE victim; --" ORDER BY 1'
    ) == [(1, 2), (2, 4)]
    assert pg.execute("SELECT count(*) FROM victim") == [(0,)]


def test_sort_by_orders_rows_within_a_minibatch(pg: PgDatabase) -> None:
    table = pw.debug.table_from_markdown("k | v\n1 | 3\n2 | 1\n3 | 2")
    pw.io.postgres.write(table, pg.settings, "sorted", init_mode="replace", sort_by=[table.v])
    _run()
    # Heap order of a freshly written table follows the COPY order.
    assert pg.execute("SELECT v FROM sorted") == [(1,), (2,), (3,)]


# --- types ----------------------------------------------------------------------------------

_TS = pd.Timestamp("2024-01-02 03:04:05.123456789")

# name: (annotation, value, PostgreSQL column type, value read back by psycopg)
_TYPES: dict[str, tuple[Any, Any, str, Any]] = {
    "i": (int, -5, "bigint", -5),
    "f": (float, 0.25, "double precision", 0.25),
    "nan": (float, float("nan"), "double precision", "nan"),
    "inf": (float, float("-inf"), "double precision", float("-inf")),
    "b": (bool, True, "boolean", True),
    "s": (str, "h\u00e9llo'\"\n,\\", "text", "h\u00e9llo'\"\n,\\"),
    "empty": (str, "", "text", ""),
    "by": (bytes, b"\x00\x01ab", "bytea", b"\x00\x01ab"),
    "dn": (
        pw.DateTimeNaive,
        _TS,
        "timestamp without time zone",
        datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
    ),
    "dn_neg": (
        pw.DateTimeNaive,
        pd.Timestamp(-500, unit="ns"),
        "timestamp without time zone",
        datetime.datetime(1970, 1, 1),
    ),
    "du": (
        pw.DateTimeUtc,
        _TS.tz_localize("UTC"),
        "timestamp with time zone",
        datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC),
    ),
    "dur": (
        pw.Duration,
        pd.Timedelta(seconds=3, microseconds=7, nanoseconds=500),
        "bigint",
        3000007,
    ),
    "dur_neg": (pw.Duration, pd.Timedelta(nanoseconds=-1500), "bigint", -1),
    "js": (pw.Json, pw.Json({"a": [1, 2.5, None, "x"]}), "jsonb", {"a": [1, 2.5, None, "x"]}),
    "tup": (tuple[int, int], (1, 2), "bigint[]", [1, 2]),
    "tupvar": (tuple[int, ...], (1, 2, 3), "bigint[]", [1, 2, 3]),
    "li": (list[int], [1, 2, 3], "bigint[]", [1, 2, 3]),
    "lso": (list[str | None], ["a", None, 'q"\\'], "text[]", ["a", None, 'q"\\']),
    "lf": (list[float], [1.5, float("inf")], "double precision[]", [1.5, float("inf")]),
    "lb": (list[bool], [True, False], "boolean[]", [True, False]),
    "lby": (list[bytes], [b"a"], "bytea[]", [b"a"]),
    "ldt": (
        list[pw.DateTimeNaive],
        [pd.Timestamp("2024-01-02")],
        "timestamp without time zone[]",
        [datetime.datetime(2024, 1, 2)],
    ),
    "ldur": (list[pw.Duration], [pd.Timedelta(seconds=1)], "bigint[]", [1000000]),
    "ljs": (list[pw.Json], [pw.Json({"x": 1})], "jsonb[]", [{"x": 1}]),
    "nested": (list[list[int]], [[1, 2], [3, 4]], "bigint[]", [[1, 2], [3, 4]]),
    "empty_list": (list[int], [], "bigint[]", []),
    "arr": (np.ndarray, np.array([[1.5, 2.0]]), "double precision[]", [[1.5, 2.0]]),
    "oi": (int | None, None, "bigint", None),
    "ol": (list[int] | None, None, "bigint[]", None),
}


def test_every_type_is_stored_as_pathway_stores_it(pg: PgDatabase) -> None:
    base = pw.debug.table_from_markdown("k\n1")
    columns = {
        name: pw.apply_with_type(lambda _k, v=value: v, annotation, pw.this.k)
        for name, (annotation, value, _, _) in _TYPES.items()
    }
    table = base.select(pw.this.k, ptr=pw.this.id, **columns)
    pw.io.postgres.write(table, pg.settings, "types", init_mode="replace")
    _run()
    declared = dict(
        pg.execute(
            "SELECT column_name, data_type || CASE WHEN data_type = "
            "'ARRAY' THEN ':' || udt_name ELSE '' END FROM "
            "information_schema.columns WHERE table_name = 'types'"
        )
    )
    arrays = {
        "_int8": "bigint[]",
        "_text": "text[]",
        "_float8": "double precision[]",
        "_bool": "boolean[]",
        "_bytea": "bytea[]",
        "_jsonb": "jsonb[]",
        "_timestamp": "timestamp without time zone[]",
    }
    declared = {
        k: arrays[v.split(":")[1]] if v.startswith("ARRAY") else v for k, v in declared.items()
    }
    for name, (_, _, column, _) in _TYPES.items():
        assert declared[name] == column, name
    assert declared["ptr"] == "text"
    nullable = dict(
        pg.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'types'"
        )
    )
    assert nullable["oi"] == nullable["ol"] == "YES" and nullable["i"] == "NO"
    [row] = pg.execute(f"SELECT {', '.join(_TYPES)}, ptr FROM types")
    for (name, (_, _, _, expected)), got in zip(_TYPES.items(), row, strict=False):
        if expected == "nan":
            assert np.isnan(got), name
        else:
            assert got == expected, name
    keys, _ = pw.debug.table_to_dicts(base)
    assert row[-1] == str(keys[0])  # the row id as Pathway prints it: ^ and base-32 digits


def test_unsupported_types_are_rejected_when_defined(pg: PgDatabase) -> None:
    base = pw.debug.table_from_markdown("k\n1")
    for annotation in (tuple[int, str], list[tuple[int, int]], Any):
        table = base.select(v=pw.apply_with_type(lambda k: None, annotation, pw.this.k))
        with pytest.raises(ValueError, match="'v'.*no PostgreSQL column type"):
            pw.io.postgres.write(table, pg.settings, "never")


def test_rows_postgres_cannot_store_are_skipped_and_reported(
    pg: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    table = pw.debug.table_from_markdown("k\n1\n2\n3\n4").select(
        pw.this.k,
        s=pw.apply_with_type(lambda k: "a\x00b" if k == 2 else "ok", str, pw.this.k),
        l=pw.apply_with_type(
            lambda k: [[1, 2], [3]] if k == 3 else [[1]], list[list[int]], pw.this.k
        ),
        j=pw.apply_with_type(
            lambda k: pw.Json("\x00") if k == 4 else pw.Json(k), pw.Json, pw.this.k
        ),
    )
    pw.io.postgres.write(table, pg.settings, "partial", init_mode="replace")
    with caplog.at_level(logging.ERROR, logger="deltaflow.io.postgres"):
        _run()
    assert pg.execute("SELECT k, s, l, j FROM partial") == [(1, "ok", [[1]], 1)]
    text = caplog.text
    assert "NUL" in text and "skipped" in text and "partial" in text


# --- arguments ------------------------------------------------------------------------------


def test_arguments_are_checked_when_defined(pg: PgDatabase, tmp_path: Any) -> None:
    table = _stream_table()
    settings = pg.settings
    with pytest.raises(TypeError):
        pw.io.postgres.write(table, settings, "t", no_such_argument=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        pw.io.postgres.write()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="primary_key"):
        pw.io.postgres.write(table, settings, "t", output_table_type="snapshot")
    with pytest.raises(ValueError, match="primary_key"):
        pw.io.postgres.write(table, settings, "t", primary_key=[table.k])
    with pytest.raises(ValueError, match="repeats"):
        pw.io.postgres.write(
            table, settings, "t", output_table_type="snapshot", primary_key=[table.k, table.k]
        )
    other = pw.debug.table_from_markdown("z\n1")
    with pytest.raises(ValueError, match="'z'"):
        pw.io.postgres.write(
            table, settings, "t", output_table_type="snapshot", primary_key=[other.z]
        )
    optional = table.select(k=pw.cast(int | None, pw.this.k), v=pw.this.v)
    with pytest.raises(ValueError, match="Optional"):
        pw.io.postgres.write(
            optional, settings, "t", output_table_type="snapshot", primary_key=[optional.k]
        )
    with pytest.raises(TypeError, match="init_mode"):
        pw.io.postgres.write(table, settings, "t", init_mode="truncate")  # type: ignore
    with pytest.raises(TypeError, match="output_table_type"):
        pw.io.postgres.write(table, settings, "t", output_table_type="log")  # type: ignore
    with pytest.raises(ValueError, match="max_batch_size"):
        pw.io.postgres.write(table, settings, "t", max_batch_size=0)
    with pytest.raises(TypeError, match="max_batch_size"):
        pw.io.postgres.write(table, settings, "t", max_batch_size="3")  # type: ignore
    with pytest.raises(TypeError, match="primary_key"):  # write takes columns, not names
        pw.io.postgres.write(table, settings, "t", output_table_type="snapshot", primary_key=["k"])
    with pytest.raises(TypeError, match="table_name"):
        pw.io.postgres.write(table, settings, 5)  # type: ignore[arg-type]
    clash = table.select(pw.this.k, time=pw.this.v)
    with pytest.raises(ValueError, match="'time'"):
        pw.io.postgres.write(clash, settings, "t")
    with pytest.raises(ValueError, match="'time'"):
        pw.io.postgres.write_snapshot(clash, settings, "t", ["k"])
    with pytest.raises(ValueError, match="no_such_keyword"):
        pw.io.postgres.write(table, {**settings, "no_such_keyword": "1"}, "t")
    with pytest.raises(ValueError, match="does not exist"):
        pw.io.postgres.write(table, {"sslrootcert": str(tmp_path / "ca.crt")}, "t")
    with pytest.raises(ValueError, match="directory"):
        pw.io.postgres.write(table, {"sslrootcert": str(tmp_path)}, "t")
    with pytest.raises(ValueError, match="table_name"):
        pw.io.postgres.write(table, settings, "")
    # Values of any type are accepted and turned into text, as in Pathway.
    pw.io.postgres.write(table, {"host": "localhost", "port": 5423}, "t")


def test_docs_example_runs(pg: PgDatabase) -> None:
    import pathlib
    import re

    page = pathlib.Path(__file__).parents[2] / "docs" / "postgres.md"
    code = re.search(r"```python\n(.*?)```", page.read_text(), re.S)
    assert code is not None
    program = re.sub(
        r"settings = \{.*?\}\n", f"settings = {pg.settings!r}\n", code.group(1), flags=re.S
    )
    exec(compile(program, str(page), "exec"), {})  # noqa: S102 - the page's own example
    assert pg.execute("SELECT count(*), sum(diff) FROM order_log") == [(4, 2)]
    assert pg.execute("SELECT item, quantity FROM totals") == [("apple", 5)]


def test_binary_copy_stores_what_text_copy_stores(
    pg: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    """Tables of fixed-width, non-Optional columns go in as binary COPY; an Optional column
    makes the same rows go in as text. Both must read back the same."""
    stamps = [_TS, pd.Timestamp(-500, unit="ns"), pd.Timestamp("1900-02-03 04:05:06.999999999")]
    values = {
        "i": (int, [0, -(2**63), 2**63 - 1]),
        "f": (float, [0.1, float("inf"), -0.0]),
        "b": (bool, [True, False, True]),
        "dn": (pw.DateTimeNaive, stamps),
        "du": (pw.DateTimeUtc, [s.tz_localize("UTC") for s in stamps]),
        "dur": (pw.Duration, [pd.Timedelta(nanoseconds=n) for n in (-1500, 999, 10**15)]),
    }
    base = pw.debug.table_from_markdown("k\n0\n1\n2")
    columns = {
        name: pw.apply_with_type(lambda k, vs=vs: vs[k], annotation, pw.this.k)
        for name, (annotation, vs) in values.items()
    }
    fixed = base.select(pw.this.k, **columns)
    with_optional = fixed.select(*pw.this, o=pw.cast(int | None, pw.this.k))
    pw.io.postgres.write(fixed, pg.settings, "as_binary", init_mode="replace")
    pw.io.postgres.write(
        with_optional,
        pg.settings,
        "as_text",
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[with_optional.k],
    )
    pw.io.postgres.write(
        fixed,
        pg.settings,
        "snap_binary",
        init_mode="replace",
        output_table_type="snapshot",
        primary_key=[fixed.k],
    )
    with caplog.at_level(logging.DEBUG, logger="deltaflow.io.postgres"):
        _run()
    used = {
        line.split("'")[1]: line.split("with ")[1] for line in caplog.messages if "COPY" in line
    }
    assert used == {
        "as_binary": "binary COPY",
        "as_text": "text (csv) COPY",
        "snap_binary": "binary COPY",
    }
    names = ", ".join(["k", *values])
    binary = pg.execute(f"SELECT {names} FROM as_binary ORDER BY k")
    assert binary == pg.execute(f"SELECT {names} FROM as_text ORDER BY k")
    assert binary == pg.execute(f"SELECT {names} FROM snap_binary ORDER BY k")
    assert binary[1][5] == datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    assert [row[6] for row in binary] == [-1, 0, 10**12]
