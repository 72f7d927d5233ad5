"""Delta batches: Polars frames of changes with ``_id``, the columns and ``_diff``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from deltaflow import _types as t
from deltaflow._ids import ID_DTYPE

ID = "_id"
DIFF = "_diff"


def empty_batch(columns: Mapping[str, t.DType]) -> pl.DataFrame:
    """A batch with no rows and the right column types."""
    schema: dict[str, pl.DataType] = {ID: ID_DTYPE}
    schema.update({name: dtype.to_polars() for name, dtype in columns.items()})
    schema[DIFF] = pl.Int64()
    return pl.DataFrame(schema=schema)


def concat_batches(batches: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Stack batches of the same columns (not consolidated)."""
    batches = [b for b in batches if b.height]
    if len(batches) == 1:
        return batches[0]
    return pl.concat(batches, how="vertical_relaxed") if batches else batches  # type: ignore[return-value]


def consolidate(batch: pl.DataFrame) -> pl.DataFrame:
    """Sum the diffs of identical (id, row) pairs and drop the ones that cancel out.

    The common case, every id appearing once, costs one uniqueness check.
    """
    if batch.height == 0:
        return batch
    if batch.height == 1 or batch[ID].n_unique() == batch.height:
        if (batch[DIFF] == 0).any():
            return batch.filter(pl.col(DIFF) != 0)
        return batch
    names = [c for c in batch.columns if c != DIFF]
    object_columns = [c for c in names if batch.schema[c] == pl.Object]
    work = batch
    keys = list(names)
    if object_columns:
        # Python objects cannot be grouped by Polars: group by a canonical text of them.
        for column in object_columns:
            work = work.with_columns(
                pl.Series(f"__key_{column}",
                          [repr(t.canonical_key(v)) for v in work[column].to_list()],
                          dtype=pl.String)
            )
        keys = [c for c in names if c not in object_columns] + [f"__key_{c}" for c in
                                                                  object_columns]
        summed = (work.with_row_index("__row")
                  .group_by(keys, maintain_order=True)
                  .agg(pl.col("__row").first(), pl.col(DIFF).sum()))
        summed = summed.filter(pl.col(DIFF) != 0)
        rows = batch.drop(DIFF)[summed["__row"].to_list()] if summed.height else batch.drop(
            DIFF).head(0)
        return rows.with_columns(summed[DIFF].alias(DIFF)).select(batch.columns)
    summed = work.group_by(keys, maintain_order=True).agg(pl.col(DIFF).sum())
    return summed.filter(pl.col(DIFF) != 0).select(batch.columns)


def with_diff(frame: pl.DataFrame, diff: int) -> pl.DataFrame:
    return frame.with_columns(pl.lit(diff, dtype=pl.Int64).alias(DIFF))


def negate(batch: pl.DataFrame) -> pl.DataFrame:
    return batch.with_columns((-pl.col(DIFF)).alias(DIFF))
