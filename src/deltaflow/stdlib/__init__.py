"""``pw.stdlib``: the standard library of table operations built on the core API."""

import sys
import types
from typing import Any

from deltaflow import temporal
from deltaflow.stdlib import graphs, ml, ordered, stateful, statistical, utils, viz
from deltaflow.temporal import _clock
from deltaflow.temporal import utils as _temporal_utils

# ``pw.stdlib.temporal`` is ``pw.temporal`` itself. Registering the package (and its wall-clock
# module, ``time_utils``) under their ``stdlib`` names makes ``import
# deltaflow.stdlib.temporal.time_utils`` and ``mock.patch("deltaflow.stdlib.temporal.
# time_utils.utc_now")`` reach the very modules the code uses, as Pathway's paths do.
sys.modules.setdefault(f"{__name__}.temporal", temporal)
sys.modules.setdefault(f"{__name__}.temporal.time_utils", _clock)
sys.modules.setdefault(f"{__name__}.temporal.utils", _temporal_utils)


def _submodule(path: str, **members: Any) -> None:
    """Make ``import deltaflow.stdlib.<path>`` work where Pathway has a module of that name
    (``pw.stdlib.ordered.diff`` stays the function, as in Pathway)."""
    module = types.ModuleType(f"{__name__}.{path}", f"``pw.stdlib.{path}``.")
    module.__dict__.update(members, __all__=sorted(members))
    sys.modules.setdefault(module.__name__, module)


_submodule("ordered.diff", diff=ordered.diff)
_submodule("stateful.deduplicate", deduplicate=stateful.deduplicate)

__all__ = ["graphs", "ml", "ordered", "stateful", "statistical", "temporal", "utils", "viz"]
