"""Column order of renames, ``Table.from_streams`` and the ``pw.stdlib.temporal`` module path."""

from __future__ import annotations

import importlib
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests._util import snapshot, stream

import deltaflow as pw


def _pets() -> pw.Table:
    return pw.debug.table_from_markdown("""
        pet | owner | age | legs
        dog | Ann   | 3   | 4
        hen | Bob   | 1   | 2
    """)


def test_rename_columns_puts_renamed_columns_last_in_argument_order() -> None:
    pets = _pets()
    renamed = pets.rename_columns(years=pets.age, animal="pet")
    assert renamed.column_names() == ["owner", "legs", "years", "animal"]
    assert snapshot(renamed) == [("Ann", 4, 3, "dog"), ("Bob", 2, 1, "hen")]


def test_rename_by_dict_and_rename_follow_the_mapping_order() -> None:
    pets = _pets()
    assert pets.rename_by_dict({"legs": "feet", "pet": "kind"}).column_names() == [
        "owner",
        "age",
        "feet",
        "kind",
    ]
    assert pets.rename({"age": "years"}).column_names() == ["pet", "owner", "legs", "years"]
    assert pets.rename(years=pets.age).column_names() == ["pet", "owner", "legs", "years"]


def test_swapping_two_column_names_and_prefixing_keep_every_value() -> None:
    pets = _pets()
    swapped = pets.rename_columns(pet=pets.owner, owner=pets.pet)
    assert swapped.column_names() == ["age", "legs", "pet", "owner"]
    assert snapshot(swapped.select(pw.this.pet, pw.this.owner)) == [("Ann", "dog"), ("Bob", "hen")]
    assert pets.with_prefix("p_").column_names() == ["p_pet", "p_owner", "p_age", "p_legs"]


def test_renaming_onto_a_kept_column_is_rejected_when_defined() -> None:
    pets = _pets()
    with pytest.raises(ValueError, match="owner"):
        pets.rename_columns(owner=pets.pet)


def test_from_streams_deletion_stream_needs_only_the_ids() -> None:
    inserts = pw.debug.table_from_markdown(
        """
        k | v  | __time__
        1 | 10 | 2
        2 | 20 | 2
        2 | 21 | 4
        3 | 30 | 4
    """,
        id_from=["k"],
    )
    deletes = pw.debug.table_from_markdown(
        """
        k | __time__
        9 | 2
        3 | 6
        1 | 8
    """,
        id_from=["k"],
    )
    result = pw.Table.from_streams(inserts, deletes)
    assert result.column_names() == ["k", "v"]
    assert stream(result) == [
        (2, 1, 10, 1),
        (2, 2, 20, 1),
        (4, 2, 20, -1),
        (4, 2, 21, 1),
        (4, 3, 30, 1),
        (6, 3, 30, -1),
        (8, 1, 10, -1),
    ]
    assert snapshot(result) == [(2, 21)]


def test_from_streams_rejects_a_non_table_when_defined() -> None:
    inserts = pw.debug.table_from_markdown("k | v\n1 | 2", id_from=["k"])
    with pytest.raises(TypeError, match="deletion_stream"):
        pw.Table.from_streams(inserts, [1, 2])  # type: ignore[arg-type]


# Each event: (key, time slot, value or None for a deletion). One event per key and slot.
_events = st.dictionaries(
    st.tuples(st.integers(0, 4), st.integers(1, 5)),
    st.one_of(st.none(), st.integers(0, 3)),
    max_size=14,
)


@settings(max_examples=30, deadline=None)
@given(events=_events)
def test_from_streams_matches_a_replay_at_every_time(
    events: dict[tuple[int, int], int | None],
) -> None:
    inserts = [(k, v, 2 * slot) for (k, slot), v in events.items() if v is not None]
    deletes = [(k, 2 * slot) for (k, slot), v in events.items() if v is None]
    insert_table = pw.debug.table_from_rows(
        pw.schema_from_types(k=int, v=int),
        [(k, v, time, 1) for k, v, time in inserts],
        is_stream=True,
    ).with_id_from(pw.this.k)
    delete_table = pw.debug.table_from_rows(
        pw.schema_from_types(k=int), [(k, time, 1) for k, time in deletes], is_stream=True
    ).with_id_from(pw.this.k)
    result = pw.Table.from_streams(insert_table, delete_table)

    expected: list[tuple] = []
    state: dict[int, int] = {}
    for time in sorted({2 * slot for _, slot in events}):
        before = dict(state)
        for (k, slot), v in events.items():
            if 2 * slot != time:
                continue
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        for k in set(before) | set(state):
            if before.get(k) != state.get(k):
                if k in before:
                    expected.append((time, k, before[k], -1))
                if k in state:
                    expected.append((time, k, state[k], 1))
    assert stream(result) == sorted(expected)


def test_stdlib_temporal_is_the_temporal_package_with_its_time_utils_module() -> None:
    stdlib_temporal = importlib.import_module("deltaflow.stdlib.temporal")
    time_utils = importlib.import_module("deltaflow.stdlib.temporal.time_utils")
    assert stdlib_temporal is pw.temporal
    assert time_utils is pw.temporal.time_utils
    assert time_utils.utc_now is pw.temporal.utc_now


def test_patching_utc_now_by_its_stdlib_path_reaches_the_code_that_uses_it() -> None:
    fake_clock = pw.debug.table_from_rows(pw.schema_from_types(timestamp_utc=int), [])
    with mock.patch("deltaflow.stdlib.temporal.time_utils.utc_now") as utc_now:
        utc_now.return_value = fake_clock.select(
            timestamp_utc=pw.this.timestamp_utc.dt.utc_from_timestamp(unit="ms")
        )
        pw.Table.empty(value=int).inactivity_detection(pw.Duration(seconds=1))
        assert utc_now.call_count == 1
    time_utils = importlib.import_module("deltaflow.stdlib.temporal.time_utils")
    assert not isinstance(time_utils.utc_now, mock.Mock)


def test_a_patch_that_deletes_its_replacement_leaves_the_original_reachable() -> None:
    time_utils = importlib.import_module("deltaflow.stdlib.temporal.time_utils")
    original = time_utils._get_now_timestamp_utc
    time_utils._get_now_timestamp_utc = lambda _: None
    del time_utils._get_now_timestamp_utc
    assert time_utils._get_now_timestamp_utc is original
    assert time_utils._get_now_timestamp_utc(None).tzinfo is not None


def _snapshots(table: pw.Table) -> dict[int, list[tuple]]:
    """Rows of an append-only stream grouped by time (asserting there are no deletions)."""
    by_time: dict[int, list[tuple]] = {}
    for time, *values, diff in stream(table):
        assert diff == 1
        by_time.setdefault(time, []).append(tuple(values))
    return {time: sorted(rows) for time, rows in by_time.items()}


def test_unpack_snapshots_of_a_static_table_is_the_table_once() -> None:
    table = pw.debug.table_from_markdown("k | v\na | 1\nb | 2")
    snapshots = table.unpack_snapshots()
    assert snapshots.is_append_only
    assert snapshots.column_names() == ["k", "v"]
    assert list(_snapshots(snapshots).values()) == [[("a", 1), ("b", 2)]]


def test_unpack_snapshots_repeats_the_whole_state_at_each_changing_time() -> None:
    table = pw.debug.table_from_markdown("""
          | k | v | __time__ | __diff__
        1 | a | 1 | 2        | 1
        2 | b | 2 | 2        | 1
        2 | b | 2 | 4        | -1
        2 | b | 3 | 4        | 1
        1 | a | 1 | 6        | -1
        2 | b | 3 | 8        | -1
    """)
    assert _snapshots(table.unpack_snapshots()) == {
        2: [("a", 1), ("b", 2)],
        4: [("a", 1), ("b", 3)],
        6: [("b", 3)],
    }


@settings(max_examples=30, deadline=None)
@given(events=_events)
def test_unpack_snapshots_equals_the_state_at_every_time(
    events: dict[tuple[int, int], int | None],
) -> None:
    rows: list[tuple] = []
    state: dict[int, int] = {}
    expected: dict[int, list[tuple]] = {}
    for slot in sorted({slot for _, slot in events}):
        before = dict(state)
        for (key, at), value in sorted(events.items()):
            if at != slot:
                continue
            if key in state:
                rows.append((key, state[key], 2 * slot, -1))
                del state[key]
            if value is not None:
                rows.append((key, value, 2 * slot, 1))
                state[key] = value
        if state != before and state:
            expected[2 * slot] = sorted(state.items())
    table = pw.debug.table_from_rows(
        pw.schema_from_types(k=int, v=int), rows, is_stream=True
    ).with_id_from(pw.this.k)
    assert _snapshots(table.unpack_snapshots()) == expected
