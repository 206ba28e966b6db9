"""The authorizer's answers: Allow with the tenant's key, Deny for unknown or suspended tenants, 401 for every
token problem. Tokens are minted here, the JWKS is served over HTTP, the registry lives in moto."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, cast

import pytest

from handlers import authorizer as authorizer_module
from handlers.authorizer import Authorizer, AuthorizerSettings, InvalidMethodArnError, MissingTokenError
from handlers.contract import ContextKey, Env
from tests.handlers.conftest import (
    ALLOW,
    APP_CLIENT_ID,
    DENY,
    ISSUER,
    TEST_BUCKETS,
    TEST_CATALOG,
    TEST_NAMING,
    UNAUTHORIZED,
    JwksServer,
    RegistryTable,
    SigningKey,
    api_key_value,
    assert_policy_covers_stage_only,
    assert_unauthorized,
    bearer,
    id_token_claims,
    load_event,
    outcome,
    settings_for,
)
from tiers.registry import data_table, file_bucket

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@pytest.fixture
def authorizer(jwks_server: JwksServer, registry_table: RegistryTable) -> Authorizer:
    return Authorizer.from_settings(settings_for(jwks_server, registry_table))


def test_missing_header_is_unauthorized(authorizer: Authorizer) -> None:
    # GIVEN an event without an authorization token
    event = load_event("authorizer_missing_token")

    # WHEN / THEN 401, because the token is missing
    assert outcome(authorizer, event) == (UNAUTHORIZED, None)
    with pytest.raises(MissingTokenError):
        authorizer.decide(event)


def test_malformed_method_arn_is_unauthorized_not_an_error(
    authorizer: Authorizer, signing_key: SigningKey
) -> None:
    event = load_event("authorizer_bad_method_arn", bearer(signing_key.sign(id_token_claims())))

    assert outcome(authorizer, event) == (UNAUTHORIZED, None)
    with pytest.raises(InvalidMethodArnError):
        authorizer.decide(event)


@pytest.mark.parametrize("path_length", [1_600, 10_000])
def test_a_valid_token_is_allowed_whatever_the_length_of_its_path(
    authorizer: Authorizer, signing_key: SigningKey, path_length: int
) -> None:
    # GIVEN a valid token calling a route whose method ARN carries a very long path
    event = load_event("authorizer_item_route", bearer(signing_key.sign(id_token_claims())))
    stage_arn = event["methodArn"].split("/PUT/")[0]
    event["methodArn"] = f"{stage_arn}/PUT/items/{'x' * path_length}"

    # WHEN the authorizer decides, first without and then with its decision cache
    first, again = outcome(authorizer, event), outcome(authorizer, event)

    # THEN it allows both times: only the stage part of the ARN matters, the path is API Gateway's concern
    assert first[0] == ALLOW
    assert again == first


@pytest.mark.parametrize("event", [None, [], {"authorizationToken": 7}, {"methodArn": {"x": 1}}, "TOKEN"])
def test_an_event_of_any_shape_gets_401_never_a_500(authorizer: Authorizer, event: Any) -> None:
    assert outcome(authorizer, event) == (UNAUTHORIZED, None)


@pytest.mark.parametrize("tenant_id", ["acme", "globex"])
def test_allow_carries_key_context_and_a_policy_for_every_route(
    authorizer: Authorizer, signing_key: SigningKey, tenant_id: str
) -> None:
    # GIVEN a valid ID token of an active tenant
    claims = id_token_claims(tenant_id)
    tenant = TEST_CATALOG.tenants[tenant_id]
    tier = TEST_CATALOG.tier_of(tenant)

    # WHEN it calls one route
    effect, response = outcome(
        authorizer, load_event("authorizer_item_route", bearer(signing_key.sign(claims)))
    )

    # THEN the answer allows every route of the stage (so API Gateway's cache serves the others),
    # names the user, hands over the tenant's key and describes the tenant in strings
    assert effect == ALLOW
    assert response is not None
    assert_policy_covers_stage_only(response, ALLOW)
    assert response["principalId"] == claims["sub"]
    assert response["usageIdentifierKey"] == api_key_value(tenant_id)
    assert response["context"] == {
        ContextKey.TENANT_ID: tenant_id,
        ContextKey.TIER: tier.name,
        ContextKey.ISOLATION: tier.isolation.value,
        ContextKey.TABLE: data_table(TEST_CATALOG, tenant, TEST_NAMING),
        ContextKey.BUCKET: file_bucket(TEST_CATALOG, tenant, TEST_BUCKETS),
        ContextKey.THROTTLE_RATE: format(tier.throttle.rate, "g"),
        ContextKey.THROTTLE_BURST: str(tier.throttle.burst),
        ContextKey.QUOTA_LIMIT: str(tier.quota.limit),
        ContextKey.QUOTA_PERIOD: tier.quota.period.value,
        ContextKey.QUOTA_OFFSET: str(tier.quota.offset),
    }


@pytest.mark.parametrize("tenant_id", ["initech", "hooli"])
def test_deny_covers_every_route_and_hands_out_no_key(
    authorizer: Authorizer, signing_key: SigningKey, tenant_id: str
) -> None:
    # GIVEN a valid token of a suspended (initech) or unknown (hooli) tenant
    effect, response = outcome(
        authorizer, load_event("authorizer_token", bearer(signing_key.sign(id_token_claims(tenant_id))))
    )

    # THEN an explicit Deny of the whole stage, without key or context
    assert effect == DENY
    assert response is not None
    assert_policy_covers_stage_only(response, DENY)
    assert "usageIdentifierKey" not in response
    assert "context" not in response


def test_a_repeated_token_is_answered_from_the_decision_cache(
    jwks_server: JwksServer, registry_table: RegistryTable, signing_key: SigningKey
) -> None:
    # GIVEN an authorizer whose key source counts lookups
    authorizer = Authorizer.from_settings(settings_for(jwks_server, registry_table))
    event = load_event("authorizer_token", bearer(signing_key.sign(id_token_claims())))
    first = authorizer.handle(event)
    jwks_server.failing = True
    registry_table.client.delete_table(TableName=registry_table.name)

    # WHEN the same token comes again, with keys and registry now unreachable
    second = authorizer.handle(dict(event))

    # THEN the same answer comes back without either being needed
    assert second == first


def test_changing_a_response_does_not_change_the_next_one(
    authorizer: Authorizer, signing_key: SigningKey
) -> None:
    # GIVEN an answer whose context the caller extends, as a gateway adding the principal might
    event = load_event("authorizer_token", bearer(signing_key.sign(id_token_claims())))
    first = authorizer.handle(event)
    first["context"]["principalId"] = first["principalId"]
    first["usageIdentifierKey"] = "changed"

    # WHEN the same tenant is authorized again, with the same token and another user's token
    again = authorizer.handle(event)
    other_user = authorizer.handle(
        load_event("authorizer_token", bearer(signing_key.sign(id_token_claims(sub="another-user"))))
    )

    # THEN neither carries the change
    for response in (again, other_user):
        assert "principalId" not in response["context"]
        assert response["usageIdentifierKey"] == api_key_value("acme")


def test_the_decision_cache_does_not_outlive_the_token(
    jwks_server: JwksServer, registry_table: RegistryTable, signing_key: SigningKey
) -> None:
    # GIVEN a token expiring in 3 s (room for a slow first answer on a busy machine), answered once, and an
    # authorizer without leeway
    settings = AuthorizerSettings(
        ISSUER, APP_CLIENT_ID, jwks_server.url, registry_table.name, leeway_seconds=0
    )
    authorizer = Authorizer.from_settings(settings)
    expires_at = int(time.time()) + 3
    event = load_event("authorizer_token", bearer(signing_key.sign(id_token_claims(exp=expires_at))))
    assert outcome(authorizer, event)[0] == ALLOW

    # WHEN the token has expired
    time.sleep(max(0.0, expires_at + 1.05 - time.time()))

    # THEN the cached Allow is not served
    assert outcome(authorizer, event) == (UNAUTHORIZED, None)


def test_a_suspension_bites_once_the_registry_ttl_has_passed(
    jwks_server: JwksServer, registry_table: RegistryTable, signing_key: SigningKey, clock: Any
) -> None:
    # GIVEN globex allowed, then suspended in the registry
    authorizer = Authorizer.from_settings(settings_for(jwks_server, registry_table), clock=clock)
    event = load_event("authorizer_token", bearer(signing_key.sign(id_token_claims("globex"))))
    assert outcome(authorizer, event)[0] == ALLOW
    item = registry_table.item("globex")
    registry_table.client.put_item(TableName=registry_table.name, Item={**item, "suspended": {"BOOL": True}})

    # WHEN the same token comes within the registry TTL, and after it
    clock.advance(59)
    within = outcome(authorizer, event)[0]
    clock.advance(2)
    after = outcome(authorizer, event)[0]

    # THEN the cached answer holds until the TTL, then the suspension denies
    assert (within, after) == (ALLOW, DENY)


def test_the_lambda_handler_reads_its_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    jwks_server: JwksServer,
    registry_table: RegistryTable,
    signing_key: SigningKey,
) -> None:
    # GIVEN the environment the program sets on the function
    monkeypatch.setenv(Env.TOKEN_ISSUER, ISSUER)
    monkeypatch.setenv(Env.APP_CLIENT_ID, APP_CLIENT_ID)
    monkeypatch.setenv(Env.JWKS_URL, jwks_server.url)
    monkeypatch.setenv(Env.REGISTRY_TABLE, registry_table.name)
    monkeypatch.setattr(authorizer_module, "_default", None)
    context = LambdaContextStub()

    # WHEN API Gateway invokes the function with a valid and an invalid token
    allowed = authorizer_module.lambda_handler(
        load_event("authorizer_token", bearer(signing_key.sign(id_token_claims()))), context
    )
    rejected_event = load_event("authorizer_token", "Bearer x.y.z")

    # THEN the first is allowed with the tenant's key and the second is exactly API Gateway's 401
    assert allowed["usageIdentifierKey"] == api_key_value("acme")
    assert_unauthorized(lambda: authorizer_module.lambda_handler(rejected_event, context))


def test_an_unconfigured_function_answers_401(
    monkeypatch: pytest.MonkeyPatch, signing_key: SigningKey
) -> None:
    # GIVEN a function without its environment
    for name in (Env.TOKEN_ISSUER, Env.APP_CLIENT_ID, Env.JWKS_URL, Env.REGISTRY_TABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(authorizer_module, "_default", None)

    event = load_event("authorizer_token", bearer(signing_key.sign(id_token_claims())))

    # WHEN it is invoked / THEN 401, not a 500
    assert_unauthorized(lambda: authorizer_module.lambda_handler(event, LambdaContextStub()))


def test_settings_name_every_missing_variable() -> None:
    with pytest.raises(authorizer_module.ConfigurationError) as error:
        AuthorizerSettings.from_env({Env.TOKEN_ISSUER: ISSUER})
    message = str(error.value)
    assert Env.APP_CLIENT_ID in message
    assert Env.JWKS_URL in message
    assert Env.REGISTRY_TABLE in message
    assert Env.TOKEN_ISSUER not in message


class _LambdaContextStub:
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    function_name = "authorizer"


def LambdaContextStub() -> LambdaContext:
    return cast("LambdaContext", _LambdaContextStub())


def test_concurrent_callers_each_get_their_own_answer(
    authorizer: Authorizer, jwks_server: JwksServer, signing_key: SigningKey
) -> None:
    # GIVEN tokens of several tenants and users, and a bad one, shared by 8 threads (as the local stack calls)
    expected = {"acme": ALLOW, "globex": ALLOW, "initech": DENY, "hooli": DENY}
    tokens = [
        (tenant_id, bearer(signing_key.sign(id_token_claims(tenant_id, sub=f"user-{tenant_id}-{user}"))))
        for tenant_id in expected
        for user in range(3)
    ]
    tokens.append(("bad", "Bearer x.y.z"))
    expected["bad"] = UNAUTHORIZED
    mismatches: list[str] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        for round_ in range(4):
            for index in range(len(tokens)):
                tenant_id, authorization = tokens[(index + offset + round_) % len(tokens)]
                effect, response = outcome(authorizer, load_event("authorizer_token", authorization))
                key = response.get("usageIdentifierKey") if response else None
                wrong = effect != expected[tenant_id] or (effect == ALLOW and key != api_key_value(tenant_id))
                if wrong:
                    with lock:
                        mismatches.append(f"{tenant_id}: {effect}")

    # WHEN they all call at once
    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every answer is right for its own token, and the keys were fetched once
    assert mismatches == []
    assert jwks_server.fetches == 1
