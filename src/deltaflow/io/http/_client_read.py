"""``pw.io.http.read``: the rows of one HTTP response, read as it streams in.

A thread of the reader runs the request on an asyncio loop (aiohttp), splits the response
body into messages at ``delimiter`` (a newline by default) as the bytes arrive, passes each
through ``response_mapper`` and queues it; the input session takes the queued messages in
blocks and parses them (``format='json'``: one JSON object per message, fields by the schema;
``'raw'``: one ``data: str`` row per message). So a long-lived streaming response feeds the
pipeline while it lasts; the input finishes when the response ends. Connection errors,
timeouts and ``retry_codes`` statuses are retried per the ``RetryPolicy``; a request still
failing stops the run with an error naming the connector and the (password-free) URL.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from deltaflow.error_display import user_call
from deltaflow.io._core.arguments import check_read_options, input_table
from deltaflow.io._core.base import Data, DictsContext, Finished, Reader, ReadEvent
from deltaflow.io._python_subject import _MessageParser
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
from deltaflow.schema import Schema, schema_from_types

LABEL = "pw.io.http.read"
_BLOCK_MESSAGES = 10_000
_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _HttpStreamReader(Reader):
    """Runs the request on a thread of its own; ``read`` takes the messages it queued."""

    commits_when_idle = True  # streamed messages stand alone: no need to wait for the timer

    def __init__(
        self,
        url: str,
        *,
        method: str,
        payload: Any,
        headers: dict[str, str] | None,
        response_mapper: Callable[[bytes], bytes] | None,
        delimiter: bytes,
        n_retries: int,
        retry_policy: RetryPolicy,
        timeout: Any,
        allow_redirects: bool,
        retry_codes: tuple[int, ...],
    ) -> None:
        self.url = url
        self.method = method
        self.payload = payload
        self.headers = dict(headers or {})
        self.response_mapper = response_mapper
        self.delimiter = delimiter
        self.n_retries = n_retries
        self.retry_policy = retry_policy
        self.timeout = timeout
        self.allow_redirects = allow_redirects
        self.retry_codes = retry_codes
        self._queue: collections.deque[Any] = collections.deque()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._sent = 0
        self._done = False
        self._thread = threading.Thread(
            target=self._fetch_thread, daemon=True, name=f"deltaflow-http-read-{safe_url(url)}"
        )
        self._thread.start()

    # --- the fetching thread ---------------------------------------------------------------
    def _fetch_thread(self) -> None:
        try:
            asyncio.run(self._fetch())
            self._queue.append(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the input session
            self._queue.append(_Failure(exc))
        self._ready.set()

    def _body(self) -> dict[str, Any]:
        if self.payload is None:
            return {}
        if isinstance(self.payload, bytes | str):
            return {"data": self.payload}
        return {
            "data": json.dumps(self.payload),
            "headers": {"Content-Type": "application/json", **self.headers},
        }

    async def _fetch(self) -> None:
        import aiohttp

        body = self._body()
        headers = body.pop("headers", self.headers)
        what = f"{LABEL}: {self.method} {safe_url(self.url)}"
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            response: Any = None

            async def attempt() -> Any:
                nonlocal response
                if response is not None:
                    response.release()
                response = await session.request(
                    self.method,
                    self.url,
                    headers=headers,
                    allow_redirects=self.allow_redirects,
                    **body,
                )
                return response

            try:
                await with_retries(
                    attempt,
                    n_retries=self.n_retries,
                    policy=self.retry_policy,
                    retry_codes=self.retry_codes,
                    what=what,
                )
            except RequestFailed as exc:
                raise ConnectionError(str(exc)) from exc.__cause__
            async with response:
                if response.status >= 400:
                    raise ConnectionError(
                        f"{what} answered HTTP {response.status} {response.reason or ''}".rstrip()
                    )
                await self._split(response)

    async def _split(self, response: Any) -> None:
        pending = b""
        delimiter = self.delimiter
        async for chunk in response.content.iter_any():
            if self._stop.is_set():
                return
            pending += chunk
            if delimiter not in pending:
                continue
            *messages, pending = pending.split(delimiter)
            self._enqueue(messages)
        if pending:
            self._enqueue([pending])

    def _enqueue(self, messages: list[bytes]) -> None:
        mapper = self.response_mapper
        for message in messages:
            if mapper is not None:
                message = mapper(message)
                if isinstance(message, str):
                    message = message.encode()
            if message.strip():
                self._queue.append(message)
        self._ready.set()

    # --- Reader ----------------------------------------------------------------------------
    def read(self) -> ReadEvent | None:
        if self._done:
            return Finished()
        queue = self._queue
        if not queue:
            self._ready.clear()
            if not queue:
                return None
        messages: list[bytes] = []
        while queue and len(messages) < _BLOCK_MESSAGES:
            item = queue[0]
            if item is _END or isinstance(item, _Failure):
                if messages:
                    break
                queue.popleft()
                if isinstance(item, _Failure):
                    raise item.error
                self._done = True
                return Finished()
            messages.append(queue.popleft())
        first = self._sent + 1
        self._sent += len(messages)
        # Raw messages stand for rows here: the message parser takes bytes.
        return Data(
            DictsContext(
                messages,  # type: ignore[arg-type]
                metadata={
                    "path": "message",
                    "first": first,
                },
            ),
            offset=("messages", self._sent),
        )

    def wait(self, timeout: float) -> None:
        self._ready.wait(timeout)

    def close(self) -> None:
        self._stop.set()


@user_call
def read(
    url: str,
    *,
    schema: type[Schema] | None = None,
    method: str = "GET",
    payload: Any | None = None,
    headers: dict[str, str] | None = None,
    response_mapper: Callable[[str | bytes], bytes] | None = None,
    format: Literal["json", "raw"] = "json",  # noqa: A002
    delimiter: str | bytes | None = None,
    n_retries: int = 0,
    retry_policy: RetryPolicy = RetryPolicy.default(),  # noqa: B008
    connect_timeout_ms: int | None = None,
    request_timeout_ms: int | None = None,
    allow_redirects: bool = True,
    retry_codes: tuple | None = DEFAULT_RETRY_CODES,
    autocommit_duration_ms: int = 10000,
    debug_data: Any = None,
    name: str | None = None,
    max_backlog_size: int | None = None,
) -> Any:
    """A table of the messages of the response to one request to ``url``.

    ``format='json'``: every message (the body split at ``delimiter``, a newline by default)
    is a JSON object giving a row of ``schema``; ``'raw'``: every message is a row of one
    ``data: str`` column. ``response_mapper`` may rewrite each message first. ``payload`` is
    sent as the request body (JSON unless it is already text or bytes). The input ends with
    the response, so a streaming response keeps the table growing while it lasts.

    Parameters:
        url: the address requested (``http://`` or ``https://``).
        schema: the columns of the rows (``format='json'``).
        method: the HTTP method of the request.
        payload: the request body.
        headers: extra request headers.
        response_mapper: a function turning each message into the bytes parsed.
        format: ``json`` (one JSON object per message) or ``raw`` (one text per message).
        delimiter: what separates the messages of the body (a newline by default).
        n_retries: how many times a failed request is sent again.
        retry_policy: the delays between retries (``pw.io.http.RetryPolicy``).
        connect_timeout_ms: the longest wait for the connection.
        request_timeout_ms: the longest wait for the whole request.
        allow_redirects: whether redirects are followed.
        retry_codes: the HTTP statuses retried.
        autocommit_duration_ms: the longest time between two commits of rows.
        debug_data: accepted for Pathway programs; not used.
        name: the connector's name in logs and monitoring.
        max_backlog_size: the most rows read ahead of the engine.

    Examples:
        A local server standing in for a service that answers with JSON lines:

        >>> import http.server, threading
        >>> import deltaflow as pw
        >>> class Service(http.server.BaseHTTPRequestHandler):
        ...     def do_GET(self):
        ...         body = b'{"city": "Oslo", "temp": 3}\\n{"city": "Rome", "temp": 18}\\n'
        ...         self.send_response(200)
        ...         self.send_header("Content-Length", str(len(body)))
        ...         self.end_headers()
        ...         self.wfile.write(body)
        ...     def log_message(self, *args):
        ...         pass
        >>> server = http.server.HTTPServer(("127.0.0.1", 0), Service)
        >>> threading.Thread(target=server.serve_forever, daemon=True).start()
        >>> class Weather(pw.Schema):
        ...     city: str
        ...     temp: int
        >>> url = f"http://127.0.0.1:{server.server_port}/now"
        >>> t = pw.io.http.read(url, schema=Weather)
        >>> pw.debug.compute_and_print(t, include_id=False)
        city | temp
        Oslo | 3
        Rome | 18
        >>> server.shutdown()
    """
    check_url(url, LABEL)
    if format not in ("json", "raw"):
        raise TypeError(f"{LABEL}: format must be 'json' or 'raw', got {format!r}")
    check_client_args(
        LABEL,
        method=method,
        headers=headers,
        n_retries=n_retries,
        retry_policy=retry_policy,
        connect_timeout_ms=connect_timeout_ms,
        request_timeout_ms=request_timeout_ms,
        retry_codes=retry_codes,
    )
    if response_mapper is not None and not callable(response_mapper):
        raise TypeError(f"{LABEL}: response_mapper must be callable, got {response_mapper!r}")
    if delimiter is None:
        split_at = b"\n"
    elif isinstance(delimiter, str | bytes) and delimiter:
        split_at = delimiter.encode() if isinstance(delimiter, str) else delimiter
    else:
        raise ValueError(f"{LABEL}: delimiter must be a non-empty str or bytes, got {delimiter!r}")
    if format == "json" and schema is None:
        raise ValueError(f"{LABEL}: format 'json' needs a schema (schema=MySchema)")
    options = check_read_options(
        LABEL,
        default_name=f"http:{safe_url(url)}",
        schema=schema if format == "json" else None,
        schema_required=False,
        name=name,
        autocommit_duration_ms=autocommit_duration_ms,
        max_backlog_size=max_backlog_size,
    )
    if options.schema is None:  # format 'raw': one data column
        options = replace(options, schema=schema_from_types(data=str))
    checked = options.schema
    assert checked is not None
    codes = tuple(retry_codes or ())
    timeout = client_timeout(connect_timeout_ms, request_timeout_ms)

    def reader() -> _HttpStreamReader:
        return _HttpStreamReader(
            url,
            method=method.upper(),
            payload=payload,
            headers=headers,
            response_mapper=response_mapper,
            delimiter=split_at,
            n_retries=n_retries,
            retry_policy=retry_policy,
            timeout=timeout,
            allow_redirects=allow_redirects,
            retry_codes=codes,
        )

    return input_table(options, reader, _MessageParser(checked, format))
