"""Settings and internal names shared by the SQLite reader and writer."""

from __future__ import annotations

import logging

logger = logging.getLogger("deltaflow.io.sqlite")
"""One logger for the whole connector (the reader's and the writer's messages alike)."""

_KIND = "_kind"
_ROWID = "__deltaflow_rowid"
_ROWID_SOURCE = "_rowid_"

BUSY_TIMEOUT_S = 30.0
"""How long a connection waits for another connection's lock before giving up."""

COMMIT_ATTEMPTS = 5
"""How many times switching to WAL journaling is tried while the database is busy (a busy
transaction is retried per the shared retry policy instead, docs/retries.md)."""

_SQLITE_HEADER = b"SQLite format 3\x00"
_ROWID_ALIASES = {"rowid", "_rowid_", "oid"}
