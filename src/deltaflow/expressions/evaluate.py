"""Evaluating typed expressions over a Polars frame (the only place expressions run; the
Python nodes through :mod:`.python_nodes`).

Branches are evaluated the way users read them: a Python function (or a division) inside the
branch of ``pw.if_else`` that a row does not take, or inside a ``pw.coalesce`` argument that a
row does not reach, is not computed for that row. Each node gets a *guard* — a boolean
expression telling for which rows its value is used — so that UDFs run only on those rows and
a division by zero is an error only where the quotient is really used (as in Pathway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow import errors
from deltaflow._small_frames import SEQUENTIAL_ROWS, project
from deltaflow.expressions.base import (
    BinaryOp,
    Coalesce,
    ColumnExpression,
    ColumnReference,
    FillError,
    IfElse,
    Literal,
    NoErrors,
    Require,
    Scope,
)
from deltaflow.expressions.numpy_eval import NumpyProjection, compile_numpy
from deltaflow.expressions.python_nodes import run_python_node, run_python_node_keeping_errors

_SHORT_CIRCUIT = ("&", "|")
_UNKNOWN = object()


def scope_bool(scope: Scope, expr: ColumnExpression) -> bool:
    """Whether ``expr`` is a bool (or Optional[bool]) column in ``scope``."""
    return scope.dtype_of(expr).strip_optional() == t.BOOL


def _right_needed(node: BinaryOp, scope: Scope) -> pl.Expr:
    """Rows where ``a & b`` (``a | b``) needs ``b``: where ``a`` is not False (True)."""
    left = node.left.to_polars(scope)
    return left.fill_null(True) if node.op == "&" else ~left.fill_null(False)


def _zero(node: BinaryOp, scope: Scope) -> pl.Expr:
    zero = node.zero_divisor(scope)
    assert zero is not None  # only divisions are checked
    return zero


class CompiledProjection:
    """Named expressions checked against a scope, ready to run on frames of that scope."""

    def __init__(self, scope: Scope, outputs: Sequence[tuple[str, ColumnExpression]]) -> None:
        self.scope = scope
        self.outputs = list(outputs)
        self.types = {name: scope.dtype_of(expr) for name, expr in self.outputs}
        seen: set[int] = set()
        self.python_nodes: list[ColumnExpression] = []
        divisions: list[BinaryOp] = []
        for _, expr in self.outputs:
            for node in expr.walk():
                if id(node) in seen:
                    continue
                seen.add(id(node))
                if node.computed_in_python(scope):
                    self.python_nodes.append(node)
                elif isinstance(node, BinaryOp) and node.zero_divisor(scope) is not None:
                    divisions.append(node)
        for node in self.python_nodes:
            scope.python_columns[id(node)] = f"__py{node._uid}"
        self._guards: dict[int, pl.Expr | None] = {}
        for _, expr in self.outputs:
            self._assign_guards(expr, None)
        # Everything compiled once, here: running a projection costs only Polars calls.
        self._python_args = [
            [c.to_polars(scope).alias(f"__arg{i}") for i, c in enumerate(node.children())]
            for node in self.python_nodes
        ]
        self._python_guards = [self._guards.get(id(node)) for node in self.python_nodes]
        self._division_checks = [
            (node, _and(self._guards.get(id(node)), _zero(node, scope))) for node in divisions
        ]
        self._final = [self._cast(name, expr) for name, expr in self.outputs]
        self._divisions = divisions
        self._error_plan: _ErrorPlan | None = None  # built when a run keeps errors
        self.error_policy: ErrorPolicy | None = None
        # Per input layout: the input column each output copies, or None (see copies()).
        self._copies: dict[tuple[str, ...], list[tuple[str, str]] | None] = {}
        # Per input layout: the outputs' NumPy form, or None (see numpy_outputs()).
        self._numpy: dict[tuple[str, ...], NumpyProjection | None] = {}

    # --- pickling (a graph carried into another process, see deltaflow._fork) -------------
    # What the constructor derived is keyed by the expressions' ids, which do not survive
    # pickling: a copy keeps what it was built from and compiles again when first used (not
    # while unpickling, when the tables its scope resolves through may not be whole yet).
    def __getstate__(self) -> dict[str, Any]:
        return {"_built_from": (self.scope, self.outputs, self.error_policy)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __getattr__(self, name: str) -> Any:
        built_from = self.__dict__.get("_built_from")
        if built_from is None or name.startswith("__"):
            raise AttributeError(name)
        del self.__dict__["_built_from"]
        scope, outputs, policy = built_from
        CompiledProjection.__init__(self, scope, outputs)
        self.error_policy = policy
        return getattr(self, name)

    def set_error_policy(
        self,
        keys: Sequence[str],
        key_message: str,
        other_message: str | None = None,
        carry: errors.CarriedErrors | None = None,
        *,
        flag_others: bool = False,
    ) -> None:
        """Make this projection (the key/argument projection of a stateful operator) hand on
        no error cells: rows with an error in ``keys`` are left out and reported with
        ``key_message``; rows with errors in the other outputs are left out the same way with
        ``other_message`` (an empty one: not reported), or, when it is None, the errors
        become nulls. With ``carry``, errors in the other outputs are kept there instead (by
        row id), for the operator to put back into its output. With ``flag_others``, errors
        in the other outputs become nulls and each such column gets a boolean column
        :func:`error_flag` marking its error cells."""
        self.error_policy = ErrorPolicy(
            list(keys), key_message, other_message, carry, flag_others=flag_others
        )

    # --- compile-time helpers ------------------------------------------------------------
    def _assign_guards(self, node: ColumnExpression, guard: pl.Expr | None) -> None:
        key = id(node)
        if key in self._guards:
            previous = self._guards[key]
            # Used in several places: needed wherever any of them needs it.
            guard = None if previous is None or guard is None else previous | guard
        self._guards[key] = guard
        if isinstance(node, IfElse):
            condition = node.cond.to_polars(self.scope).fill_null(False)
            self._assign_guards(node.cond, guard)
            self._assign_guards(node.then, _and(guard, condition))
            self._assign_guards(node.otherwise, _and(guard, ~condition))
        elif isinstance(node, Coalesce):
            reached = guard
            for arg in node.args:
                self._assign_guards(arg, reached)
                reached = _and(reached, arg.to_polars(self.scope).is_null())
        elif (
            isinstance(node, BinaryOp)
            and node.op in _SHORT_CIRCUIT
            and scope_bool(self.scope, node.left)
        ):
            # a & b needs b only where a is not False; a | b only where a is not True (a None
            # a still needs b: Kleene logic), so a division in b is not checked elsewhere.
            self._assign_guards(node.left, guard)
            self._assign_guards(node.right, _and(guard, _right_needed(node, self.scope)))
        elif isinstance(node, Require):
            for dep in node.deps:
                self._assign_guards(dep, guard)
            present = [d.to_polars(self.scope).is_not_null() for d in node.deps]
            self._assign_guards(
                node.value, _and(guard, pl.all_horizontal(present)) if present else guard
            )
        else:
            for child in node.children():
                self._assign_guards(child, guard)

    def _cast(self, name: str, expr: ColumnExpression) -> pl.Expr:
        compiled = expr.to_polars(self.scope)
        target = self.types[name].to_polars()
        if target != pl.Object:
            compiled = compiled.cast(target)
        return compiled.alias(name)

    def pure_exprs(self) -> dict[str, pl.Expr] | None:
        """The outputs as Polars expressions over the input frame (to fuse into one call), or
        None when running needs more than evaluating them: Python nodes computed first or
        divisions checked for zeros; then only :meth:`run` will do."""
        if self.python_nodes or self._division_checks:
            return None
        if self.error_policy is not None and errors.keeps_errors():
            return None  # only run() applies the policy
        return {name: expr for (name, _), expr in zip(self.outputs, self._final, strict=True)}

    def unchecked_exprs(self) -> dict[str, pl.Expr] | None:
        """The outputs as Polars expressions, divisions unchecked, or None with Python nodes:
        wherever :meth:`run` gives values these give the same (a zero divisor makes ``run``
        fail or give an Error, and these some value). For finding a row's key cheaply, e.g.
        the worker owning it, when the projection itself runs elsewhere."""
        if self.python_nodes:
            return None
        return {name: expr for (name, _), expr in zip(self.outputs, self._final, strict=True)}

    def copies(self, frame: pl.DataFrame) -> list[tuple[str, str]] | None:
        """``(output, input column)`` pairs when every output is an input column as it is
        (a rename or a choice of columns), else None: such a projection needs no query, only
        the input's Series under new names. Decided once per input layout (the column types
        of an operator's input are fixed by the plan; frames holding error cells do not
        come here)."""
        key = tuple(frame.columns)
        found = self._copies.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = self._copies[key] = self._find_copies(frame.schema)
        return found  # type: ignore[return-value]

    def _find_copies(self, schema: pl.Schema) -> list[tuple[str, str]] | None:
        if self.pure_exprs() is None:
            return None
        pairs = []
        for name, expr in self.outputs:
            compiled = expr.to_polars(self.scope)
            if not compiled.meta.is_column():
                return None
            source = compiled.meta.output_name()
            target = self.types[name].to_polars()
            if source not in schema or (target != pl.Object and schema[source] != target):
                return None
            pairs.append((name, source))
        return pairs

    def numpy_outputs(self, frame: pl.DataFrame) -> list[pl.Series] | None:
        """The outputs computed with NumPy (see numpy_eval) when ``frame`` is small, holds no
        error cells and every output is simple arithmetic over its columns; else None (a
        Polars query is needed)."""
        if frame.height > SEQUENTIAL_ROWS or errors.frame_has_errors(frame):
            return None
        key = tuple(frame.columns)
        if key not in self._numpy:
            self._numpy[key] = (
                compile_numpy(self.scope, self.outputs, self.types, frame.schema)
                if self.pure_exprs() is not None
                else None
            )
        program = self._numpy[key]
        return None if program is None else program.run(frame)

    # --- running ------------------------------------------------------------------------------
    def run(self, frame: pl.DataFrame, keep: Sequence[str] = ()) -> pl.DataFrame:
        """Compute the outputs for every row of ``frame``; ``keep`` columns are passed through.

        In a run with ``terminate_on_error=False`` failures become error cells (see
        :meth:`_run_keeping_errors`); otherwise the first failure raises."""
        if errors.keeps_errors():
            return self._run_keeping_errors(frame, keep)
        work = frame
        for node, arg_exprs, guard in zip(
            self.python_nodes, self._python_args, self._python_guards, strict=True
        ):
            column = run_python_node(work, node, self.scope.dtype_of(node), arg_exprs, guard)
            work = work.with_columns(column.alias(self.scope.python_columns[id(node)]))
        if self._division_checks:
            self._check_divisions(work)
        names = [name for name, _ in self.outputs]
        if not names:
            return work.select(list(keep))
        if self._keep_apart(keep):
            return project(work, [*keep, *self._final])  # one query, not two
        return work.with_columns(self._final).select([*keep, *names])

    def _keep_apart(self, keep: Sequence[str]) -> bool:
        """Whether no output is named like a passed-through column (then one ``select`` of
        both computes what ``with_columns`` + ``select`` would)."""
        return not any(name in keep for name, _ in self.outputs)

    # --- running with errors as values -------------------------------------------------------
    def _run_keeping_errors(self, frame: pl.DataFrame, keep: Sequence[str]) -> pl.DataFrame:
        """Like :meth:`run`, with failures as error cells: input error cells are nulled (and
        their columns restored to their dtype) with a mask column beside each; every node's
        error mask is a Polars expression over those masks (:class:`_ErrorPlan`); Python
        nodes skip rows whose arguments are errors and catch per-row failures; outputs whose
        mask has a true cell become object columns holding :data:`errors.ERROR` there."""
        plan = self._error_plan or self._build_error_plan()
        work, masks = errors.clean_frame(frame, plan.input_types)
        work = work.with_columns(
            [
                (masks[column] if column in masks else pl.lit(False)).alias(_error_column(column))
                for column in plan.input_types
            ]
        )
        for node, arg_exprs, guard in zip(
            self.python_nodes, self._python_args, self._python_guards, strict=True
        ):
            child_errors = plan.child_errors[id(node)]
            values, failed = run_python_node_keeping_errors(
                work, node, self.scope.dtype_of(node), arg_exprs, guard, child_errors
            )
            node_errors = (
                failed
                if child_errors is None
                else work.select(child_errors.fill_null(False)).to_series() | failed
            )
            work = work.with_columns(
                values.alias(self.scope.python_columns[id(node)]),
                node_errors.alias(f"__pyerr{node._uid}"),
            )
        for _node, zero in plan.division_reports:
            count = work.select(zero.fill_null(False).sum()).item()
            errors.report("division by zero", count=count)
        names = [name for name, _ in self.outputs]
        if not names:
            return work.select(list(keep))
        flags = [
            (name, f"__errout{i}", expr.fill_null(False).alias(f"__errout{i}"))
            for i, (name, expr) in enumerate(plan.output_errors)
            if expr is not None
        ]
        out = work.with_columns([*plan.final, *(e for _, _, e in flags)])
        result = out.select([*keep, *names])
        replaced = []
        for name, flag, _ in flags:
            mask = out[flag]
            if mask.any():
                replaced.append(errors.with_errors(result[name], mask))
        if replaced:
            errors.mark_seen()
            result = result.with_columns(replaced)
        policy = self.error_policy
        if policy is not None and (replaced or (policy.carry is not None and policy.carry.active)):
            result = self._apply_error_policy(result, [c.name for c in replaced])
        return result

    def _apply_error_policy(self, result: pl.DataFrame, replaced: Sequence[str]) -> pl.DataFrame:
        """Leave out (or null) the error cells of the columns in ``replaced`` as the policy
        says; those columns then get their own dtype back."""
        policy = self.error_policy
        assert policy is not None
        others = [name for name, _ in self.outputs if name not in policy.keys]
        if policy.flag_others:
            result = _drop_error_rows(result, policy.keys, policy.key_message)
            masks = errors.error_columns(result, others)
            if masks:
                result = result.with_columns(
                    [mask.alias(error_flag(name)) for name, mask in masks.items()]
                )
            return _restored(result, replaced, self.types)
        if policy.stash is not None and policy.carry is not None:
            # Rows whose key is an error match nothing but are kept (an outer side's
            # unmatched rows): their value errors are carried like the others'.
            result = policy.carry.strip(result, others)
            mask = errors.row_has_error_mask(result, policy.keys)
            if mask is not None:
                errors.report(policy.key_message, count=int(mask.sum()))
                policy.stash.append(_restored(result.filter(mask), replaced, self.types))
                result = result.filter(~mask)
            return _restored(result, replaced, self.types)
        result = _drop_error_rows(result, policy.keys, policy.key_message)
        if policy.carry is not None:
            result = policy.carry.strip(result, others)
        elif policy.other_message is not None:
            result = _drop_error_rows(result, others, policy.other_message)
        return _restored(result, replaced, self.types)

    def _build_error_plan(self) -> _ErrorPlan:
        plan = _ErrorPlan(self)
        self._error_plan = plan
        return plan

    def _check_divisions(self, work: pl.DataFrame) -> None:
        flags = work.select(
            [
                check.fill_null(False).any().alias(f"d{i}")
                for i, (_, check) in enumerate(self._division_checks)
            ]
        ).row(0)
        for flag, (node, check) in zip(flags, self._division_checks, strict=True):
            if flag:
                row = work.filter(check.fill_null(False)).head(1)
                shown = {c: v for c, v in row.row(0, named=True).items() if not c.startswith("_")}
                raise ZeroDivisionError(
                    f"{self.scope.description}: division by zero in "
                    f"{node._describe()} (row {shown})"
                )


class ErrorPolicy:
    """What a stateful operator's key projection does with error cells (see
    :meth:`CompiledProjection.set_error_policy`)."""

    def __init__(
        self,
        keys: list[str],
        key_message: str,
        other_message: str | None,
        carry: errors.CarriedErrors | None = None,
        *,
        flag_others: bool = False,
    ) -> None:
        self.keys = keys
        self.key_message = key_message
        self.other_message = other_message
        self.carry = carry
        self.flag_others = flag_others
        # Set by an outer join's operator for a side whose unmatched rows it keeps: the
        # prepared rows whose key is an error, for it to emit as unmatched rows.
        self.stash: list[pl.DataFrame] | None = None


def error_flag(column: str) -> str:
    """The name of the boolean column marking the error cells of ``column`` (see
    :meth:`CompiledProjection.set_error_policy`)."""
    return f"__err:{column}"


def _restored(frame: pl.DataFrame, names: Sequence[str], types: dict[str, t.DType]) -> pl.DataFrame:
    """``frame`` with the columns ``names`` (error cells nulled) back to their dtypes."""
    return frame.with_columns(
        [errors.without_errors(frame[name], types[name].to_polars()) for name in names]
    )


def _drop_error_rows(frame: pl.DataFrame, names: Sequence[str], message: str) -> pl.DataFrame:
    """``frame`` without the rows holding an error in ``names``; each reported with
    ``message`` unless it is empty."""
    mask = errors.row_has_error_mask(frame, names)
    if mask is None:
        return frame
    if message:
        errors.report(message, count=int(mask.sum()))
    return frame.filter(~mask)


class _ErrorPlan:
    """The error masks of a projection's nodes, as Polars expressions over the cleaned frame
    (built once, the first time the projection runs keeping errors).

    A node is an error where one of its inputs is, except: ``pw.fill_error`` (the
    replacement's mask where its argument is an error), ``pw.if_else`` (the condition's, or
    the taken branch's), ``pw.coalesce`` (an argument's, where the arguments before it are
    None), ``pw.require`` (the value's only where every dependency is present), the
    ``remove_errors`` test (never); a division adds the rows dividing by zero, a Python node
    its own failures (``__pyerr`` columns)."""

    def __init__(self, projection: CompiledProjection) -> None:
        scope = projection.scope
        self.scope = scope
        self.input_types: dict[str, pl.DataType] = {}
        self.node_errors: dict[int, pl.Expr | None] = {}
        self.child_errors: dict[int, pl.Expr | None] = {}
        python = {id(n) for n in projection.python_nodes}
        divisions = {id(n) for n in projection._divisions}
        for _, expr in projection.outputs:
            for node in expr.walk():
                if id(node) not in self.node_errors:
                    self.node_errors[id(node)] = self._node_errors(node, python, divisions)
        self.division_reports: list[tuple[ColumnExpression, pl.Expr]] = []
        for node in projection._divisions:
            own = _and(projection._guards.get(id(node)), _zero(node, scope))
            child = self.child_errors[id(node)]
            self.division_reports.append((node, own if child is None else own & ~child))
        self.output_errors = [
            (name, self.node_errors[id(expr)]) for name, expr in projection.outputs
        ]
        scope.error_exprs = self.node_errors
        try:
            self.final = [projection._cast(name, expr) for name, expr in projection.outputs]
        finally:
            scope.error_exprs = None

    def _node_errors(
        self, node: ColumnExpression, python: set[int], divisions: set[int]
    ) -> pl.Expr | None:
        scope = self.scope
        if isinstance(node, ColumnReference) and id(node) not in python:
            column, dtype = scope.resolve(node)
            self.input_types[column] = dtype.to_polars()
            return pl.col(_error_column(column))
        reducer_columns = getattr(scope, "reducer_columns", None)
        if reducer_columns is not None and id(node) in reducer_columns:
            # A reducer's value in a reduce's output projection: a column of the group rows
            # (an Error where the reducer failed).
            column = reducer_columns[id(node)]
            self.input_types[column] = scope.dtype_of(node).to_polars()
            return pl.col(_error_column(column))
        structural = self._structural_errors(node, divisions)
        if id(node) in python:
            # Computed row by row: rows whose inputs make it an error are skipped (an
            # if_else/coalesce computed in Python only for the branches it takes); its own
            # failures are added by the evaluator.
            self.child_errors[id(node)] = structural
            return pl.col(f"__pyerr{node._uid}")
        return structural

    def _structural_errors(self, node: ColumnExpression, divisions: set[int]) -> pl.Expr | None:
        """The node's error mask from its children's (and, for a division, its zeros)."""
        scope = self.scope
        children = [self.node_errors[id(c)] for c in node.children()]
        self.child_errors[id(node)] = _any(children)
        if isinstance(node, Literal | NoErrors):
            return None
        if isinstance(node, FillError):
            arg, replacement = children
            if arg is None:
                return None
            return None if replacement is None else arg & replacement
        if isinstance(node, IfElse):
            cond_err, then_err, else_err = children
            condition = node.cond.to_polars(scope).fill_null(False)
            return _any(
                [
                    cond_err,
                    None if then_err is None else condition & then_err,
                    None if else_err is None else ~condition & else_err,
                ]
            )
        if isinstance(node, Coalesce):
            parts: list[pl.Expr | None] = []
            reached: pl.Expr | None = None
            for operand, arg_err in zip(node.args, children, strict=True):
                if arg_err is not None:
                    parts.append(arg_err if reached is None else reached & arg_err)
                missing = operand.to_polars(scope).is_null()
                reached = missing if reached is None else reached & missing
            return _any(parts)
        if (
            isinstance(node, BinaryOp)
            and node.op in _SHORT_CIRCUIT
            and scope_bool(scope, node.left)
        ):
            left_err, right_err = children
            needed = _right_needed(node, scope)
            return _any([left_err, None if right_err is None else needed & right_err])
        if isinstance(node, Require):
            value_err, *dep_errs = children
            present = [d.to_polars(scope).is_not_null() for d in node.deps]
            gated = (
                value_err
                if value_err is None or not present
                else value_err & pl.all_horizontal(present)
            )
            return _any([gated, *dep_errs])
        own = _any(children)
        if id(node) in divisions:
            zero = _zero(node, scope)  # type: ignore[arg-type]
            return zero if own is None else own | zero
        return own


def _any(masks: Sequence[pl.Expr | None]) -> pl.Expr | None:
    present = [m for m in masks if m is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else pl.any_horizontal(present)


def _error_column(column: str) -> str:
    return f"__err:{column}"


def _and(guard: pl.Expr | None, condition: pl.Expr) -> pl.Expr:
    return condition if guard is None else guard & condition
