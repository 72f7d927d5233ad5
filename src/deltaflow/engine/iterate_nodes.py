"""Plan nodes of ``pw.iterate`` (the operators that run them are in :mod:`.iterate`).

An iteration is one :class:`IterateNode` with several results: each iterated table is read
from it by an :class:`IterateOutputNode`. The body (the plan built by calling the user's
function once with placeholder tables) hangs off the node but is not among its ``inputs``,
so the outer plan never walks into it: the iterate operator compiles and runs it itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deltaflow.plan import Node


@dataclass(eq=False)
class IterationInputNode(Node):
    """A placeholder for a table given to the body of ``pw.iterate``.

    At run time the iterate operator feeds it: for an iterated table, the previous round's
    result; for a table the body only reads, that table's changes.
    """

    name: str = ""


@dataclass(eq=False)
class IterateNode(Node):
    """A fixed point of a body; ``columns`` is empty (the results are the output nodes').

    ``inputs`` are the tables passed by keyword, in the order of ``names``, followed by
    ``outer``: tables that the body uses without getting them as arguments (a table built
    from constants inside the body, or one it closes over). These are computed outside the
    iteration and fed to it like the read-only arguments.
    """

    names: tuple[str, ...] = ()
    iterated: tuple[str, ...] = ()  # the names the body returns, in the order of ``names``
    placeholders: dict[str, IterationInputNode] = field(default_factory=dict)
    body_outputs: dict[str, Node] = field(default_factory=dict)
    outer: tuple[Node, ...] = ()
    limit: int | None = None


@dataclass(eq=False)
class IterateOutputNode(Node):
    """The result of one iterated table of an :class:`IterateNode` (its only input)."""

    name: str = ""
