"""Usage plans and tenants: a plan per tier; per tenant an API key, its plan association, its registry item.

Per-tenant logical names derive from the tenant id only, so adding a tenant touches no
other tenant, and a tier move replaces only the tenant's plan association (deleted before
its replacement is made: a key may sit in one plan per stage).

A tenant's registry item waits for its plan association, so the authorizer never hands API
Gateway a key that is in no plan (on a tier move: not before the new association exists).
Associations are not chained to one another, although concurrent CreateUsagePlanKey calls
conflict (409): the provider retries that conflict, and a chain through thousands of tenants
is a dependency path the Pulumi SDK walks recursively for every resource on it (see
``infra/rates.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from handlers.contract import REGISTRY_PARTITION_KEY
from tiers.model import Catalog, Tenant, Tier
from tiers.naming import BucketNames, Naming
from tiers.registry import registry_item


@dataclass(frozen=True)
class PlansArgs:
    naming: Naming
    catalog: Catalog
    rest_api_id: pulumi.Input[str]
    stage_name: pulumi.Input[str]
    """The deployed stage's name (an output, so plans are bound only once the stage exists)."""
    registry_table_name: pulumi.Input[str]
    buckets: pulumi.Output[BucketNames]


class Plans(pulumi.ComponentResource):
    usage_plans: dict[str, aws.apigateway.UsagePlan]
    api_keys: dict[str, aws.apigateway.ApiKey]

    def __init__(self, name: str, args: PlansArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tenant-tiers:infra:Plans", name, None, opts)
        self._name = name
        self._args = args
        self.usage_plans = {tier.name: self._usage_plan(tier) for tier in args.catalog.tiers.values()}
        self.api_keys = {tenant.id: self._tenant(tenant) for tenant in args.catalog.tenants.values()}
        self.register_outputs({})

    def _usage_plan(self, tier: Tier) -> aws.apigateway.UsagePlan:
        args = self._args
        return aws.apigateway.UsagePlan(
            f"{self._name}-plan-{tier.name}",
            name=args.naming.usage_plan(tier.name),
            description=f"Tier {tier.name} ({tier.isolation.value})",
            api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=args.rest_api_id, stage=args.stage_name)],
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                rate_limit=tier.throttle.rate,
                burst_limit=tier.throttle.burst,
            ),
            quota_settings=aws.apigateway.UsagePlanQuotaSettingsArgs(
                limit=tier.quota.limit,
                period=tier.quota.period.value,
                offset=tier.quota.offset,
            ),
            # A renamed tier keeps its plan: same resource, new name, every key association untouched.
            opts=pulumi.ResourceOptions(
                parent=self,
                aliases=[pulumi.Alias(name=f"{self._name}-plan-{tier.renamed_from}")]
                if tier.renamed_from
                else None,
            ),
        )

    def _tenant(self, tenant: Tenant) -> aws.apigateway.ApiKey:
        args = self._args
        # No `value`: API Gateway generates it, and the provider keeps it a secret output.
        api_key = aws.apigateway.ApiKey(
            f"{self._name}-key-{tenant.id}",
            name=args.naming.api_key(tenant.id),
            enabled=not tenant.suspended,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The provider reads the key's value back into the association's state: a secret there too.
        plan_key = aws.apigateway.UsagePlanKey(
            f"{self._name}-plan-key-{tenant.id}",
            key_id=api_key.id,
            key_type="API_KEY",
            usage_plan_id=self.usage_plans[tenant.tier].id,
            opts=pulumi.ResourceOptions(
                parent=self,
                delete_before_replace=True,
                additional_secret_outputs=["value"],
            ),
        )
        # The item carries the key value: a secret, whatever the value's own marking.
        item: pulumi.Output[str] = pulumi.Output.all(api_key.id, api_key.value, args.buckets).apply(
            lambda key: pulumi.Output.secret(
                json.dumps(
                    registry_item(
                        args.catalog,
                        tenant,
                        args.naming,
                        buckets=key[2],
                        api_key_id=key[0],
                        api_key_value=key[1],
                    )
                )
            )
        )
        aws.dynamodb.TableItem(
            f"{self._name}-registry-{tenant.id}",
            table_name=args.registry_table_name,
            hash_key=REGISTRY_PARTITION_KEY,
            item=item,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[plan_key]),
        )
        return api_key
