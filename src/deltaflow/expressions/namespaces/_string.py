"""The ``.str`` namespace: ``t.name.str.lower()`` ..."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.base import ColumnExpression
from deltaflow.expressions.namespaces._common import (
    _INT_PARAM,
    _STR,
    _first_failure,
    _Namespace,
    _Param,
)

_INT_RE = r"^[+-]?[0-9]+$"
_FLOAT_RE = (
    r"(?i)^[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
    r"(?:e[+-]?[0-9]+)?)$"
)


class StringNamespace(_Namespace):
    """String methods: ``t.name.str.lower()`` ...

    Positions and lengths count code points, as Python's ``str`` does.
    """

    default_true_values = ("on", "true", "yes", "1")
    default_false_values = ("off", "false", "no", "0")

    def lower(self) -> ColumnExpression:
        """The text in lower case."""
        return self._call("str.lower", (), _STR, (), t.STR, lambda a, _: a[0].str.to_lowercase())

    def upper(self) -> ColumnExpression:
        """The text in upper case."""
        return self._call("str.upper", (), _STR, (), t.STR, lambda a, _: a[0].str.to_uppercase())

    def title(self) -> ColumnExpression:
        """Every word capitalised (Python's ``str.title``)."""
        return self._python("str.title", (), _STR, (), t.STR, str.title)

    def swapcase(self) -> ColumnExpression:
        """Upper case letters lowered and lower case ones raised."""
        return self._python("str.swapcase", (), _STR, (), t.STR, str.swapcase)

    def strip(self, chars: Any = None) -> ColumnExpression:
        """The text without leading and trailing ``chars`` (whitespace when None)."""
        return self._call(
            "str.strip",
            (chars,),
            _STR,
            (_Param("chars", _STR, none_ok=True),),
            t.STR,
            lambda a, types: a[0].str.strip_chars(
                None if types[1] in (t.Optional(t.ANY), t.NONE) else a[1]
            ),
        )

    def len(self) -> ColumnExpression:
        """The number of characters (code points)."""
        return self._call(
            "str.len", (), _STR, (), t.INT, lambda a, _: a[0].str.len_chars().cast(pl.Int64)
        )

    def reversed(self) -> ColumnExpression:
        """The characters in reverse order."""
        return self._python("str.reversed", (), _STR, (), t.STR, lambda s: s[::-1])

    def slice(self, start: Any, end: Any, /) -> ColumnExpression:
        """``text[start:end]`` with Python's rules for negative and out-of-range bounds."""

        def build(a: list[pl.Expr], _: list[t.DType]) -> pl.Expr:
            text, lo, hi = a
            n = text.str.len_chars().cast(pl.Int64)
            first = (
                pl.when(lo < 0)
                .then(pl.max_horizontal(n + lo, 0))
                .otherwise(pl.min_horizontal(lo, n))
            )
            last = (
                pl.when(hi < 0)
                .then(pl.max_horizontal(n + hi, 0))
                .otherwise(pl.min_horizontal(hi, n))
            )
            length = pl.max_horizontal(last - first, 0)
            return text.str.slice(first, length)

        return self._call(
            "str.slice",
            (start, end),
            _STR,
            (_Param("start", _INT_PARAM), _Param("end", _INT_PARAM)),
            t.STR,
            build,
        )

    def startswith(self, prefix: Any) -> ColumnExpression:
        """Whether the text begins with ``prefix``."""
        return self._call(
            "str.startswith",
            (prefix,),
            _STR,
            (_Param("prefix", _STR),),
            t.BOOL,
            lambda a, _: a[0].str.starts_with(a[1]),
        )

    def endswith(self, suffix: Any) -> ColumnExpression:
        """Whether the text ends with ``suffix``."""
        return self._call(
            "str.endswith",
            (suffix,),
            _STR,
            (_Param("suffix", _STR),),
            t.BOOL,
            lambda a, _: a[0].str.ends_with(a[1]),
        )

    def _search(
        self, method: str, sub: Any, start: Any, end: Any, fun: Callable[..., int]
    ) -> ColumnExpression:
        params = (
            _Param("sub", _STR),
            _Param("start", _INT_PARAM, none_ok=True),
            _Param("end", _INT_PARAM, none_ok=True),
        )
        return self._python(method, (sub, start, end), _STR, params, t.INT, fun)

    def count(self, sub: Any, start: Any = None, end: Any = None) -> ColumnExpression:
        """The number of non-overlapping occurrences of ``sub`` in ``text[start:end]``."""
        if start is None and end is None and isinstance(sub, str):
            return self._call(
                "str.count",
                (sub,),
                _STR,
                (_Param("sub", _STR),),
                t.INT,
                lambda a, _: a[0].str.count_matches(sub, literal=True).cast(pl.Int64),
            )
        return self._search("str.count", sub, start, end, str.count)

    def find(self, sub: Any, start: Any = None, end: Any = None) -> ColumnExpression:
        """The lowest index of ``sub`` in ``text[start:end]``, or -1."""
        return self._search("str.find", sub, start, end, str.find)

    def rfind(self, sub: Any, start: Any = None, end: Any = None) -> ColumnExpression:
        """The highest index of ``sub`` in ``text[start:end]``, or -1."""
        return self._search("str.rfind", sub, start, end, str.rfind)

    def replace(self, old_value: Any, new_value: Any, count: Any = -1, /) -> ColumnExpression:
        """The text with ``old_value`` replaced by ``new_value`` (at most ``count`` times)."""
        params = (_Param("old_value", _STR), _Param("new_value", _STR), _Param("count", _INT_PARAM))
        constants = (
            all(isinstance(v, str) for v in (old_value, new_value))
            and isinstance(count, int)
            and not isinstance(count, bool)
        )
        if constants and old_value != "" and (count < 0 or count > 0):

            def build(a: list[pl.Expr], _: list[t.DType]) -> pl.Expr:
                if count < 0:
                    return a[0].str.replace_all(old_value, new_value, literal=True)
                return a[0].str.replace(old_value, new_value, literal=True, n=count)

            return self._call(
                "str.replace", (old_value, new_value, count), _STR, params, t.STR, build
            )
        return self._python(
            "str.replace",
            (old_value, new_value, count),
            _STR,
            params,
            t.STR,
            lambda s, o, n, c: s.replace(o, n, c),
        )

    def removeprefix(self, prefix: Any, /) -> ColumnExpression:
        """The text without ``prefix`` if it starts with it."""
        return self._call(
            "str.removeprefix",
            (prefix,),
            _STR,
            (_Param("prefix", _STR),),
            t.STR,
            lambda a, _: a[0].str.strip_prefix(a[1]),
        )

    def removesuffix(self, suffix: Any, /) -> ColumnExpression:
        """The text without ``suffix`` if it ends with it."""
        return self._call(
            "str.removesuffix",
            (suffix,),
            _STR,
            (_Param("suffix", _STR),),
            t.STR,
            lambda a, _: a[0].str.strip_suffix(a[1]),
        )

    def _parse(
        self,
        method: str,
        target: str,
        optional: bool,
        convert: Callable[[pl.Series], pl.Series],
        result: t.DType,
    ) -> ColumnExpression:
        def fun(args: list[pl.Series]) -> pl.Series:
            parsed = convert(args[0])
            if not optional:
                bad = _first_failure(args[0], parsed)
                if bad is not None:
                    # The reason is Rust's own text for such a failure, as Pathway reports
                    # it (it is also the error log's message when failures are values).
                    reason = {
                        "int": "invalid digit found in string",
                        "float": "invalid float literal",
                    }.get(target)
                    if reason is None:
                        raise ValueError(
                            f'{method}(): "{bad}" is not a valid {target}; use '
                            f"{method}(optional=True) to get None instead"
                        )
                    raise ValueError(f'{method}(): "{bad}" is not a valid {target}: {reason}')
            return parsed

        return self._series(method, (), _STR, (), t.Optional(result) if optional else result, fun)

    def parse_int(self, optional: bool = False) -> ColumnExpression:
        """The text as an int (surrounding whitespace ignored); None if ``optional``."""

        def convert(s: pl.Series) -> pl.Series:
            stripped = s.str.strip_chars()
            return pl.select(
                pl.when(stripped.str.contains(_INT_RE))
                .then(stripped.cast(pl.Int64, strict=False))
                .otherwise(None)
            ).to_series()

        return self._parse("str.parse_int", "int", optional, convert, t.INT)

    def parse_float(self, optional: bool = False) -> ColumnExpression:
        """The text as a float (``inf``/``nan`` accepted); None if unparsable and ``optional``."""

        def convert(s: pl.Series) -> pl.Series:
            stripped = s.str.strip_chars()
            return pl.select(
                pl.when(stripped.str.contains(_FLOAT_RE))
                .then(stripped.cast(pl.Float64, strict=False))
                .otherwise(None)
            ).to_series()

        return self._parse("str.parse_float", "float", optional, convert, t.FLOAT)

    def parse_bool(
        self,
        true_values: Any = default_true_values,
        false_values: Any = default_false_values,
        optional: bool = False,
    ) -> ColumnExpression:
        """True/False for the listed spellings (case and surrounding whitespace ignored)."""
        trues = [str(v).lower() for v in true_values]
        falses = [str(v).lower() for v in false_values]
        if set(trues) & set(falses):
            raise ValueError(
                f"str.parse_bool(): {sorted(set(trues) & set(falses))} are both "
                f"in true_values and in false_values"
            )

        def convert(s: pl.Series) -> pl.Series:
            key = s.str.strip_chars().str.to_lowercase()
            return pl.select(
                pl.when(key.is_in(trues))
                .then(True)
                .when(key.is_in(falses))
                .then(False)
                .otherwise(None)
            ).to_series()

        return self._parse("str.parse_bool", "bool", optional, convert, t.BOOL)
