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
        return ColumnReference(self, name)

    def __getitem__(self, name: str | ColumnReference) -> ColumnReference:
        if isinstance(name, ColumnReference):
            name = name.name
        return ColumnReference(self, name)

    def __iter__(self) -> Iterator[ColumnExpression]:
        yield AllColumns(self)

    def without(self, *columns: str | ColumnReference) -> _Without:
        names = tuple(c.name if isinstance(c, ColumnReference) else c for c in columns)
        return _Without(self, names)

    def __repr__(self) -> str:
        return f"pw.{self._label}"


class _Without:
    def __init__(self, source: Any, excluded: tuple[str, ...]) -> None:
        self.source = source
        self.excluded = excluded

    def __iter__(self) -> Iterator[ColumnExpression]:
        yield AllColumns(self.source, self.excluded)


this = Placeholder("this")
left = Placeholder("left")
right = Placeholder("right")
