"""Wrong arguments refused when the pipeline is defined, with Pathway's exception types.

Pathway raises ``ValueError`` for several mistakes that Python itself would report as a
``TypeError`` (an unknown keyword of ``groupby``, a string where a column reference is
expected, a column name that is also a method name). The classes here are both, so that code
written for either expectation catches them; the messages are deltaflow's own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from deltaflow.errors import DefinitionError
from deltaflow.expressions.base import ColumnNotFoundError, ExpressionError

F = TypeVar("F", bound=Callable[..., Any])


class ArgumentError(DefinitionError, TypeError, ValueError):
    """An argument of the wrong kind (Pathway: ``ValueError``; Python: ``TypeError``)."""


class ColumnArgumentError(ColumnNotFoundError, ValueError):
    """An argument naming a column the table does not have (Pathway: ``ValueError``)."""


class ContextError(ExpressionError, ValueError):
    """An expression used where it has no meaning, such as a reducer outside ``reduce`` or a
    non-grouping column in a reduction (Pathway: ``ValueError``)."""


#: Public names of Pathway's ``Table`` that ``pw.this.<name>`` refuses (a column with such a
#: name is reached with ``pw.this["name"]``). ``C``, ``id``, ``ix``, ``ix_ref``, ``keys``,
#: ``pointer_from``, ``rename``, ``slice``, ``with_prefix``, ``with_suffix`` and ``without``
#: are allowed, as in Pathway.
_METHOD_NAMES_TEXT = """
add_update_timestamp_utc asof_join asof_join_left asof_join_outer asof_join_right asof_now_join
asof_now_join_inner asof_now_join_left assert_append_only await_futures buffer cast_to_types
column_names concat concat_reindex copy debug deduplicate diff difference empty eval_type filter
filter_out_results_of_forgetting flatten forget from_columns from_streams groupby ignore_late
inactivity_detection interpolate intersect interval_join interval_join_inner interval_join_left
interval_join_outer interval_join_right is_append_only join join_inner join_left join_outer
join_right live plot promise_universe_is_equal_to promise_universe_is_subset_of
promise_universes_are_disjoint reduce remove_errors rename_by_dict rename_columns restrict
schema select show sort split stream_to_table to to_stream typehints unpack_snapshots
update_cells update_id_type update_rows update_types window_join window_join_inner
window_join_left window_join_outer window_join_right windowby with_columns with_id with_id_from
with_universe_of
"""
TABLE_METHOD_NAMES = frozenset(_METHOD_NAMES_TEXT.split())


def method_name_as_column(placeholder: str, name: str) -> ArgumentError:
    """The error of ``pw.this.<method name>``."""
    return ArgumentError(
        f"pw.{placeholder}.{name}: {name!r} is the name of a Table method, so it does not name "
        f"a column here; write pw.{placeholder}[{name!r}] for a column with that name"
    )


def extra_arguments_refused(hint: str) -> Callable[[F], F]:
    """Make unknown keyword arguments and surplus positional arguments of a method an
    :class:`ArgumentError` (Pathway's ``ValueError``), with ``hint`` saying what was probably
    meant. Missing arguments stay a plain ``TypeError``. The method's signature is kept."""

    def wrap(method: F) -> F:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as error:
                text = str(error)
                if "unexpected keyword" in text or "too many positional" in text:
                    raise ArgumentError(f"{method.__qualname__}(): {text}; {hint}") from None
            return method(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return wrap
