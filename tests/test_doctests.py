"""The ``>>>`` examples of the package's docstrings run and print what they show.

Every module of ``src/deltaflow`` whose source holds an example is collected (so a new
example is tested without registering it); each example runs on a fresh graph.
"""

from __future__ import annotations

import doctest
import importlib
import pathlib
import subprocess
import sys

import pytest

import deltaflow as pw

SOURCE = pathlib.Path(pw.__file__).parent


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(SOURCE.rglob("*.py")):
        if ">>> " in path.read_text():
            parts = path.relative_to(SOURCE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in _modules_with_examples():
        module = importlib.import_module(name)
        found.extend(test for test in finder.find(module, name) if test.examples)
    return sorted(found, key=lambda test: test.name)


EXAMPLES = _examples()


def test_examples_are_found() -> None:
    assert {"deltaflow.debug.table_to_arrow", "deltaflow.io.frames.subscribe_frames"} <= {
        test.name for test in EXAMPLES
    }


def test_importing_a_module_keeps_the_function_of_its_name() -> None:
    """Collecting the examples imports ``deltaflow.sql``, ``deltaflow.iterate`` and
    ``deltaflow.io.subscribe`` (so does ``pw.io.subscribe_frames``); importing a submodule binds
    the package attribute of its name, which must stay the function."""
    program = (
        "import deltaflow.sql, deltaflow.iterate, deltaflow.io.subscribe\n"
        "import deltaflow as pw\n"
        "assert callable(pw.sql) and callable(pw.iterate), (pw.sql, pw.iterate)\n"
        "assert callable(pw.io.subscribe), pw.io.subscribe"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=[test.name for test in EXAMPLES])
def test_docstring_example(example: doctest.DocTest) -> None:
    pw.clear_graph()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures: list[str] = []
    runner.run(example, out=failures.append)
    assert runner.failures == 0, "".join(failures)
