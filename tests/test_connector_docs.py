"""The examples of the connector pages (docs/csv.md, jsonlines.md, plaintext.md, fs.md,
python.md, subscribe.md, null.md) run and print what the pages show.

Each ```python block of these pages is followed by a ```text block holding exactly what it
prints; the example runs in a fresh temporary directory, so the files it writes stay there.
"""

from __future__ import annotations

import pathlib
import re

import pytest

import deltaflow as pw

DOCS = pathlib.Path(__file__).parent.parent / "docs"
PAGES = ("csv.md", "jsonlines.md", "plaintext.md", "fs.md", "python.md", "subscribe.md", "null.md")
_EXAMPLE = re.compile(r"```python\n(.*?)```\s*```text\n(.*?)```", re.S)


def _examples(page: str) -> list[tuple[str, str]]:
    return _EXAMPLE.findall((DOCS / page).read_text())


_ALL = [(page, index) for page in PAGES for index in range(len(_examples(page)))]


@pytest.mark.parametrize("page", PAGES)
def test_every_example_shows_its_output(page: str) -> None:
    text = (DOCS / page).read_text()
    assert text.count("```python\n") == len(_examples(page)) >= 1


@pytest.mark.parametrize(("page", "index"), _ALL, ids=[f"{p}-{i}" for p, i in _ALL])
def test_doc_example(
    page: str,
    index: int,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, expected = _examples(page)[index]
    monkeypatch.chdir(tmp_path)
    pw.clear_graph()
    exec(compile(code, f"docs/{page} example {index}", "exec"), {"__name__": "__doc__"})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]
