"""A persisted streaming program that ``tests/test_workers_persistence.py`` runs with
``deltaflow spawn -n N``.

``python workers_persist_program.py DATA STATE OUT``: reads ``DATA/a`` (CSV ``k,v``) and
``DATA/b`` (CSV ``k,w``) in streaming mode, counts and sums ``a`` per key, joins the counts with
``b``, and writes both as JSON lines (``OUT.counts.jsonl``, ``OUT.join.jsonl``), persisting to
``STATE`` (a checkpoint after every time). Worker 0 stops the run once the outputs of this run
and of the earlier runs (``PRIOR``: their ``OUT`` prefixes, comma-separated) add up to what the
files on disk give. ``ADD``: files ``a/part<n>.csv`` worker 0 adds while it runs (those not
there yet). ``MODE=static``: read both directories in static mode (files of ``ADD`` added
before), so that the run ends by itself. ``CRASH_AFTER=n``: worker 1 dies right after storing its n-th checkpoint chunk,
before answering worker 0 (a crash in the middle of a checkpoint).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import deltaflow as pw
from deltaflow.engine.active_runs import ACTIVE, stop_all_runs
from deltaflow.persistence.checkpoints import CheckpointStore


class A(pw.Schema):
    k: int
    v: int


class B(pw.Schema):
    k: int
    w: int


def write_csv(path: Path, header: list[str], rows: list[tuple[int, int]]) -> None:
    """Write ``path`` at once (renamed into place: a reader never sees half of it)."""
    temporary = path.parent.parent / f".{path.name}.tmp"
    with open(temporary, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(temporary, path)


def rows_of(file: int, count: int = 20) -> list[tuple[int, int]]:
    return [((file * 7 + i) % 11, file * 100 + i) for i in range(count)]


def expected(data: Path) -> dict[str, Counter[tuple[Any, ...]]]:
    """The final rows of both outputs for the files in ``data`` (each with count 1)."""
    counts: dict[int, list[int]] = {}
    for path in (data / "a").iterdir():
        with open(path) as handle:
            for row in csv.DictReader(handle):
                entry = counts.setdefault(int(row["k"]), [0, 0])
                entry[0] += 1
                entry[1] += int(row["v"])
    joined: Counter[tuple[Any, ...]] = Counter()
    for path in (data / "b").iterdir():
        with open(path) as handle:
            for row in csv.DictReader(handle):
                k = int(row["k"])
                if k in counts:
                    joined[(k, counts[k][0], int(row["w"]))] += 1
    return {
        "counts": Counter({(k, n, s): 1 for k, (n, s) in counts.items()}),
        "join": joined,
    }


def consolidated(prefixes: Sequence[str | Path]) -> dict[str, Counter[tuple[Any, ...]]]:
    """The changes of the outputs ``prefixes`` wrote, added up (a line cut short by a
    writer still at work is left out)."""
    totals: dict[str, Counter[tuple[Any, ...]]] = {"counts": Counter(), "join": Counter()}
    columns = {"counts": ("k", "n", "s"), "join": ("k", "n", "w")}
    for prefix in prefixes:
        for name, total in totals.items():
            path = Path(f"{prefix}.{name}.jsonl")
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                total[tuple(row[c] for c in columns[name])] += row["diff"]
    return {name: Counter({k: v for k, v in total.items() if v}) for name, total in totals.items()}


def crash_after(chunks: int) -> None:
    """Make this worker die right after storing its ``chunks``-th checkpoint chunk."""
    original = CheckpointStore.write_chunk
    written = [0]

    def write_chunk(self: CheckpointStore, *args: Any, **kwargs: Any) -> Any:
        ref = original(self, *args, **kwargs)
        written[0] += 1
        if written[0] >= chunks:
            os._exit(7)
        return ref

    CheckpointStore.write_chunk = write_chunk  # type: ignore[method-assign]


def main() -> None:
    data, state, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    worker = os.environ.get("PATHWAY_PROCESS_ID", "0")
    if os.environ.get("CRASH_AFTER") and worker == "1":
        crash_after(int(os.environ["CRASH_AFTER"]))
    mode: Literal["streaming", "static"] = (
        "static" if os.environ.get("MODE") == "static" else "streaming"
    )
    adds = [int(f) for f in os.environ.get("ADD", "").split(",") if f]
    if mode == "static":  # the files to add are there from the start; the run ends by itself
        for file in adds:
            if not (data / "a" / f"part{file}.csv").exists():
                write_csv(data / "a" / f"part{file}.csv", ["k", "v"], rows_of(file))
    a = pw.io.csv.read(data / "a", schema=A, mode=mode, name="a", autocommit_duration_ms=20)
    b = pw.io.csv.read(data / "b", schema=B, mode=mode, name="b", autocommit_duration_ms=20)
    counts = a.groupby(a.k).reduce(a.k, n=pw.reducers.count(), s=pw.reducers.sum(a.v))
    joined = counts.join(b, counts.k == b.k).select(k=counts.k, n=counts.n, w=b.w)
    pw.io.jsonlines.write(counts, f"{out}.counts.jsonl")
    pw.io.jsonlines.write(joined, f"{out}.join.jsonl")
    prior = [p for p in os.environ.get("PRIOR", "").split(",") if p]
    if worker == "0" and mode == "streaming":

        def add_and_stop() -> None:
            for file in adds:
                path = data / "a" / f"part{file}.csv"
                if not path.exists():
                    time.sleep(0.3)
                    write_csv(path, ["k", "v"], rows_of(file))
            wanted = expected(data)
            deadline = time.monotonic() + 90
            # Once the run has started (the checkpoint was replayed): a stop before is lost.
            # (An output resumed after a crash is cut back at its first write only: a run
            # resuming after a crash ends by itself, in static mode, instead.)
            while not any(r.last_time is not None for r in ACTIVE):
                time.sleep(0.02)
            while consolidated([*prior, out]) != wanted and time.monotonic() < deadline:
                time.sleep(0.05)
            stop_all_runs()

        threading.Thread(target=add_and_stop, daemon=True).start()
    pw.run(
        monitoring_level=pw.MonitoringLevel.NONE,
        persistence_config=pw.persistence.Config(
            pw.persistence.Backend.filesystem(state), snapshot_interval_ms=0
        ),
    )


if __name__ == "__main__":
    main()
