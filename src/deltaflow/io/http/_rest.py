"""``pw.io.http.rest_connector``: HTTP requests in as rows, the pipeline's answers out.

Each accepted request becomes one row of the ``queries`` table, with a fresh random id, fed to
the engine through the connector framework's input session (``_RestReader``). The handler then
awaits a future keyed by that id. ``response_writer(table)`` registers ``_ResponseSink``, which
gets the answer table's changes on the engine thread, picks the ``result`` of each inserted
row and hands the batch to the server's loop in one call; the loop completes the futures and
each handler sends its ``result`` as JSON. With ``delete_completed_queries`` the answered
query's row is then retracted from ``queries`` (so state kept for it downstream goes away).

A request that cannot become a row (a missing field, a value of the wrong type, a body that is
not a JSON object, a request the ``request_validator`` refuses) gets a 400 at once and never
reaches the pipeline.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import ConnectorStats, Sink
from deltaflow.io._core.base import (
    Commit,
    Data,
    DictsContext,
    OffsetAntichain,
    Reader,
    ReadEvent,
)
from deltaflow.io._core.formats import TypedRowsParser, column_specs
from deltaflow.io._core.json_text import load_json_line
from deltaflow.io._core.read_table import check_autocommit, check_schema, reader_table
from deltaflow.io._core.serialization import json_value
from deltaflow.io.http._openapi import EndpointDocumentation
from deltaflow.io.http._payload import BadRequest, row_from_payload
from deltaflow.io.http._server import PathwayWebserver, check_port
from deltaflow.schema import Schema, column_definition, schema_builder

logger = logging.getLogger("deltaflow.io")

LABEL = "pw.io.http.rest_connector"
_BLOCK_ROWS = 10_000
_KNOWN_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_WARN_EVERY = 1000  # after the first 10 refused requests, log one in this many


async def _body_text(request: Any) -> str:
    """The request body as text; bytes that are not UTF-8 (or the declared charset) are a 400."""
    try:
        return str(await request.text())
    except (UnicodeDecodeError, LookupError):
        raise BadRequest("the request body is not valid text in its charset (UTF-8)") from None


def _default_schema() -> type[Schema]:
    return schema_builder({"query": column_definition()}, name="RestQuery")


class _Endpoint:
    """One route: turns requests into rows, keeps their pending answers."""

    def __init__(
        self,
        webserver: PathwayWebserver,
        route: str,
        schema: type[Schema],
        raw: bool,
        request_validator: Callable[..., Any] | None,
        delete_completed: bool,
    ) -> None:
        self.webserver = webserver
        self.route = route
        self.schema = schema
        self.raw = raw
        self.validator = request_validator
        self.delete_completed = delete_completed
        self.buffer: collections.deque[tuple[str, dict[str, Any], int]] = collections.deque()
        self.ready = threading.Event()
        # id -> (future awaited by the handler, the row) -- touched only on the server loop.
        self.pending: dict[int, tuple[asyncio.Future[bytes], dict[str, Any]]] = {}
        self.refused = 0

    def push(self, kind: str, row: dict[str, Any], key: int) -> None:
        self.buffer.append((kind, row, key))
        if not self.ready.is_set():
            self.ready.set()

    # --- on the server's loop -------------------------------------------------------------
    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        try:
            row = await self._row(request)
        except BadRequest as exc:
            self._log_refused(request, str(exc))
            return web.Response(status=400, text=f"400: {exc}")
        key = secrets.randbits(128)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[key] = (future, row)
        self.push("insert", row, key)
        try:
            body = await future
        finally:
            self.pending.pop(key, None)
        if self.delete_completed:
            self.push("delete", row, key)
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    async def _row(self, request: Any) -> dict[str, Any]:
        from_text = request.method == "GET"
        if self.raw:
            if from_text:
                payload: Any = {"query": request.query.get("query", request.query_string)}
            else:
                payload = {"query": await _body_text(request)}
        elif from_text:
            payload = dict(request.query)
        else:
            text = await _body_text(request)
            # The file readers' JSON loader: a body nested too deep or holding a lone
            # surrogate is a 400 like any invalid JSON (not a 500, nor a request left waiting).
            payload, reason = load_json_line(text) if text.strip() else ({}, None)
            if reason is not None:
                raise BadRequest(
                    f"the request body is not valid JSON: {reason.removeprefix('invalid JSON: ')}"
                )
        if self.validator is not None:
            try:
                refusal = self.validator(payload, request.headers)
            except Exception as exc:  # noqa: BLE001 - a refusal, reported to the client
                raise BadRequest(f"{type(exc).__name__}: {exc}") from None
            if refusal is not None:
                raise BadRequest(str(refusal))
        return row_from_payload(payload, self.schema, from_text=from_text)

    def _log_refused(self, request: Any, reason: str) -> None:
        self.refused += 1
        if self.refused <= 10 or self.refused % _WARN_EVERY == 0:
            logger.warning(
                "%s %s: request %s %s refused (400, %d so far): %s",
                LABEL,
                self.webserver.address,
                request.method,
                self.route,
                self.refused,
                reason,
            )

    def deliver(self, answers: list[tuple[int, bytes]]) -> None:
        """Complete the requests answered by one batch (runs on the server's loop)."""
        pending = self.pending
        for key, body in answers:
            entry = pending.get(key)
            if entry is not None and not entry[0].done():
                entry[0].set_result(body)


class _RestReader(Reader):
    """Takes the endpoint's accepted requests (and retractions of answered ones) in blocks.

    Requests come one by one, and turning a block of rows into a frame has a fixed cost
    comparable to the engine's work on a small minibatch. So the reader commits on its own
    clock: a request that finds the engine done with everything this endpoint committed is
    committed at once (``Commit``), alone or with the others waiting; otherwise it opens a
    window of at most ``autocommit_s``, which ends as soon as the engine catches up. Requests
    arriving meanwhile stay in the buffer and go in the same block. So an idle server answers
    without a timer's delay, and a busy one batches what arrives while it works."""

    def __init__(self, endpoint: _Endpoint, name: str, autocommit_s: float | None) -> None:
        self.endpoint = endpoint
        endpoint.buffer.clear()  # leftovers of an earlier run cannot be answered any more
        endpoint.webserver._start(name)
        self._started = True
        self._sent = 0
        self._autocommit_s = autocommit_s  # None: no windows (the session commits)
        self._window_end: float | None = None  # when the open window's rows are committed
        self._closing: int | None = None  # rows of the ended window still to hand on

    def read(self) -> ReadEvent | None:
        buffer = self.endpoint.buffer
        if self._window_end is not None:
            if time.monotonic() < self._window_end and not self.engine_idle():
                return None
            self._window_end = None
            self._closing = len(buffer)  # the window's requests: later ones open the next
        if self._closing is not None:
            if self._closing == 0:
                self._closing = None
                return Commit()
            return self._block(self._closing)
        if not buffer:
            self.endpoint.ready.clear()
            if not buffer:
                return None
        if self._autocommit_s:
            if self.engine_idle():  # nothing to wait for
                self._closing = len(buffer)
                return self._block(self._closing)
            self._window_end = time.monotonic() + self._autocommit_s
            return None  # the first request waits for the others of its window
        return self._block(len(buffer))

    def _block(self, limit: int) -> Data:
        """The next at most ``limit`` buffered rows of one kind (a run of insertions, or of
        retractions of answered queries: the session handles a block of one kind with less
        work than one of mixed kinds)."""
        buffer = self.endpoint.buffer
        limit = min(limit, _BLOCK_ROWS)
        kind = buffer[0][0]
        rows: list[Mapping[str, Any]] = []
        keys: list[int] = []
        while buffer and len(rows) < limit and buffer[0][0] == kind:
            _, row, key = buffer.popleft()
            rows.append(row)
            keys.append(key)
        self._sent += len(rows)
        if self._closing is not None:
            self._closing -= len(rows)
        return Data(
            DictsContext(rows, kinds=kind, keys=keys, metadata={"path": "request"}),
            offset=("requests", self._sent),
        )

    def wait(self, timeout: float) -> None:
        window_end = self._window_end
        if window_end is None:
            self.endpoint.ready.wait(timeout)
        else:  # new requests wait in the buffer until the window ends or the engine is idle
            self.wait_for_engine(max(0.0, min(timeout, window_end - time.monotonic())))

    def seek(self, frontier: OffsetAntichain) -> None:
        """A restart with persistence: the checkpoint's queries are replayed into the table
        by persistence (their answers go nowhere: outputs are muted during the replay, and
        their clients are gone); requests are never sent twice, so there is nothing to skip
        and the reader takes the new ones."""

    def close(self) -> None:
        if self._started:
            self._started = False
            self.endpoint.webserver._release()


class _ResponseSink(Sink):
    """Sends the ``result`` of each inserted row of the answer table to its request."""

    accepts_parts = True

    def __init__(self, endpoint: _Endpoint, name: str) -> None:
        self.endpoint = endpoint
        self.name = name
        self.stats = ConnectorStats()

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        self.stats.batches += 1
        # Plain lists, no query: a batch holds the few answers of one autocommit window.
        diffs = batch.get_column(DIFF).to_list()
        if not any(d > 0 for d in diffs):
            return
        keys = batch.get_column(ID).to_list()
        results = t.values_from_series(batch.get_column("result"))
        answers = [
            (key, json.dumps(json_value(value), ensure_ascii=False).encode())
            for key, value, diff in zip(keys, results, diffs, strict=True)
            if diff > 0
        ]
        self.stats.rows_written += len(answers)
        self.endpoint.webserver.call_soon(self.endpoint.deliver, answers)


def _check_methods(methods: Any) -> tuple[str, ...]:
    if isinstance(methods, str) or not isinstance(methods, Sequence) or not methods:
        raise TypeError(
            f"{LABEL}: methods must be a non-empty sequence of HTTP method names, got {methods!r}"
        )
    checked = []
    for method in methods:
        if not isinstance(method, str) or method.upper() not in _KNOWN_METHODS:
            raise ValueError(
                f"{LABEL}: unknown HTTP method {method!r} in methods (use "
                f"{', '.join(_KNOWN_METHODS)})"
            )
        if method.upper() not in checked:
            checked.append(method.upper())
    return tuple(checked)


def _delete_completed(keep_queries: bool | None, delete_completed_queries: bool | None) -> bool:
    if keep_queries is not None:
        warnings.warn(
            f"{LABEL}: keep_queries is deprecated; use delete_completed_queries "
            f"(its opposite) instead",
            UserWarning,
            stacklevel=3,
        )
        if delete_completed_queries is None:
            return not keep_queries
    if delete_completed_queries is None:
        warnings.warn(
            f"{LABEL}: set delete_completed_queries explicitly (it defaults to True: "
            f"a query's row is removed once it is answered)",
            UserWarning,
            stacklevel=3,
        )
        return True
    return bool(delete_completed_queries)


def rest_connector(
    host: str | None = None,
    port: int | str | None = None,
    *,
    webserver: PathwayWebserver | None = None,
    route: str = "/",
    schema: type[Schema] | None = None,
    methods: Sequence[str] = ("POST",),
    autocommit_duration_ms: int | None = 1500,
    documentation: EndpointDocumentation = EndpointDocumentation(),  # noqa: B008
    keep_queries: bool | None = None,
    delete_completed_queries: bool | None = None,
    request_validator: Callable | None = None,
    cache_strategy: Any = None,
) -> tuple[Any, Callable[[Any], None]]:
    """Serve ``route`` over HTTP: return ``(queries, response_writer)``.

    Every request becomes a row of ``queries`` (columns of ``schema``; without a schema, one
    ``query`` column holding the request body as text). Call ``response_writer(answers)``
    with a table of the same ids as ``queries`` and a ``result`` column: each request gets
    its row's ``result`` as a JSON response. Give either ``host`` and ``port`` (a webserver of
    its own) or a shared ``webserver``.

    Parameters:
        host: the address the server listens on (with ``port``).
        port: the port it listens on.
        webserver: a ``pw.io.http.PathwayWebserver`` shared by several routes, instead of
            ``host`` and ``port``.
        route: the path served, starting with ``/``.
        schema: the columns of a request's JSON body (without it: one ``query`` column).
        methods: the HTTP methods accepted.
        autocommit_duration_ms: the longest time between two commits of requests.
        documentation: how the route is described in the OpenAPI schema
            (``pw.io.http.EndpointDocumentation``).
        keep_queries: Pathway's older name for ``not delete_completed_queries``.
        delete_completed_queries: whether a request's row is removed once it is answered.
        request_validator: ``validator(payload, headers)`` raising to reject a request
            (answered with status 400).
        cache_strategy: accepted for Pathway programs; not supported, ignored with a warning.

    Examples:
        Defining the route only registers it: the server listens once the pipeline runs
        (``pw.run()``), answering each request with the upper-cased text.

        >>> import deltaflow as pw
        >>> class Query(pw.Schema):
        ...     text: str
        >>> queries, respond = pw.io.http.rest_connector(
        ...     host="127.0.0.1",
        ...     port=8080,
        ...     route="/upper",
        ...     schema=Query,
        ...     delete_completed_queries=True,
        ... )
        >>> respond(queries.select(result=pw.this.text.str.upper()))
        >>> queries.column_names()
        ['text']
    """
    if webserver is None:
        if host is None or port is None:
            raise ValueError(f"{LABEL}: give host and port, or a webserver")
        webserver = PathwayWebserver(host, check_port(port, LABEL))
    elif host is not None or port is not None:
        raise ValueError(f"{LABEL}: give either host and port or a webserver, not both")
    if not isinstance(webserver, PathwayWebserver):
        raise TypeError(
            f"{LABEL}: webserver must be a pw.io.http.PathwayWebserver, got {webserver!r}"
        )
    if not isinstance(route, str) or (route and not route.startswith("/")):
        raise ValueError(f"{LABEL}: route must start with '/', got {route!r}")
    route = route or "/"
    checked_methods = _check_methods(methods)
    autocommit = check_autocommit(autocommit_duration_ms, LABEL)
    if not isinstance(documentation, EndpointDocumentation):
        raise TypeError(
            f"{LABEL}: documentation must be a pw.io.http.EndpointDocumentation, "
            f"got {documentation!r}"
        )
    if request_validator is not None and not callable(request_validator):
        raise TypeError(
            f"{LABEL}: request_validator must be callable(payload, headers), got "
            f"{request_validator!r}"
        )
    if cache_strategy is not None:
        logger.warning("%s: cache_strategy is not supported and is ignored", LABEL)
    raw = schema is None
    table_schema = _default_schema() if raw else check_schema(schema, LABEL)
    assert table_schema is not None
    delete_completed = _delete_completed(keep_queries, delete_completed_queries)

    endpoint = _Endpoint(webserver, route, table_schema, raw, request_validator, delete_completed)
    docs_format = "raw" if raw else "custom"

    def describe(method: str) -> dict | None:
        if not documentation._is_method_exposed(method):
            return None
        return documentation.generate_docs(docs_format, method, table_schema)

    webserver._register_endpoint(route, checked_methods, endpoint.handle, describe)
    name = f"rest:{webserver.address}{route}"
    queries = reader_table(
        schema=table_schema,
        parser=TypedRowsParser(column_specs(table_schema)),
        reader_factory=lambda: _RestReader(
            endpoint, name, None if autocommit is None else autocommit / 1000
        ),
        name=name,
        autocommit_duration_ms=autocommit,
        max_backlog_size=None,
    )
    written: list[bool] = []

    def response_writer(responses: Any) -> None:
        """Answer each request with the ``result`` of the row of ``responses`` having the
        request's id."""
        from deltaflow.table import Table, add_output

        if not isinstance(responses, Table):
            raise TypeError(f"{LABEL}: response_writer expects a table, got {responses!r}")
        if "result" not in responses._columns:
            raise ValueError(
                f"{LABEL}: the table given to response_writer for route "
                f"{route!r} has no 'result' column (its columns: "
                f"{', '.join(responses._columns)}); the response is its "
                f"'result'"
            )
        if written:
            raise RuntimeError(
                f"{LABEL}: response_writer of route {route!r} was already "
                f"called; a request gets one response"
            )
        written.append(True)
        add_output(
            responses.select(responses.result) if len(responses._columns) > 1 else responses,
            _ResponseSink(endpoint, f"{name}:responses"),
        )

    return queries, response_writer
