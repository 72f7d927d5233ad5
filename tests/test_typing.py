"""Users' type checkers see deltaflow's public names, lazily exported ones included.

mypy runs on a small program written as users write them (``import deltaflow as pw``); the
names exported through module ``__getattr__`` (``pw.reducers``, ``pw.io.csv`` ...) must
resolve to their real definitions, so a misspelt one is an error and a correct one is not.
mypy runs from the repository root with the project's configuration, so it reuses the cache
``make lint`` leaves (seconds instead of a minute).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
    import deltaflow as pw


    class Pets(pw.Schema):
        owner: str
        pet: str
        age: int


    t: pw.Table = pw.debug.table_from_markdown(
        '''
        owner | pet | age
        Alice | dog | 3
        '''
    )
    grouped = t.groupby(pw.this.owner).reduce(
        pw.this.owner,
        total=pw.reducers.sum(pw.this.age),
        n=pw.reducers.count(),
        pets=pw.reducers.tuple(pw.this.pet),
    )
    joined: pw.JoinResult = t.join(grouped, t.owner == grouped.owner)
    result = joined.select(t.pet, grouped.total)
    windows = t.windowby(t.age, window=pw.temporal.tumbling(duration=2)).reduce(
        n=pw.reducers.count())
    pw.io.csv.write(result, "out.csv")
    pw.io.jsonlines.write(result, "out.jsonl")
    pw.io.subscribe(result, on_change=lambda key, row, time, is_addition: None)
    settings = pw.io.CsvParserSettings(delimiter=";")
    mode: pw.JoinMode = pw.JoinMode.INNER
    version: str = pw.__version__
    limited = pw.iterate(lambda t: t, t=t)
    accumulator: type[pw.BaseCustomAccumulator] = pw.BaseCustomAccumulator
    polled: pw.io.connector.Polled = pw.io.connector.Polled([{"a": 1}], offset=1)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
"""

# Each line is one mistake the checker must report (so the names are not typed as Any).
BAD = """
    import deltaflow as pw

    t = pw.debug.table_from_markdown("a\\n1")
    x = pw.reducers.summ(t.a)
    pw.io.csv.wrte(t, "out.csv")
    y: int = pw.reducers.sum(t.a)
    z: int = pw.JoinMode.INNER
"""


def _mypy(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-error-summary",
            "--hide-error-context",
            *map(str, files),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _docs_example() -> str:
    """The Python example of docs/static_typing.md."""
    text = (ROOT / "docs" / "static_typing.md").read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


# Seconds after `make lint` (mypy's cache is warm), about a minute on a cold cache.
@pytest.mark.slow
def test_public_names_resolve_for_type_checkers(tmp_path: Path) -> None:
    good, bad = tmp_path / "good_program.py", tmp_path / "bad_program.py"
    doc = tmp_path / "docs_example.py"
    good.write_text(textwrap.dedent(GOOD))
    bad.write_text(textwrap.dedent(BAD))
    doc.write_text(_docs_example())
    run = _mypy(good, bad, doc)  # one run: mypy's start-up is most of its cost
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if "good_program.py" in e], run.stdout + run.stderr
    reported = {int(e.split(":")[1]) for e in errors if "bad_program.py" in e}
    assert reported == {5, 6, 7, 8}, run.stdout + run.stderr
    assert 'maybe "sum"?' in run.stdout and 'maybe "write"?' in run.stdout
    # The documented mistake, and only it, is reported on the docs page's example.
    doc_lines = doc.read_text().splitlines()
    flagged = [doc_lines[int(e.split(":")[1]) - 1] for e in errors if "docs_example.py" in e]
    assert flagged == [
        'pw.reducers.summ(t.age)  # mypy: Module has no attribute "summ"; maybe "sum"?'
    ], run.stdout + run.stderr


def test_package_ships_py_typed() -> None:
    import deltaflow

    assert (Path(deltaflow.__file__).parent / "py.typed").is_file()


def test_one_version_source() -> None:
    from importlib.metadata import version

    import deltaflow
    from deltaflow._version import __version__

    assert deltaflow.__version__ == __version__
    assert version("deltaflow") == __version__
