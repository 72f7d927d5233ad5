"""What a ``pw.io.postgres`` write is (:class:`WriteSpec`, fixed when the pipeline is
defined) and how a delta batch becomes the rows it copies (:class:`PostgresFormatter`):
each column encoded for ``COPY`` (text, or binary when every column has a binary form),
then ``time``/``diff`` and the staging diff as the mode needs. Rows holding a value
PostgreSQL cannot store are left out and reported, at most once per interval.
"""

from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF
from deltaflow.io._core.base import Formatter
from deltaflow.io.postgres._types import (
    DIFF_COLUMN,
    TIME_COLUMN,
    PgColumnType,
    encode_binary,
    encode_text,
    quote_ident,
)

logger = logging.getLogger("deltaflow.io.postgres")

Mode = Literal["stream", "snapshot", "legacy"]

STAGE_DIFF = "__deltaflow_diff"
"""The staging table's column holding each row's diff (snapshot and legacy modes)."""

_BAD_ROW_LOG_INTERVAL_S = 10.0


@dataclass
class WriteSpec:
    """Everything the writer needs, fixed when the pipeline is defined."""

    connector: str
    settings: dict[str, str]
    schema_name: str | None
    table_name: str
    columns: dict[str, t.DType]
    column_types: dict[str, PgColumnType]
    mode: Mode
    primary_key: list[str]
    init_mode: str
    max_batch_size: int | None
    retry_s: float
    binary: bool = False  # set when the run starts: every column has a binary form

    @property
    def qualified(self) -> str:
        table = quote_ident(self.table_name)
        return f"{quote_ident(self.schema_name)}.{table}" if self.schema_name else table

    @property
    def display(self) -> str:
        return f"{self.schema_name}.{self.table_name}" if self.schema_name else self.table_name

    @property
    def has_time_diff(self) -> bool:
        return self.mode != "snapshot"

    def stored_columns(self) -> list[tuple[str, PgColumnType, bool]]:
        """(name, type, nullable) of every column the writer fills."""
        out = [(n, self.column_types[n], d.is_optional) for n, d in self.columns.items()]
        if self.has_time_diff:
            out += [("time", TIME_COLUMN, False), ("diff", DIFF_COLUMN, False)]
        return out


@dataclass
class Payload:
    """One batch in text input syntax: the columns, then ``time``/``diff`` (stream, legacy)
    and ``_diff`` (snapshot, legacy: needed to tell retractions from insertions)."""

    time: int
    frame: pl.DataFrame


@dataclass
class _BadRows:
    """Rate-limited reporting of rows that cannot be stored."""

    counts: dict[str, int] = field(default_factory=dict)
    last_log: float = 0.0
    unlogged: int = 0

    def report(self, connector: str, reason: str, column: str, count: int, example: Any) -> None:
        key = f"{column}: {reason}"
        self.counts[key] = self.counts.get(key, 0) + count
        now = _time.monotonic()
        if now - self.last_log >= _BAD_ROW_LOG_INTERVAL_S:
            skipped = self.unlogged + count
            logger.error(
                "%s: skipped %d row(s) that PostgreSQL cannot store (column %r holds "
                "%s), e.g. %r; %d skipped in all",
                connector,
                skipped,
                column,
                reason,
                example,
                sum(self.counts.values()),
            )
            self.last_log = now
            self.unlogged = 0
        else:
            self.unlogged += count


class PostgresFormatter(Formatter):
    """Encodes a delta batch column by column (see ``_types.encode_text``); rows holding a
    value PostgreSQL cannot store are reported and left out."""

    def __init__(self, spec: WriteSpec) -> None:
        self.spec = spec
        self.bad_rows = _BadRows()

    def format(self, batch: pl.DataFrame, time: int) -> Payload:
        spec = self.spec
        encoded: list[pl.Series] = []
        keep: np.ndarray | None = None
        for name, dtype in spec.columns.items():
            if spec.binary:  # fixed-width values that cannot be bad
                encoded.append(encode_binary(batch[name], dtype).rename(name))
                continue
            result = encode_text(batch[name], dtype)
            encoded.append(result.values.rename(name))
            if result.bad is not None:
                count = int(result.bad.sum())
                example = batch[name].filter(pl.Series(result.bad)).head(1).to_list()
                self.bad_rows.report(
                    spec.connector,
                    result.reason or "a bad value",
                    name,
                    count,
                    example[0] if example else None,
                )
                keep = ~result.bad if keep is None else keep & ~result.bad
        frame = pl.DataFrame(encoded) if encoded else pl.DataFrame()
        diff = batch[DIFF]
        if spec.has_time_diff:
            times = pl.repeat(time, batch.height, dtype=pl.Int64, eager=True)
            frame = frame.with_columns(times.alias("time"), diff.cast(pl.Int16).alias("diff"))
        if spec.mode != "stream":
            frame = frame.with_columns(diff.cast(pl.Int16).alias(STAGE_DIFF))
        if keep is not None:
            frame = frame.filter(pl.Series(keep))
        return Payload(time, frame)
