"""deltaflow: incremental data pipelines with Pathway's API (``import deltaflow as pw``)."""

from typing import TYPE_CHECKING

from deltaflow import _fork, debug, io  # _fork: a forked child gets an error, not a hang
from deltaflow._types import (
    Json,
    Pointer,
    PyObjectWrapper,
    wrap_py_object,
)
from deltaflow._version import __version__
from deltaflow.engine.boundary import ConnectorError
from deltaflow.errors import global_error_log, local_error_log
from deltaflow.expressions import (
    ColumnExpression,
    ColumnReference,
    UdfError,
    apply,
    apply_async,
    apply_with_type,
    cast,
    coalesce,
    declare_type,
    fill_error,
    if_else,
    left,
    make_tuple,
    require,
    right,
    this,
    udf,
    unwrap,
)

# pw.iterate and pw.sql are functions named as their modules: imported here, so that importing
# the module later (``import deltaflow.sql``) cannot rebind ``pw.sql`` to the module.
from deltaflow.iterate import iterate, iterate_universe
from deltaflow.plan import clear_graph
from deltaflow.runner import MonitoringLevel, run, run_all
from deltaflow.schema import (
    ColumnDefinition,
    Schema,
    SchemaProperties,
    assert_table_has_schema,
    column_definition,
    schema_builder,
    schema_from_dict,
    schema_from_types,
)
from deltaflow.sql import sql
from deltaflow.table import Table

# The names below are imported on first use (``__getattr__``); type checkers see them here.
if TYPE_CHECKING:
    from deltaflow import demo, persistence, reducers, stdlib, temporal, udfs, universes
    from deltaflow._types import DateTimeNaive, DateTimeUtc, Duration
    from deltaflow.api_types import (
        GroupedJoinResult,
        Joinable,
        LiveTable,
        TableLike,
        Type,
        enable_interactive_mode,
    )
    from deltaflow.config import set_license_key, set_monitoring_config
    from deltaflow.persistence import PersistenceMode
    from deltaflow.reducers import BaseCustomAccumulator
    from deltaflow.schema import schema_from_csv
    from deltaflow.stdlib import graphs, ml, ordered, stateful, statistical, utils, viz
    from deltaflow.stdlib.utils.pandas_transformer import pandas_transformer
    from deltaflow.table_slice import TableSlice
    from deltaflow.table_stateful import (
        GroupedTable,
        JoinMode,
        JoinResult,
        groupby,
        join,
        join_inner,
        join_left,
        join_outer,
        join_right,
    )
    from deltaflow.transformers import table_transformer
    from deltaflow.udfs import UDF
    from deltaflow.udfs.async_transformer import AsyncTransformer
    from deltaflow.yaml_loader import load_yaml


# Names provided by the stateful part of the API, imported on first use.
_LAZY = {
    # pandas' Timestamp/Timedelta subclasses: defined (and pandas imported) on first use.
    "DateTimeNaive": ("deltaflow._types", "DateTimeNaive"),
    "DateTimeUtc": ("deltaflow._types", "DateTimeUtc"),
    "Duration": ("deltaflow._types", "Duration"),
    "reducers": ("deltaflow.reducers", None),
    "groupby": ("deltaflow.table_stateful", "groupby"),
    "join": ("deltaflow.table_stateful", "join"),
    "join_inner": ("deltaflow.table_stateful", "join_inner"),
    "join_left": ("deltaflow.table_stateful", "join_left"),
    "join_right": ("deltaflow.table_stateful", "join_right"),
    "join_outer": ("deltaflow.table_stateful", "join_outer"),
    "JoinMode": ("deltaflow.table_stateful", "JoinMode"),
    "JoinResult": ("deltaflow.table_stateful", "JoinResult"),
    "GroupedTable": ("deltaflow.table_stateful", "GroupedTable"),
    "BaseCustomAccumulator": ("deltaflow.reducers", "BaseCustomAccumulator"),
    "persistence": ("deltaflow.persistence", None),
    "PersistenceMode": ("deltaflow.persistence", "PersistenceMode"),
    "temporal": ("deltaflow.temporal", None),
    "stdlib": ("deltaflow.stdlib", None),
    "udfs": ("deltaflow.udfs", None),
    "UDF": ("deltaflow.udfs", "UDF"),
    "AsyncTransformer": ("deltaflow.udfs.async_transformer", "AsyncTransformer"),
    "demo": ("deltaflow.demo", None),
    "universes": ("deltaflow.universes", None),
    "utils": ("deltaflow.stdlib.utils", None),
    "ordered": ("deltaflow.stdlib.ordered", None),
    "statistical": ("deltaflow.stdlib.statistical", None),
    "stateful": ("deltaflow.stdlib.stateful", None),
    "set_license_key": ("deltaflow.config", "set_license_key"),
    "set_monitoring_config": ("deltaflow.config", "set_monitoring_config"),
    "load_yaml": ("deltaflow.yaml_loader", "load_yaml"),
    "schema_from_csv": ("deltaflow.schema", "schema_from_csv"),
    "TableSlice": ("deltaflow.table_slice", "TableSlice"),
    "TableLike": ("deltaflow.api_types", "TableLike"),
    "Joinable": ("deltaflow.api_types", "Joinable"),
    "GroupedJoinResult": ("deltaflow.api_types", "GroupedJoinResult"),
    "Type": ("deltaflow.api_types", "Type"),
    "LiveTable": ("deltaflow.api_types", "LiveTable"),
    "enable_interactive_mode": ("deltaflow.api_types", "enable_interactive_mode"),
    "table_transformer": ("deltaflow.transformers", "table_transformer"),
    "pandas_transformer": ("deltaflow.stdlib.utils.pandas_transformer", "pandas_transformer"),
    "viz": ("deltaflow.stdlib.viz", None),
    "graphs": ("deltaflow.stdlib.graphs", None),
    "ml": ("deltaflow.stdlib.ml", None),
}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deltaflow' has no attribute {name!r}")


__all__ = [
    "UDF",
    "ColumnDefinition",
    "ColumnExpression",
    "ColumnReference",
    "ConnectorError",
    "DateTimeNaive",
    "DateTimeUtc",
    "Duration",
    "Json",
    "MonitoringLevel",
    "Pointer",
    "PyObjectWrapper",
    "Schema",
    "SchemaProperties",
    "Table",
    "UdfError",
    "apply",
    "apply_async",
    "apply_with_type",
    "assert_table_has_schema",
    "cast",
    "clear_graph",
    "coalesce",
    "column_definition",
    "debug",
    "declare_type",
    "fill_error",
    "global_error_log",
    "if_else",
    "io",
    "left",
    "local_error_log",
    "make_tuple",
    "require",
    "right",
    "run",
    "run_all",
    "schema_builder",
    "schema_from_dict",
    "schema_from_types",
    "this",
    "udf",
    "unwrap",
    "wrap_py_object",
]
