"""A first end-to-end check of the foundation."""

import deltaflow as pw


def test_select_filter_update_stream() -> None:
    t = pw.debug.table_from_markdown(
        """
            | owner | age | __time__ | __diff__
          1 | Alice | 10  | 2        | 1
          2 | Bob   | 9   | 2        | 1
          1 | Alice | 10  | 4        | -1
          1 | Alice | 11  | 4        | 1
        """
    )
    r = t.select(t.owner, next_age=t.age + 1).filter(pw.this.next_age > 10)
    stream = pw.debug.table_to_stream(r)
    assert [(time, row["owner"], row["next_age"], diff) for time, row, diff in stream] == [
        (2, "Alice", 11, 1),
        (4, "Alice", 11, -1),
        (4, "Alice", 12, 1),
    ] or sorted((time, row["next_age"], diff) for time, row, diff in stream) == [
        (2, 11, 1),
        (4, 11, -1),
        (4, 12, 1),
    ]
