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
#: The type of ``_diff`` columns, as an instance: hashing a dtype class runs Python code,
#: and the small-frame makers look their constructors up by it.
INT64 = pl.Int64()
#: Polars' integer and float types of up to 64 bits (NumPy holds their values as they are).
NUMBER_TYPES = (
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
    pl.Float32,
    pl.Float64,
)


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


# --- Deltas of a few rows as Python lists ------------------------------------------------------
#
# A single-row update crosses the live path as a one-row frame made and read back several
# times: the input session builds its Series, the reduce reads them back as Python values,
# builds its output's Series, and the callbacks read those back again. Each Polars call costs
# a few microseconds on the cold caches a live update meets, and they add up to a large part of
# its latency. A ListFrame holds such a delta as the Python values themselves; the live path's
# producers make one, its consumers read the values with :func:`column_values`, and only a
# consumer that needs a real frame (any other operator or sink) makes one, transparently.


class ListFrame(pl.DataFrame):
    """A delta of a few rows held as one Python list per column, with the columns' Polars
    types; an ordinary Polars frame to everything else, made from the lists the first time
    anything reads it as a frame (through its ``_df``, which every Polars method uses).

    Every list holds exactly what ``Series.to_list()`` gives for its type (ints for integer
    columns, floats for float columns, and so on): the producers guarantee it. Frames Polars
    derives from one (a filter, a projection ...) are ListFrames without lists, that is, plain
    frames."""

    #: Per column, its values (None: a frame Polars made, holding no lists).
    lists: dict[str, list[Any]] | None = None
    #: Per column, its Polars type (read with the lists).
    types: dict[str, pl.DataType]
    _rows: int
    _made: Any = None  # the Polars frame, once made

    def __init__(self, columns: Sequence[tuple[str, pl.DataType, list[Any]]]) -> None:
        # (pl.DataFrame.__init__ is not called: the frame is made on demand, see _df.)
        self.lists = {name: values for name, _, values in columns}
        self.types = {name: dtype for name, dtype, _ in columns}
        self._rows = len(columns[0][2]) if columns else 0

    @property
    def _df(self) -> Any:
        made = self._made
        if made is None:
            assert self.lists is not None
            types = self.types
            made = self._made = frame_of(
                [series_of_values(name, values, types[name]) for name, values in self.lists.items()]
            )._df
        return made

    @_df.setter
    def _df(self, value: Any) -> None:
        self._made = value
        self.lists = None  # replaced: the lists no longer describe it

    @property
    def height(self) -> int:
        return self._rows if self.lists is not None else int(self._df.height())

    @property
    def width(self) -> int:
        return len(self.lists) if self.lists is not None else int(self._df.width())

    @property
    def columns(self) -> list[str]:
        return list(self.lists) if self.lists is not None else list(self._df.columns())

    @columns.setter
    def columns(self, names: Sequence[str]) -> None:
        self._df.set_column_names(names)
        self.lists = None  # renamed in place

    @property
    def dtypes(self) -> list[pl.DataType]:
        if self.lists is not None:
            return list(self.types.values())
        return list(self._df.dtypes())

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.lists = None  # changed in place


def list_frame_of(frame: pl.DataFrame) -> ListFrame | None:
    """``frame`` when it is a :class:`ListFrame` holding its lists, else None."""
    if type(frame) is ListFrame and frame.lists is not None:
        return frame
    return None


def column_values(frame: pl.DataFrame, name: str) -> list[Any]:
    """The values of column ``name`` of ``frame``, as ``Series.to_list()`` gives them (from a
    :class:`ListFrame`'s lists when it has them, without a Polars call: then the list itself,
    which frames made from it may share, so never to be changed)."""
    listed = list_frame_of(frame)
    if listed is not None and listed.lists is not None:
        return listed.lists[name]
    return frame.get_column(name).to_list()
