"""Lambda tenant isolation mode in the tenant API: the invocation's tenant must be the authorizer's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from handlers import tenant_api
from handlers.contract import TENANT_ISOLATION_MODE, Env
from tests.handlers.tenant_fixtures import (
    ACME,
    ACME_CORP,
    LambdaContextStub,
    TenantApi,
    api_event,
    running_tenant_api,
)


@dataclass
class TenantContext(LambdaContextStub):
    """The Lambda context as the Python runtime gives it in tenant isolation mode."""

    tenant_id: str | None = None


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantApi]:
    with running_tenant_api(monkeypatch) as running:
        yield running


def invoke(event: dict[str, Any], tenant_id: str | None) -> dict[str, Any]:
    response: dict[str, Any] = tenant_api.lambda_handler(event, TenantContext(tenant_id=tenant_id))  # type: ignore[arg-type]
    return response


def records(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def isolation_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(Env.TENANT_ISOLATION, TENANT_ISOLATION_MODE)


def test_an_invocation_for_the_authorizers_tenant_is_served(api: TenantApi, isolation_on: None) -> None:
    # GIVEN the fixture event, whose client header claims globex while the authorizer says acme
    event = api_event("post_counter", ACME)
    assert event["headers"]["X-Tenant-Id"] == "globex"
    # WHEN Lambda runs it in acme's environment THEN it is served for acme
    answer = invoke(event, "acme")
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["tenant_id"] == "acme"


@pytest.mark.parametrize("invoked_as", [None, "", "acme-corp", "globex"])
def test_an_invocation_for_another_or_no_tenant_is_refused_logged_and_counted(
    api: TenantApi,
    isolation_on: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    invoked_as: str | None,
) -> None:
    # GIVEN isolation mode, an acme request invoked in another tenant's environment (or in none)
    answer = invoke(api_event("post_counter", ACME), invoked_as)
    # THEN a 500 with the request id, not served: acme's counter never moved
    assert answer["statusCode"] == 500
    body = json.loads(answer["body"])
    assert "wrong tenant's compute" in body["message"]
    assert body["request_id"] == "req-0001"
    counted = invoke(api_event("post_counter", ACME), "acme")
    assert json.loads(counted["body"])["counter"] == 1
    # AND an error log line saying why, and a TenantMismatch metric
    [logged] = [r for r in caplog.records if r.getMessage() == "request refused: tenant isolation mismatch"]
    assert logged.levelname == "ERROR"
    assert "tenant id" in str(getattr(logged, "problem", ""))
    output = records(capsys.readouterr().out)
    assert [r["TenantMismatch"] for r in output if "TenantMismatch" in r] == [[1.0]]


def test_without_isolation_mode_a_foreign_tenant_id_is_refused_and_none_is_fine(api: TenantApi) -> None:
    assert invoke(api_event("post_counter", ACME), None)["statusCode"] == 200
    assert invoke(api_event("post_counter", ACME), "acme")["statusCode"] == 200
    assert invoke(api_event("post_counter", ACME), "acme-corp")["statusCode"] == 500
    assert api.count(ACME_CORP).body["counter"] == 1
