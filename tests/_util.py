"""Small helpers shared by the foundation tests."""

from __future__ import annotations

from typing import Any

import deltaflow as pw


def _order(value: Any) -> tuple:
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float | str):
        return (1, value) if not isinstance(value, str) else (2, value)
    return (3, repr(value))


def row_order(row: tuple) -> tuple:
    """A sort key for rows of mixed values (None first, then numbers, strings, the rest)."""
    return tuple(_order(v) for v in row)


def snapshot(table: pw.Table) -> list[tuple]:
    """The final rows of ``table`` as sorted tuples (ids left out)."""
    _, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    keys = list(next(iter(columns.values())).keys()) if columns else []
    return sorted((tuple(columns[n][k] for n in names) for k in keys), key=row_order)


def snapshot_by_id(table: pw.Table) -> dict[Any, tuple]:
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return {k: tuple(columns[n][k] for n in names) for k in keys}


def stream(table: pw.Table) -> list[tuple]:
    """Every change as (time, values..., diff), sorted within each time."""
    names = table.column_names()
    rows = [
        (time, *(row[n] for n in names), diff)
        for time, row, diff in pw.debug.table_to_stream(table)
    ]
    return sorted(rows, key=row_order)
