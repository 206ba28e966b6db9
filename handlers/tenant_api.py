"""The tenant data API: a Lambda proxy integration behind the REST API and its tenant authorizer.

The caller's tenant comes only from ``requestContext.authorizer`` (written by the authorizer after it
verified the ID token), never from a header, the path, the query or the body. Data access goes through
STS credentials tagged with that tenant (``handlers.tenant_data``), so IAM refuses anything else.

Routes and answers (all bodies JSON):

- ``GET /tenant`` → 200 ``{"tenant_id", "tier", "isolation", "limits": {"throttle": {"rate", "burst"},
  "quota": {"limit", "period", "offset"}}}``
- ``POST /counter`` → 200 ``{"tenant_id", "counter"}``; the first call answers 1.
- ``PUT /items/{id}`` with any JSON document (at most 64 KiB = 65,536 bytes of raw body, after base64
  decoding, and at most 64 levels of nested arrays and objects: ``[[1]]`` is 2 levels) → 201
  ``{"id", "created": true}`` when new, 200 ``{"id", "created": false}`` when replaced. Whatever the
  body (any bytes, size, nesting, encoding or content type) the answer is a 2xx or a 400 that says why.
- ``GET /items/{id}`` → 200 ``{"id", "value"}`` with the document exactly as it was sent, or 404.
- ``GET /items?limit=N&next=TOKEN`` → 200 ``{"items": [{"id", "value"}, ...], "next": TOKEN | null}`` in
  id order; ``limit`` 1-100 (default 25); a page may hold fewer items than ``limit`` (responses are kept
  under 4 MiB of documents) and ``next`` is null on the last page.
- ``DELETE /items/{id}`` → 204, whether or not the item existed.
- ``/files`` and ``/files/{name}``: the tenant's files in S3 (``handlers.files_api`` documents them).

Item ids: 1-128 characters from ``A-Z a-z 0-9 . _ ~ -`` (RFC 3986 unreserved characters, so an id never
needs escaping in a URL and cannot smuggle a path separator), except ``.`` and ``..``: those are dot
segments, which every HTTP client removes from a URL before sending it (RFC 3986 section 5.2.4).

Pagination token: unpadded base64url of compact JSON ``{"v": 1, "t": <first 16 hex digits of
sha256(tenant id)>, "a": <id of the last item returned>}``. It is only accepted from the tenant it was
issued to, and the query always runs in the caller's own partition whatever the token says.

Errors: ``{"message": ...}`` with 400 (body, item id, ``limit`` or ``next`` invalid), 404 (no such item or
route), 503 with ``Retry-After`` (DynamoDB or STS throttling; a write while ``python -m tiers migrate``
moves the tenant's data, or one that lost to concurrent writes of the same item ten times) and 500
``{"message", "request_id"}`` for anything else, the traceback only in the logs. A request without a
valid authorizer context also gets a 500: only a misconfigured API can send one (the authorizer is not
attached to the route, or writes other keys), the caller cannot fix it, and a 5xx is what alarms an
operator; refusing to serve it is what keeps data safe.

In Lambda tenant isolation mode (``Env.TENANT_ISOLATION``) every invocation must carry, as
``context.tenant_id``, the authorizer's tenant (API Gateway maps it from the authorizer context); an
invocation whose tenant id is missing or differs is refused with a 500, an error log line and a
``TenantMismatch`` metric, because serving it would mix tenants in one execution environment.

Logs are JSON with the tenant id, tier and request id on every line (never bodies, keys or credentials);
each request emits one EMF record counting ``Requests`` and ``Errors`` (5xx answers) with the dimensions
``tier`` and ``route`` (``GET /items/{id}``; ``other`` for a path outside the contract), so the number of
metrics is bounded by tiers x routes whatever the number of tenants. The tenant id rides along as an EMF
property: searchable in Logs Insights (``filter tenant_id = "acme"``), never a metric of its own.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, NoReturn, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers import api_common
from handlers.api_common import BadRequestError, page_limit
from handlers.contract import (
    ISOLATIONS,
    METRICS_NAMESPACE,
    QUOTA_PERIODS,
    ROUTES,
    TENANT_API_FUNCTION,
    TENANT_ISOLATION_MODE,
    ContextKey,
    Env,
    MetricDimension,
    is_valid_tenant_id,
)
from handlers.files_api import checked_file_name, files_router, serialize_response_body
from handlers.tenant_data import Placement, RetryLaterError, TenantClients, TenantTable
from handlers.tenant_files import PRESIGNED_URL_SECONDS, TenantFiles

ITEM_ID_PATTERN: Final = r"[A-Za-z0-9._~-]{1,128}"
MAX_BODY_BYTES: Final = 64 * 1024
MAX_NESTING_DEPTH: Final = 64
_DOT_SEGMENTS: Final = frozenset({".", ".."})
MAX_PAGE_DOCUMENT_BYTES: Final = 4 * 1024 * 1024
RETRY_AFTER_SECONDS: Final = 1
# Emitted (dimension: service) for every invocation refused because its Lambda tenant id disagreed with
# the authorizer's tenant: an alarm on it catches a broken tenant-id mapping at once.
TENANT_MISMATCH_METRIC: Final = "TenantMismatch"
THROTTLING_ERROR_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",  # STS
    }
)

_ITEM_ID_RE: Final = re.compile(ITEM_ID_PATTERN)
_TABLE_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_BUCKET_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_WHOLE_NUMBER_RE: Final = re.compile(r"[0-9]{1,18}")
_DECIMAL_RE: Final = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,9})?")
_ROUTE_LIST: Final = ", ".join(f"{method} {path}" for method, path in ROUTES)
_ROUTE_SET: Final = frozenset(ROUTES)
OTHER_ROUTE: Final = "other"

logger = Logger(service=os.environ.get(Env.SERVICE_NAME) or TENANT_API_FUNCTION)
# The resolver hands its serializer any non-str body of a JSON content type and base64-encodes a bytes
# result, as it does a bytes body; its annotation (dict in, str out) is narrower than that.
app = APIGatewayRestResolver(serializer=cast(Callable[[dict[Any, Any]], str], serialize_response_body))
data_clients = TenantClients()
# The resolver keeps the current event in class attributes: one request at a time per process. Lambda
# runs one invocation per container anyway; the local stack calls handlers from several threads.
_resolver_lock = threading.Lock()


class MisconfiguredError(RuntimeError):
    """The deployment, not the caller, is wrong (e.g. the authorizer context is missing)."""


@dataclass(frozen=True)
class Tenant:
    """The caller's tenant as the authorizer described it."""

    tenant_id: str
    tier: str
    isolation: str
    table: str
    bucket: str
    throttle_rate: int | float
    throttle_burst: int
    quota_limit: int
    quota_period: str
    quota_offset: int


# ---------------------------------------------------------------------------------------------------------
# Entry point


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = request_id_of(event, context)
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(request_id=request_id)
    try:
        request_context = event.get("requestContext")
        authorizer = request_context.get("authorizer") if isinstance(request_context, Mapping) else None
        tenant = tenant_from_authorizer(authorizer)
    except MisconfiguredError as error:
        logger.error(
            "request refused: no valid tenant context from the authorizer", extra={"problem": str(error)}
        )
        return _proxy_response(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            {
                "message": "the API is misconfigured: this request carries no valid tenant context from the "
                "authorizer; report the request id to the API operator",
                "request_id": request_id,
            },
        )
    logger.thread_safe_append_keys(tenant_id=tenant.tenant_id, tier=tenant.tier)
    mismatch = invocation_tenant_mismatch(tenant.tenant_id, context)
    if mismatch is not None:
        return refuse_tenant_mismatch(tenant, route_of(event), mismatch, request_id)
    with _resolver_lock:
        app.context.update(tenant=tenant, request_id=request_id)
        response = app.resolve(event, context)
    record_request(tenant, route_of(event), int(response["statusCode"]))
    return response


def invocation_tenant_mismatch(tenant_id: str, context: object) -> str | None:
    """Why this invocation's Lambda tenant id disagrees with the authorizer's tenant, or None if it agrees.

    In tenant isolation mode Lambda runs the invocation in an execution environment of the tenant id it
    was invoked with (``context.tenant_id``), which API Gateway takes from the authorizer context. Any
    disagreement means that mapping is wrong, and serving the request would put one tenant's data in
    another tenant's environment. Without isolation mode no tenant id may be present at all.
    """
    invoked_as = getattr(context, "tenant_id", None)
    if os.environ.get(Env.TENANT_ISOLATION) == TENANT_ISOLATION_MODE:
        if not invoked_as:
            return "the function runs in tenant isolation mode but was invoked without a tenant id"
        if invoked_as != tenant_id:
            return "the invocation's tenant id differs from the authorizer's tenant"
    elif invoked_as and invoked_as != tenant_id:
        return "the invocation's tenant id differs from the authorizer's tenant"
    return None


def refuse_tenant_mismatch(tenant: Tenant, route: str, problem: str, request_id: str) -> dict[str, Any]:
    logger.error("request refused: tenant isolation mismatch", extra={"problem": problem})
    metrics = EphemeralMetrics(namespace=os.environ.get(Env.METRICS_NAMESPACE) or METRICS_NAMESPACE)
    metrics.add_dimension(name="service", value=os.environ.get(Env.SERVICE_NAME) or TENANT_API_FUNCTION)
    metrics.add_metric(name=TENANT_MISMATCH_METRIC, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    record_request(tenant, route, HTTPStatus.INTERNAL_SERVER_ERROR)
    return _proxy_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        {
            "message": "the API is misconfigured: this request was routed to the wrong tenant's compute and "
            "was not served; report the request id to the API operator",
            "request_id": request_id,
        },
    )


def request_id_of(event: Mapping[str, Any], context: object) -> str:
    """API Gateway's request id (the one clients see in x-amzn-RequestId), else Lambda's."""
    request_context = event.get("requestContext")
    if isinstance(request_context, Mapping):
        request_id = request_context.get("requestId")
        if isinstance(request_id, str) and request_id:
            return request_id
    return str(getattr(context, "aws_request_id", "unknown"))


def route_of(event: Mapping[str, Any]) -> str:
    """``GET /items/{id}``: the contract route of the event, else ``other`` (bounded either way)."""
    route = (event.get("httpMethod"), event.get("resource"))
    return f"{route[0]} {route[1]}" if route in _ROUTE_SET else OTHER_ROUTE


def record_request(tenant: Tenant, route: str, status: int) -> None:
    metrics = EphemeralMetrics(namespace=os.environ.get(Env.METRICS_NAMESPACE) or METRICS_NAMESPACE)
    metrics.add_dimension(name=MetricDimension.TIER, value=tenant.tier)
    metrics.add_dimension(name=MetricDimension.ROUTE, value=route)
    # A property, not a dimension: one metric per tenant would be 10,000 billed custom metrics.
    metrics.add_metadata(key=ContextKey.TENANT_ID, value=tenant.tenant_id)
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1 if status >= 500 else 0)
    metrics.flush_metrics()


# ---------------------------------------------------------------------------------------------------------
# The tenant from the authorizer context


def tenant_from_authorizer(authorizer: object) -> Tenant:
    if not isinstance(authorizer, Mapping):
        raise MisconfiguredError("requestContext.authorizer is missing")
    tenant_id = _context_text(authorizer, ContextKey.TENANT_ID)
    if not is_valid_tenant_id(tenant_id):
        raise MisconfiguredError(f"authorizer context key {ContextKey.TENANT_ID!r} is not a valid tenant id")
    isolation = _context_choice(authorizer, ContextKey.ISOLATION, ISOLATIONS)
    table = _context_text(authorizer, ContextKey.TABLE)
    if _TABLE_NAME_RE.fullmatch(table) is None:
        raise MisconfiguredError(f"authorizer context key {ContextKey.TABLE!r} is not a DynamoDB table name")
    bucket = _context_text(authorizer, ContextKey.BUCKET)
    if _BUCKET_NAME_RE.fullmatch(bucket) is None:
        raise MisconfiguredError(f"authorizer context key {ContextKey.BUCKET!r} is not an S3 bucket name")
    return Tenant(
        tenant_id=tenant_id,
        tier=_context_text(authorizer, ContextKey.TIER),
        isolation=isolation,
        table=table,
        bucket=bucket,
        throttle_rate=_context_decimal(authorizer, ContextKey.THROTTLE_RATE),
        throttle_burst=_context_whole(authorizer, ContextKey.THROTTLE_BURST),
        quota_limit=_context_whole(authorizer, ContextKey.QUOTA_LIMIT),
        quota_period=_context_choice(authorizer, ContextKey.QUOTA_PERIOD, QUOTA_PERIODS),
        quota_offset=_context_whole(authorizer, ContextKey.QUOTA_OFFSET),
    )


def _context_text(authorizer: Mapping[str, Any], key: str) -> str:
    value = authorizer.get(key)
    # API Gateway may hand numbers over as numbers; accept them, but never booleans.
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        raise MisconfiguredError(f"authorizer context key {key!r} is missing or empty")
    return str(value)


def _context_choice(authorizer: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = _context_text(authorizer, key)
    if value not in choices:
        raise MisconfiguredError(f"authorizer context key {key!r} is not one of {', '.join(choices)}")
    return value


def _context_whole(authorizer: Mapping[str, Any], key: str) -> int:
    value = _context_text(authorizer, key)
    if _WHOLE_NUMBER_RE.fullmatch(value) is None:
        raise MisconfiguredError(f"authorizer context key {key!r} is not a whole number")
    return int(value)


def _context_decimal(authorizer: Mapping[str, Any], key: str) -> int | float:
    value = _context_text(authorizer, key)
    if _DECIMAL_RE.fullmatch(value) is None:
        raise MisconfiguredError(f"authorizer context key {key!r} is not a non-negative number")
    number = float(value)
    return int(number) if number.is_integer() else number


def tenant_document(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "tier": tenant.tier,
        "isolation": tenant.isolation,
        "limits": {
            "throttle": {"rate": tenant.throttle_rate, "burst": tenant.throttle_burst},
            "quota": {
                "limit": tenant.quota_limit,
                "period": tenant.quota_period,
                "offset": tenant.quota_offset,
            },
        },
    }


# ---------------------------------------------------------------------------------------------------------
# Request validation (pure functions)


def checked_item_id(item_id: str) -> str:
    if _ITEM_ID_RE.fullmatch(item_id) is None:
        raise BadRequestError(
            f"item id {_quoted(item_id)} is invalid: use 1-128 characters from A-Z a-z 0-9 . _ ~ -"
        )
    if item_id in _DOT_SEGMENTS:
        raise BadRequestError(
            f"item id {_quoted(item_id)} is invalid: HTTP clients rewrite the URL path segments . and .. "
            "before sending, so no request could reach this item; use an id with another character"
        )
    return item_id


def json_document(body: str | None, is_base64_encoded: bool) -> str:
    """The request body as JSON text, checked to be one JSON value of at most MAX_BODY_BYTES bytes."""
    if body is None or body == "":
        raise BadRequestError("the request body is empty: send the item as a JSON document")
    try:
        # A non-ASCII character in a base64 body is a ValueError, not a binascii.Error.
        raw = base64.b64decode(body, validate=True) if is_base64_encoded else body.encode()
    except (ValueError, UnicodeEncodeError) as error:
        raise BadRequestError("the request body could not be decoded: send a UTF-8 JSON document") from error
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequestError(
            f"the request body is {len(raw)} bytes: items are limited to {MAX_BODY_BYTES} bytes of JSON"
        )
    try:
        text = raw.decode() if is_base64_encoded else body
        value = json.loads(
            text, parse_int=_number_text, parse_float=_number_text, parse_constant=_reject_constant
        )
    except RecursionError as error:
        raise _too_deep() from error
    except (UnicodeDecodeError, ValueError) as error:
        raise BadRequestError(f"the request body is not valid JSON: {_json_problem(error)}") from error
    if nesting_depth(value) > MAX_NESTING_DEPTH:
        raise _too_deep()
    return text


def nesting_depth(value: object) -> int:
    """Levels of nested arrays and objects in a parsed JSON value: 0 for a scalar, 1 for ``[1]``."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict):
            current = list(current.values())
        if isinstance(current, list):
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in current)
    return deepest


def _too_deep() -> BadRequestError:
    # json's parser recurses per level: past the interpreter's recursion limit it raises RecursionError, so
    # very deep bodies are reported here before any depth is known.
    return BadRequestError(
        f"the request body nests arrays and objects more than {MAX_NESTING_DEPTH} levels deep: "
        f"items are limited to {MAX_NESTING_DEPTH} levels of nesting"
    )


def _number_text(text: str) -> str:
    # Only validating: keep numbers as text, so no digit limit or float overflow applies.
    return text


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _json_problem(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return str(error)


def encode_page_token(tenant_id: str, last_item_id: str) -> str:
    return api_common.encode_page_token(tenant_id, last_item_id)


def decode_page_token(tenant_id: str, token: str) -> str:
    """The item id to resume after; only for a token issued to ``tenant_id``."""
    return api_common.decode_page_token(tenant_id, token, route="GET /items", is_valid=_is_item_id)


def _is_item_id(value: str) -> bool:
    return _ITEM_ID_RE.fullmatch(value) is not None


def _quoted(value: str) -> str:
    shown = value if len(value) <= 40 else value[:40] + "..."
    return json.dumps(shown)


# ---------------------------------------------------------------------------------------------------------
# Responses


def _json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def _item_json(item_id: str, document: str) -> str:
    # The stored document is JSON text checked on the way in: embedding it keeps it byte for byte.
    return f'{{"id":{json.dumps(item_id)},"value":{document}}}'


def _proxy_response(status: int, body: object) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


# ---------------------------------------------------------------------------------------------------------
# Routes (thin: read the request, call the data layer, shape the answer)


def _tenant() -> Tenant:
    tenant: Tenant = app.context["tenant"]
    return tenant


def _table(tenant: Tenant) -> TenantTable:
    return data_clients.table(tenant.tenant_id, tenant.table)


def _files_at(tenant: Tenant, placement: Placement) -> TenantFiles:
    # Files follow the placement like rows do: a move switches both at once.
    return data_clients.files(tenant.tenant_id, placement.bucket or tenant.bucket)


def _files() -> TenantFiles:
    tenant = _tenant()
    return _files_at(tenant, _table(tenant).placement())


@contextmanager
def _file_write() -> Iterator[TenantFiles]:
    tenant = _tenant()
    table = _table(tenant)
    placement = table.file_write_placement()
    yield _files_at(tenant, placement)
    table.confirm_file_write(placement)


def _files_for_upload() -> TenantFiles:
    tenant = _tenant()
    # Signed after this moment, the URL expires no later than the window recorded.
    until = math.ceil(time.time()) + PRESIGNED_URL_SECONDS
    return _files_at(tenant, _table(tenant).open_upload_window(until))


app.include_router(files_router(_files, _file_write, _files_for_upload))


@app.get("/tenant")
def get_tenant() -> Response[str]:
    return _json_response(HTTPStatus.OK, tenant_document(_tenant()))


@app.post("/counter")
def increment_counter() -> Response[str]:
    tenant = _tenant()
    counter = _table(tenant).increment_counter()
    return _json_response(HTTPStatus.OK, {"tenant_id": tenant.tenant_id, "counter": counter})


@app.put("/items/<item_id>")
def put_item(item_id: str) -> Response[str]:
    checked_item_id(item_id)
    event = app.current_event
    document = json_document(event.body, bool(event.is_base64_encoded))
    created = _table(_tenant()).put(item_id, document)
    return _json_response(
        HTTPStatus.CREATED if created else HTTPStatus.OK, {"id": item_id, "created": created}
    )


@app.get("/items/<item_id>")
def get_item(item_id: str) -> Response[str]:
    checked_item_id(item_id)
    document = _table(_tenant()).get(item_id)
    if document is None:
        return _json_response(HTTPStatus.NOT_FOUND, {"message": f"item {_quoted(item_id)} does not exist"})
    return Response(
        status_code=HTTPStatus.OK,
        content_type=content_types.APPLICATION_JSON,
        body=_item_json(item_id, document),
    )


@app.get("/items")
def list_items() -> Response[str]:
    tenant = _tenant()
    query = app.current_event.query_string_parameters or {}
    limit = page_limit(query.get("limit"))
    token = query.get("next")
    after = None if token is None else decode_page_token(tenant.tenant_id, token)
    page = _table(tenant).list_items(limit, after, MAX_PAGE_DOCUMENT_BYTES)
    next_token = None if page.resume_after is None else encode_page_token(tenant.tenant_id, page.resume_after)
    items = ",".join(_item_json(item.item_id, item.document) for item in page.items)
    body = f'{{"items":[{items}],"next":{json.dumps(next_token)}}}'
    return Response(status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=body)


@app.delete("/items/<item_id>")
def delete_item(item_id: str) -> Response[str]:
    checked_item_id(item_id)
    _table(_tenant()).delete(item_id)
    return Response(status_code=HTTPStatus.NO_CONTENT, content_type=content_types.APPLICATION_JSON, body="")


@app.not_found
def unknown_route(_: Exception) -> Response[str]:
    event = app.current_event
    if (event.http_method, event.resource) in ROUTES:
        # API Gateway matched one of our routes, but a path parameter holds characters no route pattern
        # takes (a control character, an encoded slash): that is the caller's mistake, not a missing route.
        parameters = event.path_parameters or {}
        try:
            if "name" in parameters:
                checked_file_name(parameters["name"])
            if "id" in parameters:
                checked_item_id(parameters["id"])
        except BadRequestError as error:
            return bad_request(error)
    route = f"{event.http_method} {event.path}"
    return _json_response(
        HTTPStatus.NOT_FOUND, {"message": f"no route {_quoted(route)}: this API serves {_ROUTE_LIST}"}
    )


def bad_request(error: BadRequestError) -> Response[str]:
    logger.info("bad request", extra={"problem": str(error)})
    return _json_response(HTTPStatus.BAD_REQUEST, {"message": str(error)})


def aws_error(error: ClientError) -> Response[str]:
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in THROTTLING_ERROR_CODES:
        logger.warning("throttled by AWS", extra={"error_code": code})
        return _json_response(
            HTTPStatus.SERVICE_UNAVAILABLE,
            {"message": f"the tenant's data store is busy; retry in {RETRY_AFTER_SECONDS} second(s)"},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return internal_error(error)


def retry_later(error: RetryLaterError) -> Response[str]:
    logger.info("write refused for now", extra={"problem": str(error)})
    return _json_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        {"message": f"{error}; nothing was written: retry in {error.retry_after} second(s)"},
        headers={"Retry-After": str(error.retry_after)},
    )


def internal_error(error: Exception) -> Response[str]:
    logger.exception("request failed", extra={"error_type": type(error).__name__})
    return _json_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        {
            "message": "internal error: the request was not completed; report the request id if it persists",
            "request_id": app.context.get("request_id", "unknown"),
        },
    )


# Registered as calls: the decorator is untyped and would erase these functions' types.
app.exception_handler(BadRequestError)(bad_request)
app.exception_handler(ClientError)(aws_error)
app.exception_handler(RetryLaterError)(retry_later)
app.exception_handler(Exception)(internal_error)
