"""Recovery from damaged checkpoints and clear errors for unreadable stores."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

import deltaflow as pw
from deltaflow.io.s3 import _redact
from deltaflow.persistence.checkpoints import CheckpointError, CheckpointStore
from deltaflow.persistence.storage import FilesystemStorage, StorageError

sys.path.insert(0, str(Path(__file__).parent / "io"))
from s3_server import (  # noqa: E402, F401 - *_fixture: the moto_s3 and s3 fixtures
    MotoS3,
    moto_s3_fixture,
    s3_fixture,
)


class Row(pw.Schema):
    k: str
    v: int


def _run(inputs: Path, out: Path, store: Path) -> list[tuple[str, ...]]:
    """One static run, csv -> csv, with a filesystem store; the output's (k, v, diff)."""
    pw.clear_graph()
    rows = pw.io.csv.read(inputs, schema=Row, mode="static", name="rows")
    pw.io.csv.write(rows, out)
    # A long interval: each run writes exactly one (final) checkpoint with its own chunk.
    pw.run(
        persistence_config=pw.persistence.Config(
            pw.persistence.Backend.filesystem(store), snapshot_interval_ms=600_000
        ),
        monitoring_level=pw.MonitoringLevel.NONE,
    )
    lines = out.read_text().splitlines()[1:]
    return sorted(
        (*tuple(field.strip('"') for field in line.split(","))[:2], line.split(",")[-1].strip('"'))
        for line in lines
    )


def _two_runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    inputs, out, store = tmp_path / "in", tmp_path / "out.csv", tmp_path / "store"
    inputs.mkdir()
    (inputs / "1.csv").write_text("k,v\na,1\n")
    assert _run(inputs, out, store) == [("a", "1", "1")]
    (inputs / "2.csv").write_text("k,v\nb,2\n")
    assert _run(inputs, out, store) == [("b", "2", "1")]
    return inputs, out, store


def _manifests(store: Path) -> list[Path]:
    return sorted((store / "checkpoints").glob("*.json"))


def _newest_chunk(store: Path) -> Path:
    manifest = json.loads(_manifests(store)[-1].read_text())
    return store / manifest["inputs"]["rows"]["chunks"][-1]["key"]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped"])
def test_damaged_chunk_falls_back_to_the_previous_checkpoint(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    inputs, out, store = _two_runs(tmp_path)
    chunk = _newest_chunk(store)
    data = chunk.read_bytes()
    if damage == "garbage":
        chunk.write_bytes(b"not an arrow file")
    elif damage == "truncated":
        chunk.write_bytes(data[: len(data) // 2])
    else:  # one byte changed: still parses, maybe; the checksum catches it
        chunk.write_bytes(data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:])
    with caplog.at_level(logging.WARNING, logger="deltaflow.persistence"):
        # The previous checkpoint knows only 1.csv: 2.csv is read (and output) again.
        assert _run(inputs, out, store) == [("b", "2", "1")]
    assert any("damaged" in r.getMessage() and "previous" in r.getMessage() for r in caplog.records)
    # The run wrote a good checkpoint again: the next run has nothing new.
    assert _run(inputs, out, store) == []


def test_partial_manifest_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inputs, out, store = _two_runs(tmp_path)
    newest = _manifests(store)[-1]
    newest.write_bytes(newest.read_bytes()[:40])
    with caplog.at_level(logging.WARNING, logger="deltaflow.persistence"):
        assert _run(inputs, out, store) == [("b", "2", "1")]
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_no_usable_checkpoint_is_an_error_naming_the_store(tmp_path: Path) -> None:
    _inputs, _out, store = _two_runs(tmp_path)
    for manifest in _manifests(store):
        manifest.write_text("{")
    with pytest.raises(CheckpointError, match="no usable checkpoint") as info:
        CheckpointStore(FilesystemStorage(str(store))).load_latest()
    assert str(store) in str(info.value)


def test_unreadable_store_names_persistence_and_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the store's directory should be")
    not_a_directory = blocker / "store"  # cannot be created: its parent is a file
    pw.clear_graph()
    (tmp_path / "in").mkdir()
    rows = pw.io.csv.read(tmp_path / "in", schema=Row, mode="static")
    pw.io.csv.write(rows, tmp_path / "out.csv")
    with pytest.raises(StorageError) as info:
        pw.run(
            persistence_config=pw.persistence.Config(
                pw.persistence.Backend.filesystem(not_a_directory)
            )
        )
    message = str(info.value)
    assert message.startswith("persistence:") and str(not_a_directory) in message


def test_s3_store_errors_name_persistence_and_the_bucket(s3: MotoS3, tmp_path: Path) -> None:
    secret = "persistence-test-secret-key-1234"
    settings = pw.io.s3.AwsS3Settings(
        bucket_name="no-such-bucket",
        endpoint=s3.endpoint,
        with_path_style=True,
        region="us-east-1",
        access_key="persistence-test-access",
        secret_access_key=secret,
    )
    pw.clear_graph()
    (tmp_path / "in").mkdir()
    rows = pw.io.csv.read(tmp_path / "in", schema=Row, mode="static")
    pw.io.csv.write(rows, tmp_path / "out.csv")
    backend = pw.persistence.Backend.s3("s3://no-such-bucket/state", settings)
    with pytest.raises(StorageError) as info:
        pw.run(persistence_config=pw.persistence.Config(backend))
    message = str(info.value)
    assert message.startswith("persistence:")
    assert "s3://no-such-bucket/state" in message and "NoSuchBucket" in message
    assert secret not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_redaction_replaces_whole_secrets_only() -> None:
    message = "The specified bucket does not exist; key=AKIAEXAMPLE123 secret AKIAEXAMPLE123x"
    assert _redact(message, ["s", "AKIAEXAMPLE123"]) == (
        "The specified bucket does not exist; key=*** secret AKIAEXAMPLE123x"
    )
