"""``pw.iterate`` and ``pw.iterate_universe``: fixed points of a function over tables.

``pw.iterate(func, **tables)`` calls ``func`` once, with placeholder tables standing for the
given ones, and records the plan it builds (the *body*). The tables ``func`` returns are
*iterated*: at run time the body is applied again and again, each round's results being the
next round's inputs, until nothing changes any more or ``iteration_limit`` rounds have run;
the tables it does not return are read-only inputs of every round. The result stays up to
date as the inputs change; :mod:`deltaflow.engine.iterate` says how and what that costs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from deltaflow import plan
from deltaflow.engine import iterate as _engine  # noqa: F401 - registers the operators
from deltaflow.engine.iterate_nodes import IterateNode, IterateOutputNode, IterationInputNode
from deltaflow.error_display import user_call
from deltaflow.errors import DefinitionError
from deltaflow.table import Table

__all__ = ["IterateResult", "MissingIteratedTable", "iterate", "iterate_universe"]


class iterate_universe:  # noqa: N801 - Pathway's name
    """Marks a table given to :func:`iterate` whose set of rows may change from round to
    round (the body may add or remove rows); other iterated tables must keep their rows."""

    def __init__(self, table: Table) -> None:
        if not isinstance(table, Table):
            raise TypeError(f"pw.iterate_universe: expected a Table, got {type(table).__name__}")
        self.table = table

    def __repr__(self) -> str:
        return f"iterate_universe(table={self.table!r})"


class MissingIteratedTable(DefinitionError, AttributeError, KeyError):
    """``result.name`` for a name the result does not have: an AttributeError (``hasattr``
    works) that is also the KeyError Pathway raises."""


class IterateResult:
    """The tables :func:`iterate` returns when the body returned a dict: reachable as
    ``result.name`` and ``result["name"]``; iterating gives the tables, in argument order."""

    _tables: dict[str, Table]  # set through object.__setattr__ (attribute access is the API)

    def __init__(self, tables: dict[str, Table]) -> None:
        object.__setattr__(self, "_tables", dict(tables))

    def __getattr__(self, name: str) -> Table:
        tables: dict[str, Table] = object.__getattribute__(self, "_tables")
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in tables:
            raise MissingIteratedTable(
                f"pw.iterate result has no table {name!r}; it has {', '.join(tables) or '(none)'}"
            )
        return tables[name]

    def __getitem__(self, name: str) -> Table:
        return self._tables[name]

    def __iter__(self) -> Iterator[Table]:
        return iter(self._tables.values())

    def __len__(self) -> int:
        return len(self._tables)

    def __contains__(self, name: object) -> bool:
        return name in self._tables

    def keys(self) -> Any:
        return self._tables.keys()

    def values(self) -> Any:
        return self._tables.values()

    def items(self) -> Any:
        return self._tables.items()

    def __repr__(self) -> str:
        return f"IterateResult({', '.join(self._tables)})"


@user_call
def iterate(
    func: Callable[..., Any], iteration_limit: int | None = None, **kwargs: Table | iterate_universe
) -> Any:
    """The fixed point of ``func`` started from the keyword tables.

    ``func`` is called once, with tables of the same names, columns and types, and returns
    the tables of the next round: one Table (the next value of the first argument), a dict
    (by argument name) or a tuple/list (in argument order). Returned tables are iterated;
    the others are read-only. Each iterated table must keep its columns and their types,
    and its set of rows unless it was given as ``pw.iterate_universe(table)``.

    Returns, like the body: a Table, an :class:`IterateResult` (dict-like, with attribute
    access) or a tuple. An iterated table's result has its input's column order and, unless
    wrapped in ``iterate_universe``, its input's rows (ids) and universe.

    Parameters:
        func: the body: takes tables (keyword arguments) and returns the next round's tables.
        iteration_limit: stop after this many rounds (None: run to the fixed point).
        **kwargs: the starting tables, by the body's argument names (wrap one in
            ``pw.iterate_universe`` when its rows change).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... n
        ... 7
        ... 12
        ... ''')
        >>> def halve(t: pw.Table) -> pw.Table:
        ...     return t.select(n=pw.if_else(t.n % 2 == 0, t.n // 2, t.n))
        >>> pw.debug.compute_and_print(pw.iterate(halve, t=t), include_id=False)
        n
        3
        7
    """
    limit = _checked_limit(iteration_limit)
    if not callable(func):
        raise TypeError(f"pw.iterate: func must be callable, got {type(func).__name__}")
    if not kwargs:
        raise TypeError(
            "pw.iterate: give the tables to iterate as keyword arguments "
            "(pw.iterate(func, name=table, ...))"
        )
    given: dict[str, Table] = {}
    growing: set[str] = set()
    for name, value in kwargs.items():
        if isinstance(value, iterate_universe):
            given[name] = value.table
            growing.add(name)
        elif isinstance(value, Table):
            given[name] = value
        else:
            raise TypeError(
                f"pw.iterate: argument {name}= must be a Table or "
                f"pw.iterate_universe(table), got {type(value).__name__}"
            )
    placeholders = {
        name: IterationInputNode(
            columns=dict(table._columns), name=name, label=f"pw.iterate argument {name!r}"
        )
        for name, table in given.items()
    }
    with _body_tables_not_recorded():
        inside = {name: Table(node, plan.Universe()) for name, node in placeholders.items()}
        returned, shape = _returned_tables(func(**inside), list(given))
    for name, table in returned.items():
        _check_iterated(name, table, given[name], inside[name], name in growing)
    iterated = tuple(name for name in given if name in returned)
    body_outputs = {name: returned[name]._node for name in iterated}
    outer = _outer_nodes(list(body_outputs.values()), {node.uid for node in placeholders.values()})
    node = IterateNode(
        columns={},
        inputs=(*(t._node for t in given.values()), *outer),
        names=tuple(given),
        iterated=iterated,
        placeholders=placeholders,
        body_outputs=body_outputs,
        outer=tuple(outer),
        limit=limit,
        label="iterate",
    )
    results: dict[str, Table] = {}
    for name in iterated:
        output = IterateOutputNode(
            columns=dict(given[name]._columns),
            inputs=(node,),
            name=name,
            label=f"iterate result {name!r}",
        )
        universe = plan.Universe() if name in growing else given[name]._universe
        results[name] = Table(output, universe)
    if shape == "table":
        return results[iterated[0]]
    if shape == "tuple":
        return tuple(results[name] for name in iterated)
    return IterateResult(results)


def _body_tables_not_recorded() -> contextlib.AbstractContextManager[Any]:
    """Tables of the body read placeholders and cannot be computed alone: ``pw.run_all``
    must not try (the registry offers the switch where it records tables)."""
    pause = getattr(plan.REGISTRY, "tables_not_recorded", None)
    return pause() if pause is not None else contextlib.nullcontext()


def _checked_limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if not isinstance(limit, int):
        raise TypeError(
            f"pw.iterate: iteration_limit must be an int or None, got {type(limit).__name__}"
        )
    if limit <= 0:
        raise ValueError(f"pw.iterate: iteration_limit must be positive, got {limit}")
    return int(limit)


def _returned_tables(raw: Any, names: list[str]) -> tuple[dict[str, Table], str]:
    """The tables the body returned, by argument name, and the shape of the result."""
    if isinstance(raw, Table):
        return {names[0]: raw}, "table"
    if isinstance(raw, Mapping):
        unknown = [k for k in raw if k not in names]
        if unknown:
            raise ValueError(
                f"pw.iterate: the function returned tables {unknown} that are "
                f"not among its arguments {names}"
            )
        tables = {name: raw[name] for name in names if name in raw}
        shape = "dict"
    elif isinstance(raw, Sequence) and not isinstance(raw, str | bytes):
        if len(raw) > len(names):
            raise ValueError(
                f"pw.iterate: the function returned {len(raw)} tables for {len(names)} arguments"
            )
        tables = dict(zip(names, raw, strict=False))
        shape = "tuple"
    else:
        raise TypeError(
            f"pw.iterate: the function must return a Table, a dict or a tuple of "
            f"tables, got {type(raw).__name__}"
        )
    for name, table in tables.items():
        if not isinstance(table, Table):
            raise TypeError(
                f"pw.iterate: the function returned {type(table).__name__} for "
                f"{name!r}, not a Table"
            )
    if not tables:
        raise ValueError("pw.iterate: the function returned no table to iterate")
    return tables, shape


def _check_iterated(name: str, out: Table, given: Table, inside: Table, growing: bool) -> None:
    """The next value of an iterated table must look like the table itself."""
    if dict(out._columns) != dict(given._columns):

        def show(columns: Mapping[str, Any]) -> str:
            return "{" + ", ".join(f"{n!r}: {d!r}" for n, d in columns.items()) + "}"

        raise ValueError(
            f"pw.iterate: the function's result for {name!r} has columns "
            f"{show(out._columns)}, which do not correspond to the input "
            f"{show(given._columns)} (same names and types are needed)"
        )
    if not growing and out._universe is not inside._universe:
        raise ValueError(
            f"pw.iterate: iterated table {name!r} not marked as "
            f"'iterate_universe' changed its universe (its rows may differ "
            f"from the input's); pass it as pw.iterate_universe(table) if its "
            f"rows may change"
        )


def _outer_nodes(roots: list[plan.Node], placeholders: set[int]) -> list[plan.Node]:
    """Nodes the body reads that do not depend on the placeholders (tables built from
    constants, or closed over): they are computed outside and fed to every round."""
    depends: dict[int, bool] = {}
    nodes: dict[int, plan.Node] = {}
    stack: list[tuple[plan.Node, bool]] = [(r, False) for r in roots]
    while stack:
        node, expanded = stack.pop()
        if node.uid in depends:
            continue
        if node.uid in placeholders:
            depends[node.uid] = True
            continue
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in node.inputs if child.uid not in depends)
            continue
        nodes[node.uid] = node
        depends[node.uid] = any(depends[child.uid] for child in node.inputs)
    outer: dict[int, plan.Node] = {}
    for root in roots:
        if not depends[root.uid]:
            outer[root.uid] = root
    for node in nodes.values():
        if depends[node.uid]:
            for child in node.inputs:
                if not depends[child.uid]:
                    outer.setdefault(child.uid, child)
    return list(outer.values())
