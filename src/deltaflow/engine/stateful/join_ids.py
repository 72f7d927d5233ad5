"""One row per id for a join that takes its row ids from one side (``id=pw.left.id``).

Such a join promises that each row of that side (its *own* side) meets at most one row of the
other side: the result row keeps the own row's id. When the data breaks the promise and the run
keeps errors (``terminate_on_error=False``), the rows sharing an id are shown as one row, as in
Pathway: the own side's columns as they are, the other side's columns Error. The failure is
reported once each time the id's shown row changes while it is repeated, and the result stays a
function of the current inputs, so it repairs itself when a partner goes away.

The join operator computes its output rows as usual; :class:`OneRowPerId` keeps them by id and
turns each time's changes into changes of the shown rows. While no id of a batch is repeated
(before or after it) the batch passes unchanged. With ``terminate_on_error=True`` the join
itself raises at the first repeated id and nothing here runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._values import canonical_key
from deltaflow.engine.batch import DIFF, ID
from deltaflow.errors import ERROR, mark_seen, on_failure

_Row = tuple[Any, ...]
#: What an id shows: its row and whether it stands for several rows (None: no row).
_View = tuple[_Row, bool] | None


def _key(row: _Row) -> tuple[Any, ...]:
    return tuple(canonical_key(value) for value in row)


class OneRowPerId:
    """The output rows of a join with ``id=`` of one side, kept by id; see the module doc.

    ``columns`` are the output's columns (without id and diff) in order, ``other_columns``
    those that come from the other side (they hold Error in the row of a repeated id)."""

    def __init__(
        self,
        columns: Sequence[str],
        other_columns: Sequence[str],
        side: str,
        describe: Callable[[], str],
    ) -> None:
        self.columns = list(columns)
        other = set(other_columns)
        self.other_positions = [i for i, name in enumerate(self.columns) if name in other]
        self.side = side
        self.describe = describe
        # id -> canonical row -> [row, multiplicity]
        self.rows: dict[int, dict[tuple[Any, ...], list[Any]]] = {}

    def apply(self, out: pl.DataFrame | None) -> pl.DataFrame | None:
        """The changes of the shown rows for ``out``, a batch of the join's output rows."""
        if out is None or out.height == 0:
            return out
        names = [c for c in out.columns if c not in (ID, DIFF)]
        if names != self.columns:  # the layout given at construction is the operator's
            raise AssertionError(f"{self.describe()}: unexpected join output {names}")
        ids = out[ID].to_list()
        diffs = out[DIFF].to_list()
        rows = out.select(names).rows()
        touched = dict.fromkeys(ids)
        before = {i: self._view(i) for i in touched}
        for row_id, row, diff in zip(ids, rows, diffs, strict=True):
            entries = self.rows.setdefault(row_id, {})
            key = _key(row)
            entry = entries.get(key)
            if entry is None:
                entries[key] = [row, diff]
            else:
                entry[1] += diff
                if entry[1] == 0:
                    del entries[key]
            if not entries:
                del self.rows[row_id]
        after = {i: self._view(i) for i in touched}
        repeated = [i for i in touched if _repeated(before[i]) or _repeated(after[i])]
        if not repeated:
            return out  # every id shows its single row: the changes are the rows' changes
        changes: list[tuple[int, _Row, int]] = []
        for row_id in touched:
            old, new = before[row_id], after[row_id]
            if _same(old, new):
                continue
            if new is not None and new[1]:
                self._report(row_id)
            if old is not None:
                changes.append((row_id, old[0], -1))
            if new is not None:
                changes.append((row_id, new[0], 1))
        return self._frame(out.schema, changes)

    def _view(self, row_id: int) -> _View:
        entries = self.rows.get(row_id)
        if not entries:
            return None
        total = sum(entry[1] for entry in entries.values())
        if total <= 0:
            return None
        first = next(iter(entries.values()))[0]
        if total == 1 and len(entries) == 1:
            return first, False
        shown = list(first)
        for position in self.other_positions:
            shown[position] = ERROR
        return tuple(shown), True

    def _report(self, row_id: int) -> None:
        other = "right" if self.side == "left" else "left"
        key = t.Pointer(row_id)
        on_failure(
            f"{self.describe()}: the {self.side} row {key} matched several {other} rows, but "
            f"the join takes its ids from the {self.side} side (id=), so they share one row "
            f"id; that row holds Error in the {other} side's columns",
            KeyError(f"{self.describe()}: several rows with id {key}"),
        )

    def _frame(
        self, schema: pl.Schema, changes: list[tuple[int, _Row, int]]
    ) -> pl.DataFrame | None:
        if not changes:
            return None
        series = [pl.Series(ID, [c[0] for c in changes], dtype=schema[ID])]
        for position, name in enumerate(self.columns):
            values = [c[1][position] for c in changes]
            if schema[name] != pl.Object and any(v is ERROR for v in values):
                mark_seen()
                series.append(pl.Series(name, values, dtype=pl.Object))
            else:
                series.append(pl.Series(name, values, dtype=schema[name]))
        series.append(pl.Series(DIFF, [c[2] for c in changes], dtype=schema[DIFF]))
        return pl.DataFrame(series)


def _repeated(view: _View) -> bool:
    return view is not None and view[1]


def _same(old: _View, new: _View) -> bool:
    if old is None or new is None:
        return old is new
    return old[1] == new[1] and _key(old[0]) == _key(new[0])
