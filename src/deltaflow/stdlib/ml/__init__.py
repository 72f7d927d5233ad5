"""``pw.stdlib.ml``: matching and classification helpers built on table operators.

``smart_table_ops`` (fuzzy matching of rows), ``classifiers`` (k-NN through locality
sensitive hashing), ``hmm`` (a hidden Markov model reducer), ``datasets`` and ``utils``.
"""

from deltaflow.stdlib.ml import classifiers, smart_table_ops

__all__ = ["classifiers", "smart_table_ops"]
