"""AWS errors: the settings' fault (fatal), or unreachable/busy (retried); secrets redacted."""

from __future__ import annotations

import re

MIN_REDACTED_LENGTH = 4
"""Shorter "secrets" (test keys such as ``s`` or ``key``) are not redacted: replacing every
occurrence of a few letters mangles the message and hides nothing worth hiding."""

# Error codes after which retrying cannot help: the settings are wrong.
FATAL_CODES = {
    "NoSuchBucket": "the bucket does not exist",
    "InvalidBucketName": "the bucket name is not valid",
    "InvalidAccessKeyId": "the access key is not known to the store (check access_key)",
    "SignatureDoesNotMatch": "the request signature was rejected (check secret_access_key)",
    "AccessDenied": "access was denied (check the credentials and the bucket's permissions)",
    "AccessDeniedException": "access was denied (check the credentials and permissions)",
    "UnrecognizedClientException": "the credentials are not known to the service",
    "AllAccessDisabled": "all access to this bucket is disabled",
    "InvalidToken": "the session token was rejected (check session_token)",
    "ExpiredToken": "the session token has expired (check session_token)",
    "AuthorizationHeaderMalformed": "the request was rejected (check region)",
    "PermanentRedirect": "the bucket is in another region (check region or endpoint)",
}
_FATAL_STATUS = {400, 401, 403, 404, 405, 411, 413}

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "TooManyRequestsException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "RequestTimeout",
        "SlowDown",
    }
)
"""Codes meaning "busy, try again later" (they come with 400/5xx statuses)."""


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every whole occurrence of a secret replaced by ``***``. A secret counts
    only where no letter or digit touches it, so an error message is never cut up
    mid-word."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < MIN_REDACTED_LENGTH:
            continue
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (None for other errors)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def is_transport_error(exc: BaseException) -> bool:
    """Whether the request never got an answer (connection refused/reset, timeouts ...)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, BotoConnectionError | HTTPClientError)


def classify_error(error: BaseException, secrets: list[str]) -> tuple[bool, str]:
    """(fatal, message) for a boto3 error: fatal errors are the settings' fault; the message
    never holds a secret."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return True, (
            "no AWS credentials found: pass access_key and secret_access_key in the "
            "settings or configure the standard AWS credential chain"
        )
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = redact(str(details.get("Message", "")), secrets)
        if code in FATAL_CODES:
            return True, f"{FATAL_CODES[code]} ({code}: {message})"
        if status in _FATAL_STATUS and code not in THROTTLING_CODES:
            return True, f"the service rejected the request ({code or status}: {message})"
        return False, f"{code or status}: {message}"
    return False, redact(f"{type(error).__name__}: {error}", secrets)


def is_retryable(error: BaseException) -> bool:
    """Whether waiting may help: the service was unreachable, busy or failing (5xx)."""
    code = error_code(error)
    if code is not None:
        return code in THROTTLING_CODES or not classify_error(error, [])[0]
    return is_transport_error(error)
