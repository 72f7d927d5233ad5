"""(being written)"""

from typing import Any


class Behavior:
    pass

class CommonBehavior:
    pass

class ExactlyOnceBehavior:
    pass

def common_behavior(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("common_behavior")

def exactly_once_behavior(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("exactly_once_behavior")

def forget(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("forget")


def buffer(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("buffer")


def ignore_late(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ignore_late")


def filter_out_results_of_forgetting(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("filter_out_results_of_forgetting")
