"""``pw.stdlib.stateful``: stateful helpers expressed as functions of a table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def deduplicate(
    table: Any, *, col: Any, instance: Any = None, acceptor: Callable[[Any, Any], bool]
) -> Any:
    """Per instance, keep the latest value of ``col`` that ``acceptor(new, old)`` accepted
    (the function form of ``Table.deduplicate``)."""
    return table.deduplicate(value=col, instance=instance, acceptor=acceptor)
