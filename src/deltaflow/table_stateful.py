"""Stateful ``Table`` methods (groupby/reduce, joins, update_rows, sort, deduplicate ...).

Kept apart from :mod:`deltaflow.table` so the stateless API and the stateful one can grow
independently; ``Table`` inherits these methods.
"""

from __future__ import annotations


class StatefulMethods:
    """Mixin of ``Table``'s stateful operations."""
