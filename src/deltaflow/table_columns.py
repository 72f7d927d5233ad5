"""``Table`` methods that change the columns but keep the rows and their ids: ``without``,
the renames (``rename``, ``rename_columns``, ``rename_by_dict``, ``with_prefix``,
``with_suffix``) and the type changes (``cast_to_types``, ``update_types``).

Each is a projection of the table (``Table._select_node``); they are kept apart from
:mod:`deltaflow.table`, which holds what every operation needs (scopes, projections) and
``select``/``with_columns``, so that each module has one job. ``Table`` inherits
:class:`ColumnMethods`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from deltaflow.error_display import user_calls
from deltaflow.expressions.base import (
    Cast,
    ColumnReference,
    DeclareType,
)

if TYPE_CHECKING:
    from deltaflow.table import Table


@user_calls
class ColumnMethods:
    """Mixin of ``Table``'s renames, column removal and type changes."""

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
        table = cast("Table", self)  # a mixin of Table only
        names = {c.name if isinstance(c, ColumnReference) else c for c in columns}
        for name in names:
            if name not in table._columns:
                raise table._missing(name)
        return table._select_node(
            [(n, ColumnReference(table, n)) for n in table._columns if n not in names], "without"
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
        table = cast("Table", self)  # a mixin of Table only
        mapping: dict[str | ColumnReference, str] = {}
        for new, old in kwargs.items():
            old_name = old.name if isinstance(old, ColumnReference) else old
            if old_name not in table._columns:
                raise table._missing(old_name)
            mapping[old_name] = new
        return table.rename_by_dict(mapping)

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
        table = cast("Table", self)  # a mixin of Table only
        mapping = {}
        for old, new in names_mapping.items():
            old_name = old.name if isinstance(old, ColumnReference) else old
            if old_name not in table._columns:
                raise table._missing(old_name)
            mapping[old_name] = new
        # As in Pathway: the columns kept as they are first, then the renamed ones in the
        # order of the mapping.
        outputs = [(n, ColumnReference(table, n)) for n in table._columns if n not in mapping]
        outputs += [(new, ColumnReference(table, old)) for old, new in mapping.items()]
        _check_unique([n for n, _ in outputs], "rename", table._description)
        return table._select_node(outputs, "rename")

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
        table = cast("Table", self)  # a mixin of Table only
        if names_mapping is not None and kwargs:
            raise ValueError("rename: give either a mapping or keyword arguments, not both")
        if names_mapping is not None:
            return table.rename_by_dict(names_mapping)
        return table.rename_columns(**kwargs)

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
        table = cast("Table", self)  # a mixin of Table only
        return table.rename_by_dict({n: prefix + n for n in table._columns})

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
        table = cast("Table", self)  # a mixin of Table only
        return table.rename_by_dict({n: n + suffix for n in table._columns})

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
        table = cast("Table", self)  # a mixin of Table only
        for name in kwargs:
            if name not in table._columns:
                raise table._missing(name)
        outputs = [
            (
                n,
                Cast(kwargs[n], ColumnReference(table, n))
                if n in kwargs
                else ColumnReference(table, n),
            )
            for n in table._columns
        ]
        return table._select_node(outputs, "cast_to_types")

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
        table = cast("Table", self)  # a mixin of Table only
        for name in kwargs:
            if name not in table._columns:
                from deltaflow.argument_errors import ColumnArgumentError

                raise ColumnArgumentError(f"update_types: {table._missing(name)}")
        outputs = [
            (
                n,
                DeclareType(kwargs[n], ColumnReference(table, n))
                if n in kwargs
                else ColumnReference(table, n),
            )
            for n in table._columns
        ]
        return table._select_node(outputs, "update_types")


def _check_unique(names: list[str], operation: str, description: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{operation} on {description}: column {name!r} is given twice")
        seen.add(name)
