"""(being written)"""

from typing import Any


class AsofJoinResult:
    pass

class Direction:
    pass

def asof_join(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("asof_join")

def asof_join_left(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("asof_join_left")

def asof_join_outer(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("asof_join_outer")

def asof_join_right(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("asof_join_right")

