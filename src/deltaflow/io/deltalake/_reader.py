"""``pw.io.deltalake.read``'s input side: a reader following a Delta table's versions.

The table is a set of data files; each version adds and removes some. The reader compares the
file lists of consecutive versions: an added file's rows are inserted, a removed file's rows
are retracted (the input session remembers each file's rows: a file is a *source block*, as an
object of the S3 reader is). So appends, deletes, updates, merges and overwrites all arrive as
the changes they made, and a rewrite that keeps rows (``OPTIMIZE``, Z-order) cancels out when
rows have primary-key ids. All changes of one version are committed together (never split
between minibatches); the version is the reader's offset, so a restart with persistence goes
on after the last checkpointed version.

Rows are identified by the schema's primary key, or else by their position in their file.
"""

from __future__ import annotations

import collections
import logging
import time as _time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import polars as pl

from deltaflow import _types as t
from deltaflow._ids import sequence_ids
from deltaflow.engine.batch import ID
from deltaflow.io._core.base import (
    Commit,
    Data,
    Finished,
    FinishedSource,
    NewSource,
    OffsetAntichain,
    Reader,
    ReadEvent,
    RowsContext,
)
from deltaflow.io.deltalake._storage import Location, StoreUnreachable, with_retries
from deltaflow.io.deltalake._types import TypeMismatch, check_compatible, decode_column

logger = logging.getLogger("deltaflow.io.deltalake")

OFFSET_KEY = "delta_version"
DIFF_COLUMN = "diff"
TIME_COLUMN = "time"
ID_COLUMN = "_id"
STORED_ID = "__deltaflow_stored_id"
POLL_INTERVAL_S = 0.2
"""How often streaming mode looks for a new version of the table."""


@dataclass
class ReadSpec:
    location: Location
    columns: dict[str, t.DType]
    primary_key: list[str]
    static: bool
    start_from_timestamp_ms: int | None
    connector: str


@dataclass
class _Version:
    """The files of one version of the table: path -> partition values."""

    number: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


class DeltaReader(Reader):
    """One ``read`` call handles at most one new version (see the module docstring)."""

    def __init__(self, spec: ReadSpec, *, poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self.spec = spec
        self.poll_interval_s = poll_interval_s
        # Static mode reads one version unless it starts from a timestamp (then it applies
        # every later version, which may remove files).
        self.retracts_sources = not spec.static or spec.start_from_timestamp_ms is not None
        self._table: Any = None
        self._current: _Version | None = None  # what has been emitted so far
        self._events: collections.deque[ReadEvent] = collections.deque()
        self._next_poll = 0.0
        self._done = False
        self._waiting_logged = False
        self._latest_seen = -1  # the newest version the log showed so far
        self._probe: Any = None  # follows the log (see _latest)
        self._bad_logged: set[tuple[str, str]] = set()
        # A table holding a stream of changes (a ``diff`` column the schema does not name)
        # is read as the changes it records; without a primary key, a deletion takes the id
        # of a live row with the same values (see _change_ids), so the live rows are kept.
        self._changelog = False
        self._stored_ids = False
        self._live: pl.DataFrame | None = None

    # --- persistence -----------------------------------------------------------------------
    def seek(self, frontier: OffsetAntichain) -> None:
        """Go on after the checkpointed version: its files are known (their rows were
        replayed from the checkpoint), later versions are read as changes."""
        version = frontier.get(OFFSET_KEY)
        if version is None:
            return
        table = self._open(wait=False)
        if table is None:
            return
        self._load(table, int(version))
        self._current = self._files_of(table, int(version))
        self.retracts_sources = True
        if self._changelog and not self.spec.primary_key:
            self._rebuild_live(table)

    # --- reading ---------------------------------------------------------------------------
    def read(self) -> ReadEvent | None:
        if self._events:
            return self._events.popleft()
        if self._done:
            return Finished()
        now = _time.monotonic()
        behind = self._current is not None and self._current.number < self._latest_seen
        if now < self._next_poll and not behind:
            return None
        table = self._table or self._open(wait=not self.spec.static)
        if table is None:
            self._next_poll = now + self.poll_interval_s
            return None
        if behind:
            latest = self._latest_seen
        else:
            self._next_poll = now + self.poll_interval_s
            latest = self._latest_seen = self._latest(table)
        if self._current is None:
            self._start(table, latest)
        elif latest > self._current.number:
            self._advance(table, self._current.number + 1)
        if self.spec.static and (self._current is not None and self._current.number >= latest):
            self._done = True
        if self._events:
            return self._events.popleft()
        return Finished() if self._done else None

    def close(self) -> None:
        self._table = self._probe = None

    # --- table access ----------------------------------------------------------------------
    def _call(self, action: str, call: Any) -> Any:
        return with_retries(self.spec.location, action, call, connector=self.spec.connector)

    def _open(self, *, wait: bool) -> Any:
        from deltalake import DeltaTable

        location = self.spec.location
        exists = self._call(
            "look for the Delta table at",
            lambda: DeltaTable.is_deltatable(
                location.uri, storage_options=location.storage_options
            ),
        )
        if not exists:
            if not wait:
                raise FileNotFoundError(
                    f"{self.spec.connector}: there is no Delta table at {location.uri}"
                )
            if not self._waiting_logged:
                logger.warning(
                    "%s: no Delta table at %s yet; waiting for it to be created",
                    self.spec.connector,
                    location.uri,
                )
                self._waiting_logged = True
            return None
        self._table = self._call(
            "open the Delta table at",
            lambda: DeltaTable(location.uri, storage_options=location.storage_options),
        )
        return self._table

    def _latest(self, table: Any) -> int:
        """The newest version in the log. A second table object follows the log, so that
        the one data is read from only ever moves forward, version by version (loading an
        older version than the current one would replay the log from a checkpoint)."""
        from deltalake import DeltaTable

        location = self.spec.location
        if self._probe is None:
            self._probe = self._call(
                "open the Delta table at",
                lambda: DeltaTable(location.uri, storage_options=location.storage_options),
            )
        self._call("read the log of the Delta table at", self._probe.update_incremental)
        return int(self._probe.version())

    def _load(self, table: Any, version: int) -> None:
        self._call(
            f"load version {version} of the Delta table at", lambda: table.load_as_version(version)
        )
        self._check_table(table)

    def _check_table(self, table: Any) -> None:
        import pyarrow as pa

        spec = self.spec
        protocol = table.protocol()
        if "deletionVectors" in (protocol.reader_features or []):
            raise ValueError(
                f"{spec.connector}: the Delta table at {spec.location.uri} uses "
                "deletion vectors, which this connector cannot read yet"
            )
        schema = pa.schema(table.schema().to_arrow())
        names = {f.name: f for f in schema}
        for column, dtype in spec.columns.items():
            if column not in names:
                raise TypeMismatch(
                    f"{spec.connector}: the schema's column {column!r} is not "
                    f"in the Delta table at {spec.location.uri}, whose columns "
                    f"are {list(names)}"
                )
            check_compatible(spec.connector, column, names[column].type, dtype)
        diff = names.get(DIFF_COLUMN)
        stored = names.get(ID_COLUMN)
        # A snapshot table keeps each row's id in ``_id``: without a primary key in the
        # schema, those ids are used (they survive the MERGEs rewriting the data files).
        self._stored_ids = (
            ID_COLUMN not in spec.columns
            and not spec.primary_key
            and stored is not None
            and check_mappable_as_pointer(stored.type)
        )
        self._changelog = (
            DIFF_COLUMN not in spec.columns and diff is not None and pa.types.is_integer(diff.type)
        )

    def _files_of(self, table: Any, version: int) -> _Version:
        actions = self._call(
            "list the files of the Delta table at", lambda: table.get_add_actions(flatten=True)
        )
        import pyarrow as pa

        listing = pl.from_arrow(pa.table(actions))  # delta-rs answers with an arro3 table
        assert isinstance(listing, pl.DataFrame)
        # Files in the order they were written (a stream of changes must be applied in
        # order): by the first ``time`` they hold when the log has statistics, then by
        # modification time.
        order = [
            c for c in (f"min.{TIME_COLUMN}", "modification_time", "path") if c in listing.columns
        ]
        listing = listing.sort(order, nulls_last=True)
        partition_names = [c for c in listing.columns if c.startswith("partition.")]
        files: dict[str, dict[str, Any]] = {}
        for row in listing.select(["path", *partition_names]).iter_rows(named=True):
            files[row["path"]] = {k[len("partition.") :]: v for k, v in row.items() if k != "path"}
        return _Version(version, files)

    # --- versions --------------------------------------------------------------------------
    def _start(self, table: Any, latest: int) -> None:
        """The first version read: the latest one, or the one current at
        ``start_from_timestamp_ms`` (then every later version follows as changes)."""
        start = latest
        emit_state = True
        stamp = self.spec.start_from_timestamp_ms
        if stamp is not None:
            history = self._call("read the history of the Delta table at", table.history)
            start = -1
            append_only = True
            for entry in history:
                if int(entry.get("timestamp", 0)) <= stamp:
                    start = max(start, int(entry["version"]))
                operation = str(entry.get("operation", ""))
                mode = str((entry.get("operationParameters") or {}).get("mode", "Append"))
                if operation not in (
                    "CREATE TABLE",
                    "WRITE",
                    "OPTIMIZE",
                    "VACUUM START",
                    "VACUUM END",
                ) or (operation == "WRITE" and mode != "Append"):
                    append_only = False
            # An append-only table starting after a timestamp gives only the rows appended
            # later; a table with updates or deletions gives its state then, and the changes.
            emit_state = not append_only
        if start < 0:
            self._current = _Version(-1)
            self._advance(table, 0)
            return
        self._load(table, start)
        version = self._files_of(table, start)
        if emit_state:
            self._emit(table, _Version(-1), version)
        else:
            self._events.append(Data(RowsContext(self._empty()), offset=(OFFSET_KEY, start)))
        self._current = version

    def _advance(self, table: Any, number: int) -> None:
        self._load(table, number)
        version = self._files_of(table, number)
        assert self._current is not None
        self._emit(table, self._current, version)
        self._current = version

    def _emit(self, table: Any, old: _Version, new: _Version) -> None:
        """Events turning the rows of ``old``'s files into those of ``new``'s, as one
        transaction ending with the offset."""
        removed = [p for p in old.files if p not in new.files]
        added = [p for p in new.files if p not in old.files]
        if removed and self._changelog and not self.spec.primary_key:
            raise ValueError(
                f"{self.spec.connector}: version {new.number} of the Delta table at "
                f"{self.spec.location.uri} rewrote data files of a stream of changes (a "
                "'diff' column), which can only be followed with a primary key: declare the "
                "key columns with pw.column_definition(primary_key=True)"
            )
        for path in removed:
            self._events.append(NewSource({"path": path}, key=path, replaces=True))
            self._events.append(FinishedSource(commit_possibility=False))
        if added:
            fragments = self._fragments(table)
            for path in added:
                self._events.append(NewSource({"path": path}, key=path))
                self._events.append(Data(self._context(fragments, path)))
                self._events.append(FinishedSource(commit_possibility=False))
        # The offset comes last, outside any block: the session commits at this point at the
        # earliest, so a checkpoint never holds part of a version.
        self._events.append(Data(RowsContext(self._empty()), offset=(OFFSET_KEY, new.number)))
        # Each version is its own minibatch (its changes are never merged with the next
        # version's), as in Pathway.
        self._events.append(Commit())

    def _empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema={n: d.to_polars() for n, d in self.spec.columns.items()})

    def _fragments(self, table: Any) -> dict[str, Any]:
        dataset = self._call("open the data of the Delta table at", table.to_pyarrow_dataset)
        return {
            _normal_path(fragment.path): (fragment, dataset.schema)
            for fragment in dataset.get_fragments()
        }

    def _context(self, fragments: dict[str, Any], path: str) -> RowsContext:
        """The rows of the data file ``path``: insertions, or (stream of changes) insertions
        and deletions as its ``diff`` column says."""
        frame, diffs = self._rows(fragments, path)
        if STORED_ID in frame.columns:
            return RowsContext(frame.drop(STORED_ID), keys=frame[STORED_ID])
        if diffs is None:
            return RowsContext(frame)
        kinds = pl.when(diffs > 0).then(pl.lit("insert")).otherwise(pl.lit("delete"))
        frame = frame.with_columns(pl.select(kinds.alias("_kind")).to_series())
        if self.spec.primary_key:
            return RowsContext(frame, kind="column")
        keys, matched = self._change_ids(frame, diffs, path)
        return RowsContext(frame.filter(matched), kind="column", keys=keys.filter(matched))

    def _rows(self, fragments: dict[str, Any], path: str) -> tuple[pl.DataFrame, pl.Series | None]:
        spec = self.spec
        entry = fragments.get(_normal_path(path))
        if entry is None:
            raise RuntimeError(
                f"{spec.connector}: data file {path!r} of the Delta table at "
                f"{spec.location.uri} is listed by the log but not readable"
            )
        fragment, schema = entry
        names = (
            list(spec.columns)
            + ([DIFF_COLUMN] if self._changelog else [])
            + ([ID_COLUMN] if self._stored_ids else [])
        )
        data = self._call(
            f"read data file {path!r} of the Delta table at",
            lambda: fragment.to_table(schema=schema, columns=names),
        )
        series = []
        bad: pl.Series | None = None
        bad_columns: list[str] = []
        for name, dtype in spec.columns.items():
            column, wrong = decode_column(data.column(name), dtype)
            series.append(column.rename(name))
            if wrong is not None:
                bad = wrong if bad is None else (bad | wrong)
                bad_columns.append(name)
        diffs: pl.Series | None = None
        if self._changelog:
            diff_column = pl.from_arrow(data.column(DIFF_COLUMN))
            assert isinstance(diff_column, pl.Series)  # one Arrow column gives a Series
            diffs = diff_column.cast(pl.Int64, strict=False)
            wrong = ~diffs.is_in([1, -1]).fill_null(False)
            if wrong.any():
                bad = wrong if bad is None else (bad | wrong)
                bad_columns.append(DIFF_COLUMN)
        if self._stored_ids:
            ids, wrong = decode_column(data.column(ID_COLUMN), t.POINTER)
            series.append(ids.rename(STORED_ID))
            if wrong is not None:
                bad = wrong if bad is None else (bad | wrong)
                bad_columns.append(ID_COLUMN)
        frame = pl.DataFrame(series) if series else pl.DataFrame()
        if bad is not None:
            self._log_bad(path, data, bad, bad_columns)
            frame = frame.filter(~bad)
            diffs = diffs.filter(~bad) if diffs is not None else None
        return frame, diffs

    def _match_keys(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Columns on which rows of equal values compare equal in a Polars join (values
        stored as Python objects are compared by their JSON/text form)."""
        columns = []
        for name in self.spec.columns:
            column = frame[name]
            if column.dtype == pl.Object:
                column = pl.Series(
                    name,
                    [None if v is None else _match_text(v) for v in column.to_list()],
                    dtype=pl.String,
                )
            columns.append(column.rename(f"m_{name}"))
        return pl.DataFrame(columns)

    def _change_ids(
        self, frame: pl.DataFrame, diffs: pl.Series, path: str
    ) -> tuple[pl.Series, pl.Series]:
        """Ids of the change rows of one data file of a stream of changes without a primary
        key, and a mask of the rows kept. An insertion's id is its position in the file; a
        deletion takes the id of a live row (or of a row this file inserted) with the same
        values, each such row taken once. Deleting rows of equal values is interchangeable,
        so any of them gives the same table. A deletion matching no row is reported and
        skipped."""
        ids = sequence_ids(f"deltalake|{path}", 0, frame.height).rename(ID)
        keys = self._match_keys(frame)
        names = keys.columns
        inserted = diffs > 0
        new_rows = keys.with_columns(ids).filter(inserted)
        live = new_rows if self._live is None else pl.concat([self._live, new_rows])
        if bool(inserted.all()):
            self._live = live
            return ids, pl.Series([True] * frame.height)
        rank = pl.int_range(pl.len()).over(names).alias("__rank")
        deletions = keys.with_row_index("__row").filter(~inserted).with_columns(rank)
        candidates = live.with_columns(rank)
        matched = deletions.join(candidates, on=[*names, "__rank"], how="left", nulls_equal=True)
        found = matched.filter(pl.col(ID).is_not_null())
        missing = matched.height - found.height
        if missing:
            logger.error(
                "%s: skipped %d deletion(s) in data file %r of the Delta table at %s "
                "that match no row in the table",
                self.spec.connector,
                missing,
                path,
                self.spec.location.uri,
            )
        self._live = live.filter(~pl.col(ID).is_in(found[ID].implode()))
        replaced = pl.DataFrame({"__row": found["__row"], "__id": found[ID]})
        out = pl.DataFrame({ID: ids}).with_row_index("__row").join(replaced, on="__row", how="left")
        keep = inserted | out["__row"].is_in(found["__row"].implode())
        return out["__id"].fill_null(out[ID]).rename(ID), keep

    def _rebuild_live(self, table: Any) -> None:
        """After a restart: the live rows of a stream of changes without a primary key,
        replayed from every data file (their ids are those the checkpoint holds)."""
        assert self._current is not None
        fragments = self._fragments(table)
        for path in self._current.files:
            frame, diffs = self._rows(fragments, path)
            if diffs is not None and frame.height:
                self._change_ids(frame, diffs, path)

    def _log_bad(self, path: str, data: Any, bad: pl.Series, columns: list[str]) -> None:
        key = (path, ",".join(columns))
        if key in self._bad_logged:
            return
        self._bad_logged.add(key)
        first = int(bad.arg_true()[0])
        sample = {c: data.column(c)[first].as_py() for c in columns}
        logger.error(
            "%s: skipped %d row(s) of data file %r of the Delta table at %s whose "
            "column(s) %s do not fit the schema (%s), e.g. row %d with %r",
            self.spec.connector,
            int(bad.sum()),
            path,
            self.spec.location.uri,
            columns,
            ", ".join(f"{c}: {self._expected(c)}" for c in columns),
            first,
            sample,
        )

    def _expected(self, column: str) -> str:
        if column == DIFF_COLUMN:
            return "1 or -1"
        if column == ID_COLUMN:
            return "a row id ^..."
        return repr(self.spec.columns[column])


def check_mappable_as_pointer(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _match_text(value: Any) -> str:
    import json

    import numpy as np

    if isinstance(value, np.ndarray):
        return json.dumps([list(value.shape), value.ravel().tolist()])
    if isinstance(value, t.Json):
        return json.dumps(value.value, sort_keys=True)
    return repr(value)


def _normal_path(path: str) -> str:
    """A data file's path as the log and the dataset both give it: the log percent-encodes
    partition values (sometimes twice), the dataset does not always."""
    while True:
        decoded = unquote(path)
        if decoded == path:
            return path
        path = decoded


__all__ = ["OFFSET_KEY", "DeltaReader", "ReadSpec", "StoreUnreachable"]
