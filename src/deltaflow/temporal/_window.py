"""(being written)"""

from typing import Any


class Window:
    pass

def intervals_over(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("intervals_over")

def session(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("session")

def sliding(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sliding")

def tumbling(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("tumbling")

def windowby(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("windowby")

