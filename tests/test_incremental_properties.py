"""The core property on stateless pipelines: incremental results equal recomputation.

For a random update stream, the changes a pipeline emits at each time must be exactly the
difference between running the same pipeline from scratch on the input as of that time and as
of the previous time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw


class Row(pw.Schema):
    k: int = pw.column_definition(primary_key=True)
    v: int
    s: str


Event = tuple[int, int, int, str, int]  # time, k, v, s, diff


@st.composite
def update_streams(draw: st.DrawFn) -> list[Event]:
    """Consistent streams: deletions remove rows that exist, updates are delete + insert."""
    state: dict[int, tuple[int, str]] = {}
    events: list[Event] = []
    for step in range(draw(st.integers(1, 6))):
        time = 2 * (step + 1)
        for _ in range(draw(st.integers(1, 5))):
            key = draw(st.integers(0, 6))
            value = draw(st.integers(-5, 5))
            text = draw(st.sampled_from(["a", "b", "ab", ""]))
            if key in state:
                old_v, old_s = state.pop(key)
                events.append((time, key, old_v, old_s, -1))
                if draw(st.booleans()):
                    continue  # a deletion
            state[key] = (value, text)
            events.append((time, key, value, text, 1))
    return events


def _final_state(events: list[Event], up_to: int) -> list[tuple[int, int, str]]:
    counts: Counter[tuple[int, int, str]] = Counter()
    for time, k, v, s, diff in events:
        if time <= up_to:
            counts[(k, v, s)] += diff
    assert all(c in (0, 1) for c in counts.values())
    return [row for row, c in counts.items() if c == 1]


def _rows(table: pw.Table) -> Counter[tuple]:
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return Counter((k, *(columns[n][k] for n in names)) for k in keys)


def _check(pipeline: Callable[[pw.Table], pw.Table], events: list[Event]) -> None:
    incremental = pipeline(
        pw.debug.table_from_rows(
            Row, [(k, v, s, time, diff) for time, k, v, s, diff in events], is_stream=True
        )
    )
    names = incremental.column_names()
    emitted: dict[int, Counter[tuple]] = {}
    for time, row, diff in pw.debug.table_to_stream(incremental):
        key = (row["id"], *(row[n] for n in names))
        # Output batches are consolidated: each (id, row) at most once per time, never diff 0.
        assert diff != 0 and key not in emitted.get(time, {}), f"unconsolidated at {time}"
        emitted.setdefault(time, Counter())[key] += diff
    previous: Counter[tuple] = Counter()
    for time in sorted({e[0] for e in events}):
        pw.clear_graph()
        current = _rows(pipeline(pw.debug.table_from_rows(Row, _final_state(events, time))))
        expected = Counter(current)
        expected.subtract(previous)
        expected_changes = {row: c for row, c in expected.items() if c}
        got = {row: c for row, c in emitted.get(time, Counter()).items() if c}
        assert got == expected_changes, f"time {time}"
        previous = current


PIPELINES: dict[str, Callable[[pw.Table], pw.Table]] = {
    "select": lambda t: t.select(t.k, w=t.v * 2 + 1, u=t.s + "!"),
    "filter": lambda t: t.filter(pw.this.v > 0),
    "select_filter_chain": lambda t: (
        t.with_columns(w=pw.this.v % 3)
        .filter(pw.this.w != 1)
        .select(pw.this.s, x=pw.if_else(pw.this.v > 0, pw.this.v, -pw.this.v))
    ),
    "projection_collapses_updates": lambda t: t.select(t.s),
    "reindex": lambda t: t.with_id_from(pw.this.k, pw.this.s),
    "concat": lambda t: t.filter(pw.this.v > 0).concat(t.filter(pw.this.v <= 0)),
    "split_concat_reindex": lambda t: t.filter(pw.this.v > 0).concat_reindex(
        t.filter(pw.this.v < 2)
    ),
    "udf": lambda t: t.select(z=pw.apply(lambda v, s: f"{s}{v}", t.v, t.s)),
    "same_universe_columns": lambda t: (lambda d: t.select(t.k, z=d.x + t.v).filter(d.x > 0))(
        t.select(x=t.v * 2)
    ),
    "flatten": lambda t: t.select(
        t.k, chars=pw.apply_with_type(tuple, tuple[str, ...], t.s)
    ).flatten(pw.this.chars),
}


def _make_test(name: str) -> Callable[..., None]:
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(events=update_streams())
    def test(events: list[Event]) -> None:
        pw.clear_graph()
        _check(PIPELINES[name], events)

    test.__name__ = f"test_incremental_equals_recomputation_{name}"
    return test


for _name in PIPELINES:
    globals()[f"test_incremental_equals_recomputation_{_name}"] = _make_test(_name)
