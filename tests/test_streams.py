"""to_stream / stream_to_table / from_streams, append-only checks."""

from __future__ import annotations

import pytest
from tests._util import snapshot, stream

import deltaflow as pw

_CHANGES = """
      | a | b | __time__ | __diff__
    1 | 1 | 2 | 2        | 1
    2 | 3 | 4 | 2        | 1
    1 | 1 | 2 | 4        | -1
    1 | 5 | 6 | 4        | 1
    2 | 3 | 4 | 6        | -1
"""


def test_to_stream_turns_changes_into_upserts_and_deletions() -> None:
    t = pw.debug.table_from_markdown(_CHANGES)
    s = t.to_stream()
    assert s.column_names() == ["a", "b", "is_upsert"] and s.is_append_only
    assert stream(s) == [
        (2, 1, 2, True, 1),
        (2, 3, 4, True, 1),
        (4, 5, 6, True, 1),
        (6, 3, 4, False, 1),
    ]


def test_stream_to_table_rebuilds_the_table() -> None:
    t = pw.debug.table_from_markdown(_CHANGES)
    s = t.to_stream()
    back = s.stream_to_table(s.is_upsert)
    assert [row[:3] + row[4:] for row in stream(back)] == [
        (2, 1, 2, 1),
        (2, 3, 4, 1),
        (4, 1, 2, -1),
        (4, 5, 6, 1),
        (6, 3, 4, -1),
    ]
    assert snapshot(back.without("is_upsert")) == snapshot(t)


def test_from_streams_applies_a_deletion_stream() -> None:
    inserts = pw.debug.table_from_markdown(
        """
          | v | __time__
        1 | 1 | 2
        2 | 2 | 2
        """
    )
    deletions = pw.debug.table_from_markdown(
        """
          | v | __time__
        1 | 1 | 4
        """
    )
    assert snapshot(inserts.from_streams(deletions)) == [(2,)]


def test_append_only_is_known_from_the_plan_and_can_be_asserted() -> None:
    assert not pw.debug.table_from_markdown(_CHANGES).is_append_only
    inserts_only = pw.debug.table_from_markdown(
        """
        a | b
        1 | 2
        """
    )
    assert inserts_only.is_append_only
    assert inserts_only.select(c=pw.this.a + 1).filter(pw.this.c > 0).is_append_only
    assert not inserts_only.groupby(pw.this.a).reduce(pw.this.a).is_append_only
    checked = pw.debug.table_from_markdown(_CHANGES).assert_append_only()
    assert checked.is_append_only
    pw.io.null.write(checked)
    with pytest.raises(ValueError, match="Expected table to be append-only, but got diff=-1"):
        pw.run()


def test_eval_type() -> None:
    t = pw.debug.table_from_markdown(_CHANGES)
    assert t.eval_type(t.a + 1.5).typehint is float
