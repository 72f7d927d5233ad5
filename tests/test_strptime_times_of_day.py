"""``dt.strptime`` with a format that has no date part reads times of day on 1900-01-01 (as
Python's ``strptime`` and Pathway do), never a made-up instant."""

from __future__ import annotations

import datetime

import pandas as pd
import pytest

import deltaflow as pw


def _parsed(text_rows: str, fmt: str) -> list[pd.Timestamp]:
    table = pw.debug.table_from_markdown(text_rows, split_on_whitespace=False)
    result = table.select(at=pw.this.s.dt.strptime(fmt))
    return sorted(pw.debug.table_to_dicts(result)[1]["at"].values())


@pytest.mark.parametrize(
    ("rows", "fmt", "expected"),
    [
        ("s\n12:34:00\n01:22:12", "%H:%M:%S", [(1, 22, 12, 0), (12, 34, 0, 0)]),
        ("s\n12:34:00 PM\n01:22:12 AM", "%I:%M:%S %p", [(1, 22, 12, 0), (12, 34, 0, 0)]),
        ("s\n12:34:00.5\n13:00:34.000000000", "%H:%M:%S.%f", [(12, 34, 0, 500000), (13, 0, 34, 0)]),
    ],
)
def test_time_only_formats_give_times_on_1900_01_01(
    rows: str, fmt: str, expected: list[tuple[int, int, int, int]]
) -> None:
    assert _parsed(rows, fmt) == [
        pd.Timestamp(datetime.datetime(1900, 1, 1, *parts)) for parts in expected
    ]


def test_formats_with_a_date_are_unchanged() -> None:
    assert _parsed("s\n2024-02-29 10:00", "%Y-%m-%d %H:%M") == [pd.Timestamp(2024, 2, 29, 10)]


def test_a_time_of_day_with_a_time_zone_is_refused_when_run() -> None:
    table = pw.debug.table_from_markdown("s\n12:34:00+01:00", split_on_whitespace=False)
    result = table.select(at=pw.this.s.dt.strptime("%H:%M:%S%z"))  # defined: fine
    with pytest.raises(ValueError, match="no date"):
        pw.debug.table_to_dicts(result)


def test_bad_text_names_the_format_not_the_added_date() -> None:
    table = pw.debug.table_from_markdown("s\n99:99:99", split_on_whitespace=False)
    with pytest.raises(ValueError, match='"99:99:99" does not match the format "%H:%M:%S"'):
        pw.debug.table_to_dicts(table.select(at=pw.this.s.dt.strptime("%H:%M:%S")))


def test_update_stream_of_times_of_day() -> None:
    table = pw.debug.table_from_markdown(
        """
          | s        | __time__ | __diff__
        1 | 08:00:00 |     2    |     1
        2 | 09:30:00 |     4    |     1
        1 | 08:00:00 |     6    |    -1
        1 | 10:15:00 |     6    |     1
        """
    )
    result = table.select(at=pw.this.s.dt.strptime("%H:%M:%S"))
    updates: list[tuple[int, pd.Timestamp, bool]] = []
    pw.io.subscribe(
        result,
        on_change=lambda key, row, time, is_addition: updates.append(
            (time, row["at"], is_addition)
        ),
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    day = datetime.datetime(1900, 1, 1)
    assert sorted(updates) == [
        (2, pd.Timestamp(day.replace(hour=8)), True),
        (4, pd.Timestamp(day.replace(hour=9, minute=30)), True),
        (6, pd.Timestamp(day.replace(hour=8)), False),
        (6, pd.Timestamp(day.replace(hour=10, minute=15)), True),
    ]
