"""The documentation site builds (`make docs`): every page and API reference entry of
mkdocs.yml resolves and no link is broken (``mkdocs build --strict``)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent

pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")


def test_site_builds_strictly(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # The reference is generated from docstrings: a documented function is on its page.
    debug_page = (tmp_path / "reference" / "debug" / "index.html").read_text()
    assert "table_from_markdown" in debug_page and "table_to_arrow" in debug_page
    assert "subscribe_frames" in (tmp_path / "reference" / "frames" / "index.html").read_text()
    # Methods of the table's mixins are on its page; pw.temporal has a page of its own.
    assert "groupby" in (tmp_path / "reference" / "table" / "index.html").read_text()
    assert "tumbling" in (tmp_path / "reference" / "temporal" / "index.html").read_text()
