"""One exception for every way EC2 can fail us, with a message a cluster operator can act on."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

# Exceptions that mean "EC2 did not give us an answer". Anything else is a bug and should surface as such.
EC2_FAILURES: tuple[type[Exception], ...] = (BotoCoreError, ClientError)

_THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled"}
_DENIED = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}
_BAD_CREDENTIALS = {
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "RequestExpired",
}


class Ec2Unavailable(Exception):
    """EC2 could not answer (after botocore's retries) and neither cache nor fallback covered every key.

    `kind` is a short label for metrics (throttled, unreachable, timeout, credentials, denied, other);
    `partial` holds whatever could still be answered (an `Answer`), so callers may plan with less.
    """

    def __init__(self, cause: str, kind: str = "other", partial: Any = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.kind = kind
        self.partial = partial


def classify(exc: Exception, operation: str, attempts: int) -> Ec2Unavailable:
    """Turn a botocore failure into an `Ec2Unavailable` with a human message."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", ""))
        if code in _THROTTLED:
            return Ec2Unavailable(
                f"EC2 throttled {operation} even after {attempts} attempts ({code}); "
                "the account's EC2 API rate is exhausted",
                "throttled",
            )
        if code in _DENIED:
            return Ec2Unavailable(
                f"not allowed to call ec2:{operation} ({code}); check the IAM policy of the operator's role",
                "denied",
            )
        if code in _BAD_CREDENTIALS:
            return Ec2Unavailable(f"EC2 rejected the AWS credentials ({code}: {message})", "credentials")
        return Ec2Unavailable(f"EC2 {operation} failed: {code}: {message}", "other")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return Ec2Unavailable(
            f"no usable AWS credentials ({exc}); in EKS give the operator's service account an IAM role "
            "(IRSA or Pod Identity)",
            "credentials",
        )
    if isinstance(exc, NoRegionError):
        return Ec2Unavailable("no AWS region set: configure WARMPOOL_AWS_REGION or AWS_REGION", "credentials")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        return Ec2Unavailable(f"cannot reach the EC2 endpoint ({exc})", "unreachable")
    if isinstance(exc, ReadTimeoutError):
        return Ec2Unavailable(f"EC2 did not answer {operation} in time ({exc})", "timeout")
    return Ec2Unavailable(f"EC2 {operation} failed: {exc}", "other")
