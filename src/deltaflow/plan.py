"""The logical plan: immutable nodes built by ``Table`` methods, compiled by ``pw.run``.

A node knows its inputs, its output columns and types, and how its row ids derive from its
inputs'. Nodes never compute; :mod:`deltaflow.engine.compile` turns them into operators.
Every output node a program creates is recorded in :data:`REGISTRY`, so that ``pw.run()`` runs
all outputs defined so far.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from deltaflow import _types as t
from deltaflow.engine.boundary import Sink, Source

_node_ids = itertools.count()


def _capture_origin() -> Any:
    from deltaflow.errors import capture_origin

    return capture_origin()


class Universe:
    """The set of row ids of a table, as far as the plan knows (identity only)."""

    def __init__(self, parent: Universe | None = None) -> None:
        # Universes this one is known to be a subset of (equal universes list each other).
        self.supersets: list[Universe] = [parent] if parent is not None else []
        self.static_ids: Any = None  # the ids (a Polars Series) when known from static data
        self.disjoint_from: set[int] = set()  # id()s of universes promised disjoint

    @property
    def parent(self) -> Universe | None:
        """The first universe this one is known to be a subset of."""
        return self.supersets[0] if self.supersets else None

    @parent.setter
    def parent(self, other: Universe | None) -> None:
        # A new subset relation adds to what is known; it never forgets an earlier one.
        if other is not None and other is not self and other not in self.supersets:
            self.supersets.append(other)

    def known_disjoint(self, other: Universe) -> bool | None:
        """True/False when promises or static data tell whether the two universes share no
        id; None when nothing is known."""
        if id(other) in self.disjoint_from or id(self) in other.disjoint_from:
            return True
        if self.static_ids is not None and other.static_ids is not None:
            return not self.static_ids.is_in(other.static_ids.implode()).any()
        return None

    def is_subset_of(self, other: Universe) -> bool:
        """Whether the plan knows every id of this universe to be an id of ``other``."""
        seen: set[int] = set()
        pending: list[Universe] = [self]
        while pending:
            current = pending.pop()
            if current is other:
                return True
            if id(current) not in seen:
                seen.add(id(current))
                pending.extend(current.supersets)
        return False


@dataclass(eq=False)
class Node:
    """Base of plan nodes. ``columns`` maps output column names to their types, in order."""

    columns: dict[str, t.DType]
    inputs: tuple[Node, ...] = ()
    uid: int = field(default_factory=lambda: next(_node_ids))
    label: str = ""
    # Where the user defined it (the error log's trace) and the local error log then active.
    origin: Any = field(default_factory=_capture_origin, repr=False)

    def describe(self) -> str:
        return self.label or type(self).__name__


@dataclass(eq=False)
class InputNode(Node):
    """Rows produced by a source (a connector or in-memory debug data)."""

    source: Source | None = None
    primary_key: tuple[str, ...] | None = None
    # Columns the schema declares append-only in a table that may delete rows (see
    # deltaflow.column_properties).
    append_only_columns: frozenset[str] = frozenset()


@dataclass(eq=False)
class SelectNode(Node):
    """Per-row expressions over the input; ids are kept (``select``, ``with_columns`` ...)."""

    projection: Any = None  # expressions.evaluate.CompiledProjection
    # True when the plan guarantees that rows sharing an id still differ after the projection
    # (e.g. a windowed reduce's output, whose dropped columns are functions of the id): its
    # consolidated input then gives a consolidated output without looking.
    rows_stay_distinct: bool = False


@dataclass(eq=False)
class FilterNode(Node):
    """Rows of the input whose boolean expression is true; ids are kept."""

    predicate: Any = None  # CompiledProjection with a single output "__keep"


@dataclass(eq=False)
class ReindexNode(Node):
    """The input with new ids computed by ``id_projection`` (a single pointer output)."""

    id_projection: Any = None
    what: str = "with_id"


@dataclass(eq=False)
class ConcatNode(Node):
    """The union of the inputs; with ``reindex`` each input's ids are salted by its position."""

    reindex: bool = False


@dataclass(eq=False)
class FlattenNode(Node):
    """One row per element of ``column``; ids derive from (row id, position)."""

    column: str = ""
    origin_id: str | None = None


@dataclass(eq=False)
class OutputNode(Node):
    """Hands the input's changes to a sink at each time."""

    sink: Sink | None = None
    sort_by: Sequence[str] = ()


class PlanRegistry:
    """The outputs and the tables defined by a program, in definition order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outputs: list[OutputNode] = []
        self.tables: list[Node] = []
        self._table_registration_paused = 0

    def add_output(self, node: OutputNode) -> None:
        with self._lock:
            self.outputs.append(node)

    def add_table(self, node: Node) -> None:
        """Record a user-visible table's node (``pw.run_all`` computes every table)."""
        if self._table_registration_paused:
            return
        with self._lock:
            self.tables.append(node)

    @contextlib.contextmanager
    def tables_not_recorded(self) -> Iterator[None]:
        """Tables built inside are not recorded for ``run_all``: for plans built for an
        operator's own use (an iterate body over placeholder inputs) that cannot run alone."""
        self._table_registration_paused += 1
        try:
            yield
        finally:
            self._table_registration_paused -= 1

    def clear(self) -> None:
        with self._lock:
            self.outputs.clear()
            self.tables.clear()

    def take(self) -> list[OutputNode]:
        with self._lock:
            return list(self.outputs)

    def unconsumed_tables(self) -> list[Node]:
        """Recorded table nodes that no other recorded table or output reads from."""
        with self._lock:
            nodes = list(self.tables)
            outputs = list(self.outputs)
        consumed = {child.uid for node in [*nodes, *outputs] for child in node.inputs}
        seen: set[int] = set()
        leaves = []
        for node in nodes:
            if node.uid not in consumed and node.uid not in seen:
                seen.add(node.uid)
                leaves.append(node)
        return leaves


REGISTRY = PlanRegistry()


def node_ids_used() -> int:
    """A number above every node id given so far (for a process that takes nodes over)."""
    global _node_ids
    upcoming = next(_node_ids)
    _node_ids = itertools.count(upcoming)
    return upcoming


def skip_node_ids(below: int) -> None:
    """Give new nodes ids from ``below`` on: nodes with smaller ids came from elsewhere (a
    graph carried into a fresh interpreter, see ``deltaflow._fork``)."""
    global _node_ids
    upcoming = next(_node_ids)
    _node_ids = itertools.count(max(upcoming, below))


_CLEAR_HOOKS: list[Any] = []


def on_clear_graph(hook: Any) -> None:
    """Call ``hook()`` whenever the graph is cleared (state kept per graph outside the plan,
    such as named input synchronization groups)."""
    _CLEAR_HOOKS.append(hook)


def clear_graph() -> None:
    """Forget every output defined so far (tests call this between programs)."""
    REGISTRY.clear()
    for hook in _CLEAR_HOOKS:
        hook()


def topological_order(roots: Sequence[Node]) -> list[Node]:
    """All nodes reachable from ``roots``, inputs before the nodes using them."""
    order: list[Node] = []
    visited: set[int] = set()
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node.uid in visited:
            continue
        visited.add(node.uid)
        stack.append((node, True))
        for child in reversed(node.inputs):
            if child.uid not in visited:
                stack.append((child, False))
    return order
