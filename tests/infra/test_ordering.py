"""The order AWS sees: a registry item only after its tenant's plan association, and nothing longer.

Pulumi runs a step only after the steps of everything it depends on; a registry item
that the authorizer reads before the tenant's key is in a usage plan would make API
Gateway answer 403 for a tenant it has just onboarded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import TENANTS, TIERS, write_tier_file
from tests.infra.harness import API_KEY, TABLE_ITEM, USAGE_PLAN_KEY, ProgramRun, run_program

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


def dependency_depth(run: ProgramRun) -> int:
    """The longest path of dependencies between the resources of a run."""
    depends = {resource.urn: set(resource.dependencies) for resource in run.resources}
    depth: dict[str, int] = {}
    for urn in depends:  # registration order: a resource's dependencies were registered before it
        depth[urn] = 1 + max((depth.get(dependency, 0) for dependency in depends[urn]), default=0)
    return max(depth.values())


def test_the_dependency_depth_does_not_grow_with_the_tenants(tmp_path: Path) -> None:
    """The Python SDK checks each new dependency for cycles by walking its transitive closure
    recursively: a path through thousands of tenants (associations chained to serialize
    CreateUsagePlanKey, say) fails with RecursionError at 10,000 tenants."""
    # GIVEN the same tiers with 11 and with 33 tenants
    small = run_program(write_tier_file(tmp_path / "small.yaml", TIERS, MANY))
    large_tenants = {
        f"tenant-{index:02d}": {"tier": ["basic", "gold", "premium"][index % 3]} for index in range(33)
    }
    large = run_program(write_tier_file(tmp_path / "large.yaml", TIERS, large_tenants))
    # THEN the longest dependency path is the same: no resource waits on another tenant's
    assert dependency_depth(large) == dependency_depth(small)
    for tenant_id in large_tenants:
        for resource_name in (f"tenants-plan-key-{tenant_id}", f"tenants-registry-{tenant_id}"):
            others = [
                urn
                for urn in large.named(resource_name).dependencies
                if "tenant-" in urn.rpartition("::")[2] and tenant_id not in urn
            ]
            assert others == [], resource_name


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


def test_keys_and_associations_are_not_chained(run: ProgramRun) -> None:
    """Throttling (CreateApiKey 5/s) and conflicts (CreateUsagePlanKey) are the provider's retries' job."""
    key_urns = {key.urn for key in run.of_type(API_KEY)}
    assert all(not set(key.dependencies) & key_urns for key in run.of_type(API_KEY))
    plan_key_urns = {plan_key.urn for plan_key in run.of_type(USAGE_PLAN_KEY)}
    assert all(not set(plan_key.dependencies) & plan_key_urns for plan_key in run.of_type(USAGE_PLAN_KEY))
