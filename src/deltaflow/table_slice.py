"""``Table.slice`` and ``Table.C``: named column references to pass around and unpack.

A slice maps output names to columns of one table. ``**t.slice.with_suffix("_l")`` in a
``select`` gives those columns under the new names; ``*t.slice`` gives the columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from deltaflow.error_display import user_calls
from deltaflow.expressions.base import ColumnNotFoundError, ColumnReference


@user_calls
class TableSlice(Mapping[str, ColumnReference]):
    """An ordered mapping from names to columns of one table."""

    def __init__(self, mapping: dict[str, ColumnReference], table: Any) -> None:
        self._mapping = mapping
        self._table = table

    # --- mapping ---------------------------------------------------------------------------
    def __getitem__(self, name: Any) -> Any:
        if isinstance(name, list):
            return TableSlice({self._name(n): self[n] for n in name}, self._table)
        key = self._name(name)
        if key not in self._mapping:
            raise ColumnNotFoundError(
                f"the slice has no column {key!r}; it has {', '.join(self._mapping) or '(none)'}"
            )
        return self._mapping[key]

    def __getattr__(self, name: str) -> ColumnReference:
        if name.startswith("_"):
            raise AttributeError(name)
        from deltaflow.argument_errors import TABLE_METHOD_NAMES, ArgumentError

        if name in TABLE_METHOD_NAMES:  # as in Pathway: slice["name"] for such a column
            raise ArgumentError(
                f"slice.{name}: {name!r} is the name of a Table method; write "
                f"slice[{name!r}] for a column with that name"
            )
        return self[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping)

    def __len__(self) -> int:
        return len(self._mapping)

    def keys(self) -> Any:
        return self._mapping.keys()

    def __repr__(self) -> str:
        return f"TableSlice({self._mapping!r})"

    # --- derived slices ----------------------------------------------------------------------
    def without(self, *columns: Any) -> TableSlice:
        names = {self._name(c) for c in columns}
        for name in names:
            self[name]  # a missing name is an error, as for tables
        return TableSlice({k: v for k, v in self._mapping.items() if k not in names}, self._table)

    def rename(self, rename_dict: dict[Any, Any]) -> TableSlice:
        renames = {self._name(k): self._name(v) for k, v in rename_dict.items()}
        for name in renames:
            self[name]
        kept = {k: v for k, v in self._mapping.items() if k not in renames}
        kept.update({new: self._mapping[old] for old, new in renames.items()})
        return TableSlice(kept, self._table)

    def with_prefix(self, prefix: str) -> TableSlice:
        return TableSlice({prefix + k: v for k, v in self._mapping.items()}, self._table)

    def with_suffix(self, suffix: str) -> TableSlice:
        return TableSlice({k + suffix: v for k, v in self._mapping.items()}, self._table)

    @property
    def slice(self) -> TableSlice:
        return self

    def ix(
        self,
        expression: Any,
        *,
        optional: bool = False,
        context: Any = None,
        allow_misses: bool = False,
    ) -> TableSlice:
        """The same names, read from the rows ``expression`` points to."""
        looked_up = self._table.ix(
            expression, optional=optional, context=context, allow_misses=allow_misses
        )
        return TableSlice({k: looked_up[v.name] for k, v in self._mapping.items()}, looked_up)

    def ix_ref(
        self,
        *args: Any,
        optional: bool = False,
        context: Any = None,
        instance: Any = None,
        allow_misses: bool = False,
    ) -> TableSlice:
        looked_up = self._table.ix_ref(
            *args, optional=optional, context=context, instance=instance, allow_misses=allow_misses
        )
        return TableSlice({k: looked_up[v.name] for k, v in self._mapping.items()}, looked_up)

    def _name(self, column: Any) -> str:
        if isinstance(column, ColumnReference):
            owner = column.table
            label = getattr(owner, "_label", None)
            if (
                owner is not self._table
                and label != "this"
                and not (
                    getattr(owner, "_node", None) is not None
                    and owner._node is getattr(self._table, "_node", None)
                )
            ):
                from deltaflow.argument_errors import ArgumentError

                raise ArgumentError(
                    f"slice: {column!r} is not a column of the sliced table; "
                    f"give a name or pw.this.<name>"
                )
            return column.name
        return str(column)


@user_calls
class ColumnNamespace:
    """``t.C``: ``t.C.name`` is ``t.name`` even when ``name`` is also a Table method."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getattr__(self, name: str) -> ColumnReference:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._table[name]

    def __getitem__(self, name: str) -> ColumnReference:
        return self._table[name]
