"""Helpers shared by benchmark scripts and the runner.

Protocol (see benchmarks/README.md):

* A benchmark is a script ``benchmarks/bench_*.py``. The runner starts it in a subprocess.
* The environment variable ``BENCH_IMPL`` says which implementation to import:
  ``deltaflow`` (default) or ``pathway``. :func:`load_pw` does the import.
* Size parameters come from environment variables (``BENCH_ROWS``, ...); :func:`env_int`
  reads them with a default.
* Each measured figure is one line on stdout::

      BENCH {"name": "rows_per_s", "value": 123.4, "unit": "rows/s", "better": "higher"}

  written by :func:`report`. Anything else the script prints is passed through.
* A figure whose name starts with ``polars_`` is a plain-Polars baseline: it does not depend on
  ``BENCH_IMPL`` and the runner shows it once, in its own row.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

BENCH_PREFIX = "BENCH "
BASELINE_PREFIX = "polars_"
IMPLS = ("deltaflow", "pathway")


def impl() -> str:
    """The implementation this run measures: ``deltaflow`` or ``pathway``."""
    name = os.environ.get("BENCH_IMPL", "deltaflow").strip().lower() or "deltaflow"
    if name not in IMPLS:
        raise SystemExit(f"BENCH_IMPL must be one of {IMPLS}, got {name!r}")
    return name


def load_pw() -> Any:
    """Import and return ``deltaflow`` or ``pathway`` according to ``BENCH_IMPL``."""
    return importlib.import_module(impl())


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return int(float(raw))  # accepts "1e6"


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return float(raw)


def report(name: str, value: float, unit: str = "", better: str = "higher") -> None:
    """Print one figure in the runner's line protocol."""
    if better not in ("higher", "lower"):
        raise ValueError("better must be 'higher' or 'lower'")
    line = json.dumps(
        {"name": name, "value": float(value), "unit": unit, "better": better},
        separators=(", ", ": "),
    )
    print(BENCH_PREFIX + line, flush=True)


def parse_line(line: str) -> dict[str, Any] | None:
    """Parse one stdout line; return the figure dict or None if it is not a BENCH line."""
    if not line.startswith(BENCH_PREFIX):
        return None
    try:
        fig = json.loads(line[len(BENCH_PREFIX) :])
    except json.JSONDecodeError:
        return None
    if not isinstance(fig, dict) or "name" not in fig or "value" not in fig:
        return None
    fig.setdefault("unit", "")
    fig.setdefault("better", "higher")
    return fig


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


@contextmanager
def timed(name: str, *, rows: int | None = None) -> Iterator[Timer]:
    """Time a block and report seconds (and rows/s when ``rows`` is given)."""
    t = Timer()
    with t:
        yield t
    report(f"{name}_seconds", t.seconds, "s", "lower")
    if rows is not None and t.seconds > 0:
        report(f"{name}_rows_per_s", rows / t.seconds, "rows/s", "higher")


def banner(title: str) -> None:
    print(f"# {title} [impl={impl()}, python={sys.version.split()[0]}]", flush=True)


def write_lines(path: str, lines: Iterable[str], chunk: int = 100_000) -> None:
    """Write ``lines`` (each ending with a newline) to ``path``, ``chunk`` lines at a time:
    big input files without holding them in memory whole."""
    with open(path, "w") as handle:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) == chunk:
                handle.write("".join(batch))
                batch = []
        handle.write("".join(batch))
