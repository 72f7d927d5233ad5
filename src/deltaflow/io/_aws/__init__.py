"""What the AWS connectors (S3, MinIO, DynamoDB, the S3 persistence backend) share.

- :mod:`.clients`: boto3 clients, built cheaply (one service-model loader for every session)
  with botocore's own retry mode configured from the connector's retry policy;
- :mod:`.errors`: which AWS errors are the settings' fault (fatal), which mean "unreachable
  or busy" (retried), and redaction of credentials in messages.

Nothing here imports boto3 at module import time: the ``s3``/``dynamodb`` extras are only
needed when a connector actually runs.
"""

from deltaflow.io._aws.clients import (
    botocore_config,
    new_client,
    require_boto3,
    session_with_shared_loader,
)
from deltaflow.io._aws.errors import (
    MIN_REDACTED_LENGTH,
    THROTTLING_CODES,
    classify_error,
    error_code,
    is_retryable,
    is_transport_error,
    redact,
)

__all__ = [
    "MIN_REDACTED_LENGTH",
    "THROTTLING_CODES",
    "botocore_config",
    "classify_error",
    "error_code",
    "is_retryable",
    "is_transport_error",
    "new_client",
    "redact",
    "require_boto3",
    "session_with_shared_loader",
]
