"""Nodes that change a column's type: ``pw.cast``, ``pw.declare_type``, ``pw.unwrap``, and
row ids computed from values (``pointer_from``)."""

from __future__ import annotations

from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.core import ColumnExpression, PythonNode, Scope

_CAST_POLARS_OK = {t.INT, t.FLOAT, t.BOOL, t.STR}


class Cast(ColumnExpression):
    """``pw.cast(type, expr)``: convert values to another type."""

    accepts_futures = True  # as in Pathway: a Future column may be cast (or to_string'ed)

    def __init__(self, target: Any, arg: ColumnExpression) -> None:
        super().__init__()
        self.target = t.wrap(target)
        self.arg = arg

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        source = scope.dtype_of(self.arg)
        src, dst = source.strip_optional(), self.target.strip_optional()
        if src == dst or src == t.ANY or dst == t.ANY:
            pass
        elif not (src in _CAST_POLARS_OK and dst in _CAST_POLARS_OK):
            raise scope.fail(f"cannot cast {source!r} to {self.target!r}")
        return t.optional(dst) if source.is_optional else self.target

    def _parses_text(self, scope: Scope) -> bool:
        src = scope.dtype_of(self.arg).strip_optional()
        return src == t.STR and self.target.strip_optional() in (t.INT, t.FLOAT)

    def computed_in_python(self, scope: Scope) -> bool:
        """Text cast to a number is checked value by value: a text that is not a number fails
        its row (a ``ValueError``, or an Error cell with ``terminate_on_error=False``)."""
        return self._parses_text(scope) or super().computed_in_python(scope)

    def compute(self, args: list[pl.Series], size: int, dtype: t.DType) -> pl.Series:
        source, target = args[0], dtype.strip_optional()
        # surrounding whitespace is ignored, as Pathway does
        parsed = source.str.strip_chars().cast(target.to_polars(), strict=False)
        failed = source.is_not_null() & parsed.is_null()
        if failed.any():
            bad = source.filter(failed)[0]
            kind = "an int" if target == t.INT else "a float"
            raise ValueError(f"pw.cast: the text {bad!r} is not {kind}")
        return parsed.alias("value")

    def _polars(self, scope: Scope) -> pl.Expr:
        src = scope.dtype_of(self.arg).strip_optional()
        dst = self.target.strip_optional()
        inner = self.arg.to_polars(scope)
        if src == dst or dst == t.ANY or src == t.ANY:
            return inner
        if dst == t.STR and src == t.BOOL:
            return pl.when(inner).then(pl.lit("True")).otherwise(pl.lit("False"))
        if dst == t.STR and src == t.FLOAT:
            return inner.map_elements(repr, return_dtype=pl.String)
        if dst == t.BOOL and src == t.STR:
            return inner.str.len_bytes() > 0  # a non-empty string is true, as in Pathway
        return inner.cast(dst.to_polars(), strict=True)


class DeclareType(ColumnExpression):
    """``pw.declare_type(type, expr)``: change the declared type, keep the values."""

    def __init__(self, target: Any, arg: ColumnExpression) -> None:
        super().__init__()
        self.target = t.wrap(target)
        self.arg = arg

    @property
    def accepts_futures(self) -> bool:
        """A ``Future`` column may be declared a ``Future`` (concat's common types)."""
        return getattr(self.target, "is_future", False)

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        source = scope.dtype_of(self.arg)
        # From Any, any type may be declared (as in Pathway): the values are converted to the
        # target's storage when computed, and one that does not fit is an error then.
        stored_alike = (
            source.to_polars() == self.target.to_polars()
            or self.target == t.ANY
            or (source == t.NONE and self.target.is_optional)
            or source.strip_optional() == t.ANY
        )
        widening = source.strip_optional() == t.INT and self.target.strip_optional() == t.FLOAT
        if not stored_alike and not widening:
            raise scope.fail(
                f"declare_type: values of {source!r} are not stored like "
                f"{self.target!r}; use pw.cast"
            )
        return self.target

    def _polars(self, scope: Scope) -> pl.Expr:
        inner = self.arg.to_polars(scope)
        source = scope.dtype_of(self.arg)
        if source.strip_optional() == t.ANY and self.target.strip_optional() != t.ANY:
            target = self.target
            return inner.map_batches(
                lambda series: _declared_from_any(series, target),
                return_dtype=target.to_polars(),
                is_elementwise=True,
            )
        if source.to_polars() != self.target.to_polars() and self.target != t.ANY:
            return inner.cast(self.target.to_polars())
        return inner


def _declared_from_any(series: pl.Series, target: t.DType) -> pl.Series:
    """Values of an ``Any`` column stored as ``target`` declares them (``declare_type`` /
    ``update_types``); a ``TypeError`` for a value that is not of that type."""
    values = series.to_list()
    stored = t.series_from_values(series.name, values, target)
    if stored.null_count() != sum(v is None for v in values):
        bad = next(
            v for v, s in zip(values, stored.to_list(), strict=True) if v is not None and s is None
        )
        raise TypeError(
            f"declare_type: the value {bad!r} ({type(bad).__name__}) is not of "
            f"the declared type {target!r}; use pw.cast to convert values"
        )
    return stored


class Unwrap(PythonNode):
    """``pw.unwrap(expr)``: drop ``Optional`` from the type; a None value stops the run."""

    label = "pw.unwrap"

    def compute(self, args: list[pl.Series], size: int, dtype: t.DType) -> pl.Series:
        if args[0].null_count():
            from deltaflow import errors

            if not errors.keeps_errors():
                raise ValueError("pw.unwrap met a None value")
            missing = args[0].is_null()
            errors.report("cannot unwrap a None value (pw.unwrap)", count=int(missing.sum()))
            return errors.with_errors(args[0], missing)
        return args[0]

    def __init__(self, arg: ColumnExpression) -> None:
        super().__init__()
        self.arg = arg

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        return scope.dtype_of(self.arg).strip_optional()


class PointerFrom(ColumnExpression):
    """``t.pointer_from(*values)``: the id a row keyed by ``values`` gets."""

    def __init__(
        self,
        *args: ColumnExpression,
        optional: bool = False,
        instance: ColumnExpression | None = None,
    ) -> None:
        super().__init__()
        self.args = args
        self.optional = optional
        self.instance = instance
        self.table: Any = None  # the table whose pointer_from built it (for printing)

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args + ((self.instance,) if self.instance is not None else ())

    def _infer(self, scope: Scope) -> t.DType:
        # Pointer[key types]; with optional=True a None key gives a None pointer, so the
        # pointer is to rows keyed by the non-None values.
        types = [scope.dtype_of(a) for a in self.children()]
        if self.optional and any(x.is_optional for x in types):
            return t.Optional(t.PointerType([x.strip_optional() for x in types]))
        return t.PointerType(types)

    def _polars(self, scope: Scope) -> pl.Expr:
        from deltaflow._ids import id_expr

        parts = [(c.to_polars(scope), scope.dtype_of(c)) for c in self.children()]
        ids = id_expr(parts)
        if self.optional:
            any_null = pl.any_horizontal([p.is_null() for p, _ in parts])
            return pl.when(any_null).then(None).otherwise(ids)
        return ids
