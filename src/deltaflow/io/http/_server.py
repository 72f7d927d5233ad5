"""``PathwayWebserver``: one aiohttp server, on an asyncio loop in a thread of its own, that
serves the routes of any number of ``rest_connector`` s plus the OpenAPI description.

The server is started by the first REST input of a run (when the run starts, so a port in use
fails ``pw.run`` with an error naming ``host:port``) and stopped when the last one closes. The
routes are fixed when the pipeline is defined; each run builds a fresh aiohttp application
from them, so an unknown route gets aiohttp's 404 and a method the route does not accept a 405
with an ``Allow`` header.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from deltaflow.engine.boundary import ConnectorError
from deltaflow.io.http._openapi import empty_description
from deltaflow.io.http._payload import RestServerSubject  # noqa: F401 - Pathway's import path

logger = logging.getLogger("deltaflow.io")

SCHEMA_ROUTE = "/_schema"
_START_TIMEOUT_S = 30.0

Handler = Callable[[Any], Awaitable[Any]]


def check_port(port: Any, label: str) -> int:
    """``port`` as an int (a numeric str is accepted); the range is checked when binding."""
    if isinstance(port, bool) or not isinstance(port, int | str):
        raise TypeError(f"{label}: port must be an int (or a str holding one), got {port!r}")
    if isinstance(port, str):
        try:
            return int(port)
        except ValueError:
            raise ValueError(f"{label}: port {port!r} is not a number") from None
    return port


def connector_failure(connector: str, error: BaseException) -> ConnectorError:
    """``error`` as a :class:`ConnectorError` naming ``connector`` that is still an instance
    of the original exception's class (an ``OverflowError`` for a port out of range, a
    ``socket.gaierror`` for an unknown host ...), so callers catching either see it."""
    base = type(error)
    message = f"{type(error).__name__}: {error}"
    try:
        kind = type(f"Connector{base.__name__}", (ConnectorError, base), {})
        wrapped = kind(connector, message)
    except TypeError:  # a class that cannot be combined: a plain ConnectorError then
        wrapped = ConnectorError(connector, message)
    wrapped.__cause__ = error
    return wrapped


class PathwayWebserver:
    """An HTTP server for REST endpoints (``pw.io.http.rest_connector(webserver=...)``).

    ``with_schema_endpoint`` publishes the OpenAPI description of all endpoints at
    ``/_schema`` (YAML; JSON with ``?format=json``); ``with_cors`` answers CORS preflight
    requests and adds the CORS headers, allowing any origin.
    """

    def __init__(
        self, host: str, port: int | str, with_schema_endpoint: bool = True, with_cors: bool = False
    ) -> None:
        label = "pw.io.http.PathwayWebserver"
        if not isinstance(host, str):
            raise TypeError(f"{label}: host must be a str, got {host!r}")
        self._host = host
        self._port = check_port(port, label)
        self._with_schema_endpoint = bool(with_schema_endpoint)
        self._with_cors = bool(with_cors)
        # route -> (methods, handler, describe) where describe(method) gives the OpenAPI
        # operation or None when the method is not documented.
        self._routes: dict[str, tuple[tuple[str, ...], Handler, Callable[[str], dict | None]]] = {}
        self._lock = threading.Lock()
        self._users = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def address(self) -> str:
        return f"{self._host}:{self._port}"

    def __repr__(self) -> str:
        return f"PathwayWebserver({self._host!r}, {self._port})"

    # --- routes and their description ------------------------------------------------------
    def _register_endpoint(
        self,
        route: str,
        methods: tuple[str, ...],
        handler: Handler,
        describe: Callable[[str], dict | None],
    ) -> None:
        if route in self._routes or (self._with_schema_endpoint and route == SCHEMA_ROUTE):
            raise RuntimeError(
                f"pw.io.http.rest_connector: the webserver {self.address} "
                f"already serves the route {route!r}; a second endpoint on it "
                f"would never receive a request"
            )
        self._routes[route] = (methods, handler, describe)

    def openapi_description_json(self, origin: str) -> dict:
        """The OpenAPI 3.0.3 description of every endpoint, as a dict; ``origin`` is the
        server address it names (``servers``)."""
        description = empty_description(origin)
        for route, (methods, _, describe) in self._routes.items():
            operations = {}
            for method in methods:
                operation = describe(method)
                if operation is not None:
                    operations[method.lower()] = operation
            if operations:
                description["paths"][route] = operations
        return description

    def openapi_description(self, origin: str) -> str:
        """The OpenAPI description as YAML text."""
        import yaml

        # A deep copy: YAML would show objects shared between operations as anchors.
        description = copy.deepcopy(self.openapi_description_json(origin))
        return yaml.dump(description, sort_keys=False)

    async def _schema_handler(self, request: Any) -> Any:
        from aiohttp import web

        origin = f"{request.scheme}://{request.host}"
        if request.query.get("format", "yaml") == "json":
            return web.json_response(self.openapi_description_json(origin))
        try:
            text = self.openapi_description(origin)
        except ImportError:  # PyYAML missing: JSON is valid YAML too
            text = json.dumps(self.openapi_description_json(origin), indent=2)
        return web.Response(text=text, content_type="text/x-yaml")

    # --- the server's life -----------------------------------------------------------------
    def _app(self) -> Any:
        from aiohttp import web

        middlewares = [web.middleware(self._cors_middleware)] if self._with_cors else []
        app = web.Application(middlewares=middlewares, client_max_size=64 * 1024 * 1024)
        if self._with_schema_endpoint:
            app.router.add_get(SCHEMA_ROUTE, self._schema_handler)
        for route, (methods, handler, _) in self._routes.items():
            for method in methods:
                app.router.add_route(method, route, handler)
        return app

    @staticmethod
    async def _cors_middleware(request: Any, handler: Handler) -> Any:
        from aiohttp import web

        origin = request.headers.get("Origin")
        if origin is None:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            headers = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": request.headers["Access-Control-Request-Method"],
            }
            if "Access-Control-Request-Headers" in request.headers:
                headers["Access-Control-Allow-Headers"] = request.headers[
                    "Access-Control-Request-Headers"
                ]
            return web.Response(status=200, headers=headers)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = ",".join(
            h for h in response.headers if not h.startswith("Access-Control")
        )
        return response

    def _start(self, connector: str) -> None:
        """Serve (if not serving yet) until every user called :meth:`_release`. Raises a
        :class:`ConnectorError` naming ``connector`` and the address when binding fails."""
        with self._lock:
            if self._thread is not None:
                self._users += 1
                return
            ready = threading.Event()
            outcome: dict[str, BaseException] = {}
            thread = threading.Thread(
                target=self._serve,
                args=(ready, outcome),
                daemon=True,
                name=f"deltaflow-webserver-{self.address}",
            )
            thread.start()
            if not ready.wait(_START_TIMEOUT_S):
                raise ConnectorError(
                    connector,
                    f"the webserver {self.address} did not start within {_START_TIMEOUT_S:g} s",
                )
            if "error" in outcome:
                thread.join(timeout=5)
                raise connector_failure(connector, outcome["error"])
            self._thread = thread
            self._users = 1

    def _release(self) -> None:
        """One user is done; the last one stops the server (open requests are cut)."""
        with self._lock:
            if self._thread is None:
                return
            self._users -= 1
            if self._users > 0:
                return
            thread, self._thread = self._thread, None
            loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> bool:
        """Run ``callback(*args)`` on the server's loop (from any thread); False if the server
        is not running."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed meanwhile
            return False
        return True

    def _serve(self, ready: threading.Event, outcome: dict[str, BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve_async(loop, ready, outcome))
        finally:
            self._loop = None
            ready.set()
            loop.close()

    async def _serve_async(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        outcome: dict[str, BaseException],
    ) -> None:
        from aiohttp import web

        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            try:
                site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
                await site.start()
            except OSError as exc:
                if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                    outcome["error"] = OSError(
                        exc.errno,
                        f"the webserver cannot listen on "
                        f"{self.address}: the address is "
                        f"already in use",
                    )
                else:
                    outcome["error"] = exc
                return
            except (OverflowError, ValueError) as exc:
                outcome["error"] = type(exc)(
                    f"the webserver cannot listen on {self.address}: {exc}"
                )
                return
            self._stopping = asyncio.Event()
            self._loop = loop
            logger.info("webserver listening on http://%s", self.address)
            ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    def _run(self) -> None:
        """Serve on this thread until stopped (as a run would); binding errors raise."""
        self._start("webserver")
        thread = self._thread
        if thread is not None:
            thread.join()
