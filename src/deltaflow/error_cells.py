"""Error cells inside batches: finding, stripping and restoring the ``ERROR`` cells of Polars
frames, and the errors a join carries beside its typed state.

These helpers work on the data operators pass around, while :mod:`deltaflow.error_values`
holds the run-wide side of errors as values (the ``ERROR`` value, the error context, the log
tables); they are kept apart so that each module has one of the two jobs. Like the names of
:mod:`deltaflow.error_values`, these are reachable as ``deltaflow.errors.<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.error_values import ERROR, errors_seen, mark_seen, report, resolve_terminate


def error_mask(series: pl.Series) -> pl.Series | None:
    """Which cells of ``series`` are errors, or None when none is (only object columns can
    hold errors)."""
    if series.dtype != pl.Object or series.len() == 0:
        return None
    flags = [value is ERROR for value in series.to_list()]
    if not any(flags):
        return None
    return pl.Series(series.name, flags, dtype=pl.Boolean)


def error_columns(frame: pl.DataFrame, names: Sequence[str] | None = None) -> dict[str, pl.Series]:
    """The error masks of the columns of ``frame`` (all, or ``names``) holding errors."""
    found: dict[str, pl.Series] = {}
    for name in names if names is not None else frame.columns:
        if name in frame.columns and frame.schema[name] == pl.Object:
            mask = error_mask(frame[name])
            if mask is not None:
                found[name] = mask
    return found


def frame_has_errors(frame: pl.DataFrame) -> bool:
    """Whether any cell of ``frame`` is an error (cheap unless the run produced errors)."""
    if not errors_seen():
        return False
    return any(
        dtype == pl.Object and error_mask(frame[name]) is not None
        for name, dtype in frame.schema.items()
    )


def without_errors(series: pl.Series, dtype: pl.DataType | t.DType) -> pl.Series:
    """``series`` with its error cells made null, stored as ``dtype`` again."""
    polars_type = dtype.to_polars() if isinstance(dtype, t.DType) else dtype
    values = [None if v is ERROR else v for v in series.to_list()]
    if polars_type == pl.Object:
        return pl.Series(series.name, values, dtype=pl.Object)
    return pl.Series(series.name, values, dtype=polars_type)


def restore_column_types(frame: pl.DataFrame, columns: Mapping[str, t.DType]) -> pl.DataFrame:
    """``frame`` with its object columns that hold no error (any more: a filter such as
    ``remove_errors`` dropped their rows) stored as their declared types again, so that the
    operators downstream compute on them as on columns that never held an error."""
    if not errors_seen():
        return frame
    restored = [
        without_errors(frame[name], columns[name])
        for name, dtype in frame.schema.items()
        if dtype == pl.Object
        and name in columns
        and columns[name].to_polars() != pl.Object
        and error_mask(frame[name]) is None
    ]
    return frame.with_columns(restored) if restored else frame


def with_errors(series: pl.Series, mask: pl.Series) -> pl.Series:
    """``series`` as an object column with :data:`ERROR` where ``mask`` is true."""
    values = series.to_list()
    for position in mask.arg_true().to_list():
        values[position] = ERROR
    return pl.Series(series.name, values, dtype=pl.Object)


def clean_frame(
    frame: pl.DataFrame, types: dict[str, pl.DataType]
) -> tuple[pl.DataFrame, dict[str, pl.Series]]:
    """``frame`` with error cells nulled (columns in ``types`` restored to their dtype) and
    the error masks of those columns."""
    masks = error_columns(frame)
    if not masks:
        return frame, masks
    restored = [without_errors(frame[name], types.get(name, frame.schema[name])) for name in masks]
    return frame.with_columns(restored), masks


def row_has_error_mask(frame: pl.DataFrame, names: Sequence[str] | None = None) -> pl.Series | None:
    """Which rows of ``frame`` hold an error in one of ``names`` (None: no row does)."""
    masks = list(error_columns(frame, names).values())
    if not masks:
        return None
    combined = masks[0]
    for mask in masks[1:]:
        combined = combined | mask
    return combined


def drop_error_rows(frame: pl.DataFrame, names: Sequence[str] | None, message: str) -> pl.DataFrame:
    """``frame`` without the rows holding an error in ``names`` (None: any column), each one
    reported with ``message``. Free while the run has no errors."""
    if not errors_seen():
        return frame
    mask = row_has_error_mask(frame, names)
    if mask is None:
        return frame
    report(message, count=int(mask.sum()))
    return frame.filter(~mask)


def squash_repeated_ids(
    state: pl.DataFrame, names: Sequence[str], terminate_on_error: bool | None
) -> pl.DataFrame:
    """A final table (rows with ``_id``) where an id holds several rows — a broken promise
    upstream, e.g. ``concat`` of overlapping tables or ``with_id_from`` of a repeated key.
    A table has one row per id, so this raises a ``KeyError``, or with
    ``terminate_on_error=False`` warns and keeps one row of Errors for the id (as Pathway's
    debug helpers do)."""
    if state.height < 2 or state["_id"].n_unique() == state.height:
        return state
    repeated = state["_id"].is_duplicated()
    keys = [
        t.Pointer(v) for v in state["_id"].filter(repeated).unique(maintain_order=True).to_list()
    ]
    if resolve_terminate(terminate_on_error):
        raise KeyError(f"several rows of the table have the id {keys[0]}")
    import warnings

    for key in keys:
        warnings.warn(
            f"several rows of the table have the id {key}; shown as one row of Errors",
            UserWarning,
            stacklevel=4,
        )
    first = ~state["_id"].is_duplicated() | state["_id"].is_first_distinct()
    kept = state.filter(first)
    mask = kept["_id"].is_in(state["_id"].filter(repeated).implode())
    mark_seen()
    return kept.with_columns([with_errors(kept[name], mask) for name in names])


def unify_object_columns(frames: Sequence[pl.DataFrame]) -> list[pl.DataFrame]:
    """Frames to concatenate, with a column stored as objects in one stored as objects in all
    (a column holding errors in one part)."""
    if len(frames) < 2:
        return list(frames)
    object_columns = {
        name for frame in frames for name, dtype in frame.schema.items() if dtype == pl.Object
    }
    out = []
    for frame in frames:
        casts = [
            pl.Series(name, frame[name].to_list(), dtype=pl.Object)
            for name in object_columns
            if name in frame.columns and frame.schema[name] != pl.Object
        ]
        out.append(frame.with_columns(casts) if casts else frame)
    return out


class CarriedErrors:
    """The error cells of one join side's value columns, kept by row id beside the typed
    arrangements (which never hold error cells): stripped from each prepared delta, put back
    into the join's output rows that come from those input rows.

    A retraction (diff < 0) gets the cells of the row version it removes, an insertion those of
    the version it adds, so an output row and its later retraction are equal."""

    def __init__(self, id_column: str) -> None:
        self.id_column = id_column
        self.current: dict[int, frozenset[str]] = {}
        self._changes: dict[int, tuple[frozenset[str], frozenset[str]]] = {}

    @property
    def active(self) -> bool:
        return bool(self.current or self._changes)

    def begin_step(self) -> None:
        self._changes = {}

    def strip(
        self,
        frame: pl.DataFrame,
        names: Sequence[str],
        id_column: str = "_id",
        diff_column: str = "_diff",
    ) -> pl.DataFrame:
        """Record the error cells of ``names`` in ``frame`` (a prepared delta) and null
        them (the caller restores the dtypes)."""
        masks = error_columns(frame, names)
        if not masks and not self.current:
            return frame
        flags = {name: mask.to_list() for name, mask in masks.items()}
        empty: frozenset[str] = frozenset()
        for row, (row_id, diff) in enumerate(
            zip(frame[id_column].to_list(), frame[diff_column].to_list(), strict=True)
        ):
            cells = frozenset(n for n, f in flags.items() if f[row]) if flags else empty
            if not cells and row_id not in self.current and row_id not in self._changes:
                continue
            old, new = self._changes.get(row_id) or (self.current.get(row_id, empty),) * 2
            if diff < 0:
                old = cells
            else:
                new = cells
            self._changes[row_id] = (old, new)
            if new:
                self.current[row_id] = new
            else:
                self.current.pop(row_id, None)
        if not masks:
            return frame
        return frame.with_columns(
            [
                pl.Series(
                    name,
                    [None if v is ERROR else v for v in frame[name].to_list()],
                    dtype=pl.Object,
                )
                for name in masks
            ]
        )

    def restore(self, out: pl.DataFrame, diff_column: str = "_diff") -> pl.DataFrame:
        """``out`` (the join's output) with the carried error cells put back."""
        if not self.active or self.id_column not in out.columns or out.height == 0:
            return out
        cells: dict[str, list[int]] = {}
        for row, (row_id, diff) in enumerate(
            zip(out[self.id_column].to_list(), out[diff_column].to_list(), strict=True)
        ):
            change = self._changes.get(row_id)
            status = (
                (change[0] if diff < 0 else change[1])
                if change is not None
                else self.current.get(row_id)
            )
            for name in status or ():
                cells.setdefault(name, []).append(row)
        if not cells:
            return out
        replaced = []
        for name, rows in cells.items():
            mask = pl.Series(name, [False] * out.height, dtype=pl.Boolean)
            mask = mask.scatter(rows, True)
            replaced.append(with_errors(out[name], mask))
        mark_seen()
        return out.with_columns(replaced)


def without_unhandled_errors(
    op: Any, deltas: list[pl.DataFrame | None]
) -> list[pl.DataFrame | None]:
    """The deltas an operator that does not handle error cells may see (only called once the
    run has produced an error): rows holding one are left out, each reported, and the columns
    get their dtypes back — never an error turned into a plausible value, nor a crash.
    ``op`` is an engine operator (its ``node``'s inputs, ``describe()``, ``handles_errors``)."""
    if getattr(op, "handles_errors", False) or len(deltas) != len(op.node.inputs):
        return deltas
    out: list[pl.DataFrame | None] = []
    for delta, source in zip(deltas, op.node.inputs, strict=True):
        if isinstance(delta, pl.DataFrame) and not error_columns(delta):
            delta = restore_column_types(delta, source.columns)  # errors filtered out upstream
        elif isinstance(delta, pl.DataFrame):
            columns = source.columns
            delta = drop_error_rows(
                delta, None, f"row skipped: {op.describe()} cannot take its Error value"
            )
            delta = delta.with_columns(
                [
                    without_errors(delta[name], columns[name])
                    for name, dtype in delta.schema.items()
                    if dtype == pl.Object
                    and name in columns
                    and columns[name].to_polars() != pl.Object
                ]
            )
            if delta.height == 0:
                delta = None
        out.append(delta)
    return out
