"""Schemas as JSON-ready data, as generated Python source, and compared with each other."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
from typing import Any

import numpy as np
import pytest
from tests._util import snapshot

import deltaflow as pw


class Order(pw.Schema):
    order_id: int = pw.column_definition(primary_key=True, description="the key", example=7)
    item: str = pw.column_definition(default_value="tea")
    price: float | None
    placed: pw.DateTimeUtc = pw.column_definition(
        default_value=pw.DateTimeUtc("2025-03-01T10:00:00+00:00")
    )
    wait: pw.Duration = pw.column_definition(default_value=pw.Duration(minutes=3))
    sizes: np.ndarray = pw.column_definition(default_value=np.array([[1, 2], [3, 4]]))
    tags: list[str | None] = pw.column_definition(default_value=("a", None))
    pair: tuple[bytes, bool] = pw.column_definition(default_value=(b"x", True))
    extra: pw.Json = pw.column_definition(default_value=pw.Json({"k": [1, 2]}))
    anything: Any
    ref: pw.Pointer


def test_json_dict_names_types_and_keeps_defaults_as_text() -> None:
    data = Order.to_json_serializable_dict()
    columns = data["columns"]
    assert list(columns) == Order.column_names()
    assert columns["order_id"]["dtype"] == {"type": "INT"}
    assert columns["order_id"]["primary_key"] is True
    assert columns["order_id"]["description"] == "the key"
    assert columns["price"]["dtype"] == {"type": "OPTIONAL", "wrapped": {"type": "FLOAT"}}
    assert columns["tags"]["dtype"] == {
        "type": "LIST",
        "wrapped": {"type": "OPTIONAL", "wrapped": {"type": "STR"}},
    }
    assert columns["pair"]["dtype"] == {
        "type": "TUPLE",
        "wrapped": [{"type": "BYTES"}, {"type": "BOOL"}],
    }
    assert "_serialized_default_value" not in columns["price"]
    assert json.loads(columns["item"]["_serialized_default_value"]) == "tea"
    assert Order.columns_to_json_serializable_dict() == columns
    json.dumps(data)  # JSON-ready through and through


def test_json_dict_rebuilds_an_equal_schema() -> None:
    data = Order.to_json_serializable_dict()
    rebuilt = pw.schema_from_dict(**data)
    assert rebuilt.to_json_serializable_dict() == data
    assert rebuilt.primary_key_columns() == ["order_id"]
    defaults = rebuilt.default_values()
    assert defaults["placed"] == pw.DateTimeUtc("2025-03-01T10:00:00+00:00")
    assert defaults["wait"] == pw.Duration(minutes=3)
    assert np.array_equal(defaults["sizes"], np.array([[1, 2], [3, 4]]))
    assert defaults["pair"] == (b"x", True)
    assert defaults["extra"] == pw.Json({"k": [1, 2]})
    assert rebuilt["order_id"].example == 7


def test_a_serialized_default_that_does_not_fit_the_type_fails_when_defined() -> None:
    with pytest.raises(ValueError, match="default value"):
        pw.schema_builder(
            {"a": pw.column_definition(dtype=int, _serialized_default_value='"not a number"')}
        )


def _load(path: pathlib.Path, class_name: str) -> Any:
    spec = importlib.util.spec_from_file_location("s4_generated_schema", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["s4_generated_schema"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["s4_generated_schema"]
    return getattr(module, class_name)


def test_generated_class_rebuilds_an_equal_schema(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "order.py"
    Order.generate_class_to_file(path, class_name="Order", generate_imports=True)
    text = path.read_text()
    assert text.startswith("import typing\nimport numpy\nimport deltaflow as pw\n")
    assert "class Order(pw.Schema):" in text
    generated = _load(path, "Order")
    assert generated == Order
    assert generated.__name__ == "Order"
    assert generated.to_json_serializable_dict() == Order.to_json_serializable_dict()


def test_generated_class_keeps_odd_names_and_append_only(tmp_path: pathlib.Path) -> None:
    schema = pw.schema_builder(
        {
            "first name": pw.column_definition(dtype=str),
            "class": pw.column_definition(dtype=int, default_value=3),
        },
        name="People",
        properties=pw.SchemaProperties(append_only=True),
    )
    source = schema.generate_class()
    assert source.startswith("class People(pw.Schema, append_only=True):")
    assert "import" not in source
    path = tmp_path / "people.py"
    schema.generate_class_to_file(path, generate_imports=True)
    generated = _load(path, "People")
    assert generated == schema
    assert generated.column_names() == ["first name", "class"]
    assert generated.universe_properties.append_only is True


def test_generate_class_rejects_a_name_that_is_not_an_identifier() -> None:
    with pytest.raises(ValueError, match="class_name"):
        Order.generate_class(class_name="not valid")


class Base(pw.Schema):
    key: int = pw.column_definition(primary_key=True)
    value: str = pw.column_definition(default_value="none", description="what")


class Flag(pw.Schema):
    flag: bool


class Expected(pw.Schema):
    key: int = pw.column_definition(primary_key=True)
    value: str = pw.column_definition(default_value="none", description="what")
    flag: bool


class Inherited(Base):
    flag: bool


@pytest.mark.parametrize("schema", [Inherited, Base | Flag], ids=["inherited", "or"])
def test_composed_schemas_match_the_spelled_out_one_strictly(schema: Any) -> None:
    schema.assert_matches_schema(
        Expected,
        allow_subtype=False,
        allow_superset=False,
        ignore_primary_keys=False,
        ignore_properties=False,
    )


def test_composed_schema_defaults_fill_missing_fields(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"key": 1, "value": "a", "flag": true}\n{"key": 2, "flag": false}\n')
    table = pw.io.jsonlines.read(path, schema=Base | Flag, mode="static")
    assert snapshot(table) == [(1, "a", True), (2, "none", False)]


def test_assert_matches_schema_checks_columns_types_keys_and_properties() -> None:
    class Loose(pw.Schema):
        key: int
        value: str

    class Wider(pw.Schema):
        key: int = pw.column_definition(primary_key=True)
        value: str | None

    class Floaty(pw.Schema):
        key: float
        value: str

    Base.assert_matches_schema(Loose)
    Base.assert_matches_schema(Wider)
    Base.assert_matches_schema(Floaty)
    Expected.assert_matches_schema(Base)
    with pytest.raises(AssertionError, match="flag"):
        Expected.assert_matches_schema(Base, allow_superset=False)
    with pytest.raises(AssertionError, match="flag"):
        Base.assert_matches_schema(Expected)
    with pytest.raises(AssertionError, match="value"):
        Base.assert_matches_schema(Wider, allow_subtype=False)
    with pytest.raises(AssertionError, match="value"):
        Wider.assert_matches_schema(Base)
    with pytest.raises(AssertionError, match="primary key"):
        Base.assert_matches_schema(Loose, ignore_primary_keys=False)
    with pytest.raises(AssertionError, match="description"):
        Base.assert_matches_schema(Loose, ignore_properties=False)

    class NoDefault(pw.Schema):
        key: int = pw.column_definition(primary_key=True)
        value: str = pw.column_definition(description="what")

    with pytest.raises(AssertionError, match="default"):
        Base.assert_matches_schema(NoDefault, ignore_properties=False)
    Base.assert_matches_schema(Base.without(), ignore_properties=False, ignore_primary_keys=False)


def test_column_and_schema_properties() -> None:
    assert Base.column_properties("key").dtype == pw.schema_from_types(k=int)["k"].dtype
    assert Base.column_properties("key").append_only is False
    appended = Base.update_properties(append_only=True)
    assert appended.universe_properties.append_only is True
    assert appended.column_properties("value").append_only is True
    assert appended.default_values() == {"value": "none"}
    assert Base.universe_properties.append_only is None
    with pytest.raises(TypeError, match="colour"):
        Base.update_properties(colour="red")
