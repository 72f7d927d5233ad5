"""``pw.this``, ``pw.left`` and ``pw.right``: references resolved by the operation using them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deltaflow.expressions.base import ColumnExpression, ColumnReference


class AllColumns(ColumnExpression):
    """What ``*pw.this`` (or ``*table``) expands to: every column of the source, minus some."""

    def __init__(self, source: Any, excluded: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.source = source
        self.excluded = excluded


class Placeholder:
    """Stands for "the table this operation works on" (or its left/right side in a join)."""

    def __init__(self, label: str) -> None:
        self._label = label

    def __getattr__(self, name: str) -> ColumnReference:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        from deltaflow.argument_errors import TABLE_METHOD_NAMES, method_name_as_column

        if name in TABLE_METHOD_NAMES:  # as in Pathway: pw.this["name"] for such a column
            raise method_name_as_column(self._label, name)
        return ColumnReference(self, name)

    def __getitem__(self, name: str | ColumnReference) -> ColumnReference:
        if isinstance(name, ColumnReference):
            name = name.name
        return ColumnReference(self, name)

    def __iter__(self) -> Iterator[ColumnExpression]:
        yield AllColumns(self)

    @property
    def C(self) -> Any:  # noqa: N802 (Pathway's name)
        """Columns by attribute even where a method has the same name: ``pw.this.C.ix``."""
        from deltaflow.table_slice import ColumnNamespace

        return ColumnNamespace(self)

    def pointer_from(self, *args: Any, optional: bool = False, instance: Any = None) -> Any:
        """The id a row keyed by ``args`` has (the same for every table)."""
        from deltaflow.expressions.base import PointerFrom, wrap_value

        return PointerFrom(*(wrap_value(a) for a in args), optional=optional,
                           instance=None if instance is None else wrap_value(instance))

    def ix(self, expression: Any, *, optional: bool = False, context: Any = None,
           allow_misses: bool = False) -> Any:
        """Rows of the table this operation works on, looked up by ``expression``."""
        from deltaflow.expressions.base import wrap_value
        from deltaflow.expressions.deferred import DeferredIx

        return DeferredIx(self, wrap_value(expression), optional=optional,
                          allow_misses=allow_misses)

    def ix_ref(self, *args: Any, optional: bool = False, context: Any = None,
               instance: Any = None, allow_misses: bool = False) -> Any:
        """``ix`` by key values: the row whose id ``pointer_from(*args)`` gives."""
        return self.ix(self.pointer_from(*args, optional=optional, instance=instance),
                       optional=optional, allow_misses=allow_misses)

    def without(self, *columns: str | ColumnReference) -> _Without:
        names = tuple(c.name if isinstance(c, ColumnReference) else c for c in columns)
        return _Without(self, names)

    def __repr__(self) -> str:
        return f"pw.{self._label}"


class _Without:
    def __init__(self, source: Any, excluded: tuple[str, ...]) -> None:
        self.source = source
        self.excluded = excluded

    def __getattr__(self, name: str) -> ColumnReference:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str | ColumnReference) -> ColumnReference:
        if isinstance(name, ColumnReference):
            name = name.name
        if name in self.excluded:
            raise KeyError(f"column {name!r} was left out with without()")
        return ColumnReference(self.source, name)

    def __iter__(self) -> Iterator[ColumnExpression]:
        yield AllColumns(self.source, self.excluded)


this = Placeholder("this")
left = Placeholder("left")
right = Placeholder("right")
