"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import deltaflow as pw


@pytest.fixture(autouse=True)
def _fresh_graph() -> Iterator[None]:
    """Every test starts with no outputs defined (pw.run runs only what the test defines)."""
    pw.clear_graph()
    yield
    pw.clear_graph()
