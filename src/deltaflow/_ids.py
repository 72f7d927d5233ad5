"""Deterministic 128-bit row ids.

Ids must be equal in every run, process and library version (persistence and multi-worker
execution depend on it), so every id below is defined by exact arithmetic on values whose
bytes are fixed, never by Polars' own ``hash`` (whose output may change between releases).

Building blocks (all arithmetic is on unsigned 128-bit integers, modulo 2**128):

* ``H(text)``: the xxh3-128 digest of the UTF-8 bytes of ``text`` (``polars-hash`` for
  columns, the ``xxhash`` package for a few texts: the same function, bit for bit).
* ``fmix(x)``: ``x ^= x >> 64; x *= K1; x ^= x >> 64; x *= K2; x ^= x >> 64`` with the odd
  constants :data:`K1` and :data:`K2`. Every step is invertible, so ``fmix`` is a bijection:
  distinct inputs always give distinct outputs.

The ids:

* **Keys** (:func:`hash_columns`, :func:`id_expr`: primary keys, ``with_id_from``,
  ``pointer_from``, group keys, markdown/pandas row labels, so that ``t.pointer_from(x)`` is
  the id of the row keyed ``x``):

  - a key of exactly one ``int`` or ``Pointer`` column: ``fmix(H("k" + salt + "|" + tag) + v)``
    with ``tag`` = ``int`` (``v`` is the value as an unsigned 64-bit integer, i.e.
    two's complement of the ``Int64``) or ``ptr`` (``v`` the pointer itself); a None value
    takes the id the text encoding below gives a None;
  - any other key: ``H("k" + salt + "|" + part_1 + "|" + ... + part_n)`` where each
    ``part`` is ``<byte length of text>:<text>`` and ``text`` is a type tag then the value's
    text (``s`` + string, ``i`` + decimal int, ``f`` + Polars' float text, ``b1``/``b0``,
    ``y`` + hex bytes, ``p`` + decimal pointer, ``t``/``d`` + integer nanoseconds, ``o`` + the
    repr of a Python object's canonical key) or ``n`` for None. The lengths make
    ``("a", "b")`` and ``("ab",)`` encode differently by construction.

* **Positions** (:func:`sequence_ids`, rows with no key): row ``p`` of source ``seed`` gets
  ``fmix(H("q" + seed) + p)`` — distinct for distinct positions of one source.

* **Derived ids** (:func:`combine_ids_expr`: join results, flattened rows, reindexed
  concatenations): ``h = H("c" + salt)``, then for each input id ``v`` in order
  ``h = fmix(h ^ v)``; the final ``h`` is the id. A missing input (None) counts as
  :data:`MISSING`; integers count as their 64-bit two's complement. For a fixed prefix,
  distinct last inputs give distinct ids.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl
import polars_hash
import xxhash

from deltaflow._small_frames import column_values, series_of_values
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

#: The odd multipliers of ``fmix``: the first 128 fractional bits of the golden ratio
#: (last bit set) and of pi.
K1 = 0x9E3779B97F4A7C15F39CC0605CEDC835
K2 = 0x243F6A8885A308D313198A2E03707345
_MASK = (1 << 128) - 1
#: An id's high half is ``id // HALF_64``, its low half ``id & LOW_64``.
HALF_64 = 1 << 64
LOW_64 = HALF_64 - 1


def xxh3_128(expr: pl.Expr) -> pl.Expr:
    """The xxh3-128 digest of a string expression (``expr.nchash.xxh3_128()``, through the
    plugin's namespace class so type checkers see it)."""
    return polars_hash.NonCryptographicHashingNameSpace(expr).xxh3_128()


def _lit(value: int) -> pl.Expr:
    return pl.lit(value, dtype=ID_DTYPE)


def digest_texts(texts: Sequence[str]) -> pl.Series:
    """``H(text)`` of each text, as an id column."""
    if len(texts) <= PYTHON_KEY_ROWS:
        # A Polars query costs ~80 us whatever the row count; xxhash ~0.25 us a text.
        digest = xxhash.xxh3_128_intdigest
        return series_of_values("_id", [digest(text.encode()) for text in texts], ID_DTYPE)
    frame = pl.DataFrame([pl.Series("t", texts, dtype=pl.String)])
    return frame.select_seq(xxh3_128(pl.col("t")).cast(ID_DTYPE).alias("_id")).to_series()


@functools.lru_cache(maxsize=1024)
def text_digest(text: str) -> int:
    """``H(text)``: the xxh3-128 digest of ``text``'s UTF-8 bytes, as an integer."""
    return xxhash.xxh3_128_intdigest(text.encode())


#: What a missing (None) input id counts as in :func:`combine_ids_expr`: ``H("none")``.
MISSING = text_digest("none")


#: ``fmix``'s multipliers inverted modulo 2**128 (they are odd): ``fmix`` undone is the same
#: steps with the inverses in the other order (the xor-shifts by 64 bits undo themselves).
_K1_INVERSE = pow(K1, -1, 1 << 128)
_K2_INVERSE = pow(K2, -1, 1 << 128)
_FMIX = (K1, K2)
_UNFMIX = (_K2_INVERSE, _K1_INVERSE)


def _mix_int(value: int, multipliers: tuple[int, int]) -> int:
    """``x ^= x >> 64; x *= first; x ^= x >> 64; x *= second; x ^= x >> 64`` (mod 2**128)."""
    first, second = multipliers
    x = value & _MASK
    x ^= x >> 64
    x = (x * first) & _MASK
    x ^= x >> 64
    x = (x * second) & _MASK
    return x ^ (x >> 64)


def fmix_int(value: int) -> int:
    """:func:`fmix` on one Python integer (the reference the vectorised version matches)."""
    return _mix_int(value, _FMIX)


def unfmix_int(value: int) -> int:
    """The inverse of :func:`fmix_int`."""
    return _mix_int(value, _UNFMIX)


def _fmix_frame(
    frame: pl.LazyFrame, column: str, multipliers: tuple[int, int] = _FMIX
) -> pl.LazyFrame:
    """``fmix`` (or, with ``_UNFMIX``, its inverse) of a UInt128 column, one step per
    projection (no repeated sub-expressions)."""
    c = pl.col(column)
    half = _lit(HALF_64)
    first, second = multipliers
    return (
        frame.with_columns((c.xor(c // half) * _lit(first)).alias(column))
        .with_columns((c.xor(c // half) * _lit(second)).alias(column))
        .with_columns(c.xor(c // half).alias(column))
    )


def int_key_code(row_id: int) -> int:
    """The *code* of a row id among rows keyed by one int column: ``unfmix(id) - H("k|int")``.

    For the id of an int key ``v`` (see the module docstring) this is ``v`` as an unsigned
    64-bit integer; any other id gets some other value. Codes are a bijection of ids
    (:func:`id_of_int_key_code` undoes it), so a table keyed by codes holds the same rows as
    one keyed by ids, while serial keys keep serial codes, which a table can index directly
    (ids are scattered on purpose)."""
    return (unfmix_int(row_id) - text_digest("k|int")) & _MASK


def id_of_int_key_code(code: int) -> int:
    """The row id whose :func:`int_key_code` is ``code``."""
    return fmix_int(code + text_digest("k|int"))


def int_key_codes(ids: pl.Series) -> pl.Series:
    """:func:`int_key_code` of each id of a ``UInt128`` column (Polars' UInt128 products and
    sums wrap, as the arithmetic needs)."""
    frame = _fmix_frame(pl.LazyFrame({"v": ids.cast(ID_DTYPE)}), "v", _UNFMIX)
    minus_base = (1 << 128) - text_digest("k|int")
    return frame.select((pl.col("v") + _lit(minus_base)).alias(ids.name)).collect().to_series()


def ids_of_int_key_codes(codes: pl.Series) -> pl.Series:
    """:func:`id_of_int_key_code` of each code of a ``UInt128`` column."""
    frame = pl.LazyFrame({"v": codes.cast(ID_DTYPE)})
    frame = frame.with_columns((pl.col("v") + _lit(text_digest("k|int"))).alias("v"))
    return _fmix_frame(frame, "v").collect().to_series().alias(codes.name)


def _as_u128(series: pl.Series) -> pl.Series:
    """An id-like column as UInt128 (integers as their 64-bit two's complement)."""
    dtype = series.dtype
    if dtype == ID_DTYPE:
        return series
    if dtype.is_unsigned_integer():
        return series.cast(ID_DTYPE)
    if dtype.is_integer():
        return series.cast(pl.Int64).reinterpret(signed=False).cast(ID_DTYPE)
    if dtype == pl.Null:
        return series.cast(ID_DTYPE)
    raise TypeError(f"ids can only be derived from ids or integers, not {dtype}")


# ------------------------------------------------------------------------------------------
# Keys
# ------------------------------------------------------------------------------------------


def _value_text(expr: pl.Expr, base: DType) -> tuple[str, pl.Expr]:
    """The tag and the text of one column's non-None values."""
    if base == STR:
        return "s", expr
    if base == INT:
        return "i", expr.cast(pl.Int64).cast(pl.String)
    if base == FLOAT:
        return "f", expr.cast(pl.Float64).cast(pl.String)
    if base == BOOL:
        return "b", expr.cast(pl.UInt8).cast(pl.String)
    if base == BYTES:
        return "y", expr.bin.encode("hex")
    if base == POINTER:
        return "p", expr.cast(pl.String)
    if base in (DATE_TIME_NAIVE, DATE_TIME_UTC):
        return "t", expr.dt.epoch("ns").cast(pl.String)
    if base == DURATION:
        return "d", expr.dt.total_nanoseconds().cast(pl.String)
    return "o", expr.map_elements(_encode_object, return_dtype=pl.String)


def _encode_object(value: Any) -> str:
    return repr(canonical_key(value))


#: A part's head (``<byte length + 1>:<tag>``, with what precedes it in the key) is taken
#: from a table by the text's length for texts shorter than this: Polars' cast of every
#: length to text costs more than the rest of the key's text (~2.5x for one text column).
_HEAD_TABLE_BYTES = 256
#: Key types whose texts are always shorter than that: numbers, flags, times.
_SHORT_TEXT_TYPES = frozenset([INT, FLOAT, BOOL, POINTER, DATE_TIME_NAIVE, DATE_TIME_UTC, DURATION])


@functools.lru_cache(maxsize=64)
def _heads(lead: str, tag: str) -> pl.Series:
    """``lead + "<n + 1>:" + tag`` for each text length ``n`` below :data:`_HEAD_TABLE_BYTES`."""
    return pl.Series("head", [f"{lead}{n + 1}:{tag}" for n in range(_HEAD_TABLE_BYTES)])


def key_part(
    expr: pl.Expr, dtype: DType, *, may_be_null: bool = True, short: bool = False, lead: str = ""
) -> pl.Expr:
    """``lead + "<byte length>:<tag><text>"`` of one key column, ``lead + "1:n"`` for None.

    ``short``: the column's texts are known to be shorter than :data:`_HEAD_TABLE_BYTES`
    bytes (see :func:`_short_texts`), so the head comes from a table. Not for an expression
    that may be a scalar (a literal): the table's gather would not broadcast."""
    tag, text = _value_text(expr, dtype.strip_optional())
    size = text.str.len_bytes()
    if short:
        head = pl.lit(_heads(lead, tag)).gather(size)
    else:  # the tag is one ASCII character, so the length is the text's plus one
        head = pl.concat_str([pl.lit(lead), (size + 1).cast(pl.String), pl.lit(":" + tag)])
    part = pl.concat_str([head, text])
    return part.fill_null(pl.lit(lead + "1:n")) if may_be_null else part


def _key_text(parts: Sequence[tuple[pl.Expr, DType, bool, bool]], salt: str) -> pl.Expr:
    """The text whose digest is the id of a key (see the module docstring), from each key
    column's expression, type, whether it may be None and whether its texts are short (see
    :func:`key_part`)."""
    if not parts:
        return pl.lit("k" + salt)
    pieces = [
        key_part(expr, dtype, may_be_null=nullable, short=short, lead="|" if i else f"k{salt}|")
        for i, (expr, dtype, nullable, short) in enumerate(parts)
    ]
    return pieces[0] if len(pieces) == 1 else pl.concat_str(pieces)


def _integer_tag(dtypes: Sequence[DType]) -> str | None:
    """``int``/``ptr`` when a key of these types is hashed arithmetically, else None."""
    if len(dtypes) != 1:
        return None
    base = dtypes[0].strip_optional()
    return "int" if base == INT else "ptr" if base == POINTER else None


def _integer_key_ids(series: pl.Series, tag: str, salt: str) -> pl.Series:
    """Ids of a one-column int/Pointer key: ``fmix(H("k" + salt + "|" + tag) + v)``."""
    if tag == "int":
        values = series.cast(pl.Int64).reinterpret(signed=False).cast(ID_DTYPE)
    else:
        values = series.cast(ID_DTYPE)
    frame = pl.LazyFrame({"v": values})
    base = _lit(text_digest(f"k{salt}|{tag}"))
    frame = _fmix_frame(frame.with_columns((pl.col("v") + base).alias("v")), "v")
    out = frame.collect().to_series()
    if series.null_count():
        out = out.fill_null(_lit(_null_key_id(salt)))
    return out.alias("_id")


@functools.lru_cache(maxsize=64)
def _null_key_id(salt: str) -> int:
    """The id of a one-column key whose value is None (as the text encoding gives it)."""
    return text_digest(f"k{salt}|1:n")


def id_expr(columns: Sequence[tuple[pl.Expr, DType]], *, salt: str = "") -> pl.Expr:
    """An expression computing ids from the given (expression, type) pairs."""
    tag = _integer_tag([dtype for _, dtype in columns])
    if tag is not None:
        ((expr, _),) = columns
        return expr.map_batches(
            functools.partial(_integer_key_ids, tag=tag, salt=salt),
            return_dtype=ID_DTYPE,
            is_elementwise=True,
        )
    parts = [(expr, dtype, True, False) for expr, dtype in columns]
    return xxh3_128(_key_text(parts, salt)).cast(ID_DTYPE)


def hash_columns(frame: pl.DataFrame, columns: Sequence[tuple[str, DType]]) -> pl.Series:
    """Ids for the rows of ``frame`` keyed by the named columns."""
    if frame.height == 0:
        return pl.Series("_id", [], dtype=ID_DTYPE)
    if columns and frame.height <= PYTHON_KEY_ROWS:
        ids = hash_values([(column_values(frame, name), dtype) for name, dtype in columns])
        if ids is not None:
            return ids
    tag = _integer_tag([dtype for _, dtype in columns])
    if tag is not None:
        ((name, _),) = columns
        return _integer_key_ids(frame[name], tag, "")
    parts = [
        (pl.col(name), dtype, frame[name].null_count() > 0, _short_texts(frame[name], dtype))
        for name, dtype in columns
    ]
    expr = xxh3_128(_key_text(parts, "")).cast(ID_DTYPE)
    return frame.select(expr.alias("_id")).to_series()


def _short_texts(column: pl.Series, dtype: DType) -> bool:
    """Whether the key texts of ``column`` (of key type ``dtype``) are all shorter than
    :data:`_HEAD_TABLE_BYTES` bytes (the key's text is then built faster: see
    :func:`key_part`): always for numbers, flags and times; for a ``str`` column when its
    values are (they are the texts; other types' texts are reprs, of other lengths)."""
    base = dtype.strip_optional()
    if base in _SHORT_TEXT_TYPES:
        return True
    if base != STR or column.dtype != pl.String:
        return False
    longest = column.str.len_bytes().max()
    return longest is None or int(longest) < _HEAD_TABLE_BYTES  # type: ignore[arg-type]


def hash_values(columns: Sequence[tuple[Sequence[Any], DType]]) -> pl.Series | None:
    """:func:`hash_columns` of keys given as one Python list of values per key column (a
    few keys: computed in Python), or None when a column's type has no exact Python text."""
    ids = key_ids_of_values(columns)
    return None if ids is None else series_of_values("_id", ids, ID_DTYPE)


def key_ids_of_values(columns: Sequence[tuple[Sequence[Any], DType]]) -> list[int] | None:
    """:func:`hash_values` as Python ints (for a few keys), or None when a column's type has
    no exact Python text."""
    tag = _integer_tag([dtype for _, dtype in columns])
    if tag is not None:
        ((values, _),) = columns
        return _integer_key_ids_python(values, tag)
    texts = key_texts(columns)
    if texts is None:
        return None
    digest = xxhash.xxh3_128_intdigest
    return [digest(text.encode()) for text in texts]


#: Keys of up to this many rows are encoded in Python and hashed in one Polars call: the
#: query building every part's text costs about a millisecond whatever the row count.
PYTHON_KEY_ROWS = 512


#: Per key type whose text Python writes exactly as the Polars expressions of
#: :func:`_value_text` do, the parts (``<byte length>:<tag><text>``) of a column's values
#: (floats, bytes, dates and objects are not among them: they take the query).
def _int_parts(values: Sequence[Any]) -> list[str]:
    return ["1:n" if v is None else _ascii_part("i", str(v)) for v in values]


def _str_parts(values: Sequence[Any]) -> list[str]:
    return ["1:n" if v is None else part_text("s", v) for v in values]


def _bool_parts(values: Sequence[Any]) -> list[str]:
    return ["1:n" if v is None else "2:b1" if v else "2:b0" for v in values]


def _pointer_parts(values: Sequence[Any]) -> list[str]:
    return ["1:n" if v is None else _ascii_part("p", str(int(v))) for v in values]


def _ascii_part(tag: str, text: str) -> str:
    return f"{len(text) + 1}:{tag}{text}"


_PYTHON_PARTS: dict[DType, Callable[[Sequence[Any]], list[str]]] = {
    STR: _str_parts,
    INT: _int_parts,
    BOOL: _bool_parts,
    POINTER: _pointer_parts,
}


def key_texts(columns: Sequence[tuple[Sequence[Any], DType]], salt: str = "") -> list[str] | None:
    """The texts whose digests are the ids of keys (one Python list of values per key
    column; see the module docstring), or None when a column's type has no exact Python
    text."""
    parts = []
    for values, dtype in columns:
        writer = _PYTHON_PARTS.get(dtype.strip_optional())
        if writer is None:
            return None
        parts.append(writer(values))
    head = "k" + salt
    return ["|".join((head, *row)) for row in zip(*parts, strict=True)]


def part_text(tag: str, text: str) -> str:
    """``<byte length>:<tag><text>``: one part of a key's text."""
    size = len(text) if text.isascii() else len(text.encode())
    return f"{size + 1}:{tag}{text}"


def _integer_key_ids_python(values: Sequence[Any], tag: str) -> list[int]:
    """:func:`_integer_key_ids` (no salt) of a few values, in Python."""
    base = text_digest(f"k|{tag}")
    null_id = _null_key_id("")
    if tag == "int":
        return [null_id if v is None else fmix_int(base + (v & LOW_64)) for v in values]
    return [null_id if v is None else fmix_int(base + int(v)) for v in values]


def pointer_from_values(*values: Any, dtypes: Sequence[DType] | None = None) -> Pointer:
    """The id of a row whose key is ``values`` (the scalar counterpart of :func:`hash_columns`)."""
    from deltaflow._types import infer_dtype

    if dtypes is None:
        dtypes = [infer_dtype([v]) for v in values]
    data = {
        f"k{i}": series_from_values(f"k{i}", [v], t)
        for i, (v, t) in enumerate(zip(values, dtypes, strict=True))
    }
    frame = pl.DataFrame(data) if data else pl.DataFrame({"_": [0]})
    ids = hash_columns(frame, [(f"k{i}", t) for i, t in enumerate(dtypes)])
    return Pointer(ids[0])


# ------------------------------------------------------------------------------------------
# Positions and derived ids
# ------------------------------------------------------------------------------------------


def sequence_ids(seed: str, start: int, count: int) -> pl.Series:
    """Ids for rows identified only by their position ``start .. start+count`` in a source."""
    if count <= 0:
        return pl.Series("_id", [], dtype=ID_DTYPE)
    if count <= PYTHON_KEY_ROWS:
        # A few ids (a small file, the first commit of a stream): Python's ~0.4 us an id
        # is less than a query's fixed cost of a few hundred microseconds.
        base = text_digest("q" + seed)
        return series_of_values(
            "_id", [fmix_int(position + base) for position in range(start, start + count)], ID_DTYPE
        )
    positions = pl.int_range(start, start + count, dtype=pl.Int64, eager=True)
    frame = pl.LazyFrame({"_id": positions.cast(ID_DTYPE)})
    frame = frame.with_columns((pl.col("_id") + _lit(text_digest("q" + seed))).alias("_id"))
    return _fmix_frame(frame, "_id").collect().to_series()


def combine_ids(columns: Sequence[pl.Series], salt: str = "") -> pl.Series:
    """Derived ids of the rows of ``columns`` (ids or integers; see the module docstring)."""
    data = {f"v{i}": _as_u128(c) for i, c in enumerate(columns)}
    frame = with_derived_ids(pl.LazyFrame(data), list(data), salt=salt)
    return frame.select("_id").collect().to_series()


def combine_id_values(*ids: int | Pointer | None, salt: str = "") -> int:
    """:func:`combine_ids` of one row of ids (stored ids, i.e. non-negative Python integers,
    or ``Pointer`` values; None for a missing one): for a few rows, cheaper than any Polars
    query."""
    h = _salt_digest(salt)
    for value in ids:
        h = fmix_int(h ^ (MISSING if value is None else int(value)))
    return h


@functools.lru_cache(maxsize=64)
def _salt_digest(salt: str) -> int:
    return text_digest("c" + salt)


def with_derived_ids(
    frame: pl.LazyFrame, columns: Sequence[str], *, salt: str = "", name: str = "_id"
) -> pl.LazyFrame:
    """``frame`` with a column ``name`` holding the derived ids (:func:`combine_ids`) of its
    id (``UInt128``) columns ``columns``.

    Computed as steps of ``frame``'s own query, so a big frame is processed in one pass and
    the new column is split into chunks like the others (a column computed apart, e.g. by
    :func:`combine_ids_expr`, makes the next Polars operation copy the whole frame to align
    them).
    """
    frame = frame.with_columns(_lit(text_digest("c" + salt)).alias(name))
    for column in columns:
        mixed = pl.col(name).xor(pl.col(column).fill_null(_lit(MISSING)))
        frame = _fmix_frame(frame.with_columns(mixed.alias(name)), name)
    return frame


def combine_ids_expr(*ids: pl.Expr, salt: str = "") -> pl.Expr:
    """Ids derived from tuples of other ids (flattened rows, reindexed concat; joins use
    :func:`with_derived_ids` or :func:`combine_id_values`)."""
    return pl.map_batches(
        list(ids),
        functools.partial(combine_ids, salt=salt),
        return_dtype=ID_DTYPE,
        is_elementwise=True,
    )
