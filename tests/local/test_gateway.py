"""The gateway's API Gateway behaviour, with handler doubles (the end-to-end tests use the real ones)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.contract import ROUTES, ContextKey
from local.gateway import Gateway, GatewaySettings, Request, policy_decision
from local.limits import ApiKey, UsagePlans
from local.server import GatewayServer
from tests.local.test_limits import FakeClock
from tiers.local_stack import RESERVED_PREFIX
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier

SETTINGS = GatewaySettings(
    region="us-east-1",
    account_id="123456789012",
    api_id="abc123defg",
    stage="local",
    authorizer_cache_ttl=300,
)
API_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123defg/local"
KEYS = {
    "alpha": ApiKey("id-alpha", "alpha-key-0123456789abcdef"),
    "beta": ApiKey("id-beta", "beta-key-0123456789abcdef"),
}


def _catalog() -> Catalog:
    return Catalog(
        tiers={
            "small": Tier("small", Isolation.POOLED, Throttle(rate=2, burst=3), Quota(5, QuotaPeriod.DAY))
        },
        tenants={"alpha": Tenant("alpha", "small", "Alpha"), "beta": Tenant("beta", "small", "Beta")},
    )


class FakeAuthorizer:
    """Token "allow-<tenant>" allows the whole API for that tenant; other tokens do what they say."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls.append(event)
        token = event["authorizationToken"].removeprefix("Bearer ")
        if token == "raise-unauthorized":
            raise Exception("Unauthorized")
        if token == "raise-other":
            raise RuntimeError("boom")
        if token == "malformed":
            return {"policyDocument": "nope"}
        effect, _, tenant = token.partition("-")
        return {
            "principalId": f"user-of-{tenant}",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": "execute-api:Invoke",
                        "Effect": "Deny" if effect == "deny" else "Allow",
                        "Resource": [f"{API_ARN}/GET/tenant" if effect == "only" else f"{API_ARN}/*/*"],
                    }
                ],
            },
            "context": {ContextKey.TENANT_ID: tenant, ContextKey.THROTTLE_RATE: 2, "flag": True},
            "usageIdentifierKey": KEYS[tenant].value if tenant in KEYS else "no-such-key-0123456789",
        }


class EchoApi:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if event["path"] == "/items/explode":
            raise ValueError("handler bug")
        if event["path"] == "/items/malformed":
            return {"body": "no status"}
        if event["path"] == "/items/binary":
            return {
                "statusCode": 200,
                "body": base64.b64encode(b"\x00\xff").decode(),
                "isBase64Encoded": True,
            }
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-One": "1"},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "body": json.dumps({"tenant": event["requestContext"]["authorizer"][ContextKey.TENANT_ID]}),
        }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def authorizer() -> FakeAuthorizer:
    return FakeAuthorizer()


@pytest.fixture
def api() -> EchoApi:
    return EchoApi()


def _gateway(authorizer, api, clock, ttl: float = 300) -> Gateway:
    settings = GatewaySettings(**{**SETTINGS.__dict__, "authorizer_cache_ttl": ttl})
    return Gateway(
        authorizer=authorizer,
        tenant_api=api,
        plans=UsagePlans.from_catalog(_catalog(), KEYS, clock),
        settings=settings,
        clock=clock,
    )


@pytest.fixture
def gateway(authorizer, api, clock) -> Gateway:
    return _gateway(authorizer, api, clock)


def call(gateway: Gateway, method: str, target: str, token: str | None = "allow-alpha", **extra: Any):
    headers = [("Host", "127.0.0.1:8080")]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    headers += extra.get("headers", [])
    return gateway.handle(Request(method, target, headers, extra.get("body", b""), "127.0.0.1"))


@pytest.mark.parametrize(
    ("method", "target"), [("GET", "/nope"), ("POST", "/tenant"), ("GET", "/items/a/b"), ("GET", "/")]
)
def test_unknown_routes_get_missing_authentication_token_before_any_authorizer_call(
    gateway, authorizer, method, target
):
    response = call(gateway, method, target)
    assert (response.status, response.json()) == (403, {"message": "Missing Authentication Token"})
    assert authorizer.calls == []


def test_no_authorization_header_is_401_without_calling_the_authorizer(gateway, authorizer):
    response = call(gateway, "GET", "/tenant", token=None)
    assert (response.status, response.json()) == (401, {"message": "Unauthorized"})
    assert authorizer.calls == []


@pytest.mark.parametrize(
    ("token", "status", "body"),
    [
        ("raise-unauthorized", 401, {"message": "Unauthorized"}),
        ("raise-other", 500, {"message": None}),
        ("malformed", 500, {"message": None}),
        (
            "deny-alpha",
            403,
            {"message": "User is not authorized to access this resource with an explicit deny"},
        ),
        ("allow-nobody", 403, {"message": "Forbidden"}),
    ],
)
def test_authorizer_outcomes_map_to_api_gateway_responses(gateway, api, token, status, body):
    response = call(gateway, "GET", "/tenant", token=token)
    assert (response.status, response.json()) == (status, body)
    assert api.events == []


def test_a_policy_naming_only_one_method_denies_the_others_from_the_cache(gateway, authorizer):
    assert call(gateway, "GET", "/tenant", token="only-alpha").status == 201
    response = call(gateway, "GET", "/items", token="only-alpha")
    assert (response.status, response.json()) == (
        403,
        {"message": "User is not authorized to access this resource"},
    )
    assert len(authorizer.calls) == 1


def test_the_authorizer_event_is_a_token_event_with_the_method_arn(gateway, authorizer):
    call(gateway, "DELETE", "/items/x%20y")
    assert authorizer.calls == [
        {
            "type": "TOKEN",
            "authorizationToken": "Bearer allow-alpha",
            "methodArn": f"{API_ARN}/DELETE/items/x y",
        }
    ]


def test_results_are_cached_by_token_for_the_ttl(authorizer, api, clock):
    gateway = _gateway(authorizer, api, clock, ttl=10)
    call(gateway, "GET", "/tenant")
    clock.advance(9)
    call(gateway, "GET", "/tenant")
    assert len(authorizer.calls) == 1
    call(gateway, "GET", "/tenant", token="allow-beta")
    assert len(authorizer.calls) == 2
    clock.advance(2)
    call(gateway, "GET", "/tenant")
    assert len(authorizer.calls) == 3


def test_a_zero_ttl_calls_the_authorizer_every_time(authorizer, api, clock):
    gateway = _gateway(authorizer, api, clock, ttl=0)
    for _ in range(3):
        call(gateway, "GET", "/tenant")
    assert len(authorizer.calls) == 3


def test_throttle_then_quota_per_key(gateway, clock):
    statuses = [call(gateway, "GET", "/tenant") for _ in range(4)]
    assert [r.status for r in statuses] == [201, 201, 201, 429]
    assert statuses[-1].json() == {"message": "Too Many Requests"}
    assert call(gateway, "GET", "/tenant", token="allow-beta").status == 201
    clock.advance(5)
    assert [call(gateway, "GET", "/tenant").status for _ in range(2)] == [201, 201]
    limited = call(gateway, "GET", "/tenant")
    assert (limited.status, limited.json()) == (429, {"message": "Limit Exceeded"})


def test_the_proxy_event_carries_the_request_and_the_authorizer_context(gateway, api):
    call(
        gateway,
        "PUT",
        "/items/it%2Fem?a=1&a=2&b=",
        headers=[("X-Multi", "one"), ("X-Multi", "two")],
        body=b'{"v": 1}',
    )
    event = api.events[0]
    assert event["resource"] == "/items/{id}"
    assert event["path"] == "/items/it/em"
    assert event["httpMethod"] == "PUT"
    assert event["pathParameters"] == {"id": "it/em"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"]["X-Multi"] == "two"
    assert event["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"v": 1}', False)
    context = event["requestContext"]
    assert context["resourcePath"] == "/items/{id}"
    assert context["httpMethod"] == "PUT"
    assert context["stage"] == "local"
    assert context["requestId"]
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["apiKeyId"] == "id-alpha"
    # REST APIs hand every context value over as a string
    assert context["authorizer"] == {
        ContextKey.TENANT_ID: "alpha",
        ContextKey.THROTTLE_RATE: "2",
        "flag": "true",
        "principalId": "user-of-alpha",
    }


def test_a_request_without_query_or_body_has_nulls_as_api_gateway_sends(gateway, api):
    call(gateway, "GET", "/items")
    event = api.events[0]
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["body"] is None


def test_non_utf8_bodies_pass_base64_encoded(gateway, api):
    call(gateway, "PUT", "/items/a", body=b"\xff\xfe")
    assert api.events[0]["isBase64Encoded"] is True
    assert base64.b64decode(api.events[0]["body"]) == b"\xff\xfe"


def test_the_integration_response_is_mapped_back(gateway):
    response = call(gateway, "GET", "/tenant")
    assert response.status == 201
    assert response.json() == {"tenant": "alpha"}
    assert ("X-One", "1") in response.headers
    assert [v for n, v in response.headers if n == "X-Many"] == ["a", "b"]
    binary = call(gateway, "GET", "/items/binary")
    assert binary.body == b"\x00\xff"


@pytest.mark.parametrize("path", ["/items/explode", "/items/malformed"])
def test_a_failing_or_malformed_integration_is_502(gateway, path):
    response = call(gateway, "GET", path)
    assert (response.status, response.json()) == (502, {"message": "Internal server error"})


def test_header_values_over_10240_bytes_in_total_are_refused(gateway, api):
    big = [("X-Pad", "x" * 5200), ("X-Pad-2", "y" * 5200)]
    response = call(gateway, "GET", "/tenant", headers=big)
    assert response.status == 431
    assert api.events == []
    assert call(gateway, "GET", "/tenant", headers=big[:1]).status == 201


@pytest.mark.parametrize(
    ("resource", "decision"),
    [
        (f"{API_ARN}/*/*", "Allow"),
        (f"{API_ARN}/GET/*", "Allow"),
        (f"{API_ARN}/POST/*", "None"),
        ("arn:aws:execute-api:us-east-1:123456789012:other/local/*/*", "None"),
        (f"{API_ARN}/GET/items/?", "Allow"),
        (f"{API_ARN}/GET/items/??", "None"),
    ],
)
def test_policy_resources_match_with_iam_wildcards(resource, decision):
    statement = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource}
    assert policy_decision([statement], f"{API_ARN}/GET/items/a") == decision


def test_an_explicit_deny_wins_over_an_allow():
    statements = [
        {"Effect": "Allow", "Action": "execute-api:*", "Resource": f"{API_ARN}/*"},
        {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": f"{API_ARN}/*"},
    ]
    assert policy_decision(statements, f"{API_ARN}/GET/tenant") == "Deny"


header_text = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x10FFFF, exclude_categories=["Cs"]), max_size=40
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    target=st.text(max_size=60).map(lambda text: "/" + text),
    headers=st.lists(st.tuples(header_text, header_text), max_size=4),
    token=st.one_of(st.none(), header_text, st.sampled_from(["allow-alpha", "deny-beta", "malformed"])),
    body=st.binary(max_size=64),
)
def test_any_request_gets_an_api_gateway_answer_and_never_an_exception(
    authorizer, api, clock, method, target, headers, token, body
):
    gateway = _gateway(authorizer, api, clock, ttl=0)
    all_headers = [*headers] + ([("Authorization", token)] if token is not None else [])
    response = gateway.handle(Request(method, target, all_headers, body, "127.0.0.1"))
    assert response.status in {201, 401, 403, 429, 500, 502}
    assert "message" in response.json() or response.status == 201


def test_no_tenant_route_uses_the_reserved_prefix():
    assert not any(resource.startswith(RESERVED_PREFIX) for _, resource in ROUTES)


def test_the_http_server_serves_the_gateway_and_reserved_paths_and_stops_cleanly(gateway, api):
    # GIVEN the HTTP front on a free port, with a client holding a keep-alive connection
    server = GatewayServer(("127.0.0.1", 0), None, access_log=False)
    server.start(gateway, {f"{RESERVED_PREFIX}stack": lambda: {"hello": "world"}})
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/tenant", headers={"Authorization": "Bearer allow-alpha"})
    first = connection.getresponse()
    assert (first.status, json.loads(first.read())) == (201, {"tenant": "alpha"})
    connection.request("GET", f"{RESERVED_PREFIX}stack")
    reserved = connection.getresponse()
    assert (reserved.status, json.loads(reserved.read())) == (200, {"hello": "world"})
    connection.request(
        "PUT",
        "/items/chunked",
        body=iter([b'{"a":', b" 1}"]),
        headers={"Authorization": "Bearer allow-alpha", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    chunked = connection.getresponse()
    assert chunked.status == 201
    chunked.read()
    assert api.events[-1]["body"] == '{"a": 1}'
    connection.request("GET", f"{RESERVED_PREFIX}nothing")
    unknown = connection.getresponse()
    assert unknown.status == 404
    assert f"{RESERVED_PREFIX}stack" in json.loads(unknown.read())["message"]
    # WHEN it stops
    server.stop()
    connection.close()
    # THEN the port is closed
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", server.port), timeout=1),
    ):
        pass
