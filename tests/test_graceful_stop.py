"""SIGTERM and SIGINT end a streaming run cleanly: outputs flushed, a final checkpoint, then
``SystemExit(143)`` / ``KeyboardInterrupt`` out of ``pw.run`` as in Pathway (a real
subprocess receives the signal)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PROGRAM = textwrap.dedent("""
    import sys
    import deltaflow as pw

    inputs, output, store = sys.argv[1:4]


    class Row(pw.Schema):
        k: int
        v: str


    rows = pw.io.csv.read(inputs, schema=Row, mode="streaming", name="rows",
                          autocommit_duration_ms=20)
    pw.io.csv.write(rows.select(k=rows.k, v=rows.v), output)
    try:
        pw.run(persistence_config=pw.persistence.Config(
            pw.persistence.Backend.filesystem(store), snapshot_interval_ms=60_000))
    except SystemExit as stop:
        print("run stopped", stop.code, flush=True)
        raise
    except KeyboardInterrupt:
        print("run interrupted", flush=True)
        sys.exit(130)
""")


def _data_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines()[1:] if line]


def _wait_for_rows(path: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(_data_lines(path)) >= count:
            return
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.1)
    raise AssertionError(f"the run did not output {count} rows in time")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_flushes_checkpoints_then_stops_the_program(tmp_path: Path, signum: int) -> None:
    inputs, output, store = tmp_path / "in", tmp_path / "out.csv", tmp_path / "store"
    inputs.mkdir()
    (inputs / "1.csv").write_text("k,v\n" + "".join(f"{i},v{i}\n" for i in range(50)))
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    process = subprocess.Popen(
        [sys.executable, str(script), str(inputs), str(output), str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_rows(output, 50, process)
        # With a 60 s interval no periodic checkpoint covers these rows yet: only the final
        # one written on the way out can.
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    if signum == signal.SIGTERM:
        assert process.returncode == 143, err[-2000:]
        assert "run stopped 143" in out
    else:
        assert process.returncode == 130, err[-2000:]
        assert "run interrupted" in out
    assert len(_data_lines(output)) == 50
    manifests = sorted((store / "checkpoints").glob("*.json"))
    last = json.loads(manifests[-1].read_text())
    assert last["final"] is True
    assert sum(chunk["rows"] for chunk in last["inputs"]["rows"]["chunks"]) == 50

    # The next run resumes from that checkpoint: nothing is read or written again.
    (inputs / "2.csv").write_text("k,v\n100,v100\n")
    rerun = subprocess.Popen(
        [sys.executable, str(script), str(inputs), str(output), str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # the file is recreated: wait for the new row
        while [line.split(",")[0].strip('"') for line in _data_lines(output)] != ["100"]:
            assert time.monotonic() < deadline and rerun.poll() is None
            time.sleep(0.1)
        rerun.send_signal(signal.SIGTERM)
        rerun.communicate(timeout=60)
    finally:
        if rerun.poll() is None:
            rerun.kill()
    assert rerun.returncode == 143
    assert [line.split(",")[0].strip('"') for line in _data_lines(output)] == ["100"]
