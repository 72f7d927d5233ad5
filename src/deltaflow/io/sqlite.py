"""``pw.io.sqlite``: read a table of an SQLite database as a live table, write a table to one.

SQLite is a file, not a server, so two processes (two pipelines, or a pipeline and any other
program) can share data through it. This module holds the connector's three parts:

* the **type mapping** (:data:`TYPE_MAPPING`) between deltaflow types and SQLite storage, with
  the encoders and decoders that implement it; it follows Pathway 0.33's storage classes and
  text encodings so that databases written by either system read correctly in the other;
* the **writer** (:class:`SqliteWriter`, :class:`SqliteFormatter`): ``stream_of_changes`` appends
  every change with ``time``/``diff``; ``snapshot`` upserts and deletes on a primary key, one
  transaction per minibatch;
* the **reader** (:class:`SqliteReader`): reads the whole table, then polls it and emits the
  difference between consecutive snapshots (insertions, updates as delete+insert, deletions);
  it runs on the shared input session (``io/_core/input_session.py``).

Connections use WAL journaling (set by the writer) and a busy timeout, so one writer and any
number of readers in other processes work side by side without "database is locked" errors.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike, fspath
from typing import Any, Literal

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._ids import hash_columns, id_expr
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import ConnectorError
from deltaflow.io._core.base import (
    Data,
    Finished,
    Formatter,
    Reader,
    ReadEvent,
    RowsContext,
    Writer,
)
from deltaflow.io._core.formats import TypedRowsParser, column_specs
from deltaflow.io._core.output_session import OutputSession
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_backlog,
    check_mode,
    check_schema,
    reader_table,
)
from deltaflow.io._core.serialization import (
    ConversionError,
    convert_value,
    json_value,
    parse_pointer,
)

logger = logging.getLogger("deltaflow.io.sqlite")

__all__ = ["TYPE_MAPPING", "SqliteFormatter", "SqliteReader", "SqliteWriter", "read", "write"]

_KIND = "_kind"
_ROWID = "__deltaflow_rowid"
_ROWID_SOURCE = "_rowid_"

BUSY_TIMEOUT_S = 30.0
"""How long a connection waits for another connection's lock before giving up."""

COMMIT_ATTEMPTS = 5
"""How many times a transaction that hit a busy/locked database is retried from the start."""

_SQLITE_HEADER = b"SQLite format 3\x00"
_ROWID_ALIASES = {"rowid", "_rowid_", "oid"}


# ==========================================================================================
# Type mapping
# ==========================================================================================


@dataclass(frozen=True)
class SqliteType:
    """How values of one deltaflow type are stored in SQLite.

    ``declared`` is the column type used by ``CREATE TABLE`` (it gives the column its type
    affinity), ``storage`` the storage class of the stored values, ``encoding`` a description
    of the stored value, and ``raw`` the Polars dtype the stored values are read into.
    """

    declared: str
    storage: str
    encoding: str
    raw: pl.DataType


TYPE_MAPPING: dict[str, SqliteType] = {
    "int": SqliteType("INTEGER", "INTEGER", "the 64-bit integer", pl.Int64()),
    "float": SqliteType("REAL", "REAL", "the IEEE double; NaN is stored as NULL", pl.Float64()),
    "bool": SqliteType("INTEGER", "INTEGER", "1 for True, 0 for False", pl.Int64()),
    "str": SqliteType("TEXT", "TEXT", "the UTF-8 text", pl.String()),
    "bytes": SqliteType("BLOB", "BLOB", "the bytes", pl.Binary()),
    "DateTimeNaive": SqliteType("TEXT", "TEXT", "YYYY-MM-DDTHH:MM:SS.fffffffff", pl.String()),
    "DateTimeUtc": SqliteType("TEXT", "TEXT", "YYYY-MM-DDTHH:MM:SS.fffffffff+0000", pl.String()),
    "Duration": SqliteType("INTEGER", "INTEGER", "nanoseconds", pl.Int64()),
    "Pointer": SqliteType("TEXT", "TEXT", "^ followed by 26 base-32 digits", pl.String()),
    "Json": SqliteType("TEXT", "TEXT", "compact JSON text", pl.String()),
    "tuple": SqliteType("TEXT", "TEXT", "JSON array of the elements", pl.String()),
    "list": SqliteType("TEXT", "TEXT", "JSON array of the elements", pl.String()),
    "np.ndarray": SqliteType("TEXT", "TEXT", '{"shape":[...],"elements":[...]} (row-major)',
                             pl.String()),
}
"""deltaflow type → SQLite storage. ``Optional[T]`` is stored as ``T``, with NULL for None.
``Any`` and ``PyObjectWrapper`` have no mapping (they are rejected when the pipeline is defined).

Elements inside JSON arrays use the shared JSON conventions of ``io/_core/serialization``:
bytes as base64 strings, datetimes as the texts above, durations as integer nanoseconds,
pointers as strings.
"""

_AFFINITY_OF_STORAGE = {"INTEGER": "INTEGER", "REAL": "REAL", "TEXT": "TEXT", "BLOB": "BLOB"}


def mapping_key(dtype: t.DType) -> str | None:
    """The :data:`TYPE_MAPPING` key of ``dtype`` (None when the type cannot be stored)."""
    base = dtype.strip_optional()
    if isinstance(base, t.Tuple):
        return "tuple"
    if isinstance(base, t.List):
        return "list"
    if isinstance(base, t.Array):
        return "np.ndarray"
    name = base.name  # the same for every pointer type: Pointer
    return name if name in TYPE_MAPPING else None


def _sqlite_type(dtype: t.DType) -> SqliteType:
    key = mapping_key(dtype)
    if key is None:  # checked when the pipeline is defined; kept as a guard
        raise TypeError(f"type {dtype!r} has no SQLite mapping")
    return TYPE_MAPPING[key]


def _check_mappable(connector: str, columns: dict[str, t.DType]) -> None:
    bad = {name: dtype for name, dtype in columns.items() if mapping_key(dtype) is None}
    if bad:
        listed = ", ".join(f"{name!r} ({dtype!r})" for name, dtype in bad.items())
        supported = ", ".join(TYPE_MAPPING)
        raise TypeError(f"{connector}: column(s) {listed} have a type with no SQLite mapping; "
                        f"supported types are {supported} (and Optional of them). Convert "
                        "such columns, e.g. to str or pw.Json, before using the connector.")


# --- encoding: deltaflow values -> SQLite values ----------------------------------------------

_NAIVE_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f"
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f%z"


def _array_json(value: np.ndarray) -> dict[str, Any]:
    return {"shape": list(value.shape), "elements": value.ravel().tolist()}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _encode_object(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if key == "Json":
        return _dumps(value.value if isinstance(value, t.Json) else value)
    if key == "np.ndarray":
        return _dumps(_array_json(np.asarray(value)))
    return _dumps(json_value(value))


def encode_column(series: pl.Series, dtype: t.DType) -> pl.Series:
    """The SQLite values of a column (a series of Int64, Float64, String or Binary)."""
    key = mapping_key(dtype)
    if key in ("int", "float", "str", "bytes"):
        return series
    if key == "bool":
        return series.cast(pl.Int64)
    if key == "Duration":
        return series.cast(pl.Int64)
    if key == "DateTimeNaive":
        return series.dt.strftime(_NAIVE_FORMAT)
    if key == "DateTimeUtc":
        return series.dt.convert_time_zone("UTC").dt.strftime(_UTC_FORMAT)
    if key == "Pointer":
        return pl.Series(series.name, [None if v is None else json_value(t.Pointer(v))
                                       for v in series.to_list()], dtype=pl.String)
    assert key is not None
    return pl.Series(series.name, [_encode_object(v, key) for v in series.to_list()],
                     dtype=pl.String)


# --- decoding: SQLite values -> deltaflow values ----------------------------------------------


def _array_from_json(value: Any) -> np.ndarray:
    if isinstance(value, dict) and "shape" in value and "elements" in value:
        elements = value["elements"]
        kind = np.int64 if all(isinstance(e, int) and not isinstance(e, bool)
                               for e in elements) and elements else np.float64
        return np.array(elements, dtype=kind).reshape(value["shape"])
    if isinstance(value, list):
        return np.array(value)
    raise ConversionError(f"{value!r} is not an array (expected shape and elements)")


def _decode_object(text: str, dtype: t.DType, key: str) -> Any:
    if key == "Pointer":
        return parse_pointer(text)
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ConversionError(f"{text[:80]!r} is not JSON: {exc}") from None
    if key == "np.ndarray":
        return _array_from_json(parsed)
    if key == "Json":
        return t.Json(parsed)
    return convert_value(parsed, dtype.strip_optional())


def decode_column(raw: pl.Series, dtype: t.DType) -> tuple[pl.Series, pl.Series | None]:
    """The deltaflow column stored as ``raw``, and a mask of rows that could not be decoded."""
    key = mapping_key(dtype)
    name = raw.name
    if key in ("int", "float", "str", "bytes"):
        return raw.cast(dtype.to_polars()), None
    if key == "bool":
        return raw != 0, None
    if key == "Duration":
        return raw.cast(pl.Duration("ns")), None
    if key in ("DateTimeNaive", "DateTimeUtc"):
        text = raw.str.replace(" ", "T", literal=True, n=1)
        fmt = "%Y-%m-%dT%H:%M:%S%.f" + ("%z" if key == "DateTimeUtc" else "")
        parsed = text.str.to_datetime(fmt, time_unit="ns", strict=False)
        if key == "DateTimeUtc":
            parsed = parsed.dt.convert_time_zone("UTC")
        bad = parsed.is_null() & raw.is_not_null()
        return parsed.rename(name), bad if bad.any() else None
    assert key is not None
    values: list[Any] = []
    bad_rows: list[bool] = []
    for text in raw.to_list():
        if text is None:
            values.append(None)
            bad_rows.append(False)
            continue
        try:
            values.append(_decode_object(text, dtype, key))
            bad_rows.append(False)
        except (ConversionError, ValueError, TypeError):
            values.append(None)
            bad_rows.append(True)
    series = t.series_from_values(name, values, dtype)
    mask = pl.Series(name, bad_rows, dtype=pl.Boolean)
    return series, mask if mask.any() else None


# ==========================================================================================
# SQL helpers
# ==========================================================================================


def quote(identifier: str) -> str:
    """``identifier`` as an SQL quoted identifier (embedded double quotes doubled)."""
    if "\x00" in identifier:
        raise ValueError(f"identifier {identifier!r} contains a NUL character")
    return '"' + identifier.replace('"', '""') + '"'


def _affinity(declared: str) -> str:
    """SQLite's column affinity of a declared type (the rules of section 3.1 of its docs)."""
    upper = (declared or "").upper()
    if "INT" in upper:
        return "INTEGER"
    if "CHAR" in upper or "CLOB" in upper or "TEXT" in upper:
        return "TEXT"
    if "BLOB" in upper or upper == "":
        return "BLOB"
    if "REAL" in upper or "FLOA" in upper or "DOUB" in upper:
        return "REAL"
    return "NUMERIC"


def _affinity_fits(column_affinity: str, storage: str) -> bool:
    # BLOB ("none") affinity keeps any value as given; NUMERIC keeps integers and reals as
    # numbers. TEXT must not go into a numeric column (SQLite would turn "12" into 12).
    if column_affinity == "BLOB":
        return True
    if storage in ("INTEGER", "REAL"):
        return column_affinity in ("INTEGER", "REAL", "NUMERIC")
    return column_affinity == _AFFINITY_OF_STORAGE[storage]


def _is_busy(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _check_path(connector: str, path: PathLike | str, *, must_exist: bool) -> str:
    if not isinstance(path, str | PathLike):
        raise TypeError(f"{connector}: path must be a str or os.PathLike, got "
                        f"{type(path).__name__}")
    path_str = fspath(path)
    if path_str in ("", ":memory:"):
        raise ValueError(f"{connector}: path must name a database file, got {path_str!r}")
    if os.path.isdir(path_str):
        raise ValueError(f"{connector}: path {path_str!r} is a directory, not an SQLite "
                         "database file; pass the path of a file")
    if os.path.exists(path_str):
        try:
            with open(path_str, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise ValueError(f"{connector}: cannot open {path_str!r}: {exc}") from None
        if header and header != _SQLITE_HEADER:
            raise ValueError(f"{connector}: {path_str!r} is not an SQLite database (its first "
                             "bytes are not the SQLite header)")
    elif must_exist:
        raise ValueError(f"{connector}: database file {path_str!r} does not exist")
    else:
        parent = os.path.dirname(os.path.abspath(path_str))
        if not os.path.isdir(parent):
            raise ValueError(f"{connector}: directory {parent!r} of {path_str!r} does not "
                             "exist; create it first")
    return path_str


def _connect(path: str, *, create: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly)."""
    uri = "file:" + _uri_path(path) + ("?mode=rwc" if create else "?mode=rw")
    connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                 check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return connection


def _uri_path(path: str) -> str:
    from urllib.parse import quote as url_quote

    return url_quote(os.path.abspath(path))


@dataclass
class _TableInfo:
    kind: str  # "table" or "view"
    name: str
    columns: list[dict[str, Any]]  # PRAGMA table_xinfo rows as dicts
    unique_sets: list[frozenset[str]]  # lower-cased column sets of PRIMARY KEY/UNIQUE
    without_rowid: bool


def _table_info(connection: sqlite3.Connection, table_name: str) -> _TableInfo | None:
    row = connection.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name = ? COLLATE NOCASE", (table_name,)).fetchone()
    if row is None:
        return None
    kind, name, sql = row
    cursor = connection.execute(f"PRAGMA table_xinfo({quote(name)})")
    names = [d[0] for d in cursor.description]
    columns = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    columns = [c for c in columns if c.get("hidden", 0) in (0, 2, 3)]
    unique_sets: list[frozenset[str]] = []
    pk = [c["name"].lower() for c in sorted(columns, key=lambda c: c["pk"]) if c["pk"]]
    if pk:
        unique_sets.append(frozenset(pk))
    if kind == "table":
        for index in connection.execute(f"PRAGMA index_list({quote(name)})").fetchall():
            if index[2]:  # unique
                members = connection.execute(f"PRAGMA index_info({quote(index[1])})").fetchall()
                if all(m[2] is not None for m in members):
                    unique_sets.append(frozenset(m[2].lower() for m in members))
    without_rowid = kind == "table" and "WITHOUT ROWID" in (sql or "").upper().replace("\n", " ")
    return _TableInfo(kind, name, columns, unique_sets, without_rowid)


# ==========================================================================================
# Writing
# ==========================================================================================


@dataclass
class _WriteSpec:
    """Everything the writer needs to know, fixed when the pipeline is defined."""

    path: str
    table_name: str
    columns: dict[str, t.DType]
    snapshot: bool
    primary_key: list[str]
    init_mode: str
    max_batch_size: int | None
    connector: str

    @property
    def stored_columns(self) -> list[tuple[str, SqliteType, bool]]:
        """(name, storage, nullable) of every column of the destination table."""
        out = [(n, _sqlite_type(d), d.is_optional) for n, d in self.columns.items()]
        if not self.snapshot:
            out += [("time", TYPE_MAPPING["int"], False), ("diff", TYPE_MAPPING["int"], False)]
        return out


@dataclass
class _Payload:
    """A formatted delta batch: SQLite-ready columns (+ time/diff, or ``_diff``)."""

    time: int
    frame: pl.DataFrame


class SqliteFormatter(Formatter):
    """Turns a delta batch into SQLite parameter rows, column by column in Polars."""

    def __init__(self, spec: _WriteSpec) -> None:
        self.spec = spec
        self._names = list(spec.columns)

    def format(self, batch: pl.DataFrame, time: int) -> _Payload:
        columns = [encode_column(batch[n], d) for n, d in self.spec.columns.items()]
        for name, dtype in self.spec.columns.items():
            # NaN becomes NULL in SQLite; a non-Optional column would refuse it with a
            # cryptic constraint error at commit, so name the column and row here.
            if mapping_key(dtype) == "float" and not dtype.is_optional:
                nan = batch[name].is_nan()
                if nan.any():
                    row = batch.filter(nan).row(0, named=True)
                    raise ValueError(f"{self.spec.connector}: column {name!r} (float) holds "
                                     f"NaN in row {row}; SQLite stores NaN as NULL, which a "
                                     "non-Optional column does not accept. Declare the column "
                                     "Optional or replace NaN.")
        diff = batch[DIFF]
        if self.spec.snapshot:
            frame = pl.DataFrame([*columns, diff])
        else:
            times = pl.repeat(time, batch.height, dtype=pl.Int64, eager=True).rename("time")
            frame = pl.DataFrame([*columns, times, diff.rename("diff")])
        return _Payload(time, frame)


class SqliteWriter(Writer):
    """Writes formatted batches to an SQLite table, one transaction per minibatch.

    ``stream_of_changes`` rows are appended; with ``max_batch_size`` a minibatch larger than
    that is committed in several transactions of at most ``max_batch_size`` rows (an append-only
    log has no intermediate state that could be wrong, only a shorter one).

    ``snapshot`` minibatches are applied in ONE transaction whatever their size: deletions of
    the retracted keys first, then upserts of the inserted rows. Committing part of a minibatch
    would let readers see a state that never existed (e.g. an update's deletion without its
    insertion), so ``max_batch_size`` there only bounds the rows sent per ``executemany`` call.

    A transaction that fails because the database is busy is rolled back and retried from
    its start (up to :data:`COMMIT_ATTEMPTS` times); any other failure is rolled back and
    raised. Rows are dropped from the buffer only after their transaction committed, so
    nothing committed is sent again and nothing uncommitted is forgotten.
    """

    def __init__(self, spec: _WriteSpec) -> None:
        self.spec = spec
        self._connection: sqlite3.Connection | None = None
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._last_flushed: int | None = None
        self._resumed = False
        self._resume_after: int | None = None
        self._prepare_statements()

    # --- statements ------------------------------------------------------------------------
    def _prepare_statements(self) -> None:
        spec = self.spec
        table = quote(spec.table_name)
        names = [n for n, _, _ in spec.stored_columns]
        marks = ", ".join("?" for _ in names)
        insert = f"INSERT INTO {table} ({', '.join(quote(n) for n in names)}) VALUES ({marks})"
        if spec.snapshot:
            keys = ", ".join(quote(k) for k in spec.primary_key)
            others = [n for n in spec.columns if n not in spec.primary_key]
            if others:
                updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in others)
                insert += f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
            else:
                insert += f" ON CONFLICT ({keys}) DO NOTHING"
            where = " AND ".join(f"{quote(k)} = ?" for k in spec.primary_key)
            self._delete_sql = f"DELETE FROM {table} WHERE {where}"
        self._insert_sql = insert

    def _create_sql(self, if_not_exists: bool) -> str:
        spec = self.spec
        parts = [f"{quote(n)} {s.declared}{'' if nullable else ' NOT NULL'}"
                 for n, s, nullable in spec.stored_columns]
        if spec.snapshot:
            parts.append(f"PRIMARY KEY ({', '.join(quote(k) for k in spec.primary_key)})")
        guard = "IF NOT EXISTS " if if_not_exists else ""
        return f"CREATE TABLE {guard}{quote(spec.table_name)} ({', '.join(parts)})"

    # --- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Connect, switch the database to WAL and prepare the table as ``init_mode`` says."""
        spec = self.spec
        connection = _connect(spec.path, create=True)
        self._connection = connection
        try:
            self._switch_to_wal(connection)
            self._run_transaction(self._init_table)
            if self._resume_after is not None:
                self._run_transaction(self._roll_back_after)
            elif not spec.snapshot:
                # Rows already there belong to earlier runs: a crash of this run before its
                # first checkpoint removes only rows of later times (docs/persistence.md).
                latest = connection.execute(f"SELECT MAX({quote('time')}) FROM "
                                            f"{quote(spec.table_name)}").fetchone()[0]
                self._last_flushed = int(latest) if latest is not None else -1
        except BaseException:
            self.abort()
            raise

    def _switch_to_wal(self, connection: sqlite3.Connection) -> None:
        # WAL lets readers in other processes read while this writer writes. Switching needs a
        # moment with no other writer; if the database stays busy, go on in its current mode.
        spec = self.spec
        mode: Any = None
        delay = 0.05
        for _ in range(COMMIT_ATTEMPTS):
            try:
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()
                break
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                _time.sleep(delay)
                delay *= 2
        if mode is None or str(mode[0]).lower() != "wal":
            logger.warning("%s: could not switch %s to WAL journaling (got %s); concurrent "
                           "readers may wait for writes", spec.connector, spec.path, mode)

    def _init_table(self, connection: sqlite3.Connection) -> None:
        spec = self.spec
        # A run resuming after a crash continues the table the crashed run wrote.
        if spec.init_mode == "replace" and not self._resumed:
            info = _table_info(connection, spec.table_name)
            if info is not None and info.kind == "view":
                raise ValueError(f"{spec.connector}: {spec.table_name!r} is a view; init_mode="
                                 "'replace' only drops tables")
            connection.execute(f"DROP TABLE IF EXISTS {quote(spec.table_name)}")
            connection.execute(self._create_sql(if_not_exists=False))
            return
        info = _table_info(connection, spec.table_name)
        if info is None:
            if spec.init_mode == "create_if_not_exists":
                connection.execute(self._create_sql(if_not_exists=False))
                return
            raise ValueError(f"{spec.connector}: table {spec.table_name!r} does not exist in "
                             f"{spec.path!r}; create it, or pass init_mode="
                             "'create_if_not_exists' or 'replace'")
        self._check_existing(info)

    def _check_existing(self, info: _TableInfo) -> None:
        spec = self.spec
        where = f"{spec.connector}: existing table {info.name!r} in {spec.path!r}"
        if info.kind != "table":
            raise ValueError(f"{where} is a view; write to a table")
        present = {c["name"].lower(): c for c in info.columns}
        problems = []
        for name, storage, _ in spec.stored_columns:
            column = present.pop(name.lower(), None)
            if column is None:
                problems.append(f"column {name!r} is missing")
            elif not _affinity_fits(_affinity(column["type"]), storage.storage):
                problems.append(f"column {name!r} is declared {column['type'] or 'untyped'!r}, "
                                f"which does not keep {storage.storage} values unchanged "
                                f"(declare it {storage.declared})")
        for column in present.values():
            if column["notnull"] and column["dflt_value"] is None and not column["pk"]:
                problems.append(f"column {column['name']!r} is NOT NULL without a default and "
                                "the table being written has no such column")
        if spec.snapshot:
            wanted = frozenset(k.lower() for k in spec.primary_key)
            if wanted not in info.unique_sets:
                problems.append(f"snapshot mode needs a PRIMARY KEY or UNIQUE constraint on "
                                f"exactly {spec.primary_key}")
        if problems:
            raise ValueError(f"{where} does not fit the table being written: "
                             + "; ".join(problems)
                             + ". Fix the table, or use init_mode='replace'.")

    def write(self, payload: _Payload) -> None:
        if payload.frame.height == 0:
            return
        self._pending.append(payload.frame)
        self._pending_rows += payload.frame.height
        limit = self.spec.max_batch_size
        if not self.spec.snapshot and limit is not None and self._pending_rows >= limit:
            self._commit_pending(full_chunks_only=True)

    def flush(self, time: int) -> None:
        self._commit_pending(full_chunks_only=False)
        self._last_flushed = time

    def position(self) -> int | None:
        """The last time committed: a restart removes the rows of later times (in
        ``stream_of_changes`` mode) before the restarted run writes them again."""
        return self._last_flushed

    def resume(self, position: Any) -> None:
        """Called before :meth:`open` when the run resumes after a crash."""
        self._resumed = True
        if not self.spec.snapshot and isinstance(position, int):
            self._resume_after = position

    def _roll_back_after(self, connection: sqlite3.Connection) -> None:
        # Rows of times after the checkpoint were written by the crashed run; the restarted
        # run writes those changes again (at new times). Snapshot tables need nothing: their
        # upserts and deletions by key give the same table when applied again.
        removed = connection.execute(f"DELETE FROM {quote(self.spec.table_name)} WHERE "
                                     f"{quote('time')} > ?", (self._resume_after,)).rowcount
        if removed:
            logger.info("%s: removed %d row(s) of %r written after the checkpoint (they are "
                        "written again by this run)", self.spec.connector, removed,
                        self.spec.table_name)

    def close(self) -> None:
        try:
            self._commit_pending(full_chunks_only=False)
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def abort(self) -> None:
        connection, self._connection = self._connection, None
        self._pending, self._pending_rows = [], 0
        if connection is not None:
            try:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            connection.close()

    # --- transactions ----------------------------------------------------------------------
    def _commit_pending(self, *, full_chunks_only: bool) -> None:
        if not self._pending:
            return
        frame = pl.concat(self._pending, how="vertical") if len(self._pending) > 1 \
            else self._pending[0]
        if self.spec.snapshot:
            self._run_transaction(lambda c: self._apply_snapshot(c, frame))
            self._pending, self._pending_rows = [], 0
            return
        limit = self.spec.max_batch_size or frame.height
        start = 0
        while frame.height - start >= limit or (not full_chunks_only and start < frame.height):
            chunk = frame.slice(start, limit)

            def insert(cursor: Any, chunk: pl.DataFrame = chunk) -> Any:
                return cursor.executemany(self._insert_sql, chunk.iter_rows())

            self._run_transaction(insert)
            start += chunk.height
        rest = frame.slice(start)
        self._pending = [rest] if rest.height else []
        self._pending_rows = rest.height

    def _apply_snapshot(self, connection: sqlite3.Connection, frame: pl.DataFrame) -> None:
        step = self.spec.max_batch_size or max(frame.height, 1)
        deletions = frame.filter(pl.col(DIFF) < 0).select(self.spec.primary_key)
        insertions = frame.filter(pl.col(DIFF) > 0).drop(DIFF)
        for part in deletions.iter_slices(step):
            connection.executemany(self._delete_sql, part.iter_rows())
        for part in insertions.iter_slices(step):
            connection.executemany(self._insert_sql, part.iter_rows())

    def _run_transaction(self, body: Callable[[sqlite3.Connection], Any]) -> None:
        connection = self._connection
        if connection is None:
            raise RuntimeError(f"{self.spec.connector}: the connection is closed")
        delay = 0.05
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                connection.execute("BEGIN IMMEDIATE")
                body(connection)
                connection.execute("COMMIT")
                return
            except BaseException as exc:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                if _is_busy(exc) and attempt < COMMIT_ATTEMPTS:
                    logger.warning("%s: database busy (%s); transaction rolled back, retrying "
                                   "(attempt %d of %d)", self.spec.connector, exc, attempt + 1,
                                   COMMIT_ATTEMPTS)
                    _time.sleep(delay)
                    delay *= 2
                    continue
                if isinstance(exc, sqlite3.Error):
                    raise RuntimeError(
                        f"{self.spec.connector}: writing to table {self.spec.table_name!r} of "
                        f"{self.spec.path!r} failed and the transaction was rolled back: "
                        f"{type(exc).__name__}: {exc}") from exc
                raise


class _SqliteOutputSession(OutputSession):
    """An output session that prepares the destination table before the run starts, so that
    a missing or unfitting table stops the run before any input is read."""

    writer: SqliteWriter

    def start(self) -> None:
        try:
            self.writer.open()
        except Exception as exc:
            raise ConnectorError(self.name, str(exc)) from exc
        super().start()


def _column_name(connector: str, table: Any, column: Any) -> str:
    from deltaflow.expressions.base import ColumnReference

    if isinstance(column, ColumnReference):
        owner = column.table
        if owner is not table and owner.__class__.__name__ == "Table":
            raise ValueError(f"{connector}: primary_key column {column.name!r} belongs to "
                             "another table; use columns of the table being written")
        name = column.name
    elif isinstance(column, str):
        name = column
    else:
        raise TypeError(f"{connector}: primary_key must be a list of columns (e.g. "
                        f"[table.key]), got an item of type {type(column).__name__}")
    if name == "id":
        raise ValueError(f"{connector}: the row id is not written; primary_key must name "
                         "written columns")
    if name not in table._columns:
        raise ValueError(f"{connector}: primary_key column {name!r} is not a column of the "
                         f"table; its columns are {list(table._columns)}")
    return name


def write(
    table: Any,
    path: PathLike | str,
    table_name: str,
    *,
    max_batch_size: int | None = None,
    init_mode: Literal["default", "create_if_not_exists", "replace"] = "default",
    output_table_type: Literal["stream_of_changes", "snapshot"] = "stream_of_changes",
    primary_key: list[Any] | None = None,
    name: str | None = None,
) -> None:
    """Write ``table`` to the table ``table_name`` of the SQLite database at ``path``.

    ``output_table_type="stream_of_changes"`` appends every change as a row with two extra
    INTEGER columns: ``time`` (the minibatch time) and ``diff`` (1 insertion, -1 deletion).
    ``"snapshot"`` keeps the destination equal to the table's current contents: rows are
    upserted on ``primary_key`` (required in this mode, rejected otherwise) and deleted when
    retracted, each minibatch in one transaction.

    ``init_mode``: ``"default"`` writes to an existing table whose columns must fit;
    ``"create_if_not_exists"`` creates the table from the schema when missing (with a PRIMARY
    KEY in snapshot mode); ``"replace"`` drops and re-creates it when the run starts.
    ``max_batch_size`` bounds the rows per transaction (see :class:`SqliteWriter` for how
    snapshot mode stays atomic). Value encodings are those of :data:`TYPE_MAPPING`. The file is
    created if missing and switched to WAL journaling so readers never block the writer.
    """
    from deltaflow.table import Table, add_output

    connector = f"pw.io.sqlite.write({table_name!r})" if isinstance(table_name, str) \
        else "pw.io.sqlite.write"
    if not isinstance(table, Table):
        raise TypeError(f"{connector}: table must be a deltaflow Table, got "
                        f"{type(table).__name__}")
    if not isinstance(table_name, str) or not table_name:
        raise ValueError(f"{connector}: table_name must be a non-empty string, got "
                         f"{table_name!r}")
    quote(table_name)
    path_str = _check_path(connector, path, must_exist=False)
    if init_mode not in ("default", "create_if_not_exists", "replace"):
        raise ValueError(f"{connector}: init_mode must be 'default', 'create_if_not_exists' "
                         f"or 'replace', got {init_mode!r}")
    if output_table_type not in ("stream_of_changes", "snapshot"):
        raise ValueError(f"{connector}: output_table_type must be 'stream_of_changes' or "
                         f"'snapshot', got {output_table_type!r}")
    if max_batch_size is not None and (not isinstance(max_batch_size, int)
                                       or isinstance(max_batch_size, bool)
                                       or max_batch_size < 1):
        raise ValueError(f"{connector}: max_batch_size must be a positive integer or None, "
                         f"got {max_batch_size!r}")
    columns = dict(table._columns)
    _check_mappable(connector, columns)
    for column in columns:
        quote(column)
    by_case: dict[str, list[str]] = {}
    for column in columns:
        by_case.setdefault(column.lower(), []).append(column)
    clashes = [names for names in by_case.values() if len(names) > 1]
    if clashes:
        raise ValueError(f"{connector}: column names {clashes} differ only in case; SQLite "
                         "compares names case-insensitively, so rename them")
    snapshot = output_table_type == "snapshot"
    keys: list[str] = []
    if snapshot:
        if not primary_key:
            raise ValueError(f"{connector}: output_table_type='snapshot' requires primary_key "
                             "(the columns identifying a row, e.g. primary_key=[table.key])")
        if not isinstance(primary_key, list | tuple):
            primary_key = [primary_key]
        keys = [_column_name(connector, table, c) for c in primary_key]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"{connector}: primary_key repeats column(s) {repeated}")
        optional = [k for k in keys if columns[k].is_optional]
        if optional:
            raise ValueError(f"{connector}: primary_key column(s) {optional} are Optional; a "
                             "NULL key cannot identify a row (DELETE ... WHERE key = NULL "
                             "matches nothing). Use non-Optional key columns.")
    else:
        if primary_key is not None:
            raise ValueError(f"{connector}: primary_key is only used with output_table_type="
                             "'snapshot'; remove it for 'stream_of_changes'")
        reserved = [c for c in columns if c.lower() in ("time", "diff")]
        if reserved:
            raise ValueError(f"{connector}: column(s) {reserved} clash with the 'time' and "
                             "'diff' columns added in stream_of_changes mode; rename them or "
                             "use output_table_type='snapshot'")
    if snapshot and sqlite3.sqlite_version_info < (3, 24, 0):
        raise RuntimeError(f"{connector}: snapshot mode needs SQLite 3.24 or newer (upserts); "
                           f"this Python has SQLite {sqlite3.sqlite_version}")
    spec = _WriteSpec(path=path_str, table_name=table_name, columns=columns, snapshot=snapshot,
                      primary_key=keys, init_mode=init_mode, max_batch_size=max_batch_size,
                      connector=connector)
    session = _SqliteOutputSession(name or connector, SqliteWriter(spec), SqliteFormatter(spec))
    add_output(table, session)


# ==========================================================================================
# Reading
# ==========================================================================================


@dataclass
class _ReadSpec:
    path: str
    table_name: str  # as stored in the database
    columns: dict[str, t.DType]
    stored_names: dict[str, str]  # schema column -> column name as stored
    primary_key: list[str]
    connector: str


@dataclass
class _Snapshot:
    """The raw (as stored) rows last emitted, keyed by rowid or by the primary key."""

    frame: pl.DataFrame | None = None
    data_version: int | None = None
    errors_logged: set[Any] = field(default_factory=set)


class SqliteReader(Reader):
    """Polls an SQLite table and reports how it changed since the previous poll.

    Each :meth:`read` runs one ``SELECT`` (a consistent snapshot) unless ``PRAGMA
    data_version`` shows that nobody committed since the last poll. The new snapshot is
    compared with the previous one in Polars on the stored values, keyed by the schema's
    primary key or by SQLite's rowid; only changed rows are decoded. The result is one
    ``Data(RowsContext(kind="column"))`` whose ``_kind`` column says ``insert`` or ``delete``
    (an update is both) and whose ``keys`` are the row ids. Rows whose stored values do not
    fit the schema are skipped and logged. In static mode the first poll is followed by
    ``Finished``.
    """

    poll_interval_s = 0.05

    def __init__(self, spec: _ReadSpec, *, static: bool) -> None:
        self.spec = spec
        self.static = static
        self._connection: sqlite3.Connection | None = None
        self._state = _Snapshot()
        self._done = False
        key_columns = [spec.stored_names[k] for k in spec.primary_key]
        select = [f"{quote(_ROWID_SOURCE)} AS {quote(_ROWID)}"] if not spec.primary_key else []
        select += [f"{quote(spec.stored_names[c])}" for c in spec.columns]
        self._select_sql = f"SELECT {', '.join(select)} FROM {quote(spec.table_name)}"
        self._key = list(spec.primary_key) if key_columns else [_ROWID]
        self._raw_types = {c: _sqlite_type(d).raw for c, d in spec.columns.items()}
        if not spec.primary_key:
            self._raw_types = {_ROWID: pl.Int64(), **self._raw_types}

    def read(self) -> ReadEvent | None:
        if self._done:
            return Finished()
        if self._connection is None:
            self._connection = _connect(self.spec.path, create=False)
        try:
            # data_version changes whenever another connection commits; read it before the
            # SELECT so that a commit in between only causes one more (harmless) read.
            version = self._connection.execute("PRAGMA data_version").fetchone()[0]
            if version == self._state.data_version and not self.static:
                return None
            rows = self._connection.execute(self._select_sql).fetchall()
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                logger.debug("%s: database busy, polling again later", self.spec.connector)
                return None
            raise RuntimeError(f"{self.spec.connector}: reading table {self.spec.table_name!r} "
                               f"of {self.spec.path!r} failed: {exc}") from exc
        self._state.data_version = version
        if self.static:
            self._done = True
        context = self._changes(self._raw_frame(rows))
        if context is None:
            return Finished() if self.static else None
        return Data(context, offset=None)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # --- snapshots -------------------------------------------------------------------------
    def _raw_frame(self, rows: list[tuple]) -> pl.DataFrame:
        names = list(self._raw_types)
        if not rows:
            return pl.DataFrame(schema=self._raw_types)
        try:
            return pl.DataFrame(rows, schema=self._raw_types, orient="row", strict=True)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            pass
        # Some stored value has an unexpected storage class: check cell by cell.
        columns = list(zip(*rows, strict=True))
        series = []
        bad = np.zeros(len(rows), dtype=bool)
        for index, name in enumerate(names):
            raw_type = self._raw_types[name]
            values, wrong = _coerce_raw(columns[index], raw_type)
            bad |= wrong
            series.append(pl.Series(name, values, dtype=raw_type))
        frame = pl.DataFrame(series)
        if bad.any():
            self._log_bad(frame.filter(pl.Series(bad)), "values of an unexpected storage class")
            frame = frame.filter(~pl.Series(bad))
        return frame

    def _changes(self, new: pl.DataFrame) -> RowsContext | None:
        key = self._key
        duplicated = new.select(key).is_duplicated() if self.spec.primary_key else None
        if duplicated is not None and duplicated.any():
            first = new.with_row_index("__n").group_by(key, maintain_order=True) \
                .agg(pl.col("__n").first())["__n"]
            repeated = new.with_row_index("__n").filter(~pl.col("__n").is_in(first.implode()))
            self._log_bad(repeated.drop("__n"), "a primary key already used by another row")
            new = new[first.to_list()]
        old = self._state.frame
        values = [c for c in new.columns if c not in key]
        if old is None or old.height == 0:
            inserted, deleted = new, new.head(0)
        elif new.height == 0:
            inserted, deleted = new, old
        else:
            joined = new.with_columns(pl.lit(True).alias("__new")).join(
                old.with_columns(pl.lit(True).alias("__old")), on=key, how="full",
                coalesce=True, suffix="__was", nulls_equal=True)
            changed = pl.lit(False)
            for column in values:
                changed = changed | pl.col(column).ne_missing(pl.col(column + "__was"))
            both = pl.col("__new").is_not_null() & pl.col("__old").is_not_null()
            was_changed = both & changed
            inserted = joined.filter(pl.col("__old").is_null() | was_changed).select(new.columns)
            deleted = joined.filter(pl.col("__new").is_null() | was_changed).select(
                [*key, *[pl.col(c + "__was").alias(c) for c in values]]).select(new.columns)
        inserted_typed, ok = self._decode(inserted)
        if ok is not None:
            self._log_bad(inserted.filter(~ok), "values that do not fit the schema")
            failed_keys = inserted.filter(~ok).select(key)
            new = new.join(failed_keys, on=key, how="anti", nulls_equal=True)
            inserted_typed = inserted_typed.filter(ok)
        deleted_typed, _ = self._decode(deleted)
        self._state.frame = new
        if inserted_typed.height == 0 and deleted_typed.height == 0:
            return None
        frame = pl.concat([
            deleted_typed.with_columns(pl.lit("delete").alias(_KIND)),
            inserted_typed.with_columns(pl.lit("insert").alias(_KIND)),
        ], how="vertical")
        keys = frame[ID]
        return RowsContext(frame=frame.drop(ID), kind="column", keys=keys)

    def _decode(self, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series | None]:
        """Typed columns + ``_id`` of raw rows, and a mask of the rows that decoded (if not
        all did)."""
        series = []
        bad = pl.Series("bad", [False] * raw.height, dtype=pl.Boolean)
        any_bad = False
        for name, dtype in self.spec.columns.items():
            column, wrong = decode_column(raw[name], dtype)
            if wrong is not None:
                bad = bad | wrong
                any_bad = True
            if not dtype.is_optional:
                nulls = column.is_null()
                if nulls.any():
                    bad = bad | nulls
                    any_bad = True
            series.append(column.rename(name))
        typed = pl.DataFrame(series) if series else pl.DataFrame()
        if self.spec.primary_key:
            ids = hash_columns(typed, [(k, self.spec.columns[k]) for k in self.spec.primary_key])
        elif raw.height:
            ids = raw.select(id_expr([(pl.col(_ROWID), t.INT)], salt="sqlite-rowid")
                             .alias(ID)).to_series()
        else:
            ids = pl.Series(ID, [], dtype=pl.UInt128)
        typed = typed.with_columns(ids.alias(ID)) if typed.width else pl.DataFrame([ids])
        return typed, (~bad if any_bad else None)

    def _log_bad(self, rows: pl.DataFrame, why: str) -> None:
        if rows.height == 0:
            return
        sample = rows.head(3).rows(named=True)
        signature = (why, str(sample))
        if signature in self._state.errors_logged:
            return
        self._state.errors_logged.add(signature)
        logger.error("%s: skipped %d row(s) of table %r with %s, e.g. %s", self.spec.connector,
                     rows.height, self.spec.table_name, why, sample)


def _coerce_raw(values: Sequence[Any], raw_type: pl.DataType) -> tuple[list[Any], np.ndarray]:
    """Values kept as ``raw_type`` where they have the matching storage class; others are
    marked wrong (SQLite lets any column hold any storage class)."""
    wrong = np.zeros(len(values), dtype=bool)
    out: list[Any] = []
    for index, value in enumerate(values):
        if value is None:
            out.append(None)
        elif raw_type == pl.Int64 and isinstance(value, int):
            out.append(value)
        elif raw_type == pl.Float64 and isinstance(value, int | float):
            out.append(float(value))
        elif raw_type == pl.String and isinstance(value, str) or raw_type == pl.Binary and isinstance(value, bytes):
            out.append(value)
        else:
            out.append(None)
            wrong[index] = True
    return out, wrong


def read(
    path: PathLike | str,
    table_name: str,
    schema: Any,
    *,
    autocommit_duration_ms: int | None = 1500,
    name: str | None = None,
    max_backlog_size: int | None = None,
    debug_data: Any = None,
    mode: Literal["streaming", "static"] = "streaming",
) -> Any:
    """Read the table or view ``table_name`` of the SQLite database at ``path``.

    The table is read once, then (``mode="streaming"``, the default) polled: rows inserted,
    updated or deleted by any process show up as insertions, updates and deletions. Rows are
    identified by the schema's primary key columns (the table must have a PRIMARY KEY or
    UNIQUE constraint on them; views are trusted) or else by SQLite's rowid.
    ``mode="static"`` (a deltaflow extension) reads once and ends. Values are decoded as
    :data:`TYPE_MAPPING` describes; datetimes may also use a space instead of ``T``.

    Polls run every 50 ms and cost one ``PRAGMA data_version`` when nothing was committed;
    the changes found are committed to the pipeline every ``autocommit_duration_ms`` (one
    poll's changes always together). ``max_backlog_size`` pauses polling while that many rows
    wait in the pipeline. ``debug_data`` is accepted for compatibility and ignored.
    """
    connector = f"pw.io.sqlite.read({table_name!r})" if isinstance(table_name, str) \
        else "pw.io.sqlite.read"
    schema = check_schema(schema, connector)
    if not isinstance(table_name, str) or not table_name:
        raise ValueError(f"{connector}: table_name must be a non-empty string, got "
                         f"{table_name!r}")
    static = check_mode(mode, connector) == "static"
    autocommit = check_autocommit(autocommit_duration_ms, connector)
    backlog = check_backlog(max_backlog_size, connector)
    columns = schema.dtypes()
    _check_mappable(connector, columns)
    path_str = _check_path(connector, path, must_exist=True)
    primary_key = list(schema.primary_key_columns() or [])
    spec = _inspect_source(connector, path_str, table_name, columns, primary_key)
    return reader_table(
        schema=schema, reader_factory=lambda: SqliteReader(spec, static=static),
        parser=TypedRowsParser(column_specs(schema, exclude=())), name=name or connector,
        autocommit_duration_ms=autocommit, max_backlog_size=backlog, named=name is not None)


def _inspect_source(connector: str, path: str, table_name: str, columns: dict[str, t.DType],
                    primary_key: list[str]) -> _ReadSpec:
    """Check, before the run, that the table exists and can be read with the schema."""
    try:
        connection = _connect(path, create=False)
    except sqlite3.Error as exc:
        raise ValueError(f"{connector}: cannot open {path!r}: {exc}") from None
    try:
        try:
            connection.execute("PRAGMA schema_version").fetchone()
            info = _table_info(connection, table_name)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{connector}: {path!r} is not a readable SQLite database: "
                             f"{exc}") from None
        if info is None:
            tables = [r[0] for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            raise ValueError(f"{connector}: {path!r} has no table or view {table_name!r}; it "
                             f"has {tables or 'none'}")
        stored = {c["name"].lower(): c["name"] for c in info.columns}
        missing = [c for c in columns if c.lower() not in stored]
        if missing:
            raise ValueError(f"{connector}: the schema's column(s) {missing} are not in "
                             f"{info.kind} {info.name!r}, whose columns are "
                             f"{[c['name'] for c in info.columns]}")
        stored_names = {c: stored[c.lower()] for c in columns}
        if primary_key:
            wanted = frozenset(k.lower() for k in primary_key)
            if info.kind == "table" and wanted not in info.unique_sets:
                raise ValueError(f"{connector}: the schema's primary key {primary_key} is not "
                                 f"a PRIMARY KEY or UNIQUE constraint of table {info.name!r}, "
                                 "so rows sharing a key would be confused; add the constraint "
                                 "or drop primary_key from the schema (rows are then "
                                 "identified by rowid)")
        else:
            shadowed = [c["name"] for c in info.columns if c["name"].lower() in _ROWID_ALIASES]
            if info.kind == "view" or info.without_rowid or shadowed:
                reason = ("it is a view" if info.kind == "view" else
                          "it is a WITHOUT ROWID table" if info.without_rowid else
                          f"its column(s) {shadowed} hide SQLite's rowid")
                raise ValueError(f"{connector}: {info.name!r} has no usable rowid ({reason}); "
                                 "declare the identifying columns in the schema with "
                                 "pw.column_definition(primary_key=True)")
        return _ReadSpec(path=path, table_name=info.name, columns=columns,
                         stored_names=stored_names, primary_key=primary_key,
                         connector=connector)
    finally:
        connection.close()
