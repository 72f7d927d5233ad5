"""The example of docs/http.md runs, and answers as the page says."""

from __future__ import annotations

import pathlib
import re

import pytest
from tests.io._http_helpers import call, free_port, wait_serving
from tests.io._io_helpers import BackgroundRun

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "http.md"


def _example() -> str:
    section = DOC.read_text().split("## Example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.filterwarnings("ignore:pw.io.http")
def test_docs_example_answers_as_documented():
    port = free_port()
    code = _example().replace("port=8080", f"port={port}").replace("pw.run()\n", "")
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - the page's own example
    base = f"http://127.0.0.1:{port}/quote"
    with BackgroundRun():
        wait_serving(port)
        assert call("POST", base, {"city": "Paris", "nights": 2}).text == "240"
        assert call("GET", base + "?city=Lisbon&nights=3").text == "240"
        missing = call("POST", base, {"city": "Paris"})
        assert (missing.status, missing.text) == (400, "400: the field 'nights' is missing")
        assert call("GET", f"http://127.0.0.1:{port}/_schema?format=json").json()["paths"]
