"""Inner joins with ``left_exactly_once`` / ``right_exactly_once``.

The flag is the user's promise that each row of that side finds its partner once: as soon as
a row of an *exactly-once* side is matched, it leaves the join's state, so later rows of the
other side never meet it again (and its matches are never retracted). The operator is the
plain join (:class:`~deltaflow.engine.stateful.join.JoinOperator`) followed, at each time,
by three steps over the keys the time touched:

* a row of an exactly-once side matched by several rows at one time breaks the promise: the
  run stops with a ``ValueError`` (Pathway stops too);
* the matched rows of an exactly-once side are retracted from its arrangement;
* a deletion of a row that was already matched (so already forgotten) leaves a negative
  count in the arrangement: the run stops with a
  :class:`~deltaflow.engine.runtime.EngineError`, as Pathway reports a deletion on a side
  it expects to be append-only.

The extra cost is one arrangement lookup of the touched keys per side and time.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from deltaflow.engine.batch import DIFF
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.stateful.arrangement import Arrangement
from deltaflow.engine.stateful.join import LID, RID, JoinOperator
from deltaflow.engine.stateful.nodes import JoinNode


class ExactlyOnceJoinOperator(JoinOperator[JoinNode]):
    """An inner join whose exactly-once sides forget each row after its first match."""

    def __init__(self, node: JoinNode) -> None:
        super().__init__(node)
        self.once: list[tuple[Arrangement, str, str]] = []
        if node.left_exactly_once:
            self.once.append((self.left, LID, "left"))
        if node.right_exactly_once:
            self.once.append((self.right, RID, "right"))

    def _step(self, deltas: Sequence[Delta]) -> Delta:
        out = super()._step(deltas)
        if not self._touched:  # the key hashes of this time's deltas
            return out
        touched = pl.concat(self._touched).unique()
        for arrangement, id_column, side in self.once:
            current = arrangement.lookup(touched)
            if current is not None and current.filter(pl.col(DIFF) < 0).height:
                from deltaflow.engine.runtime import EngineError

                raise EngineError(
                    f"{self.describe()}: a row of the {side} side was deleted after it was "
                    f"matched; with {side}_exactly_once=True that side must only grow (a "
                    f"matched row is forgotten)"
                )
            if out is None:
                continue
            matched = out.filter(pl.col(DIFF) > 0)[id_column]
            if matched.n_unique() != matched.len():
                raise ValueError(
                    f"{self.describe()}: a row of the {side} side matched several rows at "
                    f"once, but {side}_exactly_once=True promises at most one match per row"
                )
            if current is not None and matched.len():
                gone = current.filter(pl.col(id_column).is_in(matched.implode()))
                if gone.height:
                    arrangement.insert(gone.with_columns(-pl.col(DIFF)))
        return out


def make_join_operator(node: JoinNode) -> Operator:
    """The operator of a join node: the exactly-once variant when a side asks for it."""
    if node.left_exactly_once or node.right_exactly_once:
        return ExactlyOnceJoinOperator(node)
    return JoinOperator(node)


__all__ = ["ExactlyOnceJoinOperator", "make_join_operator"]
