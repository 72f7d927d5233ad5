"""HTTP connectors: ``pw.io.http.rest_connector`` (a REST endpoint feeding the pipeline and
answering from it), ``pw.io.http.read`` (rows from an HTTP response) and
``pw.io.http.write`` (one HTTP request per change of a table).

All of them run aiohttp on an asyncio loop in a thread of their own; see docs/http.md.
"""

from __future__ import annotations

from deltaflow.io.http._client_read import read
from deltaflow.io.http._client_write import write
from deltaflow.io.http._common import RetryPolicy
from deltaflow.io.http._openapi import EndpointDocumentation, EndpointExamples
from deltaflow.io.http._rest import rest_connector
from deltaflow.io.http._server import PathwayWebserver

__all__ = [
    "EndpointDocumentation",
    "EndpointExamples",
    "PathwayWebserver",
    "RetryPolicy",
    "read",
    "rest_connector",
    "write",
]
