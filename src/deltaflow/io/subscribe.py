"""``pw.io.subscribe``: call Python functions on every change of a table."""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import threading
import types
from collections.abc import Iterable
from typing import Any, Protocol

from deltaflow import _types as t
from deltaflow.error_display import user_call
from deltaflow.io._core.callback_sink import CallbackSink


class OnChangeCallback(Protocol):
    """``on_change(key, row, time, is_addition)``: one row was added or removed at ``time``."""

    def __call__(
        self, key: t.Pointer, row: dict[str, Any], time: int, is_addition: bool
    ) -> None: ...


class OnFinishCallback(Protocol):
    """``on_end()``: the run ended (every input finished)."""

    def __call__(self) -> None: ...


class OnTimeEndCallback(Protocol):
    """``on_time_end(time)``: every change of ``time`` was delivered."""

    def __call__(self, time: int) -> None: ...


@user_call
def subscribe(
    table: Any,
    on_change: OnChangeCallback,
    on_end: OnFinishCallback | None = None,
    on_time_end: OnTimeEndCallback | None = None,
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Call ``on_change`` for every row added to or removed from ``table``, ``on_time_end``
    after each time and ``on_end`` when the run ends. Callbacks run on the engine's thread,
    right after each time is computed.

    Parameters:
        table: the table to watch.
        on_change: called as ``on_change(key=, row=, time=, is_addition=)`` per changed row.
        on_end: called with no argument once the run ends.
        on_time_end: called as ``on_time_end(time)`` after the last change of each time.
        name: the output's name in logs and monitoring (default ``subscribe``).
        sort_by: columns ordering the changes of one time.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... word  | __time__ | __diff__
        ... hello | 2        | 1
        ... hello | 4        | -1
        ... ''')
        >>> def on_change(key, row, time, is_addition):
        ...     print(time, "+" if is_addition else "-", row)
        >>> pw.io.subscribe(t, on_change, on_end=lambda: print("end"))
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        2 + {'word': 'hello'}
        4 - {'word': 'hello'}
        end
    """
    from deltaflow.table import Table, add_output

    if not isinstance(table, Table):
        raise TypeError(f"pw.io.subscribe: expected a table, got {table!r}")
    for label, callback in (
        ("on_change", on_change),
        ("on_end", on_end),
        ("on_time_end", on_time_end),
    ):
        if callback is not None and not callable(callback):
            raise TypeError(f"pw.io.subscribe: {label} must be callable, got {callback!r}")
    sort_by = list(sort_by) if sort_by is not None else None
    runner = _AsyncRunner()
    sink = CallbackSink(
        name or "subscribe",
        table._columns,
        on_change=runner.wrap(on_change),
        on_time_end=runner.wrap(on_time_end),
        on_end=runner.wrap(on_end),
        sorted_by_user=bool(sort_by),
        named=name is not None,
    )
    add_output(table, sink, sort_by=sort_by)


class _AsyncRunner:
    """Runs ``async def`` callbacks to completion, one at a time and in order, on an event
    loop of their own (a daemon thread started on first use), so the engine thread waits for
    each as it would for a plain function, whether or not it runs inside an event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def wrap(self, callback: Any) -> Any:
        if callback is None or not inspect.iscoroutinefunction(callback):
            return callback

        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            future = asyncio.run_coroutine_threadsafe(callback(*args, **kwargs), self._get())
            return future.result()

        return run

    def _get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="deltaflow-subscribe-async", daemon=True
                ).start()
                self._loop = loop
            return self._loop


class _CallableModule(types.ModuleType):
    """``deltaflow.io`` exposes this module as ``pw.io.subscribe``; calling it subscribes."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        subscribe(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
