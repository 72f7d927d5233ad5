"""``pw.stdlib.ml.datasets.classification``: the MNIST digits as tables.

:func:`load_mnist_sample` downloads MNIST through scikit-learn's ``fetch_openml`` (it needs
scikit-learn and network access) and returns ``sample_size`` images split as MNIST is: six
sevenths from its 60,000 training images, one seventh from its 10,000 test images. Pixels
are scaled to [0, 1]; labels are the digit strings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deltaflow.debug import table_from_pandas
from deltaflow.table import Table

__all__ = ["load_mnist_sample", "load_mnist_stream"]

_TRAIN_IMAGES = 60_000


def _fetch_mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import fetch_openml  # type: ignore[import-not-found]
    except ImportError as error:
        raise ImportError(
            "load_mnist_sample downloads MNIST with scikit-learn, which is not installed: "
            "pip install scikit-learn"
        ) from error
    images, labels = fetch_openml("mnist_784", version=1, return_X_y=True, as_frame=False)
    return np.asarray(images) / 255.0, np.asarray(labels)


def _split_tables(
    images: np.ndarray, labels: np.ndarray, sample_size: int
) -> tuple[Table, Table, Table, Table]:
    """Train and test tables (images, labels) of ``sample_size`` rows in all, taken from
    the first ``_TRAIN_IMAGES`` rows and from the rows after them."""
    train_size = int(sample_size * 6 / 7)
    test_size = int(sample_size / 7)
    train = slice(0, min(train_size, _TRAIN_IMAGES))
    test = slice(_TRAIN_IMAGES, _TRAIN_IMAGES + test_size)

    def images_table(rows: Any) -> Table:
        return table_from_pandas(pd.DataFrame({"data": [np.array(r) for r in rows.tolist()]}))

    def labels_table(rows: Any) -> Table:
        return table_from_pandas(pd.DataFrame({"label": rows.tolist()}))

    return (
        images_table(images[train]),
        labels_table(labels[train]),
        images_table(images[test]),
        labels_table(labels[test]),
    )


def load_mnist_sample(sample_size: int = 70000) -> tuple[Table, Table, Table, Table]:
    """``(train images, train labels, test images, test labels)`` of MNIST: ``data``
    columns of 784-pixel arrays and ``label`` columns."""
    images, labels = _fetch_mnist()
    return _split_tables(images, labels, sample_size)


load_mnist_stream = load_mnist_sample
