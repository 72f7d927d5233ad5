"""pw.io.http.rest_connector and PathwayWebserver, with real HTTP requests on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import logging
import socket
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.io._http_helpers import call, free_port, wait_serving
from tests.io._io_helpers import BackgroundRun, Changes

import deltaflow as pw
from deltaflow import _types as t
from deltaflow.io.http._payload import convert_field

pytestmark = pytest.mark.filterwarnings("ignore:pw.io.http.rest_connector")


class Query(pw.Schema):
    name: str
    n: int


def _echo_server(port: int, **kwargs):
    webserver = pw.io.http.PathwayWebserver(host="127.0.0.1", port=port)
    queries, writer = pw.io.http.rest_connector(
        webserver=webserver,
        route="/echo",
        schema=Query,
        methods=("GET", "POST"),
        autocommit_duration_ms=10,
        **kwargs,
    )
    writer(queries.select(result=pw.make_tuple(pw.this.name, pw.this.n * 2)))
    return webserver, queries


def test_post_and_get_are_answered_with_the_result():
    port = free_port()
    _echo_server(port, delete_completed_queries=False)
    with BackgroundRun():
        wait_serving(port)
        url = f"http://127.0.0.1:{port}/echo"
        reply = call("POST", url, {"name": "ann", "n": 3})
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.json() == ["ann", 6]
        # Query-string values are converted to the schema's types.
        assert call("GET", url + "?name=bob&n=-4").json() == ["bob", -8]
        # Numeric text for an int and a number for a str are accepted, as in Pathway.
        assert call("POST", url, {"name": 7, "n": "5"}).json() == ["7", 10]


@pytest.mark.parametrize(("delete", "expected"), [(True, [True, False]), (False, [True])])
def test_completed_queries_are_deleted_or_kept(delete, expected):
    port = free_port()
    _, queries = _echo_server(port, delete_completed_queries=delete)
    changes = Changes().subscribe(queries)
    with BackgroundRun():
        wait_serving(port)
        assert call("POST", f"http://127.0.0.1:{port}/echo", {"name": "a", "n": 1}).json() == [
            "a",
            2,
        ]
        changes.wait_for(lambda c: len(c.rows) >= len(expected))
    assert [added for _, _, added in changes.rows] == expected
    assert all(row == {"name": "a", "n": 1} for row, _, _ in changes.rows)


def test_persistence_keeps_the_queries_table_across_a_restart(tmp_path):
    """As in Pathway 0.33: the queries are part of the checkpoint; a restarted run starts
    with them in its table (their answers are not sent again) and takes new requests."""
    config = pw.persistence.Config(
        pw.persistence.Backend.filesystem(tmp_path / "state"), snapshot_interval_ms=50
    )
    port = free_port()
    counts_seen = []
    for words, total in ((["ann", "bob"], 2), (["cid"], 3)):
        pw.clear_graph()
        _, queries = _echo_server(port, delete_completed_queries=False)
        changes = Changes().subscribe(queries.reduce(total=pw.reducers.count()))
        with BackgroundRun(persistence_config=config):
            wait_serving(port)
            for n, name in enumerate(words):
                reply = call("POST", f"http://127.0.0.1:{port}/echo", {"name": name, "n": n})
                assert reply.json() == [name, 2 * n]
            changes.wait_for(
                lambda c, total=total: (
                    [r["total"] for r, _, added in c.rows if added][-1:] == [total]
                )
            )
        counts_seen.append([(r["total"], added) for r, _, added in changes.rows])
    # The second run starts from the first one's count (the restored state is not output
    # again, only its change), as Pathway does.
    assert counts_seen[0][-1] == (2, True)
    assert counts_seen[1] == [(2, False), (3, True)]


def test_keep_queries_is_the_opposite_of_delete_completed_queries():
    port = free_port()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, queries = _echo_server(port, keep_queries=True)
    assert any("keep_queries" in str(w.message) for w in caught)
    changes = Changes().subscribe(queries)
    with BackgroundRun():
        wait_serving(port)
        call("POST", f"http://127.0.0.1:{port}/echo", {"name": "a", "n": 1})
        changes.wait_for(lambda c: len(c.rows) >= 1)
    assert [added for _, _, added in changes.rows] == [True]


def test_bad_requests_get_400_naming_the_field_and_never_reach_the_pipeline(caplog):
    port = free_port()
    _, queries = _echo_server(port, delete_completed_queries=False)
    changes = Changes().subscribe(queries)
    url = f"http://127.0.0.1:{port}/echo"
    with caplog.at_level(logging.WARNING, logger="deltaflow.io"), BackgroundRun():
        wait_serving(port)
        missing = call("POST", url, {"name": "a"})
        assert missing.status == 400 and "'n'" in missing.text and "missing" in missing.text
        wrong = call("POST", url, {"name": "a", "n": "abc"})
        assert wrong.status == 400 and "'n'" in wrong.text
        fraction = call("POST", url, {"name": "a", "n": 1.5})
        assert fraction.status == 400 and "'n'" in fraction.text
        text_int = call("GET", url + "?name=a&n=x1")
        assert text_int.status == 400 and "'n'" in text_int.text
        assert call("POST", url, "not json").status == 400
        assert call("POST", url, [1, 2]).status == 400
        assert call("POST", f"http://127.0.0.1:{port}/nowhere", {}).status == 404
        not_allowed = call("PUT", url, {"name": "a", "n": 1})
        assert not_allowed.status == 405 and "POST" in not_allowed.headers["Allow"]
        assert call("POST", url, {"name": "ok", "n": 1}).json() == ["ok", 2]
        changes.wait_for(lambda c: len(c.rows) >= 1)
    assert [row for row, _, _ in changes.rows] == [{"name": "ok", "n": 1}]
    assert "refused" in caplog.text


def test_default_schema_takes_the_raw_body():
    port = free_port()
    queries, writer = pw.io.http.rest_connector(
        host="127.0.0.1", port=port, delete_completed_queries=True, autocommit_duration_ms=10
    )
    writer(queries.select(result=pw.this.query))
    with BackgroundRun():
        wait_serving(port)
        assert call("POST", f"http://127.0.0.1:{port}/", "some text").json() == "some text"
        body = '{"query": "x"}'
        assert call("POST", f"http://127.0.0.1:{port}/", body).json() == body


def test_request_validator_refusals_are_400():
    port = free_port()

    def validate(payload, headers):
        if headers.get("X-Token") != "secret":
            return "wrong token"
        if payload.get("n") == 0:
            raise ValueError("n must not be zero")
        return None

    queries, writer = pw.io.http.rest_connector(
        host="127.0.0.1",
        port=port,
        schema=Query,
        request_validator=validate,
        delete_completed_queries=True,
        autocommit_duration_ms=10,
    )
    writer(queries.select(result=pw.this.n))
    url = f"http://127.0.0.1:{port}/"
    with BackgroundRun():
        wait_serving(port)
        refused = call("POST", url, {"name": "a", "n": 1})
        assert refused.status == 400 and "wrong token" in refused.text
        raised = call("POST", url, {"name": "a", "n": 0}, headers={"X-Token": "secret"})
        assert raised.status == 400 and "n must not be zero" in raised.text
        assert call("POST", url, {"name": "a", "n": 5}, headers={"X-Token": "secret"}).json() == 5


def test_lookup_join_answers_many_concurrent_requests():
    port = free_port()
    prices = pw.debug.table_from_markdown("""
        item  | price
        apple | 3
        pear  | 5
    """)

    class Order(pw.Schema):
        item: str
        qty: int

    orders, writer = pw.io.http.rest_connector(
        host="127.0.0.1",
        port=port,
        schema=Order,
        delete_completed_queries=True,
        autocommit_duration_ms=5,
    )
    joined = orders.join_left(prices, pw.left.item == pw.right.item, id=pw.left.id).select(
        result=pw.coalesce(pw.right.price, 0) * pw.left.qty
    )
    writer(joined)
    url = f"http://127.0.0.1:{port}/"
    items = ["apple", "pear", "plum"]
    with BackgroundRun():
        wait_serving(port)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            replies = list(
                pool.map(lambda i: call("POST", url, {"item": items[i % 3], "qty": i}), range(60))
            )
    assert [r.json() for r in replies] == [
        {"apple": 3, "pear": 5, "plum": 0}[items[i % 3]] * i for i in range(60)
    ]


def test_one_webserver_serves_several_routes_and_its_openapi_description():
    port = free_port()
    webserver = pw.io.http.PathwayWebserver(host="127.0.0.1", port=port, with_cors=True)
    for route, factor in (("/double", 2), ("/triple", 3)):
        queries, writer = pw.io.http.rest_connector(
            webserver=webserver,
            route=route,
            schema=Query,
            delete_completed_queries=True,
            autocommit_duration_ms=10,
        )
        writer(queries.select(result=pw.this.n * factor))
    base = f"http://127.0.0.1:{port}"
    with BackgroundRun():
        wait_serving(port)
        assert call("POST", base + "/double", {"name": "a", "n": 2}).json() == 4
        assert call("POST", base + "/triple", {"name": "a", "n": 2}).json() == 6
        yaml_reply = call("GET", base + "/_schema")
        assert yaml_reply.headers["Content-Type"].startswith("text/x-yaml")
        assert "/double:" in yaml_reply.text and "&id" not in yaml_reply.text
        described = call("GET", base + "/_schema?format=json").json()
        assert list(described["paths"]) == ["/double", "/triple"]
        assert described["servers"] == [{"url": base}]
        preflight = call(
            "OPTIONS",
            base + "/double",
            headers={"Origin": "http://example.com", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://example.com"
        cors = call(
            "POST",
            base + "/double",
            {"name": "a", "n": 1},
            headers={"Origin": "http://example.com"},
        )
        assert cors.headers["Access-Control-Allow-Origin"] == "http://example.com"


def test_schema_endpoint_can_be_turned_off():
    port = free_port()
    webserver = pw.io.http.PathwayWebserver(host="127.0.0.1", port=port, with_schema_endpoint=False)
    queries, writer = pw.io.http.rest_connector(
        webserver=webserver, schema=Query, delete_completed_queries=True, autocommit_duration_ms=10
    )
    writer(queries.select(result=pw.this.n))
    with BackgroundRun():
        wait_serving(port, path="/")
        assert call("GET", f"http://127.0.0.1:{port}/_schema").status == 404


def test_openapi_description_has_pathways_shapes():
    class Described(pw.Schema):
        k: int
        v: str | None = pw.column_definition(
            default_value="Hello", description="Some value", example="Example"
        )
        d: dict
        f: float | None
        b: bool = pw.column_definition(default_value=False)

    examples = pw.io.http.EndpointExamples()
    examples.add_example("default", "Default example", values={"k": 1, "v": "Hello"})
    webserver = pw.io.http.PathwayWebserver(host="127.0.0.1", port=8080)
    pw.io.http.rest_connector(
        webserver=webserver,
        route="/a",
        methods=("GET", "PUT", "POST"),
        schema=Described,
        delete_completed_queries=False,
        documentation=pw.io.http.EndpointDocumentation(
            summary="s", tags=["x"], method_types=("GET", "PUT"), examples=examples
        ),
    )
    pw.io.http.rest_connector(webserver=webserver, route="/raw", delete_completed_queries=False)
    description = webserver.openapi_description_json("127.0.0.1:8080")
    responses = pw.io.http.EndpointDocumentation.DEFAULT_RESPONSES_DESCRIPTION
    assert description["servers"] == [{"url": "127.0.0.1:8080"}]
    assert set(description["paths"]["/a"]) == {"get", "put"}
    get = description["paths"]["/a"]["get"]
    assert get["parameters"][:2] == [
        {"in": "query", "name": "k", "required": True, "schema": {"type": "number"}},
        {
            "in": "query",
            "name": "v",
            "required": False,
            "example": "Example",
            "description": "Some value",
            "schema": {"type": "string"},
        },
    ]
    assert get["tags"] == ["x"] and get["summary"] == "s" and "description" not in get
    body = description["paths"]["/a"]["put"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {
        "type": "object",
        "properties": {
            "k": {"type": "number", "format": "int64"},
            "v": {
                "type": "string",
                "default": "Hello",
                "example": "Example",
                "description": "Some value",
            },
            "f": {"type": "number"},
            "b": {"type": "boolean", "default": False},
        },
        "additionalProperties": True,
        "required": ["k", "f"],
    }
    assert body["examples"] == {
        "default": {"summary": "Default example", "value": {"k": 1, "v": "Hello"}}
    }
    assert description["paths"]["/raw"] == {
        "post": {
            "requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}}},
            "responses": responses,
        }
    }
    assert webserver.openapi_description("h:1").startswith("openapi: 3.0.3\n")


def test_definition_errors():
    with pytest.raises(ValueError, match="host and port"):
        pw.io.http.rest_connector(schema=Query, delete_completed_queries=True)
    webserver = pw.io.http.PathwayWebserver(host="127.0.0.1", port=8080)
    with pytest.raises(ValueError, match="not both"):
        pw.io.http.rest_connector(
            host="127.0.0.1", port=1, webserver=webserver, delete_completed_queries=True
        )
    with pytest.raises(ValueError, match="route"):
        pw.io.http.rest_connector(webserver=webserver, route="x", delete_completed_queries=True)
    with pytest.raises(TypeError):
        pw.io.http.rest_connector(
            host="127.0.0.1", port=("8080",), schema=Query, delete_completed_queries=True
        )
    with pytest.raises(ValueError):
        pw.io.http.rest_connector(
            host="127.0.0.1", port="abc", schema=Query, delete_completed_queries=True
        )
    with pytest.raises(ValueError, match="FETCH"):
        pw.io.http.rest_connector(
            webserver=webserver, methods=("FETCH",), delete_completed_queries=True
        )
    queries, writer = pw.io.http.rest_connector(
        webserver=webserver, route="/q", schema=Query, delete_completed_queries=True
    )
    with pytest.raises(RuntimeError, match="/q"):
        pw.io.http.rest_connector(
            webserver=webserver, route="/q", schema=Query, delete_completed_queries=True
        )
    with pytest.raises(ValueError, match="result"):
        writer(queries.select(answer=pw.this.n))
    with pytest.raises(TypeError):
        pw.io.http.rest_connector(
            webserver=webserver, route="/t", schema=Query, delete_completed_queries=True, unknown=1
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pw.io.http.rest_connector(webserver=webserver, route="/w", schema=Query)
    assert any("delete_completed_queries" in str(w.message) for w in caught)


def test_port_in_use_fails_the_run_naming_the_address():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        queries, writer = pw.io.http.rest_connector(
            host="127.0.0.1", port=port, schema=Query, delete_completed_queries=True
        )
        writer(queries.select(result=pw.this.n))
        with pytest.raises(OSError, match=f"127.0.0.1:{port}.*already in use"):
            pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def test_port_out_of_range_fails_the_run():
    queries, writer = pw.io.http.rest_connector(
        host="127.0.0.1", port=-1, schema=Query, delete_completed_queries=True
    )
    writer(queries.select(result=pw.this.n))
    with pytest.raises(OverflowError, match="port must be 0-65535"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1))
def test_int_fields_round_trip_through_json_and_text(value):
    assert convert_field(value, t.INT, from_text=False) == value
    assert convert_field(str(value), t.INT, from_text=True) == value
    if abs(value) <= 2**53:  # exactly representable as a float
        assert convert_field(float(value), t.INT, from_text=False) == value


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False), st.booleans())
def test_float_and_bool_fields_round_trip(number, flag):
    assert convert_field(number, t.FLOAT, from_text=False) == number
    assert convert_field(repr(number), t.FLOAT, from_text=True) == number
    assert convert_field(flag, t.BOOL, from_text=False) is flag
    assert convert_field(str(flag).lower(), t.BOOL, from_text=True) is flag
    for bad in (1.5, "1.5", "x", True, [1]):
        with pytest.raises(ValueError):
            convert_field(bad, t.INT, from_text=False)


def test_requests_are_committed_at_once_when_idle_and_batched_while_busy():
    """A request that finds the engine idle is committed at once, without waiting for the
    ``autocommit_duration_ms`` window; requests arriving while the engine works on an earlier
    commit wait for it to finish (not for the window) and go in one time together."""
    import time

    port = free_port()
    webserver = pw.io.http.PathwayWebserver(host="127.0.0.1", port=port)
    queries, writer = pw.io.http.rest_connector(
        webserver=webserver,
        route="/echo",
        schema=Query,
        autocommit_duration_ms=2000,
        delete_completed_queries=False,
    )
    calls = [0]

    @pw.udf
    def slow_first(n: int) -> int:
        calls[0] += 1
        if calls[0] == 1:  # the engine is busy with the first commit for a while
            time.sleep(0.3)
        return n

    writer(queries.select(result=slow_first(pw.this.n)))
    changes = Changes().subscribe(queries)
    url = f"http://127.0.0.1:{port}/echo"

    def timed(n: int) -> tuple[int, float]:
        sent = time.monotonic()
        answer = call("POST", url, {"name": "x", "n": n}).json()
        return answer, time.monotonic() - sent

    with BackgroundRun():
        wait_serving(port)
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(timed, range(12)))
        single = timed(100)
    assert [answer for answer, _ in replies] == list(range(12))
    # The first commit, then everything that arrived while it was processed.
    assert len({time_ for _, time_, _ in changes.rows[:12]}) <= 2
    assert len(changes.rows) == 13 and all(added for _, _, added in changes.rows)
    # No one waited for the 2 s window: the burst waited for the busy engine only, and the
    # lone request, finding the engine idle, was answered at once.
    assert max(elapsed for _, elapsed in replies) < 1.5
    assert single[0] == 100 and single[1] < 0.5
