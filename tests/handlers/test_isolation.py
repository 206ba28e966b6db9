"""Tenant isolation as a stateful property: random operations by several tenants against a model.

Tenants: acme and acme-corp share the pooled table (and one id is a prefix of the other), globex has its
own silo table. They use the same item ids on purpose. After every step, each tenant's view through the
API and the raw contents of every table must equal the model: no tenant ever reads, lists, overwrites,
deletes or counts another tenant's data.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from moto import mock_aws

from handlers import tenant_api
from handlers.contract import DATA_PARTITION_KEY, DATA_SORT_KEY
from tests.handlers.tenant_fixtures import (
    ACME,
    ACME_CORP,
    GLOBEX,
    NAMING,
    TenantApi,
    TenantSpec,
    set_aws_environment,
    start_tenant_api,
    table_contents,
)

TENANTS = (ACME, ACME_CORP, GLOBEX)
tenants = st.sampled_from(TENANTS)
item_ids = st.sampled_from(["a", "b", "acme", "acme-corp", "x.1"])
documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


class TenantIsolation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        self.previous_clients = tenant_api.data_clients
        self.api: TenantApi = start_tenant_api()
        tenant_api.data_clients = self.api.clients
        self.items: dict[str, dict[str, Any]] = {tenant.tenant_id: {} for tenant in TENANTS}
        self.counters: dict[str, int] = {tenant.tenant_id: 0 for tenant in TENANTS}

    def teardown(self) -> None:
        tenant_api.data_clients = self.previous_clients
        self.mock.stop()

    @rule(tenant=tenants, item_id=item_ids, value=documents)
    def put(self, tenant: TenantSpec, item_id: str, value: Any) -> None:
        # Every document names its writer, so a leak shows up as a foreign owner too.
        document = {"owner": tenant.tenant_id, "value": value}
        answer = self.api.put(tenant, item_id, json.dumps(document))
        assert answer.status == (200 if item_id in self.items[tenant.tenant_id] else 201)
        self.items[tenant.tenant_id][item_id] = document

    @rule(tenant=tenants, item_id=item_ids)
    def get(self, tenant: TenantSpec, item_id: str) -> None:
        answer = self.api.get(tenant, item_id)
        expected = self.items[tenant.tenant_id].get(item_id)
        if expected is None:
            assert answer.status == 404
        else:
            assert (answer.status, answer.body) == (200, {"id": item_id, "value": expected})

    @rule(tenant=tenants, item_id=item_ids)
    def delete(self, tenant: TenantSpec, item_id: str) -> None:
        assert self.api.delete(tenant, item_id).status == 204
        self.items[tenant.tenant_id].pop(item_id, None)

    @rule(tenant=tenants)
    def count(self, tenant: TenantSpec) -> None:
        self.counters[tenant.tenant_id] += 1
        answer = self.api.count(tenant)
        assert answer.body == {"tenant_id": tenant.tenant_id, "counter": self.counters[tenant.tenant_id]}

    @rule(tenant=tenants, limit=st.integers(min_value=1, max_value=3))
    def list_everything(self, tenant: TenantSpec, limit: int) -> None:
        listed = self.api.list_all(tenant, limit=limit)
        expected = [
            {"id": key, "value": value} for key, value in sorted(self.items[tenant.tenant_id].items())
        ]
        assert listed == expected

    @rule(owner=tenants, intruder=tenants)
    def list_with_another_tenants_token(self, owner: TenantSpec, intruder: TenantSpec) -> None:
        token = self.api.list_page(owner, limit="1").body["next"]
        if token is None or owner == intruder:
            return
        answer = self.api.list_page(intruder, limit="1", next=token)
        assert answer.status == 400

    @invariant()
    def tables_hold_exactly_the_model(self) -> None:
        stored: dict[str, dict[str, Any]] = {tenant.tenant_id: {} for tenant in TENANTS}
        counters: dict[str, int] = {tenant.tenant_id: 0 for tenant in TENANTS}
        for table in (NAMING.pooled_table, GLOBEX.table):
            for raw in table_contents(table, self.api.admin):
                tenant_id = raw[DATA_PARTITION_KEY]["S"]
                # a tenant's data lives only in the table the authorizer names for it
                assert next(t for t in TENANTS if t.tenant_id == tenant_id).table == table
                sort_key = raw[DATA_SORT_KEY]["S"]
                if sort_key == "counter":
                    counters[tenant_id] = int(raw["count"]["N"])
                else:
                    stored[tenant_id][sort_key.removeprefix("item#")] = json.loads(raw["doc"]["S"])
        assert stored == self.items
        assert counters == self.counters


def test_no_tenant_ever_sees_or_changes_another_tenants_data(monkeypatch: pytest.MonkeyPatch) -> None:
    set_aws_environment(monkeypatch.setenv)
    monkeypatch.setattr(tenant_api, "data_clients", tenant_api.data_clients)
    run_state_machine_as_test(
        TenantIsolation, settings=settings(max_examples=20, stateful_step_count=25, deadline=None)
    )
