"""Graceful stop: SIGTERM and SIGINT end a run the way finished inputs do.

An orchestrator stops a process with SIGTERM (then SIGKILL after a grace period); a person
presses Ctrl-C. Either way the run should end *between* two times: every output flushes and
closes what the engine already produced and persistence writes its final checkpoint. Then, as
in Pathway, ``pw.run`` raises ``SystemExit(143)`` (128 + SIGTERM, the status a terminated
process reports) for SIGTERM and ``KeyboardInterrupt`` for SIGINT, so that the program does not
go on as if its inputs had ended. A second signal while the run is finishing falls back to the
default behaviour (SIGINT raises ``KeyboardInterrupt`` at once, SIGTERM kills), so a stuck
output can still be interrupted.

Handlers are installed only on the main thread (Python delivers signals there only) and only
where the program left the default handler in place: a program with its own handler keeps it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

logger = logging.getLogger("deltaflow")

_STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _is_default(signum: int, handler: Any) -> bool:
    if signum == signal.SIGINT:
        return handler is signal.default_int_handler
    return handler in (signal.SIG_DFL, None)


@contextlib.contextmanager
def graceful_stop() -> Iterator[None]:
    """While the block runs, the first SIGTERM/SIGINT asks every run to stop cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        from deltaflow.engine.active_runs import ACTIVE

        # Read without the registry's lock: the main thread may hold it right now.
        runs = list(ACTIVE)
        if received or not runs:  # the second one, or no run yet: stop at once
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.raise_signal(signum)
            return
        received.append(signum)
        logger.info(
            "received %s: finishing the run (flushing outputs, writing the last "
            "checkpoint); send it again to stop at once",
            signal.Signals(signum).name,
        )
        for run in runs:
            run.stop()

    for signum in _STOPPING_SIGNALS:
        current = signal.getsignal(signum)
        if _is_default(signum, current):
            previous[signum] = current
            signal.signal(signum, on_signal)
    try:
        yield
    finally:
        for stopping, handler in previous.items():
            if signal.getsignal(stopping) is on_signal:
                signal.signal(stopping, handler)
    # Reached only when the run ended without an error of its own.
    if received == [signal.SIGTERM]:
        raise SystemExit(128 + signal.SIGTERM)
    if received == [signal.SIGINT]:
        raise KeyboardInterrupt
