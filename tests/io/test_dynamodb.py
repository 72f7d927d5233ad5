"""pw.io.dynamodb.write against a real DynamoDB HTTP API: moto's server mode on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import pickle
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

import deltaflow as pw
from deltaflow.io import dynamodb

REGION = "us-west-2"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """One moto server per module, on a free port of 127.0.0.1."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def ddb(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A low-level client of the emptied server; the AWS environment points at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for variable in (
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(variable, raising=False)
    request = urllib.request.Request(moto_endpoint + "/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return boto3.client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def scan(client: Any, table_name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table_name}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def by_key(client: Any, table_name: str, key: str = "key") -> dict[Any, dict[str, Any]]:
    """The table's items indexed by the (single) key attribute's value."""
    found = {}
    for item in scan(client, table_name):
        ((_, value),) = item[key].items()
        found[value] = item
    return found


def create_table(client: Any, name: str, keys: list[tuple[str, str, str]]) -> None:
    """keys: (attribute, HASH/RANGE, S/N/B)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": a, "KeyType": k} for a, k, _ in keys],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": ty} for a, _, ty in keys],
    )


def markdown(text: str) -> pw.Table:
    return pw.debug.table_from_markdown(text)


# --------------------------------------------------------------------------------------------
# The documented example
# --------------------------------------------------------------------------------------------


def test_documented_example(ddb: Any) -> None:
    table = markdown("""
    key | value
    1   | Hello
    2   | World
    """)
    pw.io.dynamodb.write(
        table, table_name="test", partition_key=table.key, init_mode="create_if_not_exists"
    )
    pw.run()
    assert by_key(ddb, "test") == {
        "1": {"key": {"N": "1"}, "value": {"S": "Hello"}},
        "2": {"key": {"N": "2"}, "value": {"S": "World"}},
    }
    description = ddb.describe_table(TableName="test")["Table"]
    assert description["KeySchema"] == [{"AttributeName": "key", "KeyType": "HASH"}]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    pw.clear_graph()
    table = markdown("""
    key | value
    1   | Bonjour
    """)
    pw.io.dynamodb.write(table, table_name="test", partition_key=table.key)
    pw.run()
    assert by_key(ddb, "test") == {
        "1": {"key": {"N": "1"}, "value": {"S": "Bonjour"}},
        "2": {"key": {"N": "2"}, "value": {"S": "World"}},
    }

    pw.clear_graph()
    table = markdown("""
    key | value
    3   | Hi
    """)
    pw.io.dynamodb.write(table, table_name="test", partition_key=table.key, init_mode="replace")
    pw.run()
    assert scan(ddb, "test") == [{"key": {"N": "3"}, "value": {"S": "Hi"}}]


# --------------------------------------------------------------------------------------------
# Semantics: deletions, updates, sort keys, large and repeated minibatches
# --------------------------------------------------------------------------------------------


def test_deletions_and_updates(ddb: Any) -> None:
    table = markdown("""
      | key | value | __time__ | __diff__
    1 | 1   | a     | 2        | 1
    2 | 2   | b     | 2        | 1
    3 | 3   | c     | 2        | 1
    1 | 1   | a     | 4        | -1
    1 | 1   | A     | 4        | 1
    2 | 2   | b     | 4        | -1
    4 | 4   | d     | 6        | 1
    3 | 3   | c     | 6        | -1
    """)
    pw.io.dynamodb.write(table, "updates", table.key, init_mode="create_if_not_exists")
    pw.run()
    assert by_key(ddb, "updates") == {
        "1": {"key": {"N": "1"}, "value": {"S": "A"}},
        "4": {"key": {"N": "4"}, "value": {"S": "d"}},
    }


def test_sort_key(ddb: Any) -> None:
    table = markdown("""
      | user  | ts | amount | __time__ | __diff__
    1 | alice | 1  | 10     | 2        | 1
    2 | alice | 2  | 20     | 2        | 1
    3 | bob   | 1  | 30     | 2        | 1
    2 | alice | 2  | 20     | 4        | -1
    3 | bob   | 1  | 30     | 4        | -1
    3 | bob   | 1  | 31     | 4        | 1
    """)
    pw.io.dynamodb.write(
        table, "events", table.user, sort_key=table.ts, init_mode="create_if_not_exists"
    )
    pw.run()
    description = ddb.describe_table(TableName="events")["Table"]
    assert description["KeySchema"] == [
        {"AttributeName": "user", "KeyType": "HASH"},
        {"AttributeName": "ts", "KeyType": "RANGE"},
    ]
    assert sorted(description["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "ts", "AttributeType": "N"},
        {"AttributeName": "user", "AttributeType": "S"},
    ]
    items = sorted(scan(ddb, "events"), key=lambda i: (i["user"]["S"], i["ts"]["N"]))
    assert items == [
        {"user": {"S": "alice"}, "ts": {"N": "1"}, "amount": {"N": "10"}},
        {"user": {"S": "bob"}, "ts": {"N": "1"}, "amount": {"N": "31"}},
    ]


def test_more_than_25_changes_in_one_minibatch(ddb: Any) -> None:
    class S(pw.Schema):
        key: int = pw.column_definition(primary_key=True)
        value: str

    n = 230
    rows: list[tuple[Any, ...]] = [(k, f"v{k}", 2, 1) for k in range(n)]
    # Time 4: delete the first 100, update the next 80 (one minibatch of 260 changes).
    rows += [(k, f"v{k}", 4, -1) for k in range(180)]
    rows += [(k, f"w{k}", 4, 1) for k in range(100, 180)]
    table = pw.debug.table_from_rows(S, rows, is_stream=True)
    pw.io.dynamodb.write(table, "many", table.key, init_mode="create_if_not_exists")
    pw.run()
    found = {int(k): item["value"]["S"] for k, item in by_key(ddb, "many").items()}
    expected = {k: f"w{k}" for k in range(100, 180)} | {k: f"v{k}" for k in range(180, n)}
    assert found == expected


def test_repeated_keys_in_one_minibatch(ddb: Any) -> None:
    # Rows 1 and 2 share DynamoDB key 5; at time 4 the item of row 1 gives way to row 2's,
    # listed before the deletion on purpose. Rows 3 and 4 share key 7 in one minibatch.
    table = markdown("""
      | key | value | __time__ | __diff__
    1 | 5   | old   | 2        | 1
    3 | 7   | x     | 2        | 1
    4 | 7   | x     | 2        | 1
    2 | 5   | new   | 4        | 1
    1 | 5   | old   | 4        | -1
    """)
    pw.io.dynamodb.write(table, "repeated", table.key, init_mode="create_if_not_exists")
    pw.run()
    assert by_key(ddb, "repeated") == {
        "5": {"key": {"N": "5"}, "value": {"S": "new"}},
        "7": {"key": {"N": "7"}, "value": {"S": "x"}},
    }


# --------------------------------------------------------------------------------------------
# Type conversion
# --------------------------------------------------------------------------------------------


class Wrapped:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Wrapped) and other.x == self.x


def test_every_type_is_written_as_the_table_says(ddb: Any) -> None:
    class AllTypes(pw.Schema):
        key: str = pw.column_definition(primary_key=True)
        b: bool
        i: int
        f: float
        s: str
        by: bytes
        p: pw.Pointer
        dtn: pw.DateTimeNaive
        dtu: pw.DateTimeUtc
        d: pw.Duration
        j: pw.Json
        a: np.ndarray
        tup: tuple[int, str, float]
        lst: list[int]
        o: pw.PyObjectWrapper
        none: int | None

    row = (
        "k1",
        True,
        -42,
        2.5,
        "héllo",
        b"\x00\x01",
        pw.Pointer(12345),
        pd.Timestamp("2024-01-02 03:04:05.123456789"),
        pd.Timestamp("2024-01-02 04:04:05", tz="Europe/Paris"),
        pd.Timedelta(seconds=1.5),
        pw.Json({"a": [1, 2]}),
        np.array([[1, 2, 3], [4, 5, 6]]),
        (1, "x", 0.5),
        [7, 8],
        pw.wrap_py_object(Wrapped(3)),
        None,
    )
    table = pw.debug.table_from_rows(AllTypes, [row])
    pw.io.dynamodb.write(table, "types", table.key, init_mode="create_if_not_exists")
    pw.run()
    (item,) = scan(ddb, "types")
    kinds = {name: next(iter(value)) for name, value in item.items()}
    dtypes = AllTypes.dtypes()
    # Every attribute has the DynamoDB type that the documented table gives for its column.
    for name, kind in kinds.items():
        expected = "NULL" if name == "none" else dynamodb.dynamodb_type(dtypes[name])
        assert kind == expected, name
    assert item == {
        "key": {"S": "k1"},
        "b": {"BOOL": True},
        "i": {"N": "-42"},
        "f": {"N": "2.5"},
        "s": {"S": "héllo"},
        "by": {"B": b"\x00\x01"},
        "p": {"S": str(pw.Pointer(12345))},
        "dtn": {"S": "2024-01-02T03:04:05.123456789"},
        "dtu": {"S": "2024-01-02T03:04:05.000000000+0000"},
        "d": {"N": "1500000000"},
        "j": {"S": '{"a":[1,2]}'},
        "a": {
            "M": {
                "shape": {"L": [{"N": "2"}, {"N": "3"}]},
                "elements": {"L": [{"N": str(v)} for v in range(1, 7)]},
            }
        },
        "tup": {"L": [{"N": "1"}, {"S": "x"}, {"N": "0.5"}]},
        "lst": {"L": [{"N": "7"}, {"N": "8"}]},
        "o": item["o"],
        "none": {"NULL": True},
    }
    assert pickle.loads(item["o"]["B"]) == Wrapped(3)
    # The pointer's text is the one deltaflow prints.
    assert item["p"]["S"].startswith("^") and len(item["p"]["S"]) == 27


def test_type_mapping_table_covers_the_seed() -> None:
    assert dynamodb.TYPE_MAPPING == {
        "bool": "BOOL",
        "int": "N",
        "float": "N",
        "Pointer": "S",
        "str": "S",
        "bytes": "B",
        "DateTimeNaive": "S",
        "DateTimeUtc": "S",
        "Duration": "N",
        "Json": "S",
        "np.ndarray": "M",
        "tuple": "L",
        "list": "L",
        "PyObjectWrapper": "B",
        "None": "NULL",
    }


@pytest.mark.parametrize(
    "dtype, kind",
    [
        (str, "S"),
        (int, "N"),
        (float, "N"),
        (bytes, "B"),
        (pw.Pointer, "S"),
        (pw.DateTimeNaive, "S"),
        (pw.DateTimeUtc, "S"),
        (pw.Duration, "N"),
        (pw.Json, "S"),
    ],
)
def test_key_types(ddb: Any, dtype: Any, kind: str) -> None:
    samples = {
        str: "a",
        int: 3,
        float: 1.25,
        bytes: b"k",
        pw.Pointer: pw.Pointer(9),
        pw.DateTimeNaive: pd.Timestamp("2024-05-06 07:08:09"),
        pw.DateTimeUtc: pd.Timestamp("2024-05-06 07:08:09", tz="UTC"),
        pw.Duration: pd.Timedelta(minutes=2),
        pw.Json: pw.Json("k"),
    }
    schema = pw.schema_from_types(k=dtype, v=int)
    table = pw.debug.table_from_rows(schema, [(samples[dtype], 1)])
    pw.io.dynamodb.write(table, "keyed", table.k, init_mode="create_if_not_exists")
    pw.run()
    (item,) = scan(ddb, "keyed")
    assert next(iter(item["k"])) == kind
    definitions = ddb.describe_table(TableName="keyed")["Table"]["AttributeDefinitions"]
    assert definitions == [{"AttributeName": "k", "AttributeType": kind}]


# --------------------------------------------------------------------------------------------
# init_mode and definition-time checks
# --------------------------------------------------------------------------------------------


def simple_table() -> pw.Table:
    return markdown("""
    key | value
    1   | one
    """)


def test_default_mode_missing_table_fails_at_definition(ddb: Any) -> None:
    table = simple_table()
    with pytest.raises(ValueError, match="'absent' .*does not exist.*create_if_not_exists"):
        pw.io.dynamodb.write(table, "absent", table.key)


def test_default_mode_key_schema_mismatch_fails_at_definition(ddb: Any) -> None:
    create_table(ddb, "other_key", [("id", "HASH", "N")])
    table = simple_table()
    with pytest.raises(ValueError, match="partition key 'id'.*partition key 'key'"):
        pw.io.dynamodb.write(table, "other_key", table.key)
    create_table(ddb, "with_sort", [("key", "HASH", "N"), ("ts", "RANGE", "N")])
    with pytest.raises(ValueError, match="sort key 'ts'"):
        pw.io.dynamodb.write(table, "with_sort", table.key)


def test_key_type_mismatch_fails_at_definition(ddb: Any) -> None:
    create_table(ddb, "string_key", [("key", "HASH", "S")])
    table = simple_table()
    with pytest.raises(ValueError, match="'key' has type S in the table.*written as N"):
        pw.io.dynamodb.write(table, "string_key", table.key, init_mode="create_if_not_exists")


def test_default_mode_writes_into_existing_table(ddb: Any) -> None:
    create_table(ddb, "existing", [("key", "HASH", "N")])
    ddb.put_item(TableName="existing", Item={"key": {"N": "9"}, "value": {"S": "kept"}})
    table = simple_table()
    pw.io.dynamodb.write(table, "existing", table.key)
    pw.run()
    assert set(by_key(ddb, "existing")) == {"1", "9"}


def test_create_if_not_exists_keeps_existing_data(ddb: Any) -> None:
    create_table(ddb, "keep", [("key", "HASH", "N")])
    ddb.put_item(TableName="keep", Item={"key": {"N": "9"}, "value": {"S": "kept"}})
    table = simple_table()
    pw.io.dynamodb.write(table, "keep", table.key, init_mode="create_if_not_exists")
    pw.run()
    assert set(by_key(ddb, "keep")) == {"1", "9"}


def test_replace_recreates_a_table_with_other_keys(ddb: Any) -> None:
    create_table(ddb, "replaced", [("id", "HASH", "S")])
    ddb.put_item(TableName="replaced", Item={"id": {"S": "old"}})
    table = simple_table()
    pw.io.dynamodb.write(table, "replaced", table.key, init_mode="replace")
    # Nothing is replaced before the run starts.
    assert scan(ddb, "replaced") == [{"id": {"S": "old"}}]
    pw.run()
    assert scan(ddb, "replaced") == [{"key": {"N": "1"}, "value": {"S": "one"}}]
    schema = ddb.describe_table(TableName="replaced")["Table"]["KeySchema"]
    assert schema == [{"AttributeName": "key", "KeyType": "HASH"}]


def test_replace_with_empty_table_leaves_empty_table(ddb: Any) -> None:
    create_table(ddb, "emptied", [("key", "HASH", "N")])
    ddb.put_item(TableName="emptied", Item={"key": {"N": "1"}})
    table = pw.Table.empty(key=int, value=str)
    pw.io.dynamodb.write(table, "emptied", table.key, init_mode="replace")
    pw.run()
    assert scan(ddb, "emptied") == []


def test_table_deleted_after_definition_fails_the_run(ddb: Any) -> None:
    create_table(ddb, "vanishing", [("key", "HASH", "N")])
    table = simple_table()
    pw.io.dynamodb.write(table, "vanishing", table.key)
    ddb.delete_table(TableName="vanishing")
    with pytest.raises(pw.ConnectorError, match="'vanishing'.*does not exist"):
        pw.run()


def test_unreachable_endpoint_is_checked_when_the_run_starts(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", closed)  # takes precedence
    # An unreachable endpoint is waited for as long as the outage limit (docs/retries.md).
    monkeypatch.setenv("DELTAFLOW_DYNAMODB_MAX_OUTAGE_S", "1")
    table = simple_table()
    pw.io.dynamodb.write(table, "nowhere", table.key)  # cannot check yet: not an error
    with pytest.raises(pw.ConnectorError, match="dynamodb:nowhere") as info:
        pw.run()
    assert "DELTAFLOW_DYNAMODB_MAX_OUTAGE_S" in str(info.value)


def test_missing_region_fails_at_definition(
    ddb: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    table = simple_table()
    with pytest.raises(ValueError, match="AWS_REGION"):
        pw.io.dynamodb.write(table, "test", table.key)


def test_wrong_arguments_fail_at_definition(ddb: Any) -> None:
    table = markdown("""
    key | flag  | value | other
    1   | True  | 1.5   | x
    """)
    other = simple_table()
    with pytest.raises(ValueError, match="init_mode"):
        pw.io.dynamodb.write(table, "t1x", table.key, init_mode="sometimes")  # type: ignore
    with pytest.raises(TypeError, match="partition_key column 'flag'.*BOOL.*S.*N.*B"):
        pw.io.dynamodb.write(table, "t1x", table.flag, init_mode="replace")
    with pytest.raises(ValueError, match="sort_key 'key' is also the partition key"):
        pw.io.dynamodb.write(table, "t1x", table.key, sort_key=table.key, init_mode="replace")
    with pytest.raises(ValueError, match="another table"):
        pw.io.dynamodb.write(table, "t1x", other.key, init_mode="replace")
    with pytest.raises(TypeError, match="partition_key must be a column"):
        pw.io.dynamodb.write(table, "t1x", "key", init_mode="replace")  # type: ignore
    with pytest.raises(ValueError, match="row id"):
        pw.io.dynamodb.write(table, "t1x", table.id, init_mode="replace")
    with pytest.raises(ValueError, match="table_name"):
        pw.io.dynamodb.write(table, "", table.key, init_mode="replace")

    tuples = table.select(key=pw.make_tuple(table.key, table.other), value=table.value)
    with pytest.raises(TypeError, match="partition_key column 'key'.*written as L"):
        pw.io.dynamodb.write(tuples, "t1x", tuples.key, init_mode="replace")
    optional = markdown("""
    key | value
    1   | a
        | b
    """)
    with pytest.raises(TypeError, match="cannot be missing"):
        pw.io.dynamodb.write(optional, "t1x", optional.key, init_mode="replace")
    untyped = table.select(table.key, anything=pw.declare_type(Any, table.value))
    with pytest.raises(TypeError, match="column 'anything' has type Any"):
        pw.io.dynamodb.write(untyped, "t1x", untyped.key, init_mode="replace")
    # None of these defined an output or touched the server.
    assert ddb.list_tables()["TableNames"] == []


# --------------------------------------------------------------------------------------------
# Bad rows: rejected with their key, the rest of the minibatch is written, the run stops
# --------------------------------------------------------------------------------------------


def test_bad_rows_are_reported_and_the_rest_is_written(ddb: Any) -> None:
    class S(pw.Schema):
        key: str = pw.column_definition(primary_key=True)
        f: float
        big: list[int]
        blob: bytes

    rows = [(f"good{k}", float(k), [k], b"x") for k in range(40)]
    rows += [
        ("nan", float("nan"), [1], b"x"),
        ("inf", float("-inf"), [1], b"x"),
        ("range", 1e200, [1], b"x"),
        ("digits", 1.0, [10**40 + 1], b"x"),
        ("huge", 1.0, [1], b"y" * 500_000),
        ("", 1.0, [1], b"x"),
    ]
    table = pw.debug.table_from_rows(S, rows)
    pw.io.dynamodb.write(table, "bad", table.key, init_mode="create_if_not_exists")
    with pytest.raises(pw.ConnectorError) as info:
        pw.run()
    message = str(info.value)
    assert "6 change(s)" in message
    for fragment in [
        "key='nan'",
        "NaN",
        "key='inf'",
        "key='range'",
        "number range",
        "key='digits'",
        "38 significant digits",
        "key='huge'",
        "400 KB",
        "key=''",
        "empty string",
    ]:
        assert fragment in message, fragment
    assert set(by_key(ddb, "bad")) == {f"good{k}" for k in range(40)}


def test_empty_bytes_key_is_rejected(ddb: Any) -> None:
    schema = pw.schema_from_types(k=bytes, v=int)
    table = pw.debug.table_from_rows(schema, [(b"", 1), (b"ok", 2)])
    pw.io.dynamodb.write(table, "binkeys", table.k, init_mode="create_if_not_exists")
    with pytest.raises(pw.ConnectorError, match="k=b''.*empty"):
        pw.run()
    assert scan(ddb, "binkeys") == [{"k": {"B": b"ok"}, "v": {"N": "2"}}]


def test_item_rejected_by_dynamodb_is_reported_alone(ddb: Any) -> None:
    # Under our 400 KB estimate but over moto's own limit: DynamoDB's validation error fails
    # the whole BatchWriteItem, and the connector isolates the one bad item.
    schema = pw.schema_from_types(key=int, payload=str)
    rows = [(k, "p") for k in range(10)] + [(99, "z" * 406_000)]
    table = pw.debug.table_from_rows(schema, rows)
    pw.io.dynamodb.write(table, "validated", table.key, init_mode="create_if_not_exists")
    with pytest.raises(pw.ConnectorError, match="1 change.*key=99.*DynamoDB rejected it"):
        pw.run()
    assert set(by_key(ddb, "validated")) == {str(k) for k in range(10)}


# --------------------------------------------------------------------------------------------
# Throttling and unprocessed items, injected by an HTTP proxy in front of moto
# --------------------------------------------------------------------------------------------


class FaultyProxy:
    """Forwards DynamoDB requests to moto, but answers the first ``throttle`` BatchWriteItem
    calls with a throttling error and sends only half of every later batch on, returning the
    other half as UnprocessedItems — as a busy DynamoDB does."""

    def __init__(self, target: str, throttle: int) -> None:
        self.target = target
        self.throttle = throttle
        self.batch_calls = 0
        self.throttled = 0
        self.unprocessed = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, payload = proxy.handle(self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, headers: Any, body: bytes) -> tuple[int, bytes]:
        held_back: list[Any] = []
        if headers.get("X-Amz-Target", "").endswith(".BatchWriteItem"):
            with self._lock:
                self.batch_calls += 1
                throttle = self.batch_calls <= self.throttle
                self.throttled += throttle
            if throttle:
                error = {
                    "__type": "com.amazonaws.dynamodb.v20120810#"
                    "ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the "
                    "table was exceeded",
                }
                return 400, json.dumps(error).encode()
            request = json.loads(body)
            ((table_name, changes),) = request["RequestItems"].items()
            if len(changes) > 1:
                half = len(changes) // 2
                held_back = changes[half:]
                body = json.dumps({"RequestItems": {table_name: changes[:half]}}).encode()
                with self._lock:
                    self.unprocessed += len(held_back)
        forwarded = {
            k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")
        }
        request = urllib.request.Request(self.target, data=body, headers=forwarded, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        if held_back and status == 200:
            answer = json.loads(payload)
            answer["UnprocessedItems"] = {table_name: held_back}
            payload = json.dumps(answer).encode()
        return status, payload

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_throttling_and_unprocessed_items_are_retried(
    ddb: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_table(ddb, "busy", [("key", "HASH", "N")])
    proxy = FaultyProxy(moto_endpoint, throttle=4)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint)
        schema = pw.schema_from_types(key=int, value=str)
        table = pw.debug.table_from_rows(schema, [(k, f"v{k}") for k in range(120)])
        pw.io.dynamodb.write(table, "busy", table.key)
        pw.run()
    finally:
        proxy.stop()
    assert proxy.throttled == 4
    assert proxy.unprocessed > 0
    found = {int(k): item["value"]["S"] for k, item in by_key(ddb, "busy").items()}
    assert found == {k: f"v{k}" for k in range(120)}


def test_docs_example_runs() -> None:
    """The example of docs/dynamodb.md, run as written (it starts its own moto server)."""
    docs = pathlib.Path(__file__).resolve().parents[2] / "docs" / "dynamodb.md"
    blocks = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.S)
    (example,) = [block for block in blocks if "ThreadedMotoServer" in block]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        "[('1', 'Hello'), ('2', 'World')]",
        "[('1', 'Bonjour'), ('2', 'World')]",
        "[('3', 'Hi')]",
    ]
