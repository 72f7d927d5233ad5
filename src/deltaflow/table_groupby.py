"""``groupby`` / ``reduce``: :class:`GroupedTable` and the grouping checks.

Used by ``Table.groupby`` (:mod:`deltaflow.table_stateful`) and by join results
(:mod:`deltaflow.table_join`). Only plan nodes are built here, after typing the keys and
the reducers' arguments, so mistakes are reported where the pipeline is defined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.engine.stateful.nodes import ReduceNode, ReducerCall
from deltaflow.error_display import user_calls, user_stacklevel
from deltaflow.expressions.base import (
    ColumnExpression,
    ColumnReference,
    ExpressionError,
    Scope,
    wrap_value,
)
from deltaflow.expressions.deferred import DeferredIx, IxColumn, has_ix_columns, transform
from deltaflow.expressions.evaluate import CompiledProjection
from deltaflow.expressions.placeholders import (
    AllColumns,
    this,
)
from deltaflow.narrowing import check_not_id
from deltaflow.reducers import ReducerExpression
from deltaflow.table_zip import ForeignColumns, all_references
from deltaflow.udfs.future import refuse_futures

if TYPE_CHECKING:
    from deltaflow.table import Table
    from deltaflow.table_join import JoinResult

Resolver = Callable[[ColumnReference], tuple[str, t.DType]]


def _table_class() -> type[Table]:
    from deltaflow.table import Table

    return Table


@user_calls
class GroupedTable:
    """The result of ``groupby``: call :meth:`reduce` to get one row per group."""

    def __init__(
        self,
        node: plan.Node,
        make_scope: Callable[[str], Scope],
        description: str,
        keys: list[ColumnExpression],
        *,
        id_key: int | None = None,
        expand: Callable[[Any], list[tuple[str, ColumnExpression]]] | None = None,
    ) -> None:
        self._node = node
        self._make_scope = make_scope
        self._description = description
        self._keys = keys
        self._id_key = id_key
        self._expand = expand
        self._source: Any = None  # the grouped table (what pw.this.ix(...) indexes in reduce)
        # A grouped Table may use columns of tables with the same rows (deltaflow.table_zip):
        # the table and the references of the keys, zipped with the reduce's own at reduce.
        self._zip_source: Table | None = None
        self._key_refs: list[ColumnReference] = []
        # Source columns known to hold the same values as another (a join's pw.this.k and
        # pw.left.k): a reference to one is a grouping column when the other is.
        self._key_aliases: dict[str, tuple[str, ...]] = {}

    def reduce(self, *args: Any, **kwargs: Any) -> Table:
        """One row per group with the given columns (grouping columns and reducers)."""
        outputs: list[tuple[str, ColumnExpression]] = []
        for arg in args:
            if isinstance(arg, AllColumns):
                outputs += [
                    (k.name, k)
                    for k in self._keys
                    if isinstance(k, ColumnReference) and k.name not in arg.excluded
                ]
            elif isinstance(arg, ColumnReference):
                outputs.append((arg.name, arg))
            elif (
                isinstance(arg, ReducerExpression)
                and len(arg.args) >= 1
                and isinstance(arg.args[0], ColumnReference)
            ):
                outputs.append((arg.args[0].name, arg))  # named after its column
            else:
                from deltaflow.argument_errors import ArgumentError

                raise ArgumentError(
                    f"reduce on {self._description}: positional arguments "
                    f"must be column references; name computed columns with "
                    f"keywords (got {arg!r})"
                )
        outputs += [(name, wrap_value(value)) for name, value in kwargs.items()]
        seen: set[str] = set()
        for name, _ in outputs:
            if name in seen:
                raise ValueError(f"reduce on {self._description}: column {name!r} is given twice")
            seen.add(name)
        check_not_id(seen, f"reduce on {self._description}")
        if any(has_ix_columns(expr) for _, expr in outputs):
            return self._reduce_with_ix(outputs)

        operation = f"reduce on {self._description}"
        node, make_scope = self._node, self._make_scope
        if self._zip_source is not None:
            foreign = ForeignColumns(
                self._zip_source,
                [*self._key_refs, *(r for _, e in outputs for r in all_references(e))],
                "reduce",
            )
            if foreign:
                make_scope = foreign.scope
                node = foreign.build()._node if foreign.needs_join else self._zip_source._node
        pre_scope = make_scope("reduce")
        pre_outputs: list[tuple[str, ColumnExpression]] = [
            (f"__k{i}", key) for i, key in enumerate(self._keys)
        ]
        key_sources: dict[str, int] = {}
        for i, key in enumerate(self._keys):
            if isinstance(key, ColumnReference):
                key_sources.setdefault(pre_scope.resolve(key)[0], i)
        for source, i in list(key_sources.items()):
            for alias in self._key_aliases.get(source, ()):
                key_sources.setdefault(alias, i)
        key_types = [pre_scope.dtype_of(k) for k in self._keys]

        reducers: list[ReducerExpression] = []
        for _, expr in outputs:
            _collect_reducers(expr, reducers)
        calls: list[ReducerCall] = []
        reducer_types: dict[int, t.DType] = {}
        reducer_columns: dict[int, str] = {}
        for index, reducer in enumerate(reducers):
            arg_names = []
            arg_types = []
            for j, arg in enumerate(reducer.args):
                name = f"__a{index}_{j}"
                pre_outputs.append((name, arg))
                arg_names.append(name)
                arg_types.append(pre_scope.dtype_of(arg))
            refuse_futures(
                [
                    (f"the argument {arg!r}", dtype)
                    for arg, dtype in zip(reducer.args, arg_types, strict=False)
                ],
                "reduce",
                f"reduce on {self._description}",
            )
            dtype = reducer.reducer.result_type(pre_scope, arg_types)
            column = f"__red{index}"
            kind = reducer.reducer
            sort_by = getattr(self, "_sort_by", None)
            if sort_by is not None and kind.ordered:
                # groupby(sort_by=...): the sort key is an extra last argument of the call
                kind = kind.with_sort_key()
                arg_names.append(f"__a{index}_sort")
                pre_outputs.append((arg_names[-1], sort_by))
                arg_types.append(pre_scope.dtype_of(sort_by))
            calls.append(ReducerCall(kind, arg_names, arg_types, column, dtype))
            if kind.name == "latest":
                _warn_latest_not_append_only(self._node, self._description)
            reducer_types[id(reducer)] = dtype
            reducer_columns[id(reducer)] = column
        pre = CompiledProjection(pre_scope, pre_outputs)

        def resolve(ref: ColumnReference) -> tuple[str, t.DType]:
            source, _ = pre_scope.resolve(ref)
            if source in key_sources:
                i = key_sources[source]
                return f"__k{i}", key_types[i]
            from deltaflow.argument_errors import ContextError

            if source == "_id":
                # The input rows' ids (Pathway refuses them too): the group's own id is
                # the result table's id, readable after the reduce.
                raise ContextError(
                    "the ids of the grouped rows are not grouping columns; use them inside a "
                    "reducer (e.g. pw.reducers.count(pw.this.id)), group by pw.this.id, or "
                    "read the groups' ids from the result table"
                )
            raise ContextError(
                f"column {ref.name!r} is not a grouping column; use it inside a "
                f"reducer (e.g. pw.reducers.any({ref.name}))"
            )

        post_scope = Scope(operation, resolve)
        post_scope.set_by_expression("reducer_types", [(r, reducer_types[id(r)]) for r in reducers])
        post_scope.set_by_expression(
            "reducer_columns", [(r, reducer_columns[id(r)]) for r in reducers]
        )
        post = CompiledProjection(post_scope, outputs)
        node = ReduceNode(
            columns=dict(post.types),
            inputs=(node,),
            pre=pre,
            keys=[f"__k{i}" for i in range(len(self._keys))],
            key_types=key_types,
            reducers=calls,
            post=post,
            id_key=None if self._id_key is None else f"__k{self._id_key}",
            skip_errors=getattr(self, "_skip_errors", True),
            label="reduce",
        )
        key_names = tuple(
            n
            for n, e in outputs
            if isinstance(e, ColumnReference) and not isinstance(e, ReducerExpression)
        )
        # Group ids are computed from the key values (or are the id= column's values).
        id_dtype = (
            t.PointerType(key_types)
            if self._id_key is None
            else key_types[self._id_key].strip_optional()
        )
        return _table_class()(
            node, plan.Universe(), primary_key=key_names or None, id_dtype=id_dtype
        )

    def _reduce_with_ix(self, outputs: list[tuple[str, ColumnExpression]]) -> Table:
        """``reduce`` with ``ix(...)`` columns whose pointers are reducers: reduce the
        pointers first (hidden columns), then look the rows up on the reduced table."""
        requests: list[DeferredIx] = []
        for _, expr in outputs:
            for node in expr.walk():
                if isinstance(node, IxColumn) and all(node.request is not r for r in requests):
                    requests.append(node.request)
        hidden = {id(r): f"__ixptr{i}" for i, r in enumerate(requests)}
        first = [(n, e) for n, e in outputs if not has_ix_columns(e)]
        first += [(hidden[id(r)], r.pointer) for r in requests]
        reduced = self.reduce(**dict(first))
        looked_up: dict[int, Table] = {}

        def replace(node: ColumnExpression) -> ColumnExpression | None:
            if isinstance(node, IxColumn):
                request = node.request
                if id(request) not in looked_up:
                    target = self._source if request.target is this else request.target
                    if target is None:
                        raise TypeError(
                            f"reduce on {self._description}: pw.this.ix(...) "
                            f"needs a grouped table, not a join result"
                        )
                    looked_up[id(request)] = target.ix(
                        reduced[hidden[id(request)]],
                        optional=request.optional,
                        allow_misses=request.allow_misses,
                    )
                return ColumnReference(looked_up[id(request)], node.name)
            if isinstance(node, ColumnReference) and not isinstance(node.table, _table_class()):
                raise NotImplementedError(
                    f"reduce on {self._description}: an expression using ix(...) may combine "
                    f"it only with constants, not with {node!r}; compute it in a select "
                    f"after the reduce"
                )
            return None

        final = {
            name: (transform(expr, replace) if has_ix_columns(expr) else reduced[name])
            for name, expr in outputs
        }
        return reduced.select(**final)


def _collect_reducers(expr: ColumnExpression, found: list[ReducerExpression]) -> None:
    for node in expr.walk():
        if isinstance(node, ReducerExpression) and all(node is not f for f in found):
            found.append(node)


def _warn_latest_not_append_only(node: plan.Node, description: str) -> None:
    """``pw.reducers.latest`` follows insertions only: on a table with deletions or updates
    its value may not be the one of the latest row still present (warned, as Pathway does)."""
    import warnings

    from deltaflow.table_streams import is_append_only_node

    if not is_append_only_node(node):
        warnings.warn(
            f"reduce on {description}: pw.reducers.latest is given a table that is "
            f"not append-only; its rows may be deleted or updated, and the value "
            f"then follows insertions only",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _expand_all_columns(table: Table, args: tuple[Any, ...]) -> list[Any]:
    """``groupby(*pw.this)``: an ``AllColumns`` argument stands for every column of the table
    (minus the excluded ones)."""
    expanded: list[Any] = []
    for arg in args:
        if isinstance(arg, AllColumns) and isinstance(table, _table_class()):
            expanded += [table[name] for name in table._columns if name not in arg.excluded]
        else:
            expanded.append(arg)
    return expanded


def _grouped(
    table: Table,
    args: tuple[Any, ...],
    id: Any,
    instance: Any,  # noqa: A002
    description: str,
    make_scope: Callable[[str], Scope],
    node: plan.Node,
    *,
    zip_foreign: bool = False,
) -> GroupedTable:
    """A grouped table; ``zip_foreign``: ``table`` is a plain table whose operations may
    use columns of tables with the same rows (checked here, brought in by ``reduce``)."""
    key_refs: list[ColumnReference] = []
    if zip_foreign:
        key_refs = [
            r
            for a in (*args, id, instance)
            if isinstance(a, ColumnExpression)
            for r in all_references(a)
        ]
        foreign = ForeignColumns(table, key_refs, "groupby")
        if foreign:
            make_scope = foreign.scope
    keys: list[ColumnExpression] = []
    for arg in _expand_all_columns(table, args):
        if isinstance(arg, str):
            arg = table[arg]
        if not isinstance(arg, ColumnReference):
            raise TypeError(
                f"groupby on {description}: arguments must be column references, got {arg!r}"
            )
        keys.append(arg)
    id_key: int | None = None
    if id is not None:
        if not isinstance(id, ColumnReference):
            raise TypeError(f"groupby on {description}: id= must be a column reference")
        scope = make_scope("groupby")
        if scope.dtype_of(id).strip_optional() != t.POINTER:
            raise ExpressionError(
                f"groupby on {description}: id= must be a Pointer column, "
                f"got {scope.dtype_of(id)!r}"
            )
        source = scope.resolve(id)[0]
        # As in Pathway, the instance counts as a grouping column, and id= names the result's
        # ids only when it is the grouping column itself (or the only one).
        instance_ref = (
            None
            if instance is None
            else instance
            if isinstance(instance, ColumnExpression)
            else table[instance]
        )
        grouping = [*keys, *([] if instance_ref is None else [instance_ref])]
        if len(grouping) > 1:
            raise ValueError(
                f"groupby on {description}: id= is only allowed when grouping by one column "
                f"(id= itself, or none besides it), but this groups by {len(grouping)} "
                f"(instance= included); drop id= to get ids derived from all of them"
            )
        for i, key in enumerate(keys):
            if isinstance(key, ColumnReference) and scope.resolve(key)[0] == source:
                id_key = i
        if id_key is None:
            same = isinstance(instance_ref, ColumnReference) and (
                scope.resolve(instance_ref)[0] == source
            )
            if keys or (instance_ref is not None and not same):
                raise ValueError(
                    f"groupby on {description}: id= must be one of the grouping "
                    f"columns (or the only one)"
                )
            keys.append(id)
            id_key = 0
    if instance is not None:
        keys.append(instance if isinstance(instance, ColumnExpression) else table[instance])
    key_scope = make_scope("groupby")
    refuse_futures(
        [(f"the key {key!r}", key_scope.dtype_of(key)) for key in keys],
        "groupby",
        f"groupby on {description}",
    )
    grouped = GroupedTable(node, make_scope, description, keys, id_key=id_key)
    grouped._source = table if isinstance(table, _table_class()) else None
    if zip_foreign:
        grouped._zip_source = table
        grouped._key_refs = key_refs
    return grouped


def groupby(
    grouped: Table | JoinResult,
    *args: Any,
    id: Any = None,  # noqa: A002
    **kwargs: Any,
) -> GroupedTable:
    """``grouped.groupby(*args, ...)`` for a table or a join result."""
    return grouped.groupby(*args, id=id, **kwargs)
