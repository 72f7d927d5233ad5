"""What the names of a query refer to: the tables of its FROM clause and their columns.

A query's FROM clause becomes one *relation*: a single Table holding every column of every
table named in FROM (for a join, a select over the join with fresh column names), plus the
bookkeeping that maps SQL names (``t.a``, ``a``) to the columns of that Table.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from deltaflow.table import Table


@dataclass(frozen=True)
class Source:
    """One table of a FROM clause, as the query sees it.

    ``name`` is the qualifier usable in the query (the alias, else the table's name; ``None``
    for an unnamed subquery) and ``columns`` maps its SQL column names to the columns of the
    relation's table that hold them. ``derived`` marks a subquery (as opposed to a table or
    a WITH name): ``SELECT *`` lists derived tables' columns last, as Pathway does.
    ``id_column`` is the column holding the source's row ids once it was joined (before,
    they are the relation table's own ids).
    """

    name: str | None
    columns: Mapping[str, str]
    derived: bool = False
    id_column: str | None = None


@dataclass(frozen=True)
class Relation:
    """The FROM clause of one SELECT, flattened into one table.

    ``star`` lists what ``SELECT *`` expands to, as (output name, column of ``table``) pairs;
    ``equated`` maps columns a join condition made equal to the one that stands for them all,
    so that an unqualified name present on both sides of ``t1 JOIN t2 ON t1.a = t2.a`` is not
    ambiguous (as with ``pw.this`` on a Pathway join).
    """

    table: Table
    sources: tuple[Source, ...]
    star: tuple[tuple[str, str], ...]
    equated: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def of_table(table: Table, name: str | None, derived: bool = False) -> Relation:
        """The relation of a single table, whose columns keep their names."""
        names = table.column_names()
        return Relation(
            table, (Source(name, {c: c for c in names}, derived),), tuple((c, c) for c in names)
        )

    def with_table(self, table: Table) -> Relation:
        """The same names over a table derived from this one (filtered, with extra columns)."""
        return replace(self, table=table)

    def renamed(self, mapping: Mapping[str, str]) -> Relation:
        """The bookkeeping after the table's columns were renamed by ``mapping``."""
        sources = tuple(
            Source(
                s.name,
                {k: mapping[v] for k, v in s.columns.items()},
                s.derived,
                None if s.id_column is None else mapping[s.id_column],
            )
            for s in self.sources
        )
        star = tuple((name, mapping[column]) for name, column in self.star)
        equated = {mapping[k]: mapping[v] for k, v in self.equated.items()}
        return Relation(self.table, sources, star, equated)

    def source_names(self) -> list[str]:
        return [s.name for s in self.sources if s.name is not None]

    def has_source(self, qualifier: str) -> bool:
        return any(s.name == qualifier for s in self.sources)

    def star_columns(self) -> list[tuple[str, str]]:
        """What ``SELECT *`` expands to: tables' columns first, then subqueries' (in order)."""
        derived = {c for s in self.sources if s.derived for c in s.columns.values()}
        return [entry for entry in self.star if entry[1] not in derived] + [
            entry for entry in self.star if entry[1] in derived
        ]

    def star_of(self, qualifier: str) -> list[tuple[str, str]]:
        """What ``qualifier.*`` expands to."""
        source = self._source(qualifier)
        return list(source.columns.items())

    def id_source(self, qualifier: str) -> Source:
        """The source whose row ids ``qualifier.id`` means."""
        return self._source(qualifier)

    def _source(self, qualifier: str) -> Source:
        matches = [s for s in self.sources if s.name == qualifier]
        if not matches:
            raise KeyError(
                f"pw.sql: no table {qualifier!r} in the FROM clause; "
                f"its tables are {', '.join(self.source_names()) or '(unnamed)'}"
            )
        if len(matches) > 1:
            raise KeyError(
                f"pw.sql: table name {qualifier!r} is used twice in the FROM "
                "clause; give each an alias"
            )
        return matches[0]

    def resolve(self, name: str, qualifier: str | None) -> str:
        """The column of ``table`` that holds ``qualifier.name`` (KeyError if none or several)."""
        if qualifier is not None:
            source = self._source(qualifier)
            if name not in source.columns:
                raise KeyError(
                    f"pw.sql: table {qualifier!r} has no column {name!r}; its "
                    f"columns are {', '.join(source.columns) or '(none)'}"
                )
            return source.columns[name]
        candidates = [s.columns[name] for s in self.sources if name in s.columns]
        if not candidates:
            known = sorted({c for s in self.sources for c in s.columns})
            raise KeyError(
                f"pw.sql: no column {name!r} in the FROM clause; its columns are "
                f"{', '.join(known) or '(none)'}"
            )
        standing_for = {self.equated.get(c, c) for c in candidates}
        if len(standing_for) > 1:
            owners = [s.name or "(subquery)" for s in self.sources if name in s.columns]
            raise KeyError(
                f"pw.sql: column {name!r} is ambiguous: it is in "
                f"{' and '.join(owners)}; qualify it (e.g. {owners[0]}.{name})"
            )
        return standing_for.pop()

    def can_resolve(self, name: str, qualifier: str | None) -> bool:
        try:
            self.resolve(name, qualifier)
        except KeyError:
            return False
        return True


class FreshNames:
    """Column names that never collide with each other within one query's translation."""

    def __init__(self, prefix: str = "c") -> None:
        self._prefix = prefix
        self._counter: Iterator[int] = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter)}"
