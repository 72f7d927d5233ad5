"""The type system: deltaflow types, their Python values and their Polars storage.

Every column of every table has a :class:`DType`. This module is the single place that knows
how a type is spelled by users (``int``, ``Optional[str]``, ``np.ndarray`` ...), which Polars
dtype stores it, and how values move between Python and Polars. Connectors and operators ask
this module; they never invent conversions of their own.
"""

from __future__ import annotations

import datetime
import sys
import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from deltaflow._pointer import Pointer

# Json and PyObjectWrapper (deltaflow._value_classes) are re-exported with the types.
from deltaflow._value_classes import Json, PyObjectWrapper
from deltaflow._value_classes import json_stored as json_stored
from deltaflow._value_classes import wrap_py_object as wrap_py_object

# The date-time annotations subclass pandas' Timestamp/Timedelta (values of date-time columns
# are pandas objects, as in Pathway). pandas takes about half a second to import, so their
# module (deltaflow._datetime_classes) is imported on first access (module ``__getattr__``
# below) and ``import deltaflow`` does not load pandas; type checkers see them here.
if TYPE_CHECKING:
    from deltaflow._datetime_classes import DateTimeNaive as DateTimeNaive
    from deltaflow._datetime_classes import DateTimeUtc as DateTimeUtc
    from deltaflow._datetime_classes import Duration as Duration

_PANDAS_ANNOTATIONS = ("DateTimeNaive", "DateTimeUtc", "Duration")


def _define_pandas_annotations() -> None:
    """Import pandas and the classes ``DateTimeNaive``, ``DateTimeUtc`` and ``Duration``
    (once), registering them and pandas' own classes as annotations :func:`wrap` knows."""
    if "Duration" in globals():
        return
    import pandas as pd

    from deltaflow._datetime_classes import DateTimeNaive, DateTimeUtc, Duration

    _SIMPLE_BY_PYTHON.update(
        {
            DateTimeNaive: DATE_TIME_NAIVE,
            DateTimeUtc: DATE_TIME_UTC,
            Duration: DURATION,
            pd.Timestamp: DATE_TIME_NAIVE,
            pd.Timedelta: DURATION,
        }
    )
    # Duration last: its presence is what marks the three as defined.
    globals().update(DateTimeNaive=DateTimeNaive, DateTimeUtc=DateTimeUtc, Duration=Duration)


def __getattr__(name: str) -> Any:
    if name in _PANDAS_ANNOTATIONS:
        _define_pandas_annotations()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# DType
# --------------------------------------------------------------------------------------------


class DType:
    """A deltaflow column type."""

    name: str = "?"

    def to_polars(self) -> pl.DataType:
        raise NotImplementedError

    @property
    def is_optional(self) -> bool:
        return False

    def strip_optional(self) -> DType:
        return self

    @property
    def typehint(self) -> Any:
        raise NotImplementedError

    @property
    def stored_as_object(self) -> bool:
        return self.to_polars() == pl.Object

    def __repr__(self) -> str:
        return describe(self)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, DType) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)


class _Simple(DType):
    def __init__(self, name: str, polars_type: Any, typehint: Any) -> None:
        self.name = name
        self._polars = polars_type
        self._typehint = typehint

    def to_polars(self) -> pl.DataType:
        return self._polars

    @property
    def typehint(self) -> Any:
        return self._typehint


# Typed as DType: users (and dicts keyed by these) see the public type, not the private class.
INT: DType = _Simple("int", pl.Int64(), int)
FLOAT: DType = _Simple("float", pl.Float64(), float)
BOOL: DType = _Simple("bool", pl.Boolean(), bool)
STR: DType = _Simple("str", pl.String(), str)
BYTES: DType = _Simple("bytes", pl.Binary(), bytes)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the range of INT (a signed 64-bit integer)


class _PandasBacked(_Simple):
    """A date-time type: its typehint (``pw.DateTimeNaive`` ...) is defined on first use."""

    @property
    def typehint(self) -> Any:
        _define_pandas_annotations()
        return globals()[self.name]


DATE_TIME_NAIVE: DType = _PandasBacked("DateTimeNaive", pl.Datetime("ns"), None)
DATE_TIME_UTC: DType = _PandasBacked("DateTimeUtc", pl.Datetime("ns", "UTC"), None)
DURATION: DType = _PandasBacked("Duration", pl.Duration("ns"), None)


class PointerType(DType):
    """The type of row ids and of columns holding them.

    ``args`` says whose ids they are: the types of the key the ids were computed from
    (``Pointer[int, str]`` for ids of a ``groupby(int_column, str_column)``), or None for a
    pointer to rows of any kind (:data:`POINTER`, Pathway's ``ANY_POINTER``).

    All pointer types are stored alike (``UInt128``), so they share one name and compare
    equal as DTypes (dict lookups, ``dtype == POINTER`` checks and composite types such as
    ``Optional[Pointer]`` treat them as one type); the key types are what ``typehint``,
    schema printing and the pointer compatibility checks (:func:`pointers_compatible`) use.
    """

    name = "Pointer"

    def __init__(self, args: Sequence[DType] | None = None) -> None:
        self.args = None if args is None else tuple(args)

    def to_polars(self) -> pl.DataType:
        return pl.UInt128()

    @property
    def typehint(self) -> Any:
        if self.args is None:
            return Pointer
        return types.GenericAlias(Pointer, tuple(a.typehint for a in self.args))

    def describe(self) -> str:
        """``Pointer`` or ``Pointer[int, str]`` (for error messages)."""
        if self.args is None:
            return "Pointer"
        return "Pointer[" + ", ".join(describe(a) for a in self.args) + "]"


POINTER = PointerType()
JSON: DType = _Simple("Json", pl.Object(), Json)
ANY: DType = _Simple("Any", pl.Object(), Any)
PY_OBJECT_WRAPPER: DType = _Simple("PyObjectWrapper", pl.Object(), PyObjectWrapper)


class Optional(DType):
    def __init__(self, wrapped: DType) -> None:
        self.wrapped = wrapped.strip_optional()
        self.name = f"Optional[{self.wrapped.name}]"

    def to_polars(self) -> pl.DataType:
        return self.wrapped.to_polars()

    @property
    def is_optional(self) -> bool:
        return True

    def strip_optional(self) -> DType:
        return self.wrapped

    @property
    def typehint(self) -> Any:
        inner = self.wrapped.typehint
        try:
            return inner | None  # ``int | None``, spelled as Pathway spells it
        except TypeError:  # a hint that has no ``|``
            return typing.Optional[inner]  # noqa: UP045


class _NoneType(DType):
    """The type of a column holding only None (Pathway's NONE): it widens to Optional[T]
    when combined with a column of type T."""

    name = "None"

    def to_polars(self) -> pl.DataType:
        return pl.Null()

    @property
    def is_optional(self) -> bool:
        return True

    @property
    def typehint(self) -> Any:
        return None


NONE = _NoneType()


class Tuple(DType):
    def __init__(self, *args: DType) -> None:
        self.args = tuple(args)
        self.name = "tuple[" + ", ".join(a.name for a in args) + "]"

    def to_polars(self) -> pl.DataType:
        return pl.Object()

    @property
    def typehint(self) -> Any:
        # Built at run time from the element types: ``tuple[int, str]`` for (INT, STR).
        return (
            types.GenericAlias(tuple, tuple(a.typehint for a in self.args)) if self.args else tuple
        )


class List(DType):
    def __init__(self, arg: DType) -> None:
        self.arg = arg
        self.name = f"list[{arg.name}]"

    def to_polars(self) -> pl.DataType:
        return pl.Object()

    @property
    def typehint(self) -> Any:
        return types.GenericAlias(list, (self.arg.typehint,))


class Array(DType):
    """A numpy array; ``n_dim`` and the element type ``wrapped`` are None when not known."""

    def __init__(self, n_dim: int | None = None, wrapped: DType | None = None) -> None:
        self.n_dim = n_dim
        self.wrapped = None if wrapped is None or wrapped == ANY else wrapped
        if self.wrapped is None and n_dim is None:
            self.name = "np.ndarray"
        else:
            self.name = f"np.ndarray[{n_dim}, {self.wrapped.name if self.wrapped else None}]"

    def element(self) -> DType:
        """The type of ``array[i]`` (and of a flattened array), as Pathway types it: the
        element type of a 1-d array, else an array of one dimension less, or of the same
        type when the number of dimensions is not known."""
        if self.n_dim == 1:
            return self.wrapped or ANY
        return Array(None if self.n_dim is None else self.n_dim - 1, self.wrapped)

    def to_polars(self) -> pl.DataType:
        return pl.Object()

    @property
    def typehint(self) -> Any:
        # Pathway's spelling: any shape, and the element type (``Any`` when not known).
        element = self.wrapped.typehint if self.wrapped is not None else Any
        array: Any = np.ndarray
        dtype: Any = np.dtype
        return array[tuple[int, ...], dtype[element]]


# Element types of ``np.ndarray[shape, np.dtype[X]]`` annotations, as Pathway reads them.
_ARRAY_ELEMENTS: dict[Any, DType] = {int: INT, np.int64: INT, np.int32: INT, float: FLOAT}
_ARRAY_ELEMENTS.update({np.float64: FLOAT, np.float32: FLOAT, bool: BOOL, str: STR})


def _array_type(args: tuple[Any, ...]) -> Array:
    """The DType of ``np.ndarray[shape, np.dtype[X]]``: dimensions from a ``tuple[int, ...]``
    shape of fixed length, the element type from ``X`` (unknown for ``Any``)."""
    n_dim: int | None = None
    wrapped: DType | None = None
    if len(args) == 2:
        shape, dtype = args
        if typing.get_origin(shape) is tuple and Ellipsis not in typing.get_args(shape):
            n_dim = len(typing.get_args(shape))
        element = typing.get_args(dtype)[0] if typing.get_args(dtype) else Any
        if element is not Any:
            wrapped = _ARRAY_ELEMENTS.get(element)
            if wrapped is None:
                raise TypeError(f"unsupported element type of a numpy array: {element!r}")
    return Array(n_dim, wrapped)


ARRAY = Array()

_SIMPLE_BY_PYTHON: dict[Any, DType] = {
    int: INT,
    float: FLOAT,
    bool: BOOL,
    str: STR,
    bytes: BYTES,
    Pointer: POINTER,
    Json: JSON,
    dict: JSON,
    Any: ANY,
    None: ANY,
    object: ANY,
    PyObjectWrapper: PY_OBJECT_WRAPPER,
    np.ndarray: ARRAY,
    datetime.datetime: DATE_TIME_NAIVE,
    datetime.timedelta: DURATION,
    # pw.DateTimeNaive, pw.DateTimeUtc, pw.Duration, pd.Timestamp and pd.Timedelta are added
    # by _define_pandas_annotations, when pandas is loaded.
}


def wrap(annotation: Any) -> DType:
    """Turn a user's type annotation into a :class:`DType` (``TypeError`` if unsupported)."""
    if isinstance(annotation, DType):
        return annotation
    if annotation is type(None):
        return NONE
    if "Duration" not in globals() and "pandas" in sys.modules:
        # pandas is loaded: its classes (and ours built on them) may be the annotation.
        _define_pandas_annotations()
    try:
        found = _SIMPLE_BY_PYTHON.get(annotation)
    except TypeError:  # unhashable annotation objects
        found = None
    if found is not None:
        return found
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1 and len(non_none) < len(args):
            return optional(wrap(non_none[0]))
        return ANY
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return List(wrap(args[0]))
        return Tuple(*(wrap(a) for a in args))
    if origin is list:
        return List(wrap(args[0]) if args else ANY)
    if origin is np.ndarray:
        return _array_type(args)
    if origin is Pointer:
        return _pointer_type(args)
    if origin is dict:
        return JSON
    if origin is typing.Annotated:
        return wrap(args[0])
    if annotation is tuple or annotation is list:
        return List(ANY)  # a sequence of unknown length and item types
    if isinstance(annotation, type):
        if issubclass(annotation, PyObjectWrapper):
            return PY_OBJECT_WRAPPER
        pandas = sys.modules.get("pandas")  # a pd.Timestamp subclass means pandas is loaded
        if pandas is not None and issubclass(annotation, pandas.Timestamp):
            return DATE_TIME_NAIVE
        if issubclass(annotation, np.ndarray):
            return ARRAY
        # Any other class: values are kept as Python objects.
        return ANY
    raise TypeError(f"unsupported column type annotation: {annotation!r}")


def _pointer_type(args: tuple[Any, ...]) -> PointerType:
    """The DType of ``pw.Pointer[args]``: ``Pointer[...]`` is any pointer, ``Pointer[S]`` for
    a schema ``S`` the type of ``S``'s ids."""
    if args == (Ellipsis,):
        return POINTER
    if len(args) == 1 and isinstance(getattr(args[0], "__id_dtype__", None), PointerType):
        return args[0].__id_dtype__
    return PointerType([wrap(a) for a in args])


def describe(dtype: DType) -> str:
    """How a type is printed (its ``repr``): its name, with the key types of pointers
    spelled out (``Optional[Pointer[int]]``)."""
    if isinstance(dtype, PointerType):
        return dtype.describe()
    if isinstance(dtype, Optional):
        return f"Optional[{describe(dtype.wrapped)}]"
    if isinstance(dtype, Tuple):
        return "tuple[" + ", ".join(describe(a) for a in dtype.args) + "]"
    if isinstance(dtype, List):
        return f"list[{describe(dtype.arg)}]"
    return dtype.name


def pointers_compatible(left: DType, right: DType) -> bool:
    """Whether ids of these two pointer types may be compared, merged or looked up in each
    other: always when either says nothing of its key (``Pointer``) or a key type is Any,
    otherwise the key types must be the same (``int`` and ``float`` keys differ)."""
    a, b = left.strip_optional(), right.strip_optional()
    if not (isinstance(a, PointerType) and isinstance(b, PointerType)):
        return True
    if a.args is None or b.args is None:
        return True
    return len(a.args) == len(b.args) and all(
        _key_types_compatible(x, y) for x, y in zip(a.args, b.args, strict=True)
    )


def _key_types_compatible(left: DType, right: DType) -> bool:
    # A key that may be None holds the values of the key that may not: only the types of
    # the values matter.
    a, b = left.strip_optional(), right.strip_optional()
    if a == ANY or b == ANY:
        return True
    if isinstance(a, PointerType) and isinstance(b, PointerType):
        return pointers_compatible(a, b)
    return describe(a) == describe(b)


def _pointer_supertype(a: PointerType, b: PointerType) -> PointerType | None:
    """The pointer type holding ids of both (None if they are incompatible)."""
    if not pointers_compatible(a, b):
        return None
    if a.args is None or b.args is None:
        return POINTER
    merged = [
        x
        if describe(x) == describe(y)
        else optional(x.strip_optional())
        if describe(x.strip_optional()) == describe(y.strip_optional())
        else ANY
        for x, y in zip(a.args, b.args, strict=True)
    ]
    return PointerType(merged)


def optional(dtype: DType) -> DType:
    return dtype if dtype.is_optional or dtype == ANY else Optional(dtype)


def is_numeric(dtype: DType) -> bool:
    return dtype.strip_optional() in (INT, FLOAT)


def common_supertype(left: DType, right: DType) -> DType | None:
    """The narrowest type holding values of both ``left`` and ``right``; None if there is none."""
    if getattr(left, "is_future", False) or getattr(right, "is_future", False):
        return left if left == right else None  # Future[T] (deltaflow.udfs.future) only with itself
    if left == NONE or right == NONE:
        return optional(right if left == NONE else left)
    nullable = left.is_optional or right.is_optional
    a, b = left.strip_optional(), right.strip_optional()
    if isinstance(a, PointerType) and isinstance(b, PointerType):
        merged_pointer = _pointer_supertype(a, b)
        if merged_pointer is None:
            return None
        result: DType = merged_pointer
    elif a == b:
        result = a
    elif a == ANY or b == ANY:
        return ANY
    elif {a, b} == {INT, FLOAT}:
        result = FLOAT
    elif isinstance(a, Tuple) and isinstance(b, Tuple) and len(a.args) == len(b.args):
        parts = [common_supertype(x, y) for x, y in zip(a.args, b.args, strict=True)]
        if any(p is None for p in parts):
            return None
        result = Tuple(*parts)  # type: ignore[arg-type]
    elif isinstance(a, (Tuple, List)) and isinstance(b, (Tuple, List)):
        # Sequences of different shapes: a list of the items' common type.
        items = [
            *(a.args if isinstance(a, Tuple) else (a.arg,)),
            *(b.args if isinstance(b, Tuple) else (b.arg,)),
        ]
        element: DType | None = items[0] if items else ANY
        for item in items[1:]:
            element = common_supertype(element, item) if element is not None else None
        result = List(element if element is not None else ANY)
    elif isinstance(a, Array) and isinstance(b, Array):
        result = ARRAY
    else:
        return None
    return Optional(result) if nullable else result


def is_subtype(sub: DType, sup: DType, *, numbers_widen: bool = True) -> bool:
    """Whether every value of ``sub`` is a value of ``sup``, with Pathway's leniencies: an
    ``int`` is a ``float`` (unless ``numbers_widen`` is False, as for pointer keys), a
    pointer that says nothing of its key fits every pointer and is fitted by every pointer,
    a sequence of unknown shape (``list[Any]``) fits every tuple or list, a list fits a
    tuple whose every item its element fits, and an array of unknown shape or element type
    fits every array."""
    if sup == ANY:
        return True
    if sub.is_optional and sub != NONE:
        return sup.is_optional and is_subtype(
            sub.strip_optional(), sup.strip_optional(), numbers_widen=numbers_widen
        )
    if sub == NONE:
        return sup.is_optional
    s, t = sub, sup.strip_optional()
    if t == ANY:
        return True
    if isinstance(s, PointerType) and isinstance(t, PointerType):
        if s.args is None or t.args is None:
            return True
        return len(s.args) == len(t.args) and all(
            is_subtype(x, y, numbers_widen=False) for x, y in zip(s.args, t.args, strict=True)
        )
    if isinstance(s, (Tuple, List)) and isinstance(t, (Tuple, List)):
        return _sequence_is_subtype(s, t, numbers_widen)
    if isinstance(s, Array) and isinstance(t, Array):
        return (s.n_dim is None or t.n_dim is None or s.n_dim == t.n_dim) and (
            s.wrapped in (None, ANY) or t.wrapped in (None, ANY) or s.wrapped == t.wrapped
        )
    if s == INT and t == FLOAT:
        return numbers_widen
    return s == t


def _sequence_is_subtype(s: Tuple | List, t: Tuple | List, numbers_widen: bool) -> bool:
    """Tuples and lists compared item by item; a list stands for as many items as the other
    side has, and ``list[Any]`` (a sequence of unknown shape) fits anything."""
    if (isinstance(s, List) and s.arg == ANY) or (isinstance(t, List) and t.arg == ANY):
        return True
    if isinstance(s, List) and isinstance(t, List):
        return is_subtype(s.arg, t.arg, numbers_widen=numbers_widen)
    items = s.args if isinstance(s, Tuple) else (s.arg,) * len(t.args)  # type: ignore[union-attr]
    targets = t.args if isinstance(t, Tuple) else (t.arg,) * len(items)
    return len(items) == len(targets) and all(
        is_subtype(x, y, numbers_widen=numbers_widen) for x, y in zip(items, targets, strict=True)
    )


def type_name(dtype: DType) -> str:
    return repr(dtype)


_ENGINE_NAMES = {
    "int": "INT",
    "float": "FLOAT",
    "bool": "BOOL",
    "str": "STR",
    "bytes": "BYTES",
    "DateTimeNaive": "DATE_TIME_NAIVE",
    "DateTimeUtc": "DATE_TIME_UTC",
    "Duration": "DURATION",
    "Pointer": "ANY_POINTER",
    "Json": "Json",
    "Any": "ANY",
    "PyObjectWrapper": "PyObjectWrapper(<class 'object'>)",
}


def engine_name(dtype: DType) -> str:
    """The name Pathway prints for a type in a schema table (``INT``, ``Optional(STR)``,
    ``List(INT)``, ``Tuple(INT, STR)``, ``Array`` ...)."""
    if dtype == NONE:
        return "NONE"
    if isinstance(dtype, PointerType):
        if dtype.args is None:
            return "ANY_POINTER"
        return "Pointer(" + ", ".join(engine_name(a) for a in dtype.args) + ")"
    if isinstance(dtype, Optional):
        return f"Optional({engine_name(dtype.wrapped)})"
    if isinstance(dtype, Tuple):
        return "Tuple(" + ", ".join(engine_name(a) for a in dtype.args) + ")"
    if isinstance(dtype, List):
        return f"List({engine_name(dtype.arg)})"
    if isinstance(dtype, Array):
        parts = [str(dtype.n_dim)] if dtype.n_dim is not None else []
        parts += [engine_name(dtype.wrapped)] if dtype.wrapped is not None else []
        return f"Array({', '.join(parts)})" if parts else "Array"
    return _ENGINE_NAMES.get(dtype.name, dtype.name)


# The value conversions live in their own module; they are part of this module's interface.
from deltaflow._values import (  # noqa: E402, I001 (after the names _values imports)
    canonical_key as canonical_key,
    column_for_users as column_for_users,
    infer_dtype as infer_dtype,
    row_dicts as row_dicts,
    series_from_values as series_from_values,
    to_storage as to_storage,
    values_from_series as values_from_series,
)
