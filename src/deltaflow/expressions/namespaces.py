"""The ``.str``, ``.dt`` and ``.num`` method namespaces of column expressions."""

from __future__ import annotations

from typing import Any


class _Namespace:
    def __init__(self, expression: Any) -> None:
        self._expression = expression


class StringNamespace(_Namespace):
    """String methods: ``t.name.str.lower()`` ..."""


class DateTimeNamespace(_Namespace):
    """Date and time methods: ``t.when.dt.year()`` ..."""


class NumericalNamespace(_Namespace):
    """Numeric methods: ``t.x.num.abs()`` ..."""
