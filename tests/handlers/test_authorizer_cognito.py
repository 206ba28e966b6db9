"""End to end against moto's Cognito over HTTP: the tokens it issues are verified with the JWKS it serves
at another address than the issuer it stamps, the way the local stack runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from handlers.authorizer import Authorizer, AuthorizerSettings
from handlers.contract import TENANT_ATTRIBUTE, TENANT_CLAIM
from tests.handlers.conftest import (
    ALLOW,
    AWS_REGION,
    DENY,
    UNAUTHORIZED,
    api_key_value,
    bearer,
    create_registry_table,
    load_event,
    outcome,
)

PASSWORD = "Correct-Horse-9-Battery"


@dataclass(frozen=True)
class Pool:
    endpoint: str
    pool_id: str
    client_id: str
    cognito: Any

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{AWS_REGION}.amazonaws.com/{self.pool_id}"

    def add_user(self, email: str, tenant_id: str) -> None:
        self.cognito.admin_create_user(
            UserPoolId=self.pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": TENANT_CLAIM, "Value": tenant_id}],
            MessageAction="SUPPRESS",
        )
        self.cognito.admin_set_user_password(
            UserPoolId=self.pool_id, Username=email, Password=PASSWORD, Permanent=True
        )

    def sign_in(self, email: str) -> dict[str, str]:
        answer = self.cognito.initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
        )
        tokens: dict[str, str] = answer["AuthenticationResult"]
        return tokens


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pool]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": AWS_REGION,
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        cognito = boto3.client("cognito-idp", region_name=AWS_REGION)
        pool_id = cognito.create_user_pool(
            PoolName="tenant-tiers-test-users",
            Schema=[{"Name": TENANT_ATTRIBUTE, "AttributeDataType": "String", "Mutable": False}],
        )["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="tenant-tiers-test-app",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        yield Pool(endpoint, pool_id, client_id, cognito)
    finally:
        server.stop()


def test_cognito_tokens_through_the_authorizer(pool: Pool) -> None:
    # GIVEN users of an active, a suspended and an unknown tenant, and the registry in the same emulator
    registry = create_registry_table()
    for email, tenant_id in (
        ("ann@acme.test", "acme"),
        ("ian@initech.test", "initech"),
        ("hal@hooli.test", "hooli"),
    ):
        pool.add_user(email, tenant_id)
    settings = AuthorizerSettings(
        issuer=pool.issuer,
        app_client_id=pool.client_id,
        jwks_url=f"{pool.endpoint}/{pool.pool_id}/.well-known/jwks.json",
        registry_table=registry.name,
    )
    authorizer = Authorizer.from_settings(settings)

    # WHEN each signs in and calls the API with the ID token, and ann tries her access token
    ann = pool.sign_in("ann@acme.test")
    answers = {
        email: outcome(authorizer, load_event("authorizer_token", bearer(pool.sign_in(email)["IdToken"])))
        for email in ("ian@initech.test", "hal@hooli.test")
    }
    ann_effect, ann_response = outcome(authorizer, load_event("authorizer_token", bearer(ann["IdToken"])))
    access = outcome(authorizer, load_event("authorizer_token", bearer(ann["AccessToken"])))

    # THEN ann is allowed with acme's key, the others denied, and the access token refused
    assert ann_effect == ALLOW
    assert ann_response is not None
    assert ann_response["usageIdentifierKey"] == api_key_value("acme")
    assert [answer[0] for answer in answers.values()] == [DENY, DENY]
    assert access == (UNAUTHORIZED, None)
