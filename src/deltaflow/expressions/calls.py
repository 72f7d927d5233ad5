"""Function and method calls: ``pw.apply`` / UDFs (:class:`Apply`, :class:`UdfError`) and
the methods of the ``.str``/``.dt``/``.num`` namespaces (in Polars or in Python per row)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NoReturn

import polars as pl

from deltaflow import _types as t
from deltaflow.errors import EngineError
from deltaflow.expressions.core import ColumnExpression, PythonNode, Scope, wrap_value


class Apply(PythonNode):
    """A Python function applied to every row (``pw.apply``, ``@pw.udf``).

    How the calls are made (executor, cache, batches) is decided by ``options`` (built by
    :mod:`deltaflow.udfs`; None for a plain synchronous call); the evaluation itself lives in
    :mod:`deltaflow.udfs.evaluation`. A row whose call failed is turned into an error in one
    place, :meth:`fail`.
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        return_type: Any = None,
        *,
        propagate_none: bool = False,
        deterministic: bool = False,
        name: str | None = None,
        options: Any = None,
    ) -> None:
        super().__init__()
        self.fun = fun
        self.args = tuple(wrap_value(a) for a in args)
        self.kwarg_names = tuple(kwargs)
        self.kwargs = tuple(wrap_value(v) for v in kwargs.values())
        self.return_type = None if return_type is None else t.wrap(return_type)
        self.propagate_none = propagate_none
        self.deterministic = deterministic
        self.label: str = name or str(getattr(fun, "__name__", repr(fun)))
        self.options = options  # a deltaflow.udfs.evaluation.CallOptions, or None
        # Whether arguments may be Future columns: set for fully asynchronous UDFs, whose
        # calls may take another's result.
        self.accepts_futures = False
        # Set by deltaflow.column_properties when every argument is an append-only column
        # (None: not decided): a row id's value is then computed once and kept.
        self.keeps_values_forever: bool | None = None

    def children(self) -> tuple[ColumnExpression, ...]:
        return (*self.args, *self.kwargs)

    def _infer(self, scope: Scope) -> t.DType:
        arg_types = [scope.dtype_of(c) for c in self.children()]
        if self.return_type is not None:
            result = self.return_type
        else:
            result = _annotated_return(self.fun)
        if self.propagate_none and any(a.is_optional for a in arg_types):
            if getattr(result, "is_future", False):  # Future[T] -> Future[Optional[T]]
                # A FutureType, not imported here: deltaflow.udfs.future imports this module.
                future: Any = result
                return type(future)(t.optional(future.wrapped))
            result = t.optional(result)
        return result

    def compute_rows(
        self, args: list[pl.Series], size: int, dtype: t.DType, ids: pl.Series, diffs: pl.Series
    ) -> pl.Series:
        """:meth:`compute` knowing each row's id and diff: the value a non-deterministic
        function gave a row is remembered, and its deletion retracts that same value."""
        from deltaflow.udfs.evaluation import compute_with_rows

        return compute_with_rows(self, args, size, dtype, ids, diffs)

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        from deltaflow.udfs.evaluation import evaluate

        results, failures = evaluate(self, args, size)
        if failures:
            from deltaflow import errors

            if not errors.keeps_errors():
                self.fail(args, failures)
            for row in sorted(failures):  # terminate_on_error=False: error values
                results[row] = errors.on_failure(errors.exception_message(failures[row]))
        return results

    def fail(self, args: list[list[Any]], failures: dict[int, BaseException]) -> NoReturn:
        """What a failed call becomes (``failures``: exceptions by row): today the run stops
        with a :class:`UdfError` naming the function and the first failed row."""
        row = min(failures)
        values = [column[row] for column in args]
        positional = len(self.args)
        kwargs = dict(zip(self.kwarg_names, values[positional:], strict=True))
        error = failures[row]
        raise UdfError.wrapping(self.label, values[:positional], kwargs, error) from error


class UdfError(EngineError):
    """A user function raised while the pipeline ran; names the function and the row.

    Raised as an instance of a subclass that also derives from the type of the original
    exception, so that ``except ZeroDivisionError`` (what Pathway raises) catches it too.
    """

    _subclasses: ClassVar[dict[type[BaseException], type[UdfError]]] = {}

    def __init__(
        self, name: str, args: list[Any], kwargs: dict[str, Any], error: BaseException
    ) -> None:
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        self.message = (
            f"function {name!r} failed on arguments ({shown}): {type(error).__name__}: {error}"
        )
        RuntimeError.__init__(self, self.message)
        self.function = name
        self.error = error

    def __str__(self) -> str:
        return self.message

    @classmethod
    def wrapping(
        cls, name: str, args: list[Any], kwargs: dict[str, Any], error: BaseException
    ) -> UdfError:
        """The error to raise for ``error``: a UdfError that is also a ``type(error)``."""
        kind = type(error)
        subclass = cls._subclasses.get(kind)
        if subclass is None and not issubclass(kind, UdfError):
            try:
                subclass = type(
                    f"UdfError[{kind.__name__}]", (cls, kind), {"__module__": cls.__module__}
                )
            except TypeError:  # an exception type that cannot be mixed in
                subclass = cls
            cls._subclasses[kind] = subclass
        try:
            return (subclass or cls)(name, args, kwargs, error)
        except Exception:  # noqa: BLE001 - a mixed-in type with an unusual constructor
            return cls(name, args, kwargs, error)


def _annotated_return(fun: Callable[..., Any]) -> t.DType:
    import inspect
    import typing

    if isinstance(fun, type):  # a class (pw.apply(float, ...)) makes values of that class
        try:
            return t.wrap(fun)
        except TypeError:
            return t.ANY
    target = fun
    if not inspect.isfunction(target) and not inspect.ismethod(target):
        target = getattr(fun, "__call__", fun)  # noqa: B004
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - any unresolvable annotation means: type unknown
        return t.ANY
    if "return" not in hints:
        return t.ANY
    try:
        return t.wrap(hints["return"])
    except TypeError:
        return t.ANY


class MethodCall(ColumnExpression):
    """A method of the ``.str``/``.dt``/``.num`` namespaces.

    ``type_rule(scope, arg_types) -> result type`` checks arguments; ``build(args, arg_types)``
    builds the Polars expression from the compiled arguments.
    """

    def __init__(
        self,
        name: str,
        args: tuple[ColumnExpression, ...],
        type_rule: Callable[[Scope, list[t.DType]], t.DType],
        build: Callable[[list[pl.Expr], list[t.DType]], pl.Expr],
    ) -> None:
        super().__init__()
        self.name = name
        self.args = args
        self.type_rule = type_rule
        self.build = build

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        return self.type_rule(scope, [scope.dtype_of(a) for a in self.args])

    def _polars(self, scope: Scope) -> pl.Expr:
        return self.build(
            [a.to_polars(scope) for a in self.args], [scope.dtype_of(a) for a in self.args]
        )


class PythonMethodCall(PythonNode):
    """A namespace method computed in Python per row (when Polars has no equivalent)."""

    def __init__(
        self,
        name: str,
        args: tuple[ColumnExpression, ...],
        type_rule: Callable[[Scope, list[t.DType]], t.DType],
        fun: Callable[..., Any],
    ) -> None:
        super().__init__()
        self.label = name
        self.args = args
        self.type_rule = type_rule
        self.fun = fun

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        return self.type_rule(scope, [scope.dtype_of(a) for a in self.args])

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        out = []
        for row in range(size):
            values = [column[row] for column in args]
            out.append(None if values[0] is None else self.fun(*values))
        return out
