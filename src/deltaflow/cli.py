"""The ``deltaflow`` command (also ``python -m deltaflow``).

* ``deltaflow spawn [options] PROGRAM [ARGS...]`` runs a program (``python app.py``) with the
  environment a deltaflow (or Pathway) program reads: the number of processes and threads, a
  run id, and with ``--record`` a directory that every persisted input is recorded into.
* ``deltaflow replay [options] PROGRAM [ARGS...]`` runs the program again on what was recorded:
  the recorded inputs go through the program, outputs included; ``--continue`` goes on with
  live data afterwards.

The options are those of Pathway's ``pathway spawn``/``pathway replay``. ``-n N`` starts N
worker processes of the program on this machine, which run the pipeline together (see
``docs/scaling.md``); ``--addresses`` with ``--process-id`` starts one worker of a run spread
over several machines; ``--ray ADDRESS`` (or ``DELTAFLOW_RAY_ADDRESS``) runs the N workers as
actors of a Ray cluster instead (Ray is the optional extra ``deltaflow[ray]``). ``-t`` is passed on as ``PATHWAY_THREADS`` but adds no workers: each
process runs one engine loop (Polars uses every core for big batches).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from importlib import metadata

from deltaflow._child_processes import forward_stop_signals, stop_with_parent

logger = logging.getLogger("deltaflow.cli")


def _version() -> str:
    try:
        return metadata.version("deltaflow")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "unknown"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _add_worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t",
        "--threads",
        type=_positive,
        default=1,
        metavar="N",
        help="threads per process (default 1; the engine runs one loop and "
        "Polars uses every core whatever this says)",
    )
    parser.add_argument(
        "-n",
        "--processes",
        type=_positive,
        default=1,
        metavar="N",
        help="worker processes to start (default 1)",
    )
    parser.add_argument(
        "--first-port",
        type=_positive,
        default=None,
        metavar="PORT",
        help=(
            "worker i listens on 127.0.0.1:PORT+i (default: free ports from a random start "
            "between 10000 and 59999)"
        ),
    )
    parser.add_argument(
        "--addresses",
        metavar="ADDR",
        help="host:port of every worker, comma-separated: start only worker --process-id "
        "(the others are started on their machines with the same --addresses)",
    )
    parser.add_argument(
        "-pi",
        "--process-id",
        type=int,
        metavar="N",
        help="the index of the worker to start, with --addresses",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="run the -n workers as actors of the Ray cluster at ADDRESS ('auto': the one "
        "this machine belongs to; default: $DELTAFLOW_RAY_ADDRESS, else processes here); "
        "needs the extra deltaflow[ray]",
    )
    parser.add_argument(
        "--repository-url",
        metavar="URL",
        help="not available: deltaflow runs programs from local files only",
    )
    parser.add_argument("--branch", metavar="NAME", help="with --repository-url (not available)")
    parser.add_argument("program", metavar="PROGRAM", help="the command to run, e.g. python")
    parser.add_argument(
        "arguments",
        nargs=argparse.REMAINDER,
        metavar="ARGS",
        help="its arguments, e.g. app.py --flag",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``deltaflow`` command."""
    parser = argparse.ArgumentParser(
        prog="deltaflow",
        description="Run deltaflow programs: spawn one, record its inputs, replay them.",
    )
    parser.add_argument("--version", action="version", version=f"deltaflow {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    spawn = commands.add_parser(
        "spawn", help="run a program", description="Run PROGRAM with deltaflow's run settings."
    )
    _add_worker_options(spawn)
    spawn.add_argument(
        "--record",
        action="store_true",
        help="record the program's persisted inputs into --record-path",
    )
    spawn.add_argument(
        "--record-path",
        default="record",
        metavar="PATH",
        help="where --record stores the recording (default ./record)",
    )

    replay = commands.add_parser(
        "replay",
        help="run a program on a recording",
        description="Run PROGRAM on the inputs recorded by 'deltaflow spawn --record'.",
    )
    _add_worker_options(replay)
    replay.add_argument(
        "--record-path",
        default="record",
        metavar="PATH",
        help="the recording to replay (default ./record)",
    )
    replay.add_argument(
        "--mode",
        choices=("batch", "speedrun"),
        default="batch",
        help="how to replay (both replay the recording as one batch)",
    )
    replay.add_argument(
        "--continue",
        dest="continue_after_replay",
        action="store_true",
        help="go on with live data from the inputs after the replay",
    )
    return parser


class UsageError(Exception):
    """Options the command cannot honour; printed as a usage error."""


def _free_first_port(count: int, start: int = 10000) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1, from ``start`` on (the
    workers bind them a moment later; a port taken meanwhile makes the run fail clearly)."""
    port = start
    while port + count < 65536:
        for offset in range(count):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port + offset))
                except OSError:
                    break
        else:
            return port
        port += offset + 1
    raise UsageError(f"no {count} consecutive free ports from {start}: use --first-port")


def worker_environments(
    options: argparse.Namespace, base: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """The environment of each worker process to start here (one per worker of ``-n``, or
    only ``--process-id`` with ``--addresses``)."""
    if options.repository_url or options.branch:
        raise UsageError("--repository-url/--branch are not available: run a local program")
    if options.threads > 1:
        logger.warning(
            "-t %d: each worker process runs one engine loop (Polars already uses every "
            "core for big batches); use -n for more workers",
            options.threads,
        )
    shared = dict(os.environ if base is None else base)
    shared.update(
        {
            "PATHWAY_THREADS": str(options.threads),
            "PATHWAY_RUN_ID": str(uuid.uuid4()),
            "PATHWAY_START_TIMESTAMP_MS": str(int(time.time() * 1000)),
        }
    )
    if options.addresses:
        addresses = [a.strip() for a in options.addresses.split(",") if a.strip()]
        if options.process_id is None or not 0 <= options.process_id < len(addresses):
            raise UsageError(
                f"--addresses lists {len(addresses)} workers: give this one's index with "
                f"--process-id (0 to {len(addresses) - 1})"
            )
        if options.processes not in (1, len(addresses)):
            raise UsageError(
                f"-n {options.processes} does not match the {len(addresses)} --addresses"
            )
        if "PATHWAY_RUN_ID" in (base or os.environ):  # the same id on every machine
            shared["PATHWAY_RUN_ID"] = (base or os.environ)["PATHWAY_RUN_ID"]
        shared["PATHWAY_ADDRESSES"] = ",".join(addresses)
        shared["PATHWAY_PROCESSES"] = str(len(addresses))
        indexes = [options.process_id]
    else:
        if options.process_id not in (None, 0) and options.processes == 1:
            raise UsageError("--process-id: only process 0 exists in a one-process run")
        if options.process_id is not None and options.processes > 1:
            raise UsageError("--process-id needs --addresses (workers on several machines)")
        first_port = options.first_port
        if first_port is None:
            # A random start: two runs spawned at once rarely probe (and take) the same ports.
            first_port = (
                _free_first_port(options.processes, random.randrange(10_000, 60_000))
                if options.processes > 1
                else 10000
            )
        shared["PATHWAY_FIRST_PORT"] = str(first_port)
        shared["PATHWAY_PROCESSES"] = str(options.processes)
        indexes = list(range(options.processes))
    if options.command == "spawn" and options.record:
        shared["PATHWAY_REPLAY_STORAGE"] = os.path.abspath(options.record_path)
        shared["PATHWAY_SNAPSHOT_ACCESS"] = "record"
        shared["PATHWAY_CONTINUE_AFTER_REPLAY"] = "true"
    elif options.command == "replay":
        path = os.path.abspath(options.record_path)
        if not os.path.isdir(path):
            raise UsageError(
                f"--record-path {options.record_path}: no recording there "
                f"(make one with 'deltaflow spawn --record')"
            )
        shared["PATHWAY_REPLAY_STORAGE"] = path
        shared["PATHWAY_SNAPSHOT_ACCESS"] = "replay"
        shared["PATHWAY_PERSISTENCE_MODE"] = options.mode
        shared["PATHWAY_REPLAY_MODE"] = options.mode
        shared["PATHWAY_CONTINUE_AFTER_REPLAY"] = (
            "true" if options.continue_after_replay else "false"
        )
    if shared["PATHWAY_PROCESSES"] != "1":
        # Workers must build the same graph: the same string hashes in every process (a
        # program iterating over a set of names would otherwise build it in another order).
        shared.setdefault("PYTHONHASHSEED", "0")
    return [{**shared, "PATHWAY_PROCESS_ID": str(index)} for index in indexes]


def program_environment(
    options: argparse.Namespace, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of the first worker process to start (the only one with ``-n 1``)."""
    return worker_environments(options, base)[0]


#: After a worker fails, the others get this long to stop by themselves before they are
#: terminated (they normally stop at once: a failing worker tells the others).
SIBLING_GRACE_SECONDS = 5.0


def _run_program(argv: list[str], env: dict[str, str]) -> int:
    """Run the program; forward SIGINT/SIGTERM to it; its exit status."""
    return _run_workers(argv, [env])


def _run_workers(argv: list[str], environments: list[dict[str, str]]) -> int:
    """Start one process of the program per environment, forward SIGINT/SIGTERM to all, and
    wait for them; the exit status is the first failing worker's (0 when all succeed). When a
    worker fails, the others are terminated if they have not stopped within a grace period."""
    children: list[subprocess.Popen[bytes]] = []
    try:
        for env in environments:
            children.append(
                subprocess.Popen(  # noqa: PLW1509 - spawn runs no other threads when it starts them
                    argv, env=env, preexec_fn=functools.partial(stop_with_parent, os.getpid())
                )
            )
    except FileNotFoundError:
        _terminate(children)
        print(f"deltaflow: {argv[0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        _terminate(children)
        print(f"deltaflow: {argv[0]}: not executable", file=sys.stderr)
        return 126

    status = 0
    failed_at: float | None = None
    with forward_stop_signals(children):
        if len(children) == 1:
            only = children[0].wait()
            return 128 - only if only < 0 else only  # the shell's convention
        running = list(children)
        while running:
            for child in list(running):
                code = child.poll()
                if code is None:
                    continue
                running.remove(child)
                if code != 0 and status == 0:
                    status = 128 - code if code < 0 else code  # the shell's convention
                    failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > SIBLING_GRACE_SECONDS:
                _terminate(running)
            if running:
                time.sleep(0.02)
    return status


def _terminate(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deltaflow`` and ``python -m deltaflow``; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="deltaflow: %(message)s")
    parser = build_parser()
    options = parser.parse_args(argv)
    try:
        environments = worker_environments(options)
    except UsageError as exc:
        parser.error(str(exc))
    command = [options.program, *options.arguments]
    ray_address = options.ray or os.environ.get("DELTAFLOW_RAY_ADDRESS") or None
    if ray_address:
        return _run_on_ray(parser, options, ray_address, command, environments)
    return _run_workers(command, environments)


def _run_on_ray(
    parser: argparse.ArgumentParser,
    options: argparse.Namespace,
    address: str,
    command: list[str],
    environments: list[dict[str, str]],
) -> int:
    """``--ray``: the workers as actors of a Ray cluster (``engine.workers.ray_spawn``)."""
    if options.addresses:
        parser.error("--ray starts every worker itself: it does not take --addresses")
    from deltaflow.engine.workers import ray_spawn

    try:
        ray_spawn.import_ray()
        ray_spawn.python_program(command)
    except (ValueError, ImportError) as exc:
        parser.error(str(exc))
    return ray_spawn.run_on_ray(address, command, environments)


if __name__ == "__main__":  # pragma: no cover - python -m deltaflow.cli
    sys.exit(main())
