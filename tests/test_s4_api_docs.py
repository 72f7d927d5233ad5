"""The examples of docs/api.md run and print what the page shows."""

from __future__ import annotations

import pathlib
import re

import pytest


def _doc_examples() -> list[tuple[str, str]]:
    text = (pathlib.Path(__file__).parent.parent / "docs" / "api.md").read_text()
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)


def test_the_page_has_examples() -> None:
    assert len(_doc_examples()) >= 5


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_doc_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = _doc_examples()[index]
    exec(compile(code, f"docs/api.md example {index}", "exec"), {})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]
