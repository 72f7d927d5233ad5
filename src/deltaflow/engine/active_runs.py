"""The runs in progress in this process: what :func:`stop_all_runs` and signal handlers stop,
and the garbage collector's freeze while any run goes on."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Protocol


class _Stoppable(Protocol):
    def stop(self) -> None: ...


#: The runs in progress, oldest first (read without the lock by signal handlers).
ACTIVE: list[_Stoppable] = []
_LOCK = threading.Lock()


@contextlib.contextmanager
def active_run(run: _Stoppable) -> Iterator[None]:
    """Register ``run`` as in progress while the block runs.

    While any run is in progress, the objects alive when the first one started (modules, the
    plan ...) are exempt from cyclic garbage collection: a full collection otherwise scans
    them all and stalls the time being processed for tens of milliseconds."""
    with _LOCK:
        if not ACTIVE:
            gc.freeze()
        ACTIVE.append(run)
    try:
        yield
    finally:
        with _LOCK:
            ACTIVE.remove(run)
            if not ACTIVE:
                gc.unfreeze()


def stop_all_runs() -> None:
    """Ask every run in progress to end as if its inputs had finished.

    Streaming inputs never finish by themselves; tests (and embedding applications) run
    ``pw.run()`` on a thread and call this to end it cleanly: sinks get ``on_end``.
    """
    with _LOCK:
        runs = list(ACTIVE)
    for run in runs:
        run.stop()
