"""A persisted program with the behaviors' gates that ``tests/test_workers_gates.py`` runs
with ``deltaflow spawn -n N``, restarting it on other numbers of workers.

``python workers_gates_persist_program.py DATA STATE OUT``: reads ``DATA/a`` (CSV ``k,v,at``,
in static mode: one commit of every file, whatever the number of workers) and writes, as JSON
lines ``OUT.<name>.jsonl``, the results of gates with and without an instance (:data:`GATES`),
persisting to ``STATE``. A restart replays the checkpoint (muted) through the gates, then
reads the files that changed.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from pathlib import Path

import deltaflow as pw


class A(pw.Schema):
    k: int
    v: int
    at: int


def write_rows(path: Path, rows: list[tuple[int, int, int]]) -> None:
    """Write the CSV file ``path`` at once (renamed into place)."""
    temporary = path.parent.parent / f".{path.name}.tmp"
    with open(temporary, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["k", "v", "at"])
        writer.writerows(rows)
    os.replace(temporary, path)


def rows_of(file: int, count: int = 12) -> list[tuple[int, int, int]]:
    """Rows whose event times grow with ``file``, some late."""
    return [((file * 5 + i) % 7, file * 100 + i, file * 6 + (i * 5) % 9 - 4) for i in range(count)]


def _marked_sums(a: pw.Table) -> pw.Table:
    marked = a._forget(a.at + 8, a.at, True, instance_column=a.k % 3)
    return marked.groupby(pw.this.k).reduce(pw.this.k, s=pw.reducers.sum(pw.this.v))


def _windows(a: pw.Table) -> pw.Table:
    return a.windowby(
        a.at,
        window=pw.temporal.tumbling(duration=10),
        behavior=pw.temporal.common_behavior(delay=4, cutoff=6, keep_results=False),
    ).reduce(start=pw.this._pw_window_start, n=pw.reducers.count(), s=pw.reducers.sum(pw.this.v))


#: The outputs: gates without an instance (by row id) and with one (by the instance).
GATES: dict[str, Callable[[pw.Table], pw.Table]] = {
    "buffer": lambda a: a.buffer(a.at, 5),
    "ignore_late": lambda a: a.ignore_late(a.at, 4),
    "windows": _windows,
    "by_instance_buffer": lambda a: a._buffer(a.at + 5, a.at, instance_column=a.k % 2),
    "by_instance_ignore_late": lambda a: a._freeze(a.at + 3, a.at, instance_column=a.k),
    "by_instance_forget": lambda a: a._forget(a.at + 7, a.at, False, instance_column=a.k % 3),
    "by_instance_marked": _marked_sums,
}


def main() -> None:
    data, state, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    a = pw.io.csv.read(data / "a", schema=A, mode="static", name="a", autocommit_duration_ms=60_000)
    for name, gate in GATES.items():
        pw.io.jsonlines.write(gate(a), f"{out}.{name}.jsonl")
    pw.run(
        monitoring_level=pw.MonitoringLevel.NONE,
        persistence_config=pw.persistence.Config(
            pw.persistence.Backend.filesystem(state), snapshot_interval_ms=0
        ),
    )


if __name__ == "__main__":
    main()
