"""Temporal ``Table`` methods (windows, temporal joins, behaviors, diff, interpolate).

Each method forwards to the function of the same name in :mod:`deltaflow.temporal` (or
:mod:`deltaflow.stdlib`), which takes the table as its first argument, exactly as the
module-level forms (``pw.temporal.windowby(table, ...)``) do. The functions are imported on
first call: the temporal package builds on ``Table``, so ``Table`` cannot import it up front.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from deltaflow.error_display import user_call

if TYPE_CHECKING:
    from deltaflow.table import Table


class _Forward:
    """A ``Table`` method that is the module function ``name`` of ``module`` (the table as
    its first argument). The function is looked up when the method is: on the class it is
    the function itself, on a table the function bound to it, so ``inspect.signature`` and
    ``help`` show its real parameters and unknown keywords fail as they would on it."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name
        self._function: Callable[..., Any] | None = None

    def __get__(self, table: Any, owner: type | None = None) -> Callable[..., Any]:
        function = self._function
        if function is None:  # its failures name the user's line, as other methods' do
            function = user_call(getattr(importlib.import_module(self.module), self.name))
            self._function = function
        return function if table is None else types.MethodType(function, table)


def _forward(module: str, name: str) -> Any:
    return _Forward(module, name)


_WINDOW = "deltaflow.temporal._window_functions"
_BEHAVIORS = "deltaflow.temporal._behaviors"
_ASOF = "deltaflow.temporal._asof"
_ASOF_NOW = "deltaflow.temporal._asof_now"
_INTERVAL = "deltaflow.temporal._interval_join"
_WINDOW_JOIN = "deltaflow.temporal._window_join"
_CLOCK = "deltaflow.temporal._clock"
_ORDERED = "deltaflow.stdlib.ordered"
_STATISTICAL = "deltaflow.stdlib.statistical"


class TemporalMethods:
    """Mixed into ``Table``: the temporal API as methods."""

    windowby = _forward(_WINDOW, "windowby")

    asof_join = _forward(_ASOF, "asof_join")
    asof_join_left = _forward(_ASOF, "asof_join_left")
    asof_join_right = _forward(_ASOF, "asof_join_right")
    asof_join_outer = _forward(_ASOF, "asof_join_outer")

    asof_now_join = _forward(_ASOF_NOW, "asof_now_join")
    asof_now_join_inner = _forward(_ASOF_NOW, "asof_now_join_inner")
    asof_now_join_left = _forward(_ASOF_NOW, "asof_now_join_left")

    interval_join = _forward(_INTERVAL, "interval_join")
    interval_join_inner = _forward(_INTERVAL, "interval_join_inner")
    interval_join_left = _forward(_INTERVAL, "interval_join_left")
    interval_join_right = _forward(_INTERVAL, "interval_join_right")
    interval_join_outer = _forward(_INTERVAL, "interval_join_outer")

    window_join = _forward(_WINDOW_JOIN, "window_join")
    window_join_inner = _forward(_WINDOW_JOIN, "window_join_inner")
    window_join_left = _forward(_WINDOW_JOIN, "window_join_left")
    window_join_right = _forward(_WINDOW_JOIN, "window_join_right")
    window_join_outer = _forward(_WINDOW_JOIN, "window_join_outer")

    forget = _forward(_BEHAVIORS, "forget")
    buffer = _forward(_BEHAVIORS, "buffer")
    ignore_late = _forward(_BEHAVIORS, "ignore_late")
    filter_out_results_of_forgetting = _forward(_BEHAVIORS, "filter_out_results_of_forgetting")

    def _forget(
        self,
        threshold_column: Any,
        time_column: Any,
        mark_forgetting_records: bool,
        instance_column: Any = None,
    ) -> Any:
        """Pathway's private form of ``forget``: explicit threshold, optional instance."""
        from deltaflow.temporal._behaviors import forget_after

        return forget_after(
            cast("Table", self),
            threshold_column,
            time_column,
            mark_forgetting_records,
            instance=instance_column,
        )

    def _buffer(self, threshold_column: Any, time_column: Any, instance_column: Any = None) -> Any:
        from deltaflow.temporal._behaviors import buffer_until

        return buffer_until(
            cast("Table", self), threshold_column, time_column, instance=instance_column
        )

    def _freeze(self, threshold_column: Any, time_column: Any, instance_column: Any = None) -> Any:
        from deltaflow.temporal._behaviors import freeze_after

        return freeze_after(
            cast("Table", self), threshold_column, time_column, instance=instance_column
        )

    inactivity_detection = _forward(_CLOCK, "inactivity_detection")
    add_update_timestamp_utc = _forward(_CLOCK, "add_update_timestamp_utc")

    diff = _forward(_ORDERED, "diff")
    interpolate = _forward(_STATISTICAL, "interpolate")
