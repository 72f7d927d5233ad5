"""``pw.stdlib.ml.hmm``: decoding a hidden Markov model as a streaming reducer.

:func:`create_hmm_reducer` turns an HMM, given as a ``networkx.DiGraph``, into an accumulator
class for ``pw.reducers.udf_reducer``. Rows of a group are observations in arrival order;
the reducer's value is the most likely sequence of hidden states so far (Viterbi decoding,
log-probabilities), optionally only its last ``num_results_kept`` states.

The graph's nodes are the states, each with a ``calc_emission_log_ppb(observation)``
attribute; its edges carry ``log_transition_ppb``; ``graph.graph["start_nodes"]`` lists the
states a sequence may start in. ``beam_size`` keeps only that many most likely states
between steps (a beam search), trading exactness for speed on large graphs.
"""

from __future__ import annotations

import pickle
from collections import deque
from typing import Any

import numpy as np

from deltaflow.reducers_stateful import BaseCustomAccumulator

__all__ = ["create_hmm_reducer"]


def create_hmm_reducer(
    graph: Any, beam_size: int | None = None, num_results_kept: int | None = None
) -> type[BaseCustomAccumulator]:
    """An accumulator class decoding the HMM ``graph`` (a ``networkx.DiGraph``; use it with
    ``pw.reducers.udf_reducer``); its value is a tuple of states, oldest first."""
    states = list(graph.nodes())
    index = {state: i for i, state in enumerate(states)}
    emission = [graph.nodes[s]["calc_emission_log_ppb"] for s in states]
    # For each state, (index of a predecessor, log-probability of the transition).
    incoming: list[list[tuple[int, float]]] = [[] for _ in states]
    for source, target, data in graph.edges(data=True):
        incoming[index[target]].append((index[source], float(data["log_transition_ppb"])))
    starts = [index[s] for s in graph.graph["start_nodes"]]
    beam = len(states) + 1 if beam_size is None else beam_size
    # A path of n states needs n - 1 steps of back-pointers.
    steps_kept = None if num_results_kept is None else max(num_results_kept - 1, 0)

    class HmmAccumulator(BaseCustomAccumulator):
        """Viterbi state: log-probabilities of the best path ending in each state, the
        back-pointers of the last steps and the current best path."""

        def __init__(self, observation: Any) -> None:
            self.cnt = 1
            self.observation = observation
            self.ppb = np.full(len(states), -np.inf)
            for i in starts:
                self.ppb[i] = emission[i](observation)
            self.active = list(starts)
            self.backpointers: deque[np.ndarray] = deque()
            self.path_states: tuple[Any, ...] = (states[int(self.ppb.argmax())],)

        @classmethod
        def from_row(cls, row: list[Any]) -> HmmAccumulator:
            [observation] = row
            return cls(observation)

        def update(self, other: BaseCustomAccumulator) -> None:
            assert isinstance(other, HmmAccumulator) and other.cnt == 1
            self.cnt += 1
            self._step(other.observation)

        def _step(self, observation: Any) -> None:
            active = set(self.active)
            new_ppb = np.full(len(states), -np.inf)
            pointers = np.zeros(len(states), dtype=int)
            reached: list[int] = []
            for target in range(len(states)):
                options = [
                    (self.ppb[source] + log_p, source)
                    for source, log_p in incoming[target]
                    if source in active
                ]
                if not options:
                    continue
                best, source = max(options)
                new_ppb[target] = best + emission[target](observation)
                pointers[target] = source
                reached.append(target)
            if len(reached) > beam:
                reached = sorted(reached, key=lambda i: new_ppb[i])[-beam:]
            self.active = reached
            self.ppb = new_ppb
            self.backpointers.append(pointers)
            if steps_kept is not None:
                while len(self.backpointers) > steps_kept:
                    self.backpointers.popleft()
            path = [int(new_ppb.argmax())]
            for step in reversed(self.backpointers):
                path.append(int(step[path[-1]]))
            self.path_states = tuple(states[i] for i in reversed(path))

        def compute_result(self) -> tuple[Any, ...]:
            return self.path_states

        def retract(self, other: BaseCustomAccumulator) -> None:
            raise NotImplementedError("the HMM reducer decodes append-only observations")

        def serialize(self) -> bytes:
            """The accumulator's state as bytes (for persistence)."""
            return pickle.dumps(
                (
                    self.cnt,
                    self.observation,
                    self.ppb,
                    self.backpointers,
                    self.active,
                    self.path_states,
                )
            )

        @classmethod
        def deserialize(cls, value: bytes) -> HmmAccumulator:
            """An accumulator from :meth:`serialize`'s bytes."""
            cnt, observation, ppb, backpointers, active, path = pickle.loads(value)
            accumulator = cls(observation)
            accumulator.cnt = cnt
            accumulator.ppb = ppb
            accumulator.backpointers = backpointers
            accumulator.active = active
            accumulator.path_states = path
            return accumulator

    return HmmAccumulator
