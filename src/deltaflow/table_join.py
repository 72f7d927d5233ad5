"""Joins: :class:`JoinResult`, what ``Table.join`` and ``pw.join`` return.

A join's rows live in a "wide" table holding every column of both sides (and their ids);
``select``, ``filter``, ``groupby`` and chained joins work on it. Only plan nodes are built
here, after typing the join conditions, so mistakes are reported where the pipeline is
defined. :class:`JoinMode` and the typing of the conditions are in
:mod:`deltaflow.table_join_keys`; building a join (``pw.join*`` and the ``join*`` methods of
a join result) in :mod:`deltaflow.table_join_entry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

from deltaflow import _types as t
from deltaflow import plan, universe_checks
from deltaflow.engine.stateful.nodes import JoinNode
from deltaflow.error_display import user_calls
from deltaflow.expressions.base import (
    ColumnExpression,
    ColumnReference,
    ExpressionError,
    Scope,
    wrap_value,
)
from deltaflow.expressions.deferred import IxColumn
from deltaflow.expressions.evaluate import CompiledProjection
from deltaflow.expressions.placeholders import (
    AllColumns,
    Placeholder,
    expand_keywords,
    left,
    right,
    this,
)
from deltaflow.narrowing import check_not_id, narrowed_columns
from deltaflow.table_groupby import GroupedTable, _grouped, _table_class
from deltaflow.table_join_entry import JoinMethods, own_join_methods
from deltaflow.table_join_entry import join as join
from deltaflow.table_join_entry import join_inner as join_inner
from deltaflow.table_join_entry import join_left as join_left
from deltaflow.table_join_entry import join_outer as join_outer
from deltaflow.table_join_entry import join_right as join_right
from deltaflow.table_join_keys import _MODE_NAMES, JoinMode, equality_keys
from deltaflow.table_join_keys import JoinKeys as JoinKeys
from deltaflow.table_join_keys import fits as fits
from deltaflow.table_zip import ForeignColumns, join_inputs

if TYPE_CHECKING:
    from deltaflow.table import Table


def _names_of(columns: Iterable[Any]) -> list[str]:
    return [c.name if isinstance(c, ColumnReference) else str(c) for c in columns]


def _owns(table: Table, owner: Any) -> bool:
    Table = _table_class()
    return owner is table or (isinstance(owner, Table) and owner._node is table._node)


def _side_table(side: Table | JoinResult) -> Table:
    """The table a join side feeds into the join: the table itself, or a join result's wide
    table (every column of its sides plus their ids, its rows keyed by the pair ids)."""
    return side._wide if isinstance(side, JoinResult) else side


def _side_owns(side: Table | JoinResult, owner: Any) -> bool:
    """Whether ``owner`` is the side's table or, for a join result, one of the tables it
    joined (at any depth)."""
    if isinstance(side, JoinResult):
        return _side_owns(side._left, owner) or _side_owns(side._right, owner)
    return _owns(side, owner)


def _side_names(side: Table | JoinResult) -> list[str]:
    """The names ``pw.left.<name>`` / ``pw.right.<name>`` can take for this side."""
    return side._this_names() if isinstance(side, JoinResult) else list(side._columns)


def _side_column(
    side: Table | JoinResult, ref: ColumnReference, placeholder: Placeholder
) -> tuple[str, t.DType]:
    """The column of :func:`_side_table` a reference means: the side's placeholder (or
    ``pw.this``) names the side as a whole; a join result side also resolves references to
    the tables it joined."""
    owner, name = ref.table, ref.name
    table = _side_table(side)
    if isinstance(side, JoinResult):
        if _owns(table, owner):  # the wide table's own columns (the join's projections)
            if name == "id":
                return "_id", t.POINTER
            return name, table._columns[name]
        if owner is placeholder or owner is this:
            return side._resolve(ColumnReference(this, name))
        if _side_owns(side, owner):
            return side._resolve(ref)
        raise ValueError(f"{ref!r} does not belong to {side._description}")
    if owner is placeholder or owner is this or _owns(table, owner):
        if name == "id":
            return "_id", t.POINTER
        if name in table._columns:
            return name, table._columns[name]
        raise table._missing(name)
    raise ValueError(f"{ref!r} does not belong to {table._description}")


def _side_scope(side: Table | JoinResult, placeholder: Placeholder, operation: str) -> Scope:
    return Scope(operation, lambda ref: _side_column(side, ref, placeholder))


@user_calls
@own_join_methods
class JoinResult(JoinMethods):
    """The result of a join, before ``select``: columns are reached through ``pw.left``,
    ``pw.right``, ``pw.this`` or the joined tables.

    Either side may itself be a join result (a chain ``t1.join(t2, ...).join(t3, ...)``): it
    enters the join as its wide table, whose rows carry every column of its own sides and
    their ids and are keyed by its pair ids, so the chained rows get the pair id of (inner
    pair id, other side's id). ``pw.left`` / ``pw.right`` then name that side as a whole
    (what ``pw.this`` meant on it) and references to any table joined inside still resolve.
    """

    def __init__(
        self,
        left_side: Table | JoinResult,
        right_side: Table | JoinResult,
        on: tuple[Any, ...],
        mode: JoinMode,
        id: Any = None,  # noqa: A002
        *,
        left_exactly_once: bool = False,
        right_exactly_once: bool = False,
        allow_self: bool = False,
    ) -> None:
        Table = _table_class()
        for side in (left_side, right_side):
            if not isinstance(side, (Table, JoinResult)):
                raise TypeError(f"join: expected tables or join results, got {side!r}")
        if (
            not allow_self
            and isinstance(left_side, Table)
            and isinstance(right_side, Table)
            and left_side._node is right_side._node
        ):
            # pw.left / pw.right could not tell the sides apart by table: as in Pathway, a
            # self-join needs a copy() on one side.
            raise ValueError(
                f"join: {left_side._description} is joined with itself; join it "
                f"with its copy() instead"
            )
        self._left = left_side
        self._right = right_side
        self._chained = isinstance(left_side, JoinResult) or isinstance(right_side, JoinResult)
        left_table = _side_table(left_side)
        right_table = _side_table(right_side)
        self._mode = _MODE_NAMES[mode]
        left_name, right_name = left_side._description, right_side._description
        if isinstance(left_side, JoinResult):
            left_name = f"({left_name})"
        if isinstance(right_side, JoinResult):
            right_name = f"({right_name})"
        description = f"join of {left_name} with {right_name}"
        self._description: str = description
        left_scope = _side_scope(left_side, left, "join")
        right_scope = _side_scope(right_side, right, "join")
        left_keys, right_keys, key_types, coalesced = equality_keys(
            on, left_scope, right_scope, description
        )
        left_optional = self._mode in ("right", "outer")
        right_optional = self._mode in ("left", "outer")
        columns: dict[str, t.DType] = {}
        # Each side's ids keep their type (Pointer[...] of the side's key, when it has one).
        left_id = getattr(left_table, "_id_dtype", t.POINTER)
        right_id = getattr(right_table, "_id_dtype", t.POINTER)
        columns["__l_id"] = t.optional(left_id) if left_optional else left_id
        for name, dtype in left_table._columns.items():
            columns[f"__l__{name}"] = t.optional(dtype) if left_optional else dtype
        columns["__r_id"] = t.optional(right_id) if right_optional else right_id
        for name, dtype in right_table._columns.items():
            columns[f"__r__{name}"] = t.optional(dtype) if right_optional else dtype
        for name, (a, b) in coalesced.items():
            common = t.common_supertype(columns[a], columns[b]) or t.ANY
            # The side every row has decides whether the coalesced value can be missing.
            kept = (
                columns[a]
                if self._mode == "left"
                else columns[b]
                if self._mode == "right"
                else None
            )
            if kept is not None and not kept.is_optional:
                common = common.strip_optional()
            columns[f"__t__{name}"] = t.optional(common) if self._mode == "outer" else common
        self._coalesced = set(coalesced)
        id_side = _id_side(id, left_side, right_side, self._mode, description)
        left_pre = CompiledProjection(
            left_scope,
            [(f"__l__{n}", ColumnReference(left_table, n)) for n in left_table._columns]
            + [(f"__jk{i}", k) for i, k in enumerate(left_keys)],
        )
        right_pre = CompiledProjection(
            right_scope,
            [(f"__r__{n}", ColumnReference(right_table, n)) for n in right_table._columns]
            + [(f"__jk{i}", k) for i, k in enumerate(right_keys)],
        )
        # Exactly-once matching is a promise about inner joins of append-only streams; the
        # other modes ignore it (see docs/joins.md).
        once = self._mode == "inner"
        node = JoinNode(
            columns=columns,
            inputs=(left_table._node, right_table._node),
            left_pre=left_pre,
            right_pre=right_pre,
            keys=[f"__jk{i}" for i in range(len(left_keys))],
            key_types=key_types,
            mode=self._mode,
            id_side=id_side,
            coalesced={f"__t__{n}": v for n, v in coalesced.items()},
            left_columns=[f"__l__{n}" for n in left_table._columns],
            right_columns=[f"__r__{n}" for n in right_table._columns],
            left_exactly_once=once and left_exactly_once,
            right_exactly_once=once and right_exactly_once,
            label=f"join_{self._mode}",
        )
        self._wide = Table(node, _join_universe(left_table, right_table, self._mode, id_side))
        self._foreign = None

    # Columns of other tables with the join's rows, brought into a copy of ``_wide`` (see
    # deltaflow.table_zip.join_inputs); a class default for subclasses with their own init.
    _foreign: ForeignColumns | None = None

    def _copy(self) -> JoinResult:
        copy = object.__new__(JoinResult)
        copy.__dict__.update(self.__dict__)
        return copy

    def _joins_table(self, table: Any) -> bool:
        """Whether ``table`` is one of the tables joined here (at any depth)."""
        return _side_owns(self._left, table) or _side_owns(self._right, table)

    # --- scope ------------------------------------------------------------------------------
    def _this_names(self) -> list[str]:
        """The names ``pw.this`` resolves here, in ``*pw.this`` order: the left side's then
        the right side's, leaving out names both sides have unless a condition equated them."""
        left_names = _side_names(self._left)
        right_names = _side_names(self._right)
        left_set, right_set = set(left_names), set(right_names)
        return [n for n in left_names if n not in right_set or n in self._coalesced] + [
            n for n in right_names if n not in left_set
        ]

    def _resolve(self, ref: ColumnReference) -> tuple[str, t.DType]:
        if self._foreign is not None:
            found = self._foreign.resolve(ref)
            if found is not None:
                return found
        owner, name = ref.table, ref.name
        columns = self._wide._columns
        if owner is left:
            side = "l"
        elif owner is right:
            side = "r"
        elif owner is this:
            if name in self._coalesced:
                return f"__t__{name}", columns[f"__t__{name}"]
            if name == "id":
                return "_id", t.POINTER
            left_names, right_names = _side_names(self._left), _side_names(self._right)
            in_left, in_right = name in left_names, name in right_names
            if in_left and in_right:
                # KeyError (not found as one column), as in Pathway.
                raise KeyError(
                    f"pw.this.{name} is ambiguous in {self._description}: both "
                    f"sides have it; use pw.left.{name} or pw.right.{name}"
                )
            if not in_left and not in_right:
                raise KeyError(
                    f"no column {name!r} on either side of {self._description} "
                    f"(pw.this has {self._this_names()})"
                )
            side = "l" if in_left else "r"
            ref = ColumnReference(left if in_left else right, name)
        else:
            in_left = _side_owns(self._left, owner)
            if in_left and self._chained and _side_owns(self._right, owner):
                raise ValueError(
                    f"{ref!r} is ambiguous in {self._description}: its table is "
                    f"joined on both sides; use pw.left / pw.right, or join a "
                    f"copy() of the table"
                )
            if in_left:
                side = "l"
            elif _side_owns(self._right, owner):
                side = "r"
            else:
                raise ValueError(f"{ref!r} does not belong to {self._description}")
        if side == "l":
            column, _ = _side_column(self._left, ref, left)
        else:
            column, _ = _side_column(self._right, ref, right)
        if column == "_id":
            return f"__{side}_id", columns[f"__{side}_id"]
        return f"__{side}__{column}", columns[f"__{side}__{column}"]

    def _scope(self, operation: str) -> Scope:
        return Scope(f"{operation} on {self._description}", self._resolve)

    def _expand(self, args: Iterable[Any], operation: str) -> list[tuple[str, ColumnExpression]]:
        out: list[tuple[str, ColumnExpression]] = []
        for arg in args:
            if isinstance(arg, AllColumns):
                source = arg.source
                if source is this:
                    names = self._this_names()
                    holder: Any = this
                elif source is left:
                    names, holder = _side_names(self._left), left
                elif source is right:
                    names, holder = _side_names(self._right), right
                elif isinstance(source, _table_class()) and (
                    _side_owns(self._left, source) or _side_owns(self._right, source)
                ):
                    names, holder = list(source._columns), source
                else:
                    raise ValueError(
                        f"{operation} on {self._description}: *{source!r} cannot "
                        f"be expanded here; use *pw.left, *pw.right or *pw.this"
                    )
                excluded = set(_names_of(arg.excluded))
                out += [
                    (n, ColumnReference(holder, column))
                    for n, column in arg.pairs([n for n in names if n not in excluded])
                ]
            elif isinstance(arg, ColumnReference | IxColumn):
                out.append((arg.name, arg))
            else:
                from deltaflow.argument_errors import ArgumentError

                raise ArgumentError(
                    f"{operation}: positional arguments must be column "
                    f"references, got {arg!r}; name computed columns with "
                    f"keywords"
                )
        return out

    # --- API ----------------------------------------------------------------------------------
    def select(self, *args: Any, **kwargs: Any) -> Table:
        """The joined rows with the given columns."""
        outputs = self._expand(args, "select")
        spread, kwargs = expand_keywords(kwargs, lambda a: self._expand(a, "select"))
        outputs += spread  # **pw.left.with_prefix("l_") ...
        outputs += [(name, wrap_value(value)) for name, value in kwargs.items()]
        names = [n for n, _ in outputs]
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"select on {self._description}: column {duplicate!r} is given twice")
        check_not_id(names, f"select on {self._description}")
        source, outputs = join_inputs(self, outputs, "select")
        projection = CompiledProjection(source._scope("select"), outputs)
        node = plan.SelectNode(
            columns=dict(projection.types),
            inputs=(source._wide._node,),
            projection=projection,
            label="join select",
        )
        return _table_class()(node, self._wide._universe)

    def filter(self, filter_expression: Any) -> JoinResult:
        """The joined rows for which the condition holds. A condition
        ``column.is_not_none()`` makes that column non-optional afterwards (as in Pathway)."""
        expression = wrap_value(filter_expression)
        source, ((_, expression),) = join_inputs(self, [("__keep", expression)], "filter")
        scope = source._scope("filter")
        projection = CompiledProjection(scope, [("__keep", expression)])
        if projection.types["__keep"].strip_optional() != t.BOOL:
            raise ExpressionError(
                f"filter on {self._description}: the condition must be a bool expression"
            )
        wide = source._wide
        node: plan.Node = plan.FilterNode(
            columns=narrowed_columns(wide._columns, expression, scope),
            inputs=(wide._node,),
            predicate=projection,
            label="join filter",
        )
        if wide is not self._wide:  # foreign columns were brought in: drop them again
            node = self._wide._trimmed(node, "join filter")
        copy = self._copy()
        copy._foreign = None
        copy._wide = _table_class()(node, plan.Universe(parent=self._wide._universe))
        return copy

    # --- universes ------------------------------------------------------------------------
    def promise_universe_is_equal_to(self, other: Table | JoinResult) -> JoinResult:
        """Promise that the joined rows have exactly the ids of ``other``'s rows."""
        universe_checks.promise_equal(self._wide._universe, _universe_of(other))
        return self

    def promise_universe_is_subset_of(self, other: Table | JoinResult) -> JoinResult:
        """Promise that every id of the joined rows is an id of ``other``."""
        universe_checks.promise_subset(self._wide._universe, _universe_of(other))
        return self

    def promise_universes_are_disjoint(self, other: Table | JoinResult) -> JoinResult:
        """Promise that no id of the joined rows is an id of ``other``."""
        _universe_of(other)  # checks the argument
        universe_checks.promise_disjoint(
            self._wide, other._wide if isinstance(other, JoinResult) else other
        )
        return self

    def groupby(self, *args: Any, id: Any = None) -> GroupedTable:  # noqa: A002
        """Group the joined rows (then ``reduce``). As in Pathway, only ``id=`` may be given
        by keyword (any other keyword is a ``TypeError``)."""
        for arg in args:
            if isinstance(arg, str):
                # A bare name is ambiguous across the joined tables; the wide table's own
                # names are internal, so ask for a reference.
                raise TypeError(
                    f"groupby on {self._description}: expected column references, "
                    f"got the string {arg!r}; use pw.this.{arg}, pw.left.{arg}, "
                    f"pw.right.{arg} or <table>.{arg}"
                )
        grouped = _grouped(
            self._wide, args, id, None, self._description, self._scope, self._wide._node
        )
        grouped._key_aliases = self._equal_columns()
        return grouped

    def _equal_columns(self) -> dict[str, tuple[str, ...]]:
        """For each wide column, the others known to hold the same value. As in Pathway, only
        an inner join relates them: there ``pw.this.k`` of a condition ``left.k == right.k``
        is ``pw.left.k`` (when the sides' types agree), so grouping by one and reducing with
        the other is allowed."""
        if self._mode != "inner":
            return {}
        columns = self._wide._columns
        out: dict[str, tuple[str, ...]] = {}
        for name in self._coalesced:
            merged, left_col = f"__t__{name}", f"__l__{name}"
            if columns.get(left_col) == columns[merged]:
                out[merged], out[left_col] = (left_col,), (merged,)
        return out

    def reduce(self, *args: Any, **kwargs: Any) -> Table:
        """Reduce all joined rows to one row."""
        return self.groupby().reduce(*args, **kwargs)


Joinable: TypeAlias = "Table | JoinResult"  # what a join side may be


def _universe_of(other: Any) -> plan.Universe:
    """The universe of a table or of a join result's rows."""
    if isinstance(other, JoinResult):
        return other._wide._universe
    if not isinstance(other, _table_class()):
        raise TypeError(f"expected a table or a join result, got {other!r}")
    return other._universe


def _id_side(
    id: Any,
    left_side: Joinable,
    right_side: Joinable,  # noqa: A002
    mode: str,
    description: str,
) -> str | None:
    """Which side's ids a join with ``id=`` keeps ("left"/"right"), checked as Pathway
    checks it when the join is defined: ``id=`` must be a column reference (ValueError) to
    the id of a side (AssertionError), and the mode must keep every row of that side and
    give it at most one row (KeyError: no outer join, no left join with the right side's
    ids, no right join with the left side's)."""
    if id is None:
        return None
    Table = _table_class()
    if not isinstance(id, ColumnReference):
        raise ValueError(
            f"{description}: id= must be a column reference (the id of one "
            f"side: left_table.id / pw.left.id or right_table.id / pw.right.id), "
            f"got {id!r}"
        )
    if id.name != "id":
        raise AssertionError(
            f"{description}: id= must be the id column of one side "
            f"(left_table.id or right_table.id), not column {id.name!r}"
        )
    owner = id.table
    if owner is left or owner is this or (isinstance(left_side, Table) and _owns(left_side, owner)):
        side = "left"  # pw.this.id names the left side's ids, as in Pathway
    elif owner is right or (isinstance(right_side, Table) and _owns(right_side, owner)):
        side = "right"
    elif _side_owns(left_side, owner) or _side_owns(right_side, owner):
        raise ValueError(
            f"{description}: id= must be the id of a whole side "
            f"(pw.left.id or pw.right.id), not of {owner!r} inside a "
            f"joined join result"
        )
    else:
        raise ValueError(f"{description}: id= refers to a table that is not joined")
    if (
        mode == "outer"
        or (mode == "left" and side == "right")
        or (mode == "right" and side == "left")
    ):
        article = "an" if mode in ("inner", "outer") else "a"
        raise KeyError(
            f"{description}: {article} {mode} join cannot take the ids of its {side} "
            f"side (some rows have no {side} row, or several rows share one); use "
            f"id= only with an inner join or with the side every row keeps"
        )
    return side


def _join_universe(
    left_table: Table, right_table: Table, mode: str, id_side: str | None
) -> plan.Universe:
    """The rows of a join's result as the plan knows them: with ``id=`` of a side, those of
    that side (a left join keeps every left row) or a subset of them (an inner join)."""
    if id_side is None:
        return plan.Universe()
    kept = left_table if id_side == "left" else right_table
    if mode == id_side:
        return kept._universe
    return plan.Universe(parent=kept._universe)
