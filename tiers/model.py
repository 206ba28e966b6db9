"""The validated tier catalog: what a tier file means once it has passed every check."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from blueprint.defaults import DEFAULT_SERVER_ERROR_PERCENT, DEFAULT_THROTTLED_PERCENT
from handlers import contract


class Isolation(StrEnum):
    POOLED = contract.ISOLATION_POOLED
    SILO = contract.ISOLATION_SILO


class QuotaPeriod(StrEnum):
    DAY = contract.QUOTA_PERIOD_DAY
    WEEK = contract.QUOTA_PERIOD_WEEK
    MONTH = contract.QUOTA_PERIOD_MONTH


@dataclass(frozen=True)
class Throttle:
    rate: float
    """Steady-state requests per second (API Gateway's rate_limit)."""
    burst: int
    """Token bucket size (API Gateway's burst_limit)."""


@dataclass(frozen=True)
class Quota:
    limit: int
    period: QuotaPeriod
    offset: int = 0


@dataclass(frozen=True)
class AlarmThresholds:
    """Percent of a tier's requests in five minutes above which its alarms fire."""

    server_error_percent: float = DEFAULT_SERVER_ERROR_PERCENT
    throttled_percent: float = DEFAULT_THROTTLED_PERCENT


@dataclass(frozen=True)
class Tier:
    name: str
    isolation: Isolation
    throttle: Throttle
    quota: Quota
    renamed_from: str | None = None
    """The name this tier had before: its usage plan and keys carry over under the new name."""
    alarms: AlarmThresholds = AlarmThresholds()


@dataclass(frozen=True)
class Tenant:
    id: str
    tier: str
    name: str
    suspended: bool = False


@dataclass(frozen=True)
class Catalog:
    """Tiers and tenants in file order. Every tenant's tier is in ``tiers``."""

    tiers: Mapping[str, Tier]
    tenants: Mapping[str, Tenant]

    def tier_of(self, tenant: Tenant) -> Tier:
        return self.tiers[tenant.tier]

    def tenants_of(self, tier_name: str) -> Iterator[Tenant]:
        return (tenant for tenant in self.tenants.values() if tenant.tier == tier_name)

    def is_silo(self, tenant: Tenant) -> bool:
        return self.tier_of(tenant).isolation is Isolation.SILO
