"""Fixtures shared by the handler tests: RSA signing keys and ID tokens, a JWKS served over real HTTP,
AWS in moto, a registry table written the way the program writes it."""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm
from moto import mock_aws

from handlers.authorizer import Authorizer, AuthorizerSettings
from handlers.contract import REGISTRY_PARTITION_KEY, ROUTES, TENANT_CLAIM
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier
from tiers.naming import Naming
from tiers.registry import registry_item

AWS_REGION = "eu-west-1"
AWS_ACCOUNT = "123456789012"
USER_POOL_ID = f"{AWS_REGION}_TestPool1"
ISSUER = f"https://cognito-idp.{AWS_REGION}.amazonaws.com/{USER_POOL_ID}"
APP_CLIENT_ID = "4example0app0client0id0123"
TEST_NAMING = Naming("tenant-tiers", "test")
TEST_BUCKETS = TEST_NAMING.buckets(AWS_ACCOUNT, AWS_REGION)

# A catalog covering what the authorizer distinguishes: silo and pooled, a fractional
# rate and a quota offset, a suspended tenant.
TEST_CATALOG = Catalog(
    tiers={
        "basic": Tier("basic", Isolation.POOLED, Throttle(0.5, 2), Quota(1000, QuotaPeriod.DAY, 10)),
        "premium": Tier("premium", Isolation.SILO, Throttle(200, 400), Quota(5_000_000, QuotaPeriod.MONTH)),
    },
    tenants={
        "acme": Tenant("acme", "premium", "Acme Corp"),
        "globex": Tenant("globex", "basic", "Globex"),
        "initech": Tenant("initech", "basic", "Initech", suspended=True),
    },
)


def api_key_value(tenant_id: str) -> str:
    """The API key value the registry holds for ``tenant_id`` (20-128 characters, like API Gateway's)."""
    return f"key-value-of-{tenant_id}-0123456789abcdef"


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair standing in for one key of the user pool."""

    kid: str
    private_key: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def sign(self, claims: Mapping[str, Any], *, kid: Any = None) -> str:
        """An RS256 token of ``claims`` whose header names ``kid`` (by default this key's)."""
        token: str = jwt.encode(
            dict(claims), self.private_key, algorithm="RS256", headers={"kid": kid or self.kid}
        )
        return token

    def sign_raw(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        """An RS256-signed token with exactly ``header`` (PyJWT refuses odd ones such as int kids)."""
        signing_input = f"{_segment(json.dumps(header).encode())}.{_segment(json.dumps(claims).encode())}"
        signature = self.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_segment(signature)}"


def new_signing_key(kid: str, bits: int = 2048) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits))


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return new_signing_key("pool-key-1")


@pytest.fixture(scope="session")
def other_signing_key() -> SigningKey:
    """A second key: rotation, and a stranger's signature under the pool's kid."""
    return new_signing_key("pool-key-2")


def id_token_claims(tenant_id: Any = "acme", *, now: float | None = None, **overrides: Any) -> dict[str, Any]:
    """Claims of a Cognito ID token for a user of ``tenant_id``; an override of ``None`` drops the claim."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": "5f0c7a1e-33d1-4b8e-9d4a-1c2b3a4d5e6f",
        "email": "jane.doe@example.com",
        "email_verified": True,
        "cognito:username": "jane.doe",
        "iss": ISSUER,
        "aud": APP_CLIENT_ID,
        "token_use": "id",
        "auth_time": issued,
        "iat": issued,
        "exp": issued + 3600,
        "jti": "0a5c0e6b-1b5e-4c5e-9b8e-2f0c1b6a7d33",
        TENANT_CLAIM: tenant_id,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    """A compact JWS assembled by hand with any signature bytes (``alg: none``, HS256 forgeries)."""
    signing_input = f"{_segment(json.dumps(header).encode())}.{_segment(json.dumps(claims).encode())}"
    return f"{signing_input}.{_segment(signature)}"


@dataclass
class JwksServer:
    """A JWKS endpoint on 127.0.0.1 that counts fetches and can be made to fail or stall."""

    document: bytes
    failing: bool = False
    delay_seconds: float = 0.0
    fetches: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def serve_keys(self, *keys: SigningKey) -> None:
        self.document = json.dumps({"keys": [key.jwk() for key in keys]}).encode()

    def record_fetch(self) -> None:
        with self._lock:
            self.fetches += 1


class _JwksHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a stalled answer (the timeout tests) is expected, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving_jwks(*keys: SigningKey) -> Iterator[JwksServer]:
    """A JWKS server on a free port of 127.0.0.1 serving ``keys``, stopped on exit."""
    state = JwksServer(document=b"")
    state.serve_keys(*keys)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.record_fetch()
            if state.delay_seconds:
                time.sleep(state.delay_seconds)
            if state.failing:
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.document)))
            self.end_headers()
            self.wfile.write(state.document)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = _JwksHttpServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/{USER_POOL_ID}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def jwks_server(signing_key: SigningKey) -> Iterator[JwksServer]:
    with serving_jwks(signing_key) as server:
        yield server


@contextmanager
def moto_aws() -> Iterator[None]:
    """Every boto3 call inside goes to moto, with fake credentials and a fixed region."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": AWS_REGION,
            "AWS_REGION": AWS_REGION,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            yield


@pytest.fixture
def aws() -> Iterator[None]:
    with moto_aws():
        yield


@dataclass(frozen=True)
class RegistryTable:
    """The registry table in moto, holding :data:`TEST_CATALOG`."""

    name: str
    client: Any

    def write(self, tenant: Tenant, catalog: Catalog = TEST_CATALOG) -> None:
        item = registry_item(
            catalog,
            tenant,
            TEST_NAMING,
            buckets=TEST_BUCKETS,
            api_key_id=f"key-id-{tenant.id}",
            api_key_value=api_key_value(tenant.id),
        )
        self.client.put_item(TableName=self.name, Item=item)

    def item(self, tenant_id: str) -> dict[str, Any]:
        response = self.client.get_item(TableName=self.name, Key={REGISTRY_PARTITION_KEY: {"S": tenant_id}})
        item: dict[str, Any] = response["Item"]
        return item


def create_registry_table() -> RegistryTable:
    """The registry table, inside an active moto, holding every tenant of :data:`TEST_CATALOG`."""
    client = boto3.client("dynamodb", region_name=AWS_REGION)
    name = TEST_NAMING.registry_table
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": REGISTRY_PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": REGISTRY_PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table = RegistryTable(name, client)
    for tenant in TEST_CATALOG.tenants.values():
        table.write(tenant)
    return table


@pytest.fixture
def registry_table(aws: None) -> RegistryTable:
    return create_registry_table()


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# Authorizer events and answers, as API Gateway sends and reads them.

EVENTS = Path(__file__).parent / "events"
STAGE_ARN = f"arn:aws:execute-api:{AWS_REGION}:{AWS_ACCOUNT}:a1b2c3d4e5/test"
ALLOW, DENY, UNAUTHORIZED = "Allow", "Deny", "401 Unauthorized"


def load_event(name: str, authorization: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    if authorization is not None:
        event["authorizationToken"] = authorization
    return event


def settings_for(jwks_server: JwksServer, registry_table: RegistryTable) -> AuthorizerSettings:
    return AuthorizerSettings(
        issuer=ISSUER,
        app_client_id=APP_CLIENT_ID,
        jwks_url=jwks_server.url,
        registry_table=registry_table.name,
    )


def bearer(token: str) -> str:
    return f"Bearer {token}"


def assert_unauthorized(call: Callable[[], object]) -> None:
    """API Gateway answers 401 only for exactly ``Exception("Unauthorized")``; anything else is a 500."""
    with pytest.raises(Exception, match=r"^Unauthorized$") as raised:
        call()
    assert type(raised.value) is Exception
    assert raised.value.args == ("Unauthorized",)


def outcome(authorizer: Authorizer, event: Any) -> tuple[str, dict[str, Any] | None]:
    """What API Gateway would make of the handler's answer: 401, or the policy's single effect."""
    try:
        response = authorizer.handle(event)
    except Exception:
        assert_unauthorized(lambda: authorizer.handle(event))
        return UNAUTHORIZED, None
    effects = {statement["Effect"] for statement in response["policyDocument"]["Statement"]}
    assert len(effects) == 1
    return effects.pop(), response


def resource_matches(pattern: str, arn: str) -> bool:
    """IAM resource matching: ``*`` any run of characters, ``?`` one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, arn) is not None


def route_arns(stage_arn: str = STAGE_ARN) -> list[str]:
    return [f"{stage_arn}/{method}{path.replace('{id}', 'order-0042')}" for method, path in ROUTES]


def assert_policy_covers_stage_only(response: dict[str, Any], effect: str) -> None:
    resources = [
        resource
        for statement in response["policyDocument"]["Statement"]
        if statement["Effect"] == effect and statement["Action"] == "execute-api:Invoke"
        for resource in statement["Resource"]
    ]
    for arn in route_arns():
        assert any(resource_matches(resource, arn) for resource in resources), arn
    other_stage = f"arn:aws:execute-api:{AWS_REGION}:{AWS_ACCOUNT}:a1b2c3d4e5/prod/GET/tenant"
    other_api = f"arn:aws:execute-api:{AWS_REGION}:{AWS_ACCOUNT}:zzzzzzzzzz/test/GET/tenant"
    assert not any(resource_matches(resource, other_stage) for resource in resources)
    assert not any(resource_matches(resource, other_api) for resource in resources)
