"""pw.io.register_input_synchronization_group: sources read in step with each other.

Holding is checked with flags rather than timing: a subject waits on an event before sending
the value that should release the others, and every delivered row records whether that value
had been sent. A short window before the release gives a broken group the chance to leak rows
(a working one never does, so the window cannot cause a false failure).
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _io_helpers import BackgroundRun, Changes

import deltaflow as pw

LEAK_WINDOW_S = 0.3  # time a broken group would have to let held rows through


class Ts(pw.Schema):
    t: int


class Event(pw.Schema):
    t: int
    v: str


class Scripted(pw.io.python.ConnectorSubject):
    """Sends ``int`` steps as rows (one commit each); waits on ``threading.Event`` steps; calls
    callable steps (to raise flags)."""

    def __init__(self, steps: list[Any], *, key: str = "t") -> None:
        super().__init__()
        self.steps = steps
        self.key = key
        self.done = threading.Event()

    def run(self) -> None:
        for step in self.steps:
            if isinstance(step, threading.Event):
                assert step.wait(10), "the test never released this subject"
            elif callable(step):
                step()
            else:
                self.next(**{self.key: step})
                self.commit()
        self.done.set()


def _ignore(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
    pass


def read(steps: list[Any], *, output: bool = True, **kwargs: Any) -> tuple[Any, Scripted]:
    """A table of ``steps``; with ``output`` it is part of the run even if the test does not
    watch it (a table no output uses is never read)."""
    subject = Scripted(steps)
    table = pw.io.python.read(subject, schema=Ts, autocommit_duration_ms=5, **kwargs)
    if output:
        pw.io.subscribe(table, on_change=_ignore)
    return table, subject


def values(changes: Changes) -> list[int]:
    return [row["t"] for row, _, added in changes.rows if added]


def run() -> None:
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


# --- holding back and releasing ----------------------------------------------------------------
def test_fast_source_waits_for_the_slow_one() -> None:
    released = threading.Event()
    a_caught_up = threading.Event()
    a, _ = read(list(range(21)))
    b, _ = read([0, a_caught_up, lambda: time.sleep(LEAK_WINDOW_S), released.set, 20])
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=2)
    arrivals: list[tuple[int, bool]] = []

    def on_a(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        arrivals.append((row["t"], released.is_set()))
        if row["t"] == 2:
            a_caught_up.set()

    pw.io.subscribe(a, on_change=on_a)
    b_changes = Changes().subscribe(b)
    run()
    assert [v for v, _ in arrivals] == list(range(21))  # held rows keep their order
    assert all(not flag for v, flag in arrivals if v <= 2)
    assert all(flag for v, flag in arrivals if v > 2), arrivals
    assert values(b_changes) == [0, 20]


def test_three_sources_the_slowest_one_holds_the_others() -> None:
    c_go = threading.Event()
    b_done = threading.Event()
    released = threading.Event()
    a, _ = read(list(range(31)))
    b, _ = read([0, 10, 20, 30, b_done.set])
    c, _ = read([0, b_done, lambda: time.sleep(LEAK_WINDOW_S), released.set, c_go, 30])
    pw.io.register_input_synchronization_group(a.t, b.t, c.t, max_difference=3)
    changes = {name: Changes().subscribe(table) for name, table in (("a", a), ("b", b), ("c", c))}
    with BackgroundRun():
        changes["c"].wait_for(lambda ch: values(ch) == [0])
        assert released.wait(10)
        # C is still at 0: A may not pass 3 and B (next value 10) may not move at all.
        assert values(changes["a"]) == [0, 1, 2, 3]
        assert values(changes["b"]) == [0]
        c_go.set()
        changes["a"].wait_for(lambda ch: len(values(ch)) == 31)
        changes["b"].wait_for(lambda ch: values(ch) == [0, 10, 20, 30])
        changes["c"].wait_for(lambda ch: values(ch) == [0, 30])
    assert values(changes["a"]) == list(range(31))


def test_a_gap_in_all_sources_moves_the_baseline() -> None:
    """Both sources jump far ahead: neither waits for the other forever."""
    b_first = threading.Event()
    a, _ = read([0, b_first, 1000, 1001])
    b, _ = read([0, b_first.set, 1000, 1002])
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=5)
    changes_a, changes_b = Changes().subscribe(a), Changes().subscribe(b)
    run()
    assert values(changes_a) == [0, 1000, 1001]
    assert values(changes_b) == [0, 1000, 1002]


def test_a_finished_source_releases_the_others() -> None:
    a, _ = read(list(range(50)))
    b, _ = read([0])  # ends at 0: A must not wait for it to reach 49
    c, _ = read([])  # ends without a row
    pw.io.register_input_synchronization_group(a.t, b.t, c.t, max_difference=1)
    changes = Changes().subscribe(a)
    run()
    assert values(changes) == list(range(50))


def test_a_table_outside_the_run_does_not_hold_the_group() -> None:
    a, _ = read(list(range(10)))
    b, _ = read([0], output=False)  # no output uses it: it is never started
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=1)
    changes = Changes().subscribe(a)
    run()
    assert values(changes) == list(range(10))


def test_nothing_passes_before_every_source_has_a_value() -> None:
    a_sent = threading.Event()
    b_go = threading.Event()
    a, _ = read([5, 6, 7, a_sent.set])
    b, _ = read([b_go, 6])
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=0)
    changes = Changes().subscribe(a)
    with BackgroundRun():
        assert a_sent.wait(10)
        time.sleep(LEAK_WINDOW_S)
        assert values(changes) == []
        b_go.set()
        changes.wait_for(lambda ch: values(ch) == [5, 6, 7])


def test_stopping_the_run_unblocks_a_waiting_source() -> None:
    a_sent = threading.Event()
    never = threading.Event()
    a, _ = read([0, 1, 2, 3, a_sent.set])
    b, _ = read([never])  # streams nothing until the run is stopped
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=1)
    changes = Changes().subscribe(a)
    run_ = BackgroundRun()
    with run_:
        assert a_sent.wait(10)
    never.set()  # lets B's subject thread end (the run ended already)
    assert changes.ended
    assert values(changes) == []


def test_idle_source_stops_holding_the_others() -> None:
    b_go = threading.Event()
    a, _ = read(list(range(11)))
    b, b_subject = read([0, b_go, 20])
    pw.io.register_input_synchronization_group(
        a.t,
        pw.io.SynchronizedColumn(b.t, idle_duration=datetime.timedelta(seconds=0.2)),
        max_difference=2,
    )
    changes_a, changes_b = Changes().subscribe(a), Changes().subscribe(b)
    with BackgroundRun():
        # B is still waiting at 0: only its idleness lets A through.
        changes_a.wait_for(lambda ch: values(ch) == list(range(11)))
        assert not b_subject.done.is_set()
        b_go.set()
        changes_b.wait_for(lambda ch: values(ch) == [0, 20])


def test_idle_source_holds_until_its_duration_passed() -> None:
    """Without idle_duration (the other source) the same script keeps A waiting."""
    b_go = threading.Event()
    a, a_subject = read(list(range(11)))
    b, _ = read([0, b_go, 20])
    pw.io.register_input_synchronization_group(
        pw.io.SynchronizedColumn(a.t, idle_duration=0.1), b.t, max_difference=2
    )
    changes_a = Changes().subscribe(a)
    with BackgroundRun():
        assert a_subject.done.wait(10)
        time.sleep(LEAK_WINDOW_S)
        assert values(changes_a) == [0, 1, 2]
        b_go.set()
        changes_a.wait_for(lambda ch: len(values(ch)) == 11)


def test_priority_source_reads_first() -> None:
    go_20 = threading.Event()
    go_30 = threading.Event()
    window_over = threading.Event()
    logins, _ = read([0, go_20, 20, go_30, 30])
    trades, trades_subject = read(list(range(26)))
    pw.io.register_input_synchronization_group(
        pw.io.SynchronizedColumn(logins.t, priority=1),
        pw.io.SynchronizedColumn(trades.t),
        max_difference=10,
    )
    changes = Changes().subscribe(trades)
    with BackgroundRun():
        assert trades_subject.done.wait(10)
        time.sleep(LEAK_WINDOW_S)
        assert values(changes) == [0]  # no trade before the logins have read past it
        go_20.set()
        changes.wait_for(lambda ch: values(ch) == list(range(21)))
        threading.Timer(LEAK_WINDOW_S, window_over.set).start()
        assert window_over.wait(10)
        assert values(changes) == list(range(21))
        go_30.set()
        changes.wait_for(lambda ch: values(ch) == list(range(26)))


def test_lower_priority_source_does_not_hold_back_a_higher_one() -> None:
    never = threading.Event()
    logins, _ = read([0, 100])
    trades, _ = read([0, 1, never])  # stays at 1 while the run goes on
    pw.io.register_input_synchronization_group(
        pw.io.SynchronizedColumn(logins.t, priority=1),
        pw.io.SynchronizedColumn(trades.t),
        max_difference=10,
    )
    changes_logins, changes_trades = Changes().subscribe(logins), Changes().subscribe(trades)
    with BackgroundRun():
        changes_trades.wait_for(lambda ch: values(ch) == [0, 1])
        changes_logins.wait_for(lambda ch: values(ch) == [0, 100])
    never.set()


# --- types and sources -------------------------------------------------------------------------
class Stamped(pw.Schema):
    at: pw.DateTimeNaive
    v: int


def _lines(rows: list[tuple[str, int]]) -> str:
    return "".join(f'{{"at": "2024-01-01T{at}", "v": {v}}}\n' for at, v in rows)


def test_datetime_columns_from_streaming_directories(tmp_path: Path) -> None:
    dense, sparse = tmp_path / "dense", tmp_path / "sparse"
    dense.mkdir()
    sparse.mkdir()
    # A file enters whole or not at all: part2 starts within reach of the sparse source
    # (00:02) but ends beyond it, so it waits whole.
    (dense / "part1.jsonl").write_text(_lines([(f"00:{m:02d}:00", m) for m in range(2)]))
    (dense / "part2.jsonl").write_text(_lines([(f"00:{m:02d}:00", m) for m in range(2, 10)]))
    (sparse / "part1.jsonl").write_text(_lines([("00:00:00", 100)]))
    a = pw.io.jsonlines.read(dense, schema=Stamped, autocommit_duration_ms=5)
    b = pw.io.jsonlines.read(sparse, schema=Stamped, autocommit_duration_ms=5)
    pw.io.register_input_synchronization_group(
        a.at, b.at, max_difference=datetime.timedelta(minutes=2)
    )
    changes_a, changes_b = Changes().subscribe(a), Changes().subscribe(b)
    with BackgroundRun():
        changes_b.wait_for(lambda ch: len(ch.rows) == 1)
        changes_a.wait_for(lambda ch: len(ch.rows) == 2)
        time.sleep(LEAK_WINDOW_S)
        assert sorted(row["v"] for row, _, _ in changes_a.rows) == [0, 1]
        (sparse / "part2.jsonl").write_text(_lines([("00:09:00", 101)]))
        changes_a.wait_for(lambda ch: len(ch.rows) == 10)
    assert [row["v"] for row, _, _ in changes_a.rows] == list(range(10))


def test_utc_and_duration_columns() -> None:
    class Utc(pw.Schema):
        at: pw.DateTimeUtc

    class Dur(pw.Schema):
        d: pw.Duration

    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    subject_a = Scripted([base + datetime.timedelta(seconds=s) for s in range(5)], key="at")
    subject_b = Scripted([base], key="at")
    a = pw.io.python.read(subject_a, schema=Utc, autocommit_duration_ms=5)
    b = pw.io.python.read(subject_b, schema=Utc, autocommit_duration_ms=5)
    pw.io.register_input_synchronization_group(a.at, b.at, max_difference=pw.Duration(seconds=1))
    durations = [
        pw.io.python.read(
            Scripted([datetime.timedelta(seconds=s) for s in steps], key="d"), schema=Dur
        )
        for steps in ([1, 2, 3], [1])
    ]
    pw.io.register_input_synchronization_group(
        *(table.d for table in durations), max_difference=datetime.timedelta(0), name="other"
    )
    changes = Changes().subscribe(a)
    Changes().subscribe(b)
    changes_d = Changes().subscribe(durations[0])
    Changes().subscribe(durations[1])
    run()
    assert [row["at"].second for row, _, _ in changes.rows] == list(range(5))
    assert [row["d"].total_seconds() for row, _, _ in changes_d.rows] == [1, 2, 3]


# --- nothing is lost -----------------------------------------------------------------------------
def _uneven_program(tmp_path: Path, synchronized: bool) -> list[dict[str, Any]]:
    """Three sources of very different sizes, values out of order, duplicates and a static
    file (one big commit), with a small backlog limit on one of them."""
    rows = [{"t": (i * 37) % 101, "v": f"dense{i}"} for i in range(600)]
    path = tmp_path / f"static_{synchronized}.jsonl"
    path.write_text("".join(f'{{"t": {r["t"]}, "v": "{r["v"]}"}}\n' for r in rows))

    class Sub(pw.io.python.ConnectorSubject):
        def __init__(self, values: list[int], every: int) -> None:
            super().__init__()
            self.values, self.every = values, every

        def run(self) -> None:
            for i, value in enumerate(self.values):
                self.next(t=value, v=f"{self.every}:{i}")
                if i % self.every == 0:
                    self.commit()

    static = pw.io.jsonlines.read(path, schema=Event, mode="static")
    medium = pw.io.python.read(
        Sub([(i * 7) % 97 for i in range(150)], 3),
        schema=Event,
        autocommit_duration_ms=5,
        max_backlog_size=4,
    )
    sparse = pw.io.python.read(Sub([0, 50, 50, 99, 3], 1), schema=Event, autocommit_duration_ms=5)
    if synchronized:
        pw.io.register_input_synchronization_group(
            static.t, pw.io.SynchronizedColumn(medium.t, priority=2), sparse.t, max_difference=4
        )
    result = (
        static.concat_reindex(medium, sparse)
        .groupby(pw.this.t)
        .reduce(pw.this.t, n=pw.reducers.count(), vs=pw.reducers.sorted_tuple(pw.this.v))
    )
    frame = pw.debug.table_to_pandas(result)
    return sorted(frame.to_dict("records"), key=lambda r: r["t"])


def test_final_result_equals_the_unsynchronized_run(tmp_path: Path) -> None:
    plain = _uneven_program(tmp_path, synchronized=False)
    pw.clear_graph()
    synced = _uneven_program(tmp_path, synchronized=True)
    assert synced == plain
    assert sum(r["n"] for r in synced) == 600 + 150 + 5


# --- definition-time errors ---------------------------------------------------------------------
def _table(schema: type[pw.Schema] = Ts) -> Any:
    return pw.io.python.read(Scripted([]), schema=schema)


class Dt(pw.Schema):
    t: pw.DateTimeNaive


class Fl(pw.Schema):
    t: float


class Opt(pw.Schema):
    t: int | None


class Txt(pw.Schema):
    t: str


def _same_table() -> None:
    table = _table()
    pw.io.register_input_synchronization_group(table.t, table.t, max_difference=1)


def _table_in_two_groups() -> None:
    a, b, c = _table(), _table(), _table()
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=1)
    pw.io.register_input_synchronization_group(a.t, c.t, max_difference=1, name="second")


def _derived() -> None:
    a, b = _table(), _table()
    pw.io.register_input_synchronization_group(a.select(t=a.t + 1).t, b.t, max_difference=1)


def _debug_table() -> None:
    a = pw.debug.table_from_markdown("t\n1")
    pw.io.register_input_synchronization_group(a.t, _table().t, max_difference=1)


def _group(*schemas: type[pw.Schema], **kwargs: Any) -> Callable[[], None]:
    def define() -> None:
        pw.io.register_input_synchronization_group(*(_table(s).t for s in schemas), **kwargs)

    return define


BAD: list[tuple[str, Callable[[], None], type[Exception], str]] = [
    (
        "no column",
        lambda: pw.io.register_input_synchronization_group(max_difference=1),
        ValueError,
        "at least two columns",
    ),
    ("one column", _group(Ts, max_difference=1), ValueError, "at least two columns"),
    (
        "not a column",
        lambda: pw.io.register_input_synchronization_group("t", _table().t, max_difference=1),
        TypeError,
        "column references",
    ),
    ("same table", _same_table, ValueError, "one column of a table"),
    ("two groups", _table_in_two_groups, ValueError, "one group at most"),
    ("derived table", _derived, ValueError, "input connector"),
    ("debug table", _debug_table, ValueError, "input connector"),
    ("float column", _group(Fl, Fl, max_difference=1), ValueError, "has type float"),
    ("optional column", _group(Opt, Opt, max_difference=1), ValueError, "not optional"),
    ("str column", _group(Txt, Txt, max_difference=1), ValueError, "has type str"),
    ("mixed types", _group(Ts, Dt, max_difference=1), ValueError, "same type"),
    ("negative int", _group(Ts, Ts, max_difference=-1), ValueError, "non-negative"),
    ("float for int", _group(Ts, Ts, max_difference=1.5), ValueError, "must be an int"),
    ("bool for int", _group(Ts, Ts, max_difference=True), ValueError, "must be an int"),
    (
        "timedelta for int",
        _group(Ts, Ts, max_difference=datetime.timedelta(1)),
        ValueError,
        "must be an int",
    ),
    ("None", _group(Ts, Ts, max_difference=None), ValueError, "must be an int"),
    ("int for datetime", _group(Dt, Dt, max_difference=60), ValueError, "timedelta"),
    (
        "negative timedelta",
        _group(Dt, Dt, max_difference=datetime.timedelta(seconds=-1)),
        ValueError,
        "non-negative",
    ),
    ("name not str", _group(Ts, Ts, max_difference=1, name=3), TypeError, "name must be a str"),
    (
        "priority float",
        lambda: pw.io.SynchronizedColumn(_table().t, priority=1.5),
        TypeError,
        "priority must be an int",
    ),
    (
        "priority negative",
        lambda: pw.io.SynchronizedColumn(_table().t, priority=-1),
        ValueError,
        "priority must be non-negative",
    ),
    (
        "idle negative",
        lambda: pw.io.SynchronizedColumn(_table().t, idle_duration=-1),
        ValueError,
        "idle_duration must be non-negative",
    ),
    (
        "idle str",
        lambda: pw.io.SynchronizedColumn(_table().t, idle_duration="1s"),
        TypeError,
        "idle_duration must be a number",
    ),
    (
        "synchronized column of a string",
        lambda: pw.io.SynchronizedColumn("t"),
        TypeError,
        "column must be a column",
    ),
]


@pytest.mark.parametrize(("case", "define", "error", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_arguments_fail_at_definition(
    case: str, define: Callable[[], None], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        define()


def test_errors_name_the_parameter_and_the_column() -> None:
    with pytest.raises(ValueError, match=r"max_difference .*#1 \('t' of 'python:Scripted'\)"):
        _group(Ts, Ts, max_difference=0.5)()
    with pytest.raises(ValueError, match=r"#2 \('t' of 'python:Scripted'\): DateTimeNaive"):
        _group(Ts, Dt, max_difference=1)()
    with pytest.raises(ValueError, match=r"#1 \('t' of 'python:Scripted'\) has type float"):
        _group(Fl, Fl, max_difference=1)()


def test_a_failed_registration_changes_nothing() -> None:
    a, b = _table(), _table()
    with pytest.raises(ValueError):
        pw.io.register_input_synchronization_group(a.t, b.t, max_difference=-1)
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=1)  # still possible


def test_a_name_reused_joins_the_group_and_clear_graph_forgets_it() -> None:
    a, b, c, d = _table(), _table(), _table(), _table()
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=1)
    pw.io.register_input_synchronization_group(c.t, d.t, max_difference=1)
    from deltaflow.io.synchronization import _GROUPS

    assert [m.session for m in _GROUPS["default"].members] == [t._node.source for t in (a, b, c, d)]
    with pytest.raises(ValueError, match="already exists"):
        pw.io.register_input_synchronization_group(_table().t, _table().t, max_difference=7)
    pw.clear_graph()
    pw.io.register_input_synchronization_group(_table().t, _table().t, max_difference=7)
    assert _GROUPS["default"].max_difference == 7


def test_merged_group_holds_across_registrations() -> None:
    """Two registrations under one name form one group: D holds A back."""
    d_go = threading.Event()
    a, a_subject = read([0, 1, 2, 3, 4])
    b, _ = read([0, 4])
    c, _ = read([0, 4])
    d, _ = read([d_go, 0, 4])
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=0, name="g")
    pw.io.register_input_synchronization_group(c.t, d.t, max_difference=0, name="g")
    changes = Changes().subscribe(a)
    with BackgroundRun():
        assert a_subject.done.wait(10)
        time.sleep(LEAK_WINDOW_S)
        assert values(changes) == []
        d_go.set()
        changes.wait_for(lambda ch: values(ch) == [0, 1, 2, 3, 4])


# --- the documentation's example ----------------------------------------------------------------
def test_docs_example_runs() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "synchronization.md"
    code = re.search(r"```python\n(.*?)```", doc.read_text(), re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(doc), "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["seen"] == namespace["expected"]


def test_a_huge_max_difference_lets_everything_through() -> None:
    a, _ = read([0, 2**62, 5])
    b, _ = read([0])
    pw.io.register_input_synchronization_group(a.t, b.t, max_difference=2**70)
    changes = Changes().subscribe(a)
    run()
    assert values(changes) == [0, 2**62, 5]
