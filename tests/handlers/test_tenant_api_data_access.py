"""The tenant API's data access: STS credentials per tenant (cached, refreshed, thread-safe) and paging."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from handlers.contract import TENANT_SESSION_TAG, Env
from handlers.tenant_data import CREDENTIAL_REFRESH_MARGIN_SECONDS, TenantClients
from tests.handlers.tenant_fixtures import (
    ACME,
    ACME_CORP,
    DATA_ROLE_ARN,
    GLOBEX,
    REGION,
    TenantApi,
    running_tenant_api,
)

REPO = Path(__file__).resolve().parents[2]


class AssumeRoleLog:
    """Records every AssumeRole request made through a boto3 session."""

    def __init__(self, session: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        session.events.register("before-parameter-build.sts.AssumeRole", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls.append(params)

    def tags(self) -> list[str]:
        return [call["Tags"][0]["Value"] for call in self.calls]


@pytest.fixture
def session() -> Any:
    return boto3.session.Session(region_name=REGION)


@pytest.fixture
def assume_log(session: Any) -> AssumeRoleLog:
    return AssumeRoleLog(session)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, session: Any, assume_log: AssumeRoleLog) -> Iterator[TenantApi]:
    with running_tenant_api(monkeypatch, session) as running:
        yield running


def test_each_tenant_assumes_the_data_role_once_with_its_own_tag(
    api: TenantApi, assume_log: AssumeRoleLog
) -> None:
    # GIVEN three tenants making several data requests each
    for _ in range(3):
        for tenant in (ACME, ACME_CORP, GLOBEX):
            api.count(tenant)

    # THEN each tenant's credentials were fetched once, tagged with exactly its id
    assert sorted(assume_log.tags()) == ["acme", "acme-corp", "globex"]
    for call in assume_log.calls:
        assert call["RoleArn"] == DATA_ROLE_ARN
        assert call["Tags"] == [{"Key": TENANT_SESSION_TAG, "Value": call["Tags"][0]["Value"]}]
        assert call["RoleSessionName"] == f"tenant-{call['Tags'][0]['Value']}"


def test_credentials_are_refreshed_shortly_before_they_expire(
    api: TenantApi, session: Any, assume_log: AssumeRoleLog
) -> None:
    # GIVEN a client cache with a controllable clock, and acme's credentials fetched now
    now = [time.time()]
    clients = TenantClients(role_arn=DATA_ROLE_ARN, session=session, clock=lambda: now[0])
    first = clients.client_for("acme")
    expiry = now[0] + 3600  # AssumeRole's DurationSeconds

    # WHEN time moves to just outside, then just inside, the refresh margin
    now[0] = expiry - CREDENTIAL_REFRESH_MARGIN_SECONDS - 5
    still = clients.client_for("acme")
    now[0] = expiry - CREDENTIAL_REFRESH_MARGIN_SECONDS + 5
    renewed = clients.client_for("acme")

    # THEN the cached client is kept until the margin and replaced inside it
    assert still is first
    assert renewed is not first
    assert assume_log.tags() == ["acme", "acme"]


def test_concurrent_requests_of_one_tenant_fetch_credentials_once(
    api: TenantApi, session: Any, assume_log: AssumeRoleLog
) -> None:
    # GIVEN a cold cache and eight threads per tenant asking at the same moment
    clients = TenantClients(role_arn=DATA_ROLE_ARN, session=session)
    start = threading.Barrier(16)
    got: dict[str, list[object]] = {"acme": [], "globex": []}

    def ask(tenant_id: str) -> None:
        start.wait()
        got[tenant_id].append(clients.client_for(tenant_id))

    threads = [
        threading.Thread(target=ask, args=(tenant,)) for tenant in ("acme", "globex") for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN each tenant's role was assumed once and every thread got that tenant's one client
    assert sorted(assume_log.tags()) == ["acme", "globex"]
    assert all(len({id(client) for client in clients_of}) == 1 for clients_of in got.values())
    assert got["acme"][0] is not got["globex"][0]


def test_the_cache_holds_a_bounded_number_of_tenants(
    api: TenantApi, session: Any, assume_log: AssumeRoleLog
) -> None:
    # GIVEN a cache of two tenants
    clients = TenantClients(role_arn=DATA_ROLE_ARN, session=session, max_tenants=2)
    # WHEN three tenants take turns, then the least recently used one comes back
    for tenant_id in ("acme", "acme-corp", "acme", "globex", "acme-corp"):
        clients.client_for(tenant_id)
    # THEN acme-corp had been evicted by globex and was fetched again; acme stayed cached until then
    assert assume_log.tags() == ["acme", "acme-corp", "globex", "acme-corp"]
    assert clients.cached_tenants() == ["globex", "acme-corp"]


def test_concurrent_lambda_invocations_keep_tenants_apart(api: TenantApi) -> None:
    # GIVEN the local stack's way of calling the handler: several threads at once, several tenants
    tenants = (ACME, ACME_CORP, GLOBEX)
    start = threading.Barrier(len(tenants) * 4)

    def work(index: int) -> None:
        tenant = tenants[index % len(tenants)]
        start.wait()
        for n in range(5):
            assert api.put(tenant, f"t{index}-{n}", json.dumps(tenant.tenant_id)).status == 201

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(tenants) * 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every tenant lists exactly its own 20 items, each holding its own id
    for tenant in tenants:
        items = api.list_all(tenant, limit=100)
        assert len(items) == 20
        assert {item["value"] for item in items} == {tenant.tenant_id}


def test_a_page_stops_at_the_document_budget_and_resumes_where_it_stopped(api: TenantApi) -> None:
    # GIVEN six 100-byte documents and a 250-byte budget per page
    table = api.clients.table("acme", ACME.table)
    for n in range(6):
        table.put(f"i{n}", json.dumps("x" * 98))

    # WHEN pages of up to 100 items are read
    pages = []
    after = None
    while True:
        page = table.list_items(100, after, max_document_bytes=250)
        pages.append([item.item_id for item in page.items])
        after = page.resume_after
        if after is None:
            break

    # THEN each page holds what fits (at least one item) and every item is seen once
    assert pages == [["i0", "i1"], ["i2", "i3"], ["i4", "i5"]]


def test_importing_the_handler_is_light() -> None:
    # GIVEN a fresh interpreter
    # WHEN it imports the tenant API handler
    script = (
        "import sys, handlers.tenant_api; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'tiers', 'infra', 'local'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    # THEN neither boto3 (most of a cold start; loaded on the first data request) nor the program's
    # packages are imported
    assert loaded == "[]"


def test_a_changed_environment_drops_every_cached_client(
    api: TenantApi, session: Any, assume_log: AssumeRoleLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN clients configured from the environment (as in Lambda and the local stack), acme's cached
    clients = TenantClients(session=session)
    first = clients.client_for("acme")
    assert clients.client_for("acme") is first

    # WHEN the environment points at another data role (the local stack restarted within the process)
    other_role = DATA_ROLE_ARN + "-v2"
    monkeypatch.setenv(Env.TENANT_DATA_ROLE_ARN, other_role)
    second = clients.client_for("acme")

    # THEN acme's credentials are fetched again, from the new role
    assert second is not first
    assert [call["RoleArn"] for call in assume_log.calls] == [DATA_ROLE_ARN, other_role]
