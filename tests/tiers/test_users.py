"""A tenant's users: created in Cognito with the tenant attribute, only for tenants in the tier file."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import jwt
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from handlers.contract import TENANT_ATTRIBUTE, TENANT_CLAIM
from tests.tiers.conftest import VALID
from tiers.cli import main
from tiers.loader import parse_catalog
from tiers.users import UserError, add_user, cognito_client, disable_user, list_users

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
TIERS = VALID + "  globex:\n    tier: basic\n    suspended: true\n"
PASSWORD = "Correct-Horse-9-battery"


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv(  # the CLI must not pick up a pool id from the caller's shell
        "TENANT_TIERS_USER_POOL_ID", raising=False
    )


@pytest.fixture
def cognito(aws_env):
    with mock_aws():
        yield boto3.client("cognito-idp", region_name=REGION)


@pytest.fixture
def pool_id(cognito):
    pool = cognito.create_user_pool(
        PoolName="tenant-tiers-test",
        Schema=[{"Name": TENANT_ATTRIBUTE, "AttributeDataType": "String", "Mutable": False}],
    )
    return pool["UserPool"]["Id"]


@pytest.fixture
def app_client_id(cognito, pool_id):
    client = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )
    return client["UserPoolClient"]["ClientId"]


@pytest.fixture
def catalog():
    return parse_catalog(TIERS, "tiers.yaml")


@pytest.fixture
def tier_file(tmp_path):
    path = tmp_path / "tiers.yaml"
    path.write_text(TIERS)
    return str(path)


def attributes_of(cognito, pool_id, username):
    user = cognito.admin_get_user(UserPoolId=pool_id, Username=username)
    return {item["Name"]: item["Value"] for item in user["UserAttributes"]}, user


def test_add_creates_a_user_carrying_the_tenant(cognito, pool_id, catalog):
    # WHEN a user is added to tenant acme
    user = add_user(cognito, pool_id, catalog, "acme", "Ann@Example.com")
    # THEN Cognito holds it under the email, with the tenant attribute and a verified email
    attributes, raw = attributes_of(cognito, pool_id, "ann@example.com")
    assert attributes[TENANT_CLAIM] == "acme"
    assert attributes["email"] == "ann@example.com"
    assert attributes["email_verified"] == "true"
    # AND without a password Cognito's invitation flow applies: the user must change a temporary one
    assert raw["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert (user.email, user.tenant_id, user.enabled) == ("ann@example.com", "acme", True)


def test_a_user_added_with_a_password_can_sign_in_and_gets_the_tenant_in_the_id_token(
    cognito, pool_id, app_client_id, catalog
):
    # GIVEN a user added with a password
    add_user(cognito, pool_id, catalog, "acme", "bob@example.com", password=PASSWORD)
    # WHEN they sign in with it
    result = cognito.initiate_auth(
        ClientId=app_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "bob@example.com", "PASSWORD": PASSWORD},
    )
    # THEN they get tokens at once, and the ID token carries their tenant
    claims = jwt.decode(result["AuthenticationResult"]["IdToken"], options={"verify_signature": False})
    assert claims[TENANT_CLAIM] == "acme"
    assert attributes_of(cognito, pool_id, "bob@example.com")[1]["UserStatus"] == "CONFIRMED"


def test_add_refuses_a_tenant_not_in_the_tier_file(cognito, pool_id, catalog):
    # WHEN a user is added to a tenant the tier file does not list
    with pytest.raises(UserError) as raised:
        add_user(cognito, pool_id, catalog, "initech", "eve@example.com", tiers_file="tiers/dev.yaml")
    # THEN it is refused, naming the file, its tenants and the fix, and no user is created
    assert str(raised.value) == (
        "tenant 'initech' is not in tiers/dev.yaml (tenants there: acme, globex). Check the spelling, or add "
        "the tenant under `tenants:` and deploy it (`pulumi up`) before adding its users."
    )
    assert cognito.list_users(UserPoolId=pool_id)["Users"] == []


def test_list_shows_every_user_or_one_tenants(cognito, pool_id, catalog):
    # GIVEN users of two tenants
    add_user(cognito, pool_id, catalog, "acme", "a1@example.com")
    add_user(cognito, pool_id, catalog, "globex", "g1@example.com")
    add_user(cognito, pool_id, catalog, "acme", "a2@example.com")
    # THEN listing a tenant shows only its users; listing all shows everyone
    assert sorted(user.email for user in list_users(cognito, pool_id, "acme")) == [
        "a1@example.com",
        "a2@example.com",
    ]
    assert [user.tenant_id for user in list_users(cognito, pool_id, "globex")] == ["globex"]
    assert len(list_users(cognito, pool_id)) == 3


def test_disable_stops_sign_in(cognito, pool_id, app_client_id, catalog):
    # GIVEN a user who can sign in
    add_user(cognito, pool_id, catalog, "acme", "carl@example.com", password=PASSWORD)
    # WHEN disabled
    disable_user(cognito, pool_id, "carl@example.com")
    # THEN Cognito marks them disabled and refuses their password
    assert attributes_of(cognito, pool_id, "carl@example.com")[1]["Enabled"] is False
    assert [user.enabled for user in list_users(cognito, pool_id, "acme")] == [False]
    with pytest.raises(cognito.exceptions.NotAuthorizedException):
        cognito.initiate_auth(
            ClientId=app_client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "carl@example.com", "PASSWORD": PASSWORD},
        )


def test_aws_refusals_become_one_line_errors(cognito, pool_id, catalog):
    add_user(cognito, pool_id, catalog, "acme", "dup@example.com")
    with pytest.raises(UserError, match=re.escape("user 'dup@example.com' already exists in the pool")):
        add_user(cognito, pool_id, catalog, "acme", "dup@example.com")
    with pytest.raises(UserError, match=re.escape("no user 'ghost@example.com' in the pool")):
        disable_user(cognito, pool_id, "ghost@example.com")
    with pytest.raises(UserError, match=r"user pool 'eu-west-1_nope' not found .*--user-pool-id"):
        list_users(cognito, "eu-west-1_nope")


def test_an_address_that_is_not_an_email_is_refused_before_calling_aws(cognito, pool_id, catalog):
    with pytest.raises(UserError, match="'not-an-email' is not an email address"):
        add_user(cognito, pool_id, catalog, "acme", "not-an-email")


def test_an_unreachable_endpoint_is_one_clear_error(aws_env):
    # GIVEN an endpoint nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = cognito_client(region=REGION, endpoint_url=f"http://127.0.0.1:{port}")
    # THEN the failure names the endpoint and what to check
    with pytest.raises(UserError, match=rf"cannot reach http://127.0.0.1:{port}/.*--endpoint-url"):
        list_users(client, "eu-west-1_pool")


def test_missing_credentials_are_one_clear_error(monkeypatch, tmp_path):
    # GIVEN no credentials anywhere boto3 looks
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # THEN calling AWS fails with what to configure
    with pytest.raises(UserError, match="no AWS credentials found; configure them"):
        list_users(cognito_client(region=REGION), "eu-west-1_pool")


# The CLI


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_cli_add_list_disable(capsys, pool_id, tier_file, cognito):
    pool = ["--user-pool-id", pool_id, "--region", REGION]
    code, out, _ = run_cli(capsys, "users", "add", "acme", "dana@example.com", *pool, "--tiers", tier_file)
    assert (code, out) == (
        0,
        "created user dana@example.com for tenant acme "
        "(Cognito emails them an invitation with a temporary password).\n",
    )
    code, out, _ = run_cli(capsys, "users", "list", "acme", *pool)
    assert code == 0
    assert out.splitlines()[1].split() == ["dana@example.com", "acme", "FORCE_CHANGE_PASSWORD", "yes"]
    code, out, _ = run_cli(capsys, "users", "disable", "dana@example.com", *pool)
    assert code == 0
    assert out.startswith("disabled user dana@example.com")
    assert run_cli(capsys, "users", "list", "globex", *pool)[1] == "no users of tenant globex in the pool.\n"


def test_cli_add_to_a_suspended_tenant_warns(capsys, pool_id, tier_file):
    args = [
        "globex",
        "g@example.com",
        "--password",
        PASSWORD,
        "--user-pool-id",
        pool_id,
        "--tiers",
        tier_file,
    ]
    code, out, _ = run_cli(capsys, "users", "add", *args)
    assert code == 0
    assert "(the password is set; they can sign in now)" in out
    assert "note: tenant globex is suspended" in out


def test_cli_pool_id_from_the_environment(capsys, monkeypatch, pool_id, tier_file):
    monkeypatch.setenv("TENANT_TIERS_USER_POOL_ID", pool_id)
    assert run_cli(capsys, "users", "add", "acme", "env@example.com", "--tiers", tier_file)[0] == 0


def test_cli_add_checks_the_tier_file_first(capsys, pool_id, tmp_path, cognito):
    # GIVEN a broken tier file
    broken = tmp_path / "broken.yaml"
    broken.write_text(VALID.replace("tier: basic", "tier: gold"))
    # WHEN adding a user with it
    code, out, err = run_cli(
        capsys, "users", "add", "acme", "x@example.com", "--user-pool-id", pool_id, "--tiers", str(broken)
    )
    # THEN the tier file's problems are printed, exit 1, and no user is created
    assert (code, out) == (1, "")
    assert f"{broken}:8: tenants.acme.tier: unknown tier 'gold'" in err
    assert cognito.list_users(UserPoolId=pool_id)["Users"] == []


def test_cli_errors_are_one_line_and_exit_1(capsys, pool_id, tier_file):
    code, out, err = run_cli(
        capsys, "users", "add", "nobody", "x@example.com", "--user-pool-id", pool_id, "--tiers", tier_file
    )
    assert (code, out) == (1, "")
    assert err.startswith("error: tenant 'nobody' is not in ")
    assert err.count("\n") == 1
    code, _, err = run_cli(capsys, "users", "list", "--user-pool-id", "eu-west-1_missing", "--region", REGION)
    assert code == 1
    assert err.startswith("error: user pool 'eu-west-1_missing' not found")


def test_cli_without_a_pool_id_is_a_usage_error(capsys, aws_env):
    with pytest.raises(SystemExit) as raised:
        main(["users", "list"])
    assert raised.value.code == 2
    assert "--user-pool-id" in capsys.readouterr().err


def test_python_m_tiers_users_against_a_local_endpoint_without_credentials(tmp_path, tier_file):
    # GIVEN an AWS emulator on a local port (as the local stack runs) and a shell with no AWS credentials
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        setup = boto3.client(
            "cognito-idp",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        pool = setup.create_user_pool(PoolName="local")["UserPool"]["Id"]
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AWS_") and key != "TENANT_TIERS_USER_POOL_ID"
        }
        env |= {
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "TENANT_TIERS_USER_POOL_ID": pool,
        }
        common = ["--endpoint-url", endpoint, "--region", REGION]

        def tiers_cli(*args):
            return subprocess.run(
                [sys.executable, "-m", "tiers", "users", *args, *common],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        # WHEN a user is added and listed through the CLI
        added = tiers_cli("add", "acme", "local@example.com", "--password", PASSWORD, "--tiers", tier_file)
        listed = tiers_cli("list", "acme")
    finally:
        server.stop()
    # THEN both work against the emulator
    assert (added.returncode, added.stderr) == (0, "")
    assert (listed.returncode, listed.stderr) == (0, "")
    assert listed.stdout.splitlines()[1].split() == ["local@example.com", "acme", "CONFIRMED", "yes"]
