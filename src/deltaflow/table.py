"""``Table``: the lazy, immutable table users build pipelines with.

Every method returns a new ``Table`` wrapping a plan node; nothing is computed until
``pw.run()`` (or a ``pw.debug`` helper) runs the plan. Expressions are typed and checked here,
when the table is defined, so mistakes surface before any data is read.

This module holds what every operation needs (the table's columns, scopes and projections),
``select``/``with_columns`` and the construction helpers; ``Table`` inherits the other
methods from mixins, one module per kind: :mod:`deltaflow.table_columns` (renames, type
changes), :mod:`deltaflow.table_rows` (filter, concat, flatten), :mod:`deltaflow.table_reindex`
(new ids, universe promises), :mod:`deltaflow.table_stateful` (groupby, joins, sort, with the
operations on row ids in :mod:`deltaflow.table_id_ops`), :mod:`deltaflow.table_temporal` and
:mod:`deltaflow.table_streams` (with the outputs, ``to`` and ``debug``).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.column_properties import (
    declared_append_only,
    mark_udfs_on_append_only_columns,
)
from deltaflow.error_display import named_as_own_methods, user_calls
from deltaflow.expressions.base import (
    ColumnExpression,
    ColumnNotFoundError,
    ColumnReference,
    Scope,
    wrap_value,
)
from deltaflow.expressions.deferred import IxColumn, has_ix_columns, transform
from deltaflow.expressions.evaluate import CompiledProjection
from deltaflow.expressions.placeholders import AllColumns, Placeholder, expand_keywords, this
from deltaflow.narrowing import check_not_id
from deltaflow.schema import Schema, schema_from_dtypes
from deltaflow.table_columns import ColumnMethods, _check_unique
from deltaflow.table_reindex import ReindexMethods
from deltaflow.table_rows import RowMethods
from deltaflow.table_slice import ColumnNamespace, TableSlice
from deltaflow.table_stateful import StatefulMethods
from deltaflow.table_streams import StreamMethods
from deltaflow.table_temporal import TemporalMethods
from deltaflow.table_zip import ForeignColumns

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_location() -> str:
    """``file:line`` of the innermost stack frame outside deltaflow (for error messages)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


@user_calls
class Table(
    StatefulMethods, TemporalMethods, StreamMethods, ColumnMethods, RowMethods, ReindexMethods
):
    """A collection of rows with typed columns and 128-bit ids, kept up to date over time."""

    def __init__(
        self,
        node: plan.Node,
        universe: plan.Universe | None = None,
        *,
        primary_key: tuple[str, ...] | None = None,
        id_dtype: t.DType | None = None,
    ) -> None:
        self._node = node
        self._universe = universe or plan.Universe()
        self._primary_key = primary_key
        # The type of the ids (``t.id``): Pointer[key types] when they come from key values.
        self._id_dtype = (
            id_dtype
            if id_dtype is not None
            else t.POINTER
            if not primary_key
            else t.PointerType([node.columns[k] for k in primary_key if k in node.columns])
        )
        self._location = user_location()
        plan.REGISTRY.add_table(node)

    # --- description ---------------------------------------------------------------------
    @property
    def _columns(self) -> dict[str, t.DType]:
        return self._node.columns

    @property
    def _description(self) -> str:
        return f"table {self._node.describe()} (defined at {self._location})"

    def column_names(self) -> list[str]:
        """The names of the columns, in order.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> t.column_names()
            ['item', 'qty', 'price']
        """
        return list(self._columns)

    def keys(self) -> list[str]:
        """The names of the columns, in order (as :meth:`column_names`).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> t.keys()
            ['item', 'qty', 'price']
        """
        return self.column_names()

    def typehints(self) -> Mapping[str, Any]:
        """Column names mapped to their Python type annotations.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> dict(t.typehints())
            {'item': <class 'str'>, 'qty': <class 'int'>, 'price': <class 'float'>}
        """
        return {name: dtype.typehint for name, dtype in self._columns.items()}

    @property
    def schema(self) -> type[Schema]:
        """The table's schema class."""
        return schema_from_dtypes(
            self._columns,
            name="Schema",
            primary_key=list(self._primary_key or ()) or None,
            id_dtype=self._id_dtype,
        )

    def _dtypes(self) -> dict[str, t.DType]:
        return dict(self._columns)

    def __repr__(self) -> str:
        body = ", ".join(f"{n}: {d!r}" for n, d in self._columns.items())
        return f"<deltaflow.Table {self._node.describe()}({body})>"

    # --- column access -------------------------------------------------------------------
    def __getattr__(self, name: str) -> ColumnReference:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "id" or name in self._node.columns:
            return ColumnReference(self, name)
        raise self._missing(name)

    def __getitem__(self, name: str | ColumnReference | list[str]) -> Any:
        if isinstance(name, list):
            return self.select(*[self[n] for n in name])
        if isinstance(name, ColumnReference):
            owner = name.table
            if (
                owner is not self
                and not isinstance(owner, Placeholder)
                and not (isinstance(owner, Table) and owner._node is self._node)
            ):
                from deltaflow.argument_errors import ArgumentError

                raise ArgumentError(
                    f"{self._description}[...]: {name!r} is a column of "
                    f"another table; give a name, pw.this.<name> or a column "
                    f"of this table"
                )
            name = name.name
        if name == "id" or name in self._columns:
            return ColumnReference(self, name)
        raise self._missing(name)

    def __iter__(self) -> Iterator[ColumnReference]:
        return iter([ColumnReference(self, n) for n in self._columns])

    def _missing(self, name: str) -> ColumnNotFoundError:
        return ColumnNotFoundError(
            f"{self._description} has no column {name!r}; its columns are "
            f"{', '.join(self._columns) or '(none)'}"
        )

    # --- scopes --------------------------------------------------------------------------
    def _scope(
        self,
        operation: str,
        zipped: Table | None = None,
        foreign: dict[tuple[int, str], str] | None = None,
    ) -> Scope:
        def resolve(ref: ColumnReference) -> tuple[str, t.DType]:
            owner = ref.table
            if foreign and (id(owner), ref.name) in foreign:
                column = foreign[(id(owner), ref.name)]
                if column == "_id":
                    return column, t.POINTER
                return column, zipped._columns[column]  # type: ignore[union-attr]
            if (
                owner is self
                or owner is this
                or (isinstance(owner, Table) and owner._node is self._node)
            ):
                if ref.name == "id":
                    return "_id", self._id_dtype
                if ref.name in self._columns:
                    return ref.name, self._columns[ref.name]
                raise ColumnNotFoundError(
                    f"no column {ref.name!r}; the columns are "
                    f"{', '.join(self._columns) or '(none)'}"
                )
            if isinstance(owner, Placeholder):
                raise ValueError(f"{owner!r} cannot be used in {operation} (only in joins)")
            if isinstance(owner, Table):
                raise ValueError(
                    f"column {ref.name!r} of another {owner._description} cannot be used in "
                    f"{operation} on {self._description}; join the tables (or use "
                    f"with_universe_of) first"
                )
            raise ValueError(f"unknown column reference {ref!r}")

        return Scope(f"{operation} on {self._description}", resolve)

    def _project(
        self, operation: str, outputs: list[tuple[str, ColumnExpression]]
    ) -> CompiledProjection:
        return CompiledProjection(self._scope(operation), outputs)

    def _project_zipped(
        self, operation: str, outputs: list[tuple[str, ColumnExpression]]
    ) -> tuple[CompiledProjection, plan.Node]:
        """Like :meth:`_project`, also allowing columns of tables with the same ids.

        Pathway lets an operation on ``t`` use columns of any table whose universe contains
        ``t``'s (``t.select(t.a, t2.b)`` with ``t2 = t.select(...)``). Such columns are brought
        next to ``t``'s by inner joins on the row id (keeping ``t``'s ids); the projection then
        runs on that wider table. Returns the projection and the node it reads from.
        """
        outputs = self._resolve_deferred(outputs)
        foreign = ForeignColumns(
            self, [ref for _, e in outputs for ref in e.references()], operation
        )
        if not foreign:
            projection, source = self._project(operation, outputs), self._node
        else:
            source = foreign.build()._node if foreign.needs_join else self._node
            projection = CompiledProjection(foreign.scope(operation), outputs)
        mark_udfs_on_append_only_columns(projection, source)
        return projection, source

    def _resolve_deferred(
        self, outputs: list[tuple[str, ColumnExpression]]
    ) -> list[tuple[str, ColumnExpression]]:
        """Turn ``ix(...)`` columns whose pointer is on ``pw.this`` into columns of real
        ``ix`` tables over this table (see :mod:`deltaflow.expressions.deferred`)."""
        if not any(has_ix_columns(expr) for _, expr in outputs):
            return outputs
        looked_up: dict[int, Table] = {}

        def bind_this(node: ColumnExpression) -> ColumnExpression | None:
            if isinstance(node, ColumnReference) and node.table is this:
                return ColumnReference(self, node.name)
            return None

        def replace(node: ColumnExpression) -> ColumnExpression | None:
            if not isinstance(node, IxColumn):
                return None
            request = node.request
            if id(request) not in looked_up:
                target = self if request.target is this else request.target
                pointer = transform(request.pointer, bind_this)
                looked_up[id(request)] = target.ix(
                    pointer,
                    optional=request.optional,
                    context=self,
                    allow_misses=request.allow_misses,
                )
            return ColumnReference(looked_up[id(request)], node.name)

        return [(name, transform(expr, replace)) for name, expr in outputs]

    def _trimmed(self, node: plan.Node, label: str) -> plan.Node:
        """``node`` limited to this table's columns (after an operation on a zipped input)."""
        if list(node.columns) == list(self._columns):
            return node
        scope = Scope(label, lambda ref: (ref.name, node.columns[ref.name]))
        projection = CompiledProjection(
            scope, [(n, ColumnReference(this, n)) for n in self._columns]
        )
        return plan.SelectNode(
            columns=dict(projection.types), inputs=(node,), projection=projection, label=label
        )

    def _expand(self, args: Iterable[Any], operation: str) -> list[tuple[str, ColumnExpression]]:
        """Positional arguments of select-like methods as (name, expression) pairs."""
        out: list[tuple[str, ColumnExpression]] = []
        for arg in args:
            if isinstance(arg, AllColumns):
                source = arg.source
                names = (
                    self._columns
                    if source is this or source is self
                    else getattr(source, "_columns", None)
                )
                if names is None:
                    raise ValueError(f"{operation}: *{source!r} cannot be expanded here")
                for name, column in arg.pairs(list(names)):
                    out.append((name, ColumnReference(source, column)))
            elif isinstance(arg, ColumnReference | IxColumn):
                out.append((arg.name, arg))
            else:
                from deltaflow.argument_errors import ArgumentError

                hint = f"; did you mean pw.this.{arg}?" if isinstance(arg, str) else ""
                raise ArgumentError(
                    f"{operation}: positional arguments must be column "
                    f"references (table.column or pw.this.column), got "
                    f"{arg!r}{hint}; name computed columns with keywords"
                )
        return out

    def _derive(
        self, node: plan.Node, *, universe: plan.Universe | None = None, keep_key: bool = True
    ) -> Table:
        return Table(
            node,
            universe or self._universe,
            primary_key=self._primary_key if keep_key else None,
            id_dtype=self._id_dtype if keep_key else None,
        )

    # --- stateless operations -------------------------------------------------------------
    def select(self, *args: Any, **kwargs: Any) -> Table:
        """A table with the same ids and the given columns (references or expressions).

        Parameters:
            *args: column references (or ``pw.this.<name>``) kept under their names.
            **kwargs: new columns: ``name=expression``.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> pw.debug.compute_and_print(t.select(t.item, value=t.qty * t.price),
            ...                            include_id=False)
            item | value
            ink  | 24.0
            pen  | 3.0
        """
        outputs = self._expand(args, "select")
        spread, kwargs = expand_keywords(kwargs, lambda a: self._expand(a, "select"))
        outputs += spread  # **pw.left.with_prefix("l_") ...
        outputs += [(name, wrap_value(value)) for name, value in kwargs.items()]
        _check_unique([n for n, _ in outputs], "select", self._description)
        check_not_id([n for n, _ in outputs], f"select on {self._description}")
        return self._select_node(outputs, "select")

    def _select_node(
        self, outputs: Sequence[tuple[str, ColumnExpression]], operation: str
    ) -> Table:
        projection, source = self._project_zipped(operation, list(outputs))
        node = plan.SelectNode(
            columns=dict(projection.types), inputs=(source,), projection=projection, label=operation
        )
        kept = (
            self._primary_key
            if self._primary_key and all(k in projection.types for k in self._primary_key)
            else None
        )
        return Table(node, self._universe, primary_key=kept, id_dtype=self._id_dtype)

    def with_columns(self, *args: Any, **kwargs: Any) -> Table:
        """This table with columns added or replaced.

        Parameters:
            *args: column references kept under their names (replacing columns of that name).
            **kwargs: columns added or replaced: ``name=expression``.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> pw.debug.compute_and_print(t.with_columns(qty=t.qty + 1, cheap=t.price < 2),
            ...                            include_id=False)
            item | qty | price | cheap
            ink  | 7   | 4.0   | False
            pen  | 3   | 1.5   | True
        """
        new = self._expand(args, "with_columns") + [(n, wrap_value(v)) for n, v in kwargs.items()]
        _check_unique([n for n, _ in new], "with_columns", self._description)
        check_not_id([n for n, _ in new], f"with_columns on {self._description}")
        replaced = dict(new)
        outputs: list[tuple[str, ColumnExpression]] = [
            (name, replaced.pop(name, ColumnReference(self, name))) for name in self._columns
        ]
        outputs += [(n, e) for n, e in new if n in replaced]
        return self._select_node(outputs, "with_columns")

    @property
    def slice(self) -> TableSlice:
        """All columns as a :class:`~deltaflow.table_slice.TableSlice` (rename, prefix,
        unpack with ``**``)."""
        return TableSlice({n: ColumnReference(self, n) for n in self._columns}, self)

    @property
    def C(self) -> ColumnNamespace:  # noqa: N802 (Pathway's name)
        """Columns by attribute even where a method has the same name: ``t.C.select``."""
        return ColumnNamespace(self)

    def __add__(self, other: Table) -> Table:
        """The columns of both tables side by side; ``other`` must have the same rows (its
        columns replace this table's columns of the same name)."""
        if not isinstance(other, Table):
            return NotImplemented
        if not (other._universe is self._universe or self._universe.is_subset_of(other._universe)):
            raise ValueError(
                f"{self._description} + {other._description}: the tables must "
                f"have the same rows (the same universe); use a join, or promise "
                f"it with promise_universe_is_equal_to"
            )
        return self.with_columns(*other)

    def __class_getitem__(cls, schema: Any) -> Any:
        """``pw.Table[Schema]``: an annotation naming the table's schema."""
        return types.GenericAlias(cls, (schema,))

    def copy(self) -> Table:
        """A new table with the same columns and rows (and the same ids).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> c = t.copy()
            >>> c is t, c.column_names()
            (False, ['item', 'qty', 'price'])
        """
        return self._select_node([(n, ColumnReference(self, n)) for n in self._columns], "copy")

    # --- construction ---------------------------------------------------------------------
    @staticmethod
    def empty(**kwargs: Any) -> Table:
        """An empty table with the given ``column=type`` columns.

        Parameters:
            **kwargs: ``column=type`` for each column.

        Examples:
            >>> import deltaflow as pw
            >>> e = pw.Table.empty(name=str, qty=int)
            >>> e.typehints()["qty"], pw.debug.table_to_dicts(e)[0]
            (<class 'int'>, [])
        """
        from deltaflow._debug_inputs import _static_table

        columns = {name: t.wrap(tp) for name, tp in kwargs.items()}
        return _static_table(columns, [], label="Table.empty")

    @staticmethod
    def from_columns(*args: ColumnReference, **kwargs: ColumnReference) -> Table:
        """A table of the given columns, which must come from tables with the same rows.

        Parameters:
            *args: column references kept under their names.
            **kwargs: ``name=column`` for columns given new names.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> prices = t.select(cost=t.price * 2)
            >>> r = pw.Table.from_columns(t.item, cost=prices.cost)
            >>> pw.debug.compute_and_print(r, include_id=False)
            item | cost
            ink  | 8.0
            pen  | 3.0
        """
        from deltaflow.universes import table_of_columns

        return table_of_columns(args, kwargs)


named_as_own_methods(Table)  # Table.flatten(), not RowMethods.flatten(), in messages


# ------------------------------------------------------------------------------------------
# The connector layer's entry points
# ------------------------------------------------------------------------------------------


def input_table(schema: type[Schema], source: Any, *, name: str | None = None) -> Table:
    """A table whose rows come from ``source`` (a :class:`deltaflow.engine.boundary.Source`).

    Rows pushed by the source must carry ids; with a primary key in ``schema`` they are
    ``deltaflow._ids.hash_columns`` of the key columns.
    """
    columns = schema.dtypes()
    key = schema.primary_key_columns()
    node = plan.InputNode(
        columns=columns,
        source=source,
        primary_key=tuple(key) if key else None,
        label=name or str(getattr(source, "name", None) or "input"),
        append_only_columns=declared_append_only(schema),
    )
    return Table(node, plan.Universe(), primary_key=tuple(key) if key else None)


def add_output(table: Table, sink: Any, *, sort_by: Iterable[Any] | None = None) -> None:
    """Register ``sink`` (a :class:`deltaflow.engine.boundary.Sink`) to receive ``table``."""
    sort_by = list(sort_by or ())
    for column in sort_by:
        owner = column.table if isinstance(column, ColumnReference) else None
        if isinstance(owner, Table) and owner is not table:
            # Another table's column (its parent's included) is not this output's column,
            # even when a column of the same name exists here: refused, as in Pathway.
            raise ValueError(
                f"sort_by: the column {column!r} belongs to another table than the one "
                f"written ({table!r}); name the written table's own columns"
            )
    order = [c.name if isinstance(c, ColumnReference) else str(c) for c in sort_by]
    for column in order:
        if column not in table._columns:
            raise table._missing(column)
    node = plan.OutputNode(
        columns=dict(table._columns),
        inputs=(table._node,),
        sink=sink,
        sort_by=tuple(order),
        label=getattr(sink, "name", "output"),
    )
    plan.REGISTRY.add_output(node)
