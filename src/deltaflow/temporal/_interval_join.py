"""(being written)"""

from typing import Any


class Interval:
    pass

class IntervalJoinResult:
    pass

def interval(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("interval")

def interval_join(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("interval_join")

def interval_join_inner(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("interval_join_inner")

def interval_join_left(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("interval_join_left")

def interval_join_outer(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("interval_join_outer")

def interval_join_right(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("interval_join_right")

