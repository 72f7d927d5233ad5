"""Evaluating typed expressions over a Polars frame (the only place expressions run)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from deltaflow.expressions.base import ColumnExpression, PythonNode, Scope


class CompiledProjection:
    """Named expressions checked against a scope, ready to run on frames of that scope."""

    def __init__(self, scope: Scope, outputs: Sequence[tuple[str, ColumnExpression]]) -> None:
        self.scope = scope
        self.outputs = list(outputs)
        self.types = {name: scope.dtype_of(expr) for name, expr in self.outputs}
        seen: set[int] = set()
        self.python_nodes: list[PythonNode] = []
        for _, expr in self.outputs:
            for node in expr.walk():
                if node._python_node and id(node) not in seen:
                    seen.add(id(node))
                    self.python_nodes.append(node)  # type: ignore[arg-type]
        for node in self.python_nodes:
            scope.python_columns[id(node)] = f"__py{node._uid}"
        self._final = [self._cast(name, expr) for name, expr in self.outputs]

    def _cast(self, name: str, expr: ColumnExpression) -> pl.Expr:
        compiled = expr.to_polars(self.scope)
        target = self.types[name].to_polars()
        if target != pl.Object:
            compiled = compiled.cast(target)
        return compiled.alias(name)

    def run(self, frame: pl.DataFrame, keep: Sequence[str] = ()) -> pl.DataFrame:
        """Compute the outputs for every row of ``frame``; ``keep`` columns are passed through."""
        work = frame
        for node in self.python_nodes:
            children = node.children()
            if children:
                names = [f"__arg{i}" for i in range(len(children))]
                args_frame = work.with_columns(
                    [c.to_polars(self.scope).alias(n) for c, n in zip(children, names, strict=True)]
                ).select(names)
                args = [args_frame[n] for n in names]
            else:
                args = []
            column = node.compute(args, work.height, self.scope.dtype_of(node))
            work = work.with_columns(column.alias(self.scope.python_columns[id(node)]))
        names = [name for name, _ in self.outputs]
        result = work.with_columns(self._final).select([*keep, *names]) if names \
            else work.select(list(keep))
        return result
