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

Plan associations are not chained to one another (a `depends_on` from each to an earlier one),
although AWS refuses concurrent CreateUsagePlanKey calls with 409 "concurrent modification,
try again later". The provider retries exactly that error (its API Gateway client treats a
ConflictException saying "try again later" as retryable), and the bounded parallelism keeps
overlaps few: associations become ready only as fast as keys are created, at most 5/s, and
each call takes about 0.1 s. Chains would serialize them, but the Python SDK checks every new
dependency for cycles by walking the dependency's whole transitive closure recursively: a
chain of 2,500 associations (10,000 in four lanes) raises RecursionError past depth 1,000 and
costs quadratic time before that. tests/infra/test_ordering.py keeps the dependency depth
independent of the number of tenants.
"""

from __future__ import annotations

from typing import Final

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


def first_deploy_floor_seconds(tenants: int) -> float:
    """The least time AWS's published rates allow for onboarding ``tenants`` in one deploy."""
    return max(
        tenants / CREATE_API_KEY_PER_SECOND,
        tenants * CALLS_PER_NEW_TENANT / MANAGEMENT_CALLS_PER_SECOND,
    )


def exceeds_burst(tenants: int) -> bool:
    """Whether onboarding ``tenants`` at once makes more management calls than the burst absorbs."""
    return tenants * CALLS_PER_NEW_TENANT > MANAGEMENT_BURST
