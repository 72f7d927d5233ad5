"""``pw.pandas_transformer``: a function on pandas DataFrames as a table operation.

The decorated function gets one DataFrame per table argument (index: the row ids, columns:
the table's columns) and returns a DataFrame or a Series whose columns become, in order, the
columns of ``output_schema`` and whose index gives the result's row ids: ids taken from an
input's index stay those rows' ids; any other index value ``v`` becomes the id a markdown
row labelled ``v`` gets. With ``output_universe`` (a parameter's position or name) the result
has exactly the rows of that argument (checked at each time; ``ValueError`` otherwise).

The whole function is run again at every time at which an input changed (its cost follows the
size of the inputs, not of the change: it is meant for small tables), and the result's
changes are the difference with the previous result. A function without table arguments runs
once, when it is called.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import polars as pl

from deltaflow import _types as t
from deltaflow import plan
from deltaflow._ids import pointer_from_values
from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.runtime import register_operator
from deltaflow.schema import SchemaMetaclass
from deltaflow.table import Table

__all__ = ["pandas_transformer"]


@dataclass(eq=False)
class PandasTransformerNode(plan.Node):
    """The result of a pandas transformer over its input tables (``inputs``)."""

    function: Callable[..., Any] | None = None
    input_columns: tuple[tuple[str, ...], ...] = ()
    universe_input: int | None = None  # whose rows the result must have
    precomputed: dict[int, tuple[Any, ...]] | None = None  # the rows, when no table goes in
    description: str = field(default="pandas_transformer")


def _frame(rows: dict[int, tuple[Any, ...]], names: Sequence[str]) -> pd.DataFrame:
    index = pd.Index([t.Pointer(row_id) for row_id in rows], dtype=object)
    data = {name: [row[i] for row in rows.values()] for i, name in enumerate(names)}
    return pd.DataFrame(data, index=index, columns=list(names))


def _result_rows(result: Any, names: Sequence[str], where: str) -> dict[int, tuple[Any, ...]]:
    """``{row id: values}`` of the function's result (a DataFrame or a Series)."""
    if isinstance(result, pd.Series):
        result = result.to_frame()
    if not isinstance(result, pd.DataFrame):
        raise TypeError(
            f"{where}: the function must return a pandas DataFrame or Series, "
            f"not {type(result).__name__}"
        )
    if result.shape[1] != len(names):
        raise ValueError(
            f"{where}: the function returned {result.shape[1]} columns, the "
            f"output schema has {len(names)} ({', '.join(names)})"
        )
    if not result.index.is_unique:
        raise ValueError(
            f"{where}: the index of the function's result has repeated values; "
            f"it gives the row ids, which must be unique"
        )
    if set(map(str, result.columns)) == set(names):
        result = result[[c for n in names for c in result.columns if str(c) == n]]
    rows: dict[int, tuple[Any, ...]] = {}
    for label, values in zip(result.index.tolist(), result.itertuples(index=False), strict=True):
        if not isinstance(label, t.Pointer):
            label = pointer_from_values(label.item() if hasattr(label, "item") else label)
        rows[int(label)] = tuple(v.item() if hasattr(v, "item") else v for v in values)
    return rows


class PandasTransformerOperator(Operator[PandasTransformerNode]):
    def __init__(self, node: PandasTransformerNode) -> None:
        super().__init__(node)
        self.function = node.function
        self.input_columns = node.input_columns
        self.universe_input = node.universe_input
        self.where = node.description
        self.names = list(node.columns)
        self.states: list[dict[int, tuple[Any, ...]]] = [{} for _ in node.input_columns]
        self.output: dict[int, tuple[Any, ...]] = {}
        self.precomputed = node.precomputed

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        if all(delta is None or delta.height == 0 for delta in deltas):
            return None
        if self.precomputed is not None:
            return self._difference(self.precomputed)
        for state, names, delta in zip(self.states, self.input_columns, deltas, strict=True):
            if delta is None:
                continue
            for row in delta.select([ID, *names, DIFF]).iter_rows():
                if row[-1] > 0:
                    state[row[0]] = row[1:-1]
                else:
                    state.pop(row[0], None)
        frames = [
            _frame(state, names)
            for state, names in zip(self.states, self.input_columns, strict=True)
        ]
        assert self.function is not None
        new = _result_rows(self.function(*frames), self.names, self.where)
        if self.universe_input is not None and set(new) != set(self.states[self.universe_input]):
            raise ValueError(
                f"{self.where}: the result's index is not the set of row ids of "
                f"argument {self.universe_input}, chosen as output_universe"
            )
        return self._difference(new)

    def _difference(self, new: dict[int, tuple[Any, ...]]) -> Delta:
        ids: list[int] = []
        rows: list[tuple[Any, ...]] = []
        diffs: list[int] = []
        for row_id in set(self.output) | set(new):
            old_row, new_row = self.output.get(row_id), new.get(row_id)
            if old_row == new_row:
                continue
            for row, diff in ((old_row, -1), (new_row, 1)):
                if row is not None:
                    ids.append(row_id)
                    rows.append(row)
                    diffs.append(diff)
        self.output = new
        if not ids:
            return None
        columns = [pl.Series(ID, ids, dtype=self.empty().schema[ID])]
        columns += [
            t.series_from_values(name, [row[i] for row in rows], self.columns[name])
            for i, name in enumerate(self.names)
        ]
        columns.append(pl.Series(DIFF, diffs, dtype=pl.Int64))
        return consolidate(pl.DataFrame(columns))


register_operator(PandasTransformerNode, PandasTransformerOperator)


def _universe_position(
    output_universe: str | int | None, parameters: list[str], where: str
) -> int | None:
    if output_universe is None:
        return None
    if isinstance(output_universe, str):
        if output_universe not in parameters:
            raise ValueError(
                f"{where}: output_universe={output_universe!r} names no "
                f"parameter (they are {parameters})"
            )
        return parameters.index(output_universe)
    if isinstance(output_universe, bool) or not isinstance(output_universe, int):
        raise TypeError(
            f"{where}: output_universe must be a parameter name or position, "
            f"not {output_universe!r}"
        )
    if not 0 <= output_universe < len(parameters):
        raise ValueError(
            f"{where}: output_universe={output_universe} is no argument position "
            f"(there are {len(parameters)})"
        )
    return output_universe


def pandas_transformer(
    output_schema: type[Any], output_universe: str | int | None = None
) -> Callable[..., Any]:
    """Turn a function from pandas DataFrames to a DataFrame (or Series) into a function from
    tables to a table with ``output_schema``; see the module's description."""
    if not isinstance(output_schema, SchemaMetaclass):
        raise TypeError(
            f"pandas_transformer: output_schema must be a pw.Schema class, not {output_schema!r}"
        )
    columns = output_schema.dtypes()

    def decorate(function: Callable[..., Any]) -> Callable[..., Table]:
        where = f"pandas_transformer {getattr(function, '__name__', repr(function))}"

        @functools.wraps(function)
        def transformer(*tables: Table) -> Table:
            for position, table in enumerate(tables):
                if not isinstance(table, Table):
                    raise TypeError(
                        f"{where}: argument {position} must be a Table, not {type(table).__name__}"
                    )
            parameters = [p.name for p in inspect.signature(function).parameters.values()]
            universe = _universe_position(
                output_universe, parameters[: len(tables)] or parameters, where
            )
            if universe is not None and universe >= len(tables):
                raise ValueError(
                    f"{where}: output_universe={output_universe!r} is no table "
                    f"argument of this call"
                )
            if not tables:
                return _static_result(function, columns, where)
            node = PandasTransformerNode(
                columns=dict(columns),
                inputs=tuple(table._node for table in tables),
                label=where,
                function=function,
                description=where,
                input_columns=tuple(tuple(table._columns) for table in tables),
                universe_input=universe,
            )
            return Table(
                node, tables[universe]._universe if universe is not None else plan.Universe()
            )

        return transformer

    return decorate


def _static_result(function: Callable[..., Any], columns: dict[str, t.DType], where: str) -> Table:
    """A function without table arguments: run it now (so that a bad result fails at once);
    its rows enter the run at its first time, through a one-row trigger table."""
    from deltaflow.debug import table_from_rows
    from deltaflow.schema import schema_from_types

    rows = _result_rows(function(), list(columns), where)
    trigger = table_from_rows(schema_from_types(trigger=int), [(0,)])
    node = PandasTransformerNode(
        columns=dict(columns),
        inputs=(trigger._node,),
        label=where,
        function=None,
        description=where,
        input_columns=((),),
        precomputed=rows,
    )
    return Table(node, plan.Universe())
