"""``pw.sql``: run a SQL query over tables, as one more Table of the pipeline.

The query is parsed with sqlglot (the optional ``sql`` extra) and translated into Table API
operations (select, filter, groupby/reduce, joins, concat_reindex, intersect, difference),
so its result updates incrementally like any other table. See docs/sql.md for what is
supported and how it differs from Pathway.
"""

from __future__ import annotations

from deltaflow.error_display import user_call
from deltaflow.table import Table

__all__ = ["sql"]


@user_call
def sql(query: str, **kwargs: Table) -> Table:
    """The table computed by the SQL ``query``, whose table names are the keyword arguments.

    ``pw.sql("SELECT a, SUM(b) AS total FROM t GROUP BY a", t=table)`` groups ``table``.
    Table and column names are case-sensitive. Constructs outside the supported subset
    (ORDER BY, LIMIT, window functions, INSERT ...) raise ``NotImplementedError`` naming them.

    Parameters:
        query: one SELECT statement (joins, WHERE, GROUP BY, HAVING, UNION, subqueries ...).
        **kwargs: the tables the query names, by name.

    Examples:
        >>> import deltaflow as pw
        >>> sales = pw.debug.table_from_markdown('''
        ... shop | qty
        ... a    | 2
        ... a    | 6
        ... b    | 5
        ... ''')
        >>> r = pw.sql("SELECT shop, SUM(qty) AS total FROM s WHERE qty > 2 GROUP BY shop", s=sales)
        >>> pw.debug.compute_and_print(r, include_id=False)
        shop | total
        a    | 6
        b    | 5
    """
    if not isinstance(query, str):
        raise TypeError(f"pw.sql: the query must be a str, got {type(query).__name__}")
    for name, table in kwargs.items():
        if not isinstance(table, Table):
            raise TypeError(
                f"pw.sql: argument {name!r} must be a Table, got {type(table).__name__}"
            )
    from deltaflow.sql._parse import parse_query, sqlglot_modules
    from deltaflow.sql._query import QueryTranslator

    statement = parse_query(query)
    _, exp = sqlglot_modules()
    translator = QueryTranslator(kwargs)
    translator.uses_id = any(c.name == "id" for c in statement.find_all(exp.Column))
    return translator.query(statement)
