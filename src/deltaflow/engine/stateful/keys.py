"""Keys of arranged rows: the 64-bit key hash ``_kh`` that arrangements index rows by, how it
is computed (over whole frames by an expression; over a small delta's Series without a query),
the surrogates standing in for Python-object keys, and the id of the empty key.

The key hash only has to agree within one process. Operators that need exact key equality
join on the key columns as well (see :func:`add_key_columns`). A key of integer columns
(row ids included) is hashed by multiplications (see :data:`_MULTIPLIER`), which plain
Python computes for a small delta as cheaply as Polars does for a frame; other keys take
Polars' hash.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._small_frames import frame_of, series_of_array, series_of_values
from deltaflow.engine.batch import ID

KH = "_kh"
TIME = "__time"
_SEED = 0x5EED

#: A key whose columns are all integers underneath (Int64, Datetime, Duration, and the
#: UInt128 of row ids, whose two halves are xor-ed into 64 bits) is hashed by multiplications
#: modulo 2^64 with this odd constant (2^64 over the golden ratio):
#: ``h = 0; for each column: h = (h ^ bits) * _MULTIPLIER``. A key of one 64-bit column
#: hashes to its bits times the constant, so distinct keys never share a hash; the high
#: bits, the ones that split rows between workers (``placement._SHARE_DIVISOR``), are well
#: mixed. The point is the small delta: Python computes a few keys' hashes in well under a
#: microsecond each, where Polars' hash of even one row hands the work to its thread pool
#: and waits for it (~50-100 us of a one-row update's latency).
_MULTIPLIER = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
#: The bits a null stands for: those of -2^63, the one value it may share a hash with.
_NULL_BITS = 1 << 63
#: Up to this many keys are hashed in Python (~0.1-0.2 us each for one column); more by
#: NumPy (a few us, then about a nanosecond a key) when it can hold the columns (no nulls,
#: no UInt128), else up to :data:`_PYTHON_INT_KEYS` in Python and more by a Polars query.
_FEW_INT_KEYS = 16
_PYTHON_INT_KEYS = 512
_NP_MULTIPLIER = np.uint64(_MULTIPLIER)


@functools.cache
def constant_id() -> int:
    """The id of the empty key (the one group of a reduce without groupby columns)."""
    from deltaflow._ids import hash_columns

    return hash_columns(pl.DataFrame({"_": [0]}), [])[0]


def constant_ids(count: int) -> pl.Series:
    """``count`` copies of :func:`constant_id`."""
    return pl.Series(ID, [constant_id()] * count, dtype=pl.UInt128)


def key_hash_expr(match: Sequence[str | pl.Expr], dtypes: Sequence[Any]) -> pl.Expr:
    """The ``_kh`` of rows keyed by the ``match`` columns, whose Polars types are ``dtypes``
    (0 for the empty key); expressions named like the columns give the same hash."""
    if not match:
        return pl.lit(0, dtype=pl.UInt64)
    columns = [pl.col(m) if isinstance(m, str) else m for m in match]
    if _integer_key(dtypes):
        return _fold(columns, dtypes)
    if len(columns) == 1:
        # A column's own hash: several times cheaper than hashing a one-field struct.
        return columns[0].hash(_SEED).cast(pl.UInt64)
    return pl.struct(match).hash(_SEED).cast(pl.UInt64)


def _integer_key(dtypes: Sequence[Any]) -> bool:
    """Whether a key of columns of these types is hashed by :data:`_MULTIPLIER`."""
    return (
        bool(dtypes)
        and all(dtype.base_type() in _INTEGER_TYPES for dtype in dtypes)
        and _multiplication_agrees()
    )


_INTEGER_TYPES = (pl.Int64, pl.Datetime, pl.Duration, pl.UInt128)


def _fold(columns: Sequence[pl.Expr], dtypes: Sequence[Any]) -> pl.Expr:
    multiplier = pl.lit(_MULTIPLIER, dtype=pl.UInt64)
    null = pl.lit(_NULL_BITS, dtype=pl.UInt64)
    folded: pl.Expr | None = None
    for column, dtype in zip(columns, dtypes, strict=True):
        if dtype.base_type() == pl.UInt128:
            low = (column & pl.lit(_MASK, dtype=pl.UInt128)).cast(pl.UInt64)
            bits = low ^ (column // pl.lit(1 << 64, dtype=pl.UInt128)).cast(pl.UInt64)
        else:
            bits = column.to_physical().reinterpret(signed=False)
        bits = bits.fill_null(null)
        folded = (bits if folded is None else folded ^ bits) * multiplier
    assert folded is not None
    return folded


def _fold_in_python(columns: Sequence[list[int | None]]) -> list[int]:
    """:func:`_fold` of the columns' physical values (ints or None; a UInt128's halves
    already xor-ed, see :func:`_bits`)."""
    multiplier, mask, null = _MULTIPLIER, _MASK, _NULL_BITS
    if len(columns) == 1:
        return [((null if v is None else v) * multiplier) & mask for v in columns[0]]
    hashes = []
    for row in zip(*columns, strict=True):
        folded = 0
        for v in row:
            folded = ((folded ^ (null if v is None else v & mask)) * multiplier) & mask
        hashes.append(folded)
    return hashes


def _bits(column: pl.Series) -> list[int | None]:
    """The values :func:`_fold_in_python` folds: physical integers, a UInt128's two halves
    xor-ed into 64 bits."""
    if column.dtype == pl.Int64:
        return column.to_list()
    if column.dtype == pl.UInt128:
        return [None if v is None else (v & _MASK) ^ (v >> 64) for v in column.to_list()]
    return _temporal_bits(column).tolist()


def _temporal_bits(column: pl.Series) -> np.ndarray:
    """A Datetime or Duration column's physical values, as NumPy holds them: a null (NaT)
    is -2^63 there, whose bits are those a null stands for (:data:`_NULL_BITS`).
    (``Series.to_physical`` would cost ~25 us: it goes through Polars' compute.)"""
    return column.to_numpy().view(np.uint64)


def _fold_in_numpy(columns: Sequence[pl.Series]) -> np.ndarray | None:
    """:func:`_fold` by NumPy (whose unsigned products wrap too); None when a column has
    nulls or is a UInt128, which NumPy cannot hold as 64-bit integers."""
    folded: np.ndarray | None = None
    for column in columns:
        if column.dtype == pl.UInt128:
            return None
        if column.dtype == pl.Int64:
            if column.null_count():
                return None
            bits = column.to_numpy().view(np.uint64)
        else:
            bits = _temporal_bits(column)
        folded = (bits if folded is None else folded ^ bits) * _NP_MULTIPLIER
    return folded


@functools.cache
def _multiplication_agrees() -> bool:
    """Whether Polars' products wrap modulo 2^64 as Python's masked ones do (checked once, at
    the first use; were they ever to differ, such keys would take Polars' hash everywhere)."""
    values = [0, 1, -1, 2, 2**63 - 1, -(2**63), None, 12_345_678_901]
    ids = [0, 1, 2**64, 2**128 - 1, 2**127 + 5, None, 2**64 - 1, 3 << 70]
    frame = pl.DataFrame(
        {"i": values, "t": values, "d": values[::-1], "p": ids},
        schema={"i": pl.Int64, "t": pl.Datetime("us"), "d": pl.Duration("ns"), "p": pl.UInt128},
    )
    cases = (["i"], ["t"], ["p"], ["i", "d"], ["t", "i", "d"], ["p", "i"])
    folds = [
        _fold([pl.col(n) for n in names], [frame.schema[n] for n in names]).alias(str(case))
        for case, names in enumerate(cases)
    ]
    try:  # one query for every case: this runs in the first small step of a run
        by_polars = frame.select(folds)
        whole = frame.drop_nulls()  # NumPy folds columns without nulls
        whole_by_polars = whole.select(folds)
    except pl.exceptions.PolarsError:
        return False
    for case, names in enumerate(cases):
        by_python = _fold_in_python([_bits(frame.get_column(n)) for n in names])
        if by_polars.get_column(str(case)).to_list() != by_python:
            return False
        by_numpy = _fold_in_numpy([whole.get_column(n) for n in names])
        expected = whole_by_polars.get_column(str(case)).to_list()
        if by_numpy is not None and by_numpy.tolist() != expected:
            return False
    return True


def key_hash_series(columns: Sequence[pl.Series]) -> pl.Series | None:
    """:func:`key_hash_expr` of the given key columns, for a small delta: without a query
    (an integer key is hashed in Python; ``DataFrame.hash_rows`` of any other column hashes
    it as the expression does, several times cheaper than the query behind ``Series.hash``;
    a multi-column key is hashed as one struct column). None for keys Polars cannot hash
    (Python objects: they hash through surrogates) or an empty key."""
    if not columns or any(column.dtype == pl.Object for column in columns):
        return None
    if _integer_key([column.dtype for column in columns]):
        rows = columns[0].len()
        if rows > _FEW_INT_KEYS:
            array = _fold_in_numpy(columns)
            if array is not None:
                return series_of_array(KH, array)
        if rows > _PYTHON_INT_KEYS:  # (renamed: two keys may share a column)
            named = [c.alias(f"k{i}") for i, c in enumerate(columns)]
            folded = _fold([pl.col(c.name) for c in named], [c.dtype for c in named])
            return frame_of(named).select(folded.alias(KH)).to_series()
        return series_of_values(KH, _fold_in_python([_bits(c) for c in columns]), pl.UInt64)
    key = columns[0] if len(columns) == 1 else frame_of(list(columns)).to_struct(KH)
    if _hash_rows_agrees():
        return key.to_frame().hash_rows(_SEED).alias(KH)
    return key.hash(_SEED).alias(KH)


def key_hashes_of_values(columns: Sequence[list[Any]], dtypes: Sequence[Any]) -> list[int] | None:
    """:func:`key_hash_series` of Int64 key columns given as Python values (a few keys of a
    live update: no Series to make and read back); None for keys of other types."""
    if not all(dtype == pl.Int64 for dtype in dtypes) or not _integer_key(dtypes):
        return None
    return _fold_in_python(columns)


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
        == s.to_frame().select(pl.col("k").hash(_SEED).cast(pl.UInt64)).to_series().to_list()
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
    if frame.height:
        hashed = key_hash_expr(match, [frame.schema[m] for m in match])
    else:
        hashed = pl.lit(0, dtype=pl.UInt64)
    frame = frame.with_columns(hashed.alias(KH))
    return frame, [KH, *match]
