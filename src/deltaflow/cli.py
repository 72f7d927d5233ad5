"""The ``deltaflow`` command (also ``python -m deltaflow``).

* ``deltaflow spawn [options] PROGRAM [ARGS...]`` runs a program (``python app.py``) with the
  environment a deltaflow (or Pathway) program reads: the number of processes and threads, a
  run id, and with ``--record`` a directory that every persisted input is recorded into.
* ``deltaflow replay [options] PROGRAM [ARGS...]`` runs the program again on what was recorded:
  the recorded inputs go through the program, outputs included; ``--continue`` goes on with
  live data afterwards.

The options are those of Pathway's ``pathway spawn``/``pathway replay``. A pipeline runs in one
process for now: ``-n`` above 1, ``--addresses`` and ``--process-id`` are refused with a clear
message, and ``-t`` is passed on but the engine runs one loop (Polars uses every core).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from importlib import metadata

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
        help="processes (only 1 for now)",
    )
    parser.add_argument(
        "--first-port",
        type=_positive,
        default=10000,
        metavar="PORT",
        help="first port for communication between processes (default 10000)",
    )
    parser.add_argument(
        "--addresses",
        metavar="ADDR",
        help="host:port of every process, comma-separated (not available yet)",
    )
    parser.add_argument(
        "-pi",
        "--process-id",
        type=int,
        metavar="N",
        help="this process's index, with --addresses (not available yet)",
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


def program_environment(
    options: argparse.Namespace, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment the spawned program runs with."""
    if options.processes > 1 or options.addresses:
        raise UsageError(
            "deltaflow runs a pipeline in one process for now: use -n 1 "
            "(the default) and leave out --addresses"
        )
    if options.process_id not in (None, 0):
        raise UsageError("--process-id: only process 0 exists in a one-process run")
    if options.repository_url or options.branch:
        raise UsageError("--repository-url/--branch are not available: run a local program")
    if options.threads > 1:
        logger.warning(
            "-t %d: the engine runs one loop per process; Polars already uses "
            "every core for big batches",
            options.threads,
        )
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "PATHWAY_PROCESSES": "1",
            "PATHWAY_THREADS": str(options.threads),
            "PATHWAY_PROCESS_ID": "0",
            "PATHWAY_FIRST_PORT": str(options.first_port),
            "PATHWAY_RUN_ID": str(uuid.uuid4()),
            "PATHWAY_START_TIMESTAMP_MS": str(int(time.time() * 1000)),
        }
    )
    if options.command == "spawn" and options.record:
        env["PATHWAY_REPLAY_STORAGE"] = os.path.abspath(options.record_path)
        env["PATHWAY_SNAPSHOT_ACCESS"] = "record"
        env["PATHWAY_CONTINUE_AFTER_REPLAY"] = "true"
    elif options.command == "replay":
        path = os.path.abspath(options.record_path)
        if not os.path.isdir(path):
            raise UsageError(
                f"--record-path {options.record_path}: no recording there "
                f"(make one with 'deltaflow spawn --record')"
            )
        env["PATHWAY_REPLAY_STORAGE"] = path
        env["PATHWAY_SNAPSHOT_ACCESS"] = "replay"
        env["PATHWAY_PERSISTENCE_MODE"] = options.mode
        env["PATHWAY_REPLAY_MODE"] = options.mode
        env["PATHWAY_CONTINUE_AFTER_REPLAY"] = "true" if options.continue_after_replay else "false"
    return env


def _run_program(argv: list[str], env: dict[str, str]) -> int:
    """Run the program; forward SIGINT/SIGTERM to it; its exit status."""
    try:
        child = subprocess.Popen(argv, env=env)
    except FileNotFoundError:
        print(f"deltaflow: {argv[0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"deltaflow: {argv[0]}: not executable", file=sys.stderr)
        return 126

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deltaflow`` and ``python -m deltaflow``; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="deltaflow: %(message)s")
    parser = build_parser()
    options = parser.parse_args(argv)
    try:
        env = program_environment(options)
    except UsageError as exc:
        parser.error(str(exc))
    return _run_program([options.program, *options.arguments], env)


if __name__ == "__main__":  # pragma: no cover - python -m deltaflow.cli
    sys.exit(main())
