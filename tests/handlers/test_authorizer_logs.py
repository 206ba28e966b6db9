"""What the authorizer logs: a reason code per rejection and the tenant id at most; never the token, the
API key or claim values."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from handlers import authorizer as authorizer_module
from handlers.authorizer import Authorizer
from handlers.contract import TENANT_CLAIM
from handlers.jwks import UNKNOWN_KID_COOLDOWN_SECONDS
from tests.handlers.conftest import (
    TEST_CATALOG,
    UNAUTHORIZED,
    JwksServer,
    ManualClock,
    RegistryTable,
    SigningKey,
    api_key_value,
    bearer,
    id_token_claims,
    load_event,
    outcome,
    settings_for,
)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """All the authorizer's powertools logger (and its children) writes, at every level, as JSON lines."""
    service_logger = logging.getLogger(authorizer_module.logger.service)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(authorizer_module.logger.registered_formatter)
    previous_level = service_logger.level
    service_logger.addHandler(handler)
    service_logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        service_logger.removeHandler(handler)
        service_logger.setLevel(previous_level)


def test_logs_carry_reasons_and_tenant_ids_but_no_secret(
    captured_logs: io.StringIO,
    jwks_server: JwksServer,
    registry_table: RegistryTable,
    signing_key: SigningKey,
    other_signing_key: SigningKey,
    clock: ManualClock,
) -> None:
    # GIVEN distinctive claims and tokens of every outcome
    claims: dict[str, Any] = {
        **id_token_claims(sub="sub-7d1c3f9e-unique", email="carol.secret@example.org"),
        "cognito:username": "carol-username-unique",
    }
    tokens = {
        "allowed": signing_key.sign(claims),
        "suspended": signing_key.sign({**claims, TENANT_CLAIM: "initech"}),
        "unknown tenant": signing_key.sign({**claims, TENANT_CLAIM: "hooli"}),
        "expired": signing_key.sign({**claims, "exp": claims["iat"] - 3600}),
        "foreign signature": other_signing_key.sign(claims, kid=signing_key.kid),
        "bad tenant claim": signing_key.sign({**claims, TENANT_CLAIM: "evil\n{json}"}),
        "unknown kid": signing_key.sign(claims, kid="attacker-kid"),
    }
    authorizer = Authorizer.from_settings(settings_for(jwks_server, registry_table), clock=clock)

    # WHEN each is presented, then the registry and the JWKS endpoint fail
    effects = {
        name: outcome(authorizer, load_event("authorizer_token", bearer(token)))[0]
        for name, token in tokens.items()
    }
    registry_table.client.delete_table(TableName=registry_table.name)
    jwks_server.failing = True
    clock.advance(UNKNOWN_KID_COOLDOWN_SECONDS)
    outage_token = signing_key.sign({**claims, TENANT_CLAIM: "globex"})
    effects["registry outage"] = outcome(authorizer, load_event("authorizer_token", bearer(outage_token)))[0]
    effects["jwks outage"] = outcome(
        authorizer, load_event("authorizer_token", bearer(signing_key.sign(claims, kid="rotated-kid")))
    )[0]
    logs = captured_logs.getvalue()
    records = [json.loads(line) for line in logs.splitlines()]

    # THEN the rejections are logged with their reasons and the denials with the tenant id
    assert effects["allowed"] == "Allow"
    assert {
        effects[name] for name in ("expired", "foreign signature", "bad tenant claim", "registry outage")
    } == {UNAUTHORIZED}
    reasons = {record.get("reason") for record in records}
    assert {
        "token_expired",
        "bad_signature",
        "invalid_tenant_claim",
        "unknown_kid",
        "registry_unavailable",
    } <= reasons
    assert {"suspended_tenant", "unknown_tenant", "jwks_fetch_failed"} <= reasons
    assert {record.get("tenant_id") for record in records if record.get("reason") == "suspended_tenant"} == {
        "initech"
    }

    # AND no token, token segment, API key or claim value appears anywhere
    secrets = [claims["sub"], claims["email"], claims["cognito:username"], claims["jti"], "evil"]
    secrets += [api_key_value(tenant_id) for tenant_id in TEST_CATALOG.tenants]
    for token in [*tokens.values(), outage_token]:
        secrets += [token, *token.split(".")[1:]]
    leaked = [secret for secret in secrets if secret in logs]
    assert leaked == []
