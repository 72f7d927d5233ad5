"""``pw.io.deltalake.TableOptimizer``: compaction of old partitions of a written table.

The table must be partitioned by a string column holding dates/times in ``time_format``.
After a commit of the writer, at most once per ``compression_frequency``, the partitions older
than ``quick_access_window`` are compacted (``OPTIMIZE``) and files no longer referenced and
older than ``retention_period`` are deleted (``VACUUM``). It runs on the writer's thread,
between commits, so it never races a commit of the same writer; a failure is logged and the
work is tried again after the next commit.
"""

from __future__ import annotations

import datetime
import logging
import os
import time as _time
from typing import Any

from deltaflow.io.deltalake._storage import Location, redact

logger = logging.getLogger("deltaflow.io.deltalake")


def seconds(value: Any, name: str) -> float:
    """A duration given as seconds, ``datetime.timedelta`` or ``pw.Duration``."""
    if isinstance(value, datetime.timedelta):
        result = value.total_seconds()
    elif callable(getattr(value, "total_seconds", None)):
        result = float(value.total_seconds())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        raise TypeError(
            f"pw.io.deltalake.TableOptimizer: {name} must be a number of seconds, "
            f"a datetime.timedelta or a pw.Duration, got {type(value).__name__}"
        )
    if result < 0:
        raise ValueError(
            f"pw.io.deltalake.TableOptimizer: {name} must not be negative, got {value!r}"
        )
    return result


class TableOptimizer:
    """Settings for compacting the old partitions of a table written by
    ``pw.io.deltalake.write`` (see the module docstring)."""

    def __init__(
        self,
        tracked_column: Any,
        time_format: str,
        quick_access_window: Any,
        compression_frequency: Any,
        retention_period: Any = datetime.timedelta(0),
        remove_old_checkpoints: bool = False,
    ) -> None:
        from deltaflow.expressions.base import ColumnReference

        if not isinstance(tracked_column, ColumnReference):
            raise TypeError(
                "pw.io.deltalake.TableOptimizer: tracked_column must be a column "
                f"reference (table.column), got {type(tracked_column).__name__}"
            )
        if not isinstance(time_format, str) or not time_format:
            raise TypeError(
                "pw.io.deltalake.TableOptimizer: time_format must be a strftime "
                f"format string, got {time_format!r}"
            )
        self.tracked_column = tracked_column
        self.time_format = time_format
        # Kept as timedeltas, whatever form they were given in (as Pathway).
        self.quick_access_window = datetime.timedelta(
            seconds=seconds(quick_access_window, "quick_access_window")
        )
        self.compression_frequency = datetime.timedelta(
            seconds=seconds(compression_frequency, "compression_frequency")
        )
        self.retention_period = datetime.timedelta(
            seconds=seconds(retention_period, "retention_period")
        )
        self.remove_old_checkpoints = bool(remove_old_checkpoints)


class OptimizerRun:
    """Applies a :class:`TableOptimizer` to one output table."""

    def __init__(self, settings: TableOptimizer, location: Location, connector: str) -> None:
        self.settings = settings
        self.column = settings.tracked_column.name
        self.location = location
        self.connector = connector
        self._last: float | None = None

    def after_commit(self) -> None:
        now = _time.monotonic()
        if (
            self._last is not None
            and now - self._last < self.settings.compression_frequency.total_seconds()
        ):
            return
        try:
            self._optimize()
            self._last = now
        except Exception as exc:  # noqa: BLE001 - retried after the next commit
            logger.warning(
                "%s: optimizing the Delta table at %s failed (tried again after the "
                "next commit): %s",
                self.connector,
                self.location.uri,
                redact(f"{type(exc).__name__}: {exc}", self.location.secrets),
            )

    def _old_partitions(self, values: list[str]) -> list[str]:
        settings = self.settings
        old = []
        for value in values:
            try:
                moment = datetime.datetime.strptime(value, settings.time_format)
            except (TypeError, ValueError):
                continue  # not a time in this format: never compacted
            now = datetime.datetime.now(moment.tzinfo or datetime.timezone.utc)
            if moment.tzinfo is None:
                now = now.replace(tzinfo=None)
            if now - moment > settings.quick_access_window:
                old.append(value)
        return old

    def _optimize(self) -> None:
        from deltalake import DeltaTable

        location = self.location
        table = DeltaTable(location.uri, storage_options=location.storage_options)
        values = sorted(
            {p[self.column] for p in table.partitions() if p.get(self.column) is not None}
        )
        old = self._old_partitions(values)
        if old:
            table.optimize.compact(partition_filters=[(self.column, "in", old)])
        table.vacuum(
            retention_hours=int(self.settings.retention_period.total_seconds() // 3600),
            enforce_retention_duration=False,
            dry_run=False,
        )
        if self.settings.remove_old_checkpoints and location.is_local:
            self._remove_old_checkpoints()

    def _remove_old_checkpoints(self) -> None:
        log = os.path.join(self.location.uri, "_delta_log")
        checkpoints = sorted(
            name for name in os.listdir(log) if name.endswith(".checkpoint.parquet")
        )
        for name in checkpoints[:-1]:
            os.remove(os.path.join(log, name))
