"""``pw.io.postgres``: write tables to PostgreSQL (``write``, ``write_snapshot``) and read
them, with change data capture (``read``). See docs/postgres.md and docs/postgres_read.md."""

from deltaflow.io.postgres._output import write, write_snapshot  # noqa: F401
from deltaflow.io.postgres._reader import read  # noqa: F401 - pw.io.postgres.read
