"""Connection settings and connections of ``pw.io.postgres.write``.

``postgres_settings`` is a dict of libpq keywords (``host``, ``port``, ``dbname``, ``user``,
``password``, ``sslmode`` ...), values of any type (``str()`` is applied), as in Pathway.
They are checked when the pipeline is defined (unknown keywords, an ``sslrootcert`` that is
not a readable file), and completed the way Pathway completes them: TCP keepalives so a dead
peer is noticed within minutes, a 30 s connect timeout, and an ``application_name`` naming
the connector (``deltaflow:<name>``) so it shows in ``pg_stat_activity``.

A server that cannot be reached is retried per the shared retry policy (``docs/retries.md``)
for ``DELTAFLOW_POSTGRES_CONNECT_RETRY_S`` seconds (300 by default, as every connector's
outage limit), at start and after losing the connection mid-run; then a
:class:`PostgresConnectionError` names the connector and ``host:port/dbname`` (never the
password). Errors that waiting cannot fix (a wrong password,
a missing database) fail at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deltaflow.errors import ConnectorOSError
from deltaflow.io._core.retry import CONNECTOR_ENV, OutageTooLong, call_with_retries, policy_for

if TYPE_CHECKING:
    from typing_extensions import LiteralString

logger = logging.getLogger("deltaflow.io.postgres")

RETRY_ENV = CONNECTOR_ENV["postgres"]

_DEFAULTS = {
    "keepalives": "1",
    "keepalives_idle": "300",
    "keepalives_interval": "30",
    "keepalives_count": "3",
    "tcp_user_timeout": "300000",
    "connect_timeout": "30",
}
"""libpq settings added unless given (the same values as Pathway 0.33 adds)."""

SESSION_SETTINGS: dict[LiteralString, LiteralString] = {
    "DateStyle": "ISO",
    "TimeZone": "UTC",
    "IntervalStyle": "iso_8601",
}
"""Fixed on every connection, so that text input of timestamps never depends on the server's
configuration."""

_FATAL_MARKERS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "authentication",
    "certificate",
    "invalid",
)


class PostgresConnectionError(ConnectorOSError, ConnectionError):
    """The server could not be reached (or refused the login); names connector and address."""


def check_settings(connector: str, settings: Any) -> dict[str, str]:
    """``postgres_settings`` as libpq keywords and text values, checked (ValueError/TypeError
    naming the connector) when the pipeline is defined."""
    from psycopg import conninfo as pg_conninfo
    from psycopg.errors import ProgrammingError

    if not isinstance(settings, Mapping):
        raise TypeError(
            f"{connector}: postgres_settings must be a dict of libpq connection "
            f"keywords, got {type(settings).__name__}"
        )
    checked: dict[str, str] = {}
    for key, value in settings.items():
        if not isinstance(key, str):
            raise TypeError(f"{connector}: postgres_settings keys must be strings, got {key!r}")
        if value is None:
            continue
        checked[key] = value if isinstance(value, str) else str(value)
    root_cert = checked.get("sslrootcert")
    if root_cert is not None:
        if os.path.isdir(root_cert):
            raise ValueError(
                f"{connector}: sslrootcert {root_cert!r} is a directory, not a certificate file"
            )
        if not os.path.exists(root_cert):
            raise ValueError(f"{connector}: sslrootcert {root_cert!r} does not exist")
        if not os.access(root_cert, os.R_OK):
            raise ValueError(f"{connector}: sslrootcert {root_cert!r} is not readable")
    try:
        pg_conninfo.make_conninfo(**checked)
    except ProgrammingError as exc:
        raise ValueError(f"{connector}: postgres_settings: {hide(str(exc), checked)}") from None
    return checked


def complete_settings(settings: Mapping[str, str], name: str | None) -> dict[str, str]:
    """``settings`` with the defaults added for every keyword not given."""
    completed = dict(settings)
    label = (
        "deltaflow"
        if not name
        else "deltaflow:" + "".join(c if 0x20 <= ord(c) <= 0x7E else "_" for c in name)
    )
    completed.setdefault("application_name", label[:63])
    for key, value in _DEFAULTS.items():
        completed.setdefault(key, value)
    return completed


def address(settings: Mapping[str, str]) -> str:
    """``host:port/dbname`` of the settings, for messages (never the password)."""
    host = settings.get("host") or settings.get("hostaddr") or "localhost"
    port = settings.get("port") or "5432"
    return f"{host}:{port}/{settings.get('dbname') or settings.get('user') or ''}"


def hide(text: str, settings: Mapping[str, str]) -> str:
    """``text`` with the password (if any) replaced by ``***``."""
    password = settings.get("password")
    if password and len(password) >= 4:
        text = text.replace(password, "***")
    return text


def retry_seconds(connector: str) -> float:
    """The connection retry budget (:data:`RETRY_ENV`), checked."""
    return policy_for("postgres", connector).max_outage_s


def _reason(error: BaseException, settings: Mapping[str, str]) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return hide(text or type(error).__name__, settings)


def connect(connector: str, settings: Mapping[str, str], *, retry_s: float) -> Any:
    """An open psycopg connection (not in autocommit), retried while the server is
    unreachable for ``retry_s`` seconds; :class:`PostgresConnectionError` after that."""
    import psycopg

    def transient(error: BaseException) -> bool:
        return isinstance(error, psycopg.OperationalError) and not any(
            marker in str(error) for marker in _FATAL_MARKERS
        )

    try:
        connection = call_with_retries(
            lambda: psycopg.connect(**settings),  # type: ignore[arg-type]  # libpq keywords
            policy=policy_for("postgres", connector).with_max_outage(retry_s),
            is_transient=transient,
            describe=lambda exc: _reason(exc, settings),
            what=f"{connector}: connecting to PostgreSQL at {address(settings)}",
            failing="tried",
            hint=RETRY_ENV,
        )
    except (OutageTooLong, psycopg.OperationalError) as exc:
        reason = exc.detail if isinstance(exc, OutageTooLong) else _reason(exc, settings)
        raise PostgresConnectionError(
            f"{connector}: cannot connect to PostgreSQL at {address(settings)}: {reason}"
        ) from None
    with connection.cursor() as cursor:
        for key, value in SESSION_SETTINGS.items():
            cursor.execute(f"SET {key} = '{value}'")
    connection.commit()
    return connection


def is_connection_loss(error: BaseException) -> bool:
    """Whether ``error`` means the connection broke (as opposed to the SQL failing)."""
    import psycopg

    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return not isinstance(error, psycopg.errors.QueryCanceled) and getattr(
            error, "sqlstate", None
        ) in (None, "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004")
    return False
