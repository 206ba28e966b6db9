"""Watching the stack: metrics from the access log, the noisy-neighbour rules, dashboards, alarms.

Everything is declared per stack or per tier from ``blueprint.monitoring``, never per tenant: at
10,000 tenants the count is the same as at one. Alarms notify one SNS topic, a stack output.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from blueprint import monitoring
from tiers.model import Catalog, Tier
from tiers.naming import Naming


def tier_view(tier: Tier) -> monitoring.TierView:
    return monitoring.TierView(
        name=tier.name,
        isolation=tier.isolation.value,
        rate=tier.throttle.rate,
        burst=tier.throttle.burst,
        quota_limit=tier.quota.limit,
        quota_period=tier.quota.period.value,
        server_error_percent=tier.alarms.server_error_percent,
        throttled_percent=tier.alarms.throttled_percent,
    )


@dataclass(frozen=True)
class MonitoringArgs:
    naming: Naming
    catalog: Catalog
    access_log_group: aws.cloudwatch.LogGroup


class Monitoring(pulumi.ComponentResource):
    alarm_topic: aws.sns.Topic

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tenant-tiers:infra:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.naming.prefix
        log_group = args.access_log_group
        namespace = monitoring.metric_namespace(prefix)
        for spec in monitoring.METRIC_FILTERS:
            aws.cloudwatch.LogMetricFilter(
                f"{name}-metric-{spec.metric.value}",
                name=monitoring.metric_filter_name(prefix, spec.metric),
                log_group_name=log_group.name,
                pattern=spec.pattern,
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    name=spec.metric.value,
                    namespace=namespace,
                    value=spec.value,
                    unit=spec.unit,
                    dimensions=dict(monitoring.METRIC_FILTER_DIMENSIONS),
                ),
                opts=child,
            )
        for top in monitoring.TopTenants:
            aws.cloudwatch.ContributorInsightRule(
                f"{name}-top-tenants-{top.value}",
                rule_name=monitoring.rule_name(prefix, top),
                rule_state="ENABLED",
                rule_definition=log_group.name.apply(functools.partial(rule_definition, top)),
                opts=child,
            )
        views = [tier_view(tier) for tier in args.catalog.tiers.values()]
        bodies = pulumi.Output.all(log_group.arn, log_group.name).apply(
            lambda group: dashboard_bodies(prefix, group[0], group[1], views)
        )
        for dashboard in monitoring.dashboard_names(prefix, len(views)):
            aws.cloudwatch.Dashboard(
                f"{name}-dashboard-{dashboard.removeprefix(prefix + '-')}",
                dashboard_name=dashboard,
                dashboard_body=bodies.apply(operator.itemgetter(dashboard)),
                opts=child,
            )
        self.alarm_topic = aws.sns.Topic(
            f"{name}-alarms", name=monitoring.alarm_topic_name(prefix), opts=child
        )
        alarms = [monitoring.authorizer_alarm(prefix)]
        alarms += [alarm for view in views for alarm in monitoring.tier_alarms(prefix, view)]
        for alarm in alarms:
            aws.cloudwatch.MetricAlarm(
                f"{name}-alarm-{alarm.name.removeprefix(prefix + '-')}",
                name=alarm.name,
                alarm_description=alarm.description,
                comparison_operator="GreaterThanThreshold",
                evaluation_periods=1,
                threshold=alarm.threshold,
                treat_missing_data="notBreaching",
                metric_queries=metric_queries(alarm),
                alarm_actions=[self.alarm_topic.arn],
                ok_actions=[self.alarm_topic.arn],
                opts=child,
            )
        self.register_outputs({"alarm_topic_arn": self.alarm_topic.arn})


def metric_queries(alarm: monitoring.AlarmSpec) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
    """The alarm's queries as the provider's argument objects."""
    queries = []
    for query in alarm.metric_queries:
        metric = query.get("metric")
        queries.append(
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query["id"],
                expression=query.get("expression"),
                label=query.get("label"),
                return_data=query["return_data"],
                metric=None if metric is None else aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(**metric),
            )
        )
    return queries


def rule_definition(top: monitoring.TopTenants, log_group_name: str) -> str:
    return json.dumps(monitoring.contributor_rule(log_group_name, top), sort_keys=True)


def dashboard_bodies(
    prefix: str, log_group_arn: str, log_group_name: str, views: Sequence[monitoring.TierView]
) -> dict[str, str]:
    # arn:aws:logs:<region>:<account>:log-group:<name>: the widgets' region is the log group's.
    parts = str(log_group_arn).split(":")
    region = parts[3] if len(parts) > 3 else ""
    return {
        name: json.dumps(body, sort_keys=True)
        for name, body in monitoring.dashboards(prefix, region, log_group_name, views).items()
    }
