"""(being written)"""

from typing import Any


class AsofNowJoinResult:
    pass

def asof_now_join(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("asof_now_join")

def asof_now_join_inner(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("asof_now_join_inner")

def asof_now_join_left(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("asof_now_join_left")

