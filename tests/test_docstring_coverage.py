"""Public callables keep their Parameters and Examples sections (scripts/docstring_coverage.py).

Every area is fully documented and must stay so: a new ``Table`` method, reducer, ``pw.io``
read/write, ``pw.udfs``, ``pw.debug`` or ``pw.temporal`` function, or top-level function needs
both sections (its examples then run in tests/test_doctests.py).
"""

from __future__ import annotations

import importlib.util
import pathlib
from types import ModuleType

import pytest

SCRIPT = pathlib.Path(__file__).parent.parent / "scripts" / "docstring_coverage.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docstring_coverage", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COVERAGE = _script()
AREAS = COVERAGE.areas()


@pytest.mark.parametrize("area", sorted(AREAS))
def test_documented_callables_keep_their_sections(area: str) -> None:
    lacking = [name for name, function in AREAS[area] if not all(COVERAGE.documented(function))]
    assert not lacking, f"{area}: no Parameters or Examples section in {lacking}"


def test_every_area_is_counted() -> None:
    assert {"pw.Table", "pw.reducers", "pw.io", "pw.temporal", "pw.udfs", "pw.debug"} <= set(AREAS)
    assert all(AREAS.values()), [area for area, functions in AREAS.items() if not functions]


def test_a_section_is_recognised() -> None:
    def documented(x: int) -> int:
        """Twice ``x``.

        Parameters:
            x: a number.

        Examples:
            >>> 2 * 2
            4
        """
        return 2 * x

    def bare(x: int) -> int:
        """Twice ``x``."""
        return 2 * x

    assert COVERAGE.documented(documented) == (True, True)
    assert COVERAGE.documented(bare) == (False, False)
