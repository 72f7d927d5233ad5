"""``pw.stdlib.viz`` (also ``pw.viz``): interactive table views for notebooks.

deltaflow has no notebook widgets: ``show`` and ``plot`` (also ``Table.show`` and
``Table.plot``) raise ``NotImplementedError`` naming themselves. Print tables with
``pw.debug.compute_and_print``, or turn them into pandas with ``pw.debug.table_to_pandas``
and plot that.
"""

from __future__ import annotations

from typing import Any

__all__ = ["plot", "show"]


def _refuse(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"{name} (interactive visualisation) is not supported by "
        f"deltaflow; use pw.debug.compute_and_print or plot "
        f"pw.debug.table_to_pandas(table)"
    )


def plot(self: Any, plotting_function: Any, sorting_col: Any = None) -> Any:
    """Not supported: raises ``NotImplementedError``."""
    raise _refuse("Table.plot")


def show(
    self: Any,
    *,
    snapshot: bool = True,
    include_id: bool = True,
    short_pointers: bool = True,
    sorters: list[dict[str, str]] | None = None,
    page_size: int = 10,
    table_height: int = 400,
) -> Any:
    """Not supported: raises ``NotImplementedError``."""
    raise _refuse("Table.show")
