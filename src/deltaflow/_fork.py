"""Fork safety: a clear error instead of a hang in a child forked after Polars started.

Polars runs its parallel work on a pool of worker threads, started when the first parallel
operation runs (importing deltaflow already does). ``fork()`` copies only the calling
thread: in the child the pool still believes it has workers, so the first parallel operation
hands its work to threads that do not exist and waits for ever. Polars cannot restart its
pool, so a child forked after that point cannot use Polars — nor deltaflow — at all.

:func:`install` (called when deltaflow is imported) registers fork hooks: just before a fork
the parent checks whether Polars' worker threads are running; if so, the child replaces the
entry point of Polars' query engine (``LazyFrame.collect``, through which nearly every
DataFrame operation runs) with one that raises :class:`ForkedAfterPolarsError`, and
deltaflow's own entry points (:func:`check_not_forked`) raise it too. The message says what
to do: start children with the ``spawn`` (or ``forkserver``) method, or fork before
importing deltaflow.

One case is rescued instead (:func:`rerun_in_fresh_interpreter`, called by the guard and by
``pw.run``): a ``multiprocessing`` child started with ``fork`` whose target uses deltaflow, the
way Pathway programs (and Pathway's test helpers) run a pipeline in a child process. At its
first Polars computation (or ``pw.run``), its target, with its arguments, is pickled with
``cloudpickle`` (when installed) and run again from the start in a fresh interpreter, where
Polars works; the forked child waits for it, passes on SIGTERM and SIGINT (so that
``Process.terminate()`` stops the pipeline), and exits as it exited. So what the target
did before that point happens twice (once here, once there), and nothing after it runs in the
forked child.

A forked child also inherits the tables and outputs its parent had defined: a target may be
``pw.run`` itself, running what the parent built. Those are carried over too: the outputs and
tables the graph held at the fork are pickled with the target (locks, events, conditions and
queues in them, which belong to no run yet, become fresh ones) and put back in the fresh
interpreter's graph before the target runs. A graph that cannot be pickled (a connector
holding a live resource) is left behind, with a log line; the target then runs alone.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import pickle
import queue
import re
import subprocess
import sys
import threading
from typing import Any

from deltaflow._child_processes import exit_like, forward_stop_signals, stop_with_parent
from deltaflow.errors import DeltaflowError

logger = logging.getLogger("deltaflow")

_POOL_THREAD = re.compile(r"polars-\d+")
_MESSAGE = (
    "deltaflow cannot run in this process: it was forked (multiprocessing's 'fork' start "
    "method, os.fork) after Polars had started its worker threads, which the child does not "
    "have, so any Polars computation would wait for ever. Start the child with the 'spawn' or "
    "'forkserver' start method instead (multiprocessing.get_context('spawn').Process(...), or "
    "multiprocessing.set_start_method('spawn') at the start of the program), or fork before "
    "importing deltaflow."
)


class ForkedAfterPolarsError(DeltaflowError, RuntimeError):
    """This process was forked after Polars started its thread pool (see the message)."""


_pool_running_at_fork = False
_broken = False
_installed = False
#: In a child forked after Polars started: how many outputs and tables the graph held at the
#: fork (those were defined by the parent; the target may add more before it is rerun).
_inherited: tuple[int, int] = (0, 0)


def _pool_threads_running() -> bool:
    """Whether Polars' worker threads exist in this process (Linux: thread names; elsewhere
    assume they do, since importing deltaflow starts them)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return True
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/comm") as handle:
                if _POOL_THREAD.fullmatch(handle.read().strip()):
                    return True
        except OSError:
            continue
    return False


def _before_fork() -> None:
    global _pool_running_at_fork
    _pool_running_at_fork = _pool_threads_running()


def _after_fork_in_child() -> None:
    global _broken, _inherited
    if _pool_running_at_fork and not _broken:
        _broken = True
        plan = sys.modules.get("deltaflow.plan")
        if plan is not None:
            registry = plan.REGISTRY
            _inherited = (len(registry.outputs), len(registry.tables))
        _guard_polars()


def _guard_polars() -> None:
    import polars as pl

    def refuse(*args: Any, **kwargs: Any) -> Any:
        rerun_in_fresh_interpreter()  # a multiprocessing child: never returns
        raise ForkedAfterPolarsError(_MESSAGE)

    # Lazy queries run through ``collect``; eager DataFrame methods (``select``, ``filter`` ...)
    # through the private ``_collect_eager`` in the Polars releases that have it.
    for name in ("collect", "_collect_eager"):
        original = getattr(pl.LazyFrame, name, None)
        if original is not None:
            setattr(pl.LazyFrame, name, functools.wraps(original)(refuse))


def forked_after_polars() -> bool:
    """Whether this process is a child forked after Polars started its threads."""
    return _broken


def check_not_forked() -> None:
    """Raise :class:`ForkedAfterPolarsError` in a child that cannot use Polars."""
    if _broken:
        raise ForkedAfterPolarsError(_MESSAGE)


# Run by the fresh interpreter: what :func:`rerun_in_fresh_interpreter` pickled, on stdin.
_RERUN = (
    "import sys\nfrom deltaflow._fork import run_carried\nrun_carried(sys.stdin.buffer.read())\n"
)


def run_carried(payload: bytes) -> None:
    """In the fresh interpreter: restore the carried graph, then run the carried target."""
    import cloudpickle

    from deltaflow import plan

    next_id, graph, call = pickle.loads(payload)
    plan.skip_node_ids(next_id)  # nodes made while unpickling must not reuse carried ids
    outputs, tables = cloudpickle.loads(graph) if graph is not None else ([], [])
    target, args, kwargs = cloudpickle.loads(call)
    # Unpickling may have imported the target's modules, whose module-level tables the parent
    # had defined already: the graph is exactly the carried one, as in the forked child.
    plan.REGISTRY.outputs[:] = outputs
    plan.REGISTRY.tables[:] = tables
    target(*args, **kwargs)


def _carried_graph() -> bytes | None:
    """The outputs and tables this forked child inherited, pickled (None: nothing, or they
    cannot be pickled)."""
    plan = sys.modules.get("deltaflow.plan")
    outputs, tables = _inherited
    if plan is None or not (outputs or tables):
        return None
    registry = plan.REGISTRY
    graph = (list(registry.outputs[:outputs]), list(registry.tables[:tables]))
    try:
        return _dumps_with_fresh_locks(graph)
    except Exception as exc:  # noqa: BLE001 - anything a pickler raises: run the target alone
        logger.info(
            "the tables and outputs defined before the fork cannot be pickled (%s): the "
            "fresh interpreter runs the target without them",
            exc,
        )
        return None


def _fresh_event(was_set: bool) -> threading.Event:
    event = threading.Event()
    if was_set:
        event.set()
    return event


def _fresh_queue(kind: type[queue.Queue[Any]], size: int) -> queue.Queue[Any]:
    return kind(size)


def _series_from(name: str, values: Any, dtype: Any) -> Any:
    import polars as pl

    if isinstance(values, list):  # Python values (no Arrow form)
        return pl.Series(name, values, dtype)
    series = pl.Series(name, values)  # an Arrow array
    return series if series.dtype == dtype else series.cast(dtype)


def _frame_from(columns: list[Any]) -> Any:
    import polars as pl

    return pl.DataFrame(columns)


def _series_parts(series: Any) -> tuple[str, Any, Any]:
    """A Series as plain data, read without Polars' thread pool (gone in a forked child,
    where a query or Polars' own pickling waits for it for ever): an Arrow array where the
    type has one, else Python values."""
    import polars as pl

    if series.dtype != pl.Object:
        try:
            return series.name, series.to_arrow(), series.dtype
        except Exception:  # noqa: BLE001 - no Arrow form (e.g. 128-bit integers)
            pass
    return series.name, series.to_list(), series.dtype


def _dumps_with_fresh_locks(value: Any) -> bytes:
    """``cloudpickle.dumps(value)`` in a forked child: the synchronisation objects inside
    ``value`` (which no pickler takes) are pickled as new ones (unlocked locks, events as set as
    they were, empty queues of the same size), and Polars frames and Series column by column
    as Arrow arrays or values (see :func:`_series_parts`)."""
    import cloudpickle
    import polars as pl

    # The lock types are not importable by name: new ones come from their factories.
    lock_factories = {
        type(threading.Lock()): threading.Lock,
        type(threading.RLock()): threading.RLock,
    }

    class Pickler(cloudpickle.CloudPickler):
        def reducer_override(self, obj: Any) -> Any:
            kind = type(obj)
            if kind in lock_factories:
                return lock_factories[kind], ()
            if isinstance(obj, threading.Event):
                return _fresh_event, (obj.is_set(),)
            if isinstance(obj, threading.Condition):
                return threading.Condition, ()
            if isinstance(obj, queue.Queue):
                return _fresh_queue, (kind, obj.maxsize)
            if isinstance(obj, pl.Series):
                return _series_from, _series_parts(obj)
            if isinstance(obj, pl.DataFrame):
                return _frame_from, (obj.get_columns(),)
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def rerun_in_fresh_interpreter() -> None:
    """In a child that cannot use Polars: run the ``multiprocessing`` target of this process
    again in a fresh interpreter and exit with its status (never returns). Raises
    :class:`ForkedAfterPolarsError` when that is impossible: not a ``multiprocessing`` child,
    no ``cloudpickle``, or a target it cannot pickle."""
    import multiprocessing

    process = multiprocessing.current_process()
    target = getattr(process, "_target", None)
    if target is None:
        raise ForkedAfterPolarsError(_MESSAGE)
    try:
        import cloudpickle
    except ImportError:
        raise ForkedAfterPolarsError(
            _MESSAGE + " (Installing cloudpickle lets deltaflow rerun a multiprocessing "
            "child's target in a fresh interpreter instead.)"
        ) from None
    try:
        call = cloudpickle.dumps(
            (target, tuple(getattr(process, "_args", ())), dict(getattr(process, "_kwargs", {})))
        )
    except Exception as exc:  # anything a pickler raises
        raise ForkedAfterPolarsError(
            f"{_MESSAGE} (deltaflow could not rerun the child's target in a fresh "
            f"interpreter: it cannot be pickled: {exc})"
        ) from exc
    from deltaflow import plan

    payload = pickle.dumps((plan.node_ids_used(), _carried_graph(), call))
    logger.info(
        "this process was forked after Polars started: running its target %r again in a "
        "fresh interpreter",
        getattr(target, "__qualname__", target),
    )
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # The fresh interpreter runs on this child's behalf: a SIGTERM or SIGINT this child gets
    # (multiprocessing's terminate()) is passed on, and it gets SIGTERM if this child dies.
    rerun = subprocess.Popen(  # noqa: PLW1509 - this forked child runs only the calling thread
        [sys.executable, "-c", _RERUN],
        stdin=subprocess.PIPE,
        env=environment,
        preexec_fn=functools.partial(stop_with_parent, os.getpid()),
    )
    with forward_stop_signals([rerun]):
        rerun.communicate(payload)
    exit_like(rerun.returncode)


def install() -> None:
    """Register the fork hooks (once per process)."""
    global _installed
    if _installed or not hasattr(os, "register_at_fork"):
        return
    _installed = True
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


install()
