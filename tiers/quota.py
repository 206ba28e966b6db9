"""Quota periods: which UTC calendar period of a usage plan's quota contains a moment.

Shared by the local stack (which counts requests per period) and `python -m tiers usage` (whose
default date range is the current period). ``offset`` is the day a period starts: DAY periods
start at 00:00 UTC (offset has no meaning there and is ignored); WEEK periods start at 00:00 UTC on
weekday ``offset`` (0 = Sunday, 1 = Monday, ... 6 = Saturday); MONTH periods start at 00:00 UTC on
day ``offset + 1`` of the month (a start day past the end of a short month falls on its last day).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from tiers.model import Quota, QuotaPeriod


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
