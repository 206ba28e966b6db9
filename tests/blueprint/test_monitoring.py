"""Monitoring as data (access log, metric filters, rules, dashboards, alarms) within AWS rules, no Pulumi."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from blueprint import monitoring
from blueprint.monitoring import (
    ACCESS_LOG_FIELDS,
    ACCESS_LOG_FORMAT,
    METRIC_FILTERS,
    AccessMetric,
    LogField,
    TierView,
)
from tiers.loader import MAX_TIERS

PREFIX = "tenant-tiers-prod"
REGION = "eu-west-1"
LOG_GROUP = "/aws/apigateway/tenant-tiers-prod-api/v1"


def view(name: str, **overrides: Any) -> TierView:
    fields: dict[str, Any] = {
        "name": name,
        "isolation": "pooled",
        "rate": 10.0,
        "burst": 20,
        "quota_limit": 10000,
        "quota_period": "MONTH",
        "server_error_percent": 1.0,
        "throttled_percent": 10.0,
    }
    return TierView(**{**fields, **overrides})


def sample_log_line(**values: str) -> dict[str, Any]:
    """An access log line as API Gateway writes it: each $context variable replaced by a value."""
    line = ACCESS_LOG_FORMAT
    defaults = {"$context.status": "200", "$context.responseLatency": "35"}
    for variable, value in {**defaults, **values}.items():
        line = line.replace(variable, value)
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_the_access_log_has_the_fields_billing_and_support_need() -> None:
    # GIVEN the stage's access log format WHEN API Gateway fills it in
    line = sample_log_line(**{"$context.status": "429", "$context.responseLatency": "7"})
    # THEN it is one JSON object with tenant, tier, key id, route, status, latency and request id
    for field in (
        LogField.TENANT_ID,
        LogField.TIER,
        LogField.API_KEY_ID,
        LogField.ROUTE,
        LogField.REQUEST_ID,
    ):
        assert field in line
    assert line[LogField.TENANT_ID] == "$context.authorizer.tenant_id"
    assert line[LogField.TIER] == "$context.authorizer.tier"
    assert line[LogField.API_KEY_ID] == "$context.identity.apiKeyId"
    assert line[LogField.ROUTE] == "$context.httpMethod $context.resourcePath"
    # AND status and latency are numbers, so filters and rules compare them as numbers
    assert (line[LogField.STATUS], line[LogField.LATENCY_MS]) == (429, 7)
    assert set(line) == {field.value for field in ACCESS_LOG_FIELDS}


def test_metric_filters_stay_within_cloudwatch_logs_limits() -> None:
    assert len(METRIC_FILTERS) <= monitoring.MAX_METRIC_FILTERS_PER_LOG_GROUP
    assert {spec.metric for spec in METRIC_FILTERS} == set(AccessMetric)
    for spec in METRIC_FILTERS:
        # Patterns are at most 1,024 characters and name every field the metric takes from the event
        assert len(spec.pattern) <= 1024
        assert "$.tier = *" in spec.pattern
        if spec.value.startswith("$."):
            assert f"{spec.value} = *" in spec.pattern
        # Filter names: 1-512 characters, no ':' or '*'
        name = monitoring.metric_filter_name(PREFIX, spec.metric)
        assert re.fullmatch(r"[^:*]{1,512}", name)
    # One dimension, the tier: at most 300 values, under the 1,000 at which CloudWatch disables a filter
    assert monitoring.METRIC_FILTER_DIMENSIONS == {"tier": "$.tier"}
    assert MAX_TIERS + 1 < monitoring.MAX_METRIC_FILTER_DIMENSION_VALUES


def test_contributor_insights_rules_follow_the_rule_syntax() -> None:
    for top in monitoring.TopTenants:
        rule = monitoring.contributor_rule(LOG_GROUP, top)
        assert rule["Schema"] == {"Name": "CloudWatchLogRule", "Version": 1}
        assert rule["LogGroupNames"] == [LOG_GROUP]
        assert rule["LogFormat"] == "JSON"
        contribution = rule["Contribution"]
        # Contributors are tenants (with their tier), never the requests refused before a tenant was known
        assert contribution["Keys"] == ["$.tenantId", "$.tier"]
        assert {"Match": "$.tenantId", "NotIn": ["-"]} in contribution["Filters"]
        assert len(contribution["Keys"]) <= 4
        assert len(contribution["Filters"]) <= 4
        assert rule["AggregateOn"] == ("Sum" if "ValueOf" in contribution else "Count")
    latency = monitoring.contributor_rule(LOG_GROUP, monitoring.TopTenants.LATENCY)["Contribution"]
    assert latency["ValueOf"] == "$.latencyMs"


def _metric_tiers(widget: dict[str, Any]) -> set[str]:
    return {metric[3] for metric in widget["properties"].get("metrics", [])}


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_TIERS))
def test_every_tier_gets_its_section_and_no_dashboard_exceeds_500_widgets(tier_count: int) -> None:
    # GIVEN any number of tiers up to the tier file's limit
    tiers = [view(f"tier-{number}") for number in range(tier_count)]
    # WHEN the dashboards are generated
    bodies = monitoring.dashboards(PREFIX, REGION, LOG_GROUP, tiers)
    # THEN their names are the ones the program declares, valid dashboard names
    assert list(bodies) == monitoring.dashboard_names(PREFIX, tier_count)
    for name in bodies:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", name)
    widgets = [widget for body in bodies.values() for widget in body["widgets"]]
    # AND each holds at most 500 widgets, laid out inside the 24-column grid
    for body in bodies.values():
        assert len(body["widgets"]) <= monitoring.MAX_WIDGETS_PER_DASHBOARD
        assert all(widget["x"] + widget["width"] <= monitoring.GRID_WIDTH for widget in body["widgets"])
    # AND every tier has four graphs of its own, each metric in the region and the stack's namespace
    for tier in tiers:
        own = [widget for widget in widgets if _metric_tiers(widget) == {tier.name}]
        assert len(own) == 4, tier.name
    metrics = [metric for widget in widgets for metric in widget["properties"].get("metrics", [])]
    assert {metric[0] for metric in metrics} == {monitoring.metric_namespace(PREFIX)}
    assert all(widget["properties"].get("region", REGION) == REGION for widget in widgets)


def test_a_tier_section_shows_requests_4xx_429s_5xx_p99_and_denials() -> None:
    [body] = monitoring.dashboards(PREFIX, REGION, LOG_GROUP, [view("gold", rate=2.5)]).values()
    graphs = [widget for widget in body["widgets"] if _metric_tiers(widget) == {"gold"}]
    shown = {
        (metric[1], metric[4]["stat"]) for widget in graphs for metric in widget["properties"]["metrics"]
    }
    assert shown == {
        ("Requests", "Sum"),
        ("ClientErrors", "Sum"),
        ("ServerErrors", "Sum"),
        ("Throttled", "Sum"),
        ("QuotaExceeded", "Sum"),
        ("Latency", "p99"),
        ("AuthorizerDenied", "Sum"),
        ("AuthorizerFailed", "Sum"),
    }
    # AND the requests graph marks what one tenant at the throttle rate would send per period
    [requests] = [widget for widget in graphs if widget["properties"]["title"].startswith("gold: requests")]
    assert requests["properties"]["annotations"]["horizontal"][0]["value"] == 2.5 * monitoring.PERIOD_SECONDS
    # AND the first dashboard has the four top-tenant graphs of the stack's rules
    rules = [
        widget["properties"]["insightRule"]["ruleName"]
        for widget in body["widgets"]
        if "insightRule" in widget["properties"]
    ]
    assert rules == [monitoring.rule_name(PREFIX, top) for top in monitoring.TopTenants]


def test_alarms_compare_each_tiers_shares_with_its_thresholds() -> None:
    alarms = monitoring.tier_alarms(PREFIX, view("gold", server_error_percent=2.5, throttled_percent=40.0))
    by_name = {alarm.name: alarm for alarm in alarms}
    assert set(by_name) == {f"{PREFIX}-gold-server-errors", f"{PREFIX}-gold-throttled"}
    assert by_name[f"{PREFIX}-gold-server-errors"].threshold == 2.5
    assert by_name[f"{PREFIX}-gold-throttled"].threshold == 40.0
    for alarm in alarms:
        returned = [query for query in alarm.metric_queries if query["return_data"]]
        assert len(returned) == 1
        assert returned[0]["expression"].startswith("IF(requests > 0, 100 * (")
        dimensions = [query["metric"]["dimensions"] for query in alarm.metric_queries if "metric" in query]
        assert dimensions
        assert all(dimension == {"tier": "gold"} for dimension in dimensions)
