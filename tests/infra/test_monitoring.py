"""What the program declares to watch the stack (under mocks): per stack and per tier, never per tenant."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from blueprint.defaults import DEFAULT_SERVER_ERROR_PERCENT, DEFAULT_THROTTLED_PERCENT
from tests.infra.conftest import TENANTS, TIERS, write_tier_file
from tests.infra.harness import LOG_GROUP, STAGE, ProgramRun, run_program

PREFIX = "tenant-tiers-test"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
INSIGHT_RULE = "aws:cloudwatch/contributorInsightRule:ContributorInsightRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    # GIVEN the test tier file where gold sets its own alarm thresholds and the others take the defaults
    tiers = copy.deepcopy(TIERS)
    tiers["gold"]["alarms"] = {"server_error_percent": 2.5, "throttled_percent": 40}
    return run_program(write_tier_file(tmp_path_factory.mktemp("monitoring") / "test.yaml", tiers, TENANTS))


def access_log_group(run: ProgramRun) -> Any:
    stage = run.one(STAGE)
    [group] = [
        g
        for g in run.of_type(LOG_GROUP)
        if g.outputs["arn"] == stage.inputs["accessLogSettings"]["destinationArn"]
    ]
    return group


def test_one_dashboard_covers_every_tier_and_the_top_tenants(run: ProgramRun) -> None:
    # WHEN the program declares its dashboards THEN there is one, named after the stack
    [dashboard] = run.of_type(DASHBOARD)
    assert dashboard.inputs["dashboardName"] == f"{PREFIX}-operations"
    body = json.loads(dashboard.inputs["dashboardBody"])
    widgets = body["widgets"]
    # AND every tier of the tier file has its graphs, with metrics of that tier only
    for tier in TIERS:
        graphs = [
            widget
            for widget in widgets
            if {metric[3] for metric in widget["properties"].get("metrics", [])} == {tier}
        ]
        titles = sorted(widget["properties"]["title"] for widget in graphs)
        assert titles == sorted(
            [
                f"{tier}: requests, 4xx, 5xx",
                f"{tier}: 429 throttled vs over quota",
                f"{tier}: p99 latency (ms)",
                f"{tier}: authorizer denials and failures",
            ]
        )
    # AND the widgets draw from the region of the access log group and from this stack's rules
    assert {widget["properties"].get("region") for widget in widgets if widget["type"] == "metric"} == {
        "us-east-1"
    }
    declared_rules = {rule.inputs["ruleName"] for rule in run.of_type(INSIGHT_RULE)}
    shown_rules = {
        widget["properties"]["insightRule"]["ruleName"]
        for widget in widgets
        if "insightRule" in widget["properties"]
    }
    assert shown_rules == declared_rules


def test_contributor_insights_rules_read_the_access_log_group(run: ProgramRun) -> None:
    group = access_log_group(run)
    rules = run.of_type(INSIGHT_RULE)
    # THEN four rules: top tenants by requests, 429s, 5xx and latency, each over the stage's access log
    assert sorted(rule.inputs["ruleName"] for rule in rules) == sorted(
        f"{PREFIX}-top-tenants-{top}" for top in ("requests", "throttled", "server-errors", "latency")
    )
    for rule in rules:
        definition = json.loads(rule.inputs["ruleDefinition"])
        assert definition["LogGroupNames"] == [group.inputs["name"]]
        assert definition["Contribution"]["Keys"][0] == "$.tenantId"
        assert rule.inputs["ruleState"] == "ENABLED"


def test_metric_filters_count_per_tier_from_the_access_log(run: ProgramRun) -> None:
    group = access_log_group(run)
    filters = run.of_type(METRIC_FILTER)
    assert {f.inputs["metricTransformation"]["name"] for f in filters} == {
        "Requests",
        "ClientErrors",
        "ServerErrors",
        "Throttled",
        "QuotaExceeded",
        "AuthorizerDenied",
        "AuthorizerFailed",
        "Latency",
    }
    for metric_filter in filters:
        assert metric_filter.inputs["logGroupName"] == group.inputs["name"]
        transformation = metric_filter.inputs["metricTransformation"]
        assert transformation["dimensions"] == {"tier": "$.tier"}
        assert transformation["namespace"] == f"TenantTiers/{PREFIX}"


def test_alarms_per_tier_use_the_tier_files_thresholds_and_notify_the_output_topic(run: ProgramRun) -> None:
    [topic] = run.of_type(TOPIC)
    assert run.outputs["alarmTopicArn"] == topic.outputs["arn"]
    alarms = {alarm.inputs["name"]: alarm for alarm in run.of_type(ALARM)}
    expected = {
        "basic": (DEFAULT_SERVER_ERROR_PERCENT, DEFAULT_THROTTLED_PERCENT),
        "gold": (2.5, 40.0),
        "premium": (DEFAULT_SERVER_ERROR_PERCENT, DEFAULT_THROTTLED_PERCENT),
    }
    assert set(alarms) == {f"{PREFIX}-authorizer-failures"} | {
        f"{PREFIX}-{tier}-{kind}" for tier in expected for kind in ("server-errors", "throttled")
    }
    for tier, (server_errors, throttled) in expected.items():
        assert alarms[f"{PREFIX}-{tier}-server-errors"].inputs["threshold"] == server_errors
        assert alarms[f"{PREFIX}-{tier}-throttled"].inputs["threshold"] == throttled
        for kind in ("server-errors", "throttled"):
            queries = alarms[f"{PREFIX}-{tier}-{kind}"].inputs["metricQueries"]
            assert {q["metric"]["dimensions"]["tier"] for q in queries if "metric" in q} == {tier}
    for alarm in alarms.values():
        assert alarm.inputs["alarmActions"] == [topic.outputs["arn"]]
        assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm.inputs["treatMissingData"] == "notBreaching"


def test_monitoring_resources_do_not_grow_with_tenants(tmp_path: Path) -> None:
    # GIVEN the same tiers with 5 tenants and with 60
    many = {f"tenant-{n}": {"tier": ("basic", "gold", "premium")[n % 3], "name": f"T{n}"} for n in range(60)}
    few = run_program(write_tier_file(tmp_path / "few.yaml", TIERS, TENANTS))
    lots = run_program(write_tier_file(tmp_path / "many.yaml", TIERS, many))

    # THEN the monitoring component declares the same resources for both
    def monitoring(run: ProgramRun) -> list[tuple[str, str]]:
        return sorted((r.type, r.name) for r in run.resources if r.name.startswith("monitoring"))

    assert monitoring(few) == monitoring(lots)


def test_a_stack_name_aws_would_refuse_in_a_dashboard_name_declares_nothing(tmp_path: Path) -> None:
    tiers_file = write_tier_file(tmp_path / "t.yaml", TIERS, TENANTS)
    failed = run_program(tiers_file, stack="prod.eu", raise_errors=False)
    assert failed.error is not None
    message = str(failed.error)
    assert "CloudWatch dashboard" in message
    assert "SNS topic" in message
    assert failed.resources == ()
