"""``pw.io.logstash.write``: a table's changes to the HTTP input plugin of Logstash.

Each added or removed row is one POST request whose body is the row as a flat JSON object
with two more fields, ``time`` and ``diff`` -- the requests ``pw.io.http.write`` sends with
``format="json"``, and the same retries and failure reports (see ``docs/http.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from deltaflow.error_display import user_call
from deltaflow.io.http._common import DEFAULT_RETRY_CODES, RetryPolicy, safe_url

__all__ = ["write"]


@user_call
def write(
    table: Any,
    endpoint: str,
    n_retries: int = 0,
    retry_policy: RetryPolicy = RetryPolicy.default(),  # noqa: B008 - immutable policy
    connect_timeout_ms: int | None = None,
    request_timeout_ms: int | None = None,
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Send every change of ``table`` to a Logstash HTTP input listening at ``endpoint``.

    Parameters:
        table: the table whose changes are sent.
        endpoint: the URL of the Logstash ``http`` input (``http://host:port``).
        n_retries: how many times a failed request is tried again.
        retry_policy: the waits between those tries.
        connect_timeout_ms: the longest wait for a connection (None: no limit).
        request_timeout_ms: the longest wait for a whole request (None: no limit).
        name: the output's name in logs and monitoring.
        sort_by: columns ordering the rows of one time before they are sent.

    Examples:
        >>> import deltaflow as pw
        >>> events = pw.debug.table_from_markdown('''
        ... level | text
        ... warn  | disk_full
        ... ''')
        >>> pw.io.logstash.write(events, "http://localhost:8012")  # sent when pw.run() runs
    """
    from deltaflow.io.http._client_write import send_changes

    send_changes(
        "pw.io.logstash.write",
        table,
        endpoint,
        method="POST",
        format="json",
        request_payload_template=None,
        n_retries=n_retries,
        retry_policy=retry_policy,
        connect_timeout_ms=connect_timeout_ms,
        request_timeout_ms=request_timeout_ms,
        content_type=None,
        headers=None,
        allow_redirects=True,
        retry_codes=DEFAULT_RETRY_CODES,
        name=name,
        default_name=f"logstash:{safe_url(endpoint)}",
        sort_by=sort_by,
    )
