"""Where a single-row update's commit-to-callback time goes, phase by phase (issue #13).

Runs ``bench_update_latency.py`` (same environment knobs: BENCH_STATE, BENCH_UPDATES,
BENCH_GAP_MS, BENCH_MODE, BENCH_PIPELINE) on deltaflow with wall-clock stamps wrapped around
the methods each update passes through, and reports the median of each phase over the updates
(the load's commits left out):

* ``wake_session``: ``subject.commit()`` until the input session's thread has read the rows;
* ``session``: reading them until they are pushed to the engine (parse, ids, the upsert
  store, the delta);
* ``wake_engine``: the push until the engine starts the time;
* ``engine``: the time's operators and outputs, the subscribe callbacks included;
* ``total``: commit until ``on_time_end`` was called.

And, inside them, the median time of a few steps (``delta``, ``ids``, ``upsert`` in the
session; ``reduce``, ``reduce_prepare``, ``group_lookup`` in the engine) over the calls made
during the updates. A diagnostic, not a figure with a target: the wrappers add a little to
every phase. Not run by ``run.py`` (its name does not start with ``bench_``).

    python benchmarks/phases_update_latency.py
    BENCH_MODE=upsert BENCH_PIPELINE=passthrough python benchmarks/phases_update_latency.py
"""

from __future__ import annotations

import functools
import importlib
import os
import runpy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_now = time.perf_counter_ns
#: Per phase boundary, the stamps of every update, in order.
_stamps: dict[str, list[int]] = {"commit": [], "read": [], "push": [], "start": [], "end": []}
#: Per inner step, the durations (ns) of its calls, in order.
_durations: dict[str, list[int]] = {}
#: Per inner step, the CPU time (ns) its calls took on their thread: steadier than the wall
#: clock on a busy machine, where a step may wait for a core.
_cpu: dict[str, list[int]] = {}
_cpu_now = time.thread_time_ns


def _stamp_before(owner: Any, method: str, boundary: str) -> None:
    original = getattr(owner, method)

    @functools.wraps(original)
    def stamped(*args: Any, **kwargs: Any) -> Any:
        _stamps[boundary].append(_now())
        return original(*args, **kwargs)

    setattr(owner, method, stamped)


def _timed(owner: Any, method: str, step: str) -> None:
    original: Callable[..., Any] = getattr(owner, method)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = _now()
        cpu_start = _cpu_now()
        try:
            return original(*args, **kwargs)
        finally:
            _cpu.setdefault(step, []).append(_cpu_now() - cpu_start)
            _durations.setdefault(step, []).append(_now() - start)

    setattr(owner, method, timed)


def _install() -> None:
    import deltaflow.engine.boundary as boundary
    import deltaflow.engine.runtime as runtime
    import deltaflow.engine.stateful.arrangement as arrangement
    import deltaflow.engine.stateful.reduce as reduce
    import deltaflow.engine.stateful.reduce_rows as reduce_rows
    import deltaflow.io._python_subject as python
    from deltaflow.io._core import callback_sink, input_session, row_changes

    _stamp_before(python.ConnectorSubject, "commit", "commit")
    read = python._SubjectReader.read

    def read_stamped(self: Any) -> Any:
        event = read(self)
        if type(event).__name__ == "Data":
            _stamps["read"].append(_now())
        return event

    python._SubjectReader.read = read_stamped  # type: ignore[method-assign]
    _stamp_before(boundary.SourceHandle, "push", "push")
    _stamp_before(runtime.Runtime, "_process", "start")
    _stamp_before(callback_sink.CallbackSink, "on_time_end", "end")
    _timed(python._MessageParser, "parse", "parse")
    _timed(input_session.InputSession, "_delta", "delta")
    _timed(input_session.InputSession, "_ids", "ids")
    _timed(row_changes.RowChanges, "upsert_few", "upsert")
    _timed(runtime.Runtime, "_process", "process")
    _timed(reduce.ReduceOperator, "step", "reduce")
    _timed(reduce_rows.ReduceRowPath, "_prepare_small", "reduce_prepare")
    _timed(reduce_rows.ReduceRowPath, "_prepare_known", "reduce_prepare_known")
    _timed(arrangement.Arrangement, "lookup_rows", "group_lookup")
    # More steps to time, for a closer look: PHASES_EXTRA="module:Class.method,...".
    for spec in filter(None, os.environ.get("PHASES_EXTRA", "").split(",")):
        module_name, _, qualified = spec.partition(":")
        owner_name, _, method = qualified.rpartition(".")
        owner: Any = importlib.import_module(module_name)
        for part in filter(None, owner_name.split(".")):
            owner = getattr(owner, part)
        _timed(owner, method, qualified)


def _report(updates: int) -> None:
    last = {name: stamps[-updates:] for name, stamps in _stamps.items()}
    if any(len(stamps) < updates for stamps in last.values()):
        counts = {name: len(stamps) for name, stamps in _stamps.items()}
        raise SystemExit(f"phases: fewer stamps than updates: {counts}")

    spans = {
        "wake_session": ("commit", "read"),
        "session": ("read", "push"),
        "wake_engine": ("push", "start"),
        "engine": ("start", "end"),
        "total": ("commit", "end"),
    }
    durations = {
        name: [(b - a) / 1e3 for a, b in zip(last[start], last[end], strict=True)]
        for name, (start, end) in spans.items()
    }
    # Where the slowest updates lose their time: each phase's mean over the updates whose
    # total is in the top 5%.
    slow = sorted(range(updates), key=lambda i: durations["total"][i])[-max(1, updates // 20) :]
    print("phases over the updates (us): median, p95, mean among the slowest 5%")
    for name, values in durations.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        tail = statistics.mean(values[i] for i in slow)
        print(f"  {name:<13} {statistics.median(values):8.0f} {p95:8.0f} {tail:8.0f}")
    if os.environ.get("PHASES_WORST"):
        for i in slow[-10:]:
            print("  worst:", " ".join(f"{n}={v[i]:.0f}" for n, v in durations.items()))
    print(
        "steps over their last calls, as many as updates (us): wall median, CPU median,"
        " CPU max, CPU sum / updates"
    )
    for step, durations in _durations.items():
        wall = statistics.median(durations[-updates:]) / 1e3
        cpu = [ns / 1e3 for ns in _cpu[step][-updates:]]
        print(
            f"  {step:<24} {wall:8.0f} {statistics.median(cpu):8.0f} {max(cpu):8.0f}"
            f" {sum(cpu) / updates:8.0f}  ({len(durations)} calls)"
        )


def main() -> None:
    os.environ["BENCH_IMPL"] = "deltaflow"
    _install()
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    updates = int(float(os.environ.get("BENCH_UPDATES") or 1000))
    runpy.run_path(str(here / "bench_update_latency.py"), run_name="__main__")
    _report(updates)


if __name__ == "__main__":
    main()
