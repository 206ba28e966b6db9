"""Sign-in on the local stack matches usernames whatever their case, as the deployed user pool does.

The program creates the pool with ``UsernameConfiguration.CaseSensitive = false`` and
`python -m tiers users add` stores emails lower-cased; a user who types a capital letter
must still get in. moto 5.2.5 stores the setting but matches usernames exactly, so the
local stack's sign-in folds the case itself (``blueprint.identity.sign_in_username``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from moto.server import ThreadedMotoServer

from local.client import sign_in
from local.provision import AwsClients, Provisioned, provision
from local.settings import DUMMY_CREDENTIALS, REGION
from tiers.loader import load_catalog
from tiers.naming import Naming
from tiers.users import add_user

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-Horse-9-battery"
TYPED_EMAILS = ["ann@acme.example", "Ann@Acme.Example", "ANN@ACME.EXAMPLE", "aNN@acme.EXAMPLE"]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(endpoint: str) -> Provisioned:
    catalog = load_catalog(REPO / "tiers" / "dev.yaml")
    return provision(catalog, Naming(project="tenant-tiers", stack="signin"), AwsClients(endpoint))


@pytest.fixture(scope="module")
def cognito(endpoint: str) -> Any:
    return boto3.session.Session(region_name=REGION, **DUMMY_CREDENTIALS).client(
        "cognito-idp", endpoint_url=endpoint
    )


@pytest.fixture(scope="module")
def ann(stack: Provisioned, cognito: Any) -> str:
    # GIVEN a user added with capitals in her email, as an administrator might type it
    tenant_id = next(iter(stack.tenants))
    catalog = load_catalog(REPO / "tiers" / "dev.yaml")
    add_user(cognito, stack.user_pool_id, catalog, tenant_id, "  Ann@ACME.example ", password=PASSWORD)
    return tenant_id


def test_the_local_pool_is_created_case_insensitive(stack: Provisioned, cognito: Any) -> None:
    pool = cognito.describe_user_pool(UserPoolId=stack.user_pool_id)["UserPool"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}


@pytest.mark.parametrize("typed", TYPED_EMAILS)
def test_a_user_signs_in_whatever_case_she_types(
    stack: Provisioned, cognito: Any, ann: str, typed: str
) -> None:
    # WHEN she signs in typing her email in any case
    token = sign_in(cognito, stack.app_client_id, typed, PASSWORD)
    # THEN she gets an ID token for her one user, of her tenant
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["email"] == "ann@acme.example"
    assert claims["custom:tenant_id"] == ann


def test_moto_alone_still_matches_usernames_exactly(stack: Provisioned, cognito: Any, ann: str) -> None:
    """Why the local sign-in folds case: if this starts failing, moto honours CaseSensitive and the
    folding in blueprint.identity.sign_in_username can go."""
    with pytest.raises(cognito.exceptions.UserNotFoundException):
        cognito.initiate_auth(
            ClientId=stack.app_client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "Ann@Acme.Example", "PASSWORD": PASSWORD},
        )
