"""Stateful ``Table`` methods (groupby/reduce, joins, sort, deduplicate).

Kept apart from :mod:`deltaflow.table` so the stateless API and the stateful one can grow
independently; ``Table`` inherits these methods. Everything here only builds plan nodes (see
:mod:`deltaflow.engine.stateful.nodes`) after typing the expressions involved, so mistakes are
reported where the pipeline is defined.

The groupby machinery lives in :mod:`deltaflow.table_groupby`, the joins in
:mod:`deltaflow.table_join` (the ``join*`` methods, shared with a join result, in
:mod:`deltaflow.table_join_entry`); their public names are re-exported here. The operations on
row ids (``update_rows``, ``ix`` ...) are in :mod:`deltaflow.table_id_ops`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.argument_errors import extra_arguments_refused
from deltaflow.engine.stateful.nodes import DeduplicateNode, SortNode
from deltaflow.error_display import user_calls
from deltaflow.expressions.base import wrap_value
from deltaflow.table_groupby import GroupedTable, _grouped, _table_class, groupby
from deltaflow.table_id_ops import IdOperationMethods
from deltaflow.table_join import JoinMode, JoinResult
from deltaflow.table_join_entry import (
    JoinMethods,
    join,
    join_inner,
    join_left,
    join_outer,
    join_right,
)
from deltaflow.udfs.future import refuse_futures

if TYPE_CHECKING:
    from deltaflow.table import Table


@user_calls
class StatefulMethods(IdOperationMethods, JoinMethods):
    """Mixin of ``Table``'s stateful operations (those on row ids are inherited from
    :class:`~deltaflow.table_id_ops.IdOperationMethods`, the joins from
    :class:`~deltaflow.table_join_entry.JoinMethods`)."""

    @extra_arguments_refused("give the reducers to reduce(): groupby(...).reduce(**kwargs)")
    def groupby(
        self,
        *args: Any,
        id: Any = None,
        sort_by: Any = None,  # noqa: A002
        _filter_out_results_of_forgetting: bool = False,
        instance: Any = None,
        _skip_errors: bool = True,
        _is_window: bool = False,
    ) -> GroupedTable:
        """Group rows by the given columns; ``reduce`` then gives one row per group.

        The result's ids are derived from the group key (``table.pointer_from(*key)``), or
        taken from the Pointer column given as ``id``.

        Parameters:
            *args: the grouping columns (references).
            id: a Pointer column (among the grouping columns) whose value becomes each group's id.
            sort_by: an expression ordering the rows of each group for reducers that keep an order
                (``tuple``, ``ndarray``).
            instance: a column added to the key (Pathway's sharding key).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... shop | item | qty
            ... a    | pen  | 2
            ... a    | ink  | 6
            ... b    | pen  | 5
            ... ''')
            >>> r = t.groupby(t.shop).reduce(t.shop, total=pw.reducers.sum(t.qty))
            >>> pw.debug.compute_and_print(r, include_id=False)
            shop | total
            a    | 8
            b    | 5
        """
        table = cast("Table", self)  # a mixin of Table only
        grouped = _grouped(
            table,
            args,
            id,
            instance,
            table._description,
            table._scope,
            table._node,
            zip_foreign=True,
        )
        grouped._sort_by = sort_by  # type: ignore[attr-defined]
        if not isinstance(_skip_errors, bool):
            raise TypeError(f"groupby: _skip_errors must be a bool, got {_skip_errors!r}")
        grouped._skip_errors = _skip_errors  # type: ignore[attr-defined]
        return grouped

    def reduce(self, *args: Any, **kwargs: Any) -> Table:
        """One row aggregating the whole table (an empty table gives no row).

        Parameters:
            *args: reducer expressions kept under their names.
            **kwargs: ``name=reducer expression`` (expressions of reducers allowed).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... shop | item | qty
            ... a    | pen  | 2
            ... a    | ink  | 6
            ... b    | pen  | 5
            ... ''')
            >>> r = t.reduce(rows=pw.reducers.count(),
            ...              mean=pw.reducers.sum(t.qty) / pw.reducers.count())
            >>> pw.debug.compute_and_print(r, include_id=False)
            rows | mean
            3    | 4.333333333333333
        """
        return self.groupby().reduce(*args, **kwargs)

    # --- ordering ----------------------------------------------------------------------------
    def sort(self, key: Any, instance: Any = None) -> Table:
        """``prev`` and ``next`` pointers linking the rows in ``key`` order (per instance).

        Parameters:
            key: the expression ordering the rows (ties broken by id).
            instance: rows are linked only within groups of equal ``instance`` values.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... shop | item | qty
            ... a    | pen  | 2
            ... a    | ink  | 6
            ... b    | pen  | 5
            ... ''')
            >>> links = t.sort(key=t.qty)
            >>> r = t.select(t.item, t.qty, next_qty=t.ix(links.next, optional=True).qty)
            >>> pw.debug.compute_and_print(r, include_id=False)
            item | qty | next_qty
            ink  | 6   |
            pen  | 2   | 5
            pen  | 5   | 6
        """
        table = cast("Table", self)  # a mixin of Table only
        outputs = [("__key", wrap_value(key))]
        if instance is not None:
            outputs.append(("__inst", wrap_value(instance)))
        pre = table._project("sort", outputs)
        refuse_futures(
            [("the key" if n == "__key" else "the instance", d) for n, d in pre.types.items()],
            "sort",
            f"sort on {table._description}",
        )
        columns: dict[str, t.DType] = {"prev": t.Optional(t.POINTER), "next": t.Optional(t.POINTER)}
        node = SortNode(columns=columns, inputs=(table._node,), pre=pre, label="sort")
        return _table_class()(node, table._universe)

    def deduplicate(
        self,
        *,
        value: Any,
        instance: Any = None,
        acceptor: Callable[[Any, Any], bool],
        name: str | None = None,
    ) -> Table:
        """Per instance, the last row whose value ``acceptor(new, old)`` accepted.

        Parameters:
            value: the expression whose values are compared.
            instance: rows are deduplicated separately per value of this expression.
            acceptor: ``acceptor(new_value, kept_value)``: whether a new row replaces the kept one
                (the first row of each instance is always kept). The rows of one time are
                offered in the order of their values, then of their columns.
            name: a name for the operator's state in persistence.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... sensor | value | __time__
            ... x      | 3     | 2
            ... x      | 2     | 4
            ... x      | 9     | 6
            ... ''')
            >>> peaks = t.deduplicate(value=t.value, instance=t.sensor,
            ...                       acceptor=lambda new, old: new > old)
            >>> pw.debug.compute_and_print_update_stream(peaks, include_id=False)
            sensor | value | __time__ | __diff__
            x      | 3     | 2        | 1
            x      | 3     | 6        | -1
            x      | 9     | 6        | 1
        """
        table = cast("Table", self)  # a mixin of Table only
        if not callable(acceptor):
            raise TypeError("deduplicate: acceptor must be a function (new, old) -> bool")
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"deduplicate: name must be a string (it identifies the "
                f"operator's persisted state), got {type(name).__name__}"
            )
        outputs = [("__val", wrap_value(value))]
        if instance is not None:
            outputs.append(("__inst", wrap_value(instance)))
        pre = table._project("deduplicate", outputs)
        refuse_futures(
            [("the value" if n == "__val" else "the instance", d) for n, d in pre.types.items()],
            "deduplicate",
            f"deduplicate on {table._description}",
        )
        node = DeduplicateNode(
            columns=dict(table._columns),
            inputs=(table._node,),
            pre=pre,
            acceptor=acceptor,
            has_instance=instance is not None,
            instance_type=pre.types.get("__inst"),
            label="deduplicate",
            name=name,
        )
        return _table_class()(node, plan.Universe())


__all__ = [
    "GroupedTable",
    "JoinMode",
    "JoinResult",
    "StatefulMethods",
    "groupby",
    "join",
    "join_inner",
    "join_left",
    "join_outer",
    "join_right",
]
