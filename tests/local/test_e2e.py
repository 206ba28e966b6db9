"""End to end over HTTP: `python -m local up` with the real handlers, on a tier file written here."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from local.client import id_token
from local.settings import DUMMY_CREDENTIALS
from tests.local.conftest import StackProcess, call_api, run_local, running_stack

TIERS = textwrap.dedent(
    """\
    tiers:
      roomy:
        isolation: pooled
        throttle: {rate: 100, burst: 100}
        quota: {limit: 100000, period: MONTH}
      vault:
        isolation: silo
        throttle: {rate: 50, burst: 60}
        quota: {limit: 50000, period: WEEK, offset: 1}
      tight:
        isolation: pooled
        throttle: {rate: 2, burst: 3}
        quota: {limit: 1000, period: DAY}
      capped:
        isolation: pooled
        throttle: {rate: 20, burst: 20}
        quota: {limit: 5, period: DAY}
    tenants:
      pooled-one: {tier: roomy, name: Pooled One}
      pooled-two: {tier: roomy, name: Pooled Two}
      silo-one: {tier: vault, name: Silo One}
      bursty: {tier: tight, name: Bursty}
      capped-one: {tier: capped, name: Capped}
      frozen: {tier: roomy, name: Frozen, suspended: true}
    """
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    workdir = tmp_path_factory.mktemp("e2e")
    tiers_file = workdir / "tiers.yaml"
    tiers_file.write_text(TIERS)
    with running_stack(tiers_file, workdir) as running:
        yield running
    # THEN nothing the stack did along the way ended in a traceback
    assert "Traceback" not in running.output()


@pytest.fixture(scope="module")
def tokens(stack: StackProcess) -> dict[str, str]:
    """Each tenant's ID token, through the code path of `python -m local token`."""
    names = ("pooled-one", "pooled-two", "silo-one", "bursty", "capped-one", "frozen")
    return {tenant: id_token(tenant, stack.port) for tenant in names}


def test_every_route_works_for_a_signed_in_tenant(stack, tokens):
    token, port = tokens["pooled-one"], stack.port
    tenant = call_api(port, "GET", "/tenant", token)
    assert tenant.status == 200
    assert tenant.json() == {
        "tenant_id": "pooled-one",
        "tier": "roomy",
        "isolation": "pooled",
        "limits": {
            "throttle": {"rate": 100, "burst": 100},
            "quota": {"limit": 100000, "period": "MONTH", "offset": 0},
        },
    }
    assert call_api(port, "POST", "/counter", token).json()["counter"] == 1
    assert call_api(port, "POST", "/counter", token).json()["counter"] == 2
    assert call_api(port, "PUT", "/items/note", token, {"text": "hello"}).status == 201
    assert call_api(port, "PUT", "/items/note", token, {"text": "hello again"}).status == 200
    fetched = call_api(port, "GET", "/items/note", token)
    assert (fetched.status, fetched.json()["value"]) == (200, {"text": "hello again"})
    listed = call_api(port, "GET", "/items", token).json()
    assert [item["id"] for item in listed["items"]] == ["note"]
    assert call_api(port, "DELETE", "/items/note", token).status == 204
    assert call_api(port, "GET", "/items/note", token).status == 404


def test_tenants_of_different_tiers_see_only_their_own_data(stack, tokens):
    port = stack.port
    owners = ("pooled-two", "silo-one")
    # GIVEN two tenants, pooled and silo, writing the same item id and counting
    for owner in owners:
        assert call_api(port, "PUT", "/items/shared-id", tokens[owner], {"owner": owner}).status == 201
        call_api(port, "POST", "/counter", tokens[owner])
    call_api(port, "POST", "/counter", tokens["silo-one"])
    for owner in owners:
        # THEN each reads, lists and counts only its own
        assert call_api(port, "GET", "/items/shared-id", tokens[owner]).json()["value"] == {"owner": owner}
        listed = call_api(port, "GET", "/items", tokens[owner]).json()["items"]
        assert [item["value"] for item in listed] == [{"owner": owner}]
        assert call_api(port, "GET", "/tenant", tokens[owner]).json()["tenant_id"] == owner
    assert call_api(port, "POST", "/counter", tokens["pooled-two"]).json()["counter"] == 2
    assert call_api(port, "POST", "/counter", tokens["silo-one"]).json()["counter"] == 3
    # AND one tenant's pagination token does not page through another's items
    second = call_api(port, "PUT", "/items/second-id", tokens["pooled-two"], {"owner": "pooled-two"})
    assert second.status == 201
    first_page = call_api(port, "GET", "/items?limit=1", tokens["pooled-two"]).json()
    assert first_page["next"] is not None
    borrowed = call_api(port, "GET", f"/items?limit=1&next={first_page['next']}", tokens["silo-one"])
    assert borrowed.status == 400
    # AND a delete by one leaves the other's item alone
    assert call_api(port, "DELETE", "/items/shared-id", tokens["pooled-two"]).status == 204
    assert call_api(port, "GET", "/items/shared-id", tokens["silo-one"]).json()["value"] == {
        "owner": "silo-one"
    }


def test_concurrent_requests_of_several_tenants_are_all_served(stack, tokens):
    def count(tenant: str) -> int:
        answer = call_api(stack.port, "POST", "/counter", tokens[tenant])
        assert answer.status == 200, answer.body
        return int(answer.json()["counter"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        counters = list(pool.map(count, ["pooled-one", "silo-one"] * 10))
    # THEN each tenant's counter advanced by exactly its 10 increments, none lost or crossed
    after = {tenant: count(tenant) for tenant in ("pooled-one", "silo-one")}
    for tenant in after:
        seen = counters[0 if tenant == "pooled-one" else 1 :: 2]
        assert sorted(seen) == list(range(after[tenant] - 10, after[tenant]))


def test_a_burst_beyond_the_tiers_burst_is_throttled_and_recovers_at_its_rate(stack, tokens):
    token, port = tokens["bursty"], stack.port  # tier tight: rate 2/s, burst 3
    started = time.monotonic()
    answers = [call_api(port, "GET", "/tenant", token) for _ in range(8)]
    elapsed = time.monotonic() - started
    admitted = [answer for answer in answers if answer.status == 200]
    throttled = [answer for answer in answers if answer.status == 429]
    assert 3 <= len(admitted) <= 3 + 2 * elapsed
    assert len(admitted) + len(throttled) == 8
    assert all(answer.json() == {"message": "Too Many Requests"} for answer in throttled)
    # WHEN the tenant waits for two tokens at 2 per second
    time.sleep(1.05)
    started = time.monotonic()
    statuses = [call_api(port, "GET", "/tenant", token).status for _ in range(4)]
    elapsed = time.monotonic() - started
    # THEN two requests pass again, and not the whole burst
    assert statuses[:2] == [200, 200]
    assert 2 <= statuses.count(200) <= 2 + 2 * elapsed + 1


def test_a_quota_of_n_gives_n_successes_then_limit_exceeded(stack, tokens):
    token, port = tokens["capped-one"], stack.port  # tier capped: 5 a day
    statuses = [call_api(port, "GET", "/tenant", token).status for _ in range(5)]
    assert statuses == [200] * 5
    refused = call_api(port, "POST", "/counter", token)
    assert (refused.status, refused.json()) == (429, {"message": "Limit Exceeded"})
    # AND the usage command says so, in JSON and as a table
    report = run_local("usage", "--port", str(stack.port), "--json")
    assert report.returncode == 0, report.stderr
    usage = {entry["tenant_id"]: entry for entry in json.loads(report.stdout)["tenants"]}
    assert (usage["capped-one"]["used"], usage["capped-one"]["remaining"]) == (5, 0)
    assert usage["capped-one"]["quota"] == {"limit": 5, "period": "DAY", "offset": 0}
    assert usage["silo-one"]["quota"]["period"] == "WEEK"
    table = run_local("usage", "--port", str(stack.port))
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.startswith("capped-one"))
    assert row.split()[:6] == ["capped-one", "capped", "enabled", "5", "0", "5/DAY"]


def test_a_suspended_tenant_gets_403(stack, tokens):
    denied = call_api(stack.port, "GET", "/tenant", tokens["frozen"])
    assert denied.status == 403
    assert denied.json() == {
        "message": "User is not authorized to access this resource with an explicit deny"
    }


def _claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _moto_signing_key() -> Any:
    return jwt.algorithms.RSAAlgorithm.from_jwk(
        json.dumps(load_resource("cognitoidp/resources/jwks-private.json"))
    )


def _bad_tokens(stack: StackProcess, good: str) -> dict[str, str]:
    now = int(time.time())
    expired_claims = {**_claims_of(good), "iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600}
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    described = json.loads(call_api(stack.port, "GET", "/_local/stack").body)
    user = described["tenants"]["pooled-one"]["demo_user"]
    cognito = boto3.session.Session(region_name=described["region"], **DUMMY_CREDENTIALS).client(
        "cognito-idp", endpoint_url=described["moto_endpoint"]
    )
    signed_in = cognito.initiate_auth(
        ClientId=described["app_client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user["username"], "PASSWORD": user["password"]},
    )["AuthenticationResult"]
    return {
        "garbage": "not-a-jwt",
        "expired": jwt.encode(
            expired_claims, _moto_signing_key(), algorithm="RS256", headers={"kid": "dummy"}
        ),
        "wrong signature": jwt.encode(
            _claims_of(good), stranger_key, algorithm="RS256", headers={"kid": "dummy"}
        ),
        "access token": signed_in["AccessToken"],
        "tampered tenant": ".".join(
            [
                good.split(".")[0],
                jwt.utils.base64url_encode(
                    json.dumps({**_claims_of(good), "custom:tenant_id": "silo-one"}).encode()
                ).decode(),
                good.split(".")[2],
            ]
        ),
    }


def test_bad_tokens_get_401(stack, tokens):
    for name, bad in _bad_tokens(stack, tokens["pooled-one"]).items():
        answer = call_api(stack.port, "GET", "/items", bad)
        assert (name, answer.status, answer.json()) == (name, 401, {"message": "Unauthorized"})
    missing = call_api(stack.port, "GET", "/items")
    assert (missing.status, missing.json()) == (401, {"message": "Unauthorized"})
    not_bearer = call_api(stack.port, "GET", "/items", raw_authorization="Basic dXNlcjpwYXNz")
    assert not_bearer.status == 401


def test_unknown_routes_get_missing_authentication_token(stack, tokens):
    for method, path in (("GET", "/nothing"), ("POST", "/items"), ("PATCH", "/tenant")):
        answer = call_api(stack.port, method, path, tokens["pooled-one"])
        assert (answer.status, answer.json()) == (403, {"message": "Missing Authentication Token"})


def test_the_token_command_prints_a_working_token(stack):
    result = run_local("token", "pooled-two", "--port", str(stack.port))
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert _claims_of(token)["custom:tenant_id"] == "pooled-two"
    assert call_api(stack.port, "GET", "/tenant", token).json()["tenant_id"] == "pooled-two"


def test_the_token_command_names_an_unknown_tenant_in_one_line(stack):
    result = run_local("token", "nobody", "--port", str(stack.port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "unknown tenant 'nobody'" in result.stderr
    assert "pooled-one" in result.stderr


def test_the_client_commands_say_when_no_stack_runs(tmp_path: Path):
    from tests.local.conftest import free_port

    port = str(free_port())
    for command in (("token", "acme"), ("usage",)):
        result = run_local(*command, "--port", port)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert f"python -m local up --port {port}" in result.stderr
        assert "Traceback" not in result.stderr


def test_without_tenant_isolation_one_warm_instance_caches_every_tenant(stack, tokens):
    # GIVEN the stack without --lambda-tenant-isolation, and two tenants calling
    for tenant in ("pooled-one", "silo-one"):
        assert call_api(stack.port, "POST", "/counter", tokens[tenant]).status == 200
    # THEN one tenant API instance served both: its module-level client cache holds both tenants (what
    # tenant isolation mode prevents; tests/local/test_files_e2e.py shows the other side)
    instances = call_api(stack.port, "GET", "/_local/instances").json()
    assert instances["lambda_tenant_isolation"] is False
    [instance] = instances["instances"]
    assert {"pooled-one", "silo-one"} <= set(instance["cached_tenants"])
