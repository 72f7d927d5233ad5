"""Many small files: a directory of BENCH_FILES files (default 4,000) of BENCH_FILE_ROWS rows
each (default 5), read in static mode and counted.

Both formats are timed: CSV (``pw.io.csv.read``) and JSON lines (``pw.io.jsonlines.read``),
each ``pw.run()`` end to end. A directory of many small files (logs, exports, objects dropped
in a bucket) is where a reader's fixed cost per file shows: its rows are few, the calls per
file are what counts. The result is checked: the count is files x rows.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_FILES, BENCH_FILE_ROWS.
"""

from __future__ import annotations

import json
import os
import tempfile

from _harness import banner, env_int, load_pw, report, timed


def make_files(folder: str, files: int, rows: int, kind: str) -> None:
    os.makedirs(folder)
    for number in range(files):
        path = os.path.join(folder, f"part{number:06d}.{kind}")
        with open(path, "w") as handle:
            if kind == "csv":
                handle.write("a,b\n" + "".join(f"{number},{i}\n" for i in range(rows)))
            else:
                handle.write("".join(json.dumps({"a": number, "b": i}) + "\n" for i in range(rows)))


def main() -> None:
    files = env_int("BENCH_FILES", 4000)
    rows = env_int("BENCH_FILE_ROWS", 5)
    banner(f"small files: {files} files of {rows} rows, static read + count")
    pw = load_pw()

    class Row(pw.Schema):
        a: int
        b: int

    with tempfile.TemporaryDirectory() as tmp:
        for kind, read in (("csv", pw.io.csv.read), ("jsonl", pw.io.jsonlines.read)):
            folder = os.path.join(tmp, kind)
            make_files(folder, files, rows, kind)
            table = read(folder, schema=Row, mode="static")
            counts = table.reduce(n=pw.reducers.count())
            seen: list[int] = []

            def keep(key, row, time, is_addition, seen=seen) -> None:  # noqa: ANN001
                if is_addition:
                    seen.append(row["n"])

            pw.io.subscribe(counts, on_change=keep)
            with timed(f"{kind}_end_to_end", rows=files * rows) as timer:
                pw.run(monitoring_level=pw.MonitoringLevel.NONE)
            if not seen or seen[-1] != files * rows:
                raise SystemExit(f"wrong result for {kind}: {seen[-1:]} rows, not {files * rows}")
            report(f"{kind}_files_per_s", files / max(1e-9, timer.seconds), "files/s", "higher")
            if hasattr(pw, "clear_graph"):
                pw.clear_graph()
            else:  # Pathway: a new graph per run
                pw.internals.parse_graph.G.clear()


if __name__ == "__main__":
    main()
