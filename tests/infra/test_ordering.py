"""The order AWS sees: plan associations in a few chains, a registry item only after its association.

Pulumi runs a step only after the steps of everything it depends on; a registry item
that the authorizer reads before the tenant's key is in a usage plan would make API
Gateway answer 403 for a tenant it has just onboarded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.rates import PLAN_KEY_LANES, SECONDS_PER_ASSOCIATION_UNDER_LOAD, first_deploy_floor_seconds
from tests.infra.conftest import TENANTS, TIERS, write_tier_file
from tests.infra.harness import API_KEY, TABLE_ITEM, USAGE_PLAN_KEY, ProgramRun, run_program
from tiers.loader import MAX_TENANTS

MANY = {f"tenant-{index:02d}": {"tier": ["basic", "gold", "premium"][index % 3]} for index in range(11)}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return run_program(write_tier_file(tmp_path_factory.mktemp("ordering") / "test.yaml", TIERS, MANY))


def plan_key_of(run: ProgramRun, tenant_id: str) -> Any:
    return run.named(f"tenants-plan-key-{tenant_id}")


def test_a_registry_item_is_written_only_after_its_key_is_in_its_plan(run: ProgramRun) -> None:
    for tenant_id in MANY:
        item = run.named(f"tenants-registry-{tenant_id}")
        # THEN the item waits for the tenant's association (and its key, whose value it holds)
        assert plan_key_of(run, tenant_id).urn in item.dependencies
        assert run.named(f"tenants-key-{tenant_id}").urn in item.dependencies


def test_plan_associations_are_made_in_chains_of_the_tier_file_order(run: ProgramRun) -> None:
    tenant_ids = list(MANY)
    plan_key_urns = {plan_key_of(run, tenant_id).urn: tenant_id for tenant_id in tenant_ids}
    for position, tenant_id in enumerate(tenant_ids):
        waits_for = [
            plan_key_urns[urn] for urn in plan_key_of(run, tenant_id).dependencies if urn in plan_key_urns
        ]
        # THEN each association waits for exactly the one PLAN_KEY_LANES places earlier, if any
        expected = [tenant_ids[position - PLAN_KEY_LANES]] if position >= PLAN_KEY_LANES else []
        assert waits_for == expected, tenant_id
    # AND so at most PLAN_KEY_LANES CreateUsagePlanKey calls are ever in flight together
    chain_heads = [
        tenant_id
        for tenant_id in tenant_ids
        if not set(plan_key_of(run, tenant_id).dependencies) & set(plan_key_urns)
    ]
    assert len(chain_heads) == PLAN_KEY_LANES


def test_waiting_edges_carry_no_values_so_a_tier_move_replaces_nothing_else(run: ProgramRun) -> None:
    """A moved tenant's association is deleted before it is re-created; Pulumi replaces too every
    resource whose inputs take values from it, but not one that merely depends_on it."""
    plan_key_urns = {plan_key.urn for plan_key in run.of_type(USAGE_PLAN_KEY)}
    for resource in (*run.of_type(USAGE_PLAN_KEY), *run.of_type(TABLE_ITEM)):
        value_sources = set().union(*resource.property_dependencies.values())
        assert not value_sources & plan_key_urns, resource.name


def test_on_a_tier_move_the_item_waits_for_the_new_association(tmp_path: Path) -> None:
    # GIVEN globex moves from basic to gold
    moved = run_program(
        write_tier_file(
            tmp_path / "moved.yaml", TIERS, {**TENANTS, "globex": {"tier": "gold", "name": "Globex"}}
        )
    )
    plan_key = moved.named("tenants-plan-key-globex")
    item = moved.named("tenants-registry-globex")
    # THEN the association (deleted first, then re-created) is on gold's plan, and the item that now
    # says "gold" is written after it
    assert plan_key.inputs["usagePlanId"] == moved.named("tenants-plan-gold").id
    assert plan_key.delete_before_replace
    assert plan_key.urn in item.dependencies
    assert '"gold"' in item.inputs["item"]


def test_the_lane_count_keeps_pace_with_the_published_floor() -> None:
    # 10,000 associations spread over the lanes, at the per-association time under load, fit in the floor
    floor = first_deploy_floor_seconds(MAX_TENANTS)
    assert floor >= MAX_TENANTS * SECONDS_PER_ASSOCIATION_UNDER_LOAD / (PLAN_KEY_LANES - 1)
    assert PLAN_KEY_LANES <= 5, "more lanes make concurrent CreateUsagePlanKey calls, which AWS refuses"


def test_keys_are_not_chained(run: ProgramRun) -> None:
    """CreateApiKey has a published rate (5/s) that the provider's retries absorb: keys run in parallel."""
    key_urns = {key.urn for key in run.of_type(API_KEY)}
    assert all(not set(key.dependencies) & key_urns for key in run.of_type(API_KEY))
