"""Which columns of a table are append-only: their value for a row id never changes.

A table is append-only when its rows are never deleted or updated (``Table.is_append_only``).
A *column* can be append-only in a table that is not: a schema may declare
``pw.column_definition(append_only=True)`` for some columns of a source whose rows do get
deleted and reinserted, with that column unchanged for the id. What follows from it here:
a non-deterministic UDF whose arguments are all append-only columns computes a row's value
once and serves that same value whenever the row comes back (see
:func:`deltaflow.udfs.evaluation.compute_with_rows`), as Pathway does.

The knowledge travels through the plan conservatively: sources declare it, row-wise
projections keep it for outputs computed from append-only columns only, a filter keeps it
when its condition reads append-only columns only; every other operation forgets it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deltaflow import plan

if TYPE_CHECKING:
    from deltaflow.expressions.evaluate import CompiledProjection
    from deltaflow.schema import Schema

# The row id is a column that never changes for a row.
_ID = "_id"


def declared_append_only(schema: type[Schema] | None) -> frozenset[str]:
    """The columns a schema declares append-only, when it declares only some of them.

    A schema whose every column is append-only promises an append-only *table*: that is the
    table-level property (a table that deletes nothing needs no remembered values), not this
    one, so it gives the empty set here.
    """
    if schema is None:
        return frozenset()
    flags = {name: bool(column.append_only) for name, column in schema.columns().items()}
    if all(flags.values()):
        return frozenset()
    return frozenset(name for name, flag in flags.items() if flag)


def append_only_columns(node: plan.Node) -> frozenset[str]:
    """The columns of ``node`` whose value for a row id never changes (``_id`` included)."""
    if isinstance(node, plan.InputNode):
        return frozenset(node.append_only_columns) | {_ID}
    if isinstance(node, plan.SelectNode) and len(node.inputs) == 1:
        stable = append_only_columns(node.inputs[0])
        projection = node.projection
        if projection is None or len(stable) <= 1:
            return frozenset({_ID})
        kept = {name for name, expr in projection.outputs if _reads_only(projection, expr, stable)}
        return frozenset(kept) | {_ID}
    if isinstance(node, plan.FilterNode) and len(node.inputs) == 1:
        stable = append_only_columns(node.inputs[0])
        predicate = node.predicate
        if predicate is not None and all(
            _reads_only(predicate, expr, stable) for _, expr in predicate.outputs
        ):
            return stable & (set(node.columns) | {_ID})
    return frozenset({_ID})


def _reads_only(projection: CompiledProjection, expr: Any, stable: frozenset[str]) -> bool:
    """Whether every column ``expr`` reads (resolved in the projection's scope) is stable."""
    for ref in expr.references():
        try:
            column, _ = projection.scope.resolve(ref)
        except (KeyError, ValueError, AttributeError):
            return False
        if column not in stable:
            return False
    return True


def mark_udfs_on_append_only_columns(projection: CompiledProjection, source: plan.Node) -> None:
    """Tell the non-deterministic UDFs of ``projection`` (which reads ``source``) whether all
    their arguments are append-only columns there.

    An expression object used in several operations is marked by each: it keeps its values
    forever only if every use reads append-only columns (a mixed use falls back to the
    general rule, values kept while the row lives).
    """
    from deltaflow.expressions.calls import Apply

    stable: frozenset[str] | None = None
    for _, expr in projection.outputs:
        for node in expr.walk():
            if not isinstance(node, Apply) or node.deterministic:
                continue
            if stable is None:
                stable = append_only_columns(source)
            forever = len(stable) > 1 and all(
                _reads_only(projection, child, stable) for child in node.children()
            )
            previous = getattr(node, "keeps_values_forever", None)
            node.keeps_values_forever = forever if previous is None else previous and forever
