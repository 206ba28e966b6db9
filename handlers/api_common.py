"""What every route of the tenant API shares: the bad-request error, JSON answers and pagination tokens.

A module of its own so that the routers (items in ``tenant_api``, files in ``files_api``) raise and
answer the same way without importing each other.

Pagination token: unpadded base64url of compact JSON ``{"v": 1, "t": <first 16 hex digits of
sha256(tenant id)>, "a": <the last id or name returned>}``. It is only accepted from the tenant it was
issued to, and a query always runs in the caller's own partition or prefix whatever the token says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from typing import Final

from aws_lambda_powertools.event_handler import Response, content_types

DEFAULT_PAGE_LIMIT: Final = 25
MAX_PAGE_LIMIT: Final = 100
_WHOLE_NUMBER_RE: Final = re.compile(r"[0-9]{1,18}")
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,400}")
_TOKEN_VERSION: Final = 1


class BadRequestError(ValueError):
    """The caller sent something invalid; the message says what and how to fix it."""


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def quoted(value: str) -> str:
    """``value`` as JSON text, cut to 40 characters: safe to echo in an error message."""
    shown = value if len(value) <= 40 else value[:40] + "..."
    return json.dumps(shown)


def page_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_LIMIT
    if _WHOLE_NUMBER_RE.fullmatch(value) is None or not 1 <= int(value) <= MAX_PAGE_LIMIT:
        raise BadRequestError(
            f"query parameter 'limit' is {quoted(value)}: use a whole number from 1 to {MAX_PAGE_LIMIT} "
            f"(default {DEFAULT_PAGE_LIMIT})"
        )
    return int(value)


def _tenant_binding(tenant_id: str) -> str:
    return hashlib.sha256(tenant_id.encode()).hexdigest()[:16]


def encode_page_token(tenant_id: str, last: str) -> str:
    payload = {"v": _TOKEN_VERSION, "t": _tenant_binding(tenant_id), "a": last}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(tenant_id: str, token: str, *, route: str, is_valid: Callable[[str], bool]) -> str:
    """The id or name to resume after; only for a token issued to ``tenant_id`` by ``route``'s listing."""
    malformed = BadRequestError(
        "query parameter 'next' is not a pagination token: pass the 'next' value of the previous "
        f"{route} page unchanged, or leave it out to start from the first page"
    )
    if _TOKEN_RE.fullmatch(token) is None:
        raise malformed
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as error:
        raise malformed from error
    if (
        not isinstance(payload, dict)
        or set(payload) != {"v", "t", "a"}
        or payload["v"] != _TOKEN_VERSION
        or not isinstance(payload["a"], str)
        or not is_valid(payload["a"])
    ):
        raise malformed
    if payload["t"] != _tenant_binding(tenant_id):
        raise BadRequestError(
            "query parameter 'next' was issued to another tenant: pass the 'next' value of your own "
            f"previous {route} page, or leave it out to start from the first page"
        )
    return str(payload["a"])
