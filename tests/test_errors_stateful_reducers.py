"""User (stateful) reducers that take in an Error argument stay Error while the group lives,
when the groupby keeps errors (``_skip_errors=False``); built-in reducers recover once the
row with the error is gone."""

from __future__ import annotations

import deltaflow as pw


@pw.reducers.stateful_single
def _running_sum(state: int | None, value: int) -> int:
    return value if state is None else state + value


def _table(extra: str = "") -> pw.Table:
    return pw.debug.table_from_markdown(
        """
          | g | b | d | __time__ | __diff__
        1 | 1 | 1 | 1 |    2     |    1
        2 | 1 | 2 | 0 |    4     |    1
        4 | 2 | 5 | 1 |    4     |    1
        2 | 1 | 2 | 0 |    8     |   -1
        3 | 1 | 3 | 1 |   10     |    1
        """
        + extra
    ).with_columns(b=pw.this.b // pw.this.d)


def _reduce(t: pw.Table, skip_errors: bool) -> pw.Table:
    return t.groupby(pw.this.g, _skip_errors=skip_errors).reduce(
        pw.this.g,
        s=pw.fill_error(_running_sum(pw.this.b), -1),
        n=pw.fill_error(pw.reducers.sum(pw.this.b), -1),
    )


def test_user_reducer_stays_error_while_the_group_lives() -> None:
    result = _reduce(_table(), skip_errors=False)
    rows = [r for r in pw.debug.table_to_stream(result, terminate_on_error=False)]
    got = sorted((time, row["g"], row["s"], row["n"], diff) for time, row, diff in rows)
    assert got == [
        (2, 1, 1, 1, 1),
        (4, 1, -1, -1, 1),
        (4, 1, 1, 1, -1),
        (4, 2, 5, 5, 1),
        (8, 1, -1, -1, -1),
        (8, 1, -1, 1, 1),  # the built-in sum recovers, the user reducer does not
        (10, 1, -1, 1, -1),
        (10, 1, -1, 4, 1),
    ]


def test_a_group_that_goes_away_starts_afresh() -> None:
    later = """
        1 | 1 | 1 | 1 |   12     |   -1
        3 | 1 | 3 | 1 |   12     |   -1
        5 | 1 | 7 | 1 |   14     |    1
    """
    result = _reduce(_table(later), skip_errors=False)
    rows = pw.debug.table_to_stream(result, terminate_on_error=False)
    final = {}
    for _, row, diff in sorted(rows, key=lambda change: (change[0], change[2])):
        if diff > 0:
            final[row["g"]] = (row["s"], row["n"])
        elif final.get(row["g"]) == (row["s"], row["n"]):
            del final[row["g"]]
    assert final == {1: (7, 7), 2: (5, 5)}


def test_skipping_errors_leaves_user_reducers_alone() -> None:
    result = _reduce(_table(), skip_errors=True)
    rows = pw.debug.table_to_stream(result, terminate_on_error=False)
    got = sorted((time, row["g"], row["s"], row["n"], diff) for time, row, diff in rows)
    assert got == [(2, 1, 1, 1, 1), (4, 2, 5, 5, 1), (10, 1, 1, 1, -1), (10, 1, 4, 4, 1)]
