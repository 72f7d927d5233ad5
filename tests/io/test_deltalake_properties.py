"""Property tests of pw.io.deltalake: for random update streams (insertions, deletions,
updates over several times),

* the stream of changes written holds exactly the stream's changes, time by time;
* the snapshot table, at the version written for each time, equals the state at that time;
* reading either table back version by version (``start_from_timestamp_ms`` before its
  creation) gives, consolidated up to each version, what reading that version from scratch
  gives — the incremental reader equals recomputation at every version.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the shared test helpers

import deltaflow as pw  # noqa: E402
from test_stateful_properties import (  # noqa: E402
    Event,
    _state_at,
    _stream_table,
    update_streams,
)

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _run() -> None:
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def _lake_counter(path: str, version: int | None = None) -> Counter:
    data = DeltaTable(path, version=version).to_pyarrow_table().to_pydict()
    return Counter(zip(data["k"], data["v"], strict=True))


def _state_counter(stream: list[Event], time: int) -> Counter:
    return Counter(_state_at(stream, time).values())


def _versions_read_back(path: str) -> list[Counter]:
    """The table after each minibatch of a static read that starts before the table's
    creation (so every version comes as its own minibatch of changes)."""
    pw.clear_graph()
    table = pw.io.deltalake.read(
        path, pw.schema_from_types(k=int, v=int), mode="static", start_from_timestamp_ms=0
    )
    by_time: dict[int, Counter] = {}
    for time, row, diff in pw.debug.table_to_stream(table):
        by_time.setdefault(time, Counter())[(row["k"], row["v"])] += diff
    states = []
    current: Counter = Counter()
    for time in sorted(by_time):
        current.update(by_time[time])
        states.append(+current)
        assert all(n >= 0 for n in current.values()), current
    return states


@SETTINGS
@given(stream=update_streams(max_times=4, max_key=3))
def test_written_tables_and_versions_read_back_match_the_stream(stream: list[Event]) -> None:
    if not stream:
        return
    folder = tempfile.mkdtemp(prefix="deltaflow-lake-")
    try:
        changes_path, snapshot_path = f"{folder}/changes", f"{folder}/snapshot"
        pw.clear_graph()
        table = _stream_table(stream)
        pw.io.deltalake.write(table, changes_path, min_commit_frequency=None)
        pw.io.deltalake.write(
            table, snapshot_path, output_table_type="snapshot", min_commit_frequency=None
        )
        _run()
        times = sorted({e[3] for e in stream})

        # Stream of changes: per time, the consolidated changes of the stream.
        data = DeltaTable(changes_path).to_pyarrow_table().to_pydict()
        written: Counter = Counter()
        for k, v, time, diff in zip(data["k"], data["v"], data["time"], data["diff"], strict=True):
            written[(time, k, v)] += diff
        expected: Counter = Counter()
        for _, k, v, time, diff in stream:
            expected[(time, k, v)] += diff
        assert +written == +expected and -written == -expected

        # Snapshot: the version written after each time with changes is that time's state.
        versions = DeltaTable(snapshot_path).version()
        net: Counter = Counter()
        for label, k, v, time, diff in stream:
            net[(time, label, k, v)] += diff
        changed = sorted({time for (time, *_), n in net.items() if n})
        assert versions == len(changed)  # version 0 creates the table
        for version, time in enumerate(changed, start=1):
            assert _lake_counter(snapshot_path, version) == _state_counter(stream, time)

        # Incremental reads equal from-scratch reads at every version.
        final = _state_counter(stream, times[-1])
        for path in (snapshot_path, changes_path):
            states = _versions_read_back(path)
            assert (states[-1] if states else Counter()) == final
        snapshot_states = _versions_read_back(snapshot_path)
        for state, version in zip(snapshot_states, range(1, versions + 1), strict=False):
            assert state == _lake_counter(snapshot_path, version)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
