"""Per-day metering of the local usage plans (what GetUsage reports), under arbitrary request mixes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from local.limits import Admission, ApiKey, UsagePlans
from tests.local.test_limits import FakeClock
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier
from tiers.quota import quota_period

START = datetime(2026, 11, 27, 23, 0, tzinfo=UTC).timestamp()
QUOTAS = {
    "daily": Quota(7, QuotaPeriod.DAY),
    "weekly": Quota(20, QuotaPeriod.WEEK, offset=1),
    "monthly": Quota(30, QuotaPeriod.MONTH),
}


def _plans(clock: FakeClock) -> UsagePlans:
    catalog = Catalog(
        tiers={
            name: Tier(name, Isolation.POOLED, Throttle(rate=2, burst=4), quota)
            for name, quota in QUOTAS.items()
        },
        tenants={
            "ann": Tenant("ann", "daily", "Ann"),
            "bob": Tenant("bob", "weekly", "Bob"),
            "cy": Tenant("cy", "monthly", "Cy"),
            "dee": Tenant("dee", "daily", "Dee", suspended=True),
        },
    )
    keys = {tenant: ApiKey(f"id-{tenant}", f"value-of-{tenant}-0123456789") for tenant in catalog.tenants}
    return UsagePlans.from_catalog(catalog, keys, clock)


requests = st.lists(
    st.tuples(st.sampled_from(["ann", "bob", "cy", "dee", "nobody"]), st.floats(min_value=0, max_value=7200)),
    max_size=150,
)


@settings(max_examples=60, deadline=None)
@given(requests)
def test_each_day_counts_exactly_the_admitted_requests_and_remaining_follows_the_period(mix):
    # GIVEN requests of several tenants over a few days, some throttled, over quota, suspended or keyless
    clock = FakeClock(START)
    plans = _plans(clock)
    admitted: dict[tuple[str, date], int] = {}
    for tenant, gap in mix:
        clock.advance(gap)
        admission, _ = plans.admit(f"value-of-{tenant}-0123456789")
        if admission is Admission.ADMITTED:
            day = datetime.fromtimestamp(clock.now, UTC).date()
            admitted[tenant, day] = admitted.get((tenant, day), 0) + 1
    # WHEN the usage of every day from the first to the last is read, as GetUsage reads it
    first = datetime.fromtimestamp(START, UTC).date()
    last = datetime.fromtimestamp(clock.now, UTC).date()
    usage = plans.daily_usage(["id-ann", "id-bob", "id-cy", "id-dee"], first, last)
    days = [first + timedelta(days=index) for index in range((last - first).days + 1)]
    for tenant, tier in (("ann", "daily"), ("bob", "weekly"), ("cy", "monthly"), ("dee", "daily")):
        quota = QUOTAS[tier]
        for day, (used, remaining) in zip(days, usage[f"id-{tenant}"], strict=True):
            # THEN used is exactly what was admitted that day (refused requests never count)
            assert used == admitted.get((tenant, day), 0)
            # AND remaining is the limit minus what the period containing that day used up to it
            period_start = quota_period(quota, datetime.combine(day, datetime.min.time(), UTC))[0].date()
            spent = sum(
                count
                for (who, when), count in admitted.items()
                if who == tenant and period_start <= when <= day
            )
            assert remaining == quota.limit - spent
            assert 0 <= remaining <= quota.limit
    # AND the suspended tenant never used anything
    assert all(used == 0 for used, _ in usage["id-dee"])
