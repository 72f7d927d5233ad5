"""Helpers of the HTTP connector tests: free ports, a urllib client, a small aiohttp server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One HTTP request with urllib; errors statuses are returned, not raised."""
    data = None
    if body is not None:
        data = (
            body
            if isinstance(body, bytes)
            else (body if isinstance(body, str) else json.dumps(body)).encode()
        )
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


def wait_serving(port: int, path: str = "/_schema", timeout: float = 10.0) -> None:
    """Wait until something answers HTTP on ``port`` (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            call("GET", f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


Handler = Callable[[Any], Awaitable[Any]]


class StubServer:
    """An aiohttp server on 127.0.0.1 in a thread, with the routes given; records requests."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.port = free_port()
        self.routes = routes
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._loop = asyncio.new_event_loop()
        self._runner: Any = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        from aiohttp import web

        @web.middleware
        async def record(request: Any, handler: Handler) -> Any:
            body = await request.read()
            self.requests.append((request.method, request.path_qs, dict(request.headers), body))
            return await handler(request)

        app = web.Application(middlewares=[record])
        for path, handler in self.routes.items():
            app.router.add_route("*", path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> StubServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def bodies(self, path: str) -> list[bytes]:
        return [body for _, p, _, body in self.requests if p.split("?")[0] == path]
