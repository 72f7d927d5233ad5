"""``pw.run`` and ``pw.run_all``: compile every output defined so far and run it."""

from __future__ import annotations

import asyncio
import contextvars
import enum
import json
import logging
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow import errors, plan
from deltaflow._fork import forked_after_polars, rerun_in_fresh_interpreter
from deltaflow._signals import graceful_stop
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import ConnectorStats, Sink
from deltaflow.engine.runtime import run_outputs
from deltaflow.error_display import UserFacingErrors

logger = logging.getLogger("deltaflow")


class MonitoringLevel(enum.Enum):
    """How much ``pw.run`` reports about connectors while it runs."""

    AUTO = 0
    AUTO_ALL = 1
    NONE = 2
    IN_OUT = 3
    ALL = 4


def run(
    *,
    debug: bool = False,
    monitoring_level: MonitoringLevel = MonitoringLevel.AUTO,
    with_http_server: bool = False,
    default_logging: bool = True,
    persistence_config: Any = None,
    runtime_typechecking: bool | None = None,
    terminate_on_error: bool | None = None,
    max_expression_batch_size: int = 1024,
    event_loop: asyncio.AbstractEventLoop | None = None,
    udf_cache_directory: str | None = None,
) -> None:
    """Run every output defined so far, until all inputs are exhausted.

    Static inputs end by themselves; streaming inputs keep the run alive until they finish
    (or the process is interrupted). ``with_http_server=True`` serves Prometheus metrics
    while the run lasts (docs/monitoring.md); ``default_logging`` (on by default) shows
    deltaflow's INFO lines on stderr when the program configured no logging of its own.
    ``runtime_typechecking``, ``max_expression_batch_size`` and ``event_loop`` are accepted
    for compatibility and have no effect; ``debug`` logs
    the plan being run and prints the changes
    of the tables marked with ``Table.debug(name)``. ``terminate_on_error=False`` keeps the run
    going when a cell fails: the cell holds an error value and the failure is a row of
    ``pw.global_error_log()`` (docs/errors.md).

    Parameters:
        debug: log the plan and print the changes of tables marked with ``Table.debug``.
        monitoring_level: how much progress to show (``pw.MonitoringLevel.NONE`` for nothing).
        with_http_server: serve Prometheus metrics while the run lasts.
        default_logging: show INFO lines on stderr if the program set up no logging.
        persistence_config: a ``pw.persistence.Config``: where state and offsets are saved.
        terminate_on_error: False: a failing cell becomes an error value, the run goes on.
        udf_cache_directory: keep the values non-deterministic UDFs remember for their rows
            in files of this directory rather than in memory (deleted when the run ends).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... word
        ... hi
        ... ''')
        >>> pw.io.subscribe(t, lambda key, row, time, is_addition: print(row))
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        {'word': 'hi'}
    """
    with UserFacingErrors():  # a failure shows the user's frames, not deltaflow's
        _run(
            every_table=False,
            debug=debug,
            monitoring_level=monitoring_level,
            persistence_config=persistence_config,
            terminate_on_error=terminate_on_error,
            with_http_server=with_http_server,
            default_logging=default_logging,
            udf_cache_directory=udf_cache_directory,
        )


def run_all(
    *,
    debug: bool = False,
    monitoring_level: MonitoringLevel = MonitoringLevel.AUTO,
    with_http_server: bool = False,
    default_logging: bool = True,
    persistence_config: Any = None,
    runtime_typechecking: bool | None = None,
    terminate_on_error: bool | None = None,
    max_expression_batch_size: int = 1024,
    event_loop: asyncio.AbstractEventLoop | None = None,
    udf_cache_directory: str | None = None,
) -> None:
    """Like :func:`run`, and also compute every table defined so far, whether or not it has
    an output (so that, for example, an error in any of them stops the run).

    Parameters:
        debug: log the plan and print the changes of tables marked with ``Table.debug``.
        monitoring_level: how much progress to show (``pw.MonitoringLevel.NONE`` for nothing).
        with_http_server: serve Prometheus metrics while the run lasts.
        default_logging: show INFO lines on stderr if the program set up no logging.
        persistence_config: a ``pw.persistence.Config``: where state and offsets are saved.
        terminate_on_error: False: a failing cell becomes an error value, the run goes on.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... a | b
        ... 1 | 0
        ... ''')
        >>> unused = t.select(q=t.a // t.b)
        >>> try:
        ...     pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)
        ... except ZeroDivisionError:
        ...     print("the unused table failed too")
        the unused table failed too
    """
    with UserFacingErrors():  # a failure shows the user's frames, not deltaflow's
        _run(
            every_table=True,
            debug=debug,
            monitoring_level=monitoring_level,
            persistence_config=persistence_config,
            terminate_on_error=terminate_on_error,
            with_http_server=with_http_server,
            default_logging=default_logging,
            udf_cache_directory=udf_cache_directory,
        )


def _run(
    *,
    every_table: bool,
    debug: bool,
    monitoring_level: MonitoringLevel,
    persistence_config: Any,
    terminate_on_error: bool | None,
    with_http_server: bool = False,
    default_logging: bool = True,
    udf_cache_directory: str | None = None,
) -> None:
    from deltaflow.monitoring import install_default_logging, make_monitoring

    if default_logging:
        install_default_logging()
    if persistence_config is None:
        from deltaflow.persistence.from_environment import config_from_environment

        persistence_config = config_from_environment()
    persistence = None
    if persistence_config is not None:
        from deltaflow.persistence.config import Config
        from deltaflow.persistence.run import PersistentRun

        if not isinstance(persistence_config, Config):
            raise TypeError(
                f"pw.run: persistence_config must be a pw.persistence.Config, got "
                f"{type(persistence_config).__name__}"
            )
        # UDF_CACHING keeps only UDF disk caches (see deltaflow.udfs.context), no inputs.
        if persistence_config.persistence_mode.name != "UDF_CACHING":
            persistence = PersistentRun(persistence_config)
    outputs = plan.REGISTRY.take()
    if every_table:
        outputs += _null_outputs(plan.REGISTRY.unconsumed_tables())
    if outputs and forked_after_polars():  # a run with nothing to compute uses no Polars
        rerun_in_fresh_interpreter()
    if debug:
        for node in plan.topological_order(outputs):
            logger.info("plan node %s: %s", node.describe(), node.columns)
    monitoring = make_monitoring(monitoring_level, with_http_server=with_http_server)
    from deltaflow.udfs.context import udf_storage

    debug_token = _DEBUG_RUN.set(debug)
    try:
        with udf_storage(persistence_config, udf_cache_directory), graceful_stop():
            run_outputs(
                outputs,
                monitoring=monitoring,
                persistence=persistence,
                terminate_on_error=terminate_on_error,
            )
    finally:
        _DEBUG_RUN.reset(debug_token)


#: Whether the run on this thread was started with ``debug=True`` (a context variable: the
#: engine may process a time on a source's thread, in the run's context).
_DEBUG_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "deltaflow_debug_run", default=False
)


class DebugSink(Sink):
    """The output of ``Table.debug(name)``: with ``pw.run(debug=True)`` it prints every change
    of the table as ``[worker][name] @Timestamp(time) +1 id=..., column=Value(...)``; in other
    runs it prints nothing."""

    def __init__(self, label: str, columns: list[str]) -> None:
        self.name = f"debug:{label}"
        self.label = label
        self.columns = columns
        self.stats = ConnectorStats()

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        if not _DEBUG_RUN.get():
            return
        ids = t.values_from_series(batch[ID])
        diffs = batch[DIFF].to_list()
        values = [t.values_from_series(batch[name]) for name in self.columns]
        for row, (key, diff) in enumerate(zip(ids, diffs, strict=True)):
            cells = ", ".join(
                f"{name}={_debug_value(column[row])}"
                for name, column in zip(self.columns, values, strict=True)
            )
            sign = f"+{diff}" if diff > 0 else str(diff)
            print(
                f"[0][{self.label}] @Timestamp({time}) {sign} id={key}"
                + (f", {cells}" if cells else "")
            )


def _debug_value(value: Any) -> str:
    """A value as ``Table.debug`` prints it: its kind and its contents."""
    if value is None:
        return "None"
    if isinstance(value, errors.ErrorValue):
        return "Error"
    if isinstance(value, bool):
        return f"Bool({str(value).lower()})"
    if isinstance(value, t.Pointer):
        return f"Pointer({value})"
    if isinstance(value, int):
        return f"Int({value})"
    if isinstance(value, float):
        return f"Float({value!r})"
    if isinstance(value, str):
        return f"String({json.dumps(value)})"
    if isinstance(value, bytes):
        return f"Bytes({list(value)})"
    if isinstance(value, t.Json):
        return f"Json({value.dumps()})"
    if isinstance(value, (tuple, list)):
        return f"Tuple([{', '.join(_debug_value(v) for v in value)}])"
    return f"{type(value).__name__}({value})"


def debug_table(table: Any, name: str) -> None:
    """Register the output of ``table.debug(name)`` (see :class:`DebugSink`)."""
    from deltaflow.table import add_output

    if not isinstance(name, str):
        raise TypeError(f"Table.debug: name must be a string, got {name!r}")
    add_output(table, DebugSink(name, table.column_names()))


def _null_outputs(nodes: list[plan.Node]) -> list[plan.OutputNode]:
    """Outputs that compute ``nodes`` and discard their changes."""
    from deltaflow.io.null import NullSink

    return [
        plan.OutputNode(
            columns=dict(node.columns),
            inputs=(node,),
            sink=NullSink(f"run_all:{node.describe()}"),
            label="run_all",
        )
        for node in nodes
    ]
