"""Reporting the records an input skips, without flooding the log.

A file with 200,000 bad rows must not print 200,000 lines: an input logs its first few
skipped records one by one, then only counts them, and logs a summary with the count (and the
latest one) at most every few seconds and when it stops. With ``terminate_on_error=False``
every skipped record is also a row of the error log (``pw.global_error_log()``), as Pathway
does; those rows are data, so none is left out.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from deltaflow import errors
from deltaflow.io._core.base import ParseError

logger = logging.getLogger("deltaflow.io")

#: Skipped records logged one by one by an input before it only counts them.
LOGGED_ONE_BY_ONE = 10
#: The least time between two summaries of the records skipped since.
SUMMARY_INTERVAL_S = 10.0


class BadRecordLog:
    """The skipped records (and, with ``terminate_on_error=False``, the bad values kept as
    Error cells) of one input during one run."""

    def __init__(self, source: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.total = 0  # reports so far in this run
        self._clock = clock
        self._unlogged = 0  # counted since the last summary, not logged one by one
        self._latest: str | None = None
        self._last_summary = clock()

    def report(self, skipped: Sequence[ParseError]) -> None:
        """Report records the parser skipped (in the order it found them)."""
        keep = errors.keeps_errors()
        for error in skipped:
            if keep:  # the reason alone, as Pathway's rows read (the log line says where)
                errors.report_connector(error.reason, log=False)
            self._note(f"skipped the record at {error.where}: {error.reason}")
        self._maybe_summarize()

    def report_value(self, message: str) -> None:
        """Report a bad value kept as an Error cell: a row of the error log, logged within
        the same limits as skipped records."""
        errors.report_connector(message, log=False)
        self._note(f"bad value: {message}")
        self._maybe_summarize()

    def _note(self, text: str) -> None:
        self.total += 1
        if self.total <= LOGGED_ONE_BY_ONE:
            logger.error("%s: %s", self.source, text)
            if self.total == LOGGED_ONE_BY_ONE:
                logger.error(
                    "%s: further bad records are counted, with a summary every %g s",
                    self.source,
                    SUMMARY_INTERVAL_S,
                )
        else:
            self._unlogged += 1
            self._latest = text

    def _maybe_summarize(self) -> None:
        if self._unlogged and self._clock() - self._last_summary >= SUMMARY_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Log the summary of the reports counted since the last one, if any."""
        self._last_summary = self._clock()
        if not self._unlogged or self._latest is None:
            return
        logger.error(
            "%s: %d more bad records (%d in all); the latest: %s",
            self.source,
            self._unlogged,
            self.total,
            self._latest,
        )
        self._unlogged = 0
        self._latest = None


_current = threading.local()


@contextlib.contextmanager
def reporting_to(log: BadRecordLog) -> Iterator[None]:
    """Make ``log`` the one that parsers on this thread report bad values to (an input
    session's thread, while it runs)."""
    previous = getattr(_current, "log", None)
    _current.log = log
    try:
        yield
    finally:
        _current.log = previous


def report_bad_value(message: str) -> None:
    """A bad value kept as an Error cell: to the error log, and logged through the current
    input's rate limit (logged directly when no input session is running this parser)."""
    log: BadRecordLog | None = getattr(_current, "log", None)
    if log is None:
        errors.report_connector(message)
    else:
        log.report_value(message)
