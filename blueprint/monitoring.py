"""What the stack watches, as plain data: the access log format, the metrics drawn from it, the
Contributor Insights rules over it, the dashboards and the alarms, all generated from the tiers.

Nothing here is per tenant. Per-tier numbers for requests that never reach the Lambda (429s,
authorizer denials) come from metric filters on the stage's JSON access log, with the tier as
their only dimension: at most 300 tiers, under the 1,000 distinct dimension values after which
CloudWatch Logs disables a metric filter. Which tenants are the noisy ones is Contributor
Insights' job (top-N over the log, no metric per tenant).

Requests refused before the authorizer named a tenant (bad token: 401; unknown or suspended
tenant: Deny, 403; authorizer crash: 500) carry no tier: API Gateway logs ``-`` for the missing
context value, and they are shown and alarmed on under that tier value, ``UNATTRIBUTED_TIER``.

The program (``infra.monitoring``) and the benchmark floor declare these; tests check them
without Pulumi.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from handlers.contract import METRICS_NAMESPACE, ContextKey, MetricDimension

# ---------------------------------------------------------------------------------------------------------
# The access log


class LogField(StrEnum):
    """Fields of the stage's JSON access log (one line per request)."""

    REQUEST_ID = "requestId"
    TENANT_ID = "tenantId"
    TIER = "tier"
    API_KEY_ID = "apiKeyId"
    ROUTE = "route"
    METHOD = "method"
    PATH = "path"
    STATUS = "status"
    LATENCY_MS = "latencyMs"
    ERROR_TYPE = "errorType"
    ERROR = "error"
    AUTHORIZER_ERROR = "authorizerError"
    IP = "ip"
    REQUEST_TIME = "requestTime"


ACCESS_LOG_FIELDS: Final[Mapping[LogField, str]] = {
    LogField.REQUEST_ID: "$context.requestId",
    LogField.TENANT_ID: f"$context.authorizer.{ContextKey.TENANT_ID}",
    LogField.TIER: f"$context.authorizer.{ContextKey.TIER}",
    LogField.API_KEY_ID: "$context.identity.apiKeyId",
    LogField.ROUTE: "$context.httpMethod $context.resourcePath",
    LogField.METHOD: "$context.httpMethod",
    LogField.PATH: "$context.resourcePath",
    LogField.STATUS: "$context.status",
    LogField.LATENCY_MS: "$context.responseLatency",
    LogField.ERROR_TYPE: "$context.error.responseType",
    LogField.ERROR: "$context.error.message",
    LogField.AUTHORIZER_ERROR: "$context.authorizer.error",
    LogField.IP: "$context.identity.sourceIp",
    LogField.REQUEST_TIME: "$context.requestTime",
}
NUMERIC_LOG_FIELDS: Final = frozenset({LogField.STATUS, LogField.LATENCY_MS})
"""Written as JSON numbers (API Gateway always fills them), so filters can compare them as numbers."""


def access_log_format() -> str:
    """The stage's access log format: one JSON object, numbers unquoted."""
    members = [
        f"{json.dumps(field.value)}:{variable if field in NUMERIC_LOG_FIELDS else json.dumps(variable)}"
        for field, variable in ACCESS_LOG_FIELDS.items()
    ]
    return "{" + ",".join(members) + "}"


ACCESS_LOG_FORMAT: Final = access_log_format()

UNATTRIBUTED_TIER: Final = "-"
"""What API Gateway logs for ``$context.authorizer.tier`` when the authorizer named no tenant."""

# ---------------------------------------------------------------------------------------------------------
# Metrics from the access log

MAX_METRIC_FILTER_DIMENSION_VALUES: Final = 1000
"""CloudWatch Logs disables a metric filter that produces this many distinct dimension values."""
MAX_METRIC_FILTERS_PER_LOG_GROUP: Final = 100
PERIOD_SECONDS: Final = 300


class AccessMetric(StrEnum):
    REQUESTS = "Requests"
    CLIENT_ERRORS = "ClientErrors"
    SERVER_ERRORS = "ServerErrors"
    THROTTLED = "Throttled"
    QUOTA_EXCEEDED = "QuotaExceeded"
    AUTHORIZER_DENIED = "AuthorizerDenied"
    AUTHORIZER_FAILED = "AuthorizerFailed"
    LATENCY = "Latency"


@dataclass(frozen=True)
class MetricFilterSpec:
    metric: AccessMetric
    pattern: str
    value: str = "1"
    unit: str = "Count"


def _pattern(condition: str = "") -> str:
    # Every pattern names the tier field: a metric filter's dimension must come from a matched field.
    tier = f"$.{LogField.TIER} = *"
    return f"{{ {tier} && {condition} }}" if condition else f"{{ {tier} }}"


def _error_type(*types: str) -> str:
    return "(" + " || ".join(f'$.{LogField.ERROR_TYPE} = "{kind}"' for kind in types) + ")"


METRIC_FILTERS: Final[tuple[MetricFilterSpec, ...]] = (
    MetricFilterSpec(AccessMetric.REQUESTS, _pattern()),
    MetricFilterSpec(
        AccessMetric.CLIENT_ERRORS, _pattern(f"$.{LogField.STATUS} >= 400 && $.{LogField.STATUS} <= 499")
    ),
    MetricFilterSpec(AccessMetric.SERVER_ERRORS, _pattern(f"$.{LogField.STATUS} >= 500")),
    MetricFilterSpec(AccessMetric.THROTTLED, _pattern(_error_type("THROTTLED"))),
    MetricFilterSpec(AccessMetric.QUOTA_EXCEEDED, _pattern(_error_type("QUOTA_EXCEEDED"))),
    MetricFilterSpec(AccessMetric.AUTHORIZER_DENIED, _pattern(_error_type("UNAUTHORIZED", "ACCESS_DENIED"))),
    MetricFilterSpec(
        AccessMetric.AUTHORIZER_FAILED,
        _pattern(_error_type("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR")),
    ),
    MetricFilterSpec(
        AccessMetric.LATENCY,
        _pattern(f"$.{LogField.LATENCY_MS} = *"),
        value=f"$.{LogField.LATENCY_MS}",
        unit="Milliseconds",
    ),
)
METRIC_FILTER_DIMENSIONS: Final = {MetricDimension.TIER: f"$.{LogField.TIER}"}


def metric_namespace(prefix: str) -> str:
    """Access log metrics of one stack (``<project>-<stack>``): two stacks in one account never mix."""
    return f"{METRICS_NAMESPACE}/{prefix}"


def metric_filter_name(prefix: str, metric: AccessMetric) -> str:
    return f"{prefix}-{metric.value}"


# ---------------------------------------------------------------------------------------------------------
# Contributor Insights: the noisy neighbours, without a metric per tenant

TOP_CONTRIBUTORS: Final = 10


class TopTenants(StrEnum):
    REQUESTS = "requests"
    THROTTLED = "throttled"
    SERVER_ERRORS = "server-errors"
    LATENCY = "latency"


_TOP_TITLES: Final = {
    TopTenants.REQUESTS: "Top tenants by requests",
    TopTenants.THROTTLED: "Top tenants by 429s (throttled or over quota)",
    TopTenants.SERVER_ERRORS: "Top tenants by 5xx",
    TopTenants.LATENCY: "Top tenants by total latency (ms)",
}


def rule_name(prefix: str, top: TopTenants) -> str:
    return f"{prefix}-top-tenants-{top.value}"


def contributor_rule(log_group_name: str, top: TopTenants) -> dict[str, Any]:
    """A Contributor Insights rule body (CloudWatchLogRule, version 1) over the access log."""
    known_tenant = {"Match": f"$.{LogField.TENANT_ID}", "NotIn": [UNATTRIBUTED_TIER]}
    filters: list[dict[str, Any]] = [known_tenant]
    if top is TopTenants.THROTTLED:
        filters.append({"Match": f"$.{LogField.STATUS}", "In": [429]})
    elif top is TopTenants.SERVER_ERRORS:
        filters.append({"Match": f"$.{LogField.STATUS}", "GreaterThan": 499})
    contribution: dict[str, Any] = {
        "Keys": [f"$.{LogField.TENANT_ID}", f"$.{LogField.TIER}"],
        "Filters": filters,
    }
    if top is TopTenants.LATENCY:
        contribution["ValueOf"] = f"$.{LogField.LATENCY_MS}"
    return {
        "Schema": {"Name": "CloudWatchLogRule", "Version": 1},
        "LogGroupNames": [log_group_name],
        "LogFormat": "JSON",
        "Contribution": contribution,
        "AggregateOn": "Sum" if top is TopTenants.LATENCY else "Count",
    }


# ---------------------------------------------------------------------------------------------------------
# Tiers as the dashboard and the alarms see them


@dataclass(frozen=True)
class TierView:
    name: str
    isolation: str
    rate: float
    burst: int
    quota_limit: int
    quota_period: str
    server_error_percent: float
    throttled_percent: float


# ---------------------------------------------------------------------------------------------------------
# Dashboards

MAX_WIDGETS_PER_DASHBOARD: Final = 500
GRID_WIDTH: Final = 24
_TIER_WIDGETS: Final = 5
"""A tier's section: a heading and four graphs."""
_OVERVIEW_WIDGETS: Final = 1 + len(TopTenants) + 2
"""The first dashboard's heading, the top-N graphs, and the unattributed heading and graph."""
TIERS_PER_DASHBOARD: Final = (MAX_WIDGETS_PER_DASHBOARD - _OVERVIEW_WIDGETS) // _TIER_WIDGETS
"""Tiers beyond this continue on further dashboards (``<name>-2``, ...): 500 widgets each at most."""


def dashboard_name(prefix: str, page: int) -> str:
    return f"{prefix}-operations" if page == 1 else f"{prefix}-operations-{page}"


def dashboard_names(prefix: str, tier_count: int) -> list[str]:
    pages = max(1, -(-tier_count // TIERS_PER_DASHBOARD))
    return [dashboard_name(prefix, page) for page in range(1, pages + 1)]


def dashboards(
    prefix: str, region: str, log_group_name: str, tiers: Sequence[TierView]
) -> dict[str, dict[str, Any]]:
    """Dashboard name -> body. The first holds the top-N tenants and every tier that fits; one
    section per tier: requests (with the throttle rate), 429s throttled vs over quota, 4xx/5xx, p99
    latency, authorizer denials."""
    namespace = metric_namespace(prefix)
    pages = [
        tiers[start : start + TIERS_PER_DASHBOARD] for start in range(0, len(tiers), TIERS_PER_DASHBOARD)
    ]
    bodies: dict[str, dict[str, Any]] = {}
    for number, page in enumerate(pages or [[]], start=1):
        layout = _Layout()
        if number == 1:
            _overview(layout, prefix, region, namespace, log_group_name, len(pages))
        for tier in page:
            _tier_section(layout, region, namespace, tier)
        bodies[dashboard_name(prefix, number)] = {
            "start": "-PT6H",
            "periodOverride": "inherit",
            "widgets": layout.widgets,
        }
    return bodies


class _Layout:
    """Widgets placed left to right, wrapping at the grid's 24 columns."""

    def __init__(self) -> None:
        self.widgets: list[dict[str, Any]] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def add(self, width: int, height: int, widget: dict[str, Any]) -> None:
        if self._x + width > GRID_WIDTH:
            self._x, self._y, self._row_height = 0, self._y + self._row_height, 0
        self.widgets.append({**widget, "x": self._x, "y": self._y, "width": width, "height": height})
        self._x += width
        self._row_height = max(self._row_height, height)


def _text(markdown: str) -> dict[str, Any]:
    return {"type": "text", "properties": {"markdown": markdown}}


def _metric(namespace: str, metric: AccessMetric, tier: str, label: str, stat: str = "Sum") -> list[Any]:
    return [namespace, metric.value, MetricDimension.TIER, tier, {"label": label, "stat": stat}]


def _graph(region: str, title: str, metrics: list[list[Any]], **extra: Any) -> dict[str, Any]:
    properties = {
        "title": title,
        "region": region,
        "view": "timeSeries",
        "stacked": False,
        "period": PERIOD_SECONDS,
        "metrics": metrics,
        **extra,
    }
    return {"type": "metric", "properties": properties}


def _overview(
    layout: _Layout, prefix: str, region: str, namespace: str, log_group_name: str, pages: int
) -> None:
    more = (
        f" Tiers continue on {', '.join(dashboard_name(prefix, n) for n in range(2, pages + 1))}."
        if pages > 1
        else ""
    )
    layout.add(
        GRID_WIDTH,
        2,
        _text(
            f"# {prefix}\nGenerated from the tier file by `pulumi up`; edits here are overwritten. "
            f"Metrics come from the access log `{log_group_name}` (namespace `{namespace}`, "
            f"dimension `tier`).{more}"
        ),
    )
    for top in TopTenants:
        layout.add(
            12,
            6,
            {
                "type": "metric",
                "properties": {
                    "title": _TOP_TITLES[top],
                    "region": region,
                    "view": "timeSeries",
                    "period": PERIOD_SECONDS,
                    "insightRule": {
                        "maxContributorCount": TOP_CONTRIBUTORS,
                        "orderBy": "Sum",
                        "ruleName": rule_name(prefix, top),
                    },
                    "legend": {"position": "right"},
                },
            },
        )
    layout.add(
        GRID_WIDTH,
        1,
        _text(
            "## Refused before a tenant was known (bad token, unknown or suspended tenant, authorizer error)"
        ),
    )
    layout.add(
        GRID_WIDTH,
        6,
        _graph(
            region,
            "Authorizer denials and failures (no tenant)",
            [
                _metric(namespace, AccessMetric.AUTHORIZER_DENIED, UNATTRIBUTED_TIER, "denied (401/403)"),
                _metric(
                    namespace, AccessMetric.AUTHORIZER_FAILED, UNATTRIBUTED_TIER, "authorizer failed (500)"
                ),
            ],
        ),
    )


def _tier_section(layout: _Layout, region: str, namespace: str, tier: TierView) -> None:
    rate = f"{tier.rate:g}"
    layout.add(
        GRID_WIDTH,
        1,
        _text(
            f"## Tier {tier.name}: {tier.isolation}, {rate}/s burst {tier.burst}, quota "
            f"{tier.quota_limit:,}/{tier.quota_period}; alarms at {tier.server_error_percent:g}% 5xx, "
            f"{tier.throttled_percent:g}% throttled"
        ),
    )
    per_period = tier.rate * PERIOD_SECONDS
    layout.add(
        6,
        6,
        _graph(
            region,
            f"{tier.name}: requests, 4xx, 5xx",
            [
                _metric(namespace, AccessMetric.REQUESTS, tier.name, "requests"),
                _metric(namespace, AccessMetric.CLIENT_ERRORS, tier.name, "4xx"),
                _metric(namespace, AccessMetric.SERVER_ERRORS, tier.name, "5xx"),
            ],
            annotations={
                "horizontal": [{"label": f"one tenant at the throttle rate ({rate}/s)", "value": per_period}]
            },
        ),
    )
    layout.add(
        6,
        6,
        _graph(
            region,
            f"{tier.name}: 429 throttled vs over quota",
            [
                _metric(namespace, AccessMetric.THROTTLED, tier.name, "throttled (rate/burst)"),
                _metric(
                    namespace,
                    AccessMetric.QUOTA_EXCEEDED,
                    tier.name,
                    f"over quota ({tier.quota_limit:,}/{tier.quota_period})",
                ),
            ],
        ),
    )
    layout.add(
        6,
        6,
        _graph(
            region,
            f"{tier.name}: p99 latency (ms)",
            [_metric(namespace, AccessMetric.LATENCY, tier.name, "p99", stat="p99")],
        ),
    )
    layout.add(
        6,
        6,
        _graph(
            region,
            f"{tier.name}: authorizer denials and failures",
            [
                _metric(namespace, AccessMetric.AUTHORIZER_DENIED, tier.name, "denied"),
                _metric(namespace, AccessMetric.AUTHORIZER_FAILED, tier.name, "failed"),
            ],
        ),
    )


# ---------------------------------------------------------------------------------------------------------
# Alarms

AUTHORIZER_FAILURE_THRESHOLD: Final = 0
"""Any authorizer failure (API Gateway's 500 AUTHORIZER_FAILURE) in a period alarms."""


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    description: str
    threshold: float
    metric_queries: list[dict[str, Any]]
    """In pulumi_aws's MetricAlarm ``metric_queries`` shape; the one with ``return_data`` is compared."""


class AlarmKind(StrEnum):
    SERVER_ERRORS = "server-errors"
    THROTTLED = "throttled"


def alarm_topic_name(prefix: str) -> str:
    return f"{prefix}-alarms"


def tier_alarm_name(prefix: str, tier_name: str, kind: AlarmKind) -> str:
    return f"{prefix}-{tier_name}-{kind.value}"


def authorizer_alarm_name(prefix: str) -> str:
    return f"{prefix}-authorizer-failures"


def _query(query_id: str, namespace: str, metric: AccessMetric, tier: str) -> dict[str, Any]:
    return {
        "id": query_id,
        "metric": {
            "metric_name": metric.value,
            "namespace": namespace,
            "period": PERIOD_SECONDS,
            "stat": "Sum",
            "dimensions": {MetricDimension.TIER: tier},
        },
        "return_data": False,
    }


def _share(expression: str, label: str) -> dict[str, Any]:
    # No requests in a period is no problem: 0, not a division by zero (which would be missing data).
    return {
        "id": "share",
        "expression": f"IF(requests > 0, 100 * ({expression}) / requests, 0)",
        "label": label,
        "return_data": True,
    }


def tier_alarms(prefix: str, tier: TierView) -> list[AlarmSpec]:
    """Per tier: share of 5xx answers, share of 429 answers, each above the tier's threshold (percent)."""
    namespace = metric_namespace(prefix)
    requests = _query("requests", namespace, AccessMetric.REQUESTS, tier.name)
    return [
        AlarmSpec(
            name=tier_alarm_name(prefix, tier.name, AlarmKind.SERVER_ERRORS),
            description=(
                f"Tier {tier.name}: more than {tier.server_error_percent:g}% of requests answered 5xx in "
                f"{PERIOD_SECONDS // 60} minutes (alarms.server_error_percent in the tier file)."
            ),
            threshold=tier.server_error_percent,
            metric_queries=[
                requests,
                _query("errors", namespace, AccessMetric.SERVER_ERRORS, tier.name),
                _share("errors", "5xx %"),
            ],
        ),
        AlarmSpec(
            name=tier_alarm_name(prefix, tier.name, AlarmKind.THROTTLED),
            description=(
                f"Tier {tier.name}: more than {tier.throttled_percent:g}% of requests answered 429 "
                f"(throttled or over quota) in {PERIOD_SECONDS // 60} minutes "
                "(alarms.throttled_percent in the tier file)."
            ),
            threshold=tier.throttled_percent,
            metric_queries=[
                requests,
                _query("throttled", namespace, AccessMetric.THROTTLED, tier.name),
                _query("overquota", namespace, AccessMetric.QUOTA_EXCEEDED, tier.name),
                _share("throttled + overquota", "429 %"),
            ],
        ),
    ]


def authorizer_alarm(prefix: str) -> AlarmSpec:
    """One per stack: a failing authorizer names no tenant, so its failures belong to no tier."""
    namespace = metric_namespace(prefix)
    failed = _query("failed", namespace, AccessMetric.AUTHORIZER_FAILED, UNATTRIBUTED_TIER)
    return AlarmSpec(
        name=authorizer_alarm_name(prefix),
        description=(
            "The authorizer failed (API Gateway answered 500: the Lambda raised, timed out or returned "
            f"something unusable) at least once in {PERIOD_SECONDS // 60} minutes."
        ),
        threshold=AUTHORIZER_FAILURE_THRESHOLD,
        metric_queries=[{**failed, "return_data": True}],
    )
