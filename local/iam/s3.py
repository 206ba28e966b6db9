"""S3 calls as the IAM authorization requests AWS evaluates for them, and S3's POST policy checks.

``s3_requests`` is pure: an HTTP request to a bucket (path-style, as boto3 addresses the emulator on
127.0.0.1) gives the requests, with the condition keys the tenant data role's policy reads:

- ``s3:ListBucket`` on ``arn:aws:s3:::BUCKET`` for a listing, with ``s3:prefix`` when the listing has one
  (absent otherwise, so a policy requiring a prefix refuses a listing without one);
- ``s3:GetObject`` (also for HEAD), ``s3:PutObject`` and ``s3:DeleteObject`` on
  ``arn:aws:s3:::BUCKET/KEY``; a version id makes them the ``...Version`` actions;
- ``aws:ResourceAccount`` (the emulator holds one account: the caller's) and ``aws:PrincipalAccount``;
  ``aws:SecureTransport`` is ``false`` (the emulator serves plain HTTP).

A browser-style POST upload (a presigned POST's form) is signed in its form fields rather than in a
header; ``post_form_scope`` finds the session there. Before the emulator stores it, the form's policy is
checked as S3 checks it (moto does not): expiry, every condition on a field, the bucket, and the
``content-length-range`` of the file, answered with S3's own errors.

Anything else (bucket configuration, batch deletes, copies, ACLs, multipart uploads) raises
``UnsupportedPolicyError``: the enforcer refuses it rather than guess.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from local.iam.policy import ContextValue, Request, UnsupportedPolicyError
from local.iam.wire import Answer, Caller, SignedCall, credential_scope

SERVICE = "s3"
KNOWN_CONDITION_KEYS = frozenset(
    {"s3:prefix", "aws:resourceaccount", "aws:principalaccount", "aws:securetransport"}
)
# Query parameters that only shape a read's answer or carry a presigned URL's signature.
_HARMLESS_QUERY = frozenset(
    {
        "list-type",
        "prefix",
        "max-keys",
        "start-after",
        "continuation-token",
        "delimiter",
        "encoding-type",
        "fetch-owner",
        "marker",
        "response-content-disposition",
        "response-content-type",
        "x-id",
    }
)
_SIGNATURE_QUERY_PREFIX = "x-amz-"
_FILE_FIELD = "file"


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def s3_requests(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    caller: Caller,
    form_key: str | None = None,
) -> list[Request]:
    """The authorization requests of one S3 call; all of them must be allowed for it to succeed."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        raise UnsupportedPolicyError("a call without a bucket (ListBuckets) is not mapped")
    parameters = parse_qs(query, keep_blank_values=True)
    unknown = sorted(
        name
        for name in parameters
        if name.lower() not in _HARMLESS_QUERY
        and not name.lower().startswith(_SIGNATURE_QUERY_PREFIX)
        and name != "versionId"
    )
    if unknown:
        raise UnsupportedPolicyError(f"S3 subresource {', '.join(unknown)} is not mapped")
    if "x-amz-copy-source" in headers:
        raise UnsupportedPolicyError("CopyObject is not mapped")
    versioned = "versionId" in parameters
    context: dict[str, ContextValue] = {
        "aws:ResourceAccount": caller.account,
        "aws:PrincipalAccount": caller.account,
        "aws:SecureTransport": "false",
    }

    def request(action: str, resource: str, extra: Mapping[str, ContextValue] | None = None) -> Request:
        return Request(
            action=f"s3:{action}",
            resource=resource,
            principal_tags=caller.tags,
            context={**context, **(extra or {})},
            principal=caller.arn,
            known_keys=KNOWN_CONDITION_KEYS,
        )

    if method == "POST" and not key:
        if form_key is None:
            raise UnsupportedPolicyError("a POST to a bucket other than a form upload is not mapped")
        return [request("PutObject", _object_arn(bucket, form_key))]
    if not key:
        if method != "GET":
            raise UnsupportedPolicyError(f"{method} on a bucket (its configuration) is not mapped")
        prefix = parameters.get("prefix")
        return [request("ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": prefix[0]} if prefix else {})]
    actions = {"GET": "GetObject", "HEAD": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
    if method not in actions:
        raise UnsupportedPolicyError(f"{method} on an object is not mapped")
    action = actions[method] + ("Version" if versioned else "")
    return [request(action, _object_arn(bucket, key))]


# ---------------------------------------------------------------------------------------------------------
# Browser-style POST uploads (presigned POST)


def form_fields(body: bytes, content_type: str) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name (the file's content under ``file``)."""
    if not content_type.startswith("multipart/form-data"):
        return {}
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, bytes] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def lower_fields(fields: Mapping[str, bytes]) -> dict[str, str]:
    """Form field names are case-insensitive in S3's POST policy; the file is left out."""
    return {
        name.lower(): value.decode("utf-8", "replace")
        for name, value in fields.items()
        if name != _FILE_FIELD
    }


def post_form_scope(fields: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(access key id, region, service) from a POST form's ``x-amz-credential`` field."""
    credential = fields.get("x-amz-credential")
    return None if credential is None else credential_scope(f"Credential={credential}", "")


@dataclass(frozen=True)
class PostPolicyFailure:
    status: int
    code: str
    message: str


def post_policy_failure(
    bucket: str, fields: Mapping[str, str], file_size: int, now: Callable[[], float] = time.time
) -> PostPolicyFailure | None:
    """What S3 refuses in a POST upload's policy (expiry, conditions, size), or None when it is satisfied."""
    try:
        policy = json.loads(base64.b64decode(fields.get("policy", ""), validate=True))
        expires = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00")).timestamp()
        conditions: list[Any] = list(policy["conditions"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        return PostPolicyFailure(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    if now() > expires:
        return PostPolicyFailure(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    for condition in conditions:
        if isinstance(condition, dict):
            checks = [("eq", f"${name}", value) for name, value in condition.items()]
        elif isinstance(condition, list) and len(condition) == 3:
            checks = [tuple(condition)]
        else:
            return PostPolicyFailure(400, "InvalidPolicyDocument", "Invalid Policy: Invalid condition.")
        for operator, target, expected in checks:
            if operator == "content-length-range":
                if not int(target) <= file_size <= int(expected):
                    code = "EntityTooLarge" if file_size > int(expected) else "EntityTooSmall"
                    return PostPolicyFailure(
                        400, code, "Your proposed upload does not match the size the policy allows."
                    )
                continue
            actual = values.get(str(target).lstrip("$").lower())
            holds = (
                actual == expected
                if operator == "eq"
                else actual is not None and actual.startswith(str(expected))
                if operator == "starts-with"
                else False
            )
            if not holds:
                return PostPolicyFailure(
                    403,
                    "AccessDenied",
                    f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
                )
    return None


# ---------------------------------------------------------------------------------------------------------
# The enforcer's adapter


def error_answer(status: int, code: str, message: str) -> Answer:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Answer(status, [("Content-Type", "application/xml")], body.encode())


class S3Authorization:
    """S3 for the enforcer: objects and listings of a session, and presigned POST uploads."""

    service = SERVICE
    needs_body = True

    def requests(self, call: SignedCall, caller: Caller) -> list[Request]:
        form_key = None
        if call.method == "POST":
            fields = lower_fields(form_fields(call.body, call.headers.get("content-type", "")))
            form_key = fields.get("key")
        return s3_requests(call.method, call.path, call.query, call.headers, caller, form_key)

    def observe(self, call: SignedCall) -> None:
        """Nothing to forget: the mapping reads no emulator state."""

    def denied(self, message: str) -> Answer:
        return error_answer(403, "AccessDenied", message)

    def token_expired(self) -> Answer:
        return error_answer(400, "ExpiredToken", "The provided token has expired.")


def post_upload_refusal(call: SignedCall) -> Answer | None:
    """S3's answer to a POST form upload whose policy does not hold (None: not a form upload, or it holds)."""
    raw = form_fields(call.body, call.headers.get("content-type", ""))
    fields = lower_fields(raw)
    if "policy" not in fields:
        return None
    bucket = call.path.lstrip("/").partition("/")[0]
    failure = post_policy_failure(bucket, fields, len(raw.get(_FILE_FIELD, b"")))
    return None if failure is None else error_answer(failure.status, failure.code, failure.message)
