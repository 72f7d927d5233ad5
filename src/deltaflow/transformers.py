"""``pw.table_transformer``: check the schemas of a function's table arguments and result.

A function whose parameters (or return value) are annotated ``pw.Table[Schema]`` gets, once
decorated, a check on every call: each such argument's schema must match ``Schema`` (as
``Schema.assert_matches_schema`` tells), else ``AssertionError`` names the parameter. The
options can be one value for all or a mapping from parameter names (``"return"`` for the
result) to values; names not in the mapping get the default ``True``.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from deltaflow.schema import Schema, SchemaMetaclass
from deltaflow.table import Table

__all__ = ["table_transformer"]

F = TypeVar("F", bound=Callable[..., Any])
_OPTIONS = ("allow_superset", "ignore_primary_keys", "allow_subtype")


def _expected_schema(annotation: Any) -> type[Schema] | None:
    """The schema of a ``pw.Table[Schema]`` annotation (also inside ``Optional``)."""
    if typing.get_origin(annotation) is Table:
        args = typing.get_args(annotation)
        if len(args) == 1 and isinstance(args[0], tuple):  # re-subscripted by get_type_hints
            args = args[0]
        if len(args) == 1 and isinstance(args[0], SchemaMetaclass):
            return cast("type[Schema]", args[0])  # classes of that metaclass are Schemas
        return None
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [s for s in map(_expected_schema, typing.get_args(annotation)) if s]
        return found[0] if len(found) == 1 else None
    return None


def _option(value: bool | Mapping[str, bool], name: str, option: str, function: str) -> bool:
    if isinstance(value, Mapping):
        chosen = value.get(name, True)
    else:
        chosen = value
    if not isinstance(chosen, bool):
        raise TypeError(
            f"table_transformer on {function}: {option} must be a bool or a "
            f"mapping of parameter names to bools, got {chosen!r}"
        )
    return chosen


def _check(
    value: Any,
    schema: type[Schema],
    name: str,
    function: str,
    options: dict[str, bool | Mapping[str, bool]],
) -> None:
    if value is None or not isinstance(value, Table):
        return
    what = "the result" if name == "return" else f"argument {name!r}"
    try:
        value.schema.assert_matches_schema(
            schema, **{o: _option(options[o], name, o, function) for o in _OPTIONS}
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{function}: {what} does not match schema {schema.__name__}: {exc}"
        ) from None


def table_transformer(
    func: Callable[..., Any] | None = None,
    *,
    allow_superset: bool | Mapping[str, bool] = True,
    ignore_primary_keys: bool | Mapping[str, bool] = True,
    allow_subtype: bool | Mapping[str, bool] = True,
    locals: dict[str, Any] | None = None,  # noqa: A002 (Pathway's name)
) -> Any:
    """Decorate ``func`` so that its ``pw.Table[Schema]`` arguments and result are checked
    against their schemas on each call (``AssertionError`` when one does not match).

    Usable bare (``@pw.table_transformer``) or with options. ``locals`` resolves annotations
    written as strings that name local classes (``from __future__ import annotations``).
    """
    options: dict[str, bool | Mapping[str, bool]] = {
        "allow_superset": allow_superset,
        "ignore_primary_keys": ignore_primary_keys,
        "allow_subtype": allow_subtype,
    }

    def decorate(function: F) -> F:
        if not callable(function):
            raise TypeError(f"table_transformer decorates functions, not {type(function).__name__}")
        label = getattr(function, "__qualname__", repr(function))
        signature = inspect.signature(function)
        try:
            hints = typing.get_type_hints(function, localns=locals)
        except Exception as exc:  # noqa: BLE001 - an annotation that does not resolve
            raise TypeError(
                f"table_transformer on {label}: cannot resolve its annotations "
                f"({exc}); pass locals=locals() for local classes"
            ) from None
        expected = {
            name: schema
            for name, hint in hints.items()
            if (schema := _expected_schema(hint)) is not None
        }

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            for name, value in bound.arguments.items():
                if name in expected:
                    _check(value, expected[name], name, label, options)
            result = function(*args, **kwargs)
            if "return" in expected:
                _check(result, expected["return"], "return", label, options)
            return result

        return typing.cast(F, checked)

    return decorate if func is None else decorate(func)
