"""The engine loop: compile the plan to operators, then process one time after another.

Sources push committed minibatches from their own threads. The loop wakes when something
arrives, gives every pending batch a time (its own, for sources that pin times, else the next
even millisecond timestamp), pushes each time's deltas through the operators in topological
order, hands outputs to the sinks and tells each sink to flush that time.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeGuard

import polars as pl

from deltaflow import plan
from deltaflow.engine import times
from deltaflow.engine.active_runs import active_run
from deltaflow.engine.active_runs import stop_all_runs as stop_all_runs  # documented here
from deltaflow.engine.boundary import ConnectorError, Sink, Source, SourceHandle, sink_errors
from deltaflow.engine.operators import (
    STATELESS,
    FilterOperator,
    FlattenOperator,
    InputOperator,
    Operator,
    OutputOperator,
    SelectOperator,
)
from deltaflow.errors import (
    EngineError,  # noqa: F401 - its former home
    without_unhandled_errors,
)

logger = logging.getLogger("deltaflow.engine")

OPERATORS: dict[type[plan.Node], Callable[[Any], Operator]] = dict(STATELESS)


def register_operator(node_type: type[plan.Node], factory: Callable[[Any], Operator]) -> None:
    """Teach the compiler how to run a new kind of plan node."""
    OPERATORS[node_type] = factory


class _SelfTimed(Protocol):
    """An operator that may ask for a time of its own (``forget`` marking retractions)."""

    requested_time: int | None


def _is_self_timed(op: object) -> TypeGuard[_SelfTimed]:
    return hasattr(op, "requested_time")


def inline_processing_enabled() -> bool:
    """Whether small commits may be processed on their source's thread (on unless
    ``DELTAFLOW_INLINE_ENGINE=0``; see :meth:`Runtime.process_inline`)."""
    return os.environ.get("DELTAFLOW_INLINE_ENGINE", "1").strip() != "0"


def _load_operator_modules() -> None:
    """Import the modules that register operators for stateful plan nodes."""
    import importlib

    for module in ("deltaflow.engine.stateful",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


class Runtime:
    """One run of a set of outputs."""

    #: Whether sources' threads may process their small commits themselves when the engine
    #: is idle (:meth:`process_inline`); not with several workers, whose loop exchanges data.
    inline_processing = True

    def __init__(
        self, outputs: Sequence[plan.OutputNode], *, monitoring: Any = None, persistence: Any = None
    ) -> None:
        _load_operator_modules()
        self.persistence = persistence  # a deltaflow.persistence.run.PersistentRun, or None
        self.order = plan.topological_order(outputs)
        self.operators: list[Operator] = []
        self._index: dict[int, int] = {}
        for node in self.order:
            factory = OPERATORS.get(type(node))
            if factory is None:
                raise NotImplementedError(f"no operator implements {type(node).__name__}")
            self._index[node.uid] = len(self.operators)
            self.operators.append(factory(node))
        self._inputs_of = [[self._index[i.uid] for i in node.inputs] for node in self.order]
        self.inputs: list[tuple[InputOperator, SourceHandle]] = []
        self._wake = threading.Event()
        _check_unique_names(self.operators)
        for op in self.operators:
            if isinstance(op, InputOperator):
                name = op.node.describe()
                handle = (
                    SourceHandle(name, self._wake.set)
                    if persistence is None
                    else persistence.handle(op.node.source, name, self._wake.set)
                )
                self.inputs.append((op, handle))
        self.sinks: list[Sink] = [
            op.sink
            for op in self.operators
            if isinstance(op, OutputOperator) and op.sink is not None
        ]
        # Operators that may ask for times of their own (``requested_time``).
        self._self_timed = [op for op in self.operators if _is_self_timed(op)]
        self._part_paths: dict[int, list[int]] = {}
        if persistence is None:  # a checkpoint must never see half a time
            for index, (op, handle) in enumerate(self.inputs):
                path = self._row_wise_path(self._index[op.node.uid])
                if path is not None:
                    self._part_paths[index] = path
                    handle.accepts_parts = True
        self._open_time: int | None = None  # a time whose parts are being streamed
        self._open_inputs: set[int] = set()  # inputs still to push their time's last part
        # Static inputs whose first commit has not come yet: the first time waits for them.
        self._unstarted_static = {
            index
            for index, (op, _) in enumerate(self.inputs)
            if getattr(op.node.source, "bounded", False)
        }
        self.last_time: int | None = None
        self.monitoring = monitoring
        self._stop_requested = threading.Event()
        # What the loop has taken and not yet processed (see _take_pushed).
        self._timed: dict[int, list[tuple[int, pl.DataFrame]]] = {}
        self._live: list[tuple[int, pl.DataFrame]] = []
        self._taken_rows = [0] * len(self.inputs)
        # Processing on sources' threads (process_inline): the lock the engine's thread holds
        # except while waiting, the run's context variables, a failure met there.
        self._engine_lock = threading.Lock()
        self._inline_ready = False
        self._run_context: contextvars.Context | None = None
        self._inline_failure: BaseException | None = None
        if self.inline_processing and persistence is None and inline_processing_enabled():
            for _, handle in self.inputs:
                handle.process_inline = self.process_inline
        self._setup_errors()

    def _setup_errors(self) -> None:
        """Errors as values: the run's error context, the log tables' inputs (finished by the
        loop when every other input has), and the operators downstream of a log table (their
        errors are only logged, never fed back into a log)."""
        from deltaflow.errors import ErrorContext, ErrorLogSource, active

        self.errors = active() or ErrorContext(terminate_on_error=True)
        self.errors.know_connectors(self.order)  # a connector's failure names its definition
        log_inputs = {
            op.node.uid for op, _ in self.inputs if isinstance(op.node.source, ErrorLogSource)
        }
        self._log_handles = [handle for op, handle in self.inputs if op.node.uid in log_inputs]
        for op, handle in self.inputs:  # before any source starts: none of its rows is lost
            source = op.node.source
            if isinstance(source, ErrorLogSource):
                self.errors.attach_log(source.key, handle)
        self._data_handles = [handle for op, handle in self.inputs if op.node.uid not in log_inputs]
        below_log = set(log_inputs)
        for node in self.order:
            if any(i.uid in below_log for i in node.inputs):
                below_log.add(node.uid)
        self.errors.silent_nodes |= below_log

    def _row_wise_path(self, start: int) -> list[int] | None:
        """The operators fed by operator ``start``, in topological order, if every one of them
        works row by row on a single input and ends in a sink that takes parts of a time:
        then a part of a time can flow through on its own, and the parts' outputs together
        are the whole time's (distinct ids stay distinct). None otherwise."""
        consumers: dict[int, list[int]] = {}
        for position, inputs in enumerate(self._inputs_of):
            for i in inputs:
                consumers.setdefault(i, []).append(position)
        path, todo = {start}, [start]
        while todo:
            for position in consumers.get(todo.pop(), []):
                op = self.operators[position]
                if len(self._inputs_of[position]) != 1 or getattr(op, "always_step", False):
                    return None
                if isinstance(op, OutputOperator):
                    if op.sort_by or not getattr(op.sink, "accepts_parts", False):
                        return None
                elif not isinstance(op, SelectOperator | FilterOperator | FlattenOperator):
                    return None
                if position not in path:
                    path.add(position)
                    todo.append(position)
        return sorted(path)

    def stop(self) -> None:
        """End the run after the time being processed (thread-safe)."""
        self._stop_requested.set()
        self._wake.set()

    # --- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        with active_run(self):
            self._run()

    def _run(self) -> None:
        started: list[Any] = []
        ok = False
        from deltaflow.udfs.context import begin_run, end_run

        udf_scope = begin_run()  # the run's UDF state: event loop, remembered values, caches
        try:
            if self.persistence is not None:  # outputs learn where the checkpoint left them
                self.persistence.prepare(self)
            for sink in self.sinks:
                sink.start()
            if self.monitoring is not None:  # before sources: their first rows are counted
                self.monitoring.start(self)
            if self.persistence is not None:  # replays the checkpoint before sources start
                self.persistence.start(self)
            for op, handle in self.inputs:
                source = op.node.source
                if source is None:
                    raise RuntimeError(f"{op.describe()}: an input without a source")
                started.append(source)
                source.start(handle)
            self._loop()
            ok = True
        except KeyboardInterrupt:
            logger.info("interrupted: finishing the run")
            ok = True
        finally:
            end_run(udf_scope)
            for source in started:
                try:
                    source.stop()
                except Exception:  # stopping must not hide the real error
                    logger.exception("stopping source %s failed", getattr(source, "name", "?"))
            ended = False
            try:
                self._end_sinks(ok)
                ended = ok
            finally:
                # After the sinks ended: the last report counts the rows their threads were
                # still writing (stopped before, it showed an output as "0 rows written").
                if self.monitoring is not None:
                    self.monitoring.stop()
                if self.persistence is not None:  # the final checkpoint, once all is written
                    self.persistence.finish(self.last_time, commit=ended)

    def _end_sinks(self, ok: bool) -> None:
        first_error: BaseException | None = None
        for sink in self.sinks:
            try:
                if ok:
                    sink.on_end()
                else:
                    sink.abort()
            except Exception as exc:  # noqa: BLE001
                if first_error is None:
                    first_error = exc
        if ok and first_error is not None:
            if isinstance(first_error, ConnectorError):
                raise first_error
            raise ConnectorError(
                getattr(first_error, "connector", "output"), str(first_error)
            ) from first_error

    def _check_failures(self) -> None:
        if self._inline_failure is not None:  # raised while processing on a source's thread
            raise self._inline_failure
        for _, handle in self.inputs:
            if handle.failure is not None:
                error = handle.failure
                if isinstance(error, ConnectorError):
                    raise error
                raise ConnectorError(handle.name, f"{type(error).__name__}: {error}") from error
        for sink in self.sinks:
            sink_error = sink.failure()
            if sink_error is not None:
                if isinstance(sink_error, ConnectorError):
                    raise sink_error
                raise ConnectorError(
                    sink.name, f"{type(sink_error).__name__}: {sink_error}"
                ) from sink_error

    def _loop(self) -> None:
        # The run's context variables (error context, UDF scope, debug flag): a time processed
        # on a source's thread runs in a copy of them (see process_inline).
        self._run_context = contextvars.copy_context()
        with self._engine_lock:  # held by this thread except while it waits for pushes
            self._inline_ready = self.inline_processing
            try:
                self._run_loop()
            finally:
                self._inline_ready = False

    def _run_loop(self) -> None:
        while True:
            self._check_failures()
            self.errors.flush()  # failures connectors reported from their own threads
            if self.persistence is not None:  # checkpoints the times processed so far
                self.persistence.tick(self.last_time)
            if self._stop_requested.is_set():
                return
            # Cleared before taking, so that a push landing after the take wakes the wait.
            self._wake.clear()
            self._progress()
            took = self._take_pushed()
            if self._open_inputs:
                # The open time's last parts are still to come; what the other inputs pushed
                # meanwhile belongs to that time too and waits for it.
                if not took:
                    self._idle(0.05)
                continue
            if self._waits_for_static():
                if not took:
                    self._idle(0.05)
                continue
            if not self._timed and not self._live and self._open_time is None:
                if all(handle.finished for handle in self._data_handles) and not any(
                    handle.has_pending() for handle in self._log_handles
                ):
                    self._check_failures()
                    self._process_final_time()
                    return
                self._idle(0.05)
                continue
            self._process_taken()

    def _idle(self, timeout: float) -> None:
        """Wait for a push (or ``timeout`` seconds) with the engine free for sources' threads
        to process their commits on (see :meth:`process_inline`)."""
        self._engine_lock.release()
        try:
            self._wake.wait(timeout)
        finally:
            self._engine_lock.acquire()

    def _take_pushed(self) -> bool:
        """Take every input's pushes: parts of a time go through their row-wise path at once,
        whole commits wait in ``_live`` (or ``_timed``, by pinned time) to be processed."""
        took = False
        for index, (_, handle) in enumerate(self.inputs):
            for batch, pinned, _offsets, more in handle.take():
                took = True
                if more:
                    self._process_part(index, batch)
                    handle.mark_processed(batch.height)
                    continue
                self._open_inputs.discard(index)
                self._unstarted_static.discard(index)
                self._taken_rows[index] += batch.height
                if pinned is None:
                    self._live.append((index, batch))
                else:
                    self._timed.setdefault(pinned, []).append((index, batch))
        if self._open_inputs:
            # An input stopped in the middle of a time does not keep it open.
            self._open_inputs = {i for i in self._open_inputs if not self.inputs[i][1].finished}
        return took

    def _waits_for_static(self) -> bool:
        """Whether the first time waits for a static input that has not committed yet."""
        if self._unstarted_static and (self._timed or self._live):
            self._unstarted_static = {
                i for i in self._unstarted_static if not self.inputs[i][1].finished
            }
        return bool(self._unstarted_static) and bool(self._timed or self._live)

    def _process_taken(self) -> None:
        """Process the open time and the commits taken, each at its time, in order."""
        timed, live, taken_rows = self._timed, self._live, self._taken_rows
        self._timed, self._live, self._taken_rows = {}, [], [0] * len(self.inputs)
        if self._open_time is not None:
            time, self._open_time = self._open_time, None
            self._process(time, live)
            live = []
        for pinned in sorted(timed):
            time = (
                pinned
                if self.last_time is None or pinned > self.last_time
                else self._even_after_last()
            )
            self._process(time, timed[pinned])
        for batches in times.live_times(live):
            self._process(self._next_time(), batches)
        for index, (_, handle) in enumerate(self.inputs):
            if taken_rows[index]:
                handle.mark_processed(taken_rows[index])

    # --- processing on a source's thread ----------------------------------------------------
    def process_inline(self) -> bool:
        """Process what the sources pushed right now, on the calling source's thread, if the
        engine is idle; False leaves it to the engine's thread (which the caller wakes).

        A small commit arriving while the engine waits would otherwise wait for the engine's
        thread to be woken and scheduled: on a busy machine that hand-over, not the work, made
        the slowest updates slow (waking the engine took 1.3 ms on average among the slowest
        5% of single-row updates, the whole update 3.3 ms). The engine's lock makes the two
        threads take turns; the time runs in the run's context variables, so it sees the run
        as the engine's thread would. A failure is raised by the engine's thread, as its own.
        """
        if not self._engine_lock.acquire(blocking=False):
            return False  # the engine's thread is at work: it takes the push next
        try:
            if not self._inline_ready or self._holds_work() or self._stop_requested.is_set():
                return False
            context = self._run_context
            assert context is not None
            done: bool = context.run(self._process_pushed)
            return done
        except BaseException as exc:  # noqa: BLE001 - the engine's thread raises it
            self._inline_failure = exc
            self._wake.set()
            return True
        finally:
            self._engine_lock.release()

    def _holds_work(self) -> bool:
        """Whether the loop holds taken work or waits for something before the next time."""
        return bool(
            self._open_inputs
            or self._unstarted_static
            or self._open_time is not None
            or self._timed
            or self._live
            or self._inline_failure is not None
        )

    def _process_pushed(self) -> bool:
        self._take_pushed()
        if self._open_inputs or self._waits_for_static():
            return False  # the engine's thread goes on from what was taken
        if self._timed or self._live:
            self._process_taken()
        return True

    def _progress(self) -> None:
        """Between two looks at the inputs: move on work started earlier that waits for
        something other than the inputs (several workers: times still in flight)."""

    def _process_requested_times(self) -> None:
        """Process the times operators asked for themselves (``requested_time``, e.g. the odd
        time right after a time at which ``forget`` marks its retractions), in order."""
        last = -1 if self.last_time is None else self.last_time
        wanted = [w for op in self._self_timed if (w := op.requested_time) is not None and w > last]
        if wanted:
            self._process(min(wanted), [])  # which processes the later ones

    def _process_final_time(self) -> None:
        """When every input has finished, operators holding rows back until event time
        passes (``buffer``, delayed windows) let them out at :data:`times.FINAL_TIME`."""
        waiting = False
        for op in self.operators:
            finish = getattr(op, "inputs_finished", None)
            if finish is not None and finish(times.FINAL_TIME):
                waiting = True
        if waiting and (self.last_time is None or self.last_time < times.FINAL_TIME):
            last = self.last_time
            self._process(times.FINAL_TIME, [])
            # The inputs' last time stays the run's (checkpoints record input times).
            self.last_time = last

    def _next_time(self) -> int:
        now = times.even_now_ms()
        return now if self.last_time is None or now > self.last_time else self._even_after_last()

    def _even_after_last(self) -> int:
        """The next even time after the last one (which is odd after a time an operator
        asked for itself, such as marked forgetting)."""
        assert self.last_time is not None
        return self.last_time + 2 - (self.last_time & 1)

    def _process_part(self, index: int, batch: pl.DataFrame) -> None:
        """Run one part of the open time (opened here if need be) from input ``index`` through
        its row-wise operators to their sinks; the time ends when its last part comes."""
        if self._open_time is None:
            self._open_time = self._next_time()
        self._open_inputs.add(index)
        op = self.inputs[index][0]
        op.pending.append(batch)
        results: dict[int, pl.DataFrame | None] = {}
        for position in self._part_paths[index]:
            deltas = [results.get(i) for i in self._inputs_of[position]]
            if position != self._index[op.node.uid] and deltas[0] is None:
                continue
            self.errors.current = self.operators[position].node
            if self.errors.seen:
                deltas = without_unhandled_errors(self.operators[position], deltas)
            results[position] = self.operators[position].step(self._open_time, deltas)
        self.errors.current = None  # a later failure is no operator's (see error_display)
        self.errors.flush()

    def _process(self, time: int, batches: list[tuple[int, pl.DataFrame]]) -> None:
        for index, batch in batches:
            self.inputs[index][0].pending.append(batch)
        self.last_time = time
        results: list[pl.DataFrame | None] = [None] * len(self.operators)
        for position, op in enumerate(self.operators):
            deltas = [results[i] for i in self._inputs_of[position]]
            if (
                not isinstance(op, InputOperator)
                and all(d is None for d in deltas)
                and not getattr(op, "always_step", False)
                and getattr(op, "requested_time", None) != time
            ):
                continue
            self.errors.current = op.node
            if self.errors.seen:
                deltas = without_unhandled_errors(op, deltas)
            results[position] = op.step(time, deltas)
        self.errors.current = None  # a later failure is no operator's (see error_display)
        self.errors.flush()
        for sink in self.sinks:
            with sink_errors(sink):
                sink.on_time_end(time)
        self._check_failures()
        if self._self_timed:
            self._process_requested_times()


def run_outputs(
    outputs: Sequence[plan.OutputNode],
    *,
    monitoring: Any = None,
    persistence: Any = None,
    terminate_on_error: bool | None = None,
) -> None:
    """Compile and run the given outputs until every source is finished.

    ``terminate_on_error=False`` turns failures into error values (see ``deltaflow.errors``);
    the default stops the run at the first failure."""
    from deltaflow.errors import run_context

    if not outputs:
        logger.warning("pw.run(): no outputs are defined, nothing to compute")
        return
    with run_context(terminate_on_error):
        _make_runtime(outputs, monitoring, persistence).run()


def _make_runtime(outputs: Sequence[plan.OutputNode], monitoring: Any, persistence: Any) -> Runtime:
    """This process's runtime: the one-process loop, or one worker's part of a run on
    several workers (``PATHWAY_PROCESSES`` above 1, as ``deltaflow spawn -n N`` sets)."""
    import importlib

    # Imported by name, as the stateful operators are: the workers' runtime builds on this one.
    config = importlib.import_module("deltaflow.engine.workers.config").worker_config()
    if config.count == 1:
        return Runtime(outputs, monitoring=monitoring, persistence=persistence)
    workers = importlib.import_module("deltaflow.engine.workers.runtime")
    return workers.PartitionedRuntime(
        outputs, config=config, monitoring=monitoring, persistence=persistence
    )


def _check_unique_names(operators: Sequence[Operator]) -> None:
    """Refuse a run where two connectors, inputs or outputs, were given the same ``name=``
    (as Pathway does): the name is what identifies a connector's persisted data, its
    monitoring and its log lines, so two sharing one would mix them. Default names (none
    given) may repeat."""
    seen: dict[str, str] = {}
    for op in operators:
        end: Source | Sink | None
        if isinstance(op, InputOperator):
            end, kind = op.node.source, "an input"
        elif isinstance(op, OutputOperator):
            end, kind = op.sink, "an output"
        else:
            continue
        if end is None or not getattr(end, "named", False):
            continue
        name = end.name
        where = f"{kind} defined at {getattr(op.node.origin, 'location', '') or 'an unknown line'}"
        if name in seen:
            raise ValueError(
                f"two connectors have the name {name!r} ({seen[name]} and {where}); a "
                "connector's name identifies its persisted data, its monitoring and its log "
                "lines, so give each a name of its own"
            )
        seen[name] = where
