"""What UDFs need from the run they are evaluated in.

Every ``Runtime.run`` opens a :class:`RunScope` (``begin_run``/``end_run``); the engine
evaluates expressions on the thread that runs the loop, where :func:`current_scope` finds it.
A scope owns, for that run only:

* the asyncio event loop that async UDFs run on (one background thread, started on first use,
  so that coroutines of one minibatch run concurrently and objects bound to the loop, such as
  HTTP sessions, survive between minibatches);
* the results of non-deterministic UDFs, kept per row id so that a deletion retracts exactly
  the value that was inserted (see ``deltaflow.udfs.evaluation``);
* open cache stores (``DiskCache`` files live under the run's persistence directory);
* with ``pw.run(udf_cache_directory=...)``, the files holding the remembered values
  (``deltaflow.udfs.row_store``) instead of dictionaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Coroutine, Iterator, MutableMapping
from typing import Any, TypeVar

logger = logging.getLogger("deltaflow.udfs")

T = TypeVar("T")

_SCOPE: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar(
    "deltaflow_udf_scope", default=None
)
_STORAGE_ROOT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "deltaflow_udf_storage_root", default=None
)
_ROW_VALUES_DIR: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "deltaflow_udf_row_values_dir", default=None
)
_LAST_SCOPE: list[RunScope] = []  # for calls made off the engine thread (wrapped functions)


def _worker_slots() -> tuple[int, int]:
    """How many files a UDF node's remembered values are split into, and the worker number of
    the first: ``PATHWAY_THREADS`` slots per process, numbered as Pathway numbers its workers
    (process index times threads, plus the thread)."""
    return _whole_env("PATHWAY_THREADS", 1), _whole_env("PATHWAY_PROCESS_ID", 0) * _whole_env(
        "PATHWAY_THREADS", 1
    )


def _whole_env(name: str, default: int) -> int:
    """A whole-number setting of the environment (the run checked these already; anything
    unreadable counts as the default here)."""
    try:
        return max(int(os.environ.get(name) or default), default)
    except ValueError:
        return default


class RunScope:
    """The UDF state of one run."""

    def __init__(self, storage_root: str | None, row_values_dir: str | None = None) -> None:
        self._storage_root = storage_root
        self._row_values_dir = row_values_dir
        self._row_value_files: list[Any] = []
        if row_values_dir is not None:
            from deltaflow.udfs.row_store import sweep

            sweep(row_values_dir)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.node_state: dict[int, Any] = {}
        self._stores: dict[tuple[int, str], Any] = {}

    # --- persistence --------------------------------------------------------------------------
    def storage_root(self) -> str | None:
        """The directory UDF disk caches live under, or None without persistence."""
        if self._storage_root is not None:
            return self._storage_root
        return os.environ.get("PATHWAY_PERSISTENT_STORAGE") or None

    def cache_store(self, strategy: Any, udf_name: str) -> Any:
        """The store of ``strategy`` for the UDF ``udf_name``, opened once per run."""
        key = (id(strategy), udf_name)
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                store = self._stores[key] = strategy.open_store(udf_name, self)
            return store

    def row_values(self) -> MutableMapping[int, Any]:
        """A new ``{row id: value}`` memory for one non-deterministic UDF node: a dictionary,
        or a file of the run's ``udf_cache_directory``."""
        if self._row_values_dir is None:
            return {}
        from deltaflow.udfs.row_store import DiskRowValues, ShardedRowValues, file_name

        directory = self._row_values_dir
        slots, first = _worker_slots()
        with self._lock:
            operator = len(self._row_value_files)
            files = [
                DiskRowValues(os.path.join(directory, file_name(operator, first + slot)))
                for slot in range(slots)
            ]
            values: Any = files[0] if slots == 1 else ShardedRowValues(files)
            self._row_value_files.append(values)
        return values

    # --- the event loop -----------------------------------------------------------------------
    def loop(self) -> asyncio.AbstractEventLoop:
        """The run's event loop, running on its own thread."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="deltaflow-udf-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run_coroutine(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the run's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop()).result()

    # --- the end ------------------------------------------------------------------------------
    def close(self) -> None:
        for store in self._stores.values():
            try:
                store.close()
            except Exception:  # closing must not hide the run's own error
                logger.exception("closing a UDF cache failed")
        self._stores.clear()
        self.node_state.clear()
        for values in self._row_value_files:
            try:
                values.close()
            except Exception:  # closing must not hide the run's own error
                logger.exception("removing a UDF value file failed")
        self._row_value_files.clear()
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:

            async def cancel_pending() -> None:
                pending = [
                    task for task in asyncio.all_tasks() if task is not asyncio.current_task()
                ]
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

            try:
                asyncio.run_coroutine_threadsafe(cancel_pending(), loop).result(timeout=5)
            except Exception:  # noqa: BLE001
                logger.warning("some UDF coroutines did not stop when the run ended")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()


def begin_run() -> tuple[RunScope, contextvars.Token[RunScope | None]]:
    """Open the UDF scope of a run on the calling (engine) thread."""
    scope = RunScope(_STORAGE_ROOT.get(), _ROW_VALUES_DIR.get())
    _LAST_SCOPE[:] = [scope]
    return scope, _SCOPE.set(scope)


def end_run(opened: tuple[RunScope, contextvars.Token[RunScope | None]]) -> None:
    """Close what :func:`begin_run` opened."""
    scope, token = opened
    try:
        _SCOPE.reset(token)
    except ValueError:  # reset from another context: nothing to restore there
        _SCOPE.set(None)
    if _LAST_SCOPE and _LAST_SCOPE[0] is scope:
        _LAST_SCOPE.clear()
    scope.close()


def current_scope() -> RunScope:
    """The scope of the run evaluating on this thread (or the latest run, for functions called
    from elsewhere; a fresh scope without persistence when no run is active)."""
    scope = _SCOPE.get()
    if scope is None:
        scope = _LAST_SCOPE[0] if _LAST_SCOPE else RunScope(_STORAGE_ROOT.get())
    return scope


@contextlib.contextmanager
def udf_storage(persistence_config: Any, row_values_dir: str | None = None) -> Iterator[None]:
    """Make the persistence directory of ``persistence_config`` (a filesystem backend) the
    root of UDF disk caches, and ``row_values_dir`` (``pw.run(udf_cache_directory=...)``)
    the place of the values non-deterministic UDFs remember, for runs started inside the
    block."""
    root = None
    backend = getattr(persistence_config, "backend", None)
    if backend is not None:
        if getattr(backend, "kind", None) == "filesystem":
            root = os.path.abspath(backend.path)
        else:
            logger.warning(
                "UDF disk caches need a filesystem persistence backend; %r keeps no UDF cache",
                backend,
            )
    token = _STORAGE_ROOT.set(root)
    values_token = _ROW_VALUES_DIR.set(
        None if row_values_dir is None else os.path.abspath(row_values_dir)
    )
    try:
        yield
    finally:
        _ROW_VALUES_DIR.reset(values_token)
        _STORAGE_ROOT.reset(token)
