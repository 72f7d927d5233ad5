"""A program reading files that ``tests/test_workers.py`` runs with ``deltaflow spawn -n N``.

``python workers_files_program.py static DATA OUT.json``: DATA holds ``a/`` (CSV ``k,v``),
``b/`` (JSON lines ``k,w``) and ``text/`` (plain text); every output's changes go to OUT as
``{output: [[time, key, row, diff], ...]}`` (written by worker 0).

``python workers_files_program.py streaming DATA OUT.json``: ``a/`` is read in streaming
mode while worker 0 adds files to it, rewrites one and deletes one; the run stops once the
counts match the files left on disk.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import deltaflow as pw
from deltaflow.engine.runtime import stop_all_runs


class A(pw.Schema):
    k: int
    v: int


class B(pw.Schema):
    k: int
    w: int


def write_csv(path: Path, rows: list[tuple[int, int]]) -> None:
    """Write ``path`` at once (renamed into place: a reader never sees half of it)."""
    temporary = path.parent.parent / f".{path.name}.tmp"
    with open(temporary, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["k", "v"])
        writer.writerows(rows)
    os.replace(temporary, path)


def rows_of(file: int, count: int = 30) -> list[tuple[int, int]]:
    return [((file * 7 + i) % 11, file * 100 + i) for i in range(count)]


def expected_counts(directory: Path) -> dict[int, int]:
    counts: Counter[int] = Counter()
    for path in directory.iterdir():
        with open(path) as handle:
            for row in csv.DictReader(handle):
                counts[int(row["k"])] += 1
    return dict(counts)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, int | str | bool) or value is None:
        return value
    return repr(value)


def record(table: pw.Table, name: str, produced: dict[str, list[Any]]) -> None:
    changes: list[Any] = produced.setdefault(name, [])

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        fields = sorted((column, _plain(value)) for column, value in row.items())
        changes.append([time, repr(key), fields, 1 if is_addition else -1])

    pw.io.subscribe(table, on_change=on_change)


def static(data: Path, produced: dict[str, list[Any]]) -> None:
    a = pw.io.csv.read(data / "a", schema=A, mode="static")
    b = pw.io.jsonlines.read(data / "b", schema=B, mode="static")
    text = pw.io.plaintext.read(data / "text", mode="static")
    record(
        a.groupby(a.k).reduce(a.k, n=pw.reducers.count(), s=pw.reducers.sum(a.v)),
        "counts",
        produced,
    )
    joined = a.join(b, a.k == b.k).select(k=a.k, x=a.v * b.w)
    record(joined.groupby(joined.k).reduce(joined.k, s=pw.reducers.sum(joined.x)), "join", produced)
    record(text.groupby(text.data).reduce(text.data, n=pw.reducers.count()), "words", produced)
    record(a.filter(a.v % 3 == 0).select(a.k, a.v), "rows", produced)  # gathered, ids kept
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def streaming(data: Path, produced: dict[str, list[Any]]) -> None:
    directory = data / "a"
    a = pw.io.csv.read(directory, schema=A, mode="streaming", autocommit_duration_ms=20)
    counts = a.groupby(a.k).reduce(a.k, n=pw.reducers.count())
    record(counts, "counts", produced)
    record(a.filter(a.v % 4 == 0).select(a.k, a.v), "rows", produced)
    state: dict[int, int] = {}

    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        if is_addition:
            state[row["k"]] = row["n"]
        elif state.get(row["k"]) == row["n"]:
            del state[row["k"]]

    # On every worker (each builds the same pipeline); outputs run on worker 0.
    pw.io.subscribe(counts, on_change=on_change)
    if os.environ.get("PATHWAY_PROCESS_ID", "0") == "0":

        def change_files() -> None:
            for file in range(3, 9):
                time.sleep(0.25)
                write_csv(directory / f"part{file}.csv", rows_of(file))
            time.sleep(0.25)
            write_csv(directory / "part1.csv", rows_of(21, 12))  # rewritten: rows replaced
            time.sleep(0.25)
            (directory / "part2.csv").unlink()  # deleted: its rows retracted
            expected = expected_counts(directory)
            deadline = time.monotonic() + 90
            while dict(state) != expected and time.monotonic() < deadline:
                time.sleep(0.05)
            stop_all_runs()

        threading.Thread(target=change_files, daemon=True).start()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def main() -> None:
    mode, data, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    produced: dict[str, list[Any]] = {}
    {"static": static, "streaming": streaming}[mode](data, produced)
    if os.environ.get("PATHWAY_PROCESS_ID", "0") == "0":
        with open(out, "w") as handle:
            json.dump(produced, handle)


if __name__ == "__main__":
    main()
