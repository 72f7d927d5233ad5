"""The operator of ``pw.iterate``: fixed points kept up to date round by round.

The body of an iteration is compiled once per *round*: round ``i`` is a normal incremental
dataflow (the body's own operators, compiled by the same registry as ``pw.run``'s) that maps
the tables of round ``i`` to those of round ``i + 1``. The rounds are chained, and each keeps
its operators' state from one outer time to the next. At an outer time, the changes of the
iterated inputs enter round 0; each round's output changes are the next round's input
changes; the changes of the tables the body only reads enter every round. The result is the
output of the last round.

Why this is exact: an incremental operator's state is a function of the current contents of
its inputs, so round ``i`` always holds ``F(X_i)`` for the current ``X_i``; the chain
therefore holds ``X_1 = F(X_0), X_2 = F(X_1), ...`` for the current inputs, after any mix of
insertions and deletions -- nothing is continued from an old fixed point. After each outer
time the chain is as long as the iteration needs: while the last round's output differs from
its input (and ``iteration_limit`` allows), a new round is compiled and fed the full current
tables. The number of rounds only grows (a round that is not needed any more passes its
input through unchanged, at the cost of the change).

What an update costs: every round processes the changes that reach it, as an incremental
operator would (rounds stop being visited once the changes die out, unless a read-only input
changed, which reaches every round); a round added to the chain costs the full size of the
tables once. Memory is the body's state times the number of rounds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from deltaflow import errors, plan
from deltaflow.engine.batch import DIFF, ID, concat_batches, consolidate, negate
from deltaflow.engine.iterate_nodes import IterateNode, IterateOutputNode, IterationInputNode
from deltaflow.engine.operators import Delta, InputOperator, Operator
from deltaflow.engine.runtime import OPERATORS, register_operator

logger = logging.getLogger("deltaflow.engine.iterate")


@dataclass
class BodyPlan:
    """The body's nodes in topological order, cut at its boundary (the placeholders and the
    outer tables it reads), with each node's input positions."""

    order: list[plan.Node]
    inputs_of: list[list[int]]
    positions: dict[int, int]  # node uid -> position in ``order``
    boundary: set[int]  # uids of the nodes fed from outside the body
    outputs: dict[str, int]  # iterated name -> position of the node giving its next value

    @classmethod
    def of(cls, node: IterateNode) -> BodyPlan:
        boundary = {p.uid for p in node.placeholders.values()} | {o.uid for o in node.outer}
        roots = [node.body_outputs[name] for name in node.iterated]
        order: list[plan.Node] = []
        visited: set[int] = set()
        stack: list[tuple[plan.Node, bool]] = [(r, False) for r in reversed(roots)]
        while stack:
            current, expanded = stack.pop()
            if expanded:
                order.append(current)
                continue
            if current.uid in visited:
                continue
            visited.add(current.uid)
            stack.append((current, True))
            if current.uid in boundary:
                continue
            for child in reversed(current.inputs):
                if child.uid not in visited:
                    stack.append((child, False))
        positions = {n.uid: i for i, n in enumerate(order)}
        inputs_of = [
            [] if n.uid in boundary else [positions[i.uid] for i in n.inputs] for n in order
        ]
        outputs = {name: positions[node.body_outputs[name].uid] for name in node.iterated}
        return cls(order, inputs_of, positions, boundary, outputs)


class BodyRound:
    """One compiled copy of the body: the operators of one round, with their own state."""

    def __init__(self, body: BodyPlan) -> None:
        self.body = body
        self.operators: list[Operator] = []
        for node in body.order:
            if node.uid in body.boundary:
                self.operators.append(InputOperator(node))  # type: ignore[arg-type]
                continue
            factory = OPERATORS.get(type(node))
            if factory is None:
                raise NotImplementedError(
                    f"no operator implements {type(node).__name__} (inside pw.iterate)"
                )
            self.operators.append(factory(node))

    def step(self, time: int, feeds: Mapping[int, pl.DataFrame]) -> dict[str, Delta]:
        """Push one outer time's changes of the boundary nodes (by uid) through the round;
        return the changes of each iterated table's next value."""
        body = self.body
        for uid, delta in feeds.items():
            position = body.positions.get(uid)
            if position is not None:  # (a table the body does not use is not compiled)
                self.operators[position].pending.append(delta)  # type: ignore[attr-defined]
        results: list[Delta] = [None] * len(self.operators)
        for position, op in enumerate(self.operators):
            if isinstance(op, InputOperator):
                if op.pending:
                    results[position] = op.step(time, ())
                continue
            deltas = [results[i] for i in body.inputs_of[position]]
            if all(d is None for d in deltas):
                continue
            result = op.step(time, deltas)
            if isinstance(result, pl.DataFrame) and result.height == 0:
                result = None  # (operators downstream expect None for "no change")
            results[position] = result
        return {name: results[position] for name, position in body.outputs.items()}


class Contents:
    """The current rows of a table, kept as changes and consolidated only when asked for or
    when the changes outgrow the rows (so memory stays proportional to the table, and the
    consolidations cost O(1) per changed row, amortized)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.parts: list[pl.DataFrame] = []
        self._rows = 0  # rows held in ``parts``
        self._compacted = 0  # rows after the last consolidation

    def add(self, delta: Delta) -> None:
        if delta is not None and delta.height:
            self.parts.append(delta)
            self._rows += delta.height
            if self._rows > 2 * self._compacted + 4096:
                self.frame()

    def frame(self) -> pl.DataFrame | None:
        if len(self.parts) > 1:
            merged = consolidate(
                _stack([p if p.columns == self.names else p.select(self.names) for p in self.parts])
            )
            self.parts = [merged] if merged.height else []
            self._rows = self._compacted = merged.height
        return self.parts[0] if self.parts else None


def _stack(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate changes of one table (with error cells, a column may be Python objects in
    some of them: then it is in all)."""
    if errors.errors_seen():
        parts = errors.unify_object_columns(parts)
    return concat_batches(parts)


def _difference(new: Delta, old: Delta, names: list[str]) -> Delta:
    """``new - old`` (consolidated), None when they are equal."""
    parts = [p.select(names) for p in (new,) if p is not None and p.height]
    if old is not None and old.height:
        parts.append(negate(old.select(names)))
    if not parts:
        return None
    merged = consolidate(_stack(parts))
    return merged if merged.height else None


def _sum(deltas: Sequence[Delta], names: list[str]) -> Delta:
    parts = [d.select(names) for d in deltas if d is not None and d.height]
    if not parts:
        return None
    merged = parts[0] if len(parts) == 1 else consolidate(_stack(parts))
    return merged if merged.height else None


class IterateOperator(Operator[IterateNode]):
    """Runs the chain of rounds; its result maps each iterated name to its changes."""

    def __init__(self, node: IterateNode) -> None:
        super().__init__(node)
        self.iterate = node
        self.body = BodyPlan.of(node)
        self.limit = node.limit
        self.names = {name: [ID, *node.placeholders[name].columns, DIFF] for name in node.iterated}
        self.rounds: list[BodyRound] = [BodyRound(self.body)]
        # The boundary nodes fed with the outer tables' changes, by input position.
        feeds: list[int] = [node.placeholders[name].uid for name in node.names]
        feeds += [outer.uid for outer in node.outer]
        self._feed_uids = feeds
        self._iterated_at = {name: node.names.index(name) for name in node.iterated}
        # What a new round needs: the read-only tables and the last round's output, whole.
        iterated_uids = {node.placeholders[m].uid for m in node.iterated}
        boundary_nodes = [*(node.placeholders[m] for m in node.names), *node.outer]
        self._read_only_uids = {uid for uid in feeds if uid not in iterated_uids}
        self._read_only = {
            uid: Contents([ID, *n.columns, DIFF])
            for uid, n in zip(feeds, boundary_nodes, strict=True)
            if uid in self._read_only_uids
        }
        self._result = {name: Contents(names) for name, names in self.names.items()}

    def _limit_reached(self) -> bool:
        return self.limit is not None and len(self.rounds) >= self.limit

    # Its output is not a Delta but the iterated tables' deltas by name, read only by the
    # IterateOutputOperator nodes behind it; the runtime passes outputs along untouched.
    def step(  # type: ignore[override]
        self,
        time: int,
        deltas: Sequence[Delta],
    ) -> dict[str, Delta] | None:
        current: dict[str, Delta] = {name: deltas[i] for name, i in self._iterated_at.items()}
        read_only: dict[int, pl.DataFrame] = {}
        for uid, delta in zip(self._feed_uids, deltas, strict=True):
            if uid in self._read_only_uids and delta is not None and delta.height:
                read_only[uid] = delta
                if uid in self._read_only:
                    self._read_only[uid].add(delta)
        previous: dict[str, Delta] = dict(current)
        for body_round in self.rounds:
            if not read_only and all(d is None for d in current.values()):
                previous = current  # nothing reaches this round or the next ones
                break
            feeds = dict(read_only)
            for name, delta in current.items():
                if delta is not None and delta.height:
                    feeds[self.iterate.placeholders[name].uid] = delta
            previous, current = current, self._normalized(body_round.step(time, feeds))
        emitted: dict[str, list[Delta]] = {name: [current[name]] for name in self.names}
        if not self._limit_reached():
            for name, contents in self._result.items():
                contents.add(current[name])
            converged = all(
                _difference(current[name], previous[name], names) is None
                for name, names in self.names.items()
            )
            while not converged and not self._limit_reached():
                converged = self._add_round(time, emitted)
            if self._limit_reached():  # no round will be added: forget the copies
                self._read_only.clear()
                self._result.clear()
        out = {name: _sum(parts, self.names[name]) for name, parts in emitted.items()}
        return out if any(d is not None for d in out.values()) else None

    def _normalized(self, outputs: dict[str, Delta]) -> dict[str, Delta]:
        """The body's outputs with the inputs' column order (the body may reorder)."""
        normal: dict[str, Delta] = {}
        for name, delta in outputs.items():
            names = self.names[name]
            if delta is None or delta.height == 0:
                normal[name] = None
            else:
                normal[name] = delta if delta.columns == names else delta.select(names)
        return normal

    def _add_round(self, time: int, emitted: dict[str, list[Delta]]) -> bool:
        """Compile one more round, feed it the whole current tables and record how the result
        moves; True when the new round changed nothing (the fixed point is reached)."""
        body_round = BodyRound(self.body)
        self.rounds.append(body_round)
        logger.debug("iterate: round %d added at time %d", len(self.rounds), time)
        feeds: dict[int, pl.DataFrame] = {}
        for uid, contents in self._read_only.items():
            frame = contents.frame()
            if frame is not None:
                feeds[uid] = frame
        inputs: dict[str, Delta] = {}
        for name, contents in self._result.items():
            inputs[name] = contents.frame()
            if inputs[name] is not None:
                feeds[self.iterate.placeholders[name].uid] = inputs[name]  # type: ignore
        outputs = self._normalized(body_round.step(time, feeds))
        converged = True
        for name, names in self.names.items():
            change = _difference(outputs[name], inputs[name], names)
            if change is not None:
                converged = False
                emitted[name].append(change)
                self._result[name].add(change)
        return converged


class IterateOutputOperator(Operator[IterateOutputNode]):
    """Picks one iterated table's changes out of the iterate operator's result."""

    def __init__(self, node: IterateOutputNode) -> None:
        super().__init__(node)
        self.name = node.name

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        result = deltas[0]
        if result is None:
            return None
        # The IterateOperator's dict of deltas (see its step), not a Delta.
        return result.get(self.name)  # type: ignore[attr-defined]


def _placeholder_outside(node: IterationInputNode) -> Operator:
    raise ValueError(
        f"a table built inside the body of pw.iterate (from its argument "
        f"{node.name!r}) is used outside of it; use the tables pw.iterate returns"
    )


register_operator(IterateNode, IterateOperator)
register_operator(IterateOutputNode, IterateOutputOperator)
register_operator(IterationInputNode, _placeholder_outside)
