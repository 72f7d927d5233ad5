"""SQL expressions (sqlglot trees) mapped to deltaflow column expressions.

The mapping is purely structural: what a column name, an aggregate function or a subquery
stands for is decided by an ``ExpressionContext`` supplied by the caller (a row of the FROM
relation, a group of a GROUP BY, the result of a reduce ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from deltaflow import reducers
from deltaflow.expressions import ColumnExpression, apply_with_type, cast, coalesce, if_else
from deltaflow.expressions.base import wrap_value
from deltaflow.sql._parse import sqlglot_modules, unsupported

_, exp = sqlglot_modules()

# Aggregate functions and the reducer each maps to (COUNT is handled apart: COUNT(*) and
# COUNT(DISTINCT ...) take no plain argument).
_REDUCERS: dict[type, Callable[[Any], Any]] = {
    exp.Sum: reducers.sum,
    exp.Avg: reducers.avg,
    exp.Min: reducers.min,
    exp.Max: reducers.max,
}

# SQL type names accepted by CAST, and the Python type each converts to.
_CAST_TYPES: dict[str, type] = {
    "INT": int,
    "INTEGER": int,
    "BIGINT": int,
    "SMALLINT": int,
    "TINYINT": int,
    "FLOAT": float,
    "DOUBLE": float,
    "REAL": float,
    "DECIMAL": float,
    "TEXT": str,
    "VARCHAR": str,
    "CHAR": str,
    "NVARCHAR": str,
    "BOOLEAN": bool,
}


class ExpressionContext:
    """What the leaves of an expression mean where it is evaluated.

    Subclasses override the hooks; the defaults reject the construct with an error naming it.
    """

    def column(self, node: Any) -> Any:
        raise unsupported(node, "column reference here")

    def aggregate(self, node: Any) -> Any:
        raise ValueError(
            f"pw.sql: aggregate function {node.sql()} is not allowed here "
            "(only in SELECT and HAVING)"
        )

    def subquery(self, node: Any) -> Any:
        raise unsupported(node, "subquery here")

    def override(self, node: Any) -> Any | None:
        """A precomputed value for a whole subtree (e.g. a GROUP BY expression), or None."""
        return None


def conjuncts(node: Any) -> list[Any]:
    """The terms of a chain of ANDs (parentheses around it removed)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    return [node]


def is_aggregate(node: Any) -> bool:
    return isinstance(node, exp.AggFunc)


def walk_outside_subqueries(node: Any) -> Iterator[Any]:
    """Every node of ``node``'s tree, without descending into nested queries."""
    yield node
    for child in _children(node):
        if isinstance(child, exp.Subqueryable | exp.Subquery):
            yield child
            continue
        yield from walk_outside_subqueries(child)


def _children(node: Any) -> Iterator[Any]:
    for value in node.args.values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, exp.Expression):
                yield item


def contains_aggregate(node: Any) -> bool:
    return any(is_aggregate(n) for n in walk_outside_subqueries(node))


def literal_value(node: Any) -> Any:
    """The Python value of a SQL literal."""
    if node.is_string:
        return node.this
    text = node.this
    try:
        return int(text)
    except ValueError:
        return float(text)


def _is_null(node: Any) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Null)


def _as_expression(value: Any) -> ColumnExpression:
    return value if isinstance(value, ColumnExpression) else wrap_value(value)


def translate(node: Any, context: ExpressionContext) -> Any:
    """The deltaflow expression (or Python constant) computing ``node``."""
    replaced = context.override(node)
    if replaced is not None:
        return replaced
    handler = _HANDLERS.get(type(node))
    if handler is not None:
        return handler(node, context)
    if is_aggregate(node):
        return context.aggregate(node)
    if isinstance(node, exp.Subquery | exp.Subqueryable | exp.Exists):
        return context.subquery(node)
    raise unsupported(node)


def translate_aggregate(node: Any, argument: Callable[[Any], Any]) -> Any:
    """The reducer computing aggregate ``node``; ``argument`` translates its argument."""
    if isinstance(node, exp.Count):
        inner = node.this
        if inner is None or isinstance(inner, exp.Star):
            return reducers.count()
        if isinstance(inner, exp.Distinct):
            return reducers.count_distinct(*(argument(e) for e in inner.expressions))
        # Pathway's count() counts every row of the group, NULLs included (documented).
        argument(inner)
        return reducers.count()
    reducer = _REDUCERS.get(type(node))
    if reducer is None:
        raise unsupported(node, "aggregate function")
    if isinstance(node.this, exp.Distinct):
        raise unsupported(node, "DISTINCT inside an aggregate other than COUNT")
    return reducer(argument(node.this))


def _binary(operation: Callable[[Any, Any], Any]) -> Callable[[Any, ExpressionContext], Any]:
    def handle(node: Any, context: ExpressionContext) -> Any:
        return operation(translate(node.this, context), translate(node.expression, context))

    return handle


def _comparison(operation: Callable[[Any, Any], Any]) -> Callable[[Any, ExpressionContext], Any]:
    def handle(node: Any, context: ExpressionContext) -> Any:
        if isinstance(node.expression, exp.Any | exp.All):
            return context.subquery(node)  # x < ALL (SELECT ...), x = ANY (SELECT ...)
        if _is_null(node.this) or _is_null(node.expression):
            # A comparison with NULL is never true in SQL: use IS [NOT] NULL instead.
            return wrap_value(False)
        left = _as_expression(translate(node.this, context))
        return operation(left, translate(node.expression, context))

    return handle


def _boolean(operation: Callable[[Any, Any], Any]) -> Callable[[Any, ExpressionContext], Any]:
    def handle(node: Any, context: ExpressionContext) -> Any:
        left = _as_expression(translate(node.this, context))
        return operation(left, _as_expression(translate(node.expression, context)))

    return handle


def _arithmetic(operation: Callable[[Any, Any], Any]) -> Callable[[Any, ExpressionContext], Any]:
    def handle(node: Any, context: ExpressionContext) -> Any:
        left = translate(node.this, context)
        right = translate(node.expression, context)
        if not isinstance(left, ColumnExpression) and not isinstance(right, ColumnExpression):
            left = wrap_value(left)
        return operation(left, right)

    return handle


def _is(node: Any, context: ExpressionContext) -> Any:
    if not _is_null(node.expression):
        raise unsupported(node, "IS with something other than NULL")
    return _as_expression(translate(node.this, context)).is_none()


def _not(node: Any, context: ExpressionContext) -> Any:
    inner = node.this
    if isinstance(inner, exp.Is) and _is_null(inner.expression):
        return _as_expression(translate(inner.this, context)).is_not_none()
    return ~_as_expression(translate(inner, context))


def _between(node: Any, context: ExpressionContext) -> Any:
    value = _as_expression(translate(node.this, context))
    low = translate(node.args["low"], context)
    high = translate(node.args["high"], context)
    return (value >= low) & (value <= high)


def _in(node: Any, context: ExpressionContext) -> Any:
    if node.args.get("query") is not None or node.args.get("unnest") is not None:
        return context.subquery(node)
    options = node.expressions
    if not options:
        raise unsupported(node, "IN with an empty list")
    value = _as_expression(translate(node.this, context))
    result = value == translate(options[0], context)
    for option in options[1:]:
        result = result | (value == translate(option, context))
    return result


def _case(node: Any, context: ExpressionContext) -> Any:
    subject = node.this
    subject_value = None if subject is None else _as_expression(translate(subject, context))
    default = node.args.get("default")
    result = None if default is None else translate(default, context)
    for branch in reversed(node.args.get("ifs") or []):
        condition = translate(branch.this, context)
        if subject_value is not None:
            condition = subject_value == condition
        result = if_else(_as_expression(condition), translate(branch.args["true"], context), result)
    return result


def _if(node: Any, context: ExpressionContext) -> Any:
    false = node.args.get("false")
    return if_else(
        _as_expression(translate(node.this, context)),
        translate(node.args["true"], context),
        None if false is None else translate(false, context),
    )


def _coalesce(node: Any, context: ExpressionContext) -> Any:
    values = [translate(node.this, context)]
    values += [translate(e, context) for e in node.expressions]
    return coalesce(*values)


def _cast(node: Any, context: ExpressionContext) -> Any:
    type_name = node.args["to"].sql().upper().split("(")[0]
    target = _CAST_TYPES.get(type_name)
    if target is None:
        raise unsupported(node, f"CAST to {type_name}")
    return cast(target, translate(node.this, context))


def _string_method(method: str) -> Callable[[Any, ExpressionContext], Any]:
    def handle(node: Any, context: ExpressionContext) -> Any:
        return getattr(_as_expression(translate(node.this, context)).str, method)()

    return handle


def _concat(node: Any, context: ExpressionContext) -> Any:
    parts = [_as_expression(translate(e, context)) for e in node.expressions]
    result = parts[0]
    for part in parts[1:]:
        result = result + part
    return result


def _like(case_sensitive: bool) -> Callable[[Any, ExpressionContext], Any]:
    """``x LIKE 'pattern'``: ``%`` any text, ``_`` one character, the rest literally."""

    def handle(node: Any, context: ExpressionContext) -> Any:
        pattern = node.expression
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            raise unsupported(node, "LIKE with a pattern that is not a string literal")
        regex = "".join(
            ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.this
        )
        compiled = re.compile(regex, re.DOTALL if case_sensitive else re.DOTALL | re.I)

        def matches(text: str | None) -> bool:
            return text is not None and compiled.fullmatch(text) is not None

        return apply_with_type(matches, bool, translate(node.this, context))

    return handle


def _substring(node: Any, context: ExpressionContext) -> Any:
    """``SUBSTRING(x, start[, length])`` with SQL's 1-based start."""
    text = _as_expression(translate(node.this, context))
    start = translate(node.args["start"], context) - 1
    length = node.args.get("length")
    end = None if length is None else start + translate(length, context)
    if end is None:
        end = text.str.len()
    return text.str.slice(start, end)


def _round(node: Any, context: ExpressionContext) -> Any:
    decimals = node.args.get("decimals")
    value = _as_expression(translate(node.this, context))
    return value.num.round(0 if decimals is None else translate(decimals, context))


def _column(node: Any, context: ExpressionContext) -> Any:
    if isinstance(node.this, exp.Star):
        raise unsupported(node, "a star outside the SELECT list")
    return context.column(node)


_HANDLERS: dict[type, Callable[[Any, ExpressionContext], Any]] = {
    exp.Column: _column,
    exp.Literal: lambda node, _: literal_value(node),
    exp.Null: lambda node, _: None,
    exp.Boolean: lambda node, _: bool(node.this),
    exp.Paren: lambda node, context: translate(node.this, context),
    exp.Neg: lambda node, context: -_as_expression(translate(node.this, context)),
    exp.Add: _arithmetic(lambda a, b: a + b),
    exp.Sub: _arithmetic(lambda a, b: a - b),
    exp.Mul: _arithmetic(lambda a, b: a * b),
    exp.Div: _arithmetic(lambda a, b: a / b),
    exp.IntDiv: _arithmetic(lambda a, b: a // b),
    exp.Mod: _arithmetic(lambda a, b: a % b),
    exp.EQ: _comparison(lambda a, b: a == b),
    exp.NEQ: _comparison(lambda a, b: a != b),
    exp.GT: _comparison(lambda a, b: a > b),
    exp.GTE: _comparison(lambda a, b: a >= b),
    exp.LT: _comparison(lambda a, b: a < b),
    exp.LTE: _comparison(lambda a, b: a <= b),
    exp.And: _boolean(lambda a, b: a & b),
    exp.Or: _boolean(lambda a, b: a | b),
    exp.Not: _not,
    exp.Is: _is,
    exp.Between: _between,
    exp.In: _in,
    exp.Case: _case,
    exp.If: _if,
    exp.Coalesce: _coalesce,
    exp.Cast: _cast,
    exp.Abs: lambda node, context: abs(_as_expression(translate(node.this, context))),
    exp.Lower: _string_method("lower"),
    exp.Upper: _string_method("upper"),
    exp.Length: _string_method("len"),
    exp.Concat: _concat,
    exp.DPipe: _boolean(lambda a, b: a + b),
    exp.Like: _like(case_sensitive=True),
    exp.ILike: _like(case_sensitive=False),
    exp.Substring: _substring,
    exp.Round: _round,
}
