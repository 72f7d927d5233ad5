"""One row per id for a join that takes its row ids from one side (``id=pw.left.id``).

Such a join promises that each row of that side (its *own* side) meets at most one row of the
other side: the result row keeps the own row's id. When the data breaks the promise and the run
keeps errors (``terminate_on_error=False``), the rows sharing an id are shown as one row, as in
Pathway: the own side's columns as they are, the other side's columns Error. The failure is
reported each time the id's shown row changes while it is repeated, and the result stays a
function of the current inputs, so it repairs itself when a partner goes away.

All the rows of one id come from one key group of the join (the own row's), so the join
computes, for the key groups a time touches, their whole result before and after the time
(:meth:`JoinOperator._step_views`); :func:`shown_changes` turns the two into the changes of the
shown rows. An id with a single row costs nothing more: while no id is repeated the shown rows
are the rows. With ``terminate_on_error=True`` the join itself raises at the first repeated id
and nothing here runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.errors import ERROR, error_mask, mark_seen, unify_object_columns


def shown_changes(
    before: pl.DataFrame | None,
    after: pl.DataFrame | None,
    other_columns: Sequence[str],
    report: Callable[[t.Pointer], None],
    schema: Mapping[str, pl.DataType],
) -> pl.DataFrame | None:
    """The changes of the shown rows of some ids, from all their rows ``before`` (with
    negative diffs) and ``after`` (positive diffs) the time; ``report`` is called for each id
    whose shown row changed to, or stays, a row of Errors. ``schema``: the output's dtypes,
    which the columns left without Error cells get back."""
    old, _ = _one_row_per_id(before, other_columns)
    new, repeated = _one_row_per_id(after, other_columns)
    parts = [f for f in (old, new) if f is not None and f.height]
    if not parts:
        return None
    if len(parts) == 1:
        out = parts[0]
    else:
        out = merged(parts, schema)
    if repeated is not None:
        shown = out.filter((pl.col(DIFF) > 0) & pl.col(ID).is_in(repeated.implode()))
        for row_id in shown[ID].to_list():
            report(t.Pointer(row_id))
    return out if out.height else None


def _one_row_per_id(
    frame: pl.DataFrame | None, other_columns: Sequence[str]
) -> tuple[pl.DataFrame | None, pl.Series | None]:
    """``frame`` with the rows of each repeated id replaced by one row of that id (its first
    row, Error in ``other_columns``), and the repeated ids (None: no id is repeated)."""
    if frame is None or frame.height == 0:
        return frame, None
    if frame[ID].n_unique() == frame.height and bool((frame[DIFF].abs() == 1).all()):
        return frame, None  # the common case: every id has its single row
    counts = frame.group_by(ID).agg(pl.col(DIFF).abs().sum().alias("__rows"))
    repeated = counts.filter(pl.col("__rows") > 1)[ID]
    if repeated.len() == 0:
        return frame, None
    mask = frame[ID].is_in(repeated.implode())
    single = frame.filter(~mask)
    many = frame.filter(mask).filter(pl.col(ID).is_first_distinct())
    errors = [
        pl.Series(name, [ERROR] * many.height, dtype=pl.Object)
        for name in other_columns
        if name in many.columns
    ]
    many = many.with_columns([*errors, pl.col(DIFF).sign().alias(DIFF)])
    mark_seen()
    if single.height == 0:
        return many, repeated
    return pl.concat(unify_object_columns([single, many]), how="vertical_relaxed"), repeated


def merged(parts: Sequence[pl.DataFrame], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """``parts`` (batches of one output) as one consolidated batch. A column that holds Error
    cells in one part is stored as objects in all; where no Error cell is left (the rows
    holding them cancelled out) it gets its dtype from ``schema`` back, as operators
    downstream expect an object column only where an Error is."""
    out = consolidate(pl.concat(unify_object_columns(parts), how="vertical_relaxed"))
    typed = [
        pl.Series(name, out[name].to_list(), dtype=schema[name])
        for name, dtype in out.schema.items()
        if dtype == pl.Object
        and schema.get(name, pl.Object) != pl.Object
        and error_mask(out[name]) is None
    ]
    return out.with_columns(typed) if typed else out
