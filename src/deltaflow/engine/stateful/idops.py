"""Operators that match the rows of several tables by id.

``update_rows``, ``update_cells``, ``restrict``, ``with_universe_of``, ``intersect`` and
``difference`` all have the same shape: every input is arranged by row id; at each time the
operator looks up the ids the deltas touch, computes the result for those ids before and after
the deltas, and emits the difference.

The first four rely on promises about ids (an update names rows of the table, a restricting
table's ids are ids of the table, an id is not repeated). The data may break them; then the
operator reports each broken id when computing the state after a time (a ``KeyError`` that
stops the run, or with ``terminate_on_error=False`` a row of the error log), and the result is
still a function of the current inputs only, so that later changes repair it:

- an id that appears more than once in an input: ``update_rows`` leaves it out,
  ``update_cells`` leaves out a repeated row of the table and gives Error cells for a repeated
  update, ``restrict``/``with_universe_of`` give a row of Error cells;
- an id of the restricting table missing from the table (``restrict``, ``with_universe_of``):
  a row of Error cells;
- an update of a missing row (``update_cells``): ignored;
- a row whose id is not in the other table (``with_universe_of``): left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from deltaflow import _types as t
from deltaflow import errors
from deltaflow._small_frames import frame_of
from deltaflow.engine.batch import DIFF, ID, ID_DTYPE, consolidate, consolidate_rows, empty_batch
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.stateful.arrangement import Arrangement
from deltaflow.engine.stateful.keys import KH, key_hash_series
from deltaflow.engine.stateful.nodes import IdOpNode

#: The id operations whose promises are checked (the others are plain semi/anti joins).
CHECKED_KINDS = ("update_rows", "update_cells", "restrict", "with_universe_of")


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the key hash of its ids (computed in Python for a small delta)."""
    hashes = key_hash_series([frame.get_column(ID)])
    assert hashes is not None  # ids are UInt128, never Python objects
    return frame_of([*frame.get_columns(), hashes])


_NO_IDS = pl.DataFrame(schema={ID: ID_DTYPE})
_SMALL = 64  # rows: a state this small is checked with Python lists, not Polars calls


def _all_once(frame: pl.DataFrame) -> bool:
    """Whether every row of ``frame`` has diff 1 and its own id (the promise kept)."""
    if frame.height <= _SMALL:
        ids = frame[ID].to_list()
        return len(set(ids)) == len(ids) and all(d == 1 for d in frame[DIFF].to_list())
    return bool((frame[DIFF] == 1).all()) and bool(frame[ID].is_unique().all())


def _split_repeated(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of ``frame`` (a consolidated state) whose id is there once, and the ids that
    are there more than once (several rows, or one row inserted several times)."""
    if frame.height == 0 or _all_once(frame):  # the common case: nothing to split
        return frame, _NO_IDS
    present = frame.filter(pl.col(DIFF) > 0)
    counts = present.group_by(ID).agg(pl.col(DIFF).sum().alias("__n"))
    repeated = counts.filter(pl.col("__n") > 1).select(ID)
    return present.join(repeated, on=ID, how="anti"), repeated


class IdOpOperator(Operator[IdOpNode]):
    def __init__(self, node: IdOpNode) -> None:
        super().__init__(node)
        self.kind = node.kind
        self.arrangements = [Arrangement() for _ in node.inputs]
        self.schemas = [empty_batch(i.columns).schema for i in node.inputs]
        self.out_schema = empty_batch(node.columns).schema
        self.input_columns = [list(i.columns) for i in node.inputs]
        self.what = node.label or node.kind

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        keyed = [None if d is None or d.height == 0 else _keyed(d) for d in deltas]
        present = [d for d in keyed if d is not None]
        if not present:
            return None
        touched = pl.concat([d[KH] for d in present]).unique()
        olds: list[pl.DataFrame | None] = []
        news: list[pl.DataFrame | None] = []
        for arrangement, delta in zip(self.arrangements, keyed, strict=True):
            old = arrangement.lookup(touched)
            olds.append(old)
            if delta is None:
                news.append(old)
                continue
            arrangement.insert(delta)
            if old is None:
                news.append(delta)
            else:
                merged = consolidate_rows(pl.concat([old, delta], how="vertical_relaxed"))
                news.append(merged if merged.height else None)
        # Broken promises are reported for the new state only: the old one was reported when
        # it was new.
        before = self._combine(olds, report=False)
        after = self._combine(news, report=True)
        parts = []
        if before is not None and before.height:
            parts.append(before.with_columns((-pl.col(DIFF)).alias(DIFF)))
        if after is not None and after.height:
            parts.append(after)
        if not parts:
            return None
        if len(parts) > 1:
            parts = errors.unify_object_columns(parts)
        out = consolidate(pl.concat(parts, how="vertical_relaxed"))
        return out if out.height else None

    # --- the result of one state -----------------------------------------------------------
    def _frame(self, index: int, frame: pl.DataFrame | None) -> pl.DataFrame:
        if frame is None:
            return pl.DataFrame(schema=self.schemas[index])
        return frame.select(list(self.schemas[index]))

    def _shape(self, frame: pl.DataFrame) -> pl.DataFrame:
        names = list(self.out_schema)
        return frame.select(
            [
                pl.col(c).cast(self.out_schema[c])
                if frame.schema[c] != self.out_schema[c] and self.out_schema[c] != pl.Object
                else pl.col(c)
                for c in names
            ]
        )

    def _combine(self, frames: list[pl.DataFrame | None], *, report: bool) -> pl.DataFrame | None:
        base = self._frame(0, frames[0])
        kind = self.kind
        if kind == "update_rows":
            return self._update_rows(base, self._frame(1, frames[1]), report)
        if kind == "update_cells":
            return self._update_cells(base, self._frame(1, frames[1]), report)
        if kind in ("restrict", "with_universe_of"):
            return self._restrict(base, self._frame(1, frames[1]), report)
        if kind == "intersect":
            for index in range(1, len(frames)):
                other = self._frame(index, frames[index])
                base = base.join(other.select(ID), on=ID, how="semi")
            return self._shape(base)
        if kind == "difference":
            other = self._frame(1, frames[1])
            return self._shape(base.join(other.select(ID), on=ID, how="anti"))
        raise ValueError(f"unknown id operation {kind!r}")

    def _update_rows(self, base: pl.DataFrame, other: pl.DataFrame, report: bool) -> pl.DataFrame:
        rows, repeated = _split_repeated(base)
        updates, repeated_updates = _split_repeated(other)
        replaced = other if not repeated_updates.height else other.filter(pl.col(DIFF) > 0)
        kept = rows.join(replaced.select(ID), on=ID, how="anti") if replaced.height else rows
        result = pl.concat([self._shape(kept), self._shape(updates)], how="vertical_relaxed")
        if repeated.height or repeated_updates.height:
            bad = pl.concat([repeated, repeated_updates]).unique()
            if report:
                self._report_repeated(bad)
            result = result.join(bad, on=ID, how="anti")
        return result

    def _update_cells(self, base: pl.DataFrame, other: pl.DataFrame, report: bool) -> pl.DataFrame:
        rows, repeated = _split_repeated(base)
        updates, repeated_updates = _split_repeated(other)
        names = list(self.input_columns[1])
        renamed = updates.select([ID, *[pl.col(c).alias(f"__u_{c}") for c in names]]).with_columns(
            pl.lit(True).alias("__u_present")
        )
        joined = rows.join(renamed, on=ID, how="left")
        present = pl.col("__u_present").fill_null(False)
        joined = joined.with_columns(
            [
                pl.when(present).then(pl.col(f"__u_{c}")).otherwise(pl.col(c)).alias(c)
                if self.out_schema[c] != pl.Object
                else _object_choice(joined, c)
                for c in names
            ]
        )
        result = self._shape(joined)
        if report:
            if repeated.height:
                self._report_repeated(repeated)
            known = base[ID] if not repeated.height else base.filter(pl.col(DIFF) > 0)[ID]
            wanted = (
                other[ID] if not repeated_updates.height else other.filter(pl.col(DIFF) > 0)[ID]
            )
            found = wanted.is_in(known.implode()) if wanted.len() else None
            missing = (
                _NO_IDS
                if found is None or found.all()
                else wanted.filter(~found).unique().to_frame()
            )
            for key in _pointers(missing):
                errors.on_failure(
                    f"{self.what}: the update of row {key} cannot be applied, the table has no "
                    f"row with that id (a broken promise_universe_is_subset_of); the update "
                    f"is ignored",
                    KeyError(f"{self.what}: no row with id {key} to update"),
                )
        if repeated_updates.height:
            hit = repeated_updates.join(rows.select(ID), on=ID, how="semi")
            if report:
                self._report_repeated(repeated_updates)
            if hit.height:
                result = _with_error_cells(result, hit, names)
        return result

    def _restrict(self, base: pl.DataFrame, other: pl.DataFrame, report: bool) -> pl.DataFrame:
        rows, repeated = _split_repeated(base)
        wanted = (
            other.select(ID)
            if _all_once(other)
            else other.filter(pl.col(DIFF) > 0).select(ID).unique(maintain_order=True)
        )
        result = self._shape(wanted.join(rows, on=ID, how="inner"))
        missing = (
            _NO_IDS
            if result.height == wanted.height
            else wanted.join(rows.select(ID), on=ID, how="anti")
        )
        if report:
            if repeated.height:
                self._report_repeated(repeated.join(wanted, on=ID, how="semi"))
            absent = missing.join(repeated, on=ID, how="anti")
            for key in _pointers(absent):
                errors.on_failure(
                    f"{self.what}: id {key} is in the restricting table but the table has no "
                    f"row with it (a broken promise); its cells are Error",
                    KeyError(f"{self.what}: the table has no row with id {key}"),
                )
            if self.kind == "with_universe_of" and rows.height > result.height:
                extra = rows.select(ID).join(wanted, on=ID, how="anti")
                for key in _pointers(extra):
                    errors.on_failure(
                        f"{self.what}: the table's row {key} is not in the other table, "
                        f"whose ids it was said to have; the row is left out",
                        KeyError(f"{self.what}: row {key} is not in the other table"),
                    )
        if missing.height == 0:
            return result
        filler = missing.with_columns(
            [
                pl.lit(None, dtype=dtype).alias(name)
                for name, dtype in self.out_schema.items()
                if name not in (ID, DIFF)
            ]
            + [pl.lit(1, dtype=pl.Int64).alias(DIFF)]
        )
        filler = _with_error_cells(
            filler.select(list(self.out_schema)),
            missing,
            [c for c in self.out_schema if c not in (ID, DIFF)],
        )
        parts = errors.unify_object_columns([result, filler])
        return pl.concat(parts, how="vertical_relaxed")

    def _report_repeated(self, ids: pl.DataFrame) -> None:
        for key in _pointers(ids):
            errors.on_failure(
                f"{self.what}: id {key} is given to several rows (ids must be unique here); "
                f"the id's result is left out or Error",
                KeyError(f"{self.what}: several rows with id {key}"),
            )


def _pointers(ids: pl.DataFrame) -> list[t.Pointer]:
    return [t.Pointer(v) for v in ids[ID].to_list()]


def _with_error_cells(frame: pl.DataFrame, ids: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """``frame`` with Error in the cells of ``names`` for the rows whose id is in ``ids``."""
    mask = frame[ID].is_in(ids[ID].implode()) if ids.height else None
    if mask is None or not mask.any():
        return frame
    errors.mark_seen()
    return frame.with_columns([errors.with_errors(frame[name], mask) for name in names])


def _object_choice(joined: pl.DataFrame, column: str) -> pl.Series:
    present = joined["__u_present"].fill_null(False).to_list()
    new = joined[f"__u_{column}"].to_list()
    old = joined[column].to_list()
    return pl.Series(
        column, [n if p else o for p, n, o in zip(present, new, old, strict=True)], dtype=pl.Object
    )
