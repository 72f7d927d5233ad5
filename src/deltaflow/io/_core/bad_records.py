"""Reporting the records an input skips, without flooding the log.

A file with 200,000 bad rows must not print 200,000 lines: an input logs its first few
skipped records one by one, then only counts them, and logs a summary with the count (and the
latest one) at most every few seconds and when it stops. With ``terminate_on_error=False``
every skipped record is also a row of the error log (``pw.global_error_log()``), as Pathway
does; those rows are data, so none is left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from deltaflow import errors
from deltaflow.io._core.base import ParseError

logger = logging.getLogger("deltaflow.io")

#: Skipped records logged one by one by an input before it only counts them.
LOGGED_ONE_BY_ONE = 10
#: The least time between two summaries of the records skipped since.
SUMMARY_INTERVAL_S = 10.0


class BadRecordLog:
    """The skipped records of one input during one run."""

    def __init__(self, source: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.total = 0  # skipped records reported so far in this run
        self._clock = clock
        self._unlogged = 0  # counted since the last summary, not logged one by one
        self._latest: ParseError | None = None
        self._last_summary = clock()

    def report(self, skipped: Sequence[ParseError]) -> None:
        """Report records the parser skipped (in the order it found them)."""
        keep = errors.keeps_errors()
        for error in skipped:
            self.total += 1
            if keep:
                errors.report_connector(f"skipped the record at {error.where}: {error.reason}",
                                        log=False)
            if self.total <= LOGGED_ONE_BY_ONE:
                logger.error("%s: skipped the record at %s: %s", self.source, error.where,
                             error.reason)
                if self.total == LOGGED_ONE_BY_ONE:
                    logger.error("%s: further skipped records are counted, with a summary "
                                 "every %g s", self.source, SUMMARY_INTERVAL_S)
            else:
                self._unlogged += 1
                self._latest = error
        if self._unlogged and self._clock() - self._last_summary >= SUMMARY_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Log the summary of the records counted since the last one, if any."""
        self._last_summary = self._clock()
        if not self._unlogged or self._latest is None:
            return
        logger.error("%s: skipped %d more records (%d in all); the latest at %s: %s",
                     self.source, self._unlogged, self.total, self._latest.where,
                     self._latest.reason)
        self._unlogged = 0
        self._latest = None
