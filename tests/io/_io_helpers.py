"""Helpers shared by the connector tests: running a streaming pipeline on a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import deltaflow as pw
from deltaflow.engine.runtime import stop_all_runs


class Changes:
    """Collects subscribe callbacks; lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, Any], int, bool]] = []
        self.times: list[int] = []
        self.ended = False
        self._cond = threading.Condition()

    def on_change(self, key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        with self._cond:
            self.rows.append((row, time, is_addition))
            self._cond.notify_all()

    def on_time_end(self, time: int) -> None:
        with self._cond:
            self.times.append(time)
            self._cond.notify_all()

    def on_end(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def subscribe(self, table: Any) -> Changes:
        pw.io.subscribe(table, self.on_change, on_end=self.on_end, on_time_end=self.on_time_end)
        return self

    def wait_for(self, predicate: Callable[[Changes], bool], timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"condition not reached; changes so far: {self.rows}")

    def state(self) -> list[dict[str, Any]]:
        """The current contents implied by the changes (as sorted row tuples)."""
        counts: dict[tuple, int] = {}
        for row, _, added in self.rows:
            key = tuple(sorted(row.items(), key=lambda kv: kv[0]))
            counts[key] = counts.get(key, 0) + (1 if added else -1)
        if any(n < 0 for n in counts.values()):
            return [{"negative": counts}]
        return [dict(k) for k in sorted(counts, key=repr) for _ in range(counts[k])]


class BackgroundRun:
    """``pw.run()`` on a thread, stopped with the runtime's stop facility."""

    def __init__(self, **run_kwargs: Any) -> None:
        self.error: BaseException | None = None
        self._run_kwargs = run_kwargs  # e.g. persistence_config
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            pw.run(monitoring_level=pw.MonitoringLevel.NONE, **self._run_kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
            self.error = exc

    def __enter__(self) -> BackgroundRun:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        deadline = time.monotonic() + 10
        while self._thread.is_alive() and time.monotonic() < deadline:
            stop_all_runs()
            self._thread.join(timeout=0.05)
        assert not self._thread.is_alive(), "the run did not stop"
        if self.error is not None:
            raise self.error
