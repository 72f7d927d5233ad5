"""``Table``: the lazy, immutable table users build pipelines with.

Every method returns a new ``Table`` wrapping a plan node; nothing is computed until
``pw.run()`` (or a ``pw.debug`` helper) runs the plan. Expressions are typed and checked here,
when the table is defined, so mistakes surface before any data is read.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from deltaflow import _types as t
from deltaflow import plan, universe_checks
from deltaflow.column_properties import (
    declared_append_only,
    mark_udfs_on_append_only_columns,
)
from deltaflow.error_display import user_calls
from deltaflow.expressions.base import (
    Cast,
    ColumnExpression,
    ColumnNotFoundError,
    ColumnReference,
    DeclareType,
    ExpressionError,
    PointerFrom,
    Scope,
    wrap_value,
)
from deltaflow.expressions.deferred import IxColumn, has_ix_columns, transform
from deltaflow.expressions.evaluate import CompiledProjection
from deltaflow.expressions.placeholders import AllColumns, Placeholder, expand_keywords, this
from deltaflow.narrowing import check_not_id, narrowed_columns
from deltaflow.schema import Schema, schema_from_dtypes
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
class Table(StatefulMethods, TemporalMethods, StreamMethods):
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

    def without(self, *columns: str | ColumnReference) -> Table:
        """This table without the given columns.

        Parameters:
            *columns: the columns left out, by name or reference.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> pw.debug.compute_and_print(t.without(t.price, "qty"), include_id=False)
            item
            ink
            pen
        """
        names = {c.name if isinstance(c, ColumnReference) else c for c in columns}
        for name in names:
            if name not in self._columns:
                raise self._missing(name)
        return self._select_node(
            [(n, ColumnReference(self, n)) for n in self._columns if n not in names], "without"
        )

    def rename_columns(self, **kwargs: str | ColumnReference) -> Table:
        """Rename columns: ``new_name=old_column``.

        Parameters:
            **kwargs: ``new_name=old_column`` (a reference or a name).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> t.rename_columns(name=t.item, stock="qty").column_names()
            ['price', 'name', 'stock']
        """
        mapping: dict[str | ColumnReference, str] = {}
        for new, old in kwargs.items():
            old_name = old.name if isinstance(old, ColumnReference) else old
            if old_name not in self._columns:
                raise self._missing(old_name)
            mapping[old_name] = new
        return self.rename_by_dict(mapping)

    def rename_by_dict(self, names_mapping: Mapping[str | ColumnReference, str]) -> Table:
        """Rename columns: ``{old_name: new_name}``.

        Parameters:
            names_mapping: old names (or references) to new names.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> t.rename_by_dict({"item": "name", t.qty: "stock"}).column_names()
            ['price', 'name', 'stock']
        """
        mapping = {}
        for old, new in names_mapping.items():
            old_name = old.name if isinstance(old, ColumnReference) else old
            if old_name not in self._columns:
                raise self._missing(old_name)
            mapping[old_name] = new
        # As in Pathway: the columns kept as they are first, then the renamed ones in the
        # order of the mapping.
        outputs = [(n, ColumnReference(self, n)) for n in self._columns if n not in mapping]
        outputs += [(new, ColumnReference(self, old)) for old, new in mapping.items()]
        _check_unique([n for n, _ in outputs], "rename", self._description)
        return self._select_node(outputs, "rename")

    def rename(
        self,
        names_mapping: Mapping[str | ColumnReference, str] | None = None,
        **kwargs: str | ColumnReference,
    ) -> Table:
        """``rename_by_dict`` with a mapping, ``rename_columns`` with keywords.

        Parameters:
            names_mapping: old names (or references) to new names.
            **kwargs: ``new_name=old_column``.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> t.rename({"item": "name"}).column_names(), t.rename(stock=t.qty).column_names()
            (['qty', 'price', 'name'], ['item', 'price', 'stock'])
        """
        if names_mapping is not None and kwargs:
            raise ValueError("rename: give either a mapping or keyword arguments, not both")
        if names_mapping is not None:
            return self.rename_by_dict(names_mapping)
        return self.rename_columns(**kwargs)

    def with_prefix(self, prefix: str) -> Table:
        """This table with ``prefix`` put before every column name.

        Parameters:
            prefix: the text put before each name.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> t.with_prefix("in_").column_names()
            ['in_item', 'in_qty', 'in_price']
        """
        return self.rename_by_dict({n: prefix + n for n in self._columns})

    def with_suffix(self, suffix: str) -> Table:
        """This table with ``suffix`` put after every column name.

        Parameters:
            suffix: the text put after each name.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> t.with_suffix("_old").column_names()
            ['item_old', 'qty_old', 'price_old']
        """
        return self.rename_by_dict({n: n + suffix for n in self._columns})

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

    def filter(self, filter_expression: Any) -> Table:
        """The rows for which ``filter_expression`` (a bool expression) is true.

        Parameters:
            filter_expression: a bool expression over this table's columns.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> pw.debug.compute_and_print(t.filter(pw.this.qty > 3), include_id=False)
            item | qty | price
            ink  | 6   | 4.0
        """
        expression = wrap_value(filter_expression)
        projection, source = self._project_zipped("filter", [("__keep", expression)])
        dtype = projection.types["__keep"]
        if dtype.strip_optional() != t.BOOL:
            raise ExpressionError(
                f"filter on {self._description}: the condition must be a "
                f"bool expression, got {dtype!r}"
            )
        # A condition `column.is_not_none()` leaves that column without Optional.
        node = plan.FilterNode(
            columns=narrowed_columns(source.columns, projection.outputs[0][1], projection.scope),
            inputs=(source,),
            predicate=projection,
            label="filter",
        )
        return self._derive(
            self._trimmed(node, "filter"), universe=plan.Universe(parent=self._universe)
        )

    def remove_errors(self) -> Table:
        """The rows none of whose cells is an error (errors exist in runs with
        ``terminate_on_error=False``; see docs/errors.md).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... a | b
            ... 6 | 2
            ... 1 | 0
            ... ''')
            >>> r = t.select(ratio=t.a // t.b).remove_errors()
            >>> pw.debug.compute_and_print(r, include_id=False, terminate_on_error=False)
            ratio
            3
        """
        from deltaflow.expressions.base import NoErrors

        return self.filter(NoErrors(*(ColumnReference(self, n) for n in self._columns)))

    def await_futures(self) -> Table:
        """The rows whose fully asynchronous UDF results are ready, their ``Future[T]``
        columns typed ``T``. deltaflow computes those results in the minibatch of their row
        (docs/udfs.md), so this is every row.

        Examples:
            >>> import deltaflow as pw
            >>> @pw.udf(executor=pw.udfs.fully_async_executor())
            ... async def double(x: int) -> int:
            ...     return 2 * x
            >>> t = pw.debug.table_from_markdown('''
            ... x
            ... 3
            ... ''')
            >>> r = t.select(y=double(t.x)).await_futures()
            >>> pw.debug.compute_and_print(r, include_id=False)
            y
            6
        """
        from deltaflow.udfs.future import awaited_column

        return self._select_node(
            [
                (n, awaited_column(ColumnReference(self, n), dtype))
                for n, dtype in self._columns.items()
            ],
            "await_futures",
        )

    def split(self, split_expression: Any) -> tuple[Table, Table]:
        """Two tables: the rows where the expression holds, and the rest.

        Parameters:
            split_expression: a bool expression over this table's columns.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> cheap, dear = t.split(t.price < 2)
            >>> pw.debug.compute_and_print(cheap, dear, include_id=False)
            item | qty | price
            pen  | 2   | 1.5
            item | qty | price
            ink  | 6   | 4.0
        """
        expression = wrap_value(split_expression)
        return self.filter(expression), self.filter(~expression)

    def cast_to_types(self, **kwargs: Any) -> Table:
        """Convert the named columns to new types (``pw.cast`` on each).

        Parameters:
            **kwargs: ``column=type`` for each column converted.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> r = t.cast_to_types(qty=float, price=int)
            >>> pw.debug.compute_and_print(r, include_id=False)
            item | qty | price
            ink  | 6.0 | 4
            pen  | 2.0 | 1
        """
        for name in kwargs:
            if name not in self._columns:
                raise self._missing(name)
        outputs = [
            (
                n,
                Cast(kwargs[n], ColumnReference(self, n))
                if n in kwargs
                else ColumnReference(self, n),
            )
            for n in self._columns
        ]
        return self._select_node(outputs, "cast_to_types")

    def update_types(self, **kwargs: Any) -> Table:
        """Declare new types for the named columns without converting the values.

        Parameters:
            **kwargs: ``column=type`` for each column whose declared type changes.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty
            ... pen  | 2
            ... ''')
            >>> t.update_types(qty=int | None).typehints()["qty"]
            int | None
        """
        for name in kwargs:
            if name not in self._columns:
                from deltaflow.argument_errors import ColumnArgumentError

                raise ColumnArgumentError(f"update_types: {self._missing(name)}")
        outputs = [
            (
                n,
                DeclareType(kwargs[n], ColumnReference(self, n))
                if n in kwargs
                else ColumnReference(self, n),
            )
            for n in self._columns
        ]
        return self._select_node(outputs, "update_types")

    def pointer_from(
        self, *args: Any, optional: bool = False, instance: ColumnReference | None = None
    ) -> ColumnExpression:
        """An expression giving the id that a row keyed by ``args`` has.

        Parameters:
            *args: the key values (expressions), as given to :meth:`with_id_from`.
            optional: give None (instead of an id) when a key value is None.
            instance: a column whose value is part of the key, as in ``with_id_from``.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> prices = t.with_id_from(t.item)
            >>> orders = pw.debug.table_from_markdown('''
            ... item | n
            ... ink  | 3
            ... ''')
            >>> r = orders.select(orders.n, price=prices.ix(prices.pointer_from(orders.item)).price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            n | price
            3 | 4.0
        """
        pointer = PointerFrom(
            *(wrap_value(a) for a in args),
            optional=optional,
            instance=None if instance is None else wrap_value(instance),
        )
        pointer.table = self
        return pointer

    def with_id(self, new_index: ColumnReference) -> Table:
        """This table with ids taken from a Pointer column.

        Parameters:
            new_index: a column of Pointers, distinct across rows.

        Examples:
            >>> import deltaflow as pw
            >>> users = pw.debug.table_from_markdown('''
            ... name
            ... ann
            ... ''')
            >>> ages = pw.debug.table_from_markdown('''
            ... name | age
            ... ann  | 31
            ... ''')
            >>> keyed_users = users.with_id_from(users.name)
            >>> ages = ages.with_columns(user=keyed_users.pointer_from(ages.name))
            >>> by_user = ages.with_id(ages.user)
            >>> r = by_user.select(by_user.age, same=by_user.id == by_user.user)
            >>> pw.debug.compute_and_print(r, include_id=False)
            age | same
            31  | True
        """
        projection, source = self._project_zipped("with_id", [("__id", wrap_value(new_index))])
        if projection.types["__id"] != t.POINTER:
            raise ExpressionError(
                f"with_id on {self._description}: new_index must be a "
                f"Pointer column, got {projection.types['__id']!r}"
            )
        node = plan.ReindexNode(
            columns=dict(source.columns),
            inputs=(source,),
            id_projection=projection,
            what="with_id",
            label="with_id",
        )
        table = self._derive(
            self._trimmed(node, "with_id"), universe=plan.Universe(), keep_key=False
        )
        table._id_dtype = projection.types["__id"].strip_optional()
        return table

    def with_id_from(self, *args: Any, instance: ColumnReference | None = None) -> Table:
        """This table with ids computed from the given values (like a primary key).

        Parameters:
            *args: the key: expressions whose values (together) give each row's id.
            instance: a column whose value is part of the key (Pathway's sharding key).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> keyed = t.with_id_from(t.item)
            >>> r = keyed.select(keyed.qty, same=keyed.id == keyed.pointer_from(keyed.item))
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty | same
            2   | True
            6   | True
        """
        if not args:
            raise ValueError(f"with_id_from on {self._description}: give at least one column")
        expression = self.pointer_from(*args, instance=instance)
        projection, source = self._project_zipped("with_id_from", [("__id", expression)])
        node = self._trimmed(
            plan.ReindexNode(
                columns=dict(source.columns),
                inputs=(source,),
                id_projection=projection,
                what="with_id_from",
                label="with_id_from",
            ),
            "with_id_from",
        )
        key = tuple(
            a.name for a in args if isinstance(a, ColumnReference) and a.name in self._columns
        )
        return Table(
            node, plan.Universe(), primary_key=key or None, id_dtype=projection.types["__id"]
        )

    def concat(self, *others: Table) -> Table:
        """The union of tables with the same columns and disjoint ids.

        Parameters:
            *others: tables with the same column names and types, whose ids are not this table's.

        Examples:
            >>> import deltaflow as pw
            >>> a = pw.debug.table_from_markdown('''
            ...   | item
            ... 1 | pen
            ... ''')
            >>> b = pw.debug.table_from_markdown('''
            ...   | item
            ... 2 | ink
            ... ''')
            >>> pw.universes.promise_are_pairwise_disjoint(a, b)
            >>> pw.debug.compute_and_print(a.concat(b), include_id=False)
            item
            ink
            pen
        """
        return self._concat(others, reindex=False)

    def concat_reindex(self, *tables: Table) -> Table:
        """The union of tables with the same columns; ids are recomputed so they never clash.

        Parameters:
            *tables: tables with the same column names and types.

        Examples:
            >>> import deltaflow as pw
            >>> a = pw.debug.table_from_markdown('''
            ... item
            ... pen
            ... ''')
            >>> pw.debug.compute_and_print(a.concat_reindex(a), include_id=False)
            item
            pen
            pen
        """
        return self._concat(tables, reindex=True)

    def _concat(self, others: Iterable[Table], *, reindex: bool) -> Table:
        tables = [self, *others]
        operation = "concat_reindex" if reindex else "concat"
        names = self.column_names()
        columns = dict(self._columns)
        for other in tables[1:]:
            if not isinstance(other, Table):
                raise TypeError(f"{operation}: expected tables, got {other!r}")
            if set(other.column_names()) != set(names):
                raise ValueError(
                    f"{operation}: {other._description} has columns {other.column_names()}, "
                    f"but {self._description} has {names}"
                )
            for name in names:
                merged = t.common_supertype(columns[name], other._columns[name])
                if merged is None:
                    raise TypeError(
                        f"{operation}: column {name!r} has type {columns[name]!r} "
                        f"in one table and {other._columns[name]!r} in another"
                    )
                columns[name] = merged
        id_dtype: t.DType = t.POINTER
        if not reindex:
            id_dtype = _concat_id_dtype(tables)
            for i, first in enumerate(tables):
                for second in tables[i + 1 :]:
                    if first._universe.known_disjoint(second._universe) is False:
                        raise ValueError(
                            f"concat: {first._description} and {second._description} have "
                            f"rows with the same ids; use concat_reindex (new ids), or "
                            f"promise_universes_are_disjoint if they can never meet"
                        )
        aligned = [
            tb
            if tb.column_names() == names and tb._columns == columns
            else tb._select_node([(n, _coerced(tb, n, columns[n])) for n in names], operation)
            for tb in tables
        ]
        node = plan.ConcatNode(
            columns=columns,
            inputs=tuple(tb._node for tb in aligned),
            reindex=reindex,
            label=operation,
        )
        return Table(node, plan.Universe(), id_dtype=id_dtype)

    def flatten(self, to_flatten: ColumnReference | str, *, origin_id: str | None = None) -> Table:
        """One row per element of the ``to_flatten`` column (other columns are repeated).

        Parameters:
            to_flatten: a column of tuples, lists, arrays, strings or Json arrays.
            origin_id: the name of a column to hold the id of each element's original row.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... order | items
            ... 1     | pen,ink
            ... ''')
            >>> t = t.select(t.order, items=pw.apply_with_type(lambda s: tuple(s.split(",")),
            ...                                                tuple[str, ...], t.items))
            >>> pw.debug.compute_and_print(t.flatten(t.items), include_id=False)
            items | order
            ink   | 1
            pen   | 1
        """
        name = to_flatten.name if isinstance(to_flatten, ColumnReference) else to_flatten
        if name not in self._columns:
            raise self._missing(name)
        dtype = self._columns[name]
        from deltaflow.udfs.future import refuse_futures

        refuse_futures([(f"column {name!r}", dtype)], "flatten", f"flatten on {self._description}")
        base = dtype.strip_optional()
        if isinstance(base, t.List):
            element = base.arg
        elif isinstance(base, t.Tuple):
            element = (
                base.args[0] if base.args and all(a == base.args[0] for a in base.args) else t.ANY
            )
        elif base == t.STR:
            element = t.STR
        elif base in (t.JSON,):
            element = t.JSON
        elif isinstance(base, t.Array):
            element = base.element()
        elif base == t.ANY:
            element = t.ANY
        else:
            raise TypeError(
                f"flatten on {self._description}: column {name!r} of type "
                f"{dtype!r} is not a list, tuple, array, string or Json"
            )
        # The flattened column comes first, the others keep their order (as in Pathway).
        columns = {name: element, **{n: d for n, d in self._columns.items() if n != name}}
        if origin_id is not None:
            if origin_id in columns:
                raise ValueError(f"flatten: origin_id column {origin_id!r} already exists")
            columns[origin_id] = t.POINTER
        node = plan.FlattenNode(
            columns=columns, inputs=(self._node,), column=name, origin_id=origin_id, label="flatten"
        )
        return Table(node, plan.Universe())

    # --- universes --------------------------------------------------------------------------
    def promise_universe_is_subset_of(self, other: Table) -> Table:
        """Promise that every row id of this table is an id of ``other`` (checked by the
        operations relying on it, see docs/errors.md).

        Parameters:
            other: the table whose ids include this table's.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ...   | qty
            ... 1 | 2
            ... 2 | 6
            ... ''')
            >>> big = t.filter(t.qty > 3).promise_universe_is_subset_of(t)
            >>> r = t.select(t.qty).update_cells(big.select(qty=big.qty * 10))
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty
            2
            60
        """
        universe_checks.promise_subset(self._universe, other._universe)
        return self

    def promise_universes_are_disjoint(self, other: Table) -> Table:
        """Promise that no row id of this table is an id of ``other`` (``concat`` trusts
        it).

        Parameters:
            other: the table none of whose ids is an id of this table.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... qty
            ... 2
            ... 6
            ... ''')
            >>> small, big = t.filter(t.qty < 3), t.filter(t.qty >= 3)
            >>> pw.debug.compute_and_print(small.promise_universes_are_disjoint(big).concat(big),
            ...                            include_id=False)
            qty
            2
            6
        """
        universe_checks.promise_disjoint(self, other)
        return self

    def promise_universe_is_equal_to(self, other: Table) -> Table:
        """Promise that this table and ``other`` have the same row ids.

        Parameters:
            other: the table with the same ids.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ...   | qty
            ... 1 | 2
            ... ''')
            >>> u = pw.debug.table_from_markdown('''
            ...   | price
            ... 1 | 1.5
            ... ''')
            >>> r = t.promise_universe_is_equal_to(u).select(t.qty, u.price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty | price
            2   | 1.5
        """
        universe_checks.promise_equal(self._universe, other._universe)
        return self

    def with_universe_of(self, other: Table) -> Table:
        """This table, said to have exactly the rows of ``other`` (so that their columns can
        be used together). Unless that is known, the ids are checked as the data comes: an id
        of ``other`` without a row here gives a row of Errors, a row whose id ``other`` lacks
        is left out, each reported.

        Parameters:
            other: the table whose ids this table is said to have.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ...   | qty
            ... 1 | 2
            ... ''')
            >>> u = pw.debug.table_from_markdown('''
            ...   | price
            ... 1 | 1.5
            ... ''')
            >>> r = t.with_universe_of(u).select(t.qty, u.price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty | price
            2   | 1.5
        """
        if not isinstance(other, Table):
            raise TypeError(
                f"with_universe_of on {self._description}: expected a table, got {other!r}"
            )
        if universe_checks.known_equal(self._universe, other._universe):
            copy = self.copy()
            copy._universe = other._universe
            return copy
        result = self._id_op("with_universe_of", (other,), dict(self._columns), (self, other))
        result._universe = other._universe
        # As in Pathway, the two tables are from now on known to have the same rows.
        universe_checks.promise_equal(self._universe, other._universe)
        return result

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

    def debug(self, name: str) -> Table:
        """Print every change of this table when the program runs with
        ``pw.run(debug=True)``; returns the table.

        Parameters:
            name: the label printed before each change.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... qty
            ... 2
            ... ''')
            >>> t.debug("stock").column_names()
            ['qty']
        """
        from deltaflow.runner import debug_table

        debug_table(self, name)
        return self

    def to(self, sink: Any) -> None:
        """Send the changes of this table to ``sink`` when the pipeline runs.

        The ``pw.io.*.write`` functions are built on it; a program rarely calls it itself.

        Parameters:
            sink: an output of the engine, a subclass of
                ``deltaflow.engine.boundary.Sink`` (``on_batch(time, batch)`` receives
                each time's changes as a Polars DataFrame).

        Examples:
            >>> import deltaflow as pw
            >>> from deltaflow.engine.boundary import Sink
            >>> class PrintWords(Sink):
            ...     def on_batch(self, time, batch):
            ...         print(time, sorted(batch["word"].to_list()))
            >>> t = pw.debug.table_from_markdown('''
            ... word
            ... pear
            ... apple
            ... ''')
            >>> t.to(PrintWords())
            >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
            0 ['apple', 'pear']
        """
        add_output(self, sink)


def _coerced(table: Table, name: str, target: t.DType) -> ColumnExpression:
    ref = ColumnReference(table, name)
    source = table._columns[name]
    if source == target:
        return ref
    if source.strip_optional() == t.INT and target.strip_optional() == t.FLOAT:
        return Cast(target, ref)
    return DeclareType(target, ref)


def _concat_id_dtype(tables: list[Table]) -> t.DType:
    """The id type of ``concat(*tables)``; a ``TypeError`` when the tables' ids are pointers
    to different kinds of rows (ids of ``int`` keys and of ``str`` keys, say)."""
    merged = tables[0]._id_dtype
    for other in tables[1:]:
        combined = t.common_supertype(merged, other._id_dtype)
        if combined is None:
            raise TypeError(
                f"concat: the ids of {tables[0]._description} are "
                f"{t.describe(merged)} but those of {other._description} are "
                f"{t.describe(other._id_dtype)}; concatenating rows keyed so "
                f"differently is most likely a mistake (update_id_type("
                f"pw.Pointer) on both says it is not)"
            )
        merged = combined
    return merged


def _check_unique(names: list[str], operation: str, description: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{operation} on {description}: column {name!r} is given twice")
        seen.add(name)


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
    order = [c.name if isinstance(c, ColumnReference) else str(c) for c in (sort_by or ())]
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
