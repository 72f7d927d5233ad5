"""Plan nodes of the stateful operations (their operators live next to this module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deltaflow import _types as t
from deltaflow.plan import Node


@dataclass
class ReducerCall:
    """One reducer of a reduce: its kind, the pre-projected argument columns and its output."""

    reducer: Any  # deltaflow.reducers.Reducer
    args: list[str]
    arg_types: list[t.DType]
    column: str
    dtype: t.DType


@dataclass(eq=False)
class ReduceNode(Node):
    """``groupby(...).reduce(...)``: one row per group, id from the group key."""

    pre: Any = None  # CompiledProjection: keys __k<i> and reducer arguments __a<j>
    keys: list[str] = field(default_factory=list)
    key_types: list[t.DType] = field(default_factory=list)
    reducers: list[ReducerCall] = field(default_factory=list)
    post: Any = None  # CompiledProjection over the group frame
    id_key: str | None = None  # key column whose (Pointer) value is the group id
    # groupby(_skip_errors=...): in a run keeping errors, an error argument leaves its row out
    # of that reducer (True) or makes the reducer's value an Error (False).
    skip_errors: bool = True


@dataclass(eq=False)
class JoinNode(Node):
    """The wide result of a join: both sides' columns (prefixed), their ids and the row id."""

    left_pre: Any = None  # CompiledProjection: __l__<col> and keys __jk<i>
    right_pre: Any = None
    keys: list[str] = field(default_factory=list)
    key_types: list[t.DType] = field(default_factory=list)
    mode: str = "inner"  # inner | left | right | outer
    id_side: str | None = None  # "left"/"right": keep that side's ids
    coalesced: dict[str, tuple[str, str]] = field(default_factory=dict)
    left_columns: list[str] = field(default_factory=list)
    right_columns: list[str] = field(default_factory=list)
    # Inner joins only: a row of that side is matched at most once, then forgotten.
    left_exactly_once: bool = False
    right_exactly_once: bool = False


@dataclass(eq=False)
class IdOpNode(Node):
    """Operations matching rows of several tables by id (update_rows, restrict ...)."""

    kind: str = ""


@dataclass(eq=False)
class SortNode(Node):
    """``sort``: prev/next pointers of every row in key order (within its instance)."""

    pre: Any = None  # CompiledProjection: __key and optional __inst


@dataclass(eq=False)
class DeduplicateNode(Node):
    """``deduplicate``: per instance, the last row whose value the acceptor accepted."""

    pre: Any = None  # CompiledProjection: __val and optional __inst
    acceptor: Any = None
    has_instance: bool = False
    instance_type: t.DType | None = None
    name: str | None = None  # the user's name=: identifies its state across runs
