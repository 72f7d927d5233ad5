"""``pw.stdlib``: the standard library of table operations built on the core API."""

from deltaflow import temporal
from deltaflow.stdlib import ordered, statistical

__all__ = ["ordered", "statistical", "temporal"]
