"""Public names and signatures that follow Pathway's: type stand-ins, ``table_transformer``,
parameter names, and unknown keywords rejected when the pipeline is defined."""

from __future__ import annotations

import inspect
import pathlib
from typing import Any

import pytest
from tests._util import snapshot

import deltaflow as pw


def _table() -> pw.Table:
    return pw.debug.table_from_markdown("""
        a | b
        1 | 2
        3 | 4
    """)


def test_table_like_and_joinable_cover_tables_and_join_results() -> None:
    table = _table()
    other = _table().select(c=pw.this.a)
    joined = table.join(other, table.a == other.c)
    grouped = table.groupby(table.a)
    for value in (table, joined):
        assert isinstance(value, pw.TableLike)
        assert isinstance(value, pw.Joinable)
    assert not isinstance(grouped, pw.TableLike)
    assert not isinstance(grouped, pw.Joinable)
    assert isinstance(joined.groupby(pw.left.a), pw.GroupedJoinResult)
    assert pw.TableSlice is type(table.slice)


def test_type_namespace_gives_column_types() -> None:
    schema = pw.schema_builder(
        {
            "i": pw.column_definition(dtype=pw.Type.INT),
            "s": pw.column_definition(dtype=pw.Type.optional(pw.Type.STRING)),
            "l": pw.column_definition(dtype=pw.Type.list(pw.Type.FLOAT)),
            "t": pw.column_definition(dtype=pw.Type.tuple(pw.Type.INT, pw.Type.BOOL)),
        }
    )
    assert schema == pw.schema_from_types(i=int, s=str | None, l=list[float], t=tuple[int, bool])
    with pytest.raises(NotImplementedError, match="pw.Type.future"):
        pw.Type.future(pw.Type.INT)


def test_interactive_mode_is_refused_by_name() -> None:
    with pytest.raises(NotImplementedError, match="enable_interactive_mode"):
        pw.enable_interactive_mode()
    with pytest.raises(NotImplementedError, match="LiveTable"):
        pw.LiveTable()


class Numbers(pw.Schema):
    a: int


class Keyed(pw.Schema):
    a: int = pw.column_definition(primary_key=True)
    b: float


def test_table_transformer_checks_arguments_and_result() -> None:
    @pw.table_transformer
    def doubled(
        table: pw.Table[Numbers], factor: int, *, extra: pw.Table[Keyed] | None = None
    ) -> pw.Table[Numbers]:
        return table.select(a=table.a * factor)

    good = _table()
    assert snapshot(doubled(good, 3)) == [(3,), (9,)]
    assert doubled.__name__ == "doubled"
    with pytest.raises(AssertionError, match="'table'"):
        doubled(good.select(z=pw.this.a), 2)
    with pytest.raises(AssertionError, match="'extra'"):
        doubled(good, 2, extra=good.select(q=pw.this.a))
    doubled(good, 2, extra=good)  # b: int is a fine float column

    @pw.table_transformer(allow_superset=False)
    def strict(table: pw.Table[Numbers]) -> pw.Table[Numbers]:
        return table

    with pytest.raises(AssertionError, match="'table'"):
        strict(good)  # column b is one too many
    assert snapshot(strict(good.select(pw.this.a))) == [(1,), (3,)]


def test_table_transformer_options_per_parameter() -> None:
    @pw.table_transformer(
        allow_superset={"table": True, "return": False}, ignore_primary_keys={"return": False}
    )
    def passthrough(table: pw.Table[Numbers], result: Any) -> pw.Table[Keyed]:
        return result

    unkeyed = pw.debug.table_from_markdown("a | b\n1 | 2.5")
    with pytest.raises(AssertionError, match="the result"):
        passthrough(_table(), unkeyed)  # Keyed has a primary key, the result has none
    keyed = pw.debug.table_from_markdown("a | b\n1 | 2.5").select(*pw.this).with_id_from(pw.this.a)
    if keyed.schema.primary_key_columns() == ["a"]:
        assert passthrough(_table(), keyed) is keyed
        with pytest.raises(AssertionError, match="the result"):
            passthrough(_table(), keyed.with_columns(c=1))  # no superset for the result


def test_table_transformer_resolves_string_annotations_with_locals() -> None:
    class Local(pw.Schema):
        a: int

    def plain(table: pw.Table[Local]) -> pw.Table[Local]:
        return table

    plain.__annotations__ = {"table": "pw.Table[Local]", "return": "pw.Table[Local]"}
    with pytest.raises(TypeError, match="locals"):
        pw.table_transformer(plain)
    checked = pw.table_transformer(plain, locals={"Local": Local, "pw": pw})
    with pytest.raises(AssertionError):
        checked(_table().select(x=pw.this.a))


def test_method_signatures_follow_pathway_names() -> None:
    table = _table().select(t=pw.make_tuple(pw.this.a, pw.this.b))
    assert snapshot(table.flatten(to_flatten=table.t)) == [(1,), (2,), (3,), (4,)]
    assert "to_flatten" in inspect.signature(pw.Table.flatten).parameters
    updates = _table().filter(pw.this.a == 1).select(b=pw.this.b * 10)
    base = _table()
    assert snapshot(base.update_cells(other=updates)) == [(1, 20), (3, 4)]
    windowby = inspect.signature(pw.Table.windowby).parameters
    assert {"time_expr", "window", "behavior", "instance"} <= set(windowby)


def test_unknown_keywords_fail_when_the_pipeline_is_defined() -> None:
    table = _table()
    with pytest.raises(TypeError, match="bogus"):
        table.groupby(table.a, bogus=True)
    with pytest.raises(TypeError, match="bogus"):
        table.windowby(table.a, window=pw.temporal.tumbling(2), bogus=True)
    with pytest.raises(TypeError, match="bogus"):
        table.diff(table.a, table.b, bogus=True)
    assert snapshot(table.groupby(table.a, _skip_errors=True).reduce(n=pw.reducers.count())) == [
        (1,),
        (1,),
    ]


def test_stdlib_utils_async_transformer_module_path() -> None:
    import deltaflow.stdlib.utils.async_transformer as module

    assert module.AsyncTransformer is pw.AsyncTransformer
    assert pw.utils.async_transformer is module


def _api_gaps_module() -> Any:
    import importlib.util

    path = pathlib.Path(__file__).parent.parent / "scripts" / "api_gaps.py"
    spec = importlib.util.spec_from_file_location("s4_api_gaps", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_gaps_finds_nothing_between_deltaflow_and_itself() -> None:
    gaps = _api_gaps_module()
    reference = gaps.dump("deltaflow", {})
    probe = {name: module["public"] for name, module in reference["modules"].items()}
    ours = gaps.dump("deltaflow", probe)  # names given lazily are looked up too
    assert "Table" in ours["classes"] and "debug" in ours["modules"]
    assert gaps.compare(ours, reference, extra=False) == []


def test_api_gaps_names_signature_differences() -> None:
    gaps = _api_gaps_module()

    def reference(a: int, b: str = "x", *, c: bool = False) -> None: ...

    def ours_(a: int, b: str = "y", **kwargs: Any) -> None: ...

    problems = gaps.compare_signatures(gaps._signature(ours_), gaps._signature(reference))
    assert problems == [
        "b: default 'y' (Pathway 'x')",
        "missing parameter c (swallowed by **kwargs)",
        "extra **kwargs (unknown keywords not rejected)",
    ]


def test_notebook_views_are_refused_by_name() -> None:
    table = _table()
    with pytest.raises(NotImplementedError, match="Table.live"):
        table.live()
    with pytest.raises(NotImplementedError, match="Table.show"):
        table.show(page_size=5)
    with pytest.raises(NotImplementedError, match="Table.plot"):
        table.plot(print)
    with pytest.raises(TypeError):
        table.show(colour="red")  # type: ignore[call-arg]
    assert pw.viz is pw.stdlib.viz
    with pytest.raises(NotImplementedError, match="Table.show"):
        pw.viz.show(table)
