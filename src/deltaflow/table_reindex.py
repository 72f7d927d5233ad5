"""``Table`` methods about row ids: giving the rows new ids (``with_id``, ``with_id_from``,
with ``pointer_from`` computing such ids in expressions) and stating what is known of the ids
of two tables (``promise_universe_is_subset_of``, ``promise_universes_are_disjoint``,
``promise_universe_is_equal_to``, ``with_universe_of``).

Kept apart from :mod:`deltaflow.table` so that each module has one job; ``Table`` inherits
:class:`ReindexMethods`. The operations that combine tables by id (``update_rows``, ``ix``
...) are in :mod:`deltaflow.table_id_ops`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from deltaflow import _types as t
from deltaflow import plan, universe_checks
from deltaflow.error_display import user_calls
from deltaflow.expressions.base import (
    ColumnExpression,
    ColumnReference,
    ExpressionError,
    PointerFrom,
    wrap_value,
)
from deltaflow.table_groupby import _table_class

if TYPE_CHECKING:
    from deltaflow.table import Table


@user_calls
class ReindexMethods:
    """Mixin of ``Table``'s reindexing and universe promises."""

    def pointer_from(
        self, *args: Any, optional: bool = False, instance: ColumnReference | None = None
    ) -> ColumnExpression:
        """An expression giving the id that a row keyed by ``args`` has.

        Parameters:
            *args: the key values (expressions), as given to :meth:`with_id_from`.
            optional: give None (instead of an id) when a key value is None.
            instance: a column whose value is part of the key, as in ``with_id_from``.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> prices = t.with_id_from(t.item)
            >>> orders = pw.debug.table_from_markdown('''
            ... item | n
            ... ink  | 3
            ... ''')
            >>> r = orders.select(orders.n, price=prices.ix(prices.pointer_from(orders.item)).price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            n | price
            3 | 4.0
        """
        table = cast("Table", self)  # a mixin of Table only
        pointer = PointerFrom(
            *(wrap_value(a) for a in args),
            optional=optional,
            instance=None if instance is None else wrap_value(instance),
        )
        pointer.table = table
        return pointer

    def with_id(self, new_index: ColumnReference) -> Table:
        """This table with ids taken from a Pointer column.

        Parameters:
            new_index: a column of Pointers, distinct across rows.

        Examples:
            >>> import deltaflow as pw
            >>> users = pw.debug.table_from_markdown('''
            ... name
            ... ann
            ... ''')
            >>> ages = pw.debug.table_from_markdown('''
            ... name | age
            ... ann  | 31
            ... ''')
            >>> keyed_users = users.with_id_from(users.name)
            >>> ages = ages.with_columns(user=keyed_users.pointer_from(ages.name))
            >>> by_user = ages.with_id(ages.user)
            >>> r = by_user.select(by_user.age, same=by_user.id == by_user.user)
            >>> pw.debug.compute_and_print(r, include_id=False)
            age | same
            31  | True
        """
        this_table = cast("Table", self)  # a mixin of Table only
        projection, source = this_table._project_zipped(
            "with_id", [("__id", wrap_value(new_index))]
        )
        if projection.types["__id"] != t.POINTER:
            raise ExpressionError(
                f"with_id on {this_table._description}: new_index must be a "
                f"Pointer column, got {projection.types['__id']!r}"
            )
        node = plan.ReindexNode(
            columns=dict(source.columns),
            inputs=(source,),
            id_projection=projection,
            what="with_id",
            label="with_id",
        )
        table = this_table._derive(
            this_table._trimmed(node, "with_id"), universe=plan.Universe(), keep_key=False
        )
        table._id_dtype = projection.types["__id"].strip_optional()
        return table

    def with_id_from(self, *args: Any, instance: ColumnReference | None = None) -> Table:
        """This table with ids computed from the given values (like a primary key).

        Parameters:
            *args: the key: expressions whose values (together) give each row's id.
            instance: a column whose value is part of the key (Pathway's sharding key).

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... item | qty | price
            ... pen  | 2   | 1.5
            ... ink  | 6   | 4.0
            ... ''')
            >>> keyed = t.with_id_from(t.item)
            >>> r = keyed.select(keyed.qty, same=keyed.id == keyed.pointer_from(keyed.item))
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty | same
            2   | True
            6   | True
        """
        table = cast("Table", self)  # a mixin of Table only
        if not args:
            raise ValueError(f"with_id_from on {table._description}: give at least one column")
        expression = table.pointer_from(*args, instance=instance)
        projection, source = table._project_zipped("with_id_from", [("__id", expression)])
        node = table._trimmed(
            plan.ReindexNode(
                columns=dict(source.columns),
                inputs=(source,),
                id_projection=projection,
                what="with_id_from",
                label="with_id_from",
            ),
            "with_id_from",
        )
        key = tuple(
            a.name for a in args if isinstance(a, ColumnReference) and a.name in table._columns
        )
        return _table_class()(
            node, plan.Universe(), primary_key=key or None, id_dtype=projection.types["__id"]
        )

    def promise_universe_is_subset_of(self, other: Table) -> Table:
        """Promise that every row id of this table is an id of ``other`` (checked by the
        operations relying on it, see docs/errors.md).

        Parameters:
            other: the table whose ids include this table's.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ...   | qty
            ... 1 | 2
            ... 2 | 6
            ... ''')
            >>> big = t.filter(t.qty > 3).promise_universe_is_subset_of(t)
            >>> r = t.select(t.qty).update_cells(big.select(qty=big.qty * 10))
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty
            2
            60
        """
        table = cast("Table", self)  # a mixin of Table only
        universe_checks.promise_subset(table._universe, other._universe)
        return table

    def promise_universes_are_disjoint(self, other: Table) -> Table:
        """Promise that no row id of this table is an id of ``other`` (``concat`` trusts
        it).

        Parameters:
            other: the table none of whose ids is an id of this table.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ... qty
            ... 2
            ... 6
            ... ''')
            >>> small, big = t.filter(t.qty < 3), t.filter(t.qty >= 3)
            >>> pw.debug.compute_and_print(small.promise_universes_are_disjoint(big).concat(big),
            ...                            include_id=False)
            qty
            2
            6
        """
        table = cast("Table", self)  # a mixin of Table only
        universe_checks.promise_disjoint(table, other)
        return table

    def promise_universe_is_equal_to(self, other: Table) -> Table:
        """Promise that this table and ``other`` have the same row ids.

        Parameters:
            other: the table with the same ids.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ...   | qty
            ... 1 | 2
            ... ''')
            >>> u = pw.debug.table_from_markdown('''
            ...   | price
            ... 1 | 1.5
            ... ''')
            >>> r = t.promise_universe_is_equal_to(u).select(t.qty, u.price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty | price
            2   | 1.5
        """
        table = cast("Table", self)  # a mixin of Table only
        universe_checks.promise_equal(table._universe, other._universe)
        return table

    def with_universe_of(self, other: Table) -> Table:
        """This table, said to have exactly the rows of ``other`` (so that their columns can
        be used together). Unless that is known, the ids are checked as the data comes: an id
        of ``other`` without a row here gives a row of Errors, a row whose id ``other`` lacks
        is left out, each reported.

        Parameters:
            other: the table whose ids this table is said to have.

        Examples:
            >>> import deltaflow as pw
            >>> t = pw.debug.table_from_markdown('''
            ...   | qty
            ... 1 | 2
            ... ''')
            >>> u = pw.debug.table_from_markdown('''
            ...   | price
            ... 1 | 1.5
            ... ''')
            >>> r = t.with_universe_of(u).select(t.qty, u.price)
            >>> pw.debug.compute_and_print(r, include_id=False)
            qty | price
            2   | 1.5
        """
        table = cast("Table", self)  # a mixin of Table only
        if not isinstance(other, _table_class()):
            raise TypeError(
                f"with_universe_of on {table._description}: expected a table, got {other!r}"
            )
        if universe_checks.known_equal(table._universe, other._universe):
            copy = table.copy()
            copy._universe = other._universe
            return copy
        result = table._id_op("with_universe_of", (other,), dict(table._columns), (table, other))
        result._universe = other._universe
        # As in Pathway, the two tables are from now on known to have the same rows.
        universe_checks.promise_equal(table._universe, other._universe)
        return result
