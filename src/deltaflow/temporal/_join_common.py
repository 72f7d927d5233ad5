"""What the temporal joins (asof, asof_now, interval) share: checking the sides and the time
columns, projecting each side for the operator, and the result class.

A temporal join result is a :class:`~deltaflow.table_join.JoinResult` whose wide table
(both sides' columns prefixed ``__l__``/``__r__``, their ids ``__l_id``/``__r_id`` and, for
columns equated by a condition of the same name, ``__t__<name>``) comes from a temporal
operator instead of the equi-join; ``select``, ``filter``, ``groupby``, ``pw.left``,
``pw.right`` and ``pw.this`` then work exactly as on an ordinary join.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pandas as pd

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.expressions.base import (
    BinaryOp,
    ColumnExpression,
    ColumnReference,
    ExpressionError,
    Scope,
    wrap_value,
)
from deltaflow.expressions.evaluate import CompiledProjection
from deltaflow.expressions.placeholders import left, right, this
from deltaflow.table_groupby import _table_class
from deltaflow.table_join import (
    JoinMode,
    JoinResult,
    _owns,
    _side_scope,
    equality_keys,
)
from deltaflow.table_join_keys import _MODE_NAMES
from deltaflow.temporal._timetypes import check_length

#: The time column of each side, as the operators see it.
TIME = "__time"
#: Engine names of the time types, as Pathway prints them in type errors.
_ENGINE_TIME_NAMES = {
    "int": "INT",
    "float": "FLOAT",
    "DateTimeNaive": "DATE_TIME_NAIVE",
    "DateTimeUtc": "DATE_TIME_UTC",
    "Duration": "DURATION",
}


def mode_name(how: Any, operation: str) -> str:
    """``inner``/``left``/``right``/``outer`` for a ``pw.JoinMode`` (or its integer value)."""
    if isinstance(how, int) and not isinstance(how, JoinMode):
        how = JoinMode(how)
    if not isinstance(how, JoinMode):
        raise TypeError(f"{operation}: how= must be a pw.JoinMode, got {how!r}")
    return _MODE_NAMES[how]


def check_sides(left_table: Any, right_table: Any, operation: str) -> None:
    """Both sides must be tables, and different ones (join a ``copy()`` with itself)."""
    Table = _table_class()
    for side in (left_table, right_table):
        if not isinstance(side, Table):
            raise TypeError(f"{operation}: expected two tables, got {side!r}")
    if left_table._node is right_table._node:
        raise ValueError(
            f"{operation}: Cannot join table with itself. Use <table>.copy() as "
            f"one of the arguments of the join."
        )


def engine_type_name(dtype: t.DType) -> str:
    """How a type is named in the joins' type errors (``INT``, ``DATE_TIME_UTC`` ...)."""
    base = dtype.strip_optional()
    return _ENGINE_TIME_NAMES.get(base.name, base.name.upper())


def value_type_name(value: Any) -> str:
    """The engine name of a bound's type (``INT``, ``FLOAT``, ``DURATION`` ...)."""
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, (datetime.timedelta, pd.Timedelta)):
        return "DURATION"
    return type(value).__name__.upper()


def time_unit_value(value: Any, kind: str) -> int | float:
    """A length (bound, delay) in the unit the operators compute in: nanoseconds for datetime
    times, the number itself otherwise."""
    if kind in ("DateTimeNaive", "DateTimeUtc"):
        return int(pd.Timedelta(value).value)
    return float(value) if kind == "float" else int(value)


@dataclass
class SideProjections:
    """What the operator needs from each side: the projections and the wide columns."""

    left_pre: CompiledProjection
    right_pre: CompiledProjection
    keys: list[str]
    key_types: list[t.DType]
    coalesced: dict[str, tuple[str, str]]
    columns: dict[str, t.DType]
    left_columns: list[str]
    right_columns: list[str]
    time_kind: str
    left_time_type: t.DType
    right_time_type: t.DType


def project_sides(
    left_table: Any,
    right_table: Any,
    left_time: Any,
    right_time: Any,
    on: tuple[Any, ...],
    left_instance: Any,
    right_instance: Any,
    mode: str,
    description: str,
    *,
    coalesce: bool = True,
    time_types: Any = None,
    left_input: Any = None,
    right_input: Any = None,
) -> SideProjections:
    """Check the join conditions and the time columns, and build each side's projection:
    every column as ``__l__<name>``/``__r__<name>``, the keys ``__jk<i>`` and the time.

    ``time_types(left_type, right_type)`` checks the time types and returns the common time
    kind; ``left_time``/``right_time`` None means the join has no time (asof_now).
    ``left_input``/``right_input``: the tables the operator reads instead of the sides (the
    sides after a behavior's gates: same columns, so references to the sides still work).
    """
    if (left_instance is None) != (right_instance is None):
        raise ValueError(f"{description}: give both left_instance and right_instance, or neither")
    conditions = list(on)
    if left_instance is not None:
        conditions.append(BinaryOp("==", wrap_value(left_instance), wrap_value(right_instance)))
    left_scope = _side_scope(left_table, left, "join")
    right_scope = _side_scope(right_table, right, "join")
    if left_input is not None:
        left_scope = _gated_scope(left_table, left_input, left)
    if right_input is not None:
        right_scope = _gated_scope(right_table, right_input, right)
    left_keys, right_keys, key_types, coalesced = equality_keys(
        conditions,
        left_scope,
        right_scope,
        description,
        swapped="swap",
        not_equality=TypeError,
        coalesce=coalesce,
        typing_errors=(ExpressionError, KeyError, ValueError),
    )
    time_kind = ""
    left_time_type: t.DType = t.INT
    right_time_type: t.DType = t.INT
    left_outputs: list[tuple[str, ColumnExpression]] = [
        (f"__l__{n}", ColumnReference(left_table, n)) for n in left_table._columns
    ]
    right_outputs: list[tuple[str, ColumnExpression]] = [
        (f"__r__{n}", ColumnReference(right_table, n)) for n in right_table._columns
    ]
    left_outputs += [(f"__jk{i}", k) for i, k in enumerate(left_keys)]
    right_outputs += [(f"__jk{i}", k) for i, k in enumerate(right_keys)]
    if left_time is not None:
        left_time, right_time = wrap_value(left_time), wrap_value(right_time)
        left_time_type = left_scope.dtype_of(left_time)
        right_time_type = right_scope.dtype_of(right_time)
        time_kind = time_types(left_time_type, right_time_type)
        left_outputs.append((TIME, left_time))
        right_outputs.append((TIME, right_time))
    left_optional = mode in ("right", "outer")
    right_optional = mode in ("left", "outer")
    columns: dict[str, t.DType] = {"__l_id": t.optional(t.POINTER) if left_optional else t.POINTER}
    for name, dtype in left_table._columns.items():
        columns[f"__l__{name}"] = t.optional(dtype) if left_optional else dtype
    columns["__r_id"] = t.optional(t.POINTER) if right_optional else t.POINTER
    for name, dtype in right_table._columns.items():
        columns[f"__r__{name}"] = t.optional(dtype) if right_optional else dtype
    for name, (a, b) in coalesced.items():
        # Every row has at least one side, and the sides agree on the key where both are
        # present, so the merged key is never missing for lack of a side. Its type is the
        # kept side's (the left one for inner joins), both sides' for outer joins, as in
        # Pathway's temporal joins.
        left_type = left_table._columns[a[len("__l__") :]]
        right_type = right_table._columns[b[len("__r__") :]]
        columns[f"__t__{name}"] = (
            right_type
            if mode == "right"
            else left_type
            if mode in ("inner", "left")
            else t.common_supertype(left_type, right_type) or t.ANY
        )
    return SideProjections(
        left_pre=CompiledProjection(left_scope, left_outputs),
        right_pre=CompiledProjection(right_scope, right_outputs),
        keys=[f"__jk{i}" for i in range(len(left_keys))],
        key_types=key_types,
        coalesced={f"__t__{n}": v for n, v in coalesced.items()},
        columns=columns,
        left_columns=[f"__l__{n}" for n in left_table._columns],
        right_columns=[f"__r__{n}" for n in right_table._columns],
        time_kind=time_kind,
        left_time_type=left_time_type,
        right_time_type=right_time_type,
    )


def _gated_scope(table: Any, gated: Any, placeholder: Any) -> Scope:
    """A side's scope for projecting rows of ``gated`` (the side behind behavior gates, with
    the same columns): references to the side, to ``gated`` or to the placeholder resolve."""

    def resolve(ref: ColumnReference) -> tuple[str, t.DType]:
        if (
            ref.table is placeholder
            or ref.table is this
            or _owns(table, ref.table)
            or _owns(gated, ref.table)
        ):
            if ref.name == "id":
                return "_id", t.POINTER
            if ref.name in table._columns:
                return ref.name, table._columns[ref.name]
            raise table._missing(ref.name)
        raise ValueError(f"{ref!r} does not belong to {table._description}")

    return Scope("join", resolve)


def apply_behavior(table: Any, time: Any, behavior: Any, kind: str, operation: str) -> Any:
    """The side as a temporal join with ``behavior`` reads it (as Pathway builds it): held
    until its own event time passes time + ``delay``; with ``cutoff``, rows later than time +
    ``cutoff`` ignored and rows forgotten (marked, when results are kept) once event time
    passes it. ``table`` itself without a behavior."""
    if behavior is None:
        return table
    from deltaflow.temporal._behaviors import (
        CommonBehavior,
        buffer_until,
        forget_after,
        freeze_after,
    )

    if not isinstance(behavior, CommonBehavior):
        raise TypeError(
            f"{operation}: behavior= must be a pw.temporal.common_behavior(...), got {behavior!r}"
        )
    time = _on_table(wrap_value(time), table)
    for name in ("delay", "cutoff"):
        value = getattr(behavior, name)
        if value is not None:
            check_length(value, kind, f"{operation}: behavior {name}", positive=False)
    if behavior.delay is not None:
        table = buffer_until(table, time + behavior.delay, time)
        time = _on_table(time, table)
    if behavior.cutoff is not None:
        table = freeze_after(table, time + behavior.cutoff, time)
        time = _on_table(time, table)
        table = forget_after(table, time + behavior.cutoff, time, behavior.keep_results)
    return table


def _on_table(expr: ColumnExpression, table: Any) -> ColumnExpression:
    """A time expression of a side, as a reference to ``table`` when it is a plain column
    (placeholders such as ``pw.left.t`` included)."""
    if isinstance(expr, ColumnReference):
        return ColumnReference(table, expr.name)
    return expr


class TemporalJoinResult(JoinResult):
    """A join result whose wide table a temporal operator computes (see the module doc)."""

    def _init_result(
        self,
        left_table: Any,
        right_table: Any,
        columns: dict[str, t.DType],
        mode: str,
        description: str,
        coalesced: dict[str, tuple[str, str]],
    ) -> None:
        """Set up everything but the wide table (``JoinResult.__init__`` builds an equi-join;
        only its attributes are wanted). ``columns``: the wide table's columns, so that
        references resolve before the node exists (see :meth:`_set_wide`)."""
        self._left = left_table
        self._right = right_table
        self._chained = False
        self._mode = mode
        self._description = description
        self._coalesced = {name[len("__t__") :] for name in coalesced}
        self._wide = _ColumnsOnly(columns)  # type: ignore[assignment]
        self._filters: list[ColumnExpression] = []

    def _set_wide(
        self,
        node: plan.Node,
        universe: plan.Universe | None = None,
        filter_forgetting: bool = False,
    ) -> None:
        """The wide table: the operator's node (with its forgetting filtered out when a
        behavior forgets but results are kept)."""
        wide = _table_class()(node, universe or plan.Universe())
        if filter_forgetting:
            from deltaflow.temporal._behaviors import filter_out_results_of_forgetting

            wide = filter_out_results_of_forgetting(wide)
        self._wide = wide

    def _wide_column(self, ref: Any, operation: str) -> str:
        """The wide column a reference to one side's column means (for ``defaults=``)."""
        if not isinstance(ref, ColumnReference):
            raise TypeError(f"{operation}: expected a column reference, got {ref!r}")
        return self._resolve(ref)[0]


class _ColumnsOnly:
    """The wide table's columns before its node exists."""

    def __init__(self, columns: dict[str, t.DType]) -> None:
        self._columns = columns
