"""docs/deltalake.md: the page's example runs and prints what the page says."""

from __future__ import annotations

from pathlib import Path

from s3_server import docs_example, run_example


def test_docs_example_prints_what_the_page_says(tmp_path: Path) -> None:
    code, printed = docs_example(Path(__file__).resolve().parents[2] / "docs" / "deltalake.md")
    assert run_example(code, tmp_path).strip() == printed.strip()
