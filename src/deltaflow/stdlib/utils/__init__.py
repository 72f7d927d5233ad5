"""``pw.stdlib.utils`` (also ``pw.utils``): small helpers built on the table API."""

from deltaflow.stdlib.utils import async_transformer, bucketing, col, filtering, pandas_transformer

__all__ = ["async_transformer", "bucketing", "col", "filtering", "pandas_transformer"]
