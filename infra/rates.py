"""AWS's control-plane rates for what a first deploy creates, and the deploy settings derived from them.

Published limits (API Gateway developer guide, "API Gateway quotas for creating, deploying
and managing an API"; fixed, per account and region): CreateApiKey and DeleteApiKey 5
requests/s, UpdateUsagePlan 1 per 20 s, CreateDeployment 1 per 5 s, and every management
call together ("Total operations") 10 requests/s with a burst of 40. CreateUsagePlanKey has
no published rate, but concurrent calls fail with 409 ConflictException ("concurrent
modification, try again later"); AWS support's advice (serverless/serverless#12065) is one at
a time per region. The provider (terraform-provider-aws, under pulumi_aws) reads every
resource back after creating it, so a tenant costs four management calls: CreateApiKey,
GetApiKey, CreateUsagePlanKey, GetUsagePlanKey. The README's Deploy section walks through
the arithmetic for 10,000 tenants.
"""

from __future__ import annotations

import math
from typing import Final

from tiers.loader import MAX_TENANTS
from tiers.plan import CALLS_PER_NEW_TENANT, CREATE_API_KEY_PER_SECOND, MANAGEMENT_CALLS_PER_SECOND

MANAGEMENT_BURST: Final = 40
"""The burst of the 10 management calls/s (``tiers.plan`` holds the rates and calls per tenant)."""

DEPLOY_PARALLELISM: Final = 32
"""`pulumi up --parallel`: enough steps in flight to keep 10 calls/s busy through throttling back-offs
and to overlap silo tables' minute-long creation, few enough that a throttled call usually gets
through on a retry (unbounded, thousands of steps would share 10 calls/s and exhaust their retries)."""

MIN_MAX_RETRIES: Final = 50
"""`aws:maxRetries` for a stack whose first deploy exceeds the management burst. With a throttled
attempt's chance of being throttled again at most 0.7 under the bounded parallelism above,
0.7**50 ≈ 2e-8 per call: under 1 in 1,000 that any of 40,000 calls fails (the provider's
default of 25 gives 1.3e-4 per call: several failed steps per 10,000 tenants)."""

SECONDS_PER_ASSOCIATION_UNDER_LOAD: Final = 1.2
"""An estimate: a plan association is two calls of ~0.1 s, but while the account runs at its 10
calls/s a good share of calls are throttled and retried after the SDK's jittered back-off (up to
1 s, then 2 s, ...). One chain of 10,000 associations would then take 3.3 h."""


def first_deploy_floor_seconds(tenants: int) -> float:
    """The least time AWS's published rates allow for onboarding ``tenants`` in one deploy."""
    return max(
        tenants / CREATE_API_KEY_PER_SECOND,
        tenants * CALLS_PER_NEW_TENANT / MANAGEMENT_CALLS_PER_SECOND,
    )


def exceeds_burst(tenants: int) -> bool:
    """Whether onboarding ``tenants`` at once makes more management calls than the burst absorbs."""
    return tenants * CALLS_PER_NEW_TENANT > MANAGEMENT_BURST


def plan_key_lanes_needed(tenants: int) -> int:
    """Chains of plan associations that keep pace with the floor for ``tenants``."""
    floor = first_deploy_floor_seconds(tenants)
    return max(1, math.ceil(tenants * SECONDS_PER_ASSOCIATION_UNDER_LOAD / floor)) if floor else 1


PLAN_KEY_LANES: Final = plan_key_lanes_needed(MAX_TENANTS) + 1
"""Plan associations are created in this many chains, each waiting for the one before it in its
chain: CreateUsagePlanKey conflicts when calls overlap, and chains bound the overlap. 10,000 x
1.2 s / 4,000 s = 3 chains keep pace; one more absorbs the conflicts between chains, which the
provider retries ("try again later")."""
