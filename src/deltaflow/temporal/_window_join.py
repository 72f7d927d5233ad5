"""(being written)"""

from typing import Any


class WindowJoinResult:
    pass

def window_join(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("window_join")

def window_join_inner(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("window_join_inner")

def window_join_left(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("window_join_left")

def window_join_outer(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("window_join_outer")

def window_join_right(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("window_join_right")

