"""Failures worded so that programs written for Pathway, which may match Pathway's messages,
keep working: deltaflow's own message comes first, Pathway's sentence is part of it."""

from __future__ import annotations

import re

import pytest

import deltaflow as pw


class _Boxes(pw.Schema):
    size: int
    label: str
    note: pw.Json


def _boxes() -> pw.Table:
    return pw.debug.table_from_rows(
        _Boxes, [(3, "small", pw.Json([1, 2])), (9, "large", pw.Json(None))]
    ).with_columns(
        pair=pw.make_tuple(pw.this.size, pw.this.size),
        mixed=pw.make_tuple(pw.this.size, pw.this.label),
        maybe=pw.if_else(pw.this.size > 5, pw.this.size, None),
    )


@pytest.mark.parametrize(
    ("build", "name", "types"),
    [
        (lambda t: t.size + t.label, "add", "<class 'int'>, <class 'str'>"),
        (lambda t: t.label // t.size, "floordiv", "<class 'str'>, <class 'int'>"),
        (lambda t: t.label & t.label, "and_", "<class 'str'>, <class 'str'>"),
        (lambda t: t.size >= t.label, "ge", "<class 'int'>, <class 'str'>"),
        (lambda t: t.pair != t.mixed, "ne", "tuple[int, int], tuple[int, str]"),
        (lambda t: t.maybe - t.label, "sub", "int | None, <class 'str'>"),
        (
            lambda t: pw.make_tuple(t.maybe) < pw.make_tuple(t.maybe),
            "lt",
            "tuple[int | None], tuple[int | None]",
        ),
    ],
)
def test_unsupported_operator_names_python_operator_and_type_hints(
    build: object, name: str, types: str
) -> None:
    t = _boxes()
    sentence = f"Pathway does not support using binary operator {name} on columns of types {types}."
    with pytest.raises(TypeError, match=re.escape(sentence)) as failure:
        t.select(z=build(t))  # type: ignore[operator]
    # our own account of the failure stays first: the table and the expression
    assert str(failure.value).startswith("select on table with_columns")


def test_unwrap_of_none_says_it_cannot_unwrap() -> None:
    t = _boxes()
    t.select(v=pw.unwrap(t.maybe))
    with pytest.raises(ValueError, match="pw.unwrap: cannot unwrap a None value"):
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)


def test_json_conversion_of_null_with_unwrap_says_it_cannot_unwrap() -> None:
    t = _boxes().filter(pw.this.size > 5)  # the row whose note is a Json null
    t.select(v=t.note.as_int(unwrap=True))
    with pytest.raises(ValueError, match=r"as_int\(unwrap=True\): cannot unwrap a None value"):
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)


def test_flatten_of_a_json_that_is_not_a_list() -> None:
    t = _boxes()
    t.flatten(t.note)
    with pytest.raises(ValueError, match="Pathway can't flatten this Json: null"):
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)


@pw.udf(executor=pw.udfs.fully_async_executor())
async def _double(a: int) -> int:
    return 2 * a


def _with_future() -> pw.Table:
    t = pw.debug.table_from_markdown("k | w\n1 | 5\n2 | 6")
    return t.with_columns(d=_double(pw.this.k))


@pytest.mark.parametrize(
    "use",
    [
        lambda t: t.groupby(t.d),
        lambda t: t.sort(t.d),
        lambda t: t.sort(t.k, instance=t.d),
        lambda t: t.deduplicate(value=t.d, acceptor=lambda new, old: new > old),
    ],
)
def test_a_future_column_used_as_a_key(use: object) -> None:
    t = _with_future()
    sentence = (
        "Using column of type _asyncio.Future[int] is not allowed here. Consider applying "
        "`await_futures()` to the table first."
    )
    with pytest.raises(TypeError, match=re.escape(sentence)) as failure:
        use(t)  # type: ignore[operator]
    assert "call await_futures() on the table first" in str(failure.value)


def test_a_reducer_over_a_future_column() -> None:
    t = _with_future()
    sentence = (
        "Cannot perform pathway.reducers.max when column of type _asyncio.Future[int] is "
        "involved. Consider applying `await_futures()` to the table used here."
    )
    with pytest.raises(TypeError, match=re.escape(sentence)):
        t.reduce(m=pw.reducers.max(t.d))
    # once awaited, the same reduce is fine
    assert pw.debug.table_to_pandas(
        t.await_futures().reduce(m=pw.reducers.max(pw.this.d))
    ).m.tolist() == [4]


def test_an_operator_on_a_future_column() -> None:
    t = _with_future()
    sentence = (
        "Pathway does not support using binary operator mul on columns of types "
        "_asyncio.Future[int], <class 'int'>."
    )
    with pytest.raises(TypeError, match=re.escape(sentence)):
        t.select(x=t.d * t.w)


def test_get_at_an_index_past_a_tuple_warns_with_pathway_wording() -> None:
    t = _boxes()
    with pytest.warns(UserWarning, match=r"(?s)Index 5 out of range.*without \.get\(\)\.") as seen:
        r = t.select(v=t.pair.get(5, default=t.size))
    assert "select on table with_columns" in str(seen[0].message)
    assert pw.debug.table_to_pandas(r).v.sort_values().tolist() == [3, 9]


def test_latest_on_a_table_with_deletions_warns() -> None:
    t = pw.debug.table_from_markdown("""
          | g | v | __time__ | __diff__
        1 | 1 | 4 | 2 | 1
        1 | 1 | 4 | 4 | -1
    """)
    with pytest.warns(UserWarning, match="the latest reducer requires an append-only input"):
        t.groupby(t.g).reduce(last=pw.reducers.latest(t.v))


def test_update_operations_that_change_nothing_warn() -> None:
    base = pw.debug.table_from_markdown("k | v\n1 | 10\n2 | 20")
    same_rows = base.select(k=base.k, v=base.v + 1)
    with pytest.warns(UserWarning, match="Using with_columns instead of update_cells.") as seen:
        base.update_cells(same_rows)
    with pytest.warns(UserWarning, match="Using with_columns instead of update_cells.") as seen2:
        base << same_rows
    with pytest.warns(UserWarning, match="Returning other.") as seen3:
        base.update_rows(same_rows)
    # each warning points at the line that asked for the operation
    assert {w.filename for w in [*seen, *seen2, *seen3]} == {__file__}
    with pytest.warns(UserWarning, match="Found universe that is always empty"):
        pw.universes.promise_are_pairwise_disjoint(base, same_rows)


def test_flatten_of_a_scalar_column_names_its_type_as_pathway_does() -> None:
    t = _boxes()
    with pytest.raises(TypeError, match=re.escape("Cannot flatten column of type INT.")):
        t.flatten(t.size)
    with pytest.raises(TypeError, match=re.escape("of type Optional(INT).")):
        t.flatten(t.maybe)


def test_stream_to_table_with_a_non_bool_flag() -> None:
    t = _boxes()
    with pytest.raises(
        TypeError, match=re.escape("Expected 'is_upsert' to be of type 'bool', got '<class 'int'>'")
    ):
        t.stream_to_table(t.size)


def test_exactly_once_join_matching_twice_in_one_time() -> None:
    left = pw.debug.table_from_markdown("k | x\n1 | 10")
    right = pw.debug.table_from_markdown("k | y\n1 | 5\n1 | 6")
    left.join(right, left.k == right.k, left_exactly_once=True).select(left.x, right.y)
    with pytest.raises(ValueError, match=re.escape("Repeated entry in a batch.")):
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)


@pw.udf
def _plain(a: int) -> int:
    return a


@pytest.mark.parametrize(
    ("use", "operation"),
    [
        (lambda t: t.pointer_from(t.d), "pathway.pointer_from"),
        (lambda t: pw.make_tuple(t.d, t.k), "pathway.make_tuple"),
        (lambda t: t.d.is_not_none(), "pathway.is_not_none"),
        (lambda t: _plain(t.d), "pathway.apply"),
        (lambda t: pw.require(t.d, t.k), "pathway.require"),
        (lambda t: pw.coalesce(t.d, "text"), "pathway.coalesce"),
    ],
)
def test_a_function_of_a_future_column_is_named_as_pathway_does(
    use: object, operation: str
) -> None:
    t = _with_future()
    sentence = (
        f"Cannot perform {operation} when column of type _asyncio.Future[int] is involved. "
        "Consider applying `await_futures()` to the table used here."
    )
    with pytest.raises(TypeError, match=re.escape(sentence)):
        t.select(x=use(t))  # type: ignore[operator]


def test_if_else_with_a_future_branch() -> None:
    t = _with_future()
    sentence = (
        "Cannot perform pathway.if_else on columns of types _asyncio.Future[int] and <class 'str'>."
    )
    with pytest.raises(TypeError, match=re.escape(sentence)):
        t.select(x=pw.if_else(t.k > 1, t.d, "none"))
