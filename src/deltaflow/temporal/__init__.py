"""Time: windows, temporal joins, behaviors for late data, and wall-clock helpers.

``pw.temporal`` (also reachable as ``pw.stdlib.temporal``). Windows assign rows to windows
and reuse the grouped reduce; temporal joins keep arrangements ordered by time within the key;
behaviors act on each operator's event-time frontier (the largest time seen so far).
"""

from deltaflow.temporal import _clock as time_utils
from deltaflow.temporal._asof import (
    AsofJoinResult,
    Direction,
    asof_join,
    asof_join_left,
    asof_join_outer,
    asof_join_right,
)
from deltaflow.temporal._asof_now import (
    AsofNowJoinResult,
    asof_now_join,
    asof_now_join_inner,
    asof_now_join_left,
)
from deltaflow.temporal._behaviors import (
    Behavior,
    CommonBehavior,
    ExactlyOnceBehavior,
    common_behavior,
    exactly_once_behavior,
)
from deltaflow.temporal._clock import add_update_timestamp_utc, inactivity_detection, utc_now
from deltaflow.temporal._interval_join import (
    Interval,
    IntervalJoinResult,
    interval,
    interval_join,
    interval_join_inner,
    interval_join_left,
    interval_join_outer,
    interval_join_right,
)
from deltaflow.temporal._window import Window
from deltaflow.temporal._window_functions import (
    intervals_over,
    session,
    sliding,
    tumbling,
    windowby,
)
from deltaflow.temporal._window_join import (
    WindowJoinResult,
    window_join,
    window_join_inner,
    window_join_left,
    window_join_outer,
    window_join_right,
)

__all__ = [
    "AsofJoinResult",
    "AsofNowJoinResult",
    "Behavior",
    "CommonBehavior",
    "Direction",
    "ExactlyOnceBehavior",
    "Interval",
    "IntervalJoinResult",
    "Window",
    "WindowJoinResult",
    "add_update_timestamp_utc",
    "asof_join",
    "asof_join_left",
    "asof_join_outer",
    "asof_join_right",
    "asof_now_join",
    "asof_now_join_inner",
    "asof_now_join_left",
    "common_behavior",
    "exactly_once_behavior",
    "inactivity_detection",
    "interval",
    "interval_join",
    "interval_join_inner",
    "interval_join_left",
    "interval_join_outer",
    "interval_join_right",
    "intervals_over",
    "session",
    "sliding",
    "time_utils",
    "tumbling",
    "utc_now",
    "window_join",
    "window_join_inner",
    "window_join_left",
    "window_join_outer",
    "window_join_right",
    "windowby",
]

# Pathway's module paths for this package (``pathway.stdlib.temporal`` and its
# ``temporal_behavior`` module), so that ``from pathway.stdlib.temporal.temporal_behavior
# import common_behavior`` has a deltaflow equivalent.
import sys as _sys  # noqa: E402

from deltaflow.temporal import _behaviors as _temporal_behavior  # noqa: E402

_sys.modules.setdefault("deltaflow.stdlib.temporal", _sys.modules[__name__])
_sys.modules.setdefault("deltaflow.stdlib.temporal.temporal_behavior", _temporal_behavior)
