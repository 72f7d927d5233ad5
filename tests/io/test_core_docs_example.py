"""The connector written in docs/connectors.md (examples/custom_connector.py) works."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from _io_helpers import BackgroundRun, Changes

import deltaflow as pw

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from custom_connector import read_log, write_list  # noqa: E402


class Entry(pw.Schema):
    level: str
    code: int


def test_static_log_with_a_bad_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        '{"level": "info", "code": 1}\n{"level": "warn"}\n{"level": "err", "code": 3}\n'
        '{"level": "partial"'
    )
    out: list[str] = []
    write_list(read_log(str(log), schema=Entry, mode="static"), out)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert sorted(json.loads(line)["code"] for line in out) == [1, 3]
    assert any(f"{log}:2" in r.getMessage() for r in caplog.records)


def test_streaming_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text('{"level": "info", "code": 1}\n')
    changes = Changes().subscribe(read_log(str(log), schema=Entry, autocommit_duration_ms=5))
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 1)
        with open(log, "a") as handle:
            handle.write('{"level": "err", "code": 2}\n')
        changes.wait_for(lambda c: len(c.rows) == 2)
    assert [row["code"] for row, _, _ in changes.rows] == [1, 2]
    with pytest.raises(FileNotFoundError):
        read_log(str(tmp_path / "nope.log"), schema=Entry)
