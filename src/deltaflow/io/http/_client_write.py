"""``pw.io.http.write``: one HTTP request per change of a table.

The output session hands each time's rows to :class:`_HttpWriter`, which sends them from an
asyncio loop on a thread of its own (aiohttp, one connection pool for the run), several at
once, and waits for all of them before the time is complete -- so a slow server slows the
pipeline down instead of piling requests up. The body is the row as a JSON object with
``time`` and ``diff`` (``format='json'``), or ``request_payload_template`` with its
``{table.<column>}``, ``{table.time}`` and ``{table.diff}`` placeholders filled in
(``format='custom'``; header values may hold placeholders too).

Connection errors, timeouts and ``retry_codes`` statuses are retried per the
``RetryPolicy``. A request that still fails is reported -- an error in the log with the
(password-free) URL, the status and the row's id, and the count of failed requests in the
output's statistics -- and the run goes on, as in Pathway; nothing fails silently.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from deltaflow import _types as t
from deltaflow.error_display import user_call
from deltaflow.io._core.arguments import check_write_options, output_table
from deltaflow.io._core.base import Writer
from deltaflow.io._core.formats import TypedRowsFormatter
from deltaflow.io._core.serialization import json_value
from deltaflow.io.http._common import (
    DEFAULT_RETRY_CODES,
    RequestFailed,
    RetryPolicy,
    check_client_args,
    check_url,
    client_timeout,
    safe_url,
    with_retries,
)

logger = logging.getLogger("deltaflow.io")

LABEL = "pw.io.http.write"
_PLACEHOLDER = re.compile(r"\{table\.([A-Za-z_][A-Za-z0-9_]*)\}")
_IN_FLIGHT = 32  # requests of one time sent at once
_LOGGED_FAILURES = 20  # then one in every 1000
Row = tuple[t.Pointer, dict[str, Any], int, int]


def _placeholder_text(value: Any) -> str:
    """A value as it appears in a filled template: text as is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(json_value(value), ensure_ascii=False)


def fill_template(template: str, row: Mapping[str, Any], time: int, diff: int) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "time" and name not in row:
            return str(time)
        if name == "diff" and name not in row:
            return str(diff)
        return _placeholder_text(row[name])

    return _PLACEHOLDER.sub(value, template)


class _HttpWriter(Writer):
    def __init__(
        self,
        url: str,
        *,
        method: str,
        fmt: str,
        template: str | None,
        headers: dict[str, str],
        content_type: str | None,
        n_retries: int,
        retry_policy: RetryPolicy,
        timeout: Any,
        allow_redirects: bool,
        retry_codes: tuple[int, ...],
        name: str,
        label: str = LABEL,
    ) -> None:
        self.label = label
        self.url = url
        self.method = method
        self.format = fmt
        self.template = template
        self.headers = headers
        self.templated_headers = any(_PLACEHOLDER.search(v) for v in headers.values())
        self.content_type = content_type
        self.n_retries = n_retries
        self.retry_policy = retry_policy
        self.timeout = timeout
        self.allow_redirects = allow_redirects
        self.retry_codes = retry_codes
        self.name = name
        self.failed = 0
        self.sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: Any = None

    # --- the loop --------------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, daemon=True, name=f"deltaflow-http-write-{self.name}"
            )
            self._thread.start()
            self._loop = loop
        return self._loop

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop()).result()

    # --- Writer ----------------------------------------------------------------------------
    def write(self, payload: Sequence[Row]) -> None:
        if payload:
            self._run(self._send_all(payload))

    def close(self) -> None:
        self._shutdown()
        if self.failed:
            logger.error(
                "%s %s: %d of %d request(s) failed after their retries",
                self.label,
                safe_url(self.url),
                self.failed,
                self.sent,
            )

    def abort(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._session is not None:
            session, self._session = self._session, None
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()

    # --- requests --------------------------------------------------------------------------
    async def _send_all(self, rows: Sequence[Row]) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        limit = asyncio.Semaphore(_IN_FLIGHT)

        async def send(row: Row) -> None:
            async with limit:
                await self._send(row)

        await asyncio.gather(*(send(row) for row in rows))

    def _request(self, row: Row) -> tuple[bytes, dict[str, str]]:
        _, values, time, diff = row
        headers = dict(self.headers)
        if self.templated_headers:
            headers = {k: fill_template(v, values, time, diff) for k, v in headers.items()}
        if self.format == "json":
            document = {k: json_value(v) for k, v in values.items()}
            document["time"] = time
            document["diff"] = diff
            body = json.dumps(document, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", self.content_type or "application/json")
        else:
            assert self.template is not None
            body = fill_template(self.template, values, time, diff).encode()
            if self.content_type is not None:
                headers.setdefault("Content-Type", self.content_type)
        return body, headers

    async def _send(self, row: Row) -> None:
        body, headers = self._request(row)
        session = self._session
        what = f"{self.label}: {self.method} {safe_url(self.url)}"

        async def attempt() -> Any:
            async with session.request(
                self.method,
                self.url,
                data=body,
                headers=headers,
                allow_redirects=self.allow_redirects,
            ) as response:
                await response.read()
                return response

        self.sent += 1
        try:
            response = await with_retries(
                attempt,
                n_retries=self.n_retries,
                policy=self.retry_policy,
                retry_codes=self.retry_codes,
                what=what,
            )
        except RequestFailed as exc:
            self._report(f"{exc} (row {row[0]})")
            return
        if response.status >= 400:
            self._report(
                f"{what} answered HTTP {response.status} after "
                f"{self.n_retries} retries (row {row[0]})"
            )

    def _report(self, message: str) -> None:
        self.failed += 1
        if self.failed <= _LOGGED_FAILURES or self.failed % 1000 == 0:
            logger.error("%s (%d request(s) failed so far)", message, self.failed)


@user_call
def write(
    table: Any,
    url: str,
    *,
    method: str = "POST",
    format: Literal["json", "custom"] = "json",  # noqa: A002
    request_payload_template: str | None = None,
    n_retries: int = 0,
    retry_policy: RetryPolicy = RetryPolicy.default(),  # noqa: B008
    connect_timeout_ms: int | None = None,
    request_timeout_ms: int | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    allow_redirects: bool = True,
    retry_codes: tuple | None = DEFAULT_RETRY_CODES,
    name: str | None = None,
) -> None:
    """Send one ``method`` request to ``url`` for every row added to or removed from
    ``table`` (see the module's description for the bodies and the failure handling).

    Parameters:
        table: the table whose changes are sent.
        url: the address of the requests (``http://`` or ``https://``).
        method: the HTTP method of the requests.
        format: ``json`` (the row with ``time`` and ``diff`` as a JSON object) or ``custom``
            (``request_payload_template`` filled in).
        request_payload_template: the body for ``custom``, with ``{table.<column>}``,
            ``{table.time}`` and ``{table.diff}`` placeholders.
        n_retries: how many times a failed request is sent again.
        retry_policy: the delays between retries (``pw.io.http.RetryPolicy``).
        connect_timeout_ms: the longest wait for a connection.
        request_timeout_ms: the longest wait for a whole request.
        content_type: the ``Content-Type`` header of the requests.
        headers: extra request headers (their values may hold placeholders).
        allow_redirects: whether redirects are followed.
        retry_codes: the HTTP statuses retried.
        name: the connector's name in logs and monitoring.

    Examples:
        A local server standing in for a service that records what it receives:

        >>> import http.server, json, threading
        >>> import deltaflow as pw
        >>> received = []
        >>> class Service(http.server.BaseHTTPRequestHandler):
        ...     def do_POST(self):
        ...         body = self.rfile.read(int(self.headers["Content-Length"]))
        ...         received.append(json.loads(body))
        ...         self.send_response(200)
        ...         self.send_header("Content-Length", "0")
        ...         self.end_headers()
        ...     def log_message(self, *args):
        ...         pass
        >>> server = http.server.HTTPServer(("127.0.0.1", 0), Service)
        >>> threading.Thread(target=server.serve_forever, daemon=True).start()
        >>> alerts = pw.debug.table_from_markdown('''
        ... city | temp
        ... Oslo | -12
        ... ''')
        >>> pw.io.http.write(alerts, f"http://127.0.0.1:{server.server_port}/alerts")
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        >>> received
        [{'city': 'Oslo', 'temp': -12, 'time': 0, 'diff': 1}]
        >>> server.shutdown()
    """
    send_changes(
        LABEL,
        table,
        url,
        method=method,
        format=format,
        request_payload_template=request_payload_template,
        n_retries=n_retries,
        retry_policy=retry_policy,
        connect_timeout_ms=connect_timeout_ms,
        request_timeout_ms=request_timeout_ms,
        content_type=content_type,
        headers=headers,
        allow_redirects=allow_redirects,
        retry_codes=retry_codes,
        name=name,
        default_name=f"http:{safe_url(url)}",
    )


def send_changes(
    label: str,
    table: Any,
    url: str,
    *,
    method: str,
    format: str,  # noqa: A002
    request_payload_template: str | None,
    n_retries: int,
    retry_policy: RetryPolicy,
    connect_timeout_ms: int | None,
    request_timeout_ms: int | None,
    content_type: str | None,
    headers: dict[str, str] | None,
    allow_redirects: bool,
    retry_codes: tuple | None,
    name: str | None,
    default_name: str,
    sort_by: Any = None,
) -> None:
    """:func:`write` for the connectors built on it (``label`` names the connector in
    errors; ``sort_by`` orders the rows of a time before they are sent)."""
    check_url(url, label)
    options = check_write_options(
        label, table, default_name=default_name, name=name, sort_by=sort_by
    )
    if format not in ("json", "custom"):
        raise TypeError(f"{label}: format must be 'json' or 'custom', got {format!r}")
    check_client_args(
        label,
        method=method,
        headers=headers,
        n_retries=n_retries,
        retry_policy=retry_policy,
        connect_timeout_ms=connect_timeout_ms,
        request_timeout_ms=request_timeout_ms,
        retry_codes=retry_codes,
    )
    if format == "custom" and not isinstance(request_payload_template, str):
        raise ValueError(
            f"{label}: format 'custom' needs request_payload_template (a str with "
            f"{{table.<column>}} placeholders)"
        )
    known = set(table._columns) | {"time", "diff"}
    for text in [request_payload_template or "", *(headers or {}).values()]:
        for column in _PLACEHOLDER.findall(text):
            if column not in known:
                raise ValueError(
                    f"{label}: the placeholder {{table.{column}}} names no column "
                    f"of the table (its columns: {', '.join(table._columns)})"
                )
    if content_type is not None and not isinstance(content_type, str):
        raise TypeError(f"{label}: content_type must be a str, got {content_type!r}")
    writer = _HttpWriter(
        url,
        method=method.upper(),
        fmt=format,
        template=request_payload_template,
        headers=dict(headers or {}),
        content_type=content_type,
        n_retries=n_retries,
        retry_policy=retry_policy,
        timeout=client_timeout(connect_timeout_ms, request_timeout_ms),
        allow_redirects=allow_redirects,
        retry_codes=tuple(retry_codes or ()),
        name=options.name,
        label=label,
    )
    output_table(options, writer, TypedRowsFormatter(options.columns))
