"""``Pointer``: the value of a row id as user code sees it.

Ids are stored as ``UInt128`` in Polars columns; :func:`deltaflow._types.values_from_series`
turns them into :class:`Pointer` objects when values reach Python (UDFs, callbacks,
``table_to_dicts`` ...) and :func:`deltaflow._types.to_storage` turns them back with ``int()``.
"""

from __future__ import annotations

import types
from typing import Any

_POINTER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


class Pointer:
    """A 128-bit row id, as user code sees it: an opaque value.

    Pointers compare equal (and hash, and order) among themselves by their 128-bit value;
    they are not integers: ``p + 1``, ``p < 5``, ``[...][p]`` and ``hex(p)`` raise
    ``TypeError`` and ``p == 5`` is False, as with Pathway's pointers. ``int(p)`` gives the
    value (columns store it as ``UInt128``), ``str(p)`` the ``^``-prefixed base32 text and
    ``repr(p)`` ``Pointer("^...")``. ``pw.Pointer[int]`` (any arguments) is an annotation for
    a pointer to rows keyed by an ``int``.
    """

    __slots__ = ("_value",)
    __module__ = "deltaflow"  # printed (and pickled) as deltaflow.Pointer
    _value: int

    def __init__(self, value: int | Pointer) -> None:
        # Pointers are built by deltaflow from stored ids (Polars UInt128 values, i.e. ints):
        # that case is kept to one class check, as millions of ids may be converted at once.
        self._value = value if type(value) is int else int(value)

    def __class_getitem__(cls, item: Any) -> Any:
        # ``pw.Pointer[int]`` / ``pw.Pointer[int, str]`` / ``pw.Pointer[Schema]``: an annotation
        # (deltaflow.wrap turns it into a typed pointer DType).
        return types.GenericAlias(cls, item)

    @property
    def value(self) -> int:
        """The 128-bit value (the same as ``int(pointer)``)."""
        return self._value

    def __int__(self) -> int:
        return self._value

    def __eq__(self, other: object) -> bool:
        if type(other) is Pointer:
            return self._value == other._value
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if type(other) is Pointer:
            return self._value != other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)

    def __lt__(self, other: Pointer) -> bool:
        if type(other) is Pointer:
            return self._value < other._value
        return NotImplemented

    def __le__(self, other: Pointer) -> bool:
        if type(other) is Pointer:
            return self._value <= other._value
        return NotImplemented

    def __gt__(self, other: Pointer) -> bool:
        if type(other) is Pointer:
            return self._value > other._value
        return NotImplemented

    def __ge__(self, other: Pointer) -> bool:
        if type(other) is Pointer:
            return self._value >= other._value
        return NotImplemented

    def __reduce__(self) -> tuple[type[Pointer], tuple[int]]:
        return (Pointer, (self._value,))

    def __repr__(self) -> str:
        return f'Pointer("^{_base32(self._value)}")'

    def __str__(self) -> str:
        return "^" + _base32(self._value)

    def short(self) -> str:
        """The shortened rendering used when printing tables."""
        return "^" + _base32(self._value)[:7] + "..."


class PointerKey(int):
    """What :func:`canonical_key` makes of a pointer: an ``int`` whose ``repr`` is the
    pointer's text, so that keys built from ``repr(canonical_key(...))`` (ids of tuples
    holding pointers) are the same as when pointers were ``int`` subclasses."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "^" + _base32(int(self))


def _base32(value: int) -> str:
    digits = []
    for _ in range(26):  # 128 bits fit in 26 base32 digits
        digits.append(_POINTER_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(digits))
