"""pw.io.elasticsearch.write against a stub of Elasticsearch's _bulk endpoint on 127.0.0.1."""

from __future__ import annotations

import base64
import json

import pytest
from tests.io._http_helpers import StubServer

import deltaflow as pw
from deltaflow.errors import ConnectorError


def _bulk_handlers(state: dict) -> dict:
    from aiohttp import web

    async def bulk(request):
        lines = (await request.read()).decode().splitlines()
        documents = [json.loads(line) for line in lines[1::2]]
        state["documents"].extend(documents)
        if state.get("busy"):
            state["busy"] -= 1
            return web.Response(status=503)
        items = [
            {"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}}
            if document.get("pet") == "rock"
            else {"index": {"status": 201}}
            for document in documents
        ]
        errors = any("error" in item["index"] for item in items)
        return web.json_response({"errors": errors, "items": items})

    async def forbidden(request):
        return web.Response(status=403, text="no rights on this index")

    return {"/animals/_bulk": bulk, "/secret/_bulk": forbidden}


@pytest.fixture
def elastic():
    state: dict = {"documents": []}
    with StubServer(_bulk_handlers(state)) as server:
        server.state = state  # type: ignore[attr-defined]
        yield server


def _pets() -> pw.Table:
    return pw.debug.table_from_markdown("""
        owner | pet | __time__ | __diff__
        Alice | dog | 2        | 1
        Bob   | cat | 2        | 1
        Bob   | cat | 4        | -1
    """)


def test_each_change_is_a_document_with_time_and_diff(elastic) -> None:
    auth = pw.io.elasticsearch.ElasticSearchAuth.basic("admin", "s3cret")
    pw.io.elasticsearch.write(_pets(), elastic.url, auth, "animals")
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    documents = sorted(elastic.state["documents"], key=lambda d: (d["time"], d["owner"]))
    assert documents == [
        {"owner": "Alice", "pet": "dog", "diff": 1, "time": 2},
        {"owner": "Bob", "pet": "cat", "diff": 1, "time": 2},
        {"owner": "Bob", "pet": "cat", "diff": -1, "time": 4},
    ]
    # one request per time, each with the credentials and the bulk actions
    assert len(elastic.requests) == 2
    for method, path, headers, body in elastic.requests:
        assert (method, path) == ("POST", "/animals/_bulk")
        assert headers["Authorization"] == "Basic " + base64.b64encode(b"admin:s3cret").decode()
        assert headers["Content-Type"] == "application/x-ndjson"
        assert body.decode().splitlines()[0] == '{"index":{}}'


def test_other_credentials_and_busy_server(elastic, monkeypatch) -> None:
    monkeypatch.setenv("DELTAFLOW_RETRY_FIRST_DELAY_S", "0.01")
    elastic.state["busy"] = 2  # two 503 answers: retried
    auth = pw.io.elasticsearch.ElasticSearchAuth.apikey("key-id", "key-secret")
    pets = pw.debug.table_from_markdown("""
        owner | pet
        Carol | fish
    """)
    pw.io.elasticsearch.write(pets, elastic.url, auth, "animals")
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert [d["pet"] for d in elastic.state["documents"]] == ["fish"] * 3
    expected = "ApiKey " + base64.b64encode(b"key-id:key-secret").decode()
    assert {headers["Authorization"] for _, _, headers, _ in elastic.requests} == {expected}
    bearer = pw.io.elasticsearch.ElasticSearchAuth.bearer("tok")
    assert bearer.header() == "Bearer tok" and "tok" not in repr(bearer)


def test_rejected_documents_and_requests_stop_the_run(elastic) -> None:
    auth = pw.io.elasticsearch.ElasticSearchAuth.bearer("tok")
    rocks = pw.debug.table_from_markdown("""
        owner | pet
        Dan   | rock
    """)
    pw.io.elasticsearch.write(rocks, elastic.url, auth, "animals")
    with pytest.raises(ConnectorError, match="rejected 1 document"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    pw.clear_graph()
    pw.io.elasticsearch.write(_pets(), elastic.url, auth, "secret")
    with pytest.raises(ConnectorError, match="status 403"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def test_arguments_are_checked_when_defined() -> None:
    auth = pw.io.elasticsearch.ElasticSearchAuth.basic("a", "b")
    with pytest.raises(TypeError):
        pw.io.elasticsearch.write()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="ElasticSearchAuth"):
        pw.io.elasticsearch.write(_pets(), "http://127.0.0.1:1", ("a", "b"), "animals")
    with pytest.raises(ValueError, match="index_name"):
        pw.io.elasticsearch.write(_pets(), "http://127.0.0.1:1", auth, "")
    with pytest.raises(ValueError, match="http"):
        pw.io.elasticsearch.write(_pets(), "127.0.0.1:9200", auth, "animals")
    with pytest.raises(KeyError):
        pw.io.elasticsearch.write(_pets(), "http://127.0.0.1:1", auth, "animals", sort_by=["x"])
