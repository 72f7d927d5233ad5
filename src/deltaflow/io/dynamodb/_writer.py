"""The DynamoDB writer: prepares the table and sends each time's changes.

Changes go out as ``BatchWriteItem`` requests of at most 25, in parallel. Throttling,
unprocessed items, 5xx answers and an unreachable endpoint are retried per the connector's
retry policy (``docs/retries.md``; botocore's standard retry mode handles short bursts inside
each call), so an outage shorter than the limit delays the run but loses nothing: ``flush``
returns only once every change of the time is stored.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deltaflow.errors import ConnectorError
from deltaflow.io._aws.errors import classify_error, error_code, is_retryable
from deltaflow.io._core.base import Writer
from deltaflow.io._core.retry import (
    DEFAULT_POLICY,
    BackoffPolicy,
    Outage,
    call_with_retries,
    limit_hint,
)
from deltaflow.io.dynamodb._formatter import DynamoDBChanges, RejectedRow
from deltaflow.io.dynamodb._table import (
    DynamoDBSettings,
    InitMode,
    describe_table,
    schema_mismatch,
    wait_for,
)

logger = logging.getLogger("deltaflow.io.dynamodb")


class DynamoDBWriteError(ConnectorError):
    """Some changes could not be written; every other change of the minibatch was."""


MAX_BATCH = 25
"""DynamoDB's limit of put/delete requests in one BatchWriteItem call."""


class DynamoDBWriter(Writer):
    """Sends the changes of each time with ``BatchWriteItem``; ``flush`` returns when stored."""

    def __init__(
        self,
        settings: DynamoDBSettings,
        table_name: str,
        key_schema: list[tuple[str, str]],
        init_mode: InitMode,
        name: str,
        *,
        policy: BackoffPolicy = DEFAULT_POLICY,
    ) -> None:
        self.settings = settings
        self.table_name = table_name
        self.key_schema = key_schema
        self.init_mode = init_mode
        self.name = name
        self.policy = policy
        self._client: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._prepared = False
        self._pending: list[DynamoDBChanges] = []
        self._lock = threading.Lock()
        self._resumed = False
        self._aborted = False
        self.retries = 0  # throttling/unprocessed resends, for statistics and tests

    # --- preparation ---------------------------------------------------------------------
    def _prepare(self) -> None:
        if self._prepared:
            return
        self._client = self.settings.client()
        # An unreachable endpoint at start is an outage like any other: waited out.
        self._with_retries("prepare the table", self.prepare_table, self._client)
        self._prepared = True

    def prepare_table(self, client: Any) -> None:
        """Apply ``init_mode`` (done once, by the output thread when the run starts)."""
        where = f"DynamoDB table {self.table_name!r} at {self.settings.describe()}"
        # A run resuming after a crash continues the table: writes by key are idempotent, so
        # the changes written again after the checkpoint leave it as they found it.
        if self.init_mode == "replace" and not self._resumed:
            if describe_table(client, self.table_name) is not None:
                logger.info("%s: replacing %s", self.name, where)
                client.delete_table(TableName=self.table_name)
                wait_for(client, self.table_name, gone=True)
            self._create(client)
            return
        description = describe_table(client, self.table_name)
        if description is None:
            if self.init_mode == "default":
                raise ValueError(
                    f"{where} does not exist; create it, or pass init_mode='create_if_not_exists'"
                )
            self._create(client)
            return
        mismatch = schema_mismatch(description, self.key_schema)
        if mismatch is not None:
            raise ValueError(
                f"{where} cannot be written: {mismatch}; use init_mode='replace' to recreate it"
            )
        if description.get("TableStatus") != "ACTIVE":
            wait_for(client, self.table_name, gone=False)

    def _create(self, client: Any) -> None:
        key_schema = [
            {"AttributeName": name, "KeyType": role}
            for (name, _), role in zip(self.key_schema, ("HASH", "RANGE"), strict=False)
        ]
        definitions = [
            {"AttributeName": name, "AttributeType": kind} for name, kind in self.key_schema
        ]
        try:
            client.create_table(
                TableName=self.table_name,
                KeySchema=key_schema,
                AttributeDefinitions=definitions,
                BillingMode="PAY_PER_REQUEST",
            )
            logger.info("%s: created DynamoDB table %r", self.name, self.table_name)
        except Exception as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
            # Somebody created it meanwhile: fine if its keys are ours.
            description = describe_table(client, self.table_name) or {}
            mismatch = schema_mismatch(description, self.key_schema)
            if mismatch is not None:
                raise ValueError(
                    f"DynamoDB table {self.table_name!r} cannot be written: {mismatch}"
                ) from exc
        wait_for(client, self.table_name, gone=False)

    # --- the Writer contract -------------------------------------------------------------
    def resume(self, position: Any) -> None:
        """The run resumes after a crash: keep the table even with ``init_mode='replace'``."""
        self._resumed = True

    def write(self, payload: DynamoDBChanges) -> None:
        self._prepare()
        self._pending.append(payload)

    def flush(self, time: int) -> None:
        self._prepare()
        pending, self._pending = self._pending, []
        if not pending:
            return
        requests, rejected = self._merge(pending)
        failures = self._send(requests)
        problems = [str(r) for r in rejected] + failures
        if problems:
            shown = "; ".join(problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise DynamoDBWriteError(
                self.name,
                f"{len(problems)} change(s) at time {time} could not be written to DynamoDB "
                f"table {self.table_name!r} (all other changes of that time were written): "
                f"{shown}{more}",
            )

    def close(self) -> None:
        try:
            self._prepare()
            if self._pending:
                self.flush(self._pending[-1].time)
        finally:
            self._shutdown()

    def abort(self) -> None:
        self._pending = []
        self._aborted = True  # retry loops stop at their next failure
        # Do not wait: a request may be retrying throttling, and the run already failed.
        self._shutdown(wait=False)

    def _shutdown(self, *, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None

    # --- sending -------------------------------------------------------------------------
    @staticmethod
    def _merge(pending: list[DynamoDBChanges]) -> tuple[list[dict[str, Any]], list[RejectedRow]]:
        rejected = [row for changes in pending for row in changes.rejected]
        if len(pending) == 1:
            (only,) = pending
            requests = [{"PutRequest": {"Item": item}} for item in only.puts]
            requests += [{"DeleteRequest": {"Key": key}} for key in only.deletes]
            return requests, rejected
        # Several batches in one time: a later change of a key replaces an earlier one,
        # because one BatchWriteItem request must not name a key twice.
        final: dict[tuple[Any, ...], dict[str, Any]] = {}
        for changes in pending:
            for identity, key in zip(changes.delete_keys, changes.deletes, strict=True):
                final[identity] = {"DeleteRequest": {"Key": key}}
            for identity, item in zip(changes.put_keys, changes.puts, strict=True):
                final[identity] = {"PutRequest": {"Item": item}}
        return list(final.values()), rejected

    def _send(self, requests: list[dict[str, Any]]) -> list[str]:
        chunks = [requests[i : i + MAX_BATCH] for i in range(0, len(requests), MAX_BATCH)]
        if len(chunks) <= 1:
            return [f for chunk in chunks for f in self._send_chunk(chunk)]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.settings.max_workers,
                thread_name_prefix=f"deltaflow-dynamodb-{self.table_name}",
            )
        futures = [self._executor.submit(self._send_chunk, chunk) for chunk in chunks]
        failures: list[str] = []
        first_error: BaseException | None = None
        for future in futures:  # wait for all, so a failure never leaves requests running
            try:
                failures.extend(future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return failures

    def _transient(self, exc: BaseException) -> bool:
        if not is_retryable(exc):
            return False
        with self._lock:
            self.retries += 1
        return True

    def _with_retries(
        self, action: str, method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """``method(*args, **kwargs)``, retried per the policy while DynamoDB is unreachable,
        throttling or failing (5xx); after the outage limit an :class:`OutageTooLong` names
        the limit."""
        return call_with_retries(
            lambda: method(*args, **kwargs),
            policy=self.policy,
            is_transient=self._transient,
            what=f"{self.name}: {action} ({self.table_name!r} at {self.settings.describe()})",
            describe=lambda exc: classify_error(exc, [])[1],
            hint=limit_hint("dynamodb"),
            stop=lambda: self._aborted,
        )

    def _send_chunk(self, chunk: list[dict[str, Any]]) -> list[str]:
        remaining = chunk
        # Items DynamoDB leaves unprocessed (it is busy) are sent again after a backoff that
        # grows while no item gets through; if none does for the outage limit, the run fails.
        leftovers = Outage(
            self.policy,
            what=f"{self.name}: writing to {self.table_name!r}",
            hint=limit_hint("dynamodb"),
        )
        while remaining:
            try:
                response = self._with_retries(
                    "write a batch",
                    self._client.batch_write_item,
                    RequestItems={self.table_name: remaining},
                )
            except Exception as exc:
                if error_code(exc) == "ValidationException":
                    # One bad change fails the whole request: write them one by one so that
                    # only the bad ones are lost, and report those.
                    return self._send_one_by_one(remaining)
                raise
            left = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if len(left) < len(remaining):
                leftovers.succeeded()  # progress: the next wait starts short again
            remaining = left
            if remaining:
                with self._lock:
                    self.retries += 1
                _time.sleep(leftovers.failed(f"{len(remaining)} item(s) left unprocessed"))
        return []

    def _send_one_by_one(self, requests: list[dict[str, Any]]) -> list[str]:
        failures = []
        for request in requests:
            try:
                if "PutRequest" in request:
                    self._with_retries(
                        "put an item",
                        self._client.put_item,
                        TableName=self.table_name,
                        Item=request["PutRequest"]["Item"],
                    )
                else:
                    self._with_retries(
                        "delete an item",
                        self._client.delete_item,
                        TableName=self.table_name,
                        Key=request["DeleteRequest"]["Key"],
                    )
            except Exception as exc:
                if error_code(exc) != "ValidationException":
                    raise
                failures.append(
                    f"row with key {self._key_text(request)}: DynamoDB rejected it: {exc}"
                )
        return failures

    def _key_text(self, request: dict[str, Any]) -> str:
        item = (
            request["PutRequest"]["Item"]
            if "PutRequest" in request
            else request["DeleteRequest"]["Key"]
        )
        parts = []
        for name, _ in self.key_schema:
            ((kind, value),) = item[name].items()
            parts.append(f"{name}={value}" if kind == "N" else f"{name}={value!r}")
        return ", ".join(parts)
