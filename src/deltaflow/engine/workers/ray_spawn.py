"""Run the workers of a program as Ray actors (``deltaflow spawn --ray ADDRESS -n N``).

The ``spawn`` process connects to the Ray cluster (``ray.init(address=...)``) as its driver
and starts one :class:`WorkerActor` per worker. Each actor is created with the worker's
environment (``PATHWAY_PROCESSES``, ``PATHWAY_PROCESS_ID``, the run id, ...,
``DELTAFLOW_WORKERS_TRANSPORT=ray``) as its Ray runtime environment, so its process starts
with them as a worker process of ``spawn -n N`` would (``PYTHONHASHSEED`` included: every
worker builds the same graph), and with the rest of the driver's environment but the
variables that describe the driver's machine (:data:`NOT_PASSED_ON`: ``PATH``, ``HOME``,
``RAY_*``, ...). The actors are spread over the cluster's nodes (Ray's
``SPREAD`` strategy, each asking for ``DELTAFLOW_RAY_WORKER_CPUS`` CPUs, default 1). Each runs
the Python program in its own process (``runpy``, as ``python PROGRAM`` would, from the
driver's working directory: the program and its files must be at the same paths on every
node), and the workers exchange their messages through Ray (``ray_transport``).

The driver waits for every actor's run. A worker whose program fails tells the others itself;
an actor that dies (its process killed, its node lost) is noticed by the driver, which tells
the others, so that every worker stops with an error naming it instead of waiting for it.
"""

from __future__ import annotations

import logging
import os
import re
import runpy
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from deltaflow.engine.workers.config import worker_config
from deltaflow.engine.workers.ray_transport import DELIVER_GROUP, RayMesh, install

logger = logging.getLogger("deltaflow.cli")

#: How long the driver waits for the cluster to place and start every worker's actor.
START_TIMEOUT_SECONDS = 120.0
#: After a worker failed, the others get this long to stop by themselves before they are killed.
GRACE_SECONDS = 5.0
#: Ray forwards the actors' output to the driver from their log files, a little later: the
#: driver waits this long after the runs so that their last lines are shown.
LOG_LINGER_SECONDS = 1.0
#: Variables of the driver's environment that describe its machine or session, not the
#: program: they do not reach the actors (every other one does, as with local processes).
NOT_PASSED_ON = frozenset(
    [
        "PATH",
        "HOME",
        "PWD",
        "OLDPWD",
        "SHELL",
        "SHLVL",
        "USER",
        "LOGNAME",
        "HOSTNAME",
        "TERM",
        "TMPDIR",
        "DISPLAY",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "_",
    ]
)
NOT_PASSED_ON_PREFIXES = ("RAY_", "LD_", "SSH_", "CONDA_")

_PYTHON_FLAGS = frozenset("bBdEiIOqsSuvx")


class RayUnavailableError(ImportError):
    """``--ray`` without Ray installed."""


def import_ray() -> Any:
    """The ``ray`` module, or a clear error saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(
            "--ray needs Ray, an optional dependency: pip install 'deltaflow[ray]'"
        ) from exc
    return ray


def python_program(command: Sequence[str]) -> tuple[str, str, list[str]]:
    """What to run in each actor for ``command`` (``python PROGRAM.py ARGS``, ``python -m
    MODULE ARGS`` or ``python -c CODE ARGS``): ``(kind, target, sys.argv)`` with kind
    ``path``, ``module`` or ``code``. Other commands cannot run in a Ray actor: ValueError."""
    usage = (
        "--ray runs Python programs in Ray actors: give 'python PROGRAM.py [ARGS]', "
        f"'python -m MODULE [ARGS]' or 'python -c CODE [ARGS]', not {' '.join(command)!r}"
    )
    if not command or not re.fullmatch(r"python[0-9.]*", os.path.basename(command[0])):
        raise ValueError(usage)
    rest = list(command[1:])
    while rest and re.fullmatch(r"-[a-zA-Z]+", rest[0]) and set(rest[0][1:]) <= _PYTHON_FLAGS:
        rest.pop(0)  # flags of the interpreter without a value (-u, -B, ...): no meaning here
    if not rest:
        raise ValueError(usage)
    if rest[0] in ("-m", "-c"):
        if len(rest) < 2:
            raise ValueError(usage)
        kind = "module" if rest[0] == "-m" else "code"
        return kind, rest[1], [rest[0], *rest[2:]]
    if rest[0].startswith("-"):
        raise ValueError(usage)
    return "path", rest[0], rest


class WorkerActor:
    """One worker of the run, in a Ray actor (made remote by :func:`run_on_ray`)."""

    def __init__(self) -> None:
        config = worker_config()  # the actor's process starts with the worker's environment
        self.mesh = RayMesh(config)
        install(self.mesh)

    def where(self) -> tuple[str, int]:
        """The node this actor runs on and its process id."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def deliver(self, sender: int, sequence: int, header: tuple[Any, ...], *buffers: Any) -> None:
        """A message from worker ``sender`` (see ``ray_transport``)."""
        self.mesh.accept(sender, sequence, header, list(buffers))

    def peer_gone(self, peer: int, text: str) -> None:
        """The driver saw worker ``peer``'s actor die."""
        self.mesh.gone(peer, text)

    def run(
        self, program: tuple[str, str, list[str]], cwd: str, handles: list[Any]
    ) -> tuple[int, str | None]:
        """Run the program as ``python`` would, with ``handles`` the actors of every worker;
        its exit status and, when it failed, the error's text."""
        self.mesh.connect(handles)
        kind, target, argv = program
        os.chdir(cwd)
        sys.argv = list(argv)
        try:
            if kind == "path":
                sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
                runpy.run_path(target, run_name="__main__")
            elif kind == "module":
                sys.path.insert(0, cwd)
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                sys.path.insert(0, "")
                exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - python -c
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                return exc.code or 0, None if not exc.code else f"exit status {exc.code}"
            return 1, str(exc.code)
        except BaseException as exc:  # noqa: BLE001 - reported to the driver, which fails the run
            traceback.print_exc()
            return 1, f"{type(exc).__name__}: {exc}"
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            self.mesh.flush(timeout=10.0)
        return 0, None


def _actor_environment(env: dict[str, str]) -> dict[str, str]:
    variables = {
        name: value
        for name, value in env.items()
        if name not in NOT_PASSED_ON and not name.startswith(NOT_PASSED_ON_PREFIXES)
    }
    variables["DELTAFLOW_WORKERS_TRANSPORT"] = "ray"
    return variables


def run_on_ray(address: str, command: Sequence[str], environments: list[dict[str, str]]) -> int:
    """Run ``command`` (a Python program) on the Ray cluster at ``address`` (``auto``: the one
    this machine belongs to), one actor per environment; the exit status of the first worker
    that failed (0 when all succeeded)."""
    program = python_program(command)
    # Ray merges similar log lines of several actors into one; the workers' lines differ.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray = import_ray()
    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
    actors: list[Any] = []
    try:
        cpus = float(os.environ.get("DELTAFLOW_RAY_WORKER_CPUS") or 1)
        remote = ray.remote(concurrency_groups={DELIVER_GROUP: 1})(WorkerActor)
        for env in environments:
            actors.append(
                remote.options(
                    num_cpus=cpus,
                    scheduling_strategy="SPREAD",
                    runtime_env={"env_vars": _actor_environment(env)},
                    max_restarts=0,
                ).remote()
            )
        try:
            placed = ray.get(
                [actor.where.remote() for actor in actors], timeout=START_TIMEOUT_SECONDS
            )
        except ray.exceptions.GetTimeoutError:
            logger.error(
                "the Ray cluster did not start %d workers of %g CPUs each within %.0f s "
                "(too few free CPUs? DELTAFLOW_RAY_WORKER_CPUS sets the CPUs per worker)",
                len(actors),
                cpus,
                START_TIMEOUT_SECONDS,
            )
            return 1
        for index, (node, pid) in enumerate(placed):
            logger.info("worker %d: Ray actor on node %s, process %d", index, node, pid)
        cwd = os.getcwd()
        runs = {actor.run.remote(program, cwd, actors): index for index, actor in enumerate(actors)}
        status = _wait_for_runs(ray, actors, runs)
        time.sleep(LOG_LINGER_SECONDS)
        return status
    finally:
        for actor in actors:
            ray.kill(actor)
        ray.shutdown()


def _wait_for_runs(ray: Any, actors: list[Any], runs: dict[Any, int]) -> int:
    """Wait for every worker's run; tell the others when an actor dies; kill the workers
    still running a grace period after the first failure."""
    status = 0
    failed_at: float | None = None
    while runs:
        done, _ = ray.wait(list(runs), num_returns=1, timeout=0.2)
        for call in done:
            index = runs.pop(call)
            try:
                code, error = ray.get(call)
            except ray.exceptions.RayError as exc:
                code, error = 1, f"its Ray actor died ({type(exc).__name__})"
                for other in runs.values():
                    text = (
                        f"worker {other}: worker {index} exited during the run (its Ray actor died)"
                    )
                    actors[other].peer_gone.options(concurrency_group=DELIVER_GROUP).remote(
                        index, text
                    )
            if code != 0:
                logger.error("worker %d failed: %s", index, error)
                if status == 0:
                    status, failed_at = code, time.monotonic()
        if failed_at is not None and runs and time.monotonic() - failed_at > GRACE_SECONDS:
            logger.error(
                "stopping workers %s, still running after worker failure", sorted(runs.values())
            )
            break
    return status
