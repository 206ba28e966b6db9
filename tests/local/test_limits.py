"""Usage plan arithmetic: the token bucket, quota periods and per-key plans, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.limits import Admission, ApiKey, QuotaCounter, TokenBucket, UsagePlans, plan_keys
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier
from tiers.quota import quota_period


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


throttles = st.builds(
    lambda rate, extra: Throttle(rate=rate, burst=max(1, int(rate) + extra)),
    st.floats(min_value=0.1, max_value=50, allow_nan=False),
    st.integers(min_value=0, max_value=20),
)
arrival_gaps = st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(throttle=throttles, gaps=arrival_gaps)
def test_bucket_never_admits_more_than_burst_plus_rate_times_window(throttle, gaps):
    # GIVEN a full bucket and requests arriving at arbitrary times
    bucket = TokenBucket.full(throttle, now=0.0)
    now, admitted_at = 0.0, []
    for gap in gaps:
        now += gap
        # WHEN each request asks for a token
        if bucket.take(now):
            admitted_at.append(now)
    # THEN in every window [a, b] at most burst + rate * (b - a) requests got through
    for i, start in enumerate(admitted_at):
        for j in range(i, len(admitted_at)):
            window = admitted_at[j] - start
            assert j - i + 1 <= throttle.burst + throttle.rate * window + 1e-6


@settings(max_examples=40, deadline=None)
@given(throttle=throttles)
def test_bucket_admits_a_full_burst_at_once_then_refills_at_the_rate(throttle):
    bucket = TokenBucket.full(throttle, now=0.0)
    # WHEN burst + 1 requests arrive at the same instant
    results = [bucket.take(0.0) for _ in range(throttle.burst + 1)]
    # THEN exactly burst are admitted
    assert results == [True] * throttle.burst + [False]
    # AND one token's worth of time later one more is admitted, and no second one
    assert bucket.take(1 / throttle.rate)
    assert not bucket.take(1 / throttle.rate)


def test_bucket_does_not_refill_past_burst_or_drain_on_a_clock_step_back():
    bucket = TokenBucket.full(Throttle(rate=2, burst=3), now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, True]
    # GIVEN a clock that steps back: nothing refills, nothing breaks
    assert not bucket.take(50.0)
    # AND an hour of idleness refills to burst only
    assert sum(bucket.take(3700.0) for _ in range(10)) == 3


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("quota", "now", "start", "end"),
    [
        (Quota(5, QuotaPeriod.DAY), _utc(2026, 11, 21, 5, 30), _utc(2026, 11, 21), _utc(2026, 11, 22)),
        (Quota(5, QuotaPeriod.DAY), _utc(2026, 12, 31, 23, 59), _utc(2026, 12, 31), _utc(2027, 1, 1)),
        # 2026-11-21 is a Saturday: offset 0 weeks start on Sunday, offset 1 on Monday, offset 6 on Saturday
        (Quota(5, QuotaPeriod.WEEK, 0), _utc(2026, 11, 21, 12), _utc(2026, 11, 15), _utc(2026, 11, 22)),
        (Quota(5, QuotaPeriod.WEEK, 1), _utc(2026, 11, 21, 12), _utc(2026, 11, 16), _utc(2026, 11, 23)),
        (Quota(9, QuotaPeriod.WEEK, 6), _utc(2026, 11, 21, 0), _utc(2026, 11, 21), _utc(2026, 11, 28)),
        (Quota(9, QuotaPeriod.WEEK, 0), _utc(2026, 11, 22, 0), _utc(2026, 11, 22), _utc(2026, 11, 29)),
        (Quota(5, QuotaPeriod.MONTH), _utc(2026, 11, 21), _utc(2026, 11, 1), _utc(2026, 12, 1)),
        (Quota(5, QuotaPeriod.MONTH), _utc(2026, 12, 5), _utc(2026, 12, 1), _utc(2027, 1, 1)),
        # offset 14: months start on the 15th
        (Quota(50, QuotaPeriod.MONTH, 14), _utc(2026, 11, 21), _utc(2026, 11, 15), _utc(2026, 12, 15)),
        (Quota(50, QuotaPeriod.MONTH, 14), _utc(2026, 1, 3), _utc(2025, 12, 15), _utc(2026, 1, 15)),
        (Quota(50, QuotaPeriod.MONTH, 27), _utc(2026, 2, 28, 1), _utc(2026, 2, 28), _utc(2026, 3, 28)),
    ],
)
def test_quota_periods_are_utc_calendar_periods_starting_on_the_offset_day(quota, now, start, end):
    assert quota_period(quota, now) == (start, end)


@settings(max_examples=60, deadline=None)
@given(
    period=st.sampled_from(list(QuotaPeriod)),
    offset=st.integers(min_value=0, max_value=27),
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_every_moment_lies_in_exactly_one_period_and_periods_tile_time(period, offset, moment):
    quota = Quota(
        100, period, 0 if period is QuotaPeriod.DAY else min(offset, 6 if period is QuotaPeriod.WEEK else 27)
    )
    start, end = quota_period(quota, moment)
    assert start <= moment < end
    # the next period starts where this one ends, the previous one ends where this one starts
    assert quota_period(quota, end)[0] == end
    assert quota_period(quota, start - timedelta(microseconds=1))[1] == start


@settings(max_examples=40, deadline=None)
@given(limit=st.integers(min_value=1, max_value=30), extra=st.integers(min_value=0, max_value=10))
def test_quota_admits_exactly_its_limit_per_period_then_starts_again(limit, extra):
    counter = QuotaCounter(Quota(limit, QuotaPeriod.DAY))
    day = _utc(2026, 11, 21, 8)
    # WHEN limit + extra requests arrive within one day
    admitted = sum(counter.take(day + timedelta(seconds=i)) for i in range(limit + extra))
    # THEN exactly limit pass
    assert admitted == limit
    # AND the next day the full limit is available again
    next_day = day + timedelta(days=1)
    assert sum(counter.take(next_day) for _ in range(limit + extra)) == limit


def _catalog() -> Catalog:
    tiers = {
        "small": Tier("small", Isolation.POOLED, Throttle(rate=2, burst=3), Quota(5, QuotaPeriod.DAY)),
        "big": Tier("big", Isolation.SILO, Throttle(rate=100, burst=200), Quota(1000, QuotaPeriod.MONTH)),
    }
    tenants = {
        "alpha": Tenant("alpha", "small", "Alpha"),
        "beta": Tenant("beta", "small", "Beta"),
        "gamma": Tenant("gamma", "big", "Gamma", suspended=True),
    }
    return Catalog(tiers=tiers, tenants=tenants)


KEYS = {
    tenant: ApiKey(id=f"id-{tenant}", value=f"key-value-of-{tenant}-0123456789")
    for tenant in ("alpha", "beta", "gamma")
}


def test_each_tenant_has_its_own_bucket_and_quota_from_its_tier():
    clock = FakeClock()
    plans = UsagePlans.from_catalog(_catalog(), KEYS, clock)
    alpha, beta = KEYS["alpha"].value, KEYS["beta"].value
    # WHEN alpha spends its burst of 3
    assert [plans.admit(alpha)[0] for _ in range(4)] == [Admission.ADMITTED] * 3 + [Admission.THROTTLED]
    # THEN beta, on the same tier but its own key, is untouched
    assert plans.admit(beta)[0] is Admission.ADMITTED
    # AND alpha recovers at 2 requests per second
    clock.advance(0.5)
    assert plans.admit(alpha)[0] is Admission.ADMITTED
    assert plans.admit(alpha)[0] is Admission.THROTTLED
    # AND its quota of 5 a day ends in Limit Exceeded, not Too Many Requests
    clock.advance(10)
    assert plans.admit(alpha)[0] is Admission.ADMITTED
    assert plans.admit(alpha)[0] is Admission.QUOTA_EXCEEDED
    usage = {entry.tenant_id: entry for entry in plans.usage()}
    assert (usage["alpha"].used, usage["alpha"].remaining) == (5, 0)
    assert (usage["beta"].used, usage["beta"].remaining) == (1, 4)


@pytest.mark.parametrize("key", [None, "", "not-a-key-of-anyone-0123456789", 42, KEYS["gamma"].value])
def test_missing_unknown_or_disabled_keys_are_forbidden(key):
    plans = UsagePlans.from_catalog(_catalog(), KEYS, FakeClock())
    assert plans.admit(key) == (Admission.FORBIDDEN, None)


# --- plans following an edit of the tier file -----------------------------------------------------------

EDIT_ROOMY = Tier("roomy", Isolation.POOLED, Throttle(rate=100, burst=100), Quota(1000, QuotaPeriod.MONTH))
EDIT_TIGHT = Tier("tight", Isolation.POOLED, Throttle(rate=1, burst=3), Quota(10, QuotaPeriod.DAY))
EDIT_KEYS = {"acme": ApiKey("id-acme", "value-acme"), "globex": ApiKey("id-globex", "value-globex")}


def edited_catalog(**tiers_of: str) -> Catalog:
    return Catalog(
        tiers={"roomy": EDIT_ROOMY, "tight": EDIT_TIGHT},
        tenants={tenant: Tenant(tenant, tier, tenant.title()) for tenant, tier in tiers_of.items()},
    )


def test_a_moved_key_keeps_its_usage_and_gets_a_full_bucket_of_its_new_tier():
    # GIVEN acme used 7 requests on roomy today
    clock = FakeClock()
    plans = UsagePlans.from_catalog(edited_catalog(acme="roomy"), EDIT_KEYS, clock)
    for _ in range(7):
        assert plans.admit("value-acme")[0] is Admission.ADMITTED
    # WHEN it moves to tight (quota 10 a day, burst 3), as a new plan association
    plans.update(plan_keys(edited_catalog(acme="tight"), EDIT_KEYS), new_associations={"value-acme"})
    # THEN it has tight's burst, and only 3 of the day's quota left: its 7 still count
    assert [plans.admit("value-acme")[0] for _ in range(4)] == [Admission.ADMITTED] * 3 + [
        Admission.THROTTLED
    ]
    clock.advance(60)
    assert plans.admit("value-acme")[0] is Admission.QUOTA_EXCEEDED
    (entry,) = plans.usage()
    assert (entry.tier, entry.used, entry.remaining) == ("tight", 10, 0)
    assert plans.daily_usage(["id-acme"], *(2 * [datetime.fromtimestamp(clock.now, UTC).date()])) == {
        "id-acme": [[10, 0]]
    }


def test_a_key_that_stays_keeps_its_spent_tokens_and_a_removed_key_is_refused():
    # GIVEN both tenants on tight, acme having spent its burst
    clock = FakeClock()
    plans = UsagePlans.from_catalog(edited_catalog(acme="tight", globex="tight"), EDIT_KEYS, clock)
    for _ in range(3):
        plans.admit("value-acme")
    # WHEN globex is removed and acme stays where it is
    plans.update(plan_keys(edited_catalog(acme="tight"), {"acme": EDIT_KEYS["acme"]}))
    # THEN acme's bucket is still empty (an edit is no way around a throttle) and globex's key is gone
    assert plans.admit("value-acme")[0] is Admission.THROTTLED
    assert plans.admit("value-globex") == (Admission.FORBIDDEN, None)
    assert [entry.tenant_id for entry in plans.usage()] == ["acme"]


def test_a_suspended_key_is_forbidden_until_resumed_with_its_usage():
    clock = FakeClock()
    plans = UsagePlans.from_catalog(edited_catalog(acme="roomy"), EDIT_KEYS, clock)
    plans.admit("value-acme")
    suspended = Catalog(
        tiers={"roomy": EDIT_ROOMY}, tenants={"acme": Tenant("acme", "roomy", "Acme", suspended=True)}
    )
    plans.update(plan_keys(suspended, EDIT_KEYS))
    assert plans.admit("value-acme") == (Admission.FORBIDDEN, None)
    plans.update(plan_keys(edited_catalog(acme="roomy"), EDIT_KEYS))
    assert plans.admit("value-acme")[0] is Admission.ADMITTED
    assert plans.usage()[0].used == 2
