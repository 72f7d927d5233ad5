"""``pw.stdlib``: the standard library of table operations built on the core API."""

import sys

from deltaflow import temporal
from deltaflow.stdlib import graphs, ml, ordered, stateful, statistical, utils, viz
from deltaflow.temporal import _clock

# ``pw.stdlib.temporal`` is ``pw.temporal`` itself. Registering the package (and its wall-clock
# module, ``time_utils``) under their ``stdlib`` names makes ``import
# deltaflow.stdlib.temporal.time_utils`` and ``mock.patch("deltaflow.stdlib.temporal.
# time_utils.utc_now")`` reach the very modules the code uses, as Pathway's paths do.
sys.modules.setdefault(f"{__name__}.temporal", temporal)
sys.modules.setdefault(f"{__name__}.temporal.time_utils", _clock)

__all__ = ["graphs", "ml", "ordered", "stateful", "statistical", "temporal", "utils", "viz"]
