"""Polars calls on the small frames of streaming deltas.

Polars' ``select`` and ``with_columns`` hand their expressions to its thread pool: a fixed
cost of tens of microseconds per call, and on a busy machine a wait until the pool's threads
are scheduled. On the few rows of a streaming delta that cost is most of the call, and the
engine makes several such calls per minibatch. ``select_seq``/``with_columns_seq`` evaluate
the expressions one after the other on the calling thread: about half the time for a
100-row frame, and no hand-over. Big frames keep the parallel calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

#: Frames up to this many rows evaluate their expressions on the calling thread.
SEQUENTIAL_ROWS = 4096


def project(frame: pl.DataFrame, exprs: Sequence[Any]) -> pl.DataFrame:
    """``frame.select(exprs)``; for a small frame, evaluated on the calling thread."""
    if frame.height <= SEQUENTIAL_ROWS:
        return frame.select_seq(exprs)
    return frame.select(exprs)


def extend(frame: pl.DataFrame, exprs: Sequence[Any]) -> pl.DataFrame:
    """``frame.with_columns(exprs)``; for a small frame, evaluated on the calling thread."""
    if frame.height <= SEQUENTIAL_ROWS:
        return frame.with_columns_seq(exprs)
    return frame.with_columns(exprs)


# --- Building small Series and frames ----------------------------------------------------------
#
# ``pl.Series(name, values)`` and ``pl.DataFrame(columns)`` spend most of their time on a small
# delta in Python: inferring and checking types, normalising arguments. A streaming minibatch
# builds a dozen of them per operator, about 8 us each for a 200-row column, where the Rust
# constructor underneath takes under 1 us. The functions below call those constructors
# directly for the cases the engine's small-delta paths produce (contiguous NumPy arrays of
# the plain numeric types; lists of ints, floats, strings or booleans with a known type) and
# fall back to the public constructors for everything else. The constructors are internal to
# Polars: :func:`_probe` checks at import that they exist and give what the public API gives,
# and otherwise every call takes the public path.


def _compiled_classes() -> tuple[Any, Any]:
    """Polars' compiled Series and DataFrame classes (None, None when not found there)."""
    try:  # Polars' compiled module: its name and content are not part of the public API
        from polars import _plr
    except ImportError:  # pragma: no cover - another Polars layout: the public constructors
        return None, None
    return getattr(_plr, "PySeries", None), getattr(_plr, "PyDataFrame", None)


_PySeries, _PyDataFrame = _compiled_classes()

_wrap_series = pl.Series._from_pyseries
_wrap_frame = pl.DataFrame._from_pydf

#: NumPy dtype -> the constructor taking a contiguous array of it.
_ARRAY_MAKERS: dict[Any, Any] = {}
#: Polars dtype -> the constructor taking a list of such values (None allowed).
_LIST_MAKERS: dict[Any, Any] = {}


def _probe() -> bool:
    """Whether Polars' own constructors are there and agree with the public ones."""
    if _PySeries is None or _PyDataFrame is None:
        return False
    import numpy as np

    try:
        arrays: dict[Any, Any] = {
            np.dtype(np.int64): _PySeries.new_i64,
            np.dtype(np.uint64): _PySeries.new_u64,
            np.dtype(np.int32): _PySeries.new_i32,
            np.dtype(np.uint32): _PySeries.new_u32,
            np.dtype(np.float64): _PySeries.new_f64,
            np.dtype(np.bool_): _PySeries.new_bool,
        }
        lists: dict[Any, tuple[Any, list[Any]]] = {
            pl.Int64: (_PySeries.new_opt_i64, [1, None, -(2**63)]),
            pl.UInt64: (_PySeries.new_opt_u64, [2**64 - 1, None, 0]),
            pl.UInt128: (_PySeries.new_opt_u128, [2**127 + 5, None, 0]),
            pl.Float64: (_PySeries.new_opt_f64, [1.5, None, float("nan")]),
            pl.Boolean: (_PySeries.new_opt_bool, [True, None, False]),
            pl.String: (_PySeries.new_str, ["a", None, "é"]),
        }
        for numpy_type, make in arrays.items():
            array: Any = np.array([1, 0, 1], dtype=numpy_type)
            if not _wrap_series(make("x", array, False)).equals(pl.Series("x", array)):
                return False
        for polars_type, (make, sample) in lists.items():
            built = _wrap_series(make("x", sample, True))
            if built.dtype != polars_type or not built.equals(
                pl.Series("x", sample, dtype=polars_type), check_names=True
            ):
                return False
        frame = _wrap_frame(_PyDataFrame([pl.Series("a", [1])._s, pl.Series("b", ["x"])._s]))
        if not frame.equals(pl.DataFrame({"a": [1], "b": ["x"]})):
            return False
    except Exception:  # noqa: BLE001 - any difference at all: use the public constructors
        return False
    _ARRAY_MAKERS.update(arrays)
    _LIST_MAKERS.update({dtype: make for dtype, (make, _) in lists.items()})
    return True


FAST_CONSTRUCTORS = _probe()


def series_of_array(name: str, array: Any) -> pl.Series:
    """``pl.Series(name, array)`` for a NumPy array (shared with it, as Polars does)."""
    make = _ARRAY_MAKERS.get(array.dtype)
    if make is not None and array.ndim == 1 and array.flags.c_contiguous:
        return _wrap_series(make(name, array, False))
    return pl.Series(name, array)


def series_of_values(name: str, values: list[Any], dtype: Any) -> pl.Series:
    """``pl.Series(name, values, dtype=dtype)`` for a list of Python values of that type."""
    # By the instance's class first: hashing a Polars dtype instance runs its Python
    # ``__hash__`` and ``__eq__``, a noticeable part of a one-row column's cost.
    make = _LIST_MAKERS.get(type(dtype)) or _LIST_MAKERS.get(dtype)
    if make is not None:
        try:
            return _wrap_series(make(name, values, True))
        except (TypeError, ValueError, OverflowError):
            pass  # e.g. an int in a float column: the public constructor converts it
    return pl.Series(name, values, dtype=dtype)


def frame_of(columns: Sequence[pl.Series]) -> pl.DataFrame:
    """``pl.DataFrame(columns)``: a frame of Series with distinct names and one length."""
    if FAST_CONSTRUCTORS:
        return _wrap_frame(_PyDataFrame([column._s for column in columns]))
    return pl.DataFrame(columns)
