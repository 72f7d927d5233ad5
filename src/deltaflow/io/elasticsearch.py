"""``pw.io.elasticsearch.write``: a table's changes indexed as documents of an Elasticsearch
index.

Every added or removed row becomes one new document: the row's columns as JSON (the
conversions of ``pw.io.jsonlines.write``) and two more fields, ``time`` and ``diff`` (``1`` or
``-1``), as in Pathway. The documents of one time go in one ``_bulk`` request when the time is
flushed; Elasticsearch gives them their ids. A request that cannot reach the server (or gets
429/5xx) is retried per the shared retry policy (``docs/retries.md``); a refused request or a
document the server rejects stops the run with a :class:`~deltaflow.errors.ConnectorError`
naming the connector: nothing is dropped silently.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from deltaflow.error_display import user_call
from deltaflow.errors import ConnectorError
from deltaflow.io._core.arguments import check_write_options, output_table
from deltaflow.io._core.base import Writer
from deltaflow.io._core.formats import JsonLinesFormatter
from deltaflow.io._core.retry import BackoffPolicy, call_with_retries, policy_for
from deltaflow.io.http._common import check_url, safe_url

__all__ = ["ElasticSearchAuth", "write"]

LABEL = "pw.io.elasticsearch.write"
_ACTION = b'{"index":{}}\n'
_TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
_TIMEOUT_S = 60.0


class ElasticSearchAuth:
    """How the writer authenticates to Elasticsearch: build one with :meth:`basic`,
    :meth:`apikey` or :meth:`bearer`. Its text never shows the secret."""

    def __init__(self, kind: str, header: str) -> None:
        self.kind = kind
        self._header = header

    @classmethod
    def basic(cls, username: str, password: str) -> ElasticSearchAuth:
        """A user name and a password (HTTP basic authentication)."""
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return cls("basic", f"Basic {token}")

    @classmethod
    def apikey(cls, apikey_id: str, apikey: str) -> ElasticSearchAuth:
        """An API key: its id and its secret."""
        token = base64.b64encode(f"{apikey_id}:{apikey}".encode()).decode()
        return cls("apikey", f"ApiKey {token}")

    @classmethod
    def bearer(cls, bearer: str) -> ElasticSearchAuth:
        """A bearer token."""
        return cls("bearer", f"Bearer {bearer}")

    def header(self) -> str:
        """The value of the ``Authorization`` header."""
        return self._header

    def __repr__(self) -> str:
        return f"ElasticSearchAuth.{self.kind}(...)"


class _Rejected(Exception):
    """A response saying the request will not succeed by being sent again."""


class _BulkWriter(Writer):
    """Buffers the documents of one time; :meth:`flush` indexes them in one request."""

    def __init__(self, url: str, auth: ElasticSearchAuth, name: str, policy: BackoffPolicy):
        self.url = url
        self.auth = auth
        self.name = name
        self.policy = policy
        self._body: list[bytes] = []

    def write(self, payload: bytes) -> None:
        for line in payload.splitlines():
            if line:
                self._body.append(_ACTION)
                self._body.append(line + b"\n")

    def flush(self, time: int) -> None:
        if not self._body:
            return
        body, self._body = b"".join(self._body), []
        try:
            answer = call_with_retries(
                lambda: self._send(body),
                policy=self.policy,
                is_transient=lambda error: isinstance(error, OSError),
                what=f"{LABEL} to {safe_url(self.url)}",
                hint="",
            )
        except _Rejected as error:
            raise ConnectorError(self.name, str(error)) from None
        failed = [item for item in answer.get("items", []) if _item_error(item) is not None]
        if answer.get("errors") or failed:
            reason = _item_error(failed[0]) if failed else "unknown reason"
            raise ConnectorError(
                self.name,
                f"Elasticsearch rejected {len(failed) or 'some'} document(s) of time {time} "
                f"(the first: {reason})",
            )

    def _send(self, body: bytes) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in write()
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-ndjson",
                "Authorization": self.auth.header(),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:  # noqa: S310
                text = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode(errors="replace")
            if error.code in _TRANSIENT_STATUSES:
                raise ConnectionError(f"status {error.code}: {detail}") from None
            raise _Rejected(f"the _bulk request got status {error.code}: {detail}") from None
        try:
            answer = json.loads(text)
        except ValueError:
            raise _Rejected(f"the _bulk answer is not JSON: {text[:200]!r}") from None
        return answer if isinstance(answer, dict) else {}


def _item_error(item: Any) -> Any:
    """The error of one document of a ``_bulk`` answer, or None."""
    if not isinstance(item, dict):
        return None
    for result in item.values():
        if isinstance(result, dict) and result.get("error") is not None:
            return result["error"]
    return None


@user_call
def write(
    table: Any,
    host: str,
    auth: ElasticSearchAuth,
    index_name: str,
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Index every change of ``table`` as a document of ``index_name`` on the Elasticsearch
    server at ``host``.

    Parameters:
        table: the table whose changes are indexed.
        host: the server's address with its port (``http://localhost:9200``).
        auth: the credentials (:class:`ElasticSearchAuth`).
        index_name: the index that gets the documents.
        name: the output's name in logs and monitoring.
        sort_by: columns ordering the documents of one time.

    Examples:
        >>> import deltaflow as pw
        >>> pets = pw.debug.table_from_markdown('''
        ... owner | pet
        ... Alice | dog
        ... ''')
        >>> pw.io.elasticsearch.write(
        ...     pets,
        ...     "http://localhost:9200",
        ...     auth=pw.io.elasticsearch.ElasticSearchAuth.basic("admin", "secret"),
        ...     index_name="animals",
        ... )  # indexed when pw.run() runs
    """
    check_url(host, LABEL)
    if not isinstance(auth, ElasticSearchAuth):
        raise TypeError(
            f"{LABEL}: auth must be a pw.io.elasticsearch.ElasticSearchAuth "
            f"(ElasticSearchAuth.basic(...), .apikey(...) or .bearer(...)), got {auth!r}"
        )
    if not isinstance(index_name, str) or not index_name:
        raise ValueError(f"{LABEL}: index_name must be a non-empty str, got {index_name!r}")
    options = check_write_options(
        LABEL,
        table,
        default_name=f"elasticsearch:{safe_url(host)}/{index_name}",
        name=name,
        sort_by=sort_by,
    )
    url = f"{host.rstrip('/')}/{urllib.parse.quote(index_name, safe='')}/_bulk"
    writer = _BulkWriter(url, auth, options.name, policy_for("elasticsearch", LABEL))
    output_table(options, writer, JsonLinesFormatter(options.columns))
