"""A writer calling coroutine callbacks on an event loop of its own (``pw.io.python.write``
with an ``AsyncConnectorObserver``).

It plugs into an :class:`~deltaflow.io._core.output_session.OutputSession`: the session's
thread hands it each time's rows and then "time ended"; the coroutines run on an asyncio loop
driven by a dedicated thread (never the engine's). Per time, every ``on_change`` call is started
at once (deletions first) so that they overlap wherever they await; "time ended" waits for all of
them, then ``on_time_end`` runs, and only then may the next time's calls start. ``close`` runs
``on_end`` and shuts the loop down, cancelling tasks the callbacks left running in the
background. The first callback exception cancels the rest of its time and becomes a
:class:`ConnectorError` naming the output.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from deltaflow import _types as t
from deltaflow.engine.boundary import ConnectorError, connector_error
from deltaflow.io._core.base import Writer

logger = logging.getLogger("deltaflow.io")


class AsyncOnChange(Protocol):
    """The coroutine function called for each row, with keywords (see ``OnChange``)."""

    def __call__(
        self, *, key: t.Pointer, row: dict[str, Any], time: int, is_addition: bool
    ) -> Coroutine[Any, Any, Any]: ...


Row = tuple[t.Pointer, dict[str, Any], int, int]  # TypedRowsFormatter's (key, row, time, diff)

_SHUTDOWN_TIMEOUT_S = 5.0


class AsyncCallbackWriter(Writer):
    """Runs ``on_change`` coroutines per time; ``on_time_end``/``on_end`` may be plain
    functions (called on the output session's thread) or coroutine functions (awaited on the
    loop)."""

    def __init__(
        self,
        name: str,
        on_change: AsyncOnChange,
        on_time_end: Callable[[int], Any] | None = None,
        on_end: Callable[[], Any] | None = None,
    ) -> None:
        self.name = name
        self._on_change = on_change
        self._on_time_end = on_time_end
        self._on_end = on_end
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Tasks of the time being written; only touched on the loop's thread.
        self._tasks: list[asyncio.Task[Any]] = []

    # --- Writer interface (called on the output session's thread) ------------------------
    def write(self, payload: Sequence[Row]) -> None:
        if not payload:
            return
        # Deletions of a time start before its insertions (stable within each), as with the
        # synchronous observer; the calls may then finish in any order.
        rows = [r for r in payload if r[3] < 0] + [r for r in payload if r[3] > 0]
        self._run(self._start_calls(rows))

    def flush(self, time: int) -> None:
        self._run(self._wait_calls())
        if self._on_time_end is not None:
            self._call("on_time_end", self._on_time_end, time)

    def close(self) -> None:
        try:
            self._run(self._wait_calls())
            if self._on_end is not None:
                self._call("on_end", self._on_end)
        finally:
            self._shutdown()

    def abort(self) -> None:
        self._shutdown()

    # --- loop management -----------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def drive() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(
                target=drive, daemon=True, name=f"deltaflow-async-{self.name}"
            )
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the loop and wait for its result here."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop())
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ConnectorError(
                self.name, "the run was aborted while callbacks were running"
            ) from None

    def _call(self, what: str, function: Callable[..., Any], *args: Any) -> None:
        try:
            if inspect.iscoroutinefunction(function):
                self._run(function(*args))
            else:
                function(*args)
        except ConnectorError:
            raise
        except Exception as exc:
            raise connector_error(
                self.name, exc, f"the {what} callback raised {type(exc).__name__}: {exc}"
            ) from exc

    def _shutdown(self) -> None:
        """Cancel whatever still runs on the loop, then stop it and its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        try:
            asyncio.run_coroutine_threadsafe(self._cancel_all(), loop).result(
                timeout=_SHUTDOWN_TIMEOUT_S
            )
        except Exception:  # shutting down must not hide the run's outcome
            logger.exception("output %s: cancelling the remaining callbacks failed", self.name)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_SHUTDOWN_TIMEOUT_S)
        if thread.is_alive():
            logger.warning("output %s: the event loop did not stop; leaving it", self.name)
            return
        loop.close()

    # --- coroutines (run on the loop's thread) -------------------------------------------
    async def _start_calls(self, rows: Sequence[Row]) -> None:
        on_change = self._on_change
        tasks = self._tasks
        for key, row, time, diff in rows:
            addition = diff > 0
            tasks.append(
                asyncio.ensure_future(on_change(key=key, row=row, time=time, is_addition=addition))
            )
            for _ in range(abs(diff) - 1):  # a row present several times: one call each
                tasks.append(
                    asyncio.ensure_future(
                        on_change(key=key, row=dict(row), time=time, is_addition=addition)
                    )
                )

    async def _wait_calls(self) -> None:
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        # The first failure in call order is reported, so a failing run names the same row
        # every time; the rest of the time's calls are cancelled.
        failed = next(
            (
                task
                for task in tasks
                if task.done() and (task.cancelled() or task.exception() is not None)
            ),
            None,
        )
        if failed is None:
            return
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if failed.cancelled():
            raise ConnectorError(self.name, "an on_change call was cancelled")
        error = failed.exception()
        assert error is not None
        raise connector_error(
            self.name, error, f"the on_change callback raised {type(error).__name__}: {error}"
        ) from error

    async def _cancel_all(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()
