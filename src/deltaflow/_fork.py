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
Polars works; the forked child waits for it and exits with its exit status. So what the target
did before that point happens twice (once here, once there), and nothing after it runs in the
forked child.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import sys
from typing import Any

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
    global _broken
    if _pool_running_at_fork and not _broken:
        _broken = True
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


# Run by the fresh interpreter: the pickled (target, args, kwargs) arrive on stdin.
_RERUN = (
    "import sys, cloudpickle\n"
    "target, args, kwargs = cloudpickle.loads(sys.stdin.buffer.read())\n"
    "target(*args, **kwargs)\n"
)


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
        payload = cloudpickle.dumps(
            (target, tuple(getattr(process, "_args", ())), dict(getattr(process, "_kwargs", {})))
        )
    except Exception as exc:  # anything a pickler raises
        raise ForkedAfterPolarsError(
            f"{_MESSAGE} (deltaflow could not rerun the child's target in a fresh "
            f"interpreter: it cannot be pickled: {exc})"
        ) from exc
    logger.info(
        "this process was forked after Polars started: running its target %r again in a "
        "fresh interpreter",
        getattr(target, "__qualname__", target),
    )
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    done = subprocess.run(
        [sys.executable, "-c", _RERUN], input=payload, env=environment, check=False
    )
    os._exit(done.returncode)


def install() -> None:
    """Register the fork hooks (once per process)."""
    global _installed
    if _installed or not hasattr(os, "register_at_fork"):
        return
    _installed = True
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


install()
