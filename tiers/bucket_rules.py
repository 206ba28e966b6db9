"""S3's rules for the stack's bucket names and count, checked before anything is declared.

moto takes any bucket name and any number of buckets; S3 does not, and `pulumi up` would fail halfway
through a deploy. The names come from ``Naming.buckets``: only the digest depends on the account and
region, and it is always 8 hex digits, so checking the names of any one account and region checks them
all.
"""

from __future__ import annotations

import re
from typing import Final

from tiers.model import Catalog
from tiers.naming import Naming

MIN_BUCKET_NAME_LENGTH: Final = 3
MAX_BUCKET_NAME_LENGTH: Final = 63
# Lowercase letters, digits and hyphens, starting and ending with a letter or digit. S3 also allows dots,
# but a dotted name breaks the TLS certificate of virtual-hosted URLs (bucket.s3.region.amazonaws.com).
_BUCKET_NAME_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
RESERVED_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES: Final = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# S3's default quota of general purpose buckets per account (all regions together), raisable to 1,000,000
# through Service Quotas. Buckets of other stacks and applications in the account count against it too.
DEFAULT_BUCKET_QUOTA: Final = 10_000
SHARED_BUCKETS: Final = 1
"""The pooled bucket."""

_ANY_ACCOUNT: Final = "000000000000"
_ANY_REGION: Final = "us-east-1"


def bucket_name_problem(name: str) -> str | None:
    """What S3 would refuse in ``name``, or None."""
    if not MIN_BUCKET_NAME_LENGTH <= len(name) <= MAX_BUCKET_NAME_LENGTH:
        return f"is {len(name)} characters long; S3 takes {MIN_BUCKET_NAME_LENGTH}-{MAX_BUCKET_NAME_LENGTH}"
    if _BUCKET_NAME_RE.fullmatch(name) is None:
        return (
            "uses characters other than lowercase letters, digits and inner hyphens (dots are left out on "
            "purpose: they break virtual-hosted HTTPS)"
        )
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"starts with {prefix!r}, which S3 reserves"
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"ends with {suffix!r}, which S3 reserves"
    return None


def bucket_problems(catalog: Catalog, naming: Naming, bucket_quota: int, quota_key: str) -> list[str]:
    """Every bucket name S3 would refuse, and a bucket count over ``bucket_quota``; empty when none."""
    buckets = naming.buckets(_ANY_ACCOUNT, _ANY_REGION)
    silo_ids = [tenant.id for tenant in catalog.tenants.values() if catalog.is_silo(tenant)]
    problems = []
    pooled_problem = bucket_name_problem(buckets.pooled)
    if pooled_problem is not None:
        problems.append(
            f"the pooled S3 bucket name {buckets.pooled!r} {pooled_problem}: the project and stack names "
            "make its first part; rename them"
        )
    for tenant_id in silo_ids:
        problem = bucket_name_problem(buckets.silo(tenant_id))
        if problem is not None:
            problems.append(
                f"tenant {tenant_id!r}: its silo S3 bucket name {buckets.silo(tenant_id)!r} {problem}: give "
                "the tenant another id or move it to a pooled tier"
            )
    needed = SHARED_BUCKETS + len(silo_ids)
    if needed > bucket_quota:
        problems.append(
            f"the tier file needs {needed:,} S3 buckets (pooled + {len(silo_ids):,} silo buckets), more than "
            f"{quota_key} allows ({bucket_quota:,}). Move tenants to pooled tiers, or raise the account's "
            "general purpose bucket quota (Service Quotas: Amazon S3, 'General purpose buckets') and then "
            f"`pulumi config set {quota_key} <buckets this stack may use>`."
        )
    return problems
