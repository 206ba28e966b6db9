"""Invariants of the program over random tier catalogs (hypothesis), each evaluated under mocks."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.contract import TENANT_ID_PATTERN
from tests.infra.conftest import TENANTS, TIERS, write_tier_file
from tests.infra.harness import (
    API_KEY,
    BUCKET,
    TABLE,
    TABLE_ITEM,
    USAGE_PLAN,
    USAGE_PLAN_KEY,
    ProgramRun,
    run_program,
)

PER_TENANT_PREFIXES = ("tenants-key-", "tenants-plan-key-", "tenants-registry-", "storage-silo-")
PER_TIER_RESOURCES = 3
"""Its usage plan and its two alarms (5xx share, 429 share)."""
# A silo tenant's bucket and its settings: storage-silo-bucket-<tenant id><suffix>.
SILO_BUCKET_PREFIX = "storage-silo-bucket-"
SILO_BUCKET_SUFFIXES = ("-public-access", "-encryption", "-versioning", "-tls-only", "")


def owner_of(name: str, tenants: Any) -> str | None:
    """The tenant a per-tenant resource belongs to, from its logical name alone."""
    if name.startswith(SILO_BUCKET_PREFIX):
        rest = name.removeprefix(SILO_BUCKET_PREFIX)
        for suffix in SILO_BUCKET_SUFFIXES:
            if rest.endswith(suffix) and rest.removesuffix(suffix) in tenants:
                return rest.removesuffix(suffix)
    for prefix in PER_TENANT_PREFIXES:
        if name.startswith(prefix) and name.removeprefix(prefix) in tenants:
            return name.removeprefix(prefix)
    return None


ids = st.from_regex(TENANT_ID_PATTERN, fullmatch=True).filter(lambda value: len(value) <= 12)


@st.composite
def tier_files(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    # A tier named key-* would give its plan the logical name of a plan key (a different type, so no clash
    # in Pulumi, but it would blur the per-tenant count below).
    tier_names = draw(
        st.lists(ids.filter(lambda name: not name.startswith("key-")), min_size=1, max_size=4, unique=True)
    )
    tiers = {}
    for name in tier_names:
        rate = draw(st.integers(min_value=1, max_value=1000))
        tiers[name] = {
            "isolation": draw(st.sampled_from(["pooled", "silo"])),
            "throttle": {"rate": rate, "burst": draw(st.integers(min_value=rate, max_value=2 * rate))},
            "quota": {
                "limit": draw(st.integers(min_value=1, max_value=10_000_000)),
                "period": draw(st.sampled_from(["DAY", "WEEK", "MONTH"])),
            },
        }
    tenant_ids = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    tenants = {
        tenant_id: {
            "tier": draw(st.sampled_from(tier_names)),
            "name": f"Tenant {tenant_id}",
            "suspended": draw(st.booleans()),
        }
        for tenant_id in tenant_ids
    }
    return tiers, tenants


def shared_resource_count(run: ProgramRun, tier_count: int) -> int:
    """Resources that belong to no tenant and no tier: they must not grow with the catalog."""
    per_tenant = [resource for resource in run.resources if resource.name.startswith(PER_TENANT_PREFIXES)]
    return len(run.resources) - len(per_tenant) - tier_count * PER_TIER_RESOURCES


def test_shared_resources_do_not_depend_on_the_catalog(tmp_path: Path) -> None:
    small = run_program(
        write_tier_file(
            tmp_path / "small.yaml", {"basic": TIERS["basic"]}, {"a": {"tier": "basic", "name": "A"}}
        )
    )
    full = run_program(write_tier_file(tmp_path / "full.yaml", TIERS, TENANTS))
    assert shared_resource_count(small, 1) == shared_resource_count(full, len(TIERS))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tier_files())
def test_program_invariants_hold_for_any_valid_catalog(
    catalog: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    tiers, tenants = catalog
    with tempfile.TemporaryDirectory() as directory:
        run = run_program(write_tier_file(Path(directory) / "tiers.yaml", tiers, tenants))
    silo = {
        tenant_id for tenant_id, tenant in tenants.items() if tiers[tenant["tier"]]["isolation"] == "silo"
    }

    # One plan per tier.
    plans = {plan.name: plan for plan in run.of_type(USAGE_PLAN)}
    assert set(plans) == {f"tenants-plan-{tier}" for tier in tiers}

    # One key and one plan key per tenant, on its own tier's plan; suspended keys disabled.
    keys = {key.name: key for key in run.of_type(API_KEY)}
    plan_keys = {plan_key.name: plan_key for plan_key in run.of_type(USAGE_PLAN_KEY)}
    assert set(keys) == {f"tenants-key-{tenant_id}" for tenant_id in tenants}
    assert set(plan_keys) == {f"tenants-plan-key-{tenant_id}" for tenant_id in tenants}
    for tenant_id, tenant in tenants.items():
        plan_key = plan_keys[f"tenants-plan-key-{tenant_id}"]
        assert plan_key.inputs["usagePlanId"] == plans[f"tenants-plan-{tenant['tier']}"].id
        assert plan_key.inputs["keyId"] == keys[f"tenants-key-{tenant_id}"].id
        assert plan_key.delete_before_replace
        assert keys[f"tenants-key-{tenant_id}"].inputs["enabled"] is not tenant["suspended"]

    # Silo tables exactly for silo tenants; every table protected and retained.
    tables = run.of_type(TABLE)
    assert {table.name for table in tables if table.name.startswith("storage-silo-")} == {
        f"storage-silo-{tenant_id}" for tenant_id in silo
    }
    assert all(table.protect and table.retain_on_delete for table in tables)

    # A registry item per tenant, secret.
    items = run.of_type(TABLE_ITEM)
    assert {item.name for item in items} == {f"tenants-registry-{tenant_id}" for tenant_id in tenants}
    assert all("item" in item.secret_inputs for item in items)

    # Silo buckets exactly for silo tenants; every bucket and its settings protected and retained.
    buckets = run.of_type(BUCKET)
    assert {bucket.name for bucket in buckets} == {"storage-pooled-bucket"} | {
        f"storage-silo-bucket-{tenant_id}" for tenant_id in silo
    }
    assert all(
        resource.protect and resource.retain_on_delete
        for resource in run.resources
        if resource.name.startswith(("storage-pooled-bucket", SILO_BUCKET_PREFIX))
    )

    # 3 resources per pooled tenant, 9 per silo tenant (table, bucket and its four settings), each named
    # after its tenant id only.
    owners = Counter(owner_of(resource.name, tenants) for resource in run.resources)
    owners.pop(None, None)
    per_tenant = [resource for resource in run.resources if resource.name.startswith(PER_TENANT_PREFIXES)]
    assert sum(owners.values()) == len(per_tenant)
    assert owners == {tenant_id: 9 if tenant_id in silo else 3 for tenant_id in tenants}
