"""Sliding windows reduced per pane first.

A sliding window of ``duration = r * hop`` is the union of ``r`` consecutive *panes* (the
tumbling windows of length ``hop`` on the same origin). When every reducer of a windowed
``reduce`` can be computed from per-pane partial results (count, sum, min, max), the rows are
reduced once per pane, and only the pane results are spread over the ``r`` windows containing
them and combined: a row costs one assignment instead of ``r``, which is what makes windows
of, say, one minute sliding by a second affordable. Both stages are ordinary incremental
reduces, so late rows and deletions update a pane and then its windows.

Other reducers, behaviors, or lengths that are not an exact multiple of the hop use the
row-by-window path of :mod:`deltaflow.temporal._window`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deltaflow import reducers
from deltaflow.expressions.base import ColumnReference
from deltaflow.expressions.placeholders import this
from deltaflow.reducers import ReducerExpression

if TYPE_CHECKING:
    from deltaflow.table import Table

#: Reducers whose window result is the same reducer's result over the panes' results
#: (count becomes the sum of pane counts).
_COMBINE = {"count": reducers.sum, "sum": reducers.sum, "min": reducers.min, "max": reducers.max}
START = "_pw_window_start"
END = "_pw_window_end"
INSTANCE = "_pw_instance"


def _panes_per_window(window: Any, kind: str) -> int | None:
    """``r`` with ``duration == r * hop`` exactly, or None."""
    if window.ratio is not None:
        return window.ratio if window.ratio > 1 else None
    if kind not in ("int", "DateTimeNaive", "DateTimeUtc"):
        return None
    if isinstance(window.hop, float) or isinstance(window.duration, float):
        return None
    duration, hop = window.duration, window.hop
    if duration % hop:
        return None
    ratio = duration // hop
    return int(ratio) if ratio > 1 else None


def pane_reduce(
    panes: tuple[Any, ...], carried: list[str], inner: dict[str, Any], where: str
) -> Table | None:
    """The windowed reduce computed through panes (hidden key columns ``__pw_key_<name>``
    next to the ``inner`` outputs, like the row path), or None when it does not apply."""
    from deltaflow.temporal._window import _SlidingWindow

    window, table, key, instance, kind = panes
    if _panes_per_window(window, kind) is None:
        return None
    for expr in inner.values():
        plain_key = isinstance(expr, ColumnReference) and expr.name in (START, END, INSTANCE)
        if not plain_key and not (
            isinstance(expr, ReducerExpression) and expr.reducer.name in _COMBINE
        ):
            return None
    calls = {name: expr for name, expr in inner.items() if isinstance(expr, ReducerExpression)}
    tumbling = _SlidingWindow(hop=window.hop, duration=None, ratio=1, origin=window.origin)
    rows = tumbling.assign(table, key, instance, carried, where, derive_ids=False)
    pane_keys = [ColumnReference(rows, START)]
    if instance is not None:
        pane_keys.append(ColumnReference(rows, INSTANCE))
    partials = {f"__pane{i}": expr for i, expr in enumerate(calls.values())}
    pane_columns = {
        START: this[START],
        **({INSTANCE: this[INSTANCE]} if instance is not None else {}),
    }
    per_pane = rows.groupby(*pane_keys).reduce(**pane_columns, **partials)
    spread = window.assign(
        per_pane,
        ColumnReference(per_pane, START),
        None if instance is None else ColumnReference(per_pane, INSTANCE),
        list(partials),
        where,
        derive_ids=False,
    )
    keys = [START, END] + ([INSTANCE] if instance is not None else [])
    hidden = {f"__pw_key_{name}": ColumnReference(spread, name) for name in keys}
    combined: dict[str, Any] = {}
    for (name, expr), partial in zip(calls.items(), partials, strict=True):
        combined[name] = _COMBINE[expr.reducer.name](this[partial])
    for name, expr in inner.items():
        if name not in calls:
            combined[name] = this[expr.name]
    grouped = spread.groupby(*[ColumnReference(spread, k) for k in keys])
    return grouped.reduce(**hidden, **combined)
