"""PyObjectWrapper columns written to CSV / JSON lines files come back as the same objects."""

from __future__ import annotations

import operator
import pickle
from pathlib import Path
from typing import Any

import pytest

import deltaflow as pw


class Flipped:
    """A serializer of our own: pickle, bytes reversed (so plain pickle cannot read it)."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value)[::-1]

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data[::-1])


class Held(pw.Schema):
    name: str = pw.column_definition(primary_key=True)
    op: pw.PyObjectWrapper


def _run() -> None:
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


@pytest.mark.parametrize("fmt", ["csv", "jsonlines"])
def test_wrapped_objects_survive_a_file_round_trip(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"ops.{fmt}"
    names = pw.debug.table_from_markdown("name\nneg\nabs")
    table = names.select(
        pw.this.name,
        op=pw.apply(
            lambda name: pw.wrap_py_object(
                getattr(operator, name), serializer=Flipped() if name == "abs" else None
            ),
            pw.this.name,
        ),
    ).update_types(op=pw.PyObjectWrapper)
    getattr(pw.io, fmt).write(table, path)
    _run()
    assert "operator" not in path.read_text()  # the object itself, not its repr
    pw.clear_graph()

    back = getattr(pw.io, fmt).read(path, schema=Held, mode="static")

    @pw.udf
    def call(op: pw.PyObjectWrapper, x: int) -> int:
        return op.value(x)

    result = pw.debug.table_to_pandas(back.select(pw.this.name, r=call(pw.this.op, -7)))
    assert dict(zip(result["name"], result["r"], strict=True)) == {"neg": 7, "abs": 7}


def test_an_object_its_serializer_cannot_write_fails_the_run(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown("a\n1").select(
        op=pw.apply(lambda a: pw.wrap_py_object(lambda x: x + a), pw.this.a)
    )
    pw.io.csv.write(table, tmp_path / "out.csv")
    with pytest.raises(Exception, match="cannot write PyObjectWrapper"):
        _run()


def test_text_that_is_not_a_written_object_is_wrapped_as_before(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('name,op\nx,"[1, 2]"\n')
    back = pw.io.csv.read(path, schema=Held, mode="static")
    frame = pw.debug.table_to_pandas(back)
    assert frame["op"].iloc[0].value == [1, 2]
