"""API Gateway usage plans, emulated: a token bucket and a quota per API key.

API Gateway meters by the key value the authorizer returns as
``usageIdentifierKey``; each tenant has its own key, limited by its tier's
plan. The limits come from the tier catalog only.

Quota periods are UTC calendar periods (``tiers.quota``). Admitted requests are
also counted per key and UTC day, which is what API Gateway's GetUsage reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum

from tiers.model import Catalog, Quota, Throttle
from tiers.quota import quota_period

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
    daily: dict[date, int] = field(default_factory=dict)
    """Admitted requests per UTC day, kept for GetUsage's (used, remaining) per day."""

    def day_usage(self, day: date) -> tuple[int, int]:
        """(used on ``day``, quota remaining at the end of ``day`` in the period containing it)."""
        period_start, _ = quota_period(self.key.quota, datetime.combine(day, time(), UTC))
        first = period_start.date()
        used_in_period = sum(count for when, count in self.daily.items() if first <= when <= day)
        return self.daily.get(day, 0), max(0, self.key.quota.limit - used_in_period)


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
        return cls(plan_keys(catalog, api_keys), clock)

    def update(self, keys: Mapping[str, PlanKey], new_associations: Set[str] = frozenset()) -> None:
        """The plans after an edit of the tier file, with ``keys`` as every key by value from now on.

        A key that stays keeps its usage: its per-day counts, and so the quota it used this period (counted
        again under its tier's quota now: a new period or a new limit applies at once). Its token bucket keeps
        the tokens it has, at most the new burst, and refills at the new rate; a key in
        ``new_associations`` (added to another tier's plan) starts with a full bucket of its new tier.
        Keys not in ``keys`` are deleted, with their usage.
        """
        now = self._clock()
        moment = datetime.fromtimestamp(now, UTC)
        with self._lock:
            states = {}
            for value, key in keys.items():
                state = self._states.get(value)
                if state is None:
                    states[value] = _KeyState(
                        key, TokenBucket.full(key.throttle, now), QuotaCounter(key.quota)
                    )
                    continue
                if value in new_associations:
                    bucket = TokenBucket.full(key.throttle, now)
                else:
                    tokens = state.bucket.available(now)
                    bucket = TokenBucket(
                        key.throttle.rate, key.throttle.burst, min(tokens, key.throttle.burst), now
                    )
                period_start, _ = quota_period(key.quota, moment)
                used = sum(count for day, count in state.daily.items() if day >= period_start.date())
                counter = QuotaCounter(key.quota, period_start, used)
                states[value] = _KeyState(key, bucket, counter, state.daily)
            self._states = states

    def admit(self, key_value: object) -> tuple[Admission, PlanKey | None]:
        """Throttle first, then quota: a throttled request does not count against the quota."""
        now = self._clock()
        with self._lock:
            # Looked up under the lock: an update replaces the states; no count may land in a stale one.
            state = self._states.get(key_value) if isinstance(key_value, str) else None
            if state is None or not state.key.enabled:
                return Admission.FORBIDDEN, None
            if not state.bucket.take(now):
                return Admission.THROTTLED, state.key
            moment = datetime.fromtimestamp(now, UTC)
            if not state.counter.take(moment):
                return Admission.QUOTA_EXCEEDED, state.key
            day = moment.date()
            state.daily[day] = state.daily.get(day, 0) + 1
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

    def keys_of(self, tier: str) -> list[PlanKey]:
        """The keys in ``tier``'s usage plan, ordered by key id."""
        return sorted((state.key for state in self._states.values() if state.key.tier == tier), key=_key_id)

    def daily_usage(self, key_ids: Sequence[str], start: date, end: date) -> dict[str, list[list[int]]]:
        """Per key id: ``[used, remaining]`` for each UTC day from ``start`` to ``end`` inclusive.

        ``remaining`` is what the key's quota had left at the end of that day, in the period that
        contains the day; days without requests read ``[0, remaining]``, as API Gateway's GetUsage does.
        """
        days = [start + timedelta(days=index) for index in range((end - start).days + 1)]
        by_id = {state.key.key_id: state for state in self._states.values()}
        with self._lock:
            return {
                key_id: [list(by_id[key_id].day_usage(day)) for day in days]
                for key_id in key_ids
                if key_id in by_id
            }


def plan_keys(catalog: Catalog, api_keys: Mapping[str, ApiKey]) -> dict[str, PlanKey]:
    """Every tenant's key by value with its tier's limits; ``api_keys``: each tenant id's API key."""
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
    return keys


def _key_id(key: PlanKey) -> str:
    return key.key_id
