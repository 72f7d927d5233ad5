"""Request-to-response latency of a REST endpoint answering through a lookup join.

Pipeline: ``pw.io.http.rest_connector`` (schema ``key: int, qty: int``) -> ``join_left``
against a static table of BENCH_HTTP_KEYS prices (default 10,000) -> ``result = price * qty``
-> ``response_writer``. A load generator in a separate process (so that it shares no
interpreter with the server) sends POST requests at BENCH_RATE requests/s (default 1,000),
open loop (each request starts at its scheduled time, whatever the earlier ones do), for
BENCH_SECONDS seconds (default 10) after one second of warm-up, checks every answer and
measures each request from its send to its complete response. p50/p95/p99 latencies (ms) and
the rate achieved are reported. ``autocommit_duration_ms`` is BENCH_AUTOCOMMIT_MS (default 10)
on both implementations: Pathway's default of 1,500 ms would put every answer 0-1.5 s late.

Environment: BENCH_IMPL (deltaflow | pathway), BENCH_RATE, BENCH_SECONDS, BENCH_HTTP_KEYS,
BENCH_AUTOCOMMIT_MS.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

WARMUP_S = 1.0
CONNECTIONS = 256


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _price(key: int) -> int:
    return key % 97 + 1


# --- the load generator (a separate process) ----------------------------------------------
async def _load(url: str, rate: float, seconds: float, keys: int) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0  # requests that failed (connection errors, HTTP errors)
    wrong = 0  # answers that are not the expected value
    total = int((WARMUP_S + seconds) * rate)
    # At most CONNECTIONS requests in flight: the rest wait for a connection, which counts in
    # their latency (it is measured from the scheduled send).
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            nonlocal errors, wrong
            key = (i * 7919) % (keys + keys // 10)  # about 1 in 11 keys has no price
            qty = i % 5 + 1
            sent = start + i / rate  # the scheduled time: a late start is latency too
            try:
                async with session.post(url, json={"key": key, "qty": qty}) as response:
                    response.raise_for_status()
                    answer = await response.json(content_type=None)
            except Exception as exc:  # noqa: BLE001 - counted as a failure
                errors += 1
                if errors <= 3:
                    print(f"request {i} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                return
            elapsed = time.perf_counter() - sent
            expected = (_price(key) if key < keys else 0) * qty
            if answer != expected:
                wrong += 1
            elif i >= WARMUP_S * rate:
                latencies.append(elapsed)

        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        sending = time.perf_counter() - start
        await asyncio.gather(*tasks)
    return {
        "latencies": latencies,
        "errors": errors,
        "wrong": wrong,
        "sent": total,
        "send_rate": total / sending if sending else 0.0,
    }


def _client_main(url: str, rate: float, seconds: float, keys: int) -> None:
    print(json.dumps(asyncio.run(_load(url, rate, seconds, keys))), flush=True)


# --- the server side ---------------------------------------------------------------------
def _serve(pw, port: int, keys: int, autocommit_ms: int) -> None:
    import pandas as pd

    class Order(pw.Schema):
        key: int
        qty: int

    prices = pw.debug.table_from_pandas(
        pd.DataFrame({"key": list(range(keys)), "price": [_price(k) for k in range(keys)]})
    )
    orders, response_writer = pw.io.http.rest_connector(
        host="127.0.0.1",
        port=port,
        schema=Order,
        autocommit_duration_ms=autocommit_ms,
        delete_completed_queries=True,
    )
    answers = orders.join_left(prices, pw.left.key == pw.right.key, id=pw.left.id).select(
        result=pw.coalesce(pw.right.price, 0) * pw.left.qty
    )
    response_writer(answers)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def _wait_serving(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the REST endpoint on port {port} did not come up")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _harness import banner, env_float, env_int, impl, load_pw, report

    pw = load_pw()
    rate = env_float("BENCH_RATE", 1000.0)
    seconds = env_float("BENCH_SECONDS", 10.0)
    keys = env_int("BENCH_HTTP_KEYS", 10_000)
    autocommit_ms = env_int("BENCH_AUTOCOMMIT_MS", 10)
    banner(
        f"http lookup join, {impl()}: {rate:g} requests/s for {seconds:g} s, "
        f"{keys} keys, autocommit {autocommit_ms} ms"
    )
    port = _free_port()
    threading.Thread(target=_serve, args=(pw, port, keys, autocommit_ms), daemon=True).start()
    _wait_serving(port)
    time.sleep(0.5)
    client = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--client",
            f"http://127.0.0.1:{port}/",
            str(rate),
            str(seconds),
            str(keys),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if client.returncode != 0:
        print(client.stderr, file=sys.stderr)
        raise SystemExit("the load generator failed")
    outcome = json.loads(client.stdout.strip().splitlines()[-1])
    latencies = outcome["latencies"]
    print(client.stderr, file=sys.stderr, end="", flush=True)
    if outcome["wrong"] or not latencies:
        print(
            f"{outcome['wrong']} wrong answers, {len(latencies)} right", file=sys.stderr, flush=True
        )
        os._exit(1)
    report("http_failed_requests", outcome["errors"], "requests", "lower")
    for label, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        report(f"http_latency_{label}_ms", _percentile(latencies, q) * 1000, "ms", "lower")
    report("http_requests_per_s", outcome["send_rate"], "req/s", "higher")
    sys.stdout.flush()
    os._exit(0)  # the REST pipeline never ends by itself


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        _client_main(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
