"""Child processes that must not outlive the process that started them.

Both ``deltaflow spawn`` (its workers) and the fork rescue of :mod:`deltaflow._fork` (a fresh
interpreter rerunning a forked child's target) start a child that runs a pipeline on its
parent's behalf. When the parent stops, the child must stop too: a SIGTERM the parent gets is
passed on (:func:`forward_stop_signals`), and a parent killed outright (SIGKILL, which it
cannot pass on) is reported to the child by the kernel (:func:`stop_with_parent`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_with_parent(parent_pid: int) -> None:
    """In a freshly started child, before its program runs (Linux): get SIGTERM when the
    parent dies, so that a parent killed with SIGKILL leaves no child running. Elsewhere, or
    without ``prctl``, nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def forward_stop_signals(children: Sequence[subprocess.Popen[Any]]) -> Iterator[None]:
    """While in the block, pass SIGINT and SIGTERM on to the ``children`` still running.
    Outside the main thread, where handlers cannot be set, nothing is forwarded."""

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    try:
        previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_like(returncode: int) -> None:
    """End this process the way a child ended: with its exit status, or killed by the same
    signal (so that whoever waits for this process sees the signal, not a code)."""
    if returncode < 0:
        signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    os._exit(returncode if returncode >= 0 else 128 - returncode)
