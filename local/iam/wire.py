"""What the enforcer and the per-service adapters share: a signed call, its caller, an answer, the
adapter's shape, AWS's denial messages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

from local.iam.policy import Request

StackClients = Callable[[str, str], Any]
"""(service, region) -> a boto3 client on the stack's own credentials, at the emulator (for lookups)."""

# SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=..."
_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ASSUMED_ROLE_ARN_RE = re.compile(r"arn:aws:sts::(\d{12}):assumed-role/([^/]+)/(.+)")


@dataclass(frozen=True)
class SignedCall:
    """One SigV4-signed HTTP request to the emulator, as the enforcer sees it."""

    access_key_id: str
    region: str
    service: str
    """The signing name in the credential scope: dynamodb, sts, s3, ..."""
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes = b""

    def form(self) -> dict[str, str]:
        """The query-protocol parameters (STS, IAM): query string and form body, first value of each."""
        parameters = parse_qs(self.query, keep_blank_values=True)
        if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            parameters.update(parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return {name: values[0] for name, values in parameters.items()}


def credential_scope(authorization: str, query: str) -> tuple[str, str, str] | None:
    """(access key id, region, service) from a SigV4 Authorization header or a presigned URL's query."""
    match = _CREDENTIAL_RE.search(authorization)
    if match is None:
        presigned = parse_qs(query).get("X-Amz-Credential")
        match = _CREDENTIAL_RE.search(f"Credential={presigned[0]}") if presigned else None
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3)


@dataclass(frozen=True)
class Caller:
    """An assumed-role session the emulator issued: who it is, its tags, when it expires."""

    arn: str
    """As AWS names it in errors: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION."""
    role_arn: str
    tags: Mapping[str, str] = field(default_factory=dict)
    expires_at: float = float("inf")

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


def assumed_role_arn(role_arn: str, session_name: str) -> str:
    account, role_name = role_arn.split(":")[4], role_arn.rpartition("/")[2]
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"


def is_assumed_role_arn(arn: str) -> bool:
    return _ASSUMED_ROLE_ARN_RE.fullmatch(arn) is not None


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer the enforcer sends instead of the emulator's."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes

    def with_request_id(self) -> Answer:
        return Answer(self.status, [*self.headers, ("x-amzn-RequestId", str(uuid.uuid4()))], self.body)


def denial_message(caller_arn: str, request: Request, explicit: bool) -> str:
    """AWS's AccessDenied message for an identity-based policy decision."""
    action, resource = request.action, request.resource
    head = f"User: {caller_arn} is not authorized to perform: {action} on resource: {resource}"
    if explicit:
        return f"{head} with an explicit deny in an identity-based policy"
    return f"{head} because no identity-based policy allows the {request.action} action"


def unjudged_message(caller_arn: str, service: str, reason: str) -> str:
    """Why a call was refused that the local IAM emulation could not map to authorization requests."""
    return (
        f"User: {caller_arn} is not authorized to perform this {service} request: the local stack's IAM "
        f"emulation cannot judge it ({reason}), so it refuses it rather than guess"
    )


class ServiceAuthorization(Protocol):
    """How one AWS service's requests become IAM authorization requests, and how it says no.

    The extension point for another service (S3 next): implement this and pass it to the enforcer.
    """

    service: str
    """The SigV4 signing name it handles."""
    needs_body: bool
    """Whether ``requests`` reads the body (the enforcer then buffers it)."""

    def requests(self, call: SignedCall, caller: Caller) -> list[Request]:
        """Every authorization the call needs; raise UnsupportedPolicyError for what cannot be mapped."""
        ...

    def observe(self, call: SignedCall) -> None:
        """Every call of this service, whoever makes it, before the emulator runs it (to drop caches)."""
        ...

    def denied(self, message: str) -> Answer:
        """The service's AccessDenied answer."""
        ...

    def token_expired(self) -> Answer:
        """The service's answer to expired temporary credentials."""
        ...
