"""Inner joins with ``left_exactly_once`` / ``right_exactly_once``: a row of such a side is
matched once, then forgotten (see docs/joins.md)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._util import stream
from tests.test_stateful_properties import Event, update_streams

import deltaflow as pw
from deltaflow.engine.runtime import EngineError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sensors() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | zone | reading | __time__
        1 | 7    | 1       | 2
        2 | 8    | 2       | 4
        3 | 9    | 3       | 6
        4 | 7    | 4       | 8
    """)


def _alerts() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | zone | level | __time__
        5 | 8    | 20    | 2
        6 | 9    | 30    | 2
        7 | 7    | 10    | 4
        8 | 8    | 40    | 6
    """)


def _joined(left_once: bool, right_once: bool) -> list[tuple]:
    sensors, alerts = _sensors(), _alerts()
    return stream(
        sensors.join(
            alerts,
            sensors.zone == alerts.zone,
            left_exactly_once=left_once,
            right_exactly_once=right_once,
        ).select(sensors.reading, alerts.level)
    )


def test_without_the_flags_every_pair_is_joined() -> None:
    assert _joined(False, False) == [
        (4, 1, 10, 1),
        (4, 2, 20, 1),
        (6, 2, 40, 1),
        (6, 3, 30, 1),
        (8, 4, 10, 1),
    ]


def test_left_rows_are_matched_once() -> None:
    # Reading 2 met level 20 first, so the later level 40 finds no partner.
    assert _joined(True, False) == [(4, 1, 10, 1), (4, 2, 20, 1), (6, 3, 30, 1), (8, 4, 10, 1)]


def test_right_rows_are_matched_once() -> None:
    # Level 10 met reading 1 first, so the later reading 4 finds no partner.
    assert _joined(False, True) == [(4, 1, 10, 1), (4, 2, 20, 1), (6, 2, 40, 1), (6, 3, 30, 1)]


def test_both_sides_matched_once() -> None:
    assert _joined(True, True) == [(4, 1, 10, 1), (4, 2, 20, 1), (6, 3, 30, 1)]


def test_other_modes_ignore_the_flags() -> None:
    sensors, alerts = _sensors(), _alerts()
    flagged = sensors.join_left(
        alerts, sensors.zone == alerts.zone, left_exactly_once=True, right_exactly_once=True
    ).select(sensors.reading, alerts.level)
    plain = sensors.join_left(alerts, sensors.zone == alerts.zone).select(
        sensors.reading, alerts.level
    )
    assert stream(flagged) == stream(plain)


def test_two_partners_at_once_break_the_promise() -> None:
    one = pw.debug.table_from_markdown("""
          | zone | reading | __time__
        1 | 7    | 1       | 4
    """)
    two = pw.debug.table_from_markdown("""
          | zone | level | __time__
        5 | 7    | 10    | 2
        6 | 7    | 20    | 4
    """)
    joined = one.join(two, one.zone == two.zone, left_exactly_once=True).select(two.level)
    with pytest.raises(ValueError, match="left_exactly_once"):
        pw.debug.table_to_dicts(joined)
    # The other side may have several partners.
    fine = one.join(two, one.zone == two.zone, right_exactly_once=True).select(two.level)
    assert sorted(pw.debug.table_to_dicts(fine)[1]["level"].values()) == [10, 20]


def test_deleting_a_matched_row_stops_the_run() -> None:
    left = pw.debug.table_from_markdown("""
          | zone | reading | __time__ | __diff__
        1 | 7    | 1       | 2        | 1
        2 | 8    | 2       | 2        | 1
        2 | 8    | 2       | 4        | -1
        1 | 7    | 1       | 6        | -1
    """)
    right = pw.debug.table_from_markdown("""
          | zone | level | __time__
        5 | 7    | 10    | 4
    """)
    joined = left.join(right, left.zone == right.zone, left_exactly_once=True).select(right.level)
    # Row 2 is deleted before any match (fine); row 1 after its match (refused).
    with pytest.raises(EngineError, match="deleted after it was matched"):
        pw.debug.table_to_dicts(joined)


def test_static_tables() -> None:
    left = pw.debug.table_from_markdown("""
        zone | reading
        7    | 1
        8    | 2
    """)
    right = pw.debug.table_from_markdown("""
        zone | level
        7    | 10
        9    | 30
    """)
    joined = left.join(
        right, left.zone == right.zone, left_exactly_once=True, right_exactly_once=True
    ).select(left.reading, right.level)
    assert stream(joined) == [(0, 1, 10, 1)]


# --- property: the operator follows the model of exactly-once matching ---------------------


class _Broken(Exception):
    """The model's run stops: ``kind`` is "repeat" (ValueError) or "deleted" (EngineError)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _model(
    left: list[Event], right: list[Event], left_once: bool, right_once: bool
) -> dict[int, Counter]:
    """Per time, the (left label, right label, left v, right v) pairs the join emits."""
    state: list[dict[int, tuple[int, int]]] = [{}, {}]
    forgotten: list[set[int]] = [set(), set()]
    once = (left_once, right_once)
    out: dict[int, Counter] = {}
    for time in sorted({e[3] for e in left + right}):
        deltas = [_consolidated([e for e in side if e[3] == time]) for side in (left, right)]
        pairs: Counter = Counter()
        old_right = dict(state[1])
        for label, k, v, _, diff in deltas[0]:
            for other, (ok, ov) in old_right.items():
                if ok == k:
                    pairs[(label, other, v, ov)] += diff
        _apply(state[0], deltas[0])
        for label, k, v, _, diff in deltas[1]:
            for other, (ok, ov) in state[0].items():
                if ok == k:
                    pairs[(other, label, ov, v)] += diff
        _apply(state[1], deltas[1])
        pairs = Counter({pair: n for pair, n in pairs.items() if n})
        for side in (0, 1):
            if not once[side]:
                continue
            if any(e[0] in forgotten[side] and e[4] < 0 for e in deltas[side]):
                raise _Broken("deleted")
            matched = Counter(pair[side] for pair, n in pairs.items() if n > 0)
            if any(n > 1 for n in matched.values()):
                raise _Broken("repeat")
            for label in matched:
                state[side].pop(label, None)
                forgotten[side].add(label)
        if pairs:
            out[time] = pairs
    return out


def _consolidated(delta: list[Event]) -> list[Event]:
    """A time's changes as the engine sees them: a row deleted and inserted again with the
    same values within one time is no change at all."""
    total: Counter = Counter()
    for label, k, v, time, diff in delta:
        total[(label, k, v, time)] += diff
    return [(*row, diff) for row, diff in total.items() if diff]


def _apply(state: dict[int, tuple[int, int]], delta: list[Event]) -> None:
    for label, k, v, _, diff in sorted(delta, key=lambda e: e[4]):  # deletions first
        if diff < 0:
            state.pop(label, None)
        else:
            state[label] = (k, v)


def _table(events: list[Event]) -> pw.Table:
    lines = ["  | n | k | v | __time__ | __diff__"]
    lines += [
        f"  {label} | {label} | {k} | {v} | {time} | {diff}" for label, k, v, time, diff in events
    ]
    return pw.debug.table_from_markdown("\n".join(lines))


@SETTINGS
@given(
    update_streams(max_times=5, changes=st.integers(0, 3)),
    update_streams(label_base=100, max_times=5, changes=st.integers(0, 3)),
    st.booleans(),
    st.booleans(),
)
def test_exactly_once_follows_the_model(
    left: list[Event], right: list[Event], left_once: bool, right_once: bool
) -> None:
    pw.clear_graph()
    a, b = _table(left), _table(right)
    joined = a.join(
        b, a.k == b.k, left_exactly_once=left_once, right_exactly_once=right_once
    ).select(ln=a.n, rn=b.n, lv=a.v, rv=b.v)
    try:
        expected = _model(left, right, left_once, right_once)
    except _Broken as broken:
        error: Any = ValueError if broken.kind == "repeat" else EngineError
        with pytest.raises(error):
            pw.debug.table_to_stream(joined)
        return
    got: dict[int, Counter] = {}
    for time, row, diff in pw.debug.table_to_stream(joined):
        got.setdefault(time, Counter())[(row["ln"], row["rn"], row["lv"], row["rv"])] += diff
    assert got == expected


@pytest.mark.parametrize(("left_once", "right_once"), [(True, False), (False, True)])
def test_big_batches_follow_the_model(left_once: bool, right_once: bool) -> None:
    # Deltas of hundreds of rows take the columnar path of the join.
    left = [(n, n % 150, n, 2 + 2 * (n % 2), 1) for n in range(1, 301)]
    right = [(1000 + n, n, -n, 4 if n % 3 else 6, 1) for n in range(150)]
    if right_once:  # each right row then needs a single left partner per time
        left = [e for e in left if e[0] <= 150]
    pw.clear_graph()
    a, b = _table(sorted(left, key=lambda e: e[3])), _table(sorted(right, key=lambda e: e[3]))
    joined = a.join(
        b, a.k == b.k, left_exactly_once=left_once, right_exactly_once=right_once
    ).select(ln=a.n, rn=b.n, lv=a.v, rv=b.v)
    expected = _model(
        sorted(left, key=lambda e: e[3]), sorted(right, key=lambda e: e[3]), left_once, right_once
    )
    got: dict[int, Counter] = {}
    for time, row, diff in pw.debug.table_to_stream(joined):
        got.setdefault(time, Counter())[(row["ln"], row["rn"], row["lv"], row["rv"])] += diff
    assert got == expected
    assert sum(sum(c.values()) for c in got.values()) > 100
