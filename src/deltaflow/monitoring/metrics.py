"""Prometheus metrics for ``pw.run(with_http_server=True)``.

While a run is going, an HTTP server on 127.0.0.1 serves the run's figures in Prometheus'
text format (``/metrics``; every other path answers the same, so ``/status`` works as a
liveness probe). The port is ``PATHWAY_MONITORING_HTTP_PORT`` (deltaflow also reads
``DELTAFLOW_MONITORING_HTTP_PORT`` first) or 20000, plus the process id when several processes
run. The figures are read when scraped, from the same counters the console monitor shows, so
an idle pipeline costs nothing; only the per-operator row counters add work to each step,
and only when the server is on.

Metric names are our own (labelled, one family per figure) rather than Pathway's
per-operator names; docs/monitoring.md lists them.
"""

from __future__ import annotations

import logging
import os
import threading
import time as _time
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

logger = logging.getLogger("deltaflow.monitoring")

DEFAULT_PORT = 20000


def metrics_port() -> int:
    """The port the metrics server listens on (see the module docstring)."""
    for variable in ("DELTAFLOW_MONITORING_HTTP_PORT", "PATHWAY_MONITORING_HTTP_PORT"):
        value = os.environ.get(variable)
        if value:
            try:
                base = int(value)
            except ValueError:
                raise ValueError(
                    f"pw.run(with_http_server=True): {variable}={value!r} is not a port number"
                ) from None
            break
    else:
        base = DEFAULT_PORT
    return base + int(os.environ.get("PATHWAY_PROCESS_ID", "0") or 0)


class OperatorCounters:
    """Rows each operator emitted, split by sign of their diff, and when it last ran."""

    def __init__(self) -> None:
        self.positive = 0
        self.negative = 0
        self.steps = 0
        self.last_step_monotonic: float | None = None
        self.last_step_seconds = 0.0


def _count_rows(counters: OperatorCounters, delta: Any) -> None:
    if not isinstance(delta, pl.DataFrame) or delta.height == 0 or "_diff" not in delta.columns:
        return
    diffs = delta.get_column("_diff")
    if delta.height <= 16:  # a few rows: Python is cheaper than two Polars reductions
        for diff in diffs.to_list():
            if diff > 0:
                counters.positive += diff
            else:
                counters.negative -= diff
        return
    counters.positive += int(diffs.clip(lower_bound=0).sum())
    counters.negative -= int(diffs.clip(upper_bound=0).sum())


def _instrumented(step: Callable[..., Any], counters: OperatorCounters) -> Callable[..., Any]:
    def step_and_count(time: int, deltas: Any) -> Any:
        started = _time.perf_counter()
        result = step(time, deltas)
        counters.last_step_seconds = _time.perf_counter() - started
        counters.last_step_monotonic = _time.monotonic()
        counters.steps += 1
        _count_rows(counters, result)
        return result

    return step_and_count


class MetricsServer:
    """Serves one run's figures; :meth:`start` with the runtime, :meth:`stop` at its end."""

    def __init__(
        self, figures: Callable[[], list[dict[str, Any]]], port: int | None = None
    ) -> None:
        self._figures = figures
        self.port = metrics_port() if port is None else port
        self._runtime: Any = None
        self._operators: list[tuple[str, OperatorCounters]] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, runtime: Any) -> None:
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError as exc:
            from deltaflow._extras import missing_extra

            raise missing_extra(
                "pw.run(with_http_server=True)", "prometheus_client", "metrics"
            ) from exc
        self._runtime = runtime
        for position, op in enumerate(getattr(runtime, "operators", [])):
            counters = OperatorCounters()
            self._operators.append((f"{position}:{op.node.describe()}", counters))
            op.step = _instrumented(op.step, counters)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        try:
            self._server, self._thread = start_http_server(
                self.port, addr="127.0.0.1", registry=registry
            )
        except OSError as exc:
            raise OSError(
                f"pw.run(with_http_server=True): cannot serve metrics on "
                f"127.0.0.1:{self.port}: {exc.strerror or exc}; set "
                f"PATHWAY_MONITORING_HTTP_PORT to a free port"
            ) from exc
        logger.info("metrics available at http://127.0.0.1:%d/metrics", self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def families(self) -> Iterator[Any]:
        """The metric families of one scrape."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        rows_in = CounterMetricFamily(
            "deltaflow_input_rows",
            "Rows an input connector committed to the engine.",
            labels=["connector"],
        )
        read = CounterMetricFamily(
            "deltaflow_input_rows_read",
            "Rows an input connector read (committed or not yet).",
            labels=["connector"],
        )
        skipped = CounterMetricFamily(
            "deltaflow_input_rows_skipped",
            "Bad rows an input connector reported and skipped.",
            labels=["connector"],
        )
        lag = GaugeMetricFamily(
            "deltaflow_input_lag_ms",
            "How long the oldest committed, "
            "unprocessed rows of an input have waited (0 when none wait).",
            labels=["connector"],
        )
        backlog = GaugeMetricFamily(
            "deltaflow_input_backlog_rows",
            "Committed rows of an input the engine has not processed yet.",
            labels=["connector"],
        )
        rows_out = CounterMetricFamily(
            "deltaflow_output_rows", "Rows an output connector wrote.", labels=["connector"]
        )
        bytes_read = GaugeMetricFamily(
            "deltaflow_input_bytes_read",
            "Bytes of its files a static file input has read.",
            labels=["connector"],
        )
        bytes_total = GaugeMetricFamily(
            "deltaflow_input_bytes_total",
            "Total size of the files a static file input reads.",
            labels=["connector"],
        )
        for row in self._figures():
            name = str(row["name"])
            if row["kind"] == "input":
                rows_in.add_metric([name], row["committed"])
                read.add_metric([name], row["read"])
                skipped.add_metric([name], row["skipped"])
                lag.add_metric([name], row["lag_ms"])
                backlog.add_metric([name], row["backlog"])
                if row.get("progress") is not None:
                    done, total = row["progress"]
                    bytes_read.add_metric([name], done)
                    bytes_total.add_metric([name], total)
            else:
                rows_out.add_metric([name], row["written"] or 0)
        yield from (rows_in, read, skipped, lag, backlog, rows_out, bytes_read, bytes_total)
        positive = CounterMetricFamily(
            "deltaflow_operator_rows_positive",
            "Insertions an operator emitted (sum of positive diffs).",
            labels=["operator"],
        )
        negative = CounterMetricFamily(
            "deltaflow_operator_rows_negative",
            "Deletions an operator emitted (sum of negative diffs, as a positive number).",
            labels=["operator"],
        )
        steps = CounterMetricFamily(
            "deltaflow_operator_steps", "Minibatches an operator processed.", labels=["operator"]
        )
        step_ms = GaugeMetricFamily(
            "deltaflow_operator_last_step_ms",
            "How long the operator's last step took.",
            labels=["operator"],
        )
        for name, counters in self._operators:
            positive.add_metric([name], counters.positive)
            negative.add_metric([name], counters.negative)
            steps.add_metric([name], counters.steps)
            step_ms.add_metric([name], counters.last_step_seconds * 1000.0)
        yield from (positive, negative, steps, step_ms)
        last_time = GaugeMetricFamily(
            "deltaflow_last_time",
            "The last logical time the engine finished (milliseconds since the epoch for streams).",
        )
        value = getattr(self._runtime, "last_time", None)
        last_time.add_metric([], float(value) if value is not None else -1.0)
        yield last_time


class _Collector:
    """Adapts :class:`MetricsServer` to prometheus_client's collector protocol."""

    def __init__(self, server: MetricsServer) -> None:
        self._server = server

    def collect(self) -> Iterator[Any]:
        return self._server.families()
