"""The pieces of the progress protocol that need no processes: the mailbox that matches rows
to their (time, operator) whatever their order of arrival, and the window setting."""

from __future__ import annotations

import polars as pl
import pytest

from deltaflow._ids import ID_DTYPE
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.workers.config import WorkerConfig, worker_config
from deltaflow.engine.workers.progress import Mailbox, merge_parts, window_size
from deltaflow.engine.workers.transport import Inboxes, WorkerError


def _inboxes(index: int, count: int = 3) -> Inboxes:
    env = {"PATHWAY_PROCESSES": str(count), "PATHWAY_PROCESS_ID": str(index)}
    config: WorkerConfig = worker_config(env)
    return Inboxes(config)


def _frame(*values: int, diff: int = 1) -> pl.DataFrame:
    return pl.DataFrame(
        [
            pl.Series(ID, list(values), dtype=ID_DTYPE),
            pl.Series("k", list(values)),
            pl.Series(DIFF, [diff] * len(values)),
        ]
    )


def test_rows_of_a_later_time_wait_for_their_time_and_operator() -> None:
    inboxes = _inboxes(1)
    mailbox = Mailbox(inboxes, 1)
    # Worker 2 is a time ahead: its rows of time 4 come before those of time 2.
    inboxes.arrived(2, ("data", 4, 7, [_frame(40)]))
    inboxes.arrived(2, ("data", 2, 7, [_frame(20)]))
    assert mailbox.rows(2, 7, [0, 2], 1) is None  # worker 0's part has not come
    inboxes.arrived(0, ("time", 4, (7,), (), False))
    inboxes.arrived(0, ("data", 2, 7, [None]))
    got = mailbox.rows(2, 7, [0, 2], 1)
    assert got is not None and [f["k"].to_list() for f in got[0]] == [[20]]
    assert mailbox.holds_rows()  # time 4's, not taken yet
    later = mailbox.rows(4, 7, [2], 1)
    assert later is not None and [f["k"].to_list() for f in later[0]] == [[40]]
    assert not mailbox.holds_rows()
    assert mailbox.control() == ("time", 4, (7,), (), False)
    assert mailbox.control() is None


def test_worker_0s_messages_after_the_end_are_left_for_whoever_reads_next() -> None:
    inboxes = _inboxes(1, count=2)
    mailbox = Mailbox(inboxes, 1)
    inboxes.arrived(0, ("time", 2, (), (), True))
    inboxes.arrived(0, ("end",))
    inboxes.arrived(0, ("checkpoint", 3, 2, True))  # read by the final checkpoint's code
    assert mailbox.control() == ("time", 2, (), (), True)
    assert mailbox.rows(2, 5, [0], 1) is None  # looking for rows pulls up to the end only
    assert inboxes.poll(0) == ("checkpoint", 3, 2, True)
    assert mailbox.control() == ("end",)


def test_a_peers_failure_while_waiting_for_rows_is_an_error() -> None:
    inboxes = _inboxes(0, count=2)
    mailbox = Mailbox(inboxes, 0)
    inboxes.arrived(1, ("failed", 1, "boom"))
    with pytest.raises(WorkerError, match="worker 1 failed: boom"):
        mailbox.rows(2, 3, [1], 1)


def test_parts_are_merged_and_consolidated() -> None:
    own = [_frame(1, 2), None]
    retract = _frame(2, diff=-1)
    merged = merge_parts(own, [[retract], []])
    assert merged[1] is None
    assert merged[0] is not None and merged[0]["k"].to_list() == [1]


def test_the_window_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DELTAFLOW_WORKERS_TIMES_IN_FLIGHT", raising=False)
    assert window_size() == 3
    monkeypatch.setenv("DELTAFLOW_WORKERS_TIMES_IN_FLIGHT", "1")
    assert window_size() == 1
    monkeypatch.setenv("DELTAFLOW_WORKERS_TIMES_IN_FLIGHT", "0")
    with pytest.raises(ValueError, match="at least 1"):
        window_size()
    monkeypatch.setenv("DELTAFLOW_WORKERS_TIMES_IN_FLIGHT", "many")
    with pytest.raises(ValueError, match="not a whole number"):
        window_size()
