"""Sentences of Pathway's error messages that deltaflow's messages also carry.

Programs written for Pathway sometimes match its messages (``pytest.raises(match=...)``, an
``except`` that looks at the text). Where deltaflow fails for the same reason, its own message
(which names the table, the column and the expression) comes first and the sentence Pathway
gives follows, built here from the operator and the column types. Types are written as Pathway
writes them: the ``repr`` of their type hint (``<class 'int'>``, ``tuple[int, str]``,
``int | None``, ``_asyncio.Future[int]``).
"""

from __future__ import annotations

from deltaflow import _types as t

# Python's names of the operators (``operator.add`` ...).
_OPERATOR_NAMES = {
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    "<=": "le",
    ">": "gt",
    ">=": "ge",
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "truediv",
    "//": "floordiv",
    "%": "mod",
    "**": "pow",
    "&": "and_",
    "|": "or_",
    "^": "xor",
    "<<": "lshift",
    ">>": "rshift",
    "@": "matmul",
}

_CLASS_PREFIX = "<class '"


def type_repr(dtype: t.DType) -> str:
    """A column type as Pathway's messages print it."""
    wrapped = getattr(dtype, "wrapped", None)
    if getattr(dtype, "is_future", False) and isinstance(wrapped, t.DType):
        return f"_asyncio.Future[{_nested(wrapped)}]"
    if dtype.is_optional:
        inner = dtype.strip_optional()
        return "None" if inner == dtype else f"{_nested(inner)} | None"
    if isinstance(dtype, t.Tuple):
        return "tuple[" + ", ".join(_nested(a) for a in dtype.args) + "]"
    return repr(dtype.typehint)


def _nested(dtype: t.DType) -> str:
    """A type inside a generic or a union: a class by its name (``tuple[int, str]``)."""
    text = type_repr(dtype)
    if text.startswith(_CLASS_PREFIX) and text.endswith("'>"):
        return text[len(_CLASS_PREFIX) : -2]
    return text


def binary_operator_sentence(op: str, left: t.DType, right: t.DType) -> str:
    """``; Pathway does not support using binary operator add on columns of types ...``."""
    name = _OPERATOR_NAMES.get(op, op)
    return (
        f"; Pathway does not support using binary operator {name} on columns of types "
        f"{type_repr(left)}, {type_repr(right)}."
    )


def future_not_allowed_sentence(dtype: t.DType) -> str:
    """Pathway's sentence for a fully asynchronous UDF's column where no ``Future`` may go."""
    return (
        f" Using column of type {type_repr(dtype)} is not allowed here. Consider applying "
        f"`await_futures()` to the table first."
    )


def future_operation_sentence(operation: str, dtype: t.DType) -> str:
    """Pathway's sentence for an operation (``pathway.reducers.sum``) given a ``Future``."""
    return (
        f" Cannot perform {operation} when column of type {type_repr(dtype)} is involved. "
        f"Consider applying `await_futures()` to the table used here."
    )


def dtype_name(dtype: t.DType) -> str:
    """A column type by the name Pathway's own type objects print (``INT``,
    ``Optional(INT)``, ``DATE_TIME_NAIVE``); other types by deltaflow's name."""
    if dtype.is_optional:
        inner = dtype.strip_optional()
        if inner != dtype:
            return f"Optional({dtype_name(inner)})"
    names = {
        t.INT: "INT",
        t.FLOAT: "FLOAT",
        t.BOOL: "BOOL",
        t.STR: "STR",
        t.BYTES: "BYTES",
        t.DATE_TIME_NAIVE: "DATE_TIME_NAIVE",
        t.DATE_TIME_UTC: "DATE_TIME_UTC",
        t.DURATION: "DURATION",
        t.JSON: "JSON",
        t.ANY: "ANY",
    }
    if dtype in names:
        return names[dtype]
    if isinstance(dtype, t.PointerType):
        return "ANY_POINTER" if dtype == t.POINTER else repr(dtype)
    return repr(dtype)
