"""Window assignment for tumbling and sliding windows: arithmetic on the time column.

A row with time ``x`` belongs to window ``k`` (start ``origin + k * hop``, end ``start +
duration``) when ``start <= x < end``, i.e. for ``k`` from ``floor((x - origin - duration) /
hop) + 1`` to ``floor((x - origin) / hop)``; with an explicit origin only ``k >= 0`` counts
(rows before the origin belong to no window), and a hop longer than the duration leaves gaps.
Everything is one Polars query per delta (an ``explode`` when a row may fall in several
windows); datetimes are computed on their nanoseconds since the epoch.

The output rows carry the needed input columns plus ``_pw_key`` (the time), the window's
start and end and, with an instance, ``_pw_instance``. A row in one window keeps its id; rows
of sliding windows get ids derived from (row id, window number).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from deltaflow._ids import ID_DTYPE, PYTHON_KEY_ROWS, digest_texts, part_text, with_derived_ids
from deltaflow._small_frames import SEQUENTIAL_ROWS
from deltaflow.engine.batch import (
    DIFF,
    ID,
    has_distinct_ids,
    mark_distinct_ids,
    project,
    same_ids_as,
)
from deltaflow.engine.operators import Delta, Operator, projection_exprs, run_projection
from deltaflow.plan import Node

KEY = "_pw_key"
START = "_pw_window_start"
END = "_pw_window_end"
INSTANCE = "_pw_instance"
_K = "__k"
_X = "__x"


@dataclass(eq=False)
class WindowAssignNode(Node):
    """Rows with their tumbling/sliding window(s).

    ``pre`` computes ``_pw_key`` (and ``_pw_instance``) next to the carried columns. Lengths
    are in the time's units: numbers, or nanoseconds for datetimes (``time_zone`` set for
    ``DateTimeUtc``).
    """

    pre: Any = None
    carried: list[str] = field(default_factory=list)
    hop: Any = 1
    duration: Any = 1
    origin: Any = None
    kind: str = "int"  # int | float | DateTimeNaive | DateTimeUtc
    has_instance: bool = False
    ratio: int | None = None  # duration = ratio * hop exactly (tumbling: 1)
    # Rows in several windows get ids derived from (row id, window) when True; a windowed
    # reduce keeps the original ids instead (as Pathway's arg reducers return them, and
    # deriving 128-bit ids for every (row, window) pair is the costliest step there): its
    # rows stay distinct by their window columns.
    derive_ids: bool = True


class WindowAssignOperator(Operator[WindowAssignNode]):
    def __init__(self, node: WindowAssignNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.carried = list(node.carried)
        self.hop = node.hop
        self.duration = node.duration
        self.origin = node.origin
        self.kind = node.kind
        self.ratio = node.ratio
        self.derive_ids = node.derive_ids
        self.single = node.ratio == 1 or node.duration <= node.hop  # one window at most
        extra = [INSTANCE] if node.has_instance else []
        self.names = [ID, *self.carried, KEY, *extra]
        self.out_names = [ID, *node.columns, DIFF]
        # Int times with int lengths: window bounds are exact in NumPy's int64.
        self.int_bounds = node.kind == "int" and all(
            type(v) is int for v in (node.hop, node.duration, node.origin or 0)
        )
        # (ids of the projection's expressions, the fused select's expressions)
        self._fused: tuple[tuple[int, ...], list[pl.Expr]] | None = None

    def _numbers(self) -> pl.Expr:
        """The time as a number (nanoseconds since the epoch for datetimes)."""
        if self.kind in ("int", "float"):
            return pl.col(KEY)
        return pl.col(KEY).dt.epoch("ns")

    def _floor_div(self, value: pl.Expr) -> pl.Expr:
        if self.kind == "float":
            return (value / self.hop).floor().cast(pl.Int64)
        return value // self.hop

    def _time_of(self, number: pl.Expr) -> pl.Expr:
        """A number (window start or end) back in the time column's type."""
        if self.kind == "int":
            return number
        if self.kind == "float":
            return number.cast(pl.Float64)
        value = pl.from_epoch(number, "ns")
        return value.dt.replace_time_zone("UTC") if self.kind == "DateTimeUtc" else value

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        if self.single:
            if self.int_bounds and delta.height <= SEQUENTIAL_ROWS:
                copied = self._single_copied(delta)
                if copied is not None:
                    return copied
            fused = self._single_fused(delta)
            if fused is not None:
                return fused
        frame = run_projection(self.pre, delta, keep=[ID, *self.carried], tail=[DIFF])
        origin = 0 if self.origin is None else self.origin
        x = (self._numbers() - origin).alias(_X)
        frame = frame.with_columns(x).filter(pl.col(_X).is_not_null())
        last = self._floor_div(pl.col(_X))
        # With an exact ratio the first window follows from the last (no rounding of floats
        # may add or lose a window at a border).
        first = (
            last - (self.ratio - 1)
            if self.ratio is not None
            else self._floor_div(pl.col(_X) - self.duration) + 1
        )
        if self.single:
            keep = pl.lit(True) if self.ratio == 1 else first <= last
            if self.origin is not None:
                keep = keep & (last >= 0)
            frame = frame.with_columns(last.alias(_K)).filter(keep)
        else:
            if self.origin is not None:
                first = pl.max_horizontal(first, pl.lit(0, dtype=pl.Int64))
            frame = frame.with_columns(pl.int_ranges(first, last + 1).alias(_K)).explode(
                _K, empty_as_null=False
            )
            frame = frame.filter(pl.col(_K).is_not_null())
        if frame.height == 0:
            return None
        start = pl.lit(origin) + pl.col(_K) * self.hop
        frame = frame.with_columns(
            self._time_of(start).alias(START), self._time_of(start + self.duration).alias(END)
        )
        if not self.single and self.derive_ids:
            window_number = pl.col(_K).reinterpret(signed=False).cast(pl.UInt128)
            frame = with_derived_ids(
                frame.lazy().with_columns(window_number.alias(_K)),
                [ID, _K],
                salt="window",
                name="__nid",
            ).collect()
            frame = frame.with_columns(pl.col("__nid").alias(ID))
        out = frame.select(self.out_names)
        # Distinct (row id, window) pairs: ids stay distinct when the input's are.
        if self.single:
            return same_ids_as(delta, out)
        if self.derive_ids and has_distinct_ids(delta):
            return mark_distinct_ids(out)
        return out

    def _single_fused(self, delta: pl.DataFrame) -> Delta:
        """At most one window per row, pure projection: one ``select`` and one ``filter``
        (per-time cost on small streaming deltas is the number of Polars calls)."""
        columns = self._fused_columns()
        if columns is None:
            return None
        frame = project(delta, columns)
        keep_mask = frame["__keep"]
        if not keep_mask.all():  # rows without a time or before the origin (rare)
            frame = frame.filter(keep_mask)
            if frame.height == 0:
                return None
        # The chosen columns as they are: no second query.
        return same_ids_as(delta, pl.DataFrame([frame[name] for name in self.out_names]))

    def _single_copied(self, delta: pl.DataFrame) -> Delta:
        """:meth:`_single_fused` for a small delta whose int time and instance are columns as
        they are: the window bounds in NumPy (each arithmetic node of a Polars query costs
        tens of microseconds on a few rows, NumPy a few); None when that does not apply."""
        copies = self.pre.copies(delta)
        if copies is None:
            return None
        source = dict(copies)
        key = delta.get_column(source[KEY])
        if key.null_count():
            return None
        x = key.to_numpy() - (0 if self.origin is None else self.origin)
        last = x // self.hop
        keep = None
        if self.ratio != 1:
            keep = (x - self.duration) // self.hop + 1 <= last
        if self.origin is not None:
            keep = last >= 0 if keep is None else keep & (last >= 0)
        start = last * self.hop + (0 if self.origin is None else self.origin)
        by_name = {
            START: pl.Series(START, start),
            END: pl.Series(END, start + self.duration),
            KEY: key.alias(KEY),
        }
        if INSTANCE in source:
            by_name[INSTANCE] = delta.get_column(source[INSTANCE]).alias(INSTANCE)
        frame = pl.DataFrame(
            [
                by_name[name] if name in by_name else delta.get_column(name)
                for name in self.out_names
            ]
        )
        if keep is not None and not keep.all():  # rows before the origin, or in a gap
            frame = frame.filter(pl.Series(keep))
            if frame.height == 0:
                return None
        return same_ids_as(delta, frame)

    def _fused_columns(self) -> list[pl.Expr] | None:
        """The expressions of :meth:`_single_fused`, built once for the projection's
        expressions (building them costs about as much as evaluating them on a small delta);
        None when the projection has Python nodes."""
        exprs = projection_exprs(self.pre)
        if exprs is None:
            return None
        built_from = tuple(map(id, exprs.values()))
        if self._fused is not None and self._fused[0] == built_from:
            return self._fused[1]
        origin = 0 if self.origin is None else self.origin
        key = exprs[KEY]
        number = key if self.kind in ("int", "float") else key.dt.epoch("ns")
        x = number - origin
        last = self._floor_div(x)
        keep = x.is_not_null()
        if self.ratio != 1:
            keep = keep & (self._floor_div(x - self.duration) + 1 <= last)
        if self.origin is not None:
            keep = keep & (last >= 0)
        start = pl.lit(origin) + last * self.hop
        columns = [pl.col(ID), *[pl.col(c) for c in self.carried], key.alias(KEY)]
        if INSTANCE in exprs:
            columns.append(exprs[INSTANCE].alias(INSTANCE))
        columns += [
            self._time_of(start).alias(START),
            self._time_of(start + self.duration).alias(END),
            pl.col(DIFF),
            keep.alias("__keep"),
        ]
        self._fused = (built_from, columns)
        return columns


@dataclass(eq=False)
class WindowIdNode(Node):
    """The windowed reduce's output with Pathway's ids: the pointer of (window, start, end,
    instance), where the window is the ``window`` column's value (sessions: the session id;
    intervals_over: the location) or, without it, the tuple (instance, start, end).

    ``key_types`` gives the types of ``start``/``end``/``instance``/``window`` columns (the
    instance may be absent: then it is None).
    """

    start: str = ""
    end: str = ""
    instance: str | None = None
    window: str | None = None
    key_types: dict[str, Any] = field(default_factory=dict)


#: Window ids remembered by a :class:`WindowIdOperator` (a streaming delta mostly updates
#: windows it has seen): up to this many, then the memory starts afresh.
_ID_CACHE_LIMIT = 200_000
#: Deltas up to this many rows look their ids up in the cache; bigger ones hash in Polars.
_CACHED_ROWS = 4096
#: Column types whose physical values (ints, strings, booleans) identify a value exactly.
_EXACT_PHYSICAL = (
    pl.Int64,
    pl.Int32,
    pl.UInt64,
    pl.UInt32,
    pl.String,
    pl.Boolean,
    pl.Null,
    pl.Datetime,
    pl.Duration,
    pl.Date,
)


class WindowIdOperator(Operator[WindowIdNode]):
    def __init__(self, node: WindowIdNode) -> None:
        super().__init__(node)
        self.start, self.end = node.start, node.end
        self.instance, self.window = node.instance, node.window
        self.types = dict(node.key_types)
        self.key_columns = [
            c for c in (self.start, self.end, self.instance, self.window) if c is not None
        ]
        # (start, end, instance, window) physical values -> id, when those identify a window
        # exactly (floats and Python objects do not: -0.0 == 0.0, NaN != NaN).
        self.cache: dict[tuple[Any, ...], int] | None = (
            {}
            if all(isinstance(self.types[c].to_polars(), _EXACT_PHYSICAL) for c in self.key_columns)
            else None
        )

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        if self.cache is not None and delta.height <= _CACHED_ROWS:
            ids = self._cached_ids(delta)
            out = pl.DataFrame([ids if name == ID else delta[name] for name in delta.columns])
        else:
            out = delta.with_columns(
                window_ids(
                    delta, self.start, self.end, self.instance, self.window, self.types
                ).alias(ID)
            )
        # One output row per window before: distinct windows give distinct ids.
        return same_ids_as(delta, out)

    def _cached_ids(self, delta: pl.DataFrame) -> pl.Series:
        """The ids of a small delta from the cache; windows not seen yet are hashed together
        (one Polars call) and remembered."""
        cache = self.cache
        assert cache is not None
        keys = list(zip(*(_physical_values(delta[c]) for c in self.key_columns), strict=True))
        missing = [i for i, key in enumerate(keys) if key not in cache]
        if missing:
            if len(cache) + len(missing) > _ID_CACHE_LIMIT:
                cache.clear()
            rows = delta if len(missing) == delta.height else delta[missing]
            fresh = window_ids(
                rows, self.start, self.end, self.instance, self.window, self.types
            ).to_list()
            for i, value in zip(missing, fresh, strict=True):
                cache[keys[i]] = value
        return pl.Series(ID, [cache[key] for key in keys], dtype=ID_DTYPE)


def _physical_values(series: pl.Series) -> list[Any]:
    """The values of ``series`` as Python ints, strings or booleans (temporal values as their
    integer representation, which keeps nanoseconds; ``to_physical`` is a query, so only
    temporal columns pay for it)."""
    if series.dtype.is_temporal():
        series = series.to_physical()
    return series.to_list()


def window_ids(
    frame: pl.DataFrame,
    start: str,
    end: str,
    instance: str | None,
    window: str | None,
    types: dict[str, Any],
) -> pl.Series:
    """``pointer_from(window, start, end, instance)`` of every row (see :class:`WindowIdNode`),
    with the tuple window's text built by Polars when its parts print as Python does
    (ints, None), else from Python tuples."""
    from deltaflow import _types as t
    from deltaflow._ids import hash_columns, key_part

    none = t.Optional(t.ANY)
    inst_type = types[instance] if instance is not None else none
    if window is not None:
        data = frame.select(
            pl.col(window).alias("w"),
            pl.col(start).alias("s"),
            pl.col(end).alias("e"),
            (pl.col(instance) if instance is not None else pl.lit(None, dtype=pl.Null)).alias("i"),
        )
        return hash_columns(
            data, [("w", types[window]), ("s", types[start]), ("e", types[end]), ("i", inst_type)]
        )
    bounds_type = types[start].strip_optional()
    base = inst_type.strip_optional()
    if bounds_type == t.INT and frame.height <= PYTHON_KEY_ROWS:
        texts = _tuple_window_texts(frame, start, end, instance, base)
        if texts is not None:
            return digest_texts(texts)
    # Strings print as Python does when quoted plainly: printable ASCII, no quote/backslash.
    plain_strings = (
        instance is not None
        and base == t.STR
        and not frame[instance].str.contains(r"[^ -~]|['\\]").any()
    )
    plain_instance = instance is None or base == t.INT or plain_strings
    if bounds_type == t.INT and plain_instance:
        # repr(canonical_key((instance, start, end))) == "('tuple', (i, s, e))"
        if instance is None:
            shown = pl.lit("None")
        elif plain_strings:
            shown = pl.concat_str([pl.lit("'"), pl.col(instance), pl.lit("'")]).fill_null("None")
        else:
            shown = pl.col(instance).cast(pl.String).fill_null("None")
        text = pl.concat_str(
            [
                pl.lit("('tuple', ("),
                shown,
                pl.lit(", "),
                pl.col(start).cast(pl.String),
                pl.lit(", "),
                pl.col(end).cast(pl.String),
                pl.lit("))"),
            ]
        )
        part = pl.concat_str([(text.str.len_bytes() + 1).cast(pl.String), pl.lit(":o"), text])
        inst_part = pl.lit("1:n") if instance is None else key_part(pl.col(instance), inst_type)
        key = pl.concat_str(
            [
                pl.lit("k"),
                part,
                key_part(pl.col(start), types[start]),
                key_part(pl.col(end), types[end]),
                inst_part,
            ],
            separator="|",
        )
        from deltaflow._ids import ID_DTYPE, xxh3_128

        return frame.select(xxh3_128(key).cast(ID_DTYPE).alias(ID)).to_series()
    instances = [None] * frame.height if instance is None else t.values_from_series(frame[instance])
    starts = t.values_from_series(frame[start])
    ends = t.values_from_series(frame[end])
    windows = [(i, s, e) for i, s, e in zip(instances, starts, ends, strict=True)]
    window_type = t.Tuple(inst_type, types[start], types[end])
    data = pl.DataFrame(
        [
            t.series_from_values("w", windows, window_type),
            frame[start].alias("s"),
            frame[end].alias("e"),
            frame[instance].alias("i")
            if instance is not None
            else pl.Series("i", [None] * frame.height, dtype=pl.Null),
        ]
    )
    return hash_columns(
        data, [("w", window_type), ("s", types[start]), ("e", types[end]), ("i", inst_type)]
    )


def _tuple_window_texts(
    frame: pl.DataFrame, start: str, end: str, instance: str | None, base: Any
) -> list[str] | None:
    """The key texts :func:`window_ids` hashes for int bounds, written in Python (a few rows:
    the query building them costs about a millisecond), or None when the instance is neither
    absent, an int, nor a string that prints plainly between quotes."""
    from deltaflow import _types as t

    starts = frame.get_column(start).to_list()
    ends = frame.get_column(end).to_list()
    if instance is None:
        instances: list[Any] = [None] * frame.height
    elif base in (t.INT, t.STR):
        instances = frame.get_column(instance).to_list()
    else:
        return None
    if base == t.STR and not all(v is None or _plain(v) for v in instances):
        return None
    tag = "s" if base == t.STR else "i"
    texts = []
    for i, s, e in zip(instances, starts, ends, strict=True):
        shown = "None" if i is None else f"'{i}'" if tag == "s" else str(i)
        window = f"('tuple', ({shown}, {s}, {e}))"
        inst_part = "1:n" if i is None else part_text(tag, str(i))
        texts.append(
            "|".join(
                (
                    "k",
                    part_text("o", window),
                    part_text("i", str(s)),
                    part_text("i", str(e)),
                    inst_part,
                )
            )
        )
    return texts


def _plain(text: str) -> bool:
    """Whether Python's repr of ``text`` is the text between single quotes (printable ASCII
    without quotes or backslashes)."""
    return text.isascii() and text.isprintable() and "'" not in text and "\\" not in text
