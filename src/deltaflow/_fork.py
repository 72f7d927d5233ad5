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
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import Any

from deltaflow.errors import DeltaflowError

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

    original: Callable[..., Any] = pl.LazyFrame.collect

    @functools.wraps(original)
    def collect(*args: Any, **kwargs: Any) -> Any:
        raise ForkedAfterPolarsError(_MESSAGE)

    pl.LazyFrame.collect = collect  # type: ignore[method-assign]


def forked_after_polars() -> bool:
    """Whether this process is a child forked after Polars started its threads."""
    return _broken


def check_not_forked() -> None:
    """Raise :class:`ForkedAfterPolarsError` in a child that cannot use Polars."""
    if _broken:
        raise ForkedAfterPolarsError(_MESSAGE)


def install() -> None:
    """Register the fork hooks (once per process)."""
    global _installed
    if _installed or not hasattr(os, "register_at_fork"):
        return
    _installed = True
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


install()
