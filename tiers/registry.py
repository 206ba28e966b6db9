"""The tenant registry as data: one DynamoDB item per tenant, written by the program and the local stack."""

from __future__ import annotations

from typing import Any

from handlers.contract import RegistryField
from tiers.model import Catalog, Isolation, Tenant
from tiers.naming import BucketNames, Naming


def data_table(catalog: Catalog, tenant: Tenant, naming: Naming) -> str:
    """The physical table holding ``tenant``'s data."""
    if catalog.tier_of(tenant).isolation is Isolation.SILO:
        return naming.silo_table(tenant.id)
    return naming.pooled_table


def file_bucket(catalog: Catalog, tenant: Tenant, buckets: BucketNames) -> str:
    """The S3 bucket holding ``tenant``'s files (always under its ``<tenant id>/`` prefix)."""
    if catalog.tier_of(tenant).isolation is Isolation.SILO:
        return buckets.silo(tenant.id)
    return buckets.pooled


def registry_item(
    catalog: Catalog,
    tenant: Tenant,
    naming: Naming,
    *,
    buckets: BucketNames,
    api_key_id: str,
    api_key_value: str,
) -> dict[str, dict[str, Any]]:
    """The registry item of ``tenant`` in DynamoDB JSON (the shape ``PutItem`` and ``TableItem`` take)."""
    tier = catalog.tier_of(tenant)
    return {
        RegistryField.TENANT_ID: {"S": tenant.id},
        RegistryField.NAME: {"S": tenant.name},
        RegistryField.TIER: {"S": tier.name},
        RegistryField.ISOLATION: {"S": tier.isolation.value},
        RegistryField.TABLE: {"S": data_table(catalog, tenant, naming)},
        RegistryField.BUCKET: {"S": file_bucket(catalog, tenant, buckets)},
        RegistryField.API_KEY_ID: {"S": api_key_id},
        RegistryField.API_KEY_VALUE: {"S": api_key_value},
        RegistryField.SUSPENDED: {"BOOL": tenant.suspended},
        RegistryField.THROTTLE_RATE: {"N": _number(tier.throttle.rate)},
        RegistryField.THROTTLE_BURST: {"N": str(tier.throttle.burst)},
        RegistryField.QUOTA_LIMIT: {"N": str(tier.quota.limit)},
        RegistryField.QUOTA_PERIOD: {"S": tier.quota.period.value},
        RegistryField.QUOTA_OFFSET: {"N": str(tier.quota.offset)},
    }


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
