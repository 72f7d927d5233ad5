"""``pw.io.postgres``: PostgreSQL tables as live tables (``read``, see docs/postgres_read.md)."""

from deltaflow.io.postgres._reader import read  # noqa: F401 - pw.io.postgres.read
