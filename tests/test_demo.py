"""``pw.demo``: the demo streams produce the documented rows, at the documented pace."""

from __future__ import annotations

import pathlib
import random
from time import monotonic

import pytest

import deltaflow as pw
from _util import snapshot


def test_range_stream_rows_and_types() -> None:
    table = pw.demo.range_stream(nb_rows=5, offset=-2, input_rate=1000)
    assert table.schema.typehints() == {"value": float}
    assert snapshot(table) == [(-2.0,), (-1.0,), (0.0,), (1.0,), (2.0,)]


def test_range_stream_defaults_start_at_zero() -> None:
    assert snapshot(pw.demo.range_stream(nb_rows=3, input_rate=1000)) == [(0.0,), (1.0,), (2.0,)]


def test_noisy_linear_stream_is_reproducible() -> None:
    table = pw.demo.noisy_linear_stream(nb_rows=6, input_rate=1000)
    assert table.schema.typehints() == {"x": float, "y": float}
    assert table.schema.primary_key_columns() == ["x"]
    noise = random.Random(0)
    expected = [(float(i), i + (2 * noise.random() - 1) / 10) for i in range(6)]
    keys, columns = pw.debug.table_to_dicts(table)
    rows = sorted((columns["x"][k], columns["y"][k]) for k in keys)
    assert [r[0] for r in rows] == [e[0] for e in expected]
    assert [r[1] for r in rows] == pytest.approx([e[1] for e in expected])
    assert all(abs(y - x) <= 0.1 for x, y in rows)
    # Ids come from the primary key: the same in another run.
    again = pw.demo.noisy_linear_stream(nb_rows=6, input_rate=1000)
    assert sorted(pw.debug.table_to_dicts(again)[0]) == sorted(keys)


def test_generate_custom_stream() -> None:
    class Squares(pw.Schema):
        n: int
        square: int
        label: str

    table = pw.demo.generate_custom_stream(
        {"n": lambda i: i, "square": lambda i: i * i, "label": lambda i: f"row{i}"},
        schema=Squares,
        nb_rows=4,
        input_rate=1000,
        autocommit_duration_ms=10,
        name="squares",
    )
    assert snapshot(table) == [(0, 0, "row0"), (1, 1, "row1"), (2, 4, "row2"), (3, 9, "row3")]


def test_input_rate_paces_the_rows() -> None:
    times: list[float] = []
    table = pw.demo.range_stream(nb_rows=4, input_rate=20, autocommit_duration_ms=5)
    pw.io.subscribe(table, lambda key, row, time, is_addition: times.append(monotonic()))
    started = monotonic()
    pw.run()
    assert len(times) == 4
    assert times[-1] - started >= 3 / 20 * 0.9


def test_unbounded_custom_stream_runs_until_stopped() -> None:
    from deltaflow.engine.runtime import stop_all_runs

    class Counter(pw.Schema):
        n: int

    seen: list[int] = []
    table = pw.demo.generate_custom_stream(
        {"n": lambda i: i}, schema=Counter, nb_rows=None, input_rate=500, autocommit_duration_ms=5
    )

    def on_change(key: object, row: dict, time: int, is_addition: bool) -> None:
        seen.append(row["n"])
        if len(seen) >= 10:
            stop_all_runs()

    pw.io.subscribe(table, on_change)
    pw.run()
    assert sorted(seen)[:10] == list(range(10))


def write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text)
    return path


def test_replay_csv_converts_to_the_schema(tmp_path: pathlib.Path) -> None:
    source = write(tmp_path / "in.csv", "k,v,extra\n1,foo,x\n2,bar,y\n3,baz,z\n")

    class InputSchema(pw.Schema):
        k: int
        v: str

    table = pw.demo.replay_csv(source, schema=InputSchema, input_rate=1000)
    assert table.schema.typehints() == {"k": int, "v": str}
    assert snapshot(table) == [(1, "foo"), (2, "bar"), (3, "baz")]


def test_replay_csv_with_time_follows_the_time_column(tmp_path: pathlib.Path) -> None:
    source = write(tmp_path / "in.csv", "time,v\n0,a\n100,b\n250,c\n")

    class InputSchema(pw.Schema):
        time: int
        v: str

    table = pw.demo.replay_csv_with_time(
        str(source), schema=InputSchema, time_column="time", unit="ms", autocommit_ms=5, speedup=2
    )
    arrivals: dict[str, float] = {}
    pw.io.subscribe(
        table, lambda key, row, time, is_addition: arrivals.setdefault(row["v"], monotonic())
    )
    pw.run()
    assert set(arrivals) == {"a", "b", "c"}
    # 250 ms of data time at speed 2: c comes about 125 ms after a.
    assert 0.1 <= arrivals["c"] - arrivals["a"] <= 1.0


def test_bad_arguments() -> None:
    class Timed(pw.Schema):
        time: str
        v: str

    with pytest.raises(ValueError, match="Invalid schema"):
        pw.demo.replay_csv_with_time("/tmp", schema=Timed, time_column="time")

    class Good(pw.Schema):
        time: int

    with pytest.raises(ValueError, match="unit"):
        pw.demo.replay_csv_with_time("/tmp", schema=Good, time_column="time", unit="h")
    with pytest.raises(ValueError, match="nb_rows"):
        pw.demo.range_stream(nb_rows=-1)
    with pytest.raises(ValueError, match="nb_rows"):
        pw.demo.noisy_linear_stream(nb_rows=-1)
    with pytest.raises(ValueError, match="input_rate"):
        pw.demo.range_stream(nb_rows=3, input_rate=0)
    with pytest.raises(TypeError, match="callable"):
        pw.demo.generate_custom_stream({"time": 3}, schema=Good, nb_rows=1)


# --- the examples of docs/demo.md ----------------------------------------------------------


def _doc_examples() -> list[tuple[str, str]]:
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "demo.md").read_text()
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_doc_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = _doc_examples()[index]
    exec(compile(code, f"docs/demo.md example {index}", "exec"), {})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]
