"""Where the DynamoDB writer writes: settings from the environment and the table itself.

:class:`DynamoDBSettings` is read from the standard AWS environment when the pipeline is
defined; the functions below describe, compare, create and wait for tables (DynamoDB creates
and deletes tables asynchronously).
"""

from __future__ import annotations

import logging
import os
import time as _time
from dataclasses import dataclass
from typing import Any, Literal

from deltaflow.io._aws.clients import botocore_config, new_client
from deltaflow.io._aws.errors import error_code

logger = logging.getLogger("deltaflow.io.dynamodb")

InitMode = Literal["default", "create_if_not_exists", "replace"]
INIT_MODES = ("default", "create_if_not_exists", "replace")


@dataclass(frozen=True)
class DynamoDBSettings:
    """Where and how to connect. Built from the environment by :meth:`from_env`.

    ``endpoint_url`` None means the AWS endpoint of ``region`` (botocore's own resolution,
    which also honours ``endpoint_url`` in the AWS config file). Credentials are found by
    boto3's usual chain (environment, profile, instance role ...).
    """

    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    max_workers: int = 4
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    @classmethod
    def from_env(cls) -> DynamoDBSettings:
        import boto3.session

        profile = os.environ.get("AWS_PROFILE") or None
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            region = boto3.session.Session(profile_name=profile).region_name
        if not region:
            raise ValueError(
                "pw.io.dynamodb.write: no AWS region is configured; set AWS_REGION (or "
                "AWS_DEFAULT_REGION) in the environment, e.g. AWS_REGION=us-west-2 (any region "
                "works with a local DynamoDB)"
            )
        endpoint = (
            os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
        return cls(region=region, endpoint_url=endpoint, profile=profile)

    def client(self, *, probe: bool = False) -> Any:
        """A low-level DynamoDB client. ``probe``: short timeouts, no retries.

        Otherwise botocore's ``standard`` retry mode retries throttling and transport errors
        a few times inside each call; the writer's retry policy decides how long an outage
        may last. (The ``adaptive`` mode's client-side rate limiter, measured, slowed the
        resending of unprocessed items ten-fold after a few throttled calls.) Parameter validation is
        skipped because the formatter already produces well-formed attribute values and
        validation costs per attribute.
        """
        if probe:
            config = botocore_config(attempts=1, connect_timeout=3, read_timeout=10)
        else:
            config = botocore_config(
                mode="standard",
                connect_timeout=self.connect_timeout_s,
                read_timeout=self.read_timeout_s,
                parameter_validation=False,
                max_pool_connections=self.max_workers + 2,
            )
        return new_client(
            "dynamodb",
            config=config,
            region=self.region,
            profile=self.profile,
            endpoint_url=self.endpoint_url,
        )

    def describe(self) -> str:
        return f"{self.endpoint_url or 'AWS'} (region {self.region})"


def describe_table(client: Any, table_name: str) -> dict[str, Any] | None:
    try:
        return dict(client.describe_table(TableName=table_name)["Table"])
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def schema_mismatch(description: dict[str, Any], key_schema: list[tuple[str, str]]) -> str | None:
    """Why the existing table's key schema differs from ours (None if it matches)."""
    roles = {"HASH": "partition key", "RANGE": "sort key"}
    theirs = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
    types = {
        a["AttributeName"]: a["AttributeType"] for a in description.get("AttributeDefinitions", [])
    }
    ours = {role: name for (name, _), role in zip(key_schema, ("HASH", "RANGE"), strict=False)}
    ours_types = dict(key_schema)
    if theirs != ours:
        have = ", ".join(f"{roles[r]} {n!r}" for r, n in sorted(theirs.items()))
        want = ", ".join(f"{roles[r]} {n!r}" for r, n in sorted(ours.items()))
        return f"the table has {have or 'no key'}, but the connector writes with {want}"
    for name, wanted in ours_types.items():
        if types.get(name, wanted) != wanted:
            return (
                f"key attribute {name!r} has type {types[name]} in the table, but the "
                f"column is written as {wanted}"
            )
    return None


def wait_for(client: Any, table_name: str, *, gone: bool, timeout_s: float = 300.0) -> None:
    """Poll until the table is ACTIVE (or deleted); DynamoDB does both asynchronously."""
    deadline = _time.monotonic() + timeout_s
    delay = 0.05
    while True:
        description = describe_table(client, table_name)
        if gone and description is None:
            return
        if not gone and description is not None and description.get("TableStatus") == "ACTIVE":
            return
        if _time.monotonic() > deadline:
            state = "deleted" if gone else "active"
            raise TimeoutError(
                f"DynamoDB table {table_name!r} did not become {state} within {timeout_s:.0f} s"
            )
        _time.sleep(delay)
        delay = min(delay * 2, 1.0)


def check_existing_table(
    settings: DynamoDBSettings,
    table_name: str,
    key_schema: list[tuple[str, str]],
    init_mode: InitMode,
) -> None:
    """Read-only check of the destination when the pipeline is defined.

    ``replace`` and ``create_if_not_exists`` change the database only when the run starts;
    here we only catch what would fail then. An unreachable endpoint is not an error yet: the
    run checks again when it starts.
    """
    if init_mode == "replace":
        return
    from botocore.exceptions import NoCredentialsError

    client = settings.client(probe=True)
    try:
        description = describe_table(client, table_name)
    except NoCredentialsError:
        raise ValueError(
            "pw.io.dynamodb.write: no AWS credentials found; set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - anything else is re-checked at run start
        logger.info(
            "pw.io.dynamodb.write: could not check table %r at %s now (%s); it will "
            "be checked when the run starts",
            table_name,
            settings.describe(),
            exc,
        )
        return
    where = f"DynamoDB table {table_name!r} at {settings.describe()}"
    if description is None:
        if init_mode == "default":
            raise ValueError(
                f"pw.io.dynamodb.write: {where} does not exist; create it, or "
                f"pass init_mode='create_if_not_exists'"
            )
        return
    mismatch = schema_mismatch(description, key_schema)
    if mismatch is not None:
        raise ValueError(
            f"pw.io.dynamodb.write: {where} cannot be written: {mismatch}; use "
            f"init_mode='replace' to recreate it"
        )
