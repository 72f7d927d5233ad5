"""Parsing SQL text with sqlglot, and the errors ``pw.sql`` raises for what it does not support.

sqlglot is an optional dependency (the ``sql`` extra): it is imported only when a query is
parsed, so ``import deltaflow`` works without it.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from deltaflow.errors import DefinitionError

logger = logging.getLogger(__name__)

_INSTALL_HINT = "pw.sql needs the sqlglot package: pip install 'deltaflow[sql]'"


class UnsupportedSqlError(DefinitionError, NotImplementedError):
    """A construct of the query that ``pw.sql`` cannot translate (the message names it)."""


class UnsupportedSqlAssertion(UnsupportedSqlError, AssertionError):
    """Unsupported where Pathway fails an assertion (outer join ON terms, INTERSECT ALL)."""


class MissingFromError(UnsupportedSqlError, KeyError):
    """A SELECT without FROM (Pathway raises KeyError here)."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0])


class CorrelatedSubqueryError(DefinitionError, SyntaxError):
    """A subquery refers to a table of the query around it (Pathway raises SyntaxError here)."""


def unsupported(
    node: Any, what: str | None = None, error: type[UnsupportedSqlError] = UnsupportedSqlError
) -> UnsupportedSqlError:
    """The error for an unsupported construct, quoting it as SQL."""
    text = node.sql() if hasattr(node, "sql") else str(node)
    prefix = f"{what}: " if what else ""
    return error(f"{prefix}{text} is not supported by pw.sql")


def reject_unhandled(node: Any, handled: set[str]) -> None:
    """Raise for any part of ``node`` (ORDER BY, ROLLUP, LIMIT ...) outside ``handled``."""
    for part, value in node.args.items():
        if part not in handled and value not in (None, False, []):
            context = node.sql()
            context = context if len(context) <= 120 else context[:117] + "..."
            raise UnsupportedSqlError(f"{part.upper()}: {context} is not supported by pw.sql")


def sqlglot_modules() -> tuple[ModuleType, ModuleType]:
    """``(sqlglot, sqlglot.expressions)``, or an ImportError that says how to install them."""
    try:
        import sqlglot
        from sqlglot import expressions
    except ImportError as error:  # pragma: no cover - exercised with sqlglot hidden
        raise ImportError(_INSTALL_HINT) from error
    return sqlglot, expressions


def parse_query(query: str) -> Any:
    """Parse ``query`` into one sqlglot expression tree.

    Like Pathway, only the first statement of a text holding several is run; the others are
    reported in the log rather than silently dropped.
    """
    sqlglot, exp = sqlglot_modules()
    statements = [s for s in sqlglot.parse(query) if s is not None]
    if not statements:
        raise sqlglot.errors.ParseError(f"no SQL statement found in {query!r}")
    if len(statements) > 1:
        logger.warning(
            "pw.sql runs only the first of the %d statements of the query; ignored: %s",
            len(statements),
            "; ".join(s.sql() for s in statements[1:]),
        )
    statement = statements[0]
    if not isinstance(statement, (exp.Subqueryable, exp.Subquery)):
        raise unsupported(statement)
    return statement
