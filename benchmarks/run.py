#!/usr/bin/env python3
"""Run deltaflow benchmarks, optionally side by side with Pathway.

    python benchmarks/run.py                      # every benchmarks/bench_*.py
    python benchmarks/run.py select_filter --rows 100000
    python benchmarks/run.py --pathway-python /tmp/pathway-venv/bin/python

Each script runs in its own subprocess: once with this interpreter and ``BENCH_IMPL=deltaflow``,
and, when a Pathway interpreter is given (``--pathway-python`` or the environment variable
``DELTAFLOW_BENCH_PATHWAY_PYTHON``), once more with that interpreter and ``BENCH_IMPL=pathway``.
The protocol is described in ``benchmarks/README.md`` and ``benchmarks/_harness.py``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import BASELINE_PREFIX, parse_line  # noqa: E402

PATHWAY_ENV = "DELTAFLOW_BENCH_PATHWAY_PYTHON"


def discover(names: list[str]) -> list[Path]:
    """Resolve benchmark names (``select_filter``, ``bench_select_filter``, a path) to scripts."""
    if not names:
        return sorted(HERE.glob("bench_*.py"))
    found: list[Path] = []
    for name in names:
        cands = [Path(name), HERE / name, HERE / f"{name}.py", HERE / f"bench_{name}.py"]
        for cand in cands:
            if cand.is_file():
                found.append(cand.resolve())
                break
        else:
            raise SystemExit(f"run.py: no benchmark named {name!r} in {HERE}")
    return found


def run_one(
    script: Path, python: str, impl: str, extra_env: dict[str, str], timeout: float, quiet: bool
) -> dict[str, Any]:
    """Run one script under one interpreter; return its figures, exit code and peak RSS."""
    env = dict(os.environ)
    env.update(extra_env)
    env["BENCH_IMPL"] = impl
    env["PYTHONUNBUFFERED"] = "1"
    tag = f"[{script.stem} / {impl}]"
    print(f"{tag} {python} {script.name}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [python, str(script)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(HERE.parent),
        text=True,
        bufsize=1,
    )
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, _kill)
    timer.start()
    figures: list[dict[str, Any]] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            fig = parse_line(line)
            if fig is not None:
                figures.append(fig)
            if not quiet or fig is not None:
                print(f"{tag} {line}", file=sys.stderr, flush=True)
        # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        timer.cancel()
    wall = time.perf_counter() - started
    rc = proc.returncode
    if rc == 0:  # a failed run's size and duration mean nothing
        figures.append(
            {
                "name": "peak_rss_mb",
                "value": usage.ru_maxrss / 1024.0,
                "unit": "MiB",
                "better": "lower",
            }
        )
        figures.append({"name": "process_seconds", "value": wall, "unit": "s", "better": "lower"})
    if timed_out.is_set():
        print(f"{tag} timed out after {timeout:.0f} s", file=sys.stderr, flush=True)
    elif rc != 0:
        print(f"{tag} exited with {rc}", file=sys.stderr, flush=True)
    return {
        "impl": impl,
        "python": python,
        "returncode": rc,
        "timed_out": timed_out.is_set(),
        "figures": figures,
    }


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:,.1f}"
    if a >= 1:
        return f"{v:.3f}"
    return f"{v:.4g}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def build_rows(results: dict[str, dict[str, dict[str, Any]]]) -> list[list[str]]:
    """One row per (benchmark, figure). polars_X is shown as the Polars column of figure X."""
    rows: list[list[str]] = []
    for bench, by_impl in results.items():
        vals: dict[str, dict[str, float]] = {}
        meta: dict[str, dict[str, str]] = {}
        order: list[str] = []
        for impl, res in by_impl.items():
            for fig in res["figures"]:
                name = fig["name"]
                col = impl
                if name.startswith(BASELINE_PREFIX):
                    name = name[len(BASELINE_PREFIX) :]
                    col = "polars"
                    if "polars" in vals.get(name, {}):
                        continue  # the baseline is the same in every run: keep the first
                if name not in vals:
                    vals[name] = {}
                    order.append(name)
                vals[name][col] = float(fig["value"])
                meta.setdefault(
                    name, {"unit": fig.get("unit", ""), "better": fig.get("better", "")}
                )
        for name in order:
            v = vals[name]
            rows.append(
                [
                    bench,
                    name,
                    meta[name]["unit"],
                    meta[name]["better"],
                    _fmt(v.get("deltaflow")),
                    _fmt(v.get("pathway")),
                    _fmt(v.get("polars")),
                    _ratio(v.get("deltaflow"), v.get("pathway")),
                    _ratio(v.get("deltaflow"), v.get("polars")),
                ]
            )
    return rows


def print_table(rows: list[list[str]]) -> None:
    header = [
        "benchmark",
        "figure",
        "unit",
        "better",
        "deltaflow",
        "pathway",
        "polars",
        "df/pw",
        "df/polars",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {4, 5, 6, 7, 8}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("benchmarks", nargs="*", help="names (select_filter) or paths; default: all")
    ap.add_argument("--rows", type=str, help="sets BENCH_ROWS for every script (e.g. 1e6)")
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the scripts (repeatable)",
    )
    ap.add_argument(
        "--pathway-python",
        default=os.environ.get(PATHWAY_ENV),
        help=f"interpreter with pathway installed (default: ${PATHWAY_ENV})",
    )
    ap.add_argument("--no-deltaflow", action="store_true", help="run only the Pathway side")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per script run")
    ap.add_argument("--json", type=Path, help="also write all results to this JSON file")
    ap.add_argument("--quiet", action="store_true", help="do not echo the scripts' other output")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)

    scripts = discover(args.benchmarks)
    if args.list:
        for s in scripts:
            print(s.stem.removeprefix("bench_"))
        return 0
    if not scripts:
        print("run.py: no benchmarks/bench_*.py found", file=sys.stderr)
        return 1

    extra_env: dict[str, str] = {}
    if args.rows:
        extra_env["BENCH_ROWS"] = str(int(float(args.rows)))
    for kv in args.env:
        key, sep, value = kv.partition("=")
        if not sep:
            raise SystemExit(f"--env expects KEY=VALUE, got {kv!r}")
        extra_env[key] = value

    runs: list[tuple[str, str]] = []
    if not args.no_deltaflow:
        runs.append(("deltaflow", sys.executable))
    if args.pathway_python:
        if not Path(args.pathway_python).exists():
            raise SystemExit(f"run.py: pathway interpreter not found: {args.pathway_python}")
        runs.append(("pathway", args.pathway_python))
    if not runs:
        raise SystemExit("run.py: nothing to run (--no-deltaflow without --pathway-python)")

    results: dict[str, dict[str, dict[str, Any]]] = {}
    failed = False
    for script in scripts:
        bench = script.stem.removeprefix("bench_")
        results[bench] = {}
        for impl, python in runs:
            res = run_one(script, python, impl, extra_env, args.timeout, args.quiet)
            results[bench][impl] = res
            failed |= res["returncode"] != 0

    print()
    print_table(build_rows(results))
    print()
    print(
        "df/pw: deltaflow value / pathway value; df/polars: deltaflow value / plain Polars value."
    )
    print("Read each ratio with the 'better' column (higher or lower is better).")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "env": extra_env,
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"results written to {args.json}")
    for bench, by_impl in results.items():
        for impl, res in by_impl.items():
            if res["returncode"] != 0:
                print(f"FAILED: {bench} [{impl}] exit {res['returncode']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
