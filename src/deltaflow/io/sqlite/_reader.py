"""``pw.io.sqlite.read``: polls a table and emits the difference between snapshots.

The whole table is read first, then polled: insertions, updates (as delete+insert) and
deletions between consecutive snapshots are emitted. The reader runs on the shared input
session (``io/_core/input_session.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Literal

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._ids import hash_columns, id_expr
from deltaflow.engine.batch import ID
from deltaflow.error_display import user_call
from deltaflow.io._core.base import Data, Finished, Reader, ReadEvent, RowsContext
from deltaflow.io._core.formats import TypedRowsParser, column_specs
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_backlog,
    check_mode,
    check_schema,
    reader_table,
)
from deltaflow.io.sqlite._database import (
    _check_path,
    _connect,
    _is_busy,
    _table_info,
    quote,
)
from deltaflow.io.sqlite._settings import _KIND, _ROWID, _ROWID_ALIASES, _ROWID_SOURCE, logger
from deltaflow.io.sqlite._type_table import _check_mappable, _sqlite_type, decode_column


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
            raise RuntimeError(
                f"{self.spec.connector}: reading table {self.spec.table_name!r} "
                f"of {self.spec.path!r} failed: {exc}"
            ) from exc
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
            first = (
                new.with_row_index("__n")
                .group_by(key, maintain_order=True)
                .agg(pl.col("__n").first())["__n"]
            )
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
                old.with_columns(pl.lit(True).alias("__old")),
                on=key,
                how="full",
                coalesce=True,
                suffix="__was",
                nulls_equal=True,
            )
            changed = pl.lit(False)
            for column in values:
                changed = changed | pl.col(column).ne_missing(pl.col(column + "__was"))
            both = pl.col("__new").is_not_null() & pl.col("__old").is_not_null()
            was_changed = both & changed
            inserted = joined.filter(pl.col("__old").is_null() | was_changed).select(new.columns)
            deleted = (
                joined.filter(pl.col("__new").is_null() | was_changed)
                .select([*key, *[pl.col(c + "__was").alias(c) for c in values]])
                .select(new.columns)
            )
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
        frame = pl.concat(
            [
                deleted_typed.with_columns(pl.lit("delete").alias(_KIND)),
                inserted_typed.with_columns(pl.lit("insert").alias(_KIND)),
            ],
            how="vertical",
        )
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
            ids = raw.select(
                id_expr([(pl.col(_ROWID), t.INT)], salt="sqlite-rowid").alias(ID)
            ).to_series()
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
        logger.error(
            "%s: skipped %d row(s) of table %r with %s, e.g. %s",
            self.spec.connector,
            rows.height,
            self.spec.table_name,
            why,
            sample,
        )


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
        elif (raw_type == pl.String and isinstance(value, str)) or (
            raw_type == pl.Binary and isinstance(value, bytes)
        ):
            out.append(value)
        else:
            out.append(None)
            wrong[index] = True
    return out, wrong


@user_call
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

    Parameters:
        path: the database file.
        table_name: the table or view read.
        schema: the columns read and their types; its primary key identifies rows.
        autocommit_duration_ms: how long changes may wait before they are committed to the pipeline.
        name: the connector's name in logs, monitoring and persistence.
        max_backlog_size: pause polling while this many rows wait in the pipeline.
        debug_data: accepted for compatibility, ignored.
        mode: ``streaming`` (default: keep polling) or ``static`` (read once).

    Examples:
        >>> import deltaflow as pw, pathlib, sqlite3, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "shop.db"
        >>> with sqlite3.connect(path) as db:
        ...     _ = db.execute("CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER)")
        ...     _ = db.execute("INSERT INTO stock VALUES ('pen', 2), ('ink', 6)")
        >>> class Stock(pw.Schema):
        ...     item: str = pw.column_definition(primary_key=True)
        ...     qty: int
        >>> t = pw.io.sqlite.read(path, "stock", Stock, mode="static")
        >>> pw.debug.compute_and_print(t, include_id=False)
        item | qty
        ink  | 6
        pen  | 2
    """
    connector = (
        f"pw.io.sqlite.read({table_name!r})" if isinstance(table_name, str) else "pw.io.sqlite.read"
    )
    schema = check_schema(schema, connector)
    if not isinstance(table_name, str) or not table_name:
        raise ValueError(f"{connector}: table_name must be a non-empty string, got {table_name!r}")
    static = check_mode(mode, connector) == "static"
    autocommit = check_autocommit(autocommit_duration_ms, connector)
    backlog = check_backlog(max_backlog_size, connector)
    columns = schema.dtypes()
    _check_mappable(connector, columns)
    path_str = _check_path(connector, path, must_exist=True)
    primary_key = list(schema.primary_key_columns() or [])
    spec = _inspect_source(connector, path_str, table_name, columns, primary_key)
    return reader_table(
        schema=schema,
        reader_factory=lambda: SqliteReader(spec, static=static),
        parser=TypedRowsParser(column_specs(schema, exclude=())),
        name=name or connector,
        autocommit_duration_ms=autocommit,
        max_backlog_size=backlog,
        named=name is not None,
    )


def _inspect_source(
    connector: str, path: str, table_name: str, columns: dict[str, t.DType], primary_key: list[str]
) -> _ReadSpec:
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
            raise ValueError(
                f"{connector}: {path!r} is not a readable SQLite database: {exc}"
            ) from None
        if info is None:
            tables = [
                r[0]
                for r in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            raise ValueError(
                f"{connector}: {path!r} has no table or view {table_name!r}; it "
                f"has {tables or 'none'}"
            )
        stored = {c["name"].lower(): c["name"] for c in info.columns}
        missing = [c for c in columns if c.lower() not in stored]
        if missing:
            raise ValueError(
                f"{connector}: the schema's column(s) {missing} are not in "
                f"{info.kind} {info.name!r}, whose columns are "
                f"{[c['name'] for c in info.columns]}"
            )
        stored_names = {c: stored[c.lower()] for c in columns}
        if primary_key:
            wanted = frozenset(k.lower() for k in primary_key)
            if info.kind == "table" and wanted not in info.unique_sets:
                raise ValueError(
                    f"{connector}: the schema's primary key {primary_key} is not "
                    f"a PRIMARY KEY or UNIQUE constraint of table {info.name!r}, "
                    "so rows sharing a key would be confused; add the constraint "
                    "or drop primary_key from the schema (rows are then "
                    "identified by rowid)"
                )
        else:
            shadowed = [c["name"] for c in info.columns if c["name"].lower() in _ROWID_ALIASES]
            if info.kind == "view" or info.without_rowid or shadowed:
                reason = (
                    "it is a view"
                    if info.kind == "view"
                    else "it is a WITHOUT ROWID table"
                    if info.without_rowid
                    else f"its column(s) {shadowed} hide SQLite's rowid"
                )
                raise ValueError(
                    f"{connector}: {info.name!r} has no usable rowid ({reason}); "
                    "declare the identifying columns in the schema with "
                    "pw.column_definition(primary_key=True)"
                )
        return _ReadSpec(
            path=path,
            table_name=info.name,
            columns=columns,
            stored_names=stored_names,
            primary_key=primary_key,
            connector=connector,
        )
    finally:
        connection.close()
