"""The persisted state of ``deduplicate``, SELECTIVE_PERSISTING and ``Config.simple_config``.

Each persistence test runs a pipeline, then runs it again (a new graph) on the same store and
checks what the second run continues from.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._util import row_order

import deltaflow as pw
from deltaflow.engine.stateful.deduplicate import DeduplicateOperator
from deltaflow.persistence import operators as persisted_ops
from deltaflow.persistence.checkpoints import CheckpointError


def _config(store: Path, mode: Any = None) -> Any:
    kwargs = {} if mode is None else {"persistence_mode": mode}
    return pw.persistence.Config(pw.persistence.Backend.filesystem(store), **kwargs)


def _markdown(rows: list[tuple[int, int]], column: str = "val") -> str:
    return f"{column} | __time__\n" + "\n".join(f"{v} | {time}" for time, v in rows)


def _dedup_stream(
    rows: list[tuple[int, int]],
    config: Any,
    *,
    name: str | None = None,
    gap: int = 2,
    calls: list[tuple[int, int]] | None = None,
) -> list[tuple]:
    """Run ``deduplicate`` (accepting a value at least ``gap`` above the current one) over
    (time, value) rows; its stream as sorted (time, value, diff)."""
    pw.clear_graph()

    def acceptor(new: int, old: int) -> bool:
        if calls is not None:
            calls.append((new, old))
        return new >= old + gap

    table = pw.debug.table_from_markdown(_markdown(rows))
    result = table.deduplicate(value=pw.this.val, acceptor=acceptor, name=name)
    out = [
        (time, row["val"], diff)
        for time, row, diff in pw.debug.table_to_stream(result, persistence_config=config)
    ]
    return sorted(out, key=row_order)


FIRST = [(2, 1), (4, 2), (6, 3), (8, 4), (10, 5)]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    config = _config(tmp_path / "store")
    assert _dedup_stream(FIRST, config) == [
        (2, 1, 1),
        (6, 1, -1),
        (6, 3, 1),
        (10, 3, -1),
        (10, 5, 1),
    ]
    calls: list[tuple[int, int]] = []
    # The rows at time 0 stand for a replay of what the saved state already reflects.
    second = _dedup_stream([(0, 1), (0, 9), (12, 6), (14, 7), (16, 9)], config, calls=calls)
    assert second == [(0, 5, 1), (14, 5, -1), (14, 7, 1), (16, 7, -1), (16, 9, 1)]
    assert calls == [(6, 5), (7, 5), (9, 7)]  # never called on the time-0 rows


def test_restored_state_is_emitted_at_time_zero_without_input_there(tmp_path: Path) -> None:
    config = _config(tmp_path / "store")
    _dedup_stream(FIRST, config)
    assert _dedup_stream([(4, 6), (8, 8)], config) == [(0, 5, 1), (8, 5, -1), (8, 8, 1)]


def test_state_kept_across_two_restarts(tmp_path: Path) -> None:
    config = _config(tmp_path / "store")
    _dedup_stream(FIRST, config)
    _dedup_stream([(12, 7)], config)
    assert _dedup_stream([(2, 8), (4, 9)], config) == [(0, 7, 1), (4, 7, -1), (4, 9, 1)]


def test_state_kept_when_the_acceptor_changes(tmp_path: Path) -> None:
    config = _config(tmp_path / "store")
    _dedup_stream(FIRST[:3], config)  # state 3
    assert _dedup_stream([(0, 1), (10, 5), (12, 6), (14, 7)], config, gap=4) == [
        (0, 3, 1),
        (14, 3, -1),
        (14, 7, 1),
    ]


def test_state_per_instance_survives(tmp_path: Path) -> None:
    config = _config(tmp_path / "store")

    def run(markdown: str) -> list[tuple]:
        pw.clear_graph()
        table = pw.debug.table_from_markdown(markdown)
        result = table.deduplicate(
            value=pw.this.val, instance=pw.this.k, acceptor=lambda new, old: new > old
        )
        return sorted(
            (
                (time, row["k"], row["val"], diff)
                for time, row, diff in pw.debug.table_to_stream(result, persistence_config=config)
            ),
            key=row_order,
        )

    run("k | val | __time__\na | 1 | 2\nb | 5 | 2\na | 3 | 4")
    assert run("k | val | __time__\na | 2 | 2\nb | 6 | 4\nc | 1 | 4") == [
        (0, "a", 3, 1),
        (0, "b", 5, 1),
        (4, "b", 5, -1),
        (4, "b", 6, 1),
        (4, "c", 1, 1),
    ]


def test_without_persistence_time_zero_rows_are_processed(tmp_path: Path) -> None:
    assert _dedup_stream([(0, 1), (0, 5), (2, 8)], None) == [(0, 5, 1), (2, 5, -1), (2, 8, 1)]


def test_first_run_processes_time_zero_rows(tmp_path: Path) -> None:
    # Nothing was restored, so nothing at time 0 is a replay (Pathway drops these rows).
    config = _config(tmp_path / "store")
    assert _dedup_stream([(0, 1), (0, 5), (2, 8)], config) == [(0, 5, 1), (2, 5, -1), (2, 8, 1)]


SECOND = [(2, 1), (4, 2), (6, 3), (8, 4), (10, 5), (12, 6), (14, 7), (16, 8), (16, 9)]
FROM_SCRATCH = [
    (2, 1, 1),
    (6, 1, -1),
    (6, 3, 1),
    (10, 3, -1),
    (10, 5, 1),
    (14, 5, -1),
    (14, 7, 1),
    (16, 7, -1),
    (16, 9, 1),
]


def test_selective_persistence_restores_named_operators(tmp_path: Path) -> None:
    config = _config(tmp_path / "store", pw.PersistenceMode.SELECTIVE_PERSISTING)
    _dedup_stream(FIRST, config, name="latest")
    assert _dedup_stream(SECOND, config, name="latest") == [
        (0, 5, 1),
        (14, 5, -1),
        (14, 7, 1),
        (16, 7, -1),
        (16, 9, 1),
    ]


@pytest.mark.parametrize(("first", "second"), [(None, None), ("a", "b"), (None, "a"), ("a", None)])
def test_selective_persistence_ignores_unnamed_or_renamed(
    tmp_path: Path, first: str | None, second: str | None
) -> None:
    config = _config(tmp_path / "store", pw.PersistenceMode.SELECTIVE_PERSISTING)
    _dedup_stream(FIRST, config, name=first)
    assert _dedup_stream(SECOND, config, name=second) == FROM_SCRATCH


def test_persisting_mode_matches_operators_by_name(tmp_path: Path) -> None:
    config = _config(tmp_path / "store")
    _dedup_stream(FIRST, config, name="x")
    assert _dedup_stream(SECOND, config, name="y") == FROM_SCRATCH
    # "x" was kept although the previous run did not have it.
    assert _dedup_stream([(2, 6)], config, name="x")[0] == (0, 5, 1)


def test_udf_caching_mode_keeps_no_operator_state(tmp_path: Path) -> None:
    config = _config(tmp_path / "store", pw.PersistenceMode.UDF_CACHING)
    _dedup_stream(FIRST, config, name="x")
    assert _dedup_stream(SECOND, config, name="x") == FROM_SCRATCH


def test_changed_columns_are_refused(tmp_path: Path) -> None:
    config = _config(tmp_path / "store")
    _dedup_stream(FIRST, config)
    pw.clear_graph()
    table = pw.debug.table_from_markdown("val | other\n1 | 2")
    result = table.deduplicate(value=pw.this.val, acceptor=lambda new, old: new > old)
    with pytest.raises(CheckpointError, match="deduplicate#1"):
        pw.debug.table_to_stream(result, persistence_config=config)


def test_name_must_be_a_string() -> None:
    table = pw.debug.table_from_markdown("val\n1")
    with pytest.raises(TypeError, match="name"):
        table.deduplicate(value=pw.this.val, acceptor=lambda new, old: True, name=3)  # type: ignore[arg-type]


# --- persisted inputs --------------------------------------------------------------------
class Value(pw.Schema):
    v: int


def _csv_dedup_run(
    inputs: Path, out: Path, config: Any, calls: list[tuple[int, int]], name: str | None = "src"
) -> list[tuple[str, str]]:
    pw.clear_graph()

    def acceptor(new: int, old: int) -> bool:
        calls.append((new, old))
        return new >= old + 2

    table = pw.io.csv.read(inputs, schema=Value, mode="static", name=name)
    pw.io.csv.write(table.deduplicate(value=pw.this.v, acceptor=acceptor), out)
    pw.run(persistence_config=config, monitoring_level=pw.MonitoringLevel.NONE)
    with open(out, newline="") as handle:
        return sorted((row["v"], row["diff"]) for row in csv.DictReader(handle))


def test_replayed_input_does_not_reach_a_restored_deduplicate(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    config = _config(tmp_path / "store")
    (inputs / "a.csv").write_text("v\n1\n4\n")
    calls: list[tuple[int, int]] = []
    assert _csv_dedup_run(inputs, tmp_path / "out1.csv", config, calls) == [("4", "1")]
    (inputs / "b.csv").write_text("v\n5\n7\n")
    calls.clear()
    assert _csv_dedup_run(inputs, tmp_path / "out2.csv", config, calls) == [("4", "-1"), ("7", "1")]
    assert sorted(calls) == [(5, 4), (7, 4)]


def test_selective_persistence_reads_unnamed_inputs_again(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    config = _config(tmp_path / "store", pw.PersistenceMode.SELECTIVE_PERSISTING)
    (inputs / "a.csv").write_text("v\n1\n4\n")
    calls: list[tuple[int, int]] = []
    _csv_dedup_run(inputs, tmp_path / "out1.csv", config, calls, name=None)
    (inputs / "b.csv").write_text("v\n7\n")
    # Neither the input nor the (unnamed) operator was persisted: all is computed again.
    assert _csv_dedup_run(inputs, tmp_path / "out2.csv", config, calls, name=None) == [("7", "1")]
    assert not list((tmp_path / "store").rglob("*.ipc"))


def test_selective_persistence_resumes_named_inputs(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    config = _config(tmp_path / "store", pw.PersistenceMode.SELECTIVE_PERSISTING)
    pw.clear_graph()
    (inputs / "a.csv").write_text("v\n1\n4\n")

    def run(out: Path) -> list[tuple[str, str, str]]:
        pw.clear_graph()
        table = pw.io.csv.read(inputs, schema=Value, mode="static", name="values")
        pw.io.csv.write(table.reduce(n=pw.reducers.count(), s=pw.reducers.sum(pw.this.v)), out)
        pw.run(persistence_config=config, monitoring_level=pw.MonitoringLevel.NONE)
        with open(out, newline="") as handle:
            return sorted((row["n"], row["s"], row["diff"]) for row in csv.DictReader(handle))

    assert run(tmp_path / "out1.csv") == [("2", "5", "1")]
    (inputs / "b.csv").write_text("v\n10\n")
    assert run(tmp_path / "out2.csv") == [("2", "5", "-1"), ("3", "15", "1")]


# --- the recorded changes ------------------------------------------------------------------
def _operator() -> DeduplicateOperator:
    pw.clear_graph()
    table = pw.debug.table_from_markdown("val\n1")
    result = table.deduplicate(value=pw.this.val, acceptor=lambda new, old: new > old)
    return DeduplicateOperator(result._node)


def _batch(values: list[int]) -> Any:
    import polars as pl

    from deltaflow.engine.batch import DIFF, ID

    return pl.DataFrame(
        {
            ID: pl.Series(range(len(values)), dtype=pl.UInt128),
            "val": values,
            DIFF: [1] * len(values),
        }
    )


def test_changes_until_a_time_exclude_later_times() -> None:
    op = _operator()
    op.record_changes()
    op.step(2, [_batch([1])])
    op.step(4, [_batch([3])])
    op.step(6, [_batch([5])])
    assert {k: v[0] for k, v in op.state_changes_until(4).items()} == {None: 3}
    assert op.has_unsaved_changes()
    assert {k: v[0] for k, v in op.state_changes_until(6).items()} == {None: 5}
    assert not op.has_unsaved_changes()
    assert op.state_changes_until(8) == {}


def test_compaction_keeps_the_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persisted_ops, "COMPACT_AFTER_CHUNKS", 2)
    config = _config(tmp_path / "store")
    for value in range(1, 6):
        _dedup_stream([(2, 10 * value)], config)
    chunks = list((tmp_path / "store").rglob("*.ipc"))
    assert len(chunks) <= 4  # compacted (current and previous checkpoint only)
    assert _dedup_stream([(2, 1)], config) == [(0, 50, 1)]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(st.integers(0, 30), min_size=1, max_size=12),
    cut=st.integers(0, 12),
    gap=st.integers(1, 4),
)
def test_a_restart_continues_like_one_run(
    tmp_path_factory: pytest.TempPathFactory, values: list[int], cut: int, gap: int
) -> None:
    """Split a stream at any time: the second run's restored state plus its own changes end
    where one uninterrupted run ends, and its changes are those of the uninterrupted run
    after the cut (the restored row at time 0 standing for the state before it)."""
    store = tmp_path_factory.mktemp("store")
    rows = [(2 * (i + 1), v) for i, v in enumerate(values)]
    cut = min(cut, len(rows))
    whole = _dedup_stream(rows, None, gap=gap)
    before, after = rows[:cut], rows[cut:]
    config = _config(store)
    first = _dedup_stream(before, config, gap=gap)
    replayed = [(0, v) for _, v in before]
    second = _dedup_stream(replayed + after, config, gap=gap)
    assert sorted(first + [s for s in second if s[0] > 0], key=row_order) == whole
    alive: dict[int, int] = {}
    for time, value, diff in whole:
        if time <= 2 * cut:
            alive[value] = alive.get(value, 0) + diff
    assert [(v, d) for time, v, d in second if time == 0] == [(v, n) for v, n in alive.items() if n]


def test_simple_config_is_the_constructor_deprecated(tmp_path: Path) -> None:
    backend = pw.persistence.Backend.filesystem(tmp_path / "store")
    with pytest.warns(DeprecationWarning, match="simple_config"):
        config = pw.persistence.Config.simple_config(backend, 100)
    assert config.snapshot_interval_ms == 100
    assert config.persistence_mode is pw.persistence.PersistenceMode.PERSISTING
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        selective = pw.persistence.Config.simple_config(
            backend, persistence_mode=pw.PersistenceMode.SELECTIVE_PERSISTING
        )
    assert selective.persists_only_named


def test_unsupported_modes_still_fail_when_built(tmp_path: Path) -> None:
    backend = pw.persistence.Backend.filesystem(tmp_path / "store")
    with pytest.raises(NotImplementedError, match="OPERATOR_PERSISTING"):
        pw.persistence.Config(backend, persistence_mode=pw.PersistenceMode.OPERATOR_PERSISTING)


# --- the examples of docs/persistence.md ------------------------------------------------------
def _doc_examples() -> list[tuple[str, str]]:
    import re

    text = (Path(__file__).parent.parent / "docs" / "persistence.md").read_text()
    return re.findall(r"```python\n((?:(?!```).)*?)```\s*```text\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_doc_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = _doc_examples()[index]
    exec(compile(code, f"docs/persistence.md example {index}", "exec"), {})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]
