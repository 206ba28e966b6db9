"""API Gateway usage plans, emulated: a token bucket and a quota per API key.

API Gateway meters by the key value the authorizer returns as
``usageIdentifierKey``; each tenant has its own key, limited by its tier's
plan. The limits come from the tier catalog only.

Quota periods are UTC calendar periods. ``offset`` is the day a period starts:
DAY periods start at 00:00 UTC (offset has no meaning there and is ignored);
WEEK periods start at 00:00 UTC on weekday ``offset`` (0 = Sunday, 1 = Monday,
... 6 = Saturday); MONTH periods start at 00:00 UTC on day ``offset + 1`` of the
month (a start day past the end of a short month falls on its last day).
"""

from __future__ import annotations

import calendar
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from tiers.model import Catalog, Quota, QuotaPeriod, Throttle

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); injectable so tests need not sleep."""


# Refills are float sums: a token that is whole in exact arithmetic may come out a hair short.
_TOKEN_EPSILON = 1e-9


@dataclass
class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second; a request takes one."""

    rate: float
    burst: int
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, throttle: Throttle, now: float) -> TokenBucket:
        return cls(rate=throttle.rate, burst=throttle.burst, tokens=float(throttle.burst), updated_at=now)

    def available(self, now: float) -> float:
        # A clock that steps back refills nothing rather than draining the bucket.
        elapsed = max(0.0, now - self.updated_at)
        return min(float(self.burst), self.tokens + elapsed * self.rate)

    def take(self, now: float) -> bool:
        self.tokens = self.available(now)
        self.updated_at = max(self.updated_at, now)
        if self.tokens >= 1.0 - _TOKEN_EPSILON:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False


def quota_period(quota: Quota, now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar period [start, end) of ``quota`` that contains ``now``."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if quota.period is QuotaPeriod.DAY:
        return midnight, midnight + timedelta(days=1)
    if quota.period is QuotaPeriod.WEEK:
        days_since_sunday = (now.weekday() + 1) % 7
        start = midnight - timedelta(days=(days_since_sunday - quota.offset) % 7)
        return start, start + timedelta(days=7)
    this_month = _month_start(now.year, now.month, quota.offset)
    if this_month <= now:
        return this_month, _month_start(*_shift_month(now.year, now.month, 1), quota.offset)
    return _month_start(*_shift_month(now.year, now.month, -1), quota.offset), this_month


def _month_start(year: int, month: int, offset: int) -> datetime:
    day = min(offset + 1, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=UTC)


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


@dataclass
class QuotaCounter:
    """Requests admitted in the current period of ``quota``; a new period starts from zero."""

    quota: Quota
    period_start: datetime | None = None
    used: int = 0

    def _roll(self, now: datetime) -> tuple[datetime, datetime]:
        start, end = quota_period(self.quota, now)
        if start != self.period_start:
            self.period_start, self.used = start, 0
        return start, end

    def take(self, now: datetime) -> bool:
        self._roll(now)
        if self.used >= self.quota.limit:
            return False
        self.used += 1
        return True

    def snapshot(self, now: datetime) -> tuple[int, datetime, datetime]:
        start, end = self._roll(now)
        return self.used, start, end


class Admission(Enum):
    """What the usage plan step answers for a request."""

    ADMITTED = "admitted"
    FORBIDDEN = "forbidden"
    """No key, a key in no plan, or a disabled key."""
    THROTTLED = "throttled"
    QUOTA_EXCEEDED = "quota exceeded"


@dataclass(frozen=True)
class ApiKey:
    id: str
    value: str


@dataclass(frozen=True)
class PlanKey:
    """One API key in its tier's usage plan."""

    key_id: str
    tenant_id: str
    tier: str
    throttle: Throttle
    quota: Quota
    enabled: bool


@dataclass(frozen=True)
class KeyUsage:
    tenant_id: str
    tier: str
    enabled: bool
    used: int
    remaining: int
    period_start: datetime
    period_end: datetime
    quota: Quota
    throttle: Throttle
    tokens_available: float

    def as_json(self) -> dict[str, object]:
        return {
            "tenant_id": self.tenant_id,
            "tier": self.tier,
            "enabled": self.enabled,
            "used": self.used,
            "remaining": self.remaining,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "quota": {
                "limit": self.quota.limit,
                "period": self.quota.period.value,
                "offset": self.quota.offset,
            },
            "throttle": {"rate": self.throttle.rate, "burst": self.throttle.burst},
            "tokens_available": round(self.tokens_available, 3),
        }


@dataclass
class _KeyState:
    key: PlanKey
    bucket: TokenBucket
    counter: QuotaCounter


class UsagePlans:
    """Every tenant's key with its tier's throttle and quota, keyed by key value as API Gateway does."""

    def __init__(self, keys: Mapping[str, PlanKey], clock: Clock) -> None:
        self._clock = clock
        now = clock()
        self._states = {
            value: _KeyState(key, TokenBucket.full(key.throttle, now), QuotaCounter(key.quota))
            for value, key in keys.items()
        }
        self._lock = threading.Lock()

    @classmethod
    def from_catalog(cls, catalog: Catalog, api_keys: Mapping[str, ApiKey], clock: Clock) -> UsagePlans:
        """``api_keys`` maps each tenant id to its API key."""
        keys = {}
        for tenant in catalog.tenants.values():
            tier = catalog.tier_of(tenant)
            api_key = api_keys[tenant.id]
            keys[api_key.value] = PlanKey(
                key_id=api_key.id,
                tenant_id=tenant.id,
                tier=tier.name,
                throttle=tier.throttle,
                quota=tier.quota,
                enabled=not tenant.suspended,
            )
        return cls(keys, clock)

    def admit(self, key_value: object) -> tuple[Admission, PlanKey | None]:
        """Throttle first, then quota: a throttled request does not count against the quota."""
        state = self._states.get(key_value) if isinstance(key_value, str) else None
        if state is None or not state.key.enabled:
            return Admission.FORBIDDEN, None
        now = self._clock()
        with self._lock:
            if not state.bucket.take(now):
                return Admission.THROTTLED, state.key
            if not state.counter.take(datetime.fromtimestamp(now, UTC)):
                return Admission.QUOTA_EXCEEDED, state.key
        return Admission.ADMITTED, state.key

    def usage(self) -> list[KeyUsage]:
        now = self._clock()
        moment = datetime.fromtimestamp(now, UTC)
        report = []
        with self._lock:
            for state in self._states.values():
                used, start, end = state.counter.snapshot(moment)
                report.append(
                    KeyUsage(
                        tenant_id=state.key.tenant_id,
                        tier=state.key.tier,
                        enabled=state.key.enabled,
                        used=used,
                        remaining=max(0, state.key.quota.limit - used),
                        period_start=start,
                        period_end=end,
                        quota=state.key.quota,
                        throttle=state.key.throttle,
                        tokens_available=state.bucket.available(now),
                    )
                )
        return report
