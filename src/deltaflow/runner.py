"""``pw.run`` and ``pw.run_all``: compile every output defined so far and run it."""

from __future__ import annotations

import enum
import logging
from typing import Any

from deltaflow import plan
from deltaflow.engine.runtime import run_outputs

logger = logging.getLogger("deltaflow")


class MonitoringLevel(enum.Enum):
    """How much ``pw.run`` reports about connectors while it runs."""

    AUTO = 0
    AUTO_ALL = 1
    NONE = 2
    IN_OUT = 3
    ALL = 4


def run(*, debug: bool = False, monitoring_level: MonitoringLevel = MonitoringLevel.AUTO,
        with_http_server: bool = False, default_logging: bool = True,
        persistence_config: Any = None, runtime_typechecking: bool | None = None,
        license_key: str | None = None, terminate_on_error: bool | None = None,
        max_expression_batch_size: int | None = None,
        udf_cache_directory: str | None = None, _every_table: bool = False) -> None:
    """Run every output defined so far, until all inputs are exhausted.

    Static inputs end by themselves; streaming inputs keep the run alive until they finish
    (or the process is interrupted). ``with_http_server``, ``license_key``,
    ``runtime_typechecking``, ``max_expression_batch_size`` and ``udf_cache_directory`` are
    accepted for compatibility and have no effect; ``debug`` logs the plan being run.
    ``terminate_on_error=False`` keeps the run going when a cell fails: the cell holds an
    error value and the failure is a row of ``pw.global_error_log()`` (docs/errors.md).
    """
    persistence = None
    if persistence_config is not None:
        from deltaflow.persistence.config import Config
        from deltaflow.persistence.run import PersistentRun

        if not isinstance(persistence_config, Config):
            raise TypeError(f"pw.run: persistence_config must be a pw.persistence.Config, got "
                            f"{type(persistence_config).__name__}")
        # UDF_CACHING keeps only UDF disk caches (see deltaflow.udfs.context), no inputs.
        if persistence_config.persistence_mode.name != "UDF_CACHING":
            persistence = PersistentRun(persistence_config)
    outputs = plan.REGISTRY.take()
    if _every_table:
        outputs += _null_outputs(plan.REGISTRY.unconsumed_tables())
    if debug:
        for node in plan.topological_order(outputs):
            logger.info("plan node %s: %s", node.describe(), node.columns)
    monitoring = None
    try:
        from deltaflow.monitoring import make_monitor
    except ImportError:
        make_monitor = None  # type: ignore[assignment]
    if make_monitor is not None:
        monitoring = make_monitor(monitoring_level)
    from deltaflow.udfs.context import udf_storage

    with udf_storage(persistence_config):
        run_outputs(outputs, monitoring=monitoring, persistence=persistence,
                    terminate_on_error=terminate_on_error)


def run_all(*, debug: bool = False, monitoring_level: MonitoringLevel = MonitoringLevel.AUTO,
            with_http_server: bool = False, default_logging: bool = True,
            persistence_config: Any = None, runtime_typechecking: bool | None = None,
            license_key: str | None = None, terminate_on_error: bool | None = None,
            max_expression_batch_size: int | None = None,
            udf_cache_directory: str | None = None) -> None:
    """Like :func:`run`, and also compute every table defined so far, whether or not it has
    an output (so that, for example, an error in any of them stops the run)."""
    run(_every_table=True, debug=debug, monitoring_level=monitoring_level, with_http_server=with_http_server,
        default_logging=default_logging, persistence_config=persistence_config,
        runtime_typechecking=runtime_typechecking, license_key=license_key,
        terminate_on_error=terminate_on_error,
        max_expression_batch_size=max_expression_batch_size,
        udf_cache_directory=udf_cache_directory)


def _null_outputs(nodes: list[plan.Node]) -> list[plan.OutputNode]:
    """Outputs that compute ``nodes`` and discard their changes."""
    from deltaflow.io.null import NullSink

    return [plan.OutputNode(columns=dict(node.columns), inputs=(node,),
                            sink=NullSink(f"run_all:{node.describe()}"), label="run_all")
            for node in nodes]
