"""``pw.stdlib``: the standard library of table operations built on the core API."""

from deltaflow import temporal
from deltaflow.stdlib import ordered, stateful, statistical, utils

__all__ = ["ordered", "stateful", "statistical", "temporal", "utils"]
