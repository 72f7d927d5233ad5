"""Type rules shared by expression nodes that depend only on their operands' types: the
type of an item (``expr[index]``, ``expr.get(index, default)``), the type of a JSON value
converted by ``.as_int()`` and its siblings, and the common type of two branches
(``pw.if_else``, ``pw.coalesce``). The nodes themselves are in :mod:`.core` and
:mod:`.conditionals`; a rule that fails raises ``scope.fail(...)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from deltaflow import _types as t
from deltaflow.error_display import user_stacklevel

if TYPE_CHECKING:
    from deltaflow.expressions.scope import Scope


def merge_types(a: t.DType, b: t.DType) -> t.DType | None:
    """The common type of two values one expression may take (None when there is none); a
    None literal (``Optional[Any]``) makes the other side optional."""
    if a == t.Optional(t.ANY):
        return t.optional(b)
    if b == t.Optional(t.ANY):
        return t.optional(a)
    return t.common_supertype(a, b)


def item_type(
    scope: Scope,
    container: t.DType,
    default: Callable[[], t.DType],
    constant_index: int | None,
    checked: bool,
) -> t.DType:
    """The type of an item of a ``container`` value: ``expr[index]`` when ``checked``, else
    ``expr.get(index, default)`` (``default`` gives the default's type, asked only when it
    matters); ``constant_index`` is the index when it is an int literal."""
    base = container.strip_optional()
    if base == t.JSON:
        if container.is_optional:
            raise scope.fail(f"Cannot get from {t.Json | None}.")
        if checked:
            return t.JSON
        default_type = default()
        if default_type.strip_optional() not in (t.JSON, t.ANY) and default_type != t.NONE:
            raise scope.fail(
                f"Default must be of type {t.Json | None}, found "
                f"{default_type.strip_optional().typehint}."
            )
        return (
            t.JSON
            if default_type.strip_optional() == t.JSON and not default_type.is_optional
            else t.Optional(t.JSON)
        )
    if isinstance(base, t.Tuple):
        return _tuple_item_type(scope, container, base, default, constant_index, checked)
    if isinstance(base, t.List):
        return base.arg if checked else t.optional(base.arg)
    if isinstance(base, t.Array):
        return base.element()  # .get() on arrays keeps the element type, as in Pathway
    if base == t.ANY:
        return t.ANY
    if base in (t.STR,):
        return t.STR
    raise scope.fail(f"values of type {container!r} cannot be indexed")


def _tuple_item_type(
    scope: Scope,
    container: t.DType,
    base: t.Tuple,
    default: Callable[[], t.DType],
    constant_index: int | None,
    checked: bool,
) -> t.DType:
    """The type of an item of a tuple: the element at a constant index, the common type
    of the elements at a computed one (Any when they differ)."""
    default_type = default()
    if constant_index is not None:
        index = constant_index
        if -len(base.args) <= index < len(base.args):
            return base.args[index]
        where = f"{scope.description}: index {index} is out of range for {container!r}"
        if checked:
            # Known when the pipeline is defined: an IndexError, as Python would raise.
            raise IndexError(where)
        warnings.warn(
            f"{where}; .get() always gives the default here, write the default alone",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return default_type
    items = set(base.args)
    if len(items) != 1:
        return t.ANY
    (item,) = items
    if checked:
        return item
    merged = merge_types(item, default_type)
    return t.ANY if merged is None else merged


def json_conversion_type(
    scope: Scope,
    label: str,
    arg: object,
    source: t.DType,
    target: t.DType,
    unwrap: bool,
    default_type: Callable[[], t.DType],
    default_is_none: bool,
) -> t.DType:
    """The type ``.as_int()`` / ``.as_float()`` / ``.as_str()`` / ``.as_bool()`` (``label``)
    of ``arg``, a ``source`` column, gives: ``target``, optional unless ``unwrap`` or a
    default that cannot be None (``default_type`` gives the default's type, asked once the
    source is known to fit; ``default_is_none``: the default is the literal None)."""
    if source.strip_optional() not in (t.JSON, t.ANY):
        raise scope.fail(
            f"{label}({arg!r}) can only be applied to JSON columns, "
            f"but column has type {source.typehint}."
        )
    default = default_type()
    if (
        default.strip_optional() not in (t.ANY,)
        and not default_is_none
        and not t.is_subtype(default.strip_optional(), target)
    ):
        raise scope.fail(
            f"type of default {default.strip_optional().typehint} is not "
            f"compatible with {target.typehint}."
        )
    if unwrap or (not default.is_optional and not default_is_none):
        return target
    return t.Optional(target)
