"""Reloads of random edit sequences, in process on moto (``mock_aws``): what `python -m local reload` keeps.

GIVEN a stack provisioned from a tier file, WHEN it reloads a random sequence of edited files (tenants
added, removed, suspended, resumed, moved; a tier renamed with ``renamed_from``; limits changed), each time
with ``--unprotect`` for every silo table that leaves, THEN after every reload:

- the registry holds exactly the file's tenants, each item what the program would write, with its key;
- a tenant that stays keeps its API key, and its usage (every admitted request still counted);
- every key sits in exactly one plan, its tier's, with the tier's limits and the tenant's enabled state;
- a tier that stays or is renamed keeps its usage plan id;
- no table is ever deleted;
- a reload is refused only when a silo table to create exists already, and then nothing changed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from local.limits import Admission, UsagePlans
from local.management import ManagementApi
from local.provision import AwsClients, provision, registry_items
from local.reload import ReloadRefused, ReloadRequest, RunningStack, reload_stack, silo_tenants
from local.settings import NAMING, REGION
from tiers.loader import parse_catalog
from tiers.model import Catalog
from tiers.plan import StackNames

NAMES = StackNames(project=NAMING.project, stack=NAMING.stack, local_port=8080)
TENANT_IDS = ("acme", "globex", "hooli", "initech")
GOLD_THROTTLES = ({"rate": 5, "burst": 10}, {"rate": 50, "burst": 100})


class InProcessClients(AwsClients):
    """boto3 clients that ``mock_aws`` answers (it intercepts AWS's own endpoints only)."""

    def __init__(self) -> None:
        super().__init__("https://unused.invalid")

    def client(self, service: str) -> Any:
        return self.session.client(service)


@st.composite
def tier_files(draw: st.DrawFn) -> Catalog:
    """A valid tier file over a small universe: gold is sometimes renamed golden (and back)."""
    gold = draw(st.sampled_from(["gold", "golden"]))
    tiers = {
        "basic": {"isolation": "pooled", "throttle": {"rate": 10, "burst": 20}, "quota": _monthly(10_000)},
        gold: {
            "isolation": "pooled",
            "throttle": draw(st.sampled_from(GOLD_THROTTLES)),
            "quota": _monthly(draw(st.sampled_from([50_000, 60_000]))),
            "renamed_from": "golden" if gold == "gold" else "gold",
        },
        "vault": {"isolation": "silo", "throttle": {"rate": 50, "burst": 60}, "quota": _monthly(90_000)},
    }
    tenants = {
        tenant_id: {
            "tier": draw(st.sampled_from(["basic", gold, "vault"])),
            "name": tenant_id.title(),
            "suspended": draw(st.booleans()),
        }
        for tenant_id in TENANT_IDS
        if draw(st.booleans())
    }
    return parse_catalog(json.dumps({"tiers": tiers, "tenants": tenants}), "tiers.yaml")


def _monthly(limit: int) -> dict[str, Any]:
    return {"limit": limit, "period": "MONTH"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=tier_files(), edits=st.lists(tier_files(), min_size=1, max_size=5))
def test_reloads_of_any_edit_sequence_keep_keys_usage_plans_and_tables(
    aws: None, first: Catalog, edits: list[Catalog]
) -> None:
    with mock_aws():
        clients = InProcessClients()
        dynamodb = clients.client("dynamodb")
        provisioned = provision(first, NAMES.naming, clients)
        now = [1_800_000_000.0]
        plans = UsagePlans.from_catalog(
            first, {t: p.api_key for t, p in provisioned.tenants.items()}, lambda: now[0]
        )
        management = ManagementApi.from_catalog(first, NAMES.naming, plans, lambda: now[0])
        stack = RunningStack(first, provisioned, plans, management, dynamodb, NAMES, "tiers.yaml")
        admitted: dict[str, int] = {}

        for new in edits:
            # Each enabled tenant makes one request before the edit (an hour apart: buckets refill).
            now[0] += 3600
            for tenant_id, provisioned_tenant in stack.provisioned.tenants.items():
                if plans.admit(provisioned_tenant.api_key.value)[0] is Admission.ADMITTED:
                    admitted[tenant_id] = admitted.get(tenant_id, 0) + 1
            old = stack.catalog
            keys_before = {t: p.api_key for t, p in stack.provisioned.tenants.items()}
            plan_ids_before = management.plan_ids()
            tables_before = set(dynamodb.list_tables()["TableNames"])
            registry_before = _registry(dynamodb)
            leaving = silo_tenants(old) - silo_tenants(new)
            blocked = {
                tenant_id
                for tenant_id in silo_tenants(new) - silo_tenants(old)
                if NAMES.naming.silo_table(tenant_id) in tables_before
            }

            # WHEN the stack reloads the edit, unprotecting every silo table that leaves
            try:
                reload_stack(stack, new, ReloadRequest(unprotect=frozenset(leaving)))
            except ReloadRefused:
                # THEN a refusal has its one reason here, and nothing changed
                assert blocked
                assert stack.catalog is old
                assert _registry(dynamodb) == registry_before
                assert management.plan_ids() == plan_ids_before
                continue
            assert not blocked

            # THEN the registry is exactly what the program would write for the new file, with the keys
            tenants = stack.provisioned.tenants
            expected = registry_items(new, NAMES.naming, provisioned.buckets, tenants)
            assert _registry(dynamodb) == dict(expected.items())
            for tenant_id in tenants.keys() & keys_before.keys():
                assert tenants[tenant_id].api_key == keys_before[tenant_id]
            for tenant_id in keys_before.keys() - tenants.keys():
                admitted.pop(tenant_id, None)
            # ...each key is in its tier's plan, enabled unless suspended, its usage all counted
            usage = {entry.tenant_id: entry for entry in plans.usage()}
            assert usage.keys() == new.tenants.keys()
            for tenant_id, tenant in new.tenants.items():
                entry = usage[tenant_id]
                tier = new.tier_of(tenant)
                assert (entry.tier, entry.enabled) == (tier.name, not tenant.suspended)
                assert (entry.throttle, entry.quota) == (tier.throttle, tier.quota)
                assert entry.used == admitted.get(tenant_id, 0)
            assert sorted(management.plan_ids()) == sorted(new.tiers)
            for tier in new.tiers.values():
                renamed = tier.renamed_from if tier.renamed_from not in new.tiers else None
                source = tier.name if tier.name in old.tiers else renamed
                if source in plan_ids_before:
                    assert management.plan_ids()[tier.name] == plan_ids_before[source]
            # ...and no table went away; every silo tenant has its table
            tables = set(dynamodb.list_tables()["TableNames"])
            assert tables_before <= tables
            assert {NAMES.naming.silo_table(t) for t in silo_tenants(new)} <= tables


def _registry(dynamodb: Any) -> dict[str, Any]:
    items = dynamodb.scan(TableName=NAMES.naming.registry_table)["Items"]
    return {item["tenant_id"]["S"]: item for item in items}


ONE_PER_SECOND = {"rate": 1, "burst": 1}


class FailingBatches:
    """The stack's DynamoDB client, but BatchWriteItem fails once after ``good`` calls (then works again)."""

    def __init__(self, client: Any, good: int) -> None:
        self._client = client
        self._good = good
        self.failed = False

    def batch_write_item(self, **request: Any) -> Any:
        if not self.failed and self._good == 0:
            self.failed = True
            raise ConnectionError("the emulator went away mid-reload")
        self._good -= 1
        return self._client.batch_write_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_reload_that_fails_midway_puts_everything_back(aws: None) -> None:
    # GIVEN a stack of 30 pooled tenants
    first = parse_catalog(
        json.dumps(
            {
                "tiers": {
                    "basic": {
                        "isolation": "pooled",
                        "throttle": {"rate": 1, "burst": 1},
                        "quota": _monthly(9),
                    },
                    "vault": {"isolation": "silo", "throttle": {"rate": 1, "burst": 1}, "quota": _monthly(9)},
                },
                "tenants": {f"t{i}": {"tier": "basic"} for i in range(30)},
            }
        ),
        "tiers.yaml",
    )
    with mock_aws():
        clients = InProcessClients()
        dynamodb = clients.client("dynamodb")
        provisioned = provision(first, NAMES.naming, clients)
        plans = UsagePlans.from_catalog(
            first, {t: p.api_key for t, p in provisioned.tenants.items()}, time.time
        )
        management = ManagementApi.from_catalog(first, NAMES.naming, plans, time.time)
        failing = FailingBatches(dynamodb, good=1)
        stack = RunningStack(first, provisioned, plans, management, failing, NAMES, "tiers.yaml")
        registry_before = _registry(dynamodb)
        tables_before = set(dynamodb.list_tables()["TableNames"])
        # WHEN an edit that rewrites every item and adds a silo tenant fails on its second registry batch
        tenants = {f"t{i}": {"tier": "basic", "suspended": True} for i in range(30)}
        edited = parse_catalog(
            json.dumps({"tiers": _tiers_of(first), "tenants": {**tenants, "new": {"tier": "vault"}}}),
            "tiers.yaml",
        )
        with pytest.raises(ConnectionError):
            reload_stack(stack, edited, ReloadRequest())
        # THEN the registry, the tables, the keys and the stack's catalog are as before
        assert failing.failed
        assert _registry(dynamodb) == registry_before
        assert set(dynamodb.list_tables()["TableNames"]) == tables_before
        assert stack.catalog is first
        assert all(entry.enabled for entry in plans.usage())


def _tiers_of(catalog: Catalog) -> dict[str, Any]:
    return {
        tier.name: {
            "isolation": tier.isolation.value,
            "throttle": {"rate": tier.throttle.rate, "burst": tier.throttle.burst},
            "quota": {"limit": tier.quota.limit, "period": tier.quota.period.value},
        }
        for tier in catalog.tiers.values()
    }
