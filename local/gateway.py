"""What API Gateway does for the tenant API, in its order, as one function from request to response.

Header and payload size limits → URL length limit → route match on
``handlers.contract.ROUTES`` → method ARN length limit → TOKEN authorizer (the
real handler, its result cached by token) → the policy against the method ARN →
the usage plan of the returned ``usageIdentifierKey`` → the tenant API handler
with a REST proxy event, its response mapped back. Status codes and bodies are
the ones API Gateway sends.

Over-long URLs are decided before the authorizer and its cache, so the answer
(414) does not depend on whether the token was seen before: API Gateway limits
method ARNs to 1,600 bytes and answers 414 "Request URI too long" when path
parameters make one longer ("Amazon API Gateway quotas and important notes"),
and limits a regional API's URL to 10,240 characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from handlers.contract import AUTHORIZER_FUNCTION, ROUTES, TENANT_API_FUNCTION, ContextKey
from local.limits import Admission, Clock, PlanKey, UsagePlans

LambdaHandler = Callable[[dict[str, Any], Any], Any]

# API Gateway's limits: header values in total, and the request payload.
MAX_HEADER_VALUES_BYTES = 10_240
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# ...the URL of a regional API (measured here on the request target: path and query) and a method ARN.
MAX_URL_CHARS = 10_240
MAX_METHOD_ARN_BYTES = 1_600

# Lambda authorizers time out after 30 s at most; the local one only needs to report its figure.
LAMBDA_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    """The request target as sent: path and optional query string."""
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str


@dataclass(frozen=True)
class Response:
    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class GatewaySettings:
    region: str
    account_id: str
    api_id: str
    stage: str
    authorizer_cache_ttl: float
    """Seconds a TOKEN authorizer result is reused for the same token; 0 disables the cache."""


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    tenant_id: str | None = None
    """The invocation's tenant (Lambda tenant isolation mode), else None."""

    def get_remaining_time_in_millis(self) -> int:
        return LAMBDA_TIMEOUT_MS


@dataclass(frozen=True)
class Function:
    """A Lambda function: one warm container, so one invocation at a time, as Lambda runs them."""

    name: str
    handler: LambdaHandler
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def invoke(self, event: dict[str, Any], settings: GatewaySettings, tenant_id: str | None = None) -> Any:
        """Run the handler with the event and its result serialized as JSON, as Lambda does."""
        context = LambdaContext(
            function_name=self.name,
            aws_request_id=str(uuid.uuid4()),
            invoked_function_arn=f"arn:aws:lambda:{settings.region}:{settings.account_id}:function:{self.name}",
            log_group_name=f"/aws/lambda/{self.name}",
            tenant_id=tenant_id,
        )
        with self.lock:
            result = self.handler(json.loads(json.dumps(event)), context)
        return json.loads(json.dumps(result))


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    segments: tuple[str, ...]

    def match(self, method: str, path_segments: Sequence[str]) -> dict[str, str] | None:
        if method != self.method or len(path_segments) != len(self.segments):
            return None
        parameters = {}
        for template, actual in zip(self.segments, path_segments, strict=True):
            if template.startswith("{") and template.endswith("}"):
                if not actual:
                    return None
                parameters[template[1:-1]] = actual
            elif template != actual:
                return None
        return parameters


ROUTE_TABLE: tuple[Route, ...] = tuple(
    Route(method, resource, tuple(resource.strip("/").split("/"))) for method, resource in ROUTES
)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    segments = [unquote(segment) for segment in path.strip("/").split("/")] if path.strip("/") else []
    for route in ROUTE_TABLE:
        parameters = route.match(method, segments)
        if parameters is not None:
            return route, parameters
    return None


@dataclass(frozen=True)
class AuthorizerResult:
    principal_id: str
    statements: tuple[Mapping[str, Any], ...]
    context: Mapping[str, str]
    usage_identifier_key: str | None


class AuthorizerFailure(Exception):
    """The authorizer raised or answered something API Gateway cannot use (API Gateway: 500)."""


def parse_authorizer_result(result: Any) -> AuthorizerResult:
    if not isinstance(result, dict):
        raise AuthorizerFailure("authorizer response is not an object")
    principal_id = result.get("principalId")
    policy = result.get("policyDocument")
    statements = policy.get("Statement") if isinstance(policy, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(principal_id, str) or not isinstance(statements, list):
        raise AuthorizerFailure("authorizer response lacks principalId or policyDocument.Statement")
    if not all(isinstance(statement, dict) for statement in statements):
        raise AuthorizerFailure("authorizer policy statements must be objects")
    context = result.get("context") or {}
    if not isinstance(context, dict) or not all(
        isinstance(value, str | int | float | bool) for value in context.values()
    ):
        raise AuthorizerFailure("authorizer context values must be strings, numbers or booleans")
    key = result.get("usageIdentifierKey")
    if key is not None and not isinstance(key, str):
        raise AuthorizerFailure("usageIdentifierKey must be a string")
    return AuthorizerResult(
        principal_id=principal_id,
        statements=tuple(statements),
        context={name: _context_string(value) for name, value in context.items()},
        usage_identifier_key=key,
    )


def _context_string(value: str | float | bool) -> str:
    # REST APIs hand the integration every context value as a string.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """IAM-style wildcards: ``*`` any run of characters, ``?`` one character."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def policy_decision(statements: Sequence[Mapping[str, Any]], method_arn: str) -> str:
    """ "Allow", "Deny" (an explicit deny matched) or "None" (nothing matched: an implicit deny)."""
    decision = "None"
    for statement in statements:
        actions = _listed(statement.get("Action"))
        resources = _listed(statement.get("Resource"))
        if not any(_wildcard(action).fullmatch("execute-api:Invoke") for action in actions):
            continue
        if not any(_wildcard(resource).fullmatch(method_arn) for resource in resources):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        if statement.get("Effect") == "Allow":
            decision = "Allow"
    return decision


def gateway_error(status: int, message: str | None, error_type: str, request_id: str) -> Response:
    return Response(
        status=status,
        headers=[
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error_type),
        ],
        body=json.dumps({"message": message}, separators=(",", ":")).encode(),
    )


def _uri_too_long(request_id: str) -> Response:
    return gateway_error(414, "Request-URI Too Long", "RequestUriTooLongException", request_id)


# What API Gateway sends when the usage plan refuses a request: status, message, error type.
_REFUSALS = {
    Admission.FORBIDDEN: (403, "Forbidden", "ForbiddenException"),
    Admission.THROTTLED: (429, "Too Many Requests", "TooManyRequestsException"),
    Admission.QUOTA_EXCEEDED: (429, "Limit Exceeded", "LimitExceededException"),
}


class Gateway:
    def __init__(
        self,
        *,
        authorizer: LambdaHandler,
        tenant_api: LambdaHandler,
        plans: UsagePlans,
        settings: GatewaySettings,
        clock: Clock,
        function_names: tuple[str, str] = (AUTHORIZER_FUNCTION, TENANT_API_FUNCTION),
        tenant_functions: Callable[[str], Function] | None = None,
    ) -> None:
        """``tenant_functions``: Lambda tenant isolation mode, the tenant API's function for a tenant id."""
        self._authorizer = Function(function_names[0], authorizer)
        self._tenant_api = Function(function_names[1], tenant_api)
        self._tenant_functions = tenant_functions
        self._plans = plans
        self._settings = settings
        self._clock = clock
        self._cache: dict[str, tuple[float, AuthorizerResult]] = {}
        self._cache_lock = threading.Lock()

    @property
    def plans(self) -> UsagePlans:
        return self._plans

    def restart_authorizer(self, cold_start: Callable[[], LambdaHandler]) -> None:
        """Start the authorizer cold and forget its cached results, so an edit of the tier file is seen at
        once (on AWS it is seen within the caches' TTLs). ``cold_start`` makes the fresh handler; it runs
        while no authorizer invocation does."""
        with self._authorizer.lock:
            self._authorizer = Function(self._authorizer.name, cold_start())
        with self._cache_lock:
            self._cache.clear()

    def method_arn(self, method: str, path: str) -> str:
        s = self._settings
        return (
            f"arn:aws:execute-api:{s.region}:{s.account_id}:{s.api_id}/{s.stage}/{method}/{path.lstrip('/')}"
        )

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        url = urlsplit(request.target)
        path = unquote(url.path) or "/"
        if sum(len(value.encode("utf-8", "surrogateescape")) for _, value in request.headers) > (
            MAX_HEADER_VALUES_BYTES
        ):
            return gateway_error(
                431, "HTTP header is larger than 10240 bytes.", "RequestHeaderFieldsTooLarge", request_id
            )
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return gateway_error(413, "Request Too Large", "RequestTooLargeException", request_id)
        if len(request.target) > MAX_URL_CHARS:
            return _uri_too_long(request_id)
        matched = match_route(request.method, url.path)
        if matched is None:
            return gateway_error(
                403, "Missing Authentication Token", "MissingAuthenticationTokenException", request_id
            )
        method_arn = self.method_arn(request.method, path)
        if len(method_arn.encode("utf-8", "surrogateescape")) > MAX_METHOD_ARN_BYTES:
            return _uri_too_long(request_id)

        token = _last_header(request.headers, "Authorization")
        if not token:
            return gateway_error(401, "Unauthorized", "UnauthorizedException", request_id)
        try:
            authorized = self._authorize(token, method_arn)
        except AuthorizerFailure:
            return gateway_error(500, None, "AuthorizerConfigurationException", request_id)
        if authorized is None:
            return gateway_error(401, "Unauthorized", "UnauthorizedException", request_id)
        decision = policy_decision(authorized.statements, method_arn)
        if decision == "Deny":
            return gateway_error(
                403,
                "User is not authorized to access this resource with an explicit deny",
                "AccessDeniedException",
                request_id,
            )
        if decision != "Allow":
            return gateway_error(
                403, "User is not authorized to access this resource", "AccessDeniedException", request_id
            )

        admission, key = self._plans.admit(authorized.usage_identifier_key)
        if admission is not Admission.ADMITTED or key is None:
            status, message, error_type = _REFUSALS[admission]
            return gateway_error(status, message, error_type, request_id)

        route, parameters = matched
        event = self.proxy_event(request, url.query, path, route, parameters, authorized, key, request_id)
        try:
            if self._tenant_functions is None:
                result = self._tenant_api.invoke(event, self._settings)
            else:
                # The integration maps X-Amz-Tenant-Id from the authorizer's context, never from the caller.
                tenant_id = authorized.context.get(ContextKey.TENANT_ID, "")
                function = self._tenant_functions(tenant_id)
                result = function.invoke(event, self._settings, tenant_id=tenant_id)
            return _integration_response(result, request_id)
        except Exception:
            return gateway_error(502, "Internal server error", "InternalServerErrorException", request_id)

    def _authorize(self, token: str, method_arn: str) -> AuthorizerResult | None:
        """The authorizer's result for ``token`` (cached), or None when it raised ``Unauthorized``."""
        ttl = self._settings.authorizer_cache_ttl
        now = self._clock()
        if ttl > 0:
            with self._cache_lock:
                cached = self._cache.get(token)
            if cached is not None and cached[0] > now:
                return cached[1]
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
        try:
            raw = self._authorizer.invoke(event, self._settings)
        except Exception as error:
            if str(error) == "Unauthorized":
                return None
            raise AuthorizerFailure("authorizer raised") from error
        result = parse_authorizer_result(raw)
        if ttl > 0:
            with self._cache_lock:
                self._cache = {t: entry for t, entry in self._cache.items() if entry[0] > now}
                self._cache[token] = (now + ttl, result)
        return result

    def proxy_event(
        self,
        request: Request,
        query: str,
        path: str,
        route: Route,
        parameters: Mapping[str, str],
        authorized: AuthorizerResult,
        key: PlanKey,
        request_id: str,
    ) -> dict[str, Any]:
        s = self._settings
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        body, is_base64 = _event_body(request.body)
        now = datetime.fromtimestamp(self._clock(), UTC)
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": request.method,
            "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": dict(parameters) or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": hashlib.sha1(route.resource.encode()).hexdigest()[:6],
                "resourcePath": route.resource,
                "httpMethod": request.method,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "path": f"/{s.stage}{path}",
                "accountId": s.account_id,
                "protocol": "HTTP/1.1",
                "stage": s.stage,
                "domainPrefix": s.api_id,
                "domainName": _last_header(request.headers, "Host") or "",
                "requestId": request_id,
                "apiId": s.api_id,
                "identity": {
                    "sourceIp": request.source_ip,
                    "userAgent": _last_header(request.headers, "User-Agent"),
                    "apiKey": authorized.usage_identifier_key,
                    "apiKeyId": key.key_id,
                    "accountId": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                    "accessKey": None,
                    "cognitoIdentityPoolId": None,
                    "cognitoIdentityId": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "principalOrgId": None,
                },
                "authorizer": {**authorized.context, "principalId": authorized.principal_id},
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }


def _last_header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    found = None
    for header, value in headers:
        if header.lower() == wanted:
            found = value
    return found


def _event_body(body: bytes) -> tuple[str | None, bool]:
    """Text bodies pass as text; bytes that are not UTF-8 pass base64-encoded, flagged as such."""
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


class MalformedIntegrationResponse(Exception):
    pass


def _integration_response(result: Any, request_id: str) -> Response:
    """Map a Lambda proxy response back to HTTP; anything malformed is API Gateway's 502."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise MalformedIntegrationResponse("statusCode missing")
    status = result["statusCode"]
    if not 100 <= status <= 599:
        raise MalformedIntegrationResponse("statusCode out of range")
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    single = result.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        raise MalformedIntegrationResponse("headers must be objects")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedIntegrationResponse("multiValueHeaders values must be lists")
        headers.extend((name, _header_value(value)) for value in values)
    # Both maps given: API Gateway merges them, multiValueHeaders winning for the same name.
    headers.extend((name, _header_value(value)) for name, value in single.items() if name not in multi)
    body = result.get("body")
    if body is None:
        payload = b""
    elif isinstance(body, str):
        try:
            payload = (
                base64.b64decode(body, validate=True) if result.get("isBase64Encoded") else body.encode()
            )
        except binascii.Error as error:
            raise MalformedIntegrationResponse("body is not base64") from error
    else:
        raise MalformedIntegrationResponse("body must be a string")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers.append(("x-amzn-RequestId", request_id))
    return Response(status=status, headers=headers, body=payload)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedIntegrationResponse("header values must be scalars")
