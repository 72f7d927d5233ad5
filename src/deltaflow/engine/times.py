"""How the engine numbers its times: the even millisecond timestamps live commits get, how
waiting commits share times (one each, or merged when a backlog builds up), and the final
time at which rows held back until the end are released."""

from __future__ import annotations

import time as _time

import polars as pl

#: The time of the changes released when every input has finished (held rows of ``buffer``
#: and delayed windows), as in Pathway: the largest even 64-bit unsigned time.
FINAL_TIME = 18446744073709551614
#: Up to this many commits of one input waiting for the engine are processed one time each (as
#: the source committed them); a longer backlog is merged into one time so the engine catches up.
#: Kept small: under load, taking 8 waiting commits one by one measured 10-70 ms p50 latency on
#: the windowed benchmark against 3-8 ms merging them.
MERGE_BACKLOG_ABOVE = 2


def even_now_ms() -> int:
    """The current time in milliseconds since the epoch, rounded up to an even number (odd
    times are left for the times operators ask for themselves, such as ``forget``'s)."""
    now = int(_time.time() * 1000)
    return now + (now & 1)


def live_times(
    live: list[tuple[int, pl.DataFrame]],
) -> list[list[tuple[int, pl.DataFrame]]]:
    """The times the waiting live commits make: the k-th commit of every input shares the k-th
    time, unless an input has more than :data:`MERGE_BACKLOG_ABOVE` commits waiting, whose
    commits then all go into the first time (merged, never split)."""
    per_input: dict[int, list[pl.DataFrame]] = {}
    for index, batch in live:
        per_input.setdefault(index, []).append(batch)
    times: list[list[tuple[int, pl.DataFrame]]] = []
    for index, batches in per_input.items():
        groups = [batches] if len(batches) > MERGE_BACKLOG_ABOVE else [[b] for b in batches]
        for position, group in enumerate(groups):
            if position == len(times):
                times.append([])
            times[position].extend((index, batch) for batch in group)
    return times
