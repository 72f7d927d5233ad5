"""(being written)"""

from typing import Any


def inactivity_detection(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("inactivity_detection")

def utc_now(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("utc_now")

def add_update_timestamp_utc(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("add_update_timestamp_utc")

