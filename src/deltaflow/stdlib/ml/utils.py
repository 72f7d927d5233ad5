"""``pw.stdlib.ml.utils``: evaluating classifiers."""

from __future__ import annotations

from deltaflow import reducers
from deltaflow.table import Table

__all__ = ["classifier_accuracy"]


def classifier_accuracy(predicted_labels: Table, exact_labels: Table) -> Table:
    """How many predictions are right and how many wrong.

    ``predicted_labels`` (column ``predicted_label``) must be keyed by ids of
    ``exact_labels`` (column ``label``). The result has a row per outcome: ``value`` is True
    for the correct predictions and False for the others, ``cnt`` how many there are.
    """
    truth = exact_labels.restrict(predicted_labels)
    compared = predicted_labels.select(
        match=predicted_labels.predicted_label == truth.ix(predicted_labels.id).label
    )
    return compared.groupby(compared.match).reduce(cnt=reducers.count(), value=compared.match)
