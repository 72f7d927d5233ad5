"""``pw.stdlib.ml.datasets``: sample data sets as tables."""

from deltaflow.stdlib.ml.datasets import classification

__all__ = ["classification"]
