"""Readable text for expressions, as Pathway prints them.

``repr(t.a + t2.b)`` is ``(<table1>.a + <table2>.b)``: tables are numbered in the order they
first appear in the printed expression, functions are spelled as their ``pathway.*`` names,
and namespace methods as ``(<table1>.ts).dt.hour()``. Used by ``ColumnExpression.__repr__``
(and so by error messages).
"""

from __future__ import annotations

import inspect
from typing import Any

_FUNCTIONS = {
    "IfElse": "if_else",
    "Coalesce": "coalesce",
    "Require": "require",
    "MakeTuple": "make_tuple",
    "Unwrap": "unwrap",
    "FillError": "fill_error",
}


class _Printer:
    def __init__(self) -> None:
        self.tables: dict[int, int] = {}

    def table(self, table: Any) -> str:
        label = getattr(table, "_label", None)
        if label in ("this", "left", "right"):
            return f"pathway.{label}"
        number = self.tables.setdefault(id(table), len(self.tables) + 1)
        return f"<table{number}>"

    def args(self, values: Any) -> str:
        return ", ".join(self.text(v) for v in values)

    def text(self, expr: Any) -> str:  # noqa: C901 (one branch per kind of node)
        kind = type(expr).__name__
        if kind == "ColumnReference":
            return f"{self.table(expr.table)}.{expr.name}"
        if kind == "Literal":
            return repr(expr.value)
        if kind == "BinaryOp":
            return f"({self.text(expr.left)} {expr.op} {self.text(expr.right)})"
        if kind == "MatMul":
            return f"({self.text(expr.left)} @ {self.text(expr.right)})"
        if kind == "UnaryOp":
            if expr.op == "abs":
                return f"abs({self.text(expr.arg)})"
            return f"({expr.op}{self.text(expr.arg)})"
        if kind == "IsNone":
            method = "is_not_none" if expr.negate else "is_none"
            return f"({self.text(expr.arg)}).{method}()"
        if kind in _FUNCTIONS:
            return f"pathway.{_FUNCTIONS[kind]}({self.args(expr.children())})"
        if kind in ("Cast", "DeclareType"):
            from deltaflow._types import engine_name

            name = "cast" if kind == "Cast" else "declare_type"
            return f"pathway.{name}({engine_name(expr.target)}, {self.text(expr.arg)})"
        if kind == "ConvertTo":
            return f"pathway.as_{expr.target.name}({self.text(expr.arg)})"
        if kind == "Apply":
            return f"pathway.{_apply_name(expr)}({self._function(expr)})"
        if kind == "GetItem":
            if expr.checked:
                return f"({self.text(expr.arg)})[{self.text(expr.index)}]"
            return f"({self.text(expr.arg)}).get({self.args((expr.index, expr.default))})"
        if kind == "PointerFrom":
            owner = getattr(expr, "table", None)
            prefix = self.table(owner) if owner is not None else "pathway.this"
            return f"{prefix}.pointer_from({self.args(expr.args)})"
        if kind in ("MethodCall", "PythonMethodCall", "SeriesMethodCall", "ToString"):
            name = str(getattr(expr, "name", None) or getattr(expr, "label", "method"))
            receiver, *rest = expr.args
            shown = getattr(expr, "shown_args", None)
            if shown is not None:  # the arguments as the user wrote them
                given = ", ".join(
                    self.text(v) if hasattr(v, "children") else repr(v) for v in shown
                )
                return f"({self.text(receiver)}).{name}({given})"
            return f"({self.text(receiver)}).{name}({self.args(rest)})"
        if kind == "ReducerExpression":
            return self._reducer(expr)
        if kind == "IxColumn":
            return f"<ix({self.text(expr.request.pointer)})>.{expr.name}"
        return f"<expression {kind}>"

    def _function(self, expr: Any) -> str:
        name = getattr(expr.fun, "__name__", None) or repr(expr.fun)
        parts = [name, *(self.text(a) for a in expr.args)]
        parts += [f"{k}={self.text(v)}" for k, v in zip(expr.kwarg_names, expr.kwargs)]
        return ", ".join(parts)

    def _reducer(self, expr: Any) -> str:
        reducer = expr.reducer
        parts = [self.text(a) for a in expr.args]
        if hasattr(reducer, "skip_nones"):
            parts.append(f"skip_nones={reducer.skip_nones}")
        return f"pathway.reducers.{reducer.name}({', '.join(parts)})"


def _apply_name(expr: Any) -> str:
    executor = type(getattr(getattr(expr, "options", None), "executor", None)).__name__
    if "FullyAsync" in executor:
        return "apply_fully_async"
    if "Async" in executor or inspect.iscoroutinefunction(expr.fun):
        return "apply_async"
    return "apply"


def expression_text(expr: Any) -> str:
    """The text ``repr`` shows for an expression."""
    return _Printer().text(expr)
