"""``pw.this``, ``pw.left`` and ``pw.right``: references resolved by the operation using them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from deltaflow.error_display import user_calls
from deltaflow.expressions.base import ColumnExpression, ColumnReference


class AllColumns(ColumnExpression):
    """What ``*pw.this`` (or ``*table``) expands to: every column of the source, minus some;
    a placeholder slice (``pw.left.without("a").with_prefix("l_")``) also renames and picks
    columns, as its ``steps`` say."""

    def __init__(
        self, source: Any, excluded: tuple[str, ...] = (), steps: tuple[tuple[str, Any], ...] = ()
    ) -> None:
        super().__init__()
        self.source = source
        self.excluded = excluded
        self.steps = steps

    def pairs(self, names: list[str]) -> list[tuple[str, str]]:
        """``(output name, source column)`` for each column taken from ``names``."""
        pairs = [(name, name) for name in names if name not in self.excluded]
        for kind, value in self.steps:
            if kind == "without":
                pairs = [(out, src) for out, src in pairs if out not in value]
            elif kind == "rename":
                pairs = [(value.get(out, out), src) for out, src in pairs]
            elif kind == "prefix":
                pairs = [(value + out, src) for out, src in pairs]
            elif kind == "suffix":
                pairs = [(out + value, src) for out, src in pairs]
            else:  # "only": the listed columns, in the listed order
                by_name = dict(pairs)
                missing = [name for name in value if name not in by_name]
                if missing:
                    raise KeyError(f"column {missing[0]!r} is not in {self.source!r}")
                pairs = [(name, by_name[name]) for name in value]
        return pairs


# The keys under which ``**slice`` hands its columns to select (as Pathway does).
SPREAD_KEY = "__deltaflow_spread__"
_spread_numbers = itertools.count()


def _name(column: Any) -> str:
    return column.name if isinstance(column, ColumnReference) else str(column)


@user_calls
class PlaceholderSlice:
    """Some columns of ``pw.this``/``pw.left``/``pw.right``, possibly renamed: built by
    ``without``, ``rename``, ``with_prefix``, ``with_suffix`` and ``[[names]]``, used as
    ``*slice`` or ``**slice`` in select (the column names are known only there)."""

    def __init__(self, source: Any, steps: tuple[tuple[str, Any], ...] = ()) -> None:
        self._source = source
        self._steps = steps

    def _then(self, kind: str, value: Any) -> PlaceholderSlice:
        return PlaceholderSlice(self._source, (*self._steps, (kind, value)))

    def without(self, *columns: Any) -> PlaceholderSlice:
        return self._then("without", tuple(_name(c) for c in columns))

    def rename(self, mapping: dict[Any, Any]) -> PlaceholderSlice:
        return self._then("rename", {_name(k): _name(v) for k, v in mapping.items()})

    def with_prefix(self, prefix: str) -> PlaceholderSlice:
        return self._then("prefix", prefix)

    def with_suffix(self, suffix: str) -> PlaceholderSlice:
        return self._then("suffix", suffix)

    def _columns(self) -> AllColumns:
        if all(kind == "without" for kind, _ in self._steps):
            # only columns left out: the plain form, which every expansion site knows
            return AllColumns(self._source, tuple(n for _, names in self._steps for n in names))
        return AllColumns(self._source, (), self._steps)

    def __getitem__(self, name: Any) -> Any:
        if isinstance(name, list):
            return self._then("only", tuple(_name(c) for c in name))
        if isinstance(name, str) and name.startswith(SPREAD_KEY):
            return self._columns()
        name = _name(name)
        for kind, value in self._steps:
            if kind == "without" and name in value:
                raise KeyError(f"column {name!r} was left out with without()")
        return ColumnReference(self._source, name)

    def __getattr__(self, name: str) -> ColumnReference:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __iter__(self) -> Iterator[ColumnExpression]:
        yield self._columns()

    def keys(self) -> list[str]:
        # one key of its own, so that several **slices can be given to one select
        self._key = f"{SPREAD_KEY}{next(_spread_numbers)}"
        return [self._key]

    def __repr__(self) -> str:
        return f"{self._source!r}[slice]"


def expand_keywords(
    kwargs: dict[str, Any], expand: Callable[[list[Any]], list[Any]]
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """Select's keywords split into the columns of its ``**slice`` arguments (expanded by
    ``expand``; a name given by two slices takes the later one, as a dict merge does in
    Pathway) and the ordinary keywords."""
    spread = [v for k, v in kwargs.items() if k.startswith(SPREAD_KEY)]
    plain = {k: v for k, v in kwargs.items() if not k.startswith(SPREAD_KEY)}
    return list(dict(expand(spread)).items()) if spread else [], plain


@user_calls
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

    def __getitem__(self, name: str | ColumnReference | list[Any]) -> Any:
        if isinstance(name, list):  # pw.this[["a", "b"]]: a slice of those columns
            return PlaceholderSlice(self)[name]
        if isinstance(name, ColumnReference):
            name = name.name
        if name.startswith(SPREAD_KEY):  # the value of **pw.left: all of its columns
            return AllColumns(self)
        return ColumnReference(self, name)

    def __iter__(self) -> Iterator[ColumnExpression]:
        yield AllColumns(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling a placeholder is a mistake (a ``TypeError``, as in Pathway); defined so
        that the error names the user's line and says what to write instead."""
        raise TypeError(
            f"pw.{self._label} cannot be called: it stands for a table of the operation; "
            f"refer to its columns as pw.{self._label}.name or pw.{self._label}['name']"
        )

    def keys(self) -> list[str]:
        """``select(**pw.left)``: one key of its own standing for all the columns (so that
        several placeholders can be spread into one select); a column named ``keys`` is
        ``pw.this["keys"]``, as in Pathway."""
        return [f"{SPREAD_KEY}{next(_spread_numbers)}"]

    @property
    def C(self) -> Any:  # noqa: N802 (Pathway's name)
        """Columns by attribute even where a method has the same name: ``pw.this.C.ix``."""
        from deltaflow.table_slice import ColumnNamespace

        return ColumnNamespace(self)

    def pointer_from(self, *args: Any, optional: bool = False, instance: Any = None) -> Any:
        """The id a row keyed by ``args`` has (the same for every table)."""
        from deltaflow.expressions.base import PointerFrom, wrap_value

        return PointerFrom(
            *(wrap_value(a) for a in args),
            optional=optional,
            instance=None if instance is None else wrap_value(instance),
        )

    def ix(
        self,
        expression: Any,
        *,
        optional: bool = False,
        context: Any = None,
        allow_misses: bool = False,
    ) -> Any:
        """Rows of the table this operation works on, looked up by ``expression``."""
        from deltaflow.expressions.base import wrap_value
        from deltaflow.expressions.deferred import DeferredIx

        return DeferredIx(
            self, wrap_value(expression), optional=optional, allow_misses=allow_misses
        )

    def ix_ref(
        self,
        *args: Any,
        optional: bool = False,
        context: Any = None,
        instance: Any = None,
        allow_misses: bool = False,
    ) -> Any:
        """``ix`` by key values: the row whose id ``pointer_from(*args)`` gives."""
        return self.ix(
            self.pointer_from(*args, optional=optional, instance=instance),
            optional=optional,
            allow_misses=allow_misses,
        )

    def without(self, *columns: str | ColumnReference) -> PlaceholderSlice:
        return PlaceholderSlice(self).without(*columns)

    def rename(self, mapping: dict[Any, Any]) -> PlaceholderSlice:
        return PlaceholderSlice(self).rename(mapping)

    def with_prefix(self, prefix: str) -> PlaceholderSlice:
        return PlaceholderSlice(self).with_prefix(prefix)

    def with_suffix(self, suffix: str) -> PlaceholderSlice:
        return PlaceholderSlice(self).with_suffix(suffix)

    def __repr__(self) -> str:
        return f"pw.{self._label}"

    def __reduce__(self) -> str:
        # Operations recognise pw.this/left/right by identity: a pickled expression (a graph
        # carried to another interpreter) must get this module's objects back, not copies.
        return self._label


this = Placeholder("this")
left = Placeholder("left")
right = Placeholder("right")
