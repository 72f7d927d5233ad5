"""The ``deltaflow`` command, default logging and the Prometheus endpoint, run for real."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

import deltaflow as pw
from deltaflow.cli import main

PYTHON = sys.executable


def _deltaflow(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "deltaflow", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_spawn_passes_the_run_settings(tmp_path: Path) -> None:
    program = tmp_path / "env.py"
    program.write_text(
        "import json, os\n"
        "print(json.dumps({k: v for k, v in os.environ.items()"
        " if k.startswith('PATHWAY_')}))\n"
    )
    done = _deltaflow("spawn", "-t", "1", PYTHON, str(program), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout)
    assert env["PATHWAY_PROCESSES"] == "1"
    assert env["PATHWAY_THREADS"] == "1"
    assert env["PATHWAY_PROCESS_ID"] == "0"
    assert "PATHWAY_REPLAY_STORAGE" not in env


def test_spawn_returns_the_program_exit_status(tmp_path: Path) -> None:
    assert main(["spawn", PYTHON, "-c", "import sys; sys.exit(3)"]) == 3
    assert main(["spawn", str(tmp_path / "no-such-program")]) == 127


def test_spawn_refuses_a_process_id_without_addresses(tmp_path: Path) -> None:
    # Several workers on this machine are all started by one spawn (tests/test_workers.py).
    done = _deltaflow("spawn", "-n", "2", "--process-id", "1", PYTHON, "-c", "pass", cwd=tmp_path)
    assert done.returncode == 2
    assert "--process-id needs --addresses" in done.stderr


def test_replay_without_a_recording_is_a_usage_error(tmp_path: Path) -> None:
    done = _deltaflow("replay", "--record-path", "missing", PYTHON, "-c", "pass", cwd=tmp_path)
    assert done.returncode == 2
    assert "no recording" in done.stderr


_WORD_COUNT = textwrap.dedent("""
    import sys
    import deltaflow as pw

    class Schema(pw.Schema):
        word: str

    words = pw.io.csv.read(sys.argv[1], schema=Schema, mode="static", name="words")
    counts = words.groupby(pw.this.word).reduce(pw.this.word, n=pw.reducers.count())
    pw.io.jsonlines.write(counts, sys.argv[2])
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
""")


def _final_counts(path: Path) -> dict[str, int]:
    state: dict[str, int] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["diff"] > 0:
            state[row["word"]] = row["n"]
        elif state.get(row["word"]) == row["n"]:
            del state[row["word"]]
    return state


def test_record_then_replay_gives_the_same_outputs(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.csv").write_text("word\nfoo\nbar\nfoo\n")
    program = tmp_path / "count.py"
    program.write_text(_WORD_COUNT)
    recorded = _deltaflow(
        "spawn",
        "--record",
        "--record-path",
        "rec",
        PYTHON,
        str(program),
        str(inputs),
        str(tmp_path / "first.jsonl"),
        cwd=tmp_path,
    )
    assert recorded.returncode == 0, recorded.stderr
    assert (tmp_path / "rec").is_dir()
    # The input is gone: only the recording can give the replay its rows.
    (inputs / "a.csv").unlink()
    replayed = _deltaflow(
        "replay",
        "--record-path",
        "rec",
        PYTHON,
        str(program),
        str(inputs),
        str(tmp_path / "second.jsonl"),
        cwd=tmp_path,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert _final_counts(tmp_path / "first.jsonl") == {"foo": 2, "bar": 1}
    assert _final_counts(tmp_path / "second.jsonl") == {"foo": 2, "bar": 1}
    # A replay leaves the recording as it was: replaying twice gives the same again.
    again = _deltaflow(
        "replay",
        "--record-path",
        "rec",
        PYTHON,
        str(program),
        str(inputs),
        str(tmp_path / "third.jsonl"),
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert _final_counts(tmp_path / "third.jsonl") == {"foo": 2, "bar": 1}


def test_default_logging_shows_info_lines_unless_turned_off(tmp_path: Path) -> None:
    program = tmp_path / "log.py"
    program.write_text(
        textwrap.dedent("""
        import sys
        import deltaflow as pw

        t = pw.debug.table_from_markdown('''
            a
            1
            2
        ''')
        pw.io.null.write(t)
        pw.run(default_logging=sys.argv[1] == "on")
    """)
    )
    on = subprocess.run([PYTHON, str(program), "on"], capture_output=True, text=True, timeout=120)
    off = subprocess.run([PYTHON, str(program), "off"], capture_output=True, text=True, timeout=120)
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert "INFO deltaflow.monitoring" in on.stderr
    assert "rows written" in on.stderr
    assert "INFO" not in off.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_with_http_server_serves_prometheus_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("PATHWAY_MONITORING_HTTP_PORT", str(port))
    monkeypatch.delenv("DELTAFLOW_MONITORING_HTTP_PORT", raising=False)
    monkeypatch.delenv("PATHWAY_PROCESS_ID", raising=False)
    scraped: list[str] = []

    class Numbers(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            for value in range(5):
                self.next(value=value)
            self.commit()
            # The engine processes the commit on its own thread; wait until it shows.
            for _ in range(100):
                body = (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                    .read()
                    .decode()
                )
                if 'deltaflow_input_rows_total{connector="numbers"} 5.0' in body:
                    break
                import time

                time.sleep(0.05)
            scraped.append(body)
            status = urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5)
            scraped.append(str(status.status))

    table = pw.io.python.read(Numbers(), schema=pw.schema_from_types(value=int), name="numbers")
    total = table.reduce(total=pw.reducers.sum(pw.this.value))
    pw.io.null.write(total)
    pw.run(with_http_server=True, monitoring_level=pw.MonitoringLevel.NONE)
    body, status = scraped
    assert status == "200"
    assert 'deltaflow_input_rows_total{connector="numbers"} 5.0' in body
    assert "deltaflow_operator_rows_positive_total" in body
    assert "# TYPE deltaflow_input_lag_ms gauge" in body
    # The server is gone with the run.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_metrics_port_in_use_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("PATHWAY_MONITORING_HTTP_PORT", str(busy.getsockname()[1]))
        monkeypatch.delenv("DELTAFLOW_MONITORING_HTTP_PORT", raising=False)
        monkeypatch.delenv("PATHWAY_PROCESS_ID", raising=False)
        pw.io.null.write(pw.debug.table_from_markdown("a\n1"))
        with pytest.raises(OSError, match="cannot serve metrics on 127.0.0.1"):
            pw.run(with_http_server=True, monitoring_level=pw.MonitoringLevel.NONE)


def test_python_m_deltaflow_prints_help() -> None:
    done = subprocess.run(
        [PYTHON, "-m", "deltaflow", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0
    assert "spawn" in done.stdout and "replay" in done.stdout


def test_workers_stop_when_spawn_is_killed(tmp_path: Path) -> None:
    """spawn cannot forward a SIGKILL: its workers get SIGTERM from the kernel instead (Linux's
    parent-death signal), so none keeps running without it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    import signal
    import time

    import psutil

    program = tmp_path / "sleep.py"
    program.write_text("import time\ntime.sleep(120)\n")
    spawn = subprocess.Popen(
        [PYTHON, "-m", "deltaflow", "spawn", "-n", "2", PYTHON, str(program)], cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[psutil.Process] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = psutil.Process(spawn.pid).children()
            time.sleep(0.05)
        assert len(workers) == 2
        spawn.send_signal(signal.SIGKILL)
        spawn.wait(10)
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers still running after spawn was killed: {alive}"
        assert len(gone) == 2
    finally:
        if spawn.poll() is None:
            spawn.kill()
        for child in psutil.Process().children(recursive=True):
            child.kill()
