"""What ``windowby`` returns: :class:`WindowedGroupedTable`, whose ``reduce`` gives one row
per window (and instance).

The window kinds of :mod:`._window` build it with a function assigning rows to windows; its
``reduce`` asks that function for only the columns the reducers read (and, for windows that
share rows, the ``ix`` lookups to add to the table first), runs the grouped
reduce (or the per-pane reduce of :mod:`._panes` for sliding windows) and gives the result
Pathway's window ids.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow.argument_errors import ArgumentError
from deltaflow.engine.temporal_window import END, INSTANCE, KEY, START
from deltaflow.error_display import user_calls, user_stacklevel
from deltaflow.expressions.base import Cast, ColumnExpression, ColumnReference, wrap_value
from deltaflow.expressions.deferred import IxColumn, transform
from deltaflow.expressions.functions import make_tuple
from deltaflow.expressions.placeholders import AllColumns, this
from deltaflow.reducers import ReducerExpression
from deltaflow.temporal import _behaviors as behaviors

if TYPE_CHECKING:
    from deltaflow.table import Table

WINDOW = "_pw_window"
LOCATION = "_pw_window_location"

#: Columns a windowed reduce may use besides the table's.
WINDOW_COLUMNS = (WINDOW, START, END, INSTANCE, LOCATION)


def _none() -> ColumnExpression:
    """None typed NONE (Pathway's type of ``_pw_instance`` without an instance)."""
    return Cast(t.NONE, wrap_value(None))


def _warn_about_processing_time(outputs: list[tuple[str, ColumnExpression]]) -> None:
    """``latest``/``earliest`` pick rows by when they were processed, not by their time in
    the window: say so (Pathway warns too)."""
    for _, expression in outputs:
        for node in expression.walk():
            if isinstance(node, ReducerExpression) and node.reducer.name in ("latest", "earliest"):
                warnings.warn(
                    f"pw.reducers.{node.reducer.name} in a windowby reduce chooses rows by "
                    f"processing time, while windows are assigned by data time; "
                    f"pw.reducers.max/min (or argmax/argmin) of the time column choose by "
                    f"data time",
                    stacklevel=user_stacklevel(),
                )
                return


def _references(expression: ColumnExpression) -> list[ColumnReference]:
    """Column references in ``expression``, reducer arguments included."""
    found: list[ColumnReference] = []
    for node in expression.walk():
        if isinstance(node, ColumnReference):
            found.append(node)
        for arg in getattr(node, "args", ()) if isinstance(node, ReducerExpression) else ():
            found += _references(arg)
    return found


@user_calls
class WindowedGroupedTable:
    """What ``windowby`` returns: ``reduce`` gives one row per window (and instance)."""

    def __init__(
        self,
        table: Table,
        build: Callable[..., Table],
        keys: list[str],
        *,
        window_kind: str,
        has_instance: bool,
        instance_name: str | None = None,
        forgetting_marked: bool = False,
        panes: Any = None,
        one_window_per_row: bool = False,
    ) -> None:
        self._table = table
        self._build = build
        self._keys = keys
        self._window_kind = window_kind
        self._has_instance = has_instance
        # The instance column by its own name is a grouping column too (same values).
        self._instance_name = instance_name
        self._forgetting_marked = forgetting_marked
        # Sliding windows without a behavior: (window, table, key, instance) for reducing
        # per pane (hop) first when the reducers allow it (see _panes.py).
        self._panes = panes
        # Whether a row falls in at most one window (its windowed row keeps a unique id).
        self._one_window_per_row = one_window_per_row

    def __getattr__(self, name: str) -> ColumnReference:
        # ``grouped.col``: a column of the windowed rows, as ``pw.this.col`` in ``reduce``.
        if name.startswith("_") and name not in self._visible():
            raise AttributeError(name)
        if name not in self._table._columns and name not in self._visible():
            raise AttributeError(
                f"windowby(...) on {self._table._description} has no column {name!r}"
            )
        return this[name]

    def __getitem__(self, name: str) -> ColumnReference:
        try:
            return self.__getattr__(name)
        except AttributeError as exc:
            raise KeyError(name) from exc

    def reduce(self, *args: Any, **kwargs: Any) -> Table:
        """One row per window with the given window columns and reducers."""
        where = f"windowby(...).reduce on {self._table._description}"
        outputs: list[tuple[str, ColumnExpression]] = []
        for arg in args:
            if isinstance(arg, AllColumns):
                outputs += [
                    (name, this[name]) for name in self._visible() if name not in arg.excluded
                ]
            elif isinstance(arg, ColumnReference):
                outputs.append((arg.name, arg))
            else:
                raise ArgumentError(
                    f"{where}: positional arguments must be column references; "
                    f"name computed columns with keywords (got {arg!r})"
                )
        outputs += [(name, wrap_value(value)) for name, value in kwargs.items()]
        _warn_about_processing_time(outputs)
        # ``table.ix(grouped.ptr).col`` inside a reducer: looked up on the windowed rows
        # first (hidden columns), then reduced like any column.
        lifted: list[tuple[str, IxColumn]] = []

        def lift(node: ColumnExpression) -> ColumnExpression | None:
            if not isinstance(node, IxColumn) or any(
                isinstance(n, ReducerExpression) for n in node.request.pointer.walk()
            ):
                return None  # ix of a reducer's result (argmin ...): done after the reduce
            name = next((n for n, seen in lifted if seen is node), None)
            if name is None:
                name = f"__pw_ix{len(lifted)}"
                lifted.append((name, node))
            return this[name]

        outputs = [(name, transform(expr, lift)) for name, expr in outputs]
        used = {ref.name for _, expr in outputs for ref in _references(expr)}
        used |= {ref.name for _, node in lifted for ref in _references(node.request.pointer)}
        carried = [
            name
            for name in self._table._columns
            if name in used and name not in WINDOW_COLUMNS and name != KEY
        ]
        # _pw_window of tumbling/sliding windows and _pw_instance without an instance are
        # not grouped on: they are made after the reduce, when used as plain columns.
        virtual = self._virtual()
        nested = {
            ref.name
            for _, expr in outputs
            if not isinstance(expr, ColumnReference)
            for ref in _references(expr)
            if ref.name in virtual
        }
        inner: dict[str, Any] = {}
        plain_virtual: list[str] = []
        for name, expr in outputs:
            if (
                isinstance(expr, ColumnReference)
                and expr.name in virtual
                and expr.name not in nested
            ):
                plain_virtual.append(name)
                continue
            inner[name] = expr
        by_instance_name = self._instance_name is not None and self._instance_name in carried
        result = None
        if self._panes is not None and not nested and not by_instance_name and not lifted:
            from deltaflow.temporal._panes import pane_reduce

            result = pane_reduce(self._panes, carried, inner, where)
        if result is None:
            result = self._reduce_rows(carried, nested, virtual, inner, by_instance_name, lifted)
        if self._forgetting_marked:
            result = behaviors.filter_out_results_of_forgetting(result)
        # Pathway's ids: the pointer of (window, start, end, instance).
        result = self._with_window_ids(result)
        final: dict[str, Any] = {}
        for name, expr in outputs:
            if name in plain_virtual:
                final[name] = self._key_value(expr.name)  # type: ignore[attr-defined]
            else:
                final[name] = this[name]
        from deltaflow import plan

        out = result.select(**final)
        # Every reduced column is kept as it is and only the window's own columns (functions
        # of the window id) are dropped: a window's retracted and inserted rows, which differ
        # in the reduce's output, still differ, so the select has nothing to consolidate.
        node = out._node
        if isinstance(node, plan.SelectNode) and node.inputs == (result._node,):
            node.rows_stay_distinct = True
        return out

    def _reduce_rows(
        self,
        carried: list[str],
        nested: set[str],
        virtual: dict[str, ColumnExpression],
        inner: dict[str, Any],
        by_instance_name: bool,
        lifted: list[tuple[str, IxColumn]] | None = None,
    ) -> Table:
        """The grouped reduce over the rows with their windows (hidden key columns
        ``__pw_key_<name>`` next to the ``inner`` outputs)."""
        if lifted and not self._one_window_per_row:
            # A row in several windows keeps its id in each: look up before copying it.
            target = self._build([*carried, *(name for name, _ in lifted)], dict(lifted))
        else:
            target = self._build(carried)
            if lifted:
                target = target.with_columns(**dict(lifted))
        if nested:
            target = target.with_columns(**{name: virtual[name] for name in sorted(nested)})
        keys = [ColumnReference(target, k) for k in self._keys]
        keys += [ColumnReference(target, name) for name in sorted(nested)]
        if by_instance_name:
            keys.append(ColumnReference(target, self._instance_name))  # type: ignore[arg-type]
        hidden = {f"__pw_key_{name}": ColumnReference(target, name) for name in self._keys}
        # The rows of an intervals_over window reach order-keeping reducers (tuple, ndarray)
        # by time, as in Pathway (then by id); the other kinds keep the order of ids.
        sort_by = ColumnReference(target, KEY) if self._window_kind == "intervals_over" else None
        return target.groupby(*keys, sort_by=sort_by).reduce(**hidden, **inner)

    def _with_window_ids(self, result: Table) -> Table:
        """``result`` re-keyed by the pointer of (window, start, end, instance)."""
        from deltaflow import plan
        from deltaflow.engine.temporal_window import WindowIdNode
        from deltaflow.table import Table

        def hidden(name: str) -> str:
            return f"__pw_key_{name}"

        window = None
        if self._window_kind == "session":
            window = hidden(WINDOW)
        elif self._window_kind == "intervals_over":
            window = hidden(LOCATION)
        names = [hidden(START), hidden(END)]
        instance = hidden(INSTANCE) if self._has_instance else None
        names += [n for n in (instance, window) if n is not None]
        node = WindowIdNode(
            columns=dict(result._columns),
            inputs=(result._node,),
            start=hidden(START),
            end=hidden(END),
            instance=instance,
            window=window,
            key_types={n: result._columns[n] for n in names},
            label="windowby ids",
        )
        return Table(node, plan.Universe())

    def _visible(self) -> list[str]:
        names = [LOCATION] if self._window_kind == "intervals_over" else [WINDOW]
        return [*names, START, END, INSTANCE]

    def _virtual(self) -> dict[str, ColumnExpression]:
        """Window columns that are not grouping keys, as expressions over the assigned
        rows."""
        out: dict[str, ColumnExpression] = {}
        instance = this[INSTANCE] if self._has_instance else _none()
        if not self._has_instance:
            out[INSTANCE] = _none()
        if self._window_kind == "sliding":
            out[WINDOW] = make_tuple(instance, this[START], this[END])
        return out

    def _key_value(self, name: str) -> ColumnExpression:
        """A window column over the inner reduce's output (its hidden key columns)."""
        if name == WINDOW and self._window_kind == "intervals_over":
            name = LOCATION
        if name in self._keys:
            return this[f"__pw_key_{name}"]
        if name == INSTANCE:
            return _none()
        instance = this[f"__pw_key_{INSTANCE}"] if self._has_instance else _none()
        return make_tuple(instance, this[f"__pw_key_{START}"], this[f"__pw_key_{END}"])
