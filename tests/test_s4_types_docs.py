"""The examples of docs/types.md run and their assertions hold."""

from __future__ import annotations

import pathlib
import re

import pytest


def _examples() -> list[str]:
    text = (pathlib.Path(__file__).parent.parent / "docs" / "types.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_page_has_examples() -> None:
    assert len(_examples()) == 4


@pytest.mark.parametrize("index", range(len(_examples())))
def test_doc_example(index: int) -> None:
    code = _examples()[index]
    exec(compile(code, f"docs/types.md example {index}", "exec"), {})  # noqa: S102
