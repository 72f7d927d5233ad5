"""Keys of arranged rows: the 64-bit key hash ``_kh`` that arrangements index rows by, how it
is computed (over whole frames by an expression; over a small delta's Series without a query),
the surrogates standing in for Python-object keys, and the id of the empty key.

The key hash is Polars' hash: it only has to agree within one process. Operators that need
exact key equality join on the key columns as well (see :func:`add_key_columns`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import polars as pl

from deltaflow import _types as t
from deltaflow._small_frames import frame_of
from deltaflow.engine.batch import ID

KH = "_kh"
TIME = "__time"
_SEED = 0x5EED


@functools.cache
def constant_id() -> int:
    """The id of the empty key (the one group of a reduce without groupby columns)."""
    from deltaflow._ids import hash_columns

    return hash_columns(pl.DataFrame({"_": [0]}), [])[0]


def constant_ids(count: int) -> pl.Series:
    """``count`` copies of :func:`constant_id`."""
    return pl.Series(ID, [constant_id()] * count, dtype=pl.UInt128)


def key_hash_expr(match: Sequence[str | pl.Expr]) -> pl.Expr:
    """The ``_kh`` of rows keyed by the ``match`` columns (0 for the empty key); expressions
    named like the columns give the same hash."""
    if not match:
        return pl.lit(0, dtype=pl.UInt64)
    if len(match) == 1:
        # A column's own hash: several times cheaper than hashing a one-field struct.
        (only,) = match
        return (pl.col(only) if isinstance(only, str) else only).hash(_SEED).cast(pl.UInt64)
    return pl.struct(match).hash(_SEED).cast(pl.UInt64)


def key_hash_series(columns: Sequence[pl.Series]) -> pl.Series | None:
    """:func:`key_hash_expr` of the given key columns, for a small delta: without a query
    (``DataFrame.hash_rows`` of one column hashes it as the expression does, several times
    cheaper than the query behind ``Series.hash``; a multi-column key is hashed as one
    struct column). None for keys Polars cannot hash (Python objects: they hash through
    surrogates) or an empty key."""
    if not columns or any(column.dtype == pl.Object for column in columns):
        return None
    key = columns[0] if len(columns) == 1 else frame_of(list(columns)).to_struct(KH)
    if _hash_rows_agrees():
        return key.to_frame().hash_rows(_SEED).alias(KH)
    return key.hash(_SEED).alias(KH)


@functools.cache
def _hash_rows_agrees() -> bool:
    """Whether ``hash_rows`` of a one-column frame equals the column's hash expression, as
    :func:`key_hash_series` assumes (checked once, at the first use: a Polars version could
    tell them apart)."""
    samples = [
        pl.Series("k", [1, None, -(2**63)], dtype=pl.Int64),
        pl.Series("k", ["a", None, "é"]),
        pl.Series("k", [1.5, None, float("nan")]),
        pl.Series("k", [True, None, False]),
        pl.Series("k", [2**100, None, 1], dtype=pl.UInt128),  # ids (Pointer keys)
        pl.Series("k", [0, None, -1], dtype=pl.Datetime("ns")),
        pl.DataFrame({"a": [1, None, 3], "b": ["x", "y", None]}).to_struct("k"),
    ]
    return all(
        s.to_frame().hash_rows(_SEED).to_list()
        == s.to_frame().select(key_hash_expr(["k"])).to_series().to_list()
        for s in samples
    )


def surrogate_name(column: str) -> str:
    return f"__ks_{column}"


def add_key_columns(frame: pl.DataFrame, keys: Sequence[str]) -> tuple[pl.DataFrame, list[str]]:
    """Add ``_kh`` (hash of the ``keys`` columns) and return the columns that identify a key.

    Python-object columns cannot be hashed or joined by Polars, so they get a text surrogate
    (the canonical repr of each value) which stands in for them in hashing and joins.
    """
    match: list[str] = []
    extra: list[pl.Series] = []
    for key in keys:
        if frame.schema[key] == pl.Object:
            name = surrogate_name(key)
            extra.append(
                pl.Series(
                    name, [repr(t.canonical_key(v)) for v in frame[key].to_list()], dtype=pl.String
                )
            )
            match.append(name)
        else:
            match.append(key)
    if extra:
        frame = frame.with_columns(extra)
    hashed = key_hash_expr(match) if frame.height else pl.lit(0, dtype=pl.UInt64)
    frame = frame.with_columns(hashed.alias(KH))
    return frame, [KH, *match]
