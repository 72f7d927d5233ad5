"""pw.io.http.read and pw.io.http.write against a small aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from tests.io._http_helpers import StubServer
from tests.io._io_helpers import BackgroundRun, Changes

import deltaflow as pw
from deltaflow.engine.boundary import ConnectorError


class Row(pw.Schema):
    a: int
    b: str


FAST_RETRIES = dict(
    n_retries=3,
    retry_policy=pw.io.http.RetryPolicy(first_delay_ms=5, backoff_factor=2, jitter_ms=1),
)


def _handlers():
    from aiohttp import web

    state = {"flaky": 0}

    async def lines(request):
        return web.Response(
            text='{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'
            '{"a": "bad", "b": "z"}\nnot json\n{"a": 4}\n{"a": 5, "b": "w"}'
        )

    async def stream(request):
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(3):
            await response.write(f"part {i};".encode())
            await asyncio.sleep(0.15)  # the parts arrive apart: several minibatches
        return response

    async def echo(request):
        body = await request.text()
        return web.Response(text=json.dumps({"a": len(body), "b": body}) + "\n")

    async def ok(request):
        return web.Response(text="ok")

    async def flaky(request):
        state["flaky"] += 1
        if state["flaky"] % 3:
            return web.Response(status=503)
        return web.Response(text='{"a": 7, "b": "late"}\n')

    async def fail(request):
        return web.Response(status=500)

    return {
        "/lines": lines,
        "/stream": stream,
        "/echo": echo,
        "/sink": ok,
        "/flaky": flaky,
        "/fail": fail,
    }


@pytest.fixture
def server():
    with StubServer(_handlers()) as running:
        yield running


def test_read_json_messages_skipping_bad_ones(server, caplog):
    table = pw.io.http.read(
        server.url + "/lines", schema=Row, headers={"X-Token": "t"}, autocommit_duration_ms=10
    )
    with caplog.at_level(logging.ERROR, logger="deltaflow.io"):
        rows = pw.debug.table_to_dicts(table)[1]
    assert sorted(zip(rows["a"].values(), rows["b"].values(), strict=True)) == [
        (1, "x"),
        (2, "y"),
        (5, "w"),
    ]
    assert "message 3" in caplog.text and "message 4" in caplog.text  # bad type, not JSON
    assert server.requests[0][2]["X-Token"] == "t"


def test_read_raw_stream_with_delimiter_and_mapper(server):
    table = pw.io.http.read(
        server.url + "/stream",
        format="raw",
        delimiter=";",
        response_mapper=lambda m: m.upper(),
        autocommit_duration_ms=10,
    )
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert [row["data"] for row, _, _ in changes.rows] == ["PART 0", "PART 1", "PART 2"]
    # The messages arrived over time: more than one minibatch.
    assert len({time for _, time, _ in changes.rows}) > 1


def test_read_commits_each_message_at_once_on_an_idle_engine(server):
    """Streamed messages are independent records: each one that finds the engine idle is
    committed at once, not held for the (here 10 s) autocommit period or the stream's end."""
    table = pw.io.http.read(
        server.url + "/stream", format="raw", delimiter=";", autocommit_duration_ms=10_000
    )
    changes = Changes().subscribe(table)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert [row["data"] for row, _, _ in changes.rows] == ["part 0", "part 1", "part 2"]
    assert len({time for _, time, _ in changes.rows}) == 3  # 0.15 s apart: a time each


def test_read_sends_the_payload(server):
    table = pw.io.http.read(
        server.url + "/echo",
        schema=Row,
        method="POST",
        payload={"q": [1, 2]},
        autocommit_duration_ms=10,
    )
    rows = pw.debug.table_to_dicts(table)[1]
    assert list(rows["b"].values()) == ['{"q": [1, 2]}']
    assert server.requests[0][0] == "POST"
    assert server.requests[0][2]["Content-Type"] == "application/json"


def test_read_retries_then_succeeds(server):
    table = pw.io.http.read(
        server.url + "/flaky", schema=Row, autocommit_duration_ms=10, **FAST_RETRIES
    )
    rows = pw.debug.table_to_dicts(table)[1]
    assert list(rows["b"].values()) == ["late"]
    assert len(server.bodies("/flaky")) == 3


def test_read_failure_names_the_url_without_the_password(server):
    url = server.url.replace("http://", "http://user:hunter2@") + "/fail?token=s3cret"
    table = pw.io.http.read(url, schema=Row, n_retries=1, retry_policy=FAST_RETRIES["retry_policy"])
    pw.io.null.write(table)
    with pytest.raises(ConnectorError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    message = str(caught.value)
    assert "/fail" in message and "500" in message
    assert "hunter2" not in message and "s3cret" not in message


def test_write_json_sends_each_change_with_time_and_diff(server):
    table = pw.debug.table_from_markdown("""
        a | b   | __time__ | __diff__
        1 | x   | 2        | 1
        2 | y"z | 2        | 1
        1 | x   | 4        | -1
    """)
    pw.io.http.write(table, server.url + "/sink", headers={"X-Token": "t"})
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    bodies = sorted(
        (json.loads(b) for b in server.bodies("/sink")), key=lambda d: (d["time"], d["a"])
    )
    assert bodies == [
        {"a": 1, "b": "x", "time": 2, "diff": 1},
        {"a": 2, "b": 'y"z', "time": 2, "diff": 1},
        {"a": 1, "b": "x", "time": 4, "diff": -1},
    ]
    assert all(
        h["Content-Type"] == "application/json" and h["X-Token"] == "t"
        for _, _, h, _ in server.requests
    )


def test_write_custom_template_fills_placeholders(server):
    table = pw.debug.table_from_markdown("""
        a | b
        3 | x
    """)
    pw.io.http.write(
        table,
        server.url + "/sink",
        method="PUT",
        format="custom",
        request_payload_template="a={table.a} b={table.b} t={table.time} d={table.diff} {other}",
        headers={"X-Row": "{table.a}"},
        content_type="text/plain",
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    ((method, _, headers, body),) = server.requests
    assert method == "PUT"
    assert body.decode().startswith("a=3 b=x t=") and body.decode().endswith(" d=1 {other}")
    assert headers["X-Row"] == "3" and headers["Content-Type"] == "text/plain"


def test_write_retries_and_reports_final_failures(server, caplog):
    table = pw.debug.table_from_markdown("""
        a | b
        1 | x
    """)
    pw.io.http.write(table, server.url + "/flaky", **FAST_RETRIES)
    pw.io.http.write(table, server.url + "/fail", **FAST_RETRIES)
    with caplog.at_level(logging.ERROR, logger="deltaflow.io"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert len(server.bodies("/flaky")) == 3  # two 503s, then accepted
    assert len(server.bodies("/fail")) == 4  # the first try and three retries
    assert "/fail" in caplog.text and "HTTP 500" in caplog.text
    assert "/flaky" not in caplog.text


def test_retry_policy_waits_grow():
    default = pw.io.http.RetryPolicy.default()
    assert default.wait_duration_before_retry() == 1.0
    assert 1.5 <= default.wait_duration_before_retry() <= 1.8
    policy = pw.io.http.RetryPolicy(first_delay_ms=100, backoff_factor=2, jitter_ms=0)
    assert [policy.wait_duration_before_retry() for _ in range(3)] == [0.1, 0.2, 0.4]
    with pytest.raises(ValueError, match="first_delay_ms"):
        pw.io.http.RetryPolicy(first_delay_ms=-1, backoff_factor=2, jitter_ms=0)


def test_client_definition_errors():
    table = pw.debug.table_from_markdown("""
        a
        1
    """)
    with pytest.raises(TypeError, match="format"):
        pw.io.http.write(table, "http://127.0.0.1:1/", format="xml")
    with pytest.raises(ValueError, match="request_payload_template"):
        pw.io.http.write(table, "http://127.0.0.1:1/", format="custom")
    with pytest.raises(ValueError, match="table.zz"):
        pw.io.http.write(
            table, "http://127.0.0.1:1/", format="custom", request_payload_template="{table.zz}"
        )
    with pytest.raises(ValueError, match="url"):
        pw.io.http.write(table, "ftp://127.0.0.1/")
    with pytest.raises(TypeError, match="format"):
        pw.io.http.read("http://127.0.0.1:1/", format="xml")
    with pytest.raises(ValueError, match="schema"):
        pw.io.http.read("http://127.0.0.1:1/")
    with pytest.raises(ValueError, match="n_retries"):
        pw.io.http.read("http://127.0.0.1:1/", schema=Row, n_retries=-1)
    with pytest.raises(TypeError):
        pw.io.http.read("http://127.0.0.1:1/", schema=Row, streaming=True)


def test_write_to_a_streaming_rest_pipeline(server):
    """A REST query table written out over HTTP while the server keeps answering."""
    from tests.io._http_helpers import call, free_port, wait_serving

    port = free_port()
    queries, writer = pw.io.http.rest_connector(
        host="127.0.0.1",
        port=port,
        schema=Row,
        delete_completed_queries=False,
        autocommit_duration_ms=10,
    )
    writer(queries.select(result=pw.this.a))
    pw.io.http.write(queries, server.url + "/sink")
    with BackgroundRun():
        wait_serving(port)
        assert call("POST", f"http://127.0.0.1:{port}/", {"a": 9, "b": "q"}).json() == 9
        for _ in range(200):
            if server.bodies("/sink"):
                break
            asyncio.run(asyncio.sleep(0.02))
    (body,) = server.bodies("/sink")
    assert {k: v for k, v in json.loads(body).items() if k != "time"} == {
        "a": 9,
        "b": "q",
        "diff": 1,
    }


def test_logstash_write_posts_flat_json_with_time_and_diff(server):
    events = pw.debug.table_from_markdown("""
        level | text       | __time__ | __diff__
        warn  | disk_full  | 2        | 1
        info  | started    | 2        | 1
        warn  | disk_full  | 4        | -1
    """)
    pw.io.logstash.write(events, server.url + "/sink", sort_by=[events.level])
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    bodies = sorted(
        (json.loads(b) for b in server.bodies("/sink")), key=lambda d: (d["time"], d["level"])
    )
    assert bodies == [
        {"level": "info", "text": "started", "time": 2, "diff": 1},
        {"level": "warn", "text": "disk_full", "time": 2, "diff": 1},
        {"level": "warn", "text": "disk_full", "time": 4, "diff": -1},
    ]
    assert all(method == "POST" for method, _, _, _ in server.requests)


def test_logstash_write_checks_its_arguments_when_defined(server):
    table = pw.debug.table_from_markdown("""
        a
        1
    """)
    with pytest.raises(TypeError):
        pw.io.logstash.write()  # type: ignore[call-arg]
    with pytest.raises(KeyError):
        pw.io.logstash.write(table, server.url + "/sink", sort_by=["missing"])
    with pytest.raises(ValueError, match="pw.io.logstash.write"):
        pw.io.logstash.write(table, "ftp://127.0.0.1/")
