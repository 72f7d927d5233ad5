"""The ``.str``, ``.dt`` and ``.num`` method namespaces of column expressions.

Each method returns a node whose result type is worked out (and its arguments checked) when the
expression is used in a table operation, so a ``.str`` method on an int column fails where the
pipeline is defined. Methods Polars computes the same way Pathway does become
:class:`MethodCall` nodes (vectorised Polars expressions); methods whose exact semantics only
Python has (``title``, ``find`` on code points, ``round`` to decimals ...) run per row; parsing
methods run on whole columns and raise on the first value they cannot parse.

A None value in the column gives None (Pathway rejects Optional columns here; deltaflow
propagates None instead).

The package holds one module per namespace (``_string``, ``_datetime``, ``_numeric``), the
machinery they share (``_common``: argument type rules, the node kinds) and the constant
date-time arguments' parsing (``_time_values``: durations, frequencies, time zones).
"""

from deltaflow.expressions.namespaces._common import SeriesMethodCall
from deltaflow.expressions.namespaces._datetime import DateTimeNamespace
from deltaflow.expressions.namespaces._numeric import NumericalNamespace
from deltaflow.expressions.namespaces._string import StringNamespace

__all__ = ["DateTimeNamespace", "NumericalNamespace", "SeriesMethodCall", "StringNamespace"]
