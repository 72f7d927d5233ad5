"""Deterministic 128-bit row ids.

Ids must be equal in every run, process and library version (persistence and multi-worker
execution depend on it), so they are xxh3-128 digests (``polars-hash``, whose output is fixed
by the algorithm, unlike Polars' own ``hash``) over a canonical text encoding of the values:
each value becomes ``<tag><text>``, prefixed with its length when several are combined, so
different value tuples never encode alike.

One function, :func:`hash_columns`, serves primary keys, ``with_id_from``, ``pointer_from``,
group keys and markdown ids, so that ``t.pointer_from(x)`` is the id of the row keyed ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import polars_hash  # noqa: F401  (registers the ``nchash`` namespace)

from deltaflow._types import (
    BOOL,
    BYTES,
    DATE_TIME_NAIVE,
    DATE_TIME_UTC,
    DURATION,
    FLOAT,
    INT,
    POINTER,
    STR,
    DType,
    Pointer,
    canonical_key,
    series_from_values,
)

ID_DTYPE = pl.UInt128()


def _encode(expr: pl.Expr, dtype: DType) -> pl.Expr:
    """The canonical text of one column's values (None encodes as ``n``)."""
    base = dtype.strip_optional()
    if base == STR:
        text = pl.lit("s") + expr
    elif base == INT:
        text = pl.lit("i") + expr.cast(pl.Int64).cast(pl.String)
    elif base == FLOAT:
        text = pl.lit("f") + expr.cast(pl.Float64).cast(pl.String)
    elif base == BOOL:
        text = pl.when(expr).then(pl.lit("b1")).otherwise(pl.lit("b0"))
    elif base == BYTES:
        text = pl.lit("y") + expr.bin.encode("hex")
    elif base == POINTER:
        text = pl.lit("p") + expr.cast(pl.String)
    elif base in (DATE_TIME_NAIVE, DATE_TIME_UTC):
        text = pl.lit("t") + expr.dt.epoch("ns").cast(pl.String)
    elif base == DURATION:
        text = pl.lit("d") + expr.dt.total_nanoseconds().cast(pl.String)
    else:
        text = pl.lit("o") + expr.map_elements(_encode_object, return_dtype=pl.String)
    return pl.when(expr.is_null()).then(pl.lit("n")).otherwise(text)


def _encode_object(value: Any) -> str:
    return repr(canonical_key(value))


def id_expr(columns: Sequence[tuple[pl.Expr, DType]], *, salt: str = "") -> pl.Expr:
    """An expression computing ids from the given (expression, type) pairs."""
    parts: list[pl.Expr] = [pl.lit("k" + salt)]
    for expr, dtype in columns:
        text = _encode(expr, dtype)
        parts.append(text.str.len_bytes().cast(pl.String) + pl.lit(":") + text)
    joined = pl.concat_str(parts, separator="|")
    return joined.nchash.xxh3_128().cast(ID_DTYPE)


def hash_columns(frame: pl.DataFrame, columns: Sequence[tuple[str, DType]]) -> pl.Series:
    """Ids for the rows of ``frame`` keyed by the named columns."""
    expr = id_expr([(pl.col(name), dtype) for name, dtype in columns])
    if frame.height == 0:
        return pl.Series("_id", [], dtype=ID_DTYPE)
    return frame.select(expr.alias("_id")).to_series()


def pointer_from_values(*values: Any, dtypes: Sequence[DType] | None = None) -> Pointer:
    """The id of a row whose key is ``values`` (the scalar counterpart of :func:`hash_columns`)."""
    from deltaflow._types import infer_dtype

    if dtypes is None:
        dtypes = [infer_dtype([v]) for v in values]
    data = {f"k{i}": series_from_values(f"k{i}", [v], t) for i, (v, t) in enumerate(zip(values, dtypes, strict=True))}
    frame = pl.DataFrame(data) if data else pl.DataFrame({"_": [0]})
    ids = hash_columns(frame, [(f"k{i}", t) for i, t in enumerate(dtypes)])
    return Pointer(ids[0])


def sequence_ids(seed: str, start: int, count: int) -> pl.Series:
    """Ids for rows identified only by their position ``start .. start+count`` in a source."""
    positions = pl.int_range(start, start + count, dtype=pl.Int64, eager=True)
    frame = pl.DataFrame({"p": positions})
    expr = (pl.lit("q" + seed + ":") + pl.col("p").cast(pl.String)).nchash.xxh3_128()
    return frame.select(expr.cast(ID_DTYPE).alias("_id")).to_series()


def combine_ids_expr(*ids: pl.Expr, salt: str = "") -> pl.Expr:
    """Ids derived from tuples of other ids (join results, flattened rows, reindexed concat)."""
    parts = [pl.lit("c" + salt)] + [e.cast(pl.String) for e in ids]
    return pl.concat_str(parts, separator="|").nchash.xxh3_128().cast(ID_DTYPE)
