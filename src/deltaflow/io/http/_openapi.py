"""The OpenAPI 3.0.3 description a webserver publishes for its REST endpoints.

``EndpointDocumentation`` and ``EndpointExamples`` are what a user attaches to a
``rest_connector``; :func:`endpoint_description` turns one endpoint (its schema, methods and
documentation) into the ``paths`` entry of the description, with the same shapes as Pathway
0.33 (checked by running it): a GET takes the columns as query parameters, the other methods a
JSON object body (plain text for the schema-less connector); columns of types JSON cannot
describe simply (Json, lists, tuples, dicts) are left out and make ``additionalProperties``
true.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from deltaflow import _types as t
from deltaflow.io._core.serialization import json_value
from deltaflow.schema import Schema

RESPONSES = {
    "200": {"description": "OK"},
    "400": {
        "description": "The request is incorrect. Please check if it complies with "
        "the auto-generated and Pathway input table schemas"
    },
}


class EndpointExamples:
    """Example requests shown in the OpenAPI description of an endpoint."""

    def __init__(self) -> None:
        self.examples_by_id: dict[str, dict[str, Any]] = {}

    def add_example(self, id: str, summary: str, values: dict[str, Any]) -> EndpointExamples:  # noqa: A002
        """Add the example ``id``: a short ``summary`` and the request's field ``values``."""
        if id in self.examples_by_id:
            raise ValueError(f"EndpointExamples: an example with id {id!r} was already added")
        self.examples_by_id[id] = {"summary": summary, "value": values}
        return self

    def _openapi_description(self) -> dict[str, Any]:
        return {key: dict(example) for key, example in self.examples_by_id.items()}


class EndpointDocumentation:
    """What the OpenAPI description says about an endpoint besides its request format.

    ``method_types`` limits the documented methods (default: all the endpoint accepts).
    """

    DEFAULT_RESPONSES_DESCRIPTION = RESPONSES

    def __init__(
        self,
        *,
        summary: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        method_types: Sequence[str] | None = None,
        examples: EndpointExamples | None = None,
    ) -> None:
        if examples is not None and not isinstance(examples, EndpointExamples):
            raise TypeError(
                f"EndpointDocumentation: examples must be pw.io.http."
                f"EndpointExamples, got {examples!r}"
            )
        self.summary = summary
        self.description = description
        self.tags = None if tags is None else list(tags)
        self.method_types = None if method_types is None else {m.upper() for m in method_types}
        self.examples = examples

    def _is_method_exposed(self, method: str) -> bool:
        return self.method_types is None or method.upper() in self.method_types

    def generate_docs(self, format: str, method: str, schema: type[Schema]) -> dict:  # noqa: A002
        """The OpenAPI operation object of ``method`` (``format`` 'raw' or 'custom')."""
        if method.upper() == "GET":
            operation: dict[str, Any] = {"parameters": _query_parameters(format, schema)}
        else:
            operation = {"requestBody": {"content": _body_content(format, schema, self.examples)}}
        operation["responses"] = copy.deepcopy(RESPONSES)
        for key, value in (
            ("tags", self.tags),
            ("description", self.description),
            ("summary", self.summary),
        ):
            if value is not None:
                operation[key] = value
        return operation


def _body_type(dtype: t.DType) -> dict[str, Any] | None:
    """The JSON schema of a column in a request body (None: not described)."""
    optional = dtype.is_optional
    base = dtype.strip_optional()
    if base == t.INT:
        return {"type": "number"} if optional else {"type": "number", "format": "int64"}
    if base == t.FLOAT:
        return {"type": "number"} if optional else {"type": "number", "format": "double"}
    if base == t.BOOL:
        return {"type": "boolean"}
    if base == t.STR:
        return {"type": "string"}
    if base == t.BYTES:
        return {"type": "bytes"}
    if base in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC, t.DURATION, t.POINTER):
        return {"type": "string"}
    return None


def _parameter_type(dtype: t.DType) -> str:
    base = dtype.strip_optional()
    if base in (t.INT, t.FLOAT):
        return "number"
    if base == t.BOOL:
        return "boolean"
    if base == t.BYTES:
        return "bytes"
    return "string"


def _column_traits(column: Any) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    if column.example is not None:
        traits["example"] = json_value(column.example)
    if column.description is not None:
        traits["description"] = column.description
    return traits


def _query_parameters(format: str, schema: type[Schema]) -> list[dict[str, Any]]:  # noqa: A002
    if format == "raw":
        return [{"in": "query", "name": "query", "required": True, "schema": {"type": "string"}}]
    parameters = []
    for name, column in schema.columns().items():
        parameter: dict[str, Any] = {
            "in": "query",
            "name": name,
            "required": not column.has_default_value(),
        }
        parameter.update(_column_traits(column))
        parameter["schema"] = {"type": _parameter_type(column.dtype)}
        parameters.append(parameter)
    return parameters


def _body_content(
    format: str,
    schema: type[Schema],  # noqa: A002
    examples: EndpointExamples | None,
) -> dict[str, Any]:
    if format == "raw":
        return {"text/plain": {"schema": {"type": "string"}}}
    properties: dict[str, Any] = {}
    required: list[str] = []
    additional = False
    for name, column in schema.columns().items():
        described = _body_type(column.dtype)
        if described is None:
            additional = True
            continue
        if column.has_default_value():
            described["default"] = json_value(column.default_value)
        else:
            required.append(name)
        described.update(_column_traits(column))
        properties[name] = described
    body: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": additional,
    }
    if required:
        body["required"] = required
    content: dict[str, Any] = {"schema": body}
    if examples is not None:
        content["examples"] = examples._openapi_description()
    return {"application/json": content}


def empty_description(origin: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Pathway-generated openapi description", "version": "1.0.0"},
        "paths": {},
        "servers": [{"url": origin}],
    }
