"""Who this worker is: the number of workers, its index and how to reach the others.

``deltaflow spawn -n N`` starts N processes and tells each, through the environment Pathway's
``pathway spawn`` uses, how many processes there are and which one it is:

* ``PATHWAY_PROCESSES``: the number of worker processes (default 1: one process, no exchange);
* ``PATHWAY_PROCESS_ID``: this process's index, 0 to N - 1 (worker 0 decides the times and
  runs the outputs, the inputs not split by path and the operators that are not partitioned);
* ``PATHWAY_FIRST_PORT``: worker ``i`` listens on ``127.0.0.1:<first port + i>``;
* ``PATHWAY_ADDRESSES``: instead of the first port, ``host:port`` of every worker,
  comma-separated (workers on several machines);
* ``PATHWAY_RUN_ID``: shared by the workers of one run; it authenticates their connections.

``DELTAFLOW_WORKERS_TRANSPORT`` says how the workers reach each other: ``sockets`` (the
default: the addresses above) or ``ray``, which ``deltaflow spawn --ray`` sets in the Ray
actors it runs the workers in (messages go through Ray; the addresses are not used).

``PATHWAY_THREADS`` is read by Pathway for threads per process; deltaflow runs one engine loop
per process (Polars already spreads a big batch over the cores), so it adds no workers here:
ask for more processes instead.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

DEFAULT_FIRST_PORT = 10000
#: The values of ``DELTAFLOW_WORKERS_TRANSPORT``.
TRANSPORTS = ("sockets", "ray")


@dataclass(frozen=True)
class WorkerConfig:
    """The workers of this run as this process sees them."""

    count: int
    index: int
    addresses: tuple[tuple[str, int], ...]
    authkey: bytes
    #: How the workers reach each other: "sockets" or "ray" (see the module's docstring).
    transport: str = "sockets"

    @property
    def is_coordinator(self) -> bool:
        """Worker 0 runs the sinks (and the inputs not split by path) and decides the times
        everyone processes."""
        return self.index == 0


def _whole(variable: str, raw: str, *, least: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {variable}={raw!r} is not a whole number") from None
    if value < least:
        raise ValueError(f"environment variable {variable} must be at least {least}, got {value}")
    return value


def _address(text: str) -> tuple[str, int]:
    host, separator, port = text.strip().rpartition(":")
    if not separator or not host:
        raise ValueError(f"PATHWAY_ADDRESSES: {text!r} is not host:port")
    return host, _whole("PATHWAY_ADDRESSES", port, least=1)


def worker_config(environ: dict[str, str] | None = None) -> WorkerConfig:
    """The worker settings in ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ
    count = _whole("PATHWAY_PROCESSES", env.get("PATHWAY_PROCESSES") or "1", least=1)
    index = _whole("PATHWAY_PROCESS_ID", env.get("PATHWAY_PROCESS_ID") or "0", least=0)
    if index >= count:
        raise ValueError(
            f"environment variable PATHWAY_PROCESS_ID={index} must be below "
            f"PATHWAY_PROCESSES={count}"
        )
    listed = env.get("PATHWAY_ADDRESSES") or ""
    if listed.strip():
        addresses = tuple(_address(a) for a in listed.split(",") if a.strip())
        if len(addresses) != count:
            raise ValueError(
                f"PATHWAY_ADDRESSES lists {len(addresses)} addresses for "
                f"PATHWAY_PROCESSES={count} workers"
            )
    else:
        first = _whole(
            "PATHWAY_FIRST_PORT", env.get("PATHWAY_FIRST_PORT") or str(DEFAULT_FIRST_PORT), least=1
        )
        addresses = tuple(("127.0.0.1", first + i) for i in range(count))
    run_id = env.get("PATHWAY_RUN_ID") or "deltaflow"
    authkey = hashlib.sha256(run_id.encode()).digest()
    transport = (env.get("DELTAFLOW_WORKERS_TRANSPORT") or "sockets").strip().lower()
    if transport not in TRANSPORTS:
        raise ValueError(
            f"environment variable DELTAFLOW_WORKERS_TRANSPORT={transport!r} must be one of "
            f"{', '.join(TRANSPORTS)}"
        )
    return WorkerConfig(
        count=count, index=index, addresses=addresses, authkey=authkey, transport=transport
    )
