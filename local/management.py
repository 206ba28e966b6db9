"""The part of API Gateway's management API that reads usage plans: GetUsagePlan and GetUsage.

moto implements neither GetUsage nor the usage plans the gateway enforces, so the local stack
answers them itself under ``/_local/apigateway`` (``local.server``), with API Gateway's request
and response shapes: a boto3 ``apigateway`` client whose ``endpoint_url`` is that prefix works
unchanged, which is how ``python -m tiers usage --local-port`` reads the local stack with the same
code that reads AWS.

    GET /usageplans/{usageplanId}
    GET /usageplans/{usageplanId}/usage?startDate=YYYY-MM-DD&endDate=YYYY-MM-DD[&keyId][&limit][&position]

GetUsage answers ``{"usagePlanId", "startDate", "endDate", "values": {keyId: [[used, remaining],
...one per day]}, "position"?}``; pages hold ``limit`` keys (1-500, default 25) in key id order.
Errors are API Gateway's: ``x-amzn-ErrorType`` NotFoundException (unknown plan or key id) or
BadRequestException (dates, limit, position), with a ``{"message"}`` body.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from local.gateway import Response
from local.limits import Clock, UsagePlans
from tiers.local_stack import MANAGEMENT_PREFIX
from tiers.model import Catalog, Tier
from tiers.naming import Naming

USAGE_HISTORY_DAYS: Final = 90
"""GetUsage reads at most this many days back from today."""
DEFAULT_PAGE_KEYS: Final = 25
MAX_PAGE_KEYS: Final = 500
USAGE_PLAN_ID_LENGTH: Final = 6


@dataclass(frozen=True)
class LocalUsagePlan:
    id: str
    name: str
    tier: Tier


class ManagementError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class ManagementApi:
    def __init__(self, usage_plans: Mapping[str, LocalUsagePlan], plans: UsagePlans, clock: Clock) -> None:
        self.usage_plans = dict(usage_plans)
        """By usage plan id."""
        self._plans = plans
        self._clock = clock
        self._ids_given: set[str] = set(self.usage_plans)

    @classmethod
    def from_catalog(cls, catalog: Catalog, naming: Naming, plans: UsagePlans, clock: Clock) -> ManagementApi:
        """One usage plan per tier, with an id such as API Gateway makes (6 lowercase letters and digits)."""
        api = cls({}, plans, clock)
        api.follow(catalog, naming, {})
        return api

    def follow(self, catalog: Catalog, naming: Naming, renamed: Mapping[str, str]) -> None:
        """The plans of ``catalog`` from now on: a tier that stays, or is renamed (``renamed`` maps its new
        name to its old one), keeps its plan and id with the tier's name and limits now; a new tier gets a
        new plan, and a plan whose tier is gone is deleted."""
        alphabet = string.ascii_lowercase + string.digits
        by_tier = {plan.tier.name: plan.id for plan in self.usage_plans.values()}
        usage_plans = {}
        for tier in catalog.tiers.values():
            plan_id = by_tier.get(renamed.get(tier.name, tier.name))
            if plan_id is None:
                # One no plan of this stack has had: ids of deleted plans are not reused.
                plan_id = _new_id(alphabet, self._ids_given)
                self._ids_given.add(plan_id)
            usage_plans[plan_id] = LocalUsagePlan(plan_id, naming.usage_plan(tier.name), tier)
        self.usage_plans = usage_plans

    def plan_ids(self) -> dict[str, str]:
        """Tier name -> usage plan id, as the stack output ``plans`` gives them."""
        return {plan.tier.name: plan.id for plan in self.usage_plans.values()}

    def handle(self, method: str, target: str) -> Response:
        url = urlsplit(target)
        segments = url.path.removeprefix(MANAGEMENT_PREFIX).strip("/").split("/")
        try:
            if method != "GET" or segments[0] != "usageplans" or len(segments) not in (2, 3):
                raise ManagementError(
                    404,
                    "NotFoundException",
                    f"{method} {url.path}: the local stack answers GET {MANAGEMENT_PREFIX}/usageplans/{{id}} "
                    f"and GET {MANAGEMENT_PREFIX}/usageplans/{{id}}/usage",
                )
            plan = self._plan(segments[1])
            if len(segments) == 2:
                return _json(200, self.usage_plan(plan))
            if segments[2] != "usage":
                raise ManagementError(404, "NotFoundException", f"no resource {url.path}")
            return _json(200, self.usage(plan, parse_qs(url.query, keep_blank_values=True)))
        except ManagementError as error:
            response = _json(error.status, {"message": str(error)})
            return Response(
                error.status, [*response.headers, ("x-amzn-ErrorType", error.error_type)], response.body
            )

    def usage_plan(self, plan: LocalUsagePlan) -> dict[str, Any]:
        tier = plan.tier
        return {
            "id": plan.id,
            "name": plan.name,
            "description": f"Tier {tier.name} ({tier.isolation.value})",
            "apiStages": [],
            "throttle": {"burstLimit": tier.throttle.burst, "rateLimit": tier.throttle.rate},
            "quota": {
                "limit": tier.quota.limit,
                "offset": tier.quota.offset,
                "period": tier.quota.period.value,
            },
        }

    def usage(self, plan: LocalUsagePlan, query: Mapping[str, list[str]]) -> dict[str, Any]:
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        start = _date(query, "startDate")
        end = _date(query, "endDate")
        if start > end:
            raise ManagementError(
                400, "BadRequestException", "The start date must be on or before the end date"
            )
        if start < today - timedelta(days=USAGE_HISTORY_DAYS):
            raise ManagementError(
                400,
                "BadRequestException",
                f"The start date must be within the last {USAGE_HISTORY_DAYS} days",
            )
        key_ids = [key.key_id for key in self._plans.keys_of(plan.tier.name)]
        wanted = _single(query, "keyId")
        if wanted is not None:
            if wanted not in key_ids:
                raise ManagementError(404, "NotFoundException", "Invalid API Key identifier specified")
            key_ids = [wanted]
        limit = _limit(query)
        position = _single(query, "position")
        first = 0
        if position is not None:
            if position not in key_ids:
                raise ManagementError(400, "BadRequestException", "Invalid position parameter")
            first = key_ids.index(position)
        page = key_ids[first : first + limit]
        answer: dict[str, Any] = {
            "usagePlanId": plan.id,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "values": self._plans.daily_usage(page, start, end),
        }
        if first + limit < len(key_ids):
            answer["position"] = key_ids[first + limit]
        return answer

    def _plan(self, plan_id: str) -> LocalUsagePlan:
        plan = self.usage_plans.get(plan_id)
        if plan is None:
            raise ManagementError(404, "NotFoundException", "Invalid Usage Plan ID specified")
        return plan


def _new_id(alphabet: str, taken: Set[str]) -> str:
    while True:
        plan_id = "".join(secrets.choice(alphabet) for _ in range(USAGE_PLAN_ID_LENGTH))
        if plan_id not in taken:
            return plan_id


def _single(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _date(query: Mapping[str, list[str]], name: str) -> date:
    value = _single(query, name)
    if value is None:
        raise ManagementError(400, "BadRequestException", f"{name} is required (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ManagementError(
            400, "BadRequestException", f"Invalid {name} {value!r}: use the format YYYY-MM-DD"
        ) from None


def _limit(query: Mapping[str, list[str]]) -> int:
    value = _single(query, "limit")
    if value is None:
        return DEFAULT_PAGE_KEYS
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_KEYS:
        raise ManagementError(
            400, "BadRequestException", f"Invalid limit {value!r}: use 1 to {MAX_PAGE_KEYS}"
        )
    return int(value)


def _json(status: int, payload: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(payload).encode())
