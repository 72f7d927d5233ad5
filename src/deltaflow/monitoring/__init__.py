"""Run monitoring: per-connector statistics while ``pw.run`` runs.

``pw.run(monitoring_level=...)`` asks :func:`make_monitoring` for what watches the run. Every 5
seconds the monitor logs one line per connector (logger ``deltaflow.monitoring``, INFO): rows
read and committed by each input and their rate in rows/s, rows written by each output and
theirs, the input's lag (how long its oldest committed-but-unprocessed rows have been
waiting) and, for static file inputs, the bytes read of the files' total. With ``AUTO``/``AUTO_ALL`` and a terminal on stdout, a live console table (``rich``,
if installed) shows the same figures. ``NONE`` disables it. ``with_http_server=True`` adds a
Prometheus endpoint (:mod:`deltaflow.monitoring.metrics`).

``pw.run(default_logging=True)`` (the default, as in Pathway) gives deltaflow's INFO lines a
handler on stderr when the program has configured none (:func:`install_default_logging`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time as _time
from typing import Any

logger = logging.getLogger("deltaflow.monitoring")

INTERVAL_S = 5.0


class Monitor:
    """Samples the runtime's connector statistics on a background thread."""

    def __init__(self, *, interval_s: float = INTERVAL_S, dashboard: bool = False) -> None:
        self.interval_s = interval_s
        self.dashboard = dashboard
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runtime: Any = None
        self._started_at = _time.monotonic()
        self._previous: dict[str, int] = {}
        self._previous_at: dict[str, float] = {}
        self._rate_samples: dict[str, tuple[float, int, float]] = {}
        self._live: Any = None

    def start(self, runtime: Any) -> None:
        self._runtime = runtime
        self._started_at = _time.monotonic()
        self._stop.clear()
        if self.dashboard:
            self._live = _start_dashboard()
        self._thread = threading.Thread(target=self._work, name="deltaflow-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
            self._live = None
        if self._runtime is not None:
            self.log()

    def _work(self) -> None:
        last_log = _time.monotonic()
        while not self._stop.wait(1.0 if self._live is not None else self.interval_s):
            if self._live is not None:
                self._live.update(self._table())
            if _time.monotonic() - last_log >= self.interval_s - 0.01:
                last_log = _time.monotonic()
                self.log()

    # --- figures ---------------------------------------------------------------------------
    def _rate(self, key: str, total: int, now: float) -> float:
        """Rows per second of one connector, over the last second or more."""
        sample = self._rate_samples.get(key)
        if sample is None:
            self._rate_samples[key] = (now, total, 0.0)
            return 0.0
        at, previous, rate = sample
        if now - at >= 1.0:
            rate = (total - previous) / (now - at)
            self._rate_samples[key] = (now, total, rate)
        return rate

    def rows(self) -> list[dict[str, Any]]:
        """One dict of figures per connector."""
        now = _time.monotonic()
        out: list[dict[str, Any]] = []
        for op, handle in getattr(self._runtime, "inputs", []):
            stats = handle.stats
            backlog = handle.backlog_rows
            since = stats.last_processed_monotonic or stats.last_commit_monotonic
            lag_ms = (now - since) * 1000.0 if backlog > 0 and since is not None else 0.0
            out.append(
                {
                    "kind": "input",
                    "name": handle.name,
                    "read": stats.rows_read,
                    "committed": stats.rows_committed,
                    "written": None,
                    "skipped": stats.extra.get("rows_skipped", 0),
                    "backlog": backlog,
                    "lag_ms": lag_ms,
                    "progress": _progress_of(op),
                    "rate": self._rate(f"input:{handle.name}", stats.rows_committed, now),
                }
            )
        for sink in getattr(self._runtime, "sinks", []):
            stats = getattr(sink, "stats", None)
            name = getattr(sink, "name", "output")
            written = stats.rows_written if stats is not None else 0
            out.append(
                {
                    "kind": "output",
                    "name": name,
                    "read": None,
                    "committed": None,
                    "written": written,
                    "skipped": 0,
                    "backlog": 0,
                    "lag_ms": 0.0,
                    "progress": None,
                    "rate": self._rate(f"output:{name}", written, now),
                }
            )
        return out

    def log(self) -> None:
        now = _time.monotonic()
        for row in self.rows():
            key = f"{row['kind']}:{row['name']}"
            total = row["committed"] if row["kind"] == "input" else row["written"]
            recent = total - self._previous.get(key, 0)
            elapsed = now - self._previous_at.get(key, self._started_at)
            rate = recent / elapsed if elapsed > 0 else 0.0
            self._previous[key] = total
            self._previous_at[key] = now
            if row["kind"] == "input":
                progress = row["progress"]
                logger.info(
                    "%s: %d rows read, %d committed (+%d since the last report, "
                    "%.0f rows/s), %d skipped, lag %.0f ms%s",
                    row["name"],
                    row["read"],
                    row["committed"],
                    recent,
                    rate,
                    row["skipped"],
                    row["lag_ms"],
                    "" if progress is None else f", {progress_text(*progress)}",
                )
            else:
                logger.info(
                    "%s: %d rows written (+%d since the last report, %.0f rows/s)",
                    row["name"],
                    row["written"],
                    recent,
                    rate,
                )

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title="deltaflow connectors")
        for column in (
            "connector",
            "read",
            "committed",
            "written",
            "rows/s",
            "skipped",
            "lag ms",
            "progress",
        ):
            table.add_column(
                column, justify="left" if column in ("connector", "progress") else "right"
            )
        for row in self.rows():
            progress = row["progress"]
            table.add_row(
                row["name"],
                _n(row["read"]),
                _n(row["committed"]),
                _n(row["written"]),
                f"{row['rate']:,.0f}",
                _n(row["skipped"]),
                f"{row['lag_ms']:.0f}",
                "" if progress is None else progress_bar(*progress),
            )
        return table


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _progress_of(op: Any) -> tuple[int, int] | None:
    """``(bytes read, bytes to read)`` of an input whose source knows them (static files)."""
    progress = getattr(getattr(op.node, "source", None), "progress", None)
    if isinstance(progress, tuple) and len(progress) == 2:
        return int(progress[0]), int(progress[1])
    return None


def _bytes(count: int) -> str:
    """A byte count for people: ``512 B``, ``3.4 MB``, ``1.2 GB``."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _fraction(done: int, total: int) -> float:
    return 1.0 if total <= 0 else min(done / total, 1.0)


def progress_text(done: int, total: int) -> str:
    """``"3.4 MB of 10.0 MB read (34%)"``: the progress of a static file input."""
    return f"{_bytes(done)} of {_bytes(total)} read ({_fraction(done, total):.0%})"


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """A text progress bar with the percentage and the total, for the console table."""
    fraction = _fraction(done, total)
    filled = round(fraction * width)
    return f"{'█' * filled}{'░' * (width - filled)} {fraction:.0%} of {_bytes(total)}"


def _start_dashboard() -> Any:
    try:
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table
    except ImportError:
        return None
    live = Live(Table(), console=Console(), refresh_per_second=2, transient=False)
    live.start()
    return live


def make_monitor(level: Any) -> Monitor | None:
    """The monitor for a ``pw.MonitoringLevel`` (None for ``NONE``)."""
    name = getattr(level, "name", str(level)).upper()
    if name == "NONE":
        return None
    dashboard = name in ("AUTO", "AUTO_ALL") and sys.stdout.isatty()
    return Monitor(dashboard=dashboard)


class Monitoring:
    """What watches one run: the console monitor and/or the metrics server, started and
    stopped together by the runtime."""

    def __init__(self, monitor: Monitor | None, with_http_server: bool) -> None:
        self.monitor = monitor
        self._figures = monitor if monitor is not None else Monitor()
        self.metrics: Any = None
        if with_http_server:
            from deltaflow.monitoring.metrics import MetricsServer

            self.metrics = MetricsServer(self._figures.rows)

    def start(self, runtime: Any) -> None:
        if self.monitor is None:
            self._figures._runtime = runtime  # figures for the metrics server only
        if self.metrics is not None:
            self.metrics.start(runtime)
        if self.monitor is not None:
            self.monitor.start(runtime)

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        if self.metrics is not None:
            self.metrics.stop()


def make_monitoring(level: Any, *, with_http_server: bool = False) -> Monitoring | None:
    """What ``pw.run(monitoring_level=level, with_http_server=...)`` watches the run with."""
    monitor = make_monitor(level)
    if monitor is None and not with_http_server:
        return None
    return Monitoring(monitor, with_http_server)


_DEFAULT_HANDLER_MARK = "_deltaflow_default_handler"


def install_default_logging() -> None:
    """Show deltaflow's INFO lines on stderr, unless the program configured logging itself
    (a handler on the root logger or on ``deltaflow``) or this was done before."""
    package_logger = logging.getLogger("deltaflow")
    if logging.getLogger().handlers or package_logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"
        )
    )
    setattr(handler, _DEFAULT_HANDLER_MARK, True)
    package_logger.addHandler(handler)
    if package_logger.level == logging.NOTSET:
        package_logger.setLevel(logging.INFO)
