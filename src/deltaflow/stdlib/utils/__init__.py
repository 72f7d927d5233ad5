"""``pw.stdlib.utils`` (also ``pw.utils``): small helpers built on the table API."""

from deltaflow.stdlib.utils import bucketing, col, filtering

__all__ = ["bucketing", "col", "filtering"]
