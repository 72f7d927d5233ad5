"""Stateful operators (reduce, join, id operations, sort, deduplicate) and their registration.

The runtime imports this package before compiling a plan; importing it registers an operator
for each stateful plan node.
"""

from __future__ import annotations

from deltaflow.engine.runtime import register_operator
from deltaflow.engine.stateful.asof import (
    AsofJoinNode,
    AsofJoinOperator,
    AsofNowJoinNode,
    AsofNowJoinOperator,
)
from deltaflow.engine.stateful.deduplicate import DeduplicateOperator
from deltaflow.engine.stateful.idops import IdOpOperator
from deltaflow.engine.stateful.interval import IntervalJoinNode, IntervalJoinOperator
from deltaflow.engine.stateful.join import JoinOperator
from deltaflow.engine.stateful.join_once import make_join_operator
from deltaflow.engine.stateful.nodes import (
    DeduplicateNode,
    IdOpNode,
    JoinNode,
    ReduceNode,
    SortNode,
)
from deltaflow.engine.stateful.ordering import SortOperator
from deltaflow.engine.stateful.reduce import ReduceOperator
from deltaflow.engine.stateful.streams import (
    AssertAppendOnlyNode,
    AssertAppendOnlyOperator,
    StreamToTableNode,
    StreamToTableOperator,
    ToStreamNode,
    ToStreamOperator,
)
from deltaflow.engine.stateful.temporal_behavior import (
    ForgettingFilterNode,
    ForgettingFilterOperator,
    TimeGateNode,
    TimeGateOperator,
)
from deltaflow.engine.stateful.temporal_session import SessionNode, SessionOperator
from deltaflow.engine.temporal_window import (
    WindowAssignNode,
    WindowAssignOperator,
    WindowIdNode,
    WindowIdOperator,
)

register_operator(ReduceNode, ReduceOperator)
register_operator(ToStreamNode, ToStreamOperator)
register_operator(AssertAppendOnlyNode, AssertAppendOnlyOperator)
register_operator(StreamToTableNode, StreamToTableOperator)
register_operator(JoinNode, make_join_operator)
register_operator(IdOpNode, IdOpOperator)
register_operator(SortNode, SortOperator)
register_operator(DeduplicateNode, DeduplicateOperator)
register_operator(AsofJoinNode, AsofJoinOperator)
register_operator(AsofNowJoinNode, AsofNowJoinOperator)
register_operator(IntervalJoinNode, IntervalJoinOperator)
register_operator(TimeGateNode, TimeGateOperator)
register_operator(ForgettingFilterNode, ForgettingFilterOperator)
register_operator(WindowAssignNode, WindowAssignOperator)
register_operator(SessionNode, SessionOperator)
register_operator(WindowIdNode, WindowIdOperator)

__all__ = ["DeduplicateOperator", "IdOpOperator", "JoinOperator", "ReduceOperator", "SortOperator"]
