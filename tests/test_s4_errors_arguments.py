"""Wrong arguments are refused when the pipeline is defined, with Pathway's exception types
(``ValueError`` where Pathway raises one; our classes are ``TypeError`` too)."""

from __future__ import annotations

import inspect

import pytest

import deltaflow as pw
from deltaflow.argument_errors import TABLE_METHOD_NAMES


def _table() -> pw.Table:
    return pw.debug.table_from_markdown("""
    a | t
    1 | 1
    2 | 4
    """)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.select("a"),
        lambda t: t.reduce("a"),
        lambda t: t.reduce(1),
        lambda t: t.groupby().reduce("a"),
        lambda t: t.groupby(pw.this.a, output=pw.this.a),
        lambda t: t.windowby(t.t, t.a, window=pw.temporal.tumbling(duration=2)),
        lambda t: t.windowby(
            t.t, window=pw.temporal.tumbling(duration=2), total=pw.reducers.sum(pw.this.a)
        ),
        lambda t: t.select(pw.this.filter),
        lambda t: t[t.copy().a],
        lambda t: t.slice[t.copy().a],
        lambda t: t.slice[pw.left.a],
        lambda t: t.slice.select,
        lambda t: t.update_types(missing=int),
        lambda t: t.groupby(t.a).reduce(t.a, t=pw.this.t),  # t is not a grouping column
        lambda t: t.join(t.copy(), t.a == pw.right.a, total=pw.left.t),  # belongs in select
    ],
    ids=[
        "select-str",
        "reduce-str",
        "reduce-int",
        "grouped-reduce-str",
        "groupby-kwarg",
        "windowby-args",
        "windowby-kwarg",
        "method-name",
        "getitem-other",
        "slice-other",
        "slice-left",
        "slice-method",
        "update_types",
        "non-grouping",
        "join-kwarg",
    ],
)
def test_refused_with_a_value_error(call: object) -> None:
    with pytest.raises(ValueError) as info:
        call(_table())  # type: ignore[operator]
    assert isinstance(info.value, TypeError | KeyError)  # also Python's natural type


def test_missing_arguments_stay_type_errors() -> None:
    with pytest.raises(TypeError) as info:
        _table().flatten()  # type: ignore[call-arg]
    assert not isinstance(info.value, ValueError)


def test_groupby_id_needs_a_single_grouping_column() -> None:
    keyed = _table().with_columns(p=pw.this.pointer_from(pw.this.a))
    # the result's ids are the grouping column's values: fine with that column alone
    assert len(pw.debug.table_to_dicts(keyed.groupby(keyed.p, id=keyed.p).reduce(keyed.p))[0]) == 2
    # with more grouping columns (instance= counts as one) the ids could repeat: refused
    for refused in (
        lambda: keyed.groupby(keyed.p, keyed.t, id=keyed.p),
        lambda: keyed.groupby(keyed.p, id=keyed.p, instance=keyed.t),
        lambda: keyed.groupby(id=keyed.p, instance=keyed.t),
        lambda: keyed.groupby(keyed.t, id=keyed.p),
    ):
        with pytest.raises(ValueError, match="id="):
            refused()


def test_extra_argument_checks_keep_signatures() -> None:
    parameters = inspect.signature(pw.Table.groupby).parameters
    assert "instance" in parameters and "id" in parameters


def test_method_names_need_brackets() -> None:
    table = pw.debug.table_from_markdown("""
    join | value
    2    | 3
    """)
    assert "join" in TABLE_METHOD_NAMES
    with pytest.raises(ValueError, match=r'pw.this\["join"\]|pw.this\[\'join\'\]'):
        table.select(pw.this.join)
    result = table.select(j=pw.this["join"], v=pw.this.value, i=pw.this.id)
    assert pw.debug.table_to_dicts(result)[1]["j"] != {}
    # names Pathway allows on pw.this stay usable
    assert pw.this.without("a") is not None and pw.this.C is not None


def test_iterating_a_column_is_a_type_error() -> None:
    table = _table()
    with pytest.raises(TypeError, match="pw.apply"):
        list(table.a)
    with pytest.raises(TypeError, match="not iterable"):
        _first, _second = pw.make_tuple(table.a, table.a)


def test_getitem_of_own_columns_still_works() -> None:
    table = _table()
    assert table[table.a].name == "a"
    assert table[pw.this.a].name == "a"
    assert table["t"].name == "t"
