"""Lambda TOKEN authorizer: verifies the Cognito ID token and hands API Gateway the tenant's API key.

Outcomes (API Gateway's contract for REST API Lambda authorizers):

- valid token of an active tenant: an Allow policy covering every method and
  path of the stage (a policy naming only the called method would make API
  Gateway's cached answer deny the tenant's other routes), the tenant's API key
  as ``usageIdentifierKey`` and the tenant's tier, isolation, table and limits
  in ``context``;
- valid token of an unknown or suspended tenant: an explicit Deny of every
  route, no key (API Gateway answers 403);
- any problem with the token or the request, and a registry that cannot answer:
  ``raise Exception("Unauthorized")`` (API Gateway answers 401). A registry
  outage is reported as 401 rather than Deny: a Deny would say something false
  about the tenant and API Gateway would cache it for the authorizer TTL; 401
  asks the client to retry, and nothing else may escape (it would be a 500).

Logs carry a reason code and, once the token is verified, the tenant id; never
the token, the API key or other claims.

Module state (settings, JWKS cache, registry cache, boto3 client) is built on
the first invocation, so importing this module stays cheap; boto3 is imported
only when the registry is first read.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from aws_lambda_powertools import Logger

from handlers.contract import ContextKey, Env
from handlers.jwks import Fetcher, JwksCache, JwksError, fetch_jwks_document
from handlers.tenant_registry import DynamoDBGetItem, RegistryError, TenantRecord, TenantRegistry
from handlers.token_verifier import CLOCK_SKEW_LEEWAY_SECONDS, TokenError, TokenVerifier

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

MAX_AUTHORIZATION_HEADER_CHARS: Final = 8192
"""Checked before any parsing. API Gateway allows 10,240 bytes of headers; Cognito ID tokens are ~1-2 KB."""

DECISION_CACHE_SIZE: Final = 4096
"""Decisions kept per container, keyed by the exact token string and the stage."""

UNAUTHORIZED: Final = "Unauthorized"
"""The exception message API Gateway turns into 401."""

_METHOD_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):execute-api:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<api_id>[A-Za-z0-9]+)/(?P<stage>[A-Za-z0-9_-]+)/",
)

logger = Logger()


class RequestError(Exception):
    """The event itself is unusable; ``reason`` is a log-safe code."""

    reason = "bad_request"


class MissingTokenError(RequestError):
    reason = "missing_token"


class HeaderTooLargeError(RequestError):
    reason = "header_too_large"


class MalformedAuthorizationHeaderError(RequestError):
    reason = "malformed_authorization_header"


class InvalidMethodArnError(RequestError):
    reason = "invalid_method_arn"


class ConfigurationError(Exception):
    """The function's environment is incomplete."""

    reason = "not_configured"


_REJECTIONS: Final = (RequestError, TokenError, JwksError, RegistryError)


@dataclass(frozen=True)
class AuthorizerSettings:
    issuer: str
    """Expected ``iss``, exactly: ``https://cognito-idp.{region}.amazonaws.com/{userPoolId}``."""
    app_client_id: str
    """Expected ``aud``."""
    jwks_url: str
    """Where the signing keys are served; separate from the issuer (the local stack serves them elsewhere)."""
    registry_table: str
    leeway_seconds: float = CLOCK_SKEW_LEEWAY_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthorizerSettings:
        names = (Env.TOKEN_ISSUER, Env.APP_CLIENT_ID, Env.JWKS_URL, Env.REGISTRY_TABLE)
        missing = [name for name in names if not environ.get(name)]
        if missing:
            raise ConfigurationError(
                f"authorizer environment variable(s) {', '.join(missing)} not set; "
                "the program sets them on the function: redeploy, or set them for a local run"
            )
        return cls(
            issuer=environ[Env.TOKEN_ISSUER],
            app_client_id=environ[Env.APP_CLIENT_ID],
            jwks_url=environ[Env.JWKS_URL],
            registry_table=environ[Env.REGISTRY_TABLE],
        )


@dataclass(frozen=True, slots=True)
class Stage:
    """The API stage a method ARN belongs to; the policy covers all of it."""

    partition: str
    region: str
    account_id: str
    api_id: str
    name: str


def bearer_token(header: object) -> str:
    """The token of an ``Authorization: Bearer <token>`` value (scheme case-insensitive, one space)."""
    if not isinstance(header, str) or not header:
        raise MissingTokenError
    if len(header) > MAX_AUTHORIZATION_HEADER_CHARS:
        raise HeaderTooLargeError
    scheme, separator, token = header.partition(" ")
    if not separator or scheme.lower() != "bearer" or not token or " " in token:
        raise MalformedAuthorizationHeaderError
    return token


def parse_method_arn(method_arn: object) -> Stage:
    """The stage of ``arn:PARTITION:execute-api:REGION:ACCOUNT:API_ID/STAGE/VERB/PATH``.

    Only the part up to the stage is read: the path is the caller's and its length is API Gateway's
    business, so a valid token is never refused because of the path it calls.
    """
    match = _METHOD_ARN.match(method_arn) if isinstance(method_arn, str) else None
    if match is None:
        raise InvalidMethodArnError
    return Stage(
        partition=match["partition"],
        region=match["region"],
        account_id=match["account"],
        api_id=match["api_id"],
        name=match["stage"],
    )


def tenant_context(record: TenantRecord) -> dict[str, str]:
    """The authorizer ``context`` the tenant API reads (all values strings, as API Gateway passes them)."""
    return {
        ContextKey.TENANT_ID: record.tenant_id,
        ContextKey.TIER: record.tier,
        ContextKey.ISOLATION: record.isolation,
        ContextKey.TABLE: record.table,
        ContextKey.BUCKET: record.bucket,
        ContextKey.THROTTLE_RATE: _decimal_text(record.throttle_rate),
        ContextKey.THROTTLE_BURST: str(record.throttle_burst),
        ContextKey.QUOTA_LIMIT: str(record.quota_limit),
        ContextKey.QUOTA_PERIOD: record.quota_period,
        ContextKey.QUOTA_OFFSET: str(record.quota_offset),
    }


def _decimal_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


# Answers differ only by principal for a given stage and tenant record, so powertools builds each policy
# once (~8 us a build, as much as the rest of the authorizer's own work); a changed registry item is a new
# record, so it gets a new policy.
@functools.lru_cache(maxsize=1024)
def _policy(stage: Stage, record: TenantRecord | None) -> dict[str, Any]:
    """Allow every route of the stage with the tenant's key and context, or Deny every route (no record).

    Shared between answers: read-only; :func:`answer` gives each caller its own top level and context.
    """
    # Deferred: the data_classes package imports every event class (~25 ms), paid on the first answer only.
    from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
        APIGatewayAuthorizerResponse,
    )

    response = APIGatewayAuthorizerResponse(
        principal_id="",
        region=stage.region,
        aws_account_id=stage.account_id,
        api_id=stage.api_id,
        stage=stage.name,
        context=None if record is None else tenant_context(record),
        usage_identifier_key=None if record is None else record.api_key_value,
        partition=stage.partition,
    )
    if record is None:
        response.deny_all_routes()
    else:
        response.allow_all_routes()
    return response.asdict()


def answer(principal_id: str, policy: Mapping[str, Any]) -> dict[str, Any]:
    """The response for ``principal_id``: its top level and ``context`` the caller's own to change."""
    response = {**policy, "principalId": principal_id}
    if "context" in response:
        response["context"] = dict(response["context"])
    return response


class _Decision(NamedTuple):
    principal_id: str
    policy: dict[str, Any]
    token_expires_at: float
    """Wall-clock epoch seconds (the token's ``exp``)."""
    registry_expires_at: float
    """Monotonic seconds (the registry answer's expiry)."""


class DecisionCache:
    """Bounded LRU of decisions by (exact token string, stage).

    An entry lives until the token's ``exp`` or the registry answer's expiry,
    whichever is first, so the cache never outlives what it was derived from; a
    repeated token then costs a dictionary lookup instead of a signature check.
    Only Allow and Deny decisions are kept, never rejections.
    """

    def __init__(
        self, max_entries: int, *, clock: Callable[[], float], wall_clock: Callable[[], float]
    ) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries: OrderedDict[tuple[str, Stage], _Decision] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, Stage]) -> _Decision | None:
        with self._lock:
            decision = self._entries.get(key)
            if decision is None:
                return None
            if (
                self._wall_clock() >= decision.token_expires_at
                or self._clock() >= decision.registry_expires_at
            ):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return decision

    def put(self, key: tuple[str, Stage], decision: _Decision) -> None:
        with self._lock:
            self._entries[key] = decision
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


class Authorizer:
    """The authorizer with its caches; :meth:`handle` is what ``lambda_handler`` runs.

    Each response's top level and ``context`` are the caller's own to change (a gateway may add the
    principal to the context); the policy document inside is shared between answers: read-only.

    Tests and benchmarks build one with explicit settings and in-memory dependencies::

        Authorizer.from_settings(
            settings,
            jwks_fetcher=lambda url, timeout: jwks_document_bytes,
            dynamodb_client_factory=lambda: client_with_get_item,
        ).handle(event)
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        registry: TenantRegistry,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        decision_cache_size: int = DECISION_CACHE_SIZE,
    ) -> None:
        self._verifier = verifier
        self._registry = registry
        self._decisions = DecisionCache(decision_cache_size, clock=clock, wall_clock=wall_clock)

    @classmethod
    def from_settings(
        cls,
        settings: AuthorizerSettings,
        *,
        jwks_fetcher: Fetcher = fetch_jwks_document,
        dynamodb_client_factory: Callable[[], DynamoDBGetItem] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> Authorizer:
        """An authorizer for ``settings``; the defaults fetch keys over HTTP and read DynamoDB with boto3."""
        keys = JwksCache(settings.jwks_url, fetcher=jwks_fetcher, clock=clock)
        verifier = TokenVerifier(
            issuer=settings.issuer,
            audience=settings.app_client_id,
            keys=keys,
            leeway=settings.leeway_seconds,
        )
        registry = TenantRegistry(
            settings.registry_table,
            dynamodb_client_factory or _boto3_dynamodb_client,
            clock=clock,
        )
        return cls(verifier, registry, clock=clock, wall_clock=wall_clock)

    def handle(self, event: Mapping[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        """The response for ``event``, or ``Exception("Unauthorized")`` raised; nothing else escapes."""
        try:
            return self.decide(event)
        except _REJECTIONS as rejection:
            logger.info("request unauthorized", reason=rejection.reason, request_id=request_id)
        # A bug must still not become a 500 that would tell the client nothing; the type is enough to find it.
        except Exception as error:
            logger.error(
                "authorizer failed",
                reason="internal_error",
                error_type=type(error).__name__,
                request_id=request_id,
            )
        raise Exception(UNAUTHORIZED)

    def decide(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The Allow or Deny response for ``event``; raises a rejection carrying the failed check."""
        token = bearer_token(event.get("authorizationToken"))
        stage = parse_method_arn(event.get("methodArn"))
        key = (token, stage)
        cached = self._decisions.get(key)
        if cached is not None:
            return answer(cached.principal_id, cached.policy)
        identity = self._verifier.verify(token)
        lookup = self._registry.lookup(identity.tenant_id)
        record = lookup.record
        if record is None or record.suspended:
            logger.info(
                "tenant denied",
                reason="unknown_tenant" if record is None else "suspended_tenant",
                tenant_id=identity.tenant_id,
            )
            record = None
        policy = _policy(stage, record)
        self._decisions.put(key, _Decision(identity.subject, policy, identity.expires_at, lookup.expires_at))
        return answer(identity.subject, policy)


def _boto3_dynamodb_client() -> DynamoDBGetItem:
    import boto3  # deferred: importing boto3 costs ~250 ms, paid on the first registry read only
    from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 2, "mode": "standard"})
    client: DynamoDBGetItem = boto3.client("dynamodb", config=config)
    return client


_default: Authorizer | None = None
_default_lock = threading.Lock()


def default_authorizer() -> Authorizer:
    """The container's authorizer, built from the environment on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Authorizer.from_settings(AuthorizerSettings.from_env(os.environ))
    return _default


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        authorizer = default_authorizer()
    except ConfigurationError as error:
        logger.error(str(error), reason=error.reason)
        raise Exception(UNAUTHORIZED) from None
    return authorizer.handle(event, request_id=context.aws_request_id)
