"""``pw.stdlib.ml``: matching and classification helpers built on table operators.

``smart_table_ops`` (fuzzy matching of rows), ``classifiers`` (k-NN through locality
sensitive hashing), ``hmm`` (a hidden Markov model reducer), ``datasets`` (MNIST) and
``utils`` (classifier accuracy).
"""

from deltaflow.stdlib.ml import classifiers, datasets, hmm, smart_table_ops, utils

__all__ = ["classifiers", "datasets", "hmm", "smart_table_ops", "utils"]
