"""The joins with both sides given: ``Table.join`` / ``join_inner`` / ``_left`` / ``_right`` /
``_outer`` (:class:`JoinMethods`), the same methods of a join result (a chain of joins) and the
functions ``pw.join*``.

The five joins are written once, as the methods of :class:`JoinMethods`, a mixin of both
``Table`` and :class:`~deltaflow.table_join.JoinResult`. A join result's methods and the
``pw.join*`` functions run the same code as new function objects (:func:`own_join_methods`,
:func:`_as_function`), so that each names itself as the user called it in a ``TypeError``
about its arguments (``Table.join_left()``, ``JoinResult.join_left()``, ``join_left()``).

Kept apart from :mod:`deltaflow.table_join`, which holds the join result itself (its columns,
``select``, ``filter``, ``groupby``).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from deltaflow.argument_errors import extra_arguments_refused
from deltaflow.error_display import user_calls
from deltaflow.expressions.base import BinaryOp, wrap_value
from deltaflow.table_join_keys import JoinMode

if TYPE_CHECKING:
    from deltaflow.table import Table
    from deltaflow.table_join import Joinable, JoinResult

_Function = TypeVar("_Function", bound=Callable[..., Any])
_Class = TypeVar("_Class", bound=type)

#: The join methods of :class:`JoinMethods`, each also a ``pw.*`` function.
JOIN_METHOD_NAMES = ("join", "join_inner", "join_left", "join_right", "join_outer")


def _join(
    left_side: Joinable,
    right_side: Joinable,
    on: tuple[Any, ...],
    mode: JoinMode,
    id: Any,
    left_instance: Any = None,  # noqa: A002
    right_instance: Any = None,
    left_exactly_once: bool = False,
    right_exactly_once: bool = False,
    *,
    allow_self: bool = False,
) -> JoinResult:
    if not isinstance(mode, JoinMode):
        # Pathway refuses anything but a JoinMode here (a string such as "left" included).
        from deltaflow.argument_errors import ArgumentError

        raise ArgumentError(
            f"join: how={mode!r} is not a join mode; use pw.JoinMode.INNER, pw.JoinMode.LEFT, "
            f"pw.JoinMode.RIGHT or pw.JoinMode.OUTER"
        )
    if (left_instance is None) != (right_instance is None):
        raise ValueError("join: give both left_instance and right_instance, or neither")
    if left_instance is not None:
        # Rows only ever match within the same instance: one more equality condition.
        on = (*on, BinaryOp("==", wrap_value(left_instance), wrap_value(right_instance)))
    from deltaflow.table_join import JoinResult  # table_join's JoinResult inherits from here

    return JoinResult(
        left_side,
        right_side,
        on,
        mode,
        id,
        left_exactly_once=left_exactly_once,
        right_exactly_once=right_exactly_once,
        allow_self=allow_self,
    )


#: What an unknown keyword given to a join probably meant: output columns, or a join mode.
_JOIN_HINT = "the joined table's columns are named in select(): join(other, ...).select(**kwargs)"
_MODE_HINT = "the join mode is in the method's name; join(other, ..., how=pw.JoinMode.X) takes how="


@user_calls
class JoinMethods:
    """Mixin of the joins with a further table, for ``Table`` and for a join result."""

    @extra_arguments_refused(_JOIN_HINT)
    def join(
        self,
        other: Joinable,
        *on: Any,
        id: Any = None,  # noqa: A002
        how: JoinMode = JoinMode.INNER,
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """Join with ``other`` on equality conditions; ``select`` on the result.

        Parameters:
            other: the table joined with.
            *on: equality conditions ``left_column == right_column``.
            id: ``self.id`` or ``other.id`` to keep that side's row ids (else new ids are made).
            left_instance, right_instance: columns that must also match (Pathway's sharding key).
            left_exactly_once, right_exactly_once: accepted for compatibility (no effect).
            how: ``pw.JoinMode.INNER`` (default), ``LEFT``, ``RIGHT`` or ``OUTER``.

        Examples:
            >>> import deltaflow as pw
            >>> stock = pw.debug.table_from_markdown('''
            ... item | qty
            ... pen  | 2
            ... ink  | 6
            ... pad  | 1
            ... ''')
            >>> prices = pw.debug.table_from_markdown('''
            ... name | price
            ... pen  | 1.5
            ... ink  | 4.0
            ... cap  | 0.5
            ... ''')
            >>> r = stock.join(prices, stock.item == prices.name).select(stock.item, stock.qty,
            ...                                                          prices.price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            item | qty | price
            ink  | 6   | 4.0
            pen  | 2   | 1.5
        """
        return _join(
            cast("Table", self),
            other,
            on,
            how,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )

    @extra_arguments_refused(_MODE_HINT)
    def join_inner(
        self,
        other: Joinable,
        *on: Any,
        id: Any = None,  # noqa: A002
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """The pairs of rows (one of each table) that meet the conditions; ``select`` on the result.

        Parameters:
            other: the table joined with.
            *on: equality conditions ``left_column == right_column``.
            id: ``self.id`` or ``other.id`` to keep that side's row ids (else new ids are made).
            left_instance, right_instance: columns that must also match (Pathway's sharding key).
            left_exactly_once, right_exactly_once: accepted for compatibility (no effect).

        Examples:
            >>> import deltaflow as pw
            >>> stock = pw.debug.table_from_markdown('''
            ... item | qty
            ... pen  | 2
            ... ink  | 6
            ... pad  | 1
            ... ''')
            >>> prices = pw.debug.table_from_markdown('''
            ... name | price
            ... pen  | 1.5
            ... ink  | 4.0
            ... cap  | 0.5
            ... ''')
            >>> r = stock.join_inner(prices, pw.left.item == pw.right.name).select(
            ...     pw.left.item, cost=pw.left.qty * pw.right.price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            item | cost
            ink  | 24.0
            pen  | 3.0
        """
        return _join(
            cast("Table", self),
            other,
            on,
            JoinMode.INNER,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )

    @extra_arguments_refused(_MODE_HINT)
    def join_left(
        self,
        other: Joinable,
        *on: Any,
        id: Any = None,  # noqa: A002
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """Every row of this table, with its partners or with None on the right.

        Parameters:
            other: the table joined with.
            *on: equality conditions ``left_column == right_column``.
            id: ``self.id`` or ``other.id`` to keep that side's row ids (else new ids are made).
            left_instance, right_instance: columns that must also match (Pathway's sharding key).
            left_exactly_once, right_exactly_once: accepted for compatibility (no effect).

        Examples:
            >>> import deltaflow as pw
            >>> stock = pw.debug.table_from_markdown('''
            ... item | qty
            ... pen  | 2
            ... ink  | 6
            ... pad  | 1
            ... ''')
            >>> prices = pw.debug.table_from_markdown('''
            ... name | price
            ... pen  | 1.5
            ... ink  | 4.0
            ... cap  | 0.5
            ... ''')
            >>> r = stock.join_left(prices, stock.item == prices.name).select(stock.item,
            ...                                                               prices.price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            item | price
            ink  | 4.0
            pad  |
            pen  | 1.5
        """
        return _join(
            cast("Table", self),
            other,
            on,
            JoinMode.LEFT,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )

    @extra_arguments_refused(_MODE_HINT)
    def join_right(
        self,
        other: Joinable,
        *on: Any,
        id: Any = None,  # noqa: A002
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """Every row of ``other``, with its partners or with None on the left.

        Parameters:
            other: the table joined with.
            *on: equality conditions ``left_column == right_column``.
            id: ``self.id`` or ``other.id`` to keep that side's row ids (else new ids are made).
            left_instance, right_instance: columns that must also match (Pathway's sharding key).
            left_exactly_once, right_exactly_once: accepted for compatibility (no effect).

        Examples:
            >>> import deltaflow as pw
            >>> stock = pw.debug.table_from_markdown('''
            ... item | qty
            ... pen  | 2
            ... ink  | 6
            ... pad  | 1
            ... ''')
            >>> prices = pw.debug.table_from_markdown('''
            ... name | price
            ... pen  | 1.5
            ... ink  | 4.0
            ... cap  | 0.5
            ... ''')
            >>> r = stock.join_right(prices, stock.item == prices.name).select(stock.qty,
            ...                                                                prices.name)
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty | name
                | cap
            2   | pen
            6   | ink
        """
        return _join(
            cast("Table", self),
            other,
            on,
            JoinMode.RIGHT,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )

    @extra_arguments_refused(_MODE_HINT)
    def join_outer(
        self,
        other: Joinable,
        *on: Any,
        id: Any = None,  # noqa: A002
        left_instance: Any = None,
        right_instance: Any = None,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
    ) -> JoinResult:
        """Every row of both tables, matched where possible.

        Parameters:
            other: the table joined with.
            *on: equality conditions ``left_column == right_column``.
            id: ``self.id`` or ``other.id`` to keep that side's row ids (else new ids are made).
            left_instance, right_instance: columns that must also match (Pathway's sharding key).
            left_exactly_once, right_exactly_once: accepted for compatibility (no effect).

        Examples:
            >>> import deltaflow as pw
            >>> stock = pw.debug.table_from_markdown('''
            ... item | qty
            ... pen  | 2
            ... ink  | 6
            ... pad  | 1
            ... ''')
            >>> prices = pw.debug.table_from_markdown('''
            ... name | price
            ... pen  | 1.5
            ... ink  | 4.0
            ... cap  | 0.5
            ... ''')
            >>> r = stock.join_outer(prices, stock.item == prices.name).select(stock.item,
            ...                                                                prices.name)
            >>> pw.debug.compute_and_print(r, include_id=False)
            item | name
                 | cap
            ink  | ink
            pad  |
            pen  | pen
        """
        return _join(
            cast("Table", self),
            other,
            on,
            JoinMode.OUTER,
            id,
            left_instance,
            right_instance,
            left_exactly_once,
            right_exactly_once,
        )


def _code_copy(function: Callable[..., Any], qualname: str, *first_names: str) -> Any:
    """A new function object running the code of ``function`` (its decorators left out),
    named ``qualname``; ``first_names`` rename its first parameters."""
    original = inspect.unwrap(function)
    code = original.__code__
    annotations = dict(original.__annotations__)
    if first_names:
        old_names = code.co_varnames[: len(first_names)]
        # Renaming a parameter renames the local variable the body reads: the code is the same.
        code = code.replace(co_varnames=(*first_names, *code.co_varnames[len(first_names) :]))
        annotations = {
            first_names[old_names.index(key)] if key in old_names else key: value
            for key, value in annotations.items()
        }
    copy = types.FunctionType(
        code, original.__globals__, original.__name__, original.__defaults__, original.__closure__
    )
    copy.__kwdefaults__ = dict(original.__kwdefaults__ or {})
    copy.__annotations__ = annotations
    copy.__qualname__ = qualname
    copy.__module__ = original.__module__
    copy.__doc__ = original.__doc__
    return copy


def own_join_methods(cls: _Class) -> _Class:
    """Give ``cls`` (a subclass of :class:`JoinMethods`) copies of the join methods of its
    own, named ``<cls>.join_left`` ... in argument errors, which refuse unknown keywords with
    the same hint as ``Table``'s (an ``ArgumentError``: Pathway's ``ValueError``)."""
    for name in JOIN_METHOD_NAMES:
        copy = _code_copy(getattr(JoinMethods, name), f"{cls.__name__}.{name}")
        hint = _JOIN_HINT if name == "join" else _MODE_HINT
        setattr(cls, name, extra_arguments_refused(hint)(copy))
    return cls


def _as_function(method: _Function) -> _Function:
    """The ``pw.*`` function of a join method: ``pw.join_left(left, right, ...)`` is
    ``left.join_left(right, ...)``, ``left`` a table or a join result."""
    name = method.__name__
    function = _code_copy(method, name, "left", "right")
    function.__annotations__["left"] = "Joinable"
    function.__doc__ = (
        f"``{name}(left, right, *on, ...)`` is ``left.{name}(right, *on, ...)``: see "
        f":meth:`deltaflow.Table.{name}` (``left`` may be a table or a join result)."
    )
    return cast("_Function", function)


join = _as_function(JoinMethods.join)
join_inner = _as_function(JoinMethods.join_inner)
join_left = _as_function(JoinMethods.join_left)
join_right = _as_function(JoinMethods.join_right)
join_outer = _as_function(JoinMethods.join_outer)
