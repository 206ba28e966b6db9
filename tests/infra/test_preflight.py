"""Quotas, physical names and retry settings are checked before anything is declared.

Mocks accept any name and any number of tables; AWS does not, and a `pulumi up` that
fails half-way leaves a half-onboarded stack. Each check fails the program with a
message that names the limit and says what to do, and declares nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.rates import DEPLOY_PARALLELISM, MIN_MAX_RETRIES
from tests.infra.conftest import TENANTS, TIERS, write_tier_file
from tests.infra.harness import (
    API_KEY,
    FUNCTION,
    LOG_GROUP,
    PROJECT,
    REST_API,
    ROLE,
    STAGE,
    TABLE,
    USAGE_PLAN,
    USER_POOL,
    USER_POOL_CLIENT,
    ProgramRun,
    run_program,
)
from tiers.loader import load_catalog
from tiers.naming import NAME_RULES, NameKind, Naming

SILO_TENANTS = sum(1 for tenant in TENANTS.values() if TIERS[tenant["tier"]]["isolation"] == "silo")

PHYSICAL_NAME_INPUTS: dict[str, tuple[str, NameKind]] = {
    TABLE: ("name", NameKind.DYNAMODB_TABLE),
    FUNCTION: ("name", NameKind.LAMBDA_FUNCTION),
    LOG_GROUP: ("name", NameKind.LOG_GROUP),
    ROLE: ("name", NameKind.IAM_ROLE),
    REST_API: ("name", NameKind.REST_API),
    STAGE: ("stageName", NameKind.STAGE),
    API_KEY: ("name", NameKind.API_KEY),
    USAGE_PLAN: ("name", NameKind.USAGE_PLAN),
    USER_POOL: ("name", NameKind.USER_POOL),
    USER_POOL_CLIENT: ("name", NameKind.USER_POOL_CLIENT),
    "aws:sns/topic:Topic": ("name", NameKind.SNS_TOPIC),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName", NameKind.DASHBOARD),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": ("name", NameKind.METRIC_FILTER),
    "aws:cloudwatch/contributorInsightRule:ContributorInsightRule": ("ruleName", NameKind.CONTRIBUTOR_RULE),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", NameKind.METRIC_ALARM),
}
"""Where each declared type carries the physical name AWS checks, and which rule applies."""

AUTONAMED: dict[str, NameKind] = {ROLE: NameKind.IAM_ROLE}
"""Types Pulumi names itself when the program gives no name: the logical name, '-', 7 random characters."""
AUTONAME_SUFFIX = len("-1234567")

# Pulumi's rule for stack names: letters, digits, '_', '.', '-', at most 100 characters.
stack_names = st.from_regex(r"[A-Za-z0-9_.\-]{1,100}", fullmatch=True)


def expect_refusal(run: ProgramRun, *needles: str) -> str:
    assert isinstance(run.error, pulumi.RunError), run.error
    message = str(run.error)
    for needle in needles:
        assert needle in message, message
    assert run.resources == ()
    return message


def declared_name_problems(run: ProgramRun) -> list[str]:
    """Every physical name the run declared that AWS would refuse, as `type name: reason`."""
    problems = []
    for resource in run.custom_resources:
        if resource.type in PHYSICAL_NAME_INPUTS:
            key, kind = PHYSICAL_NAME_INPUTS[resource.type]
            name = resource.inputs.get(key)
            if name is None and resource.type in AUTONAMED:
                name = resource.name + "x" * AUTONAME_SUFFIX
            if name is not None and not NAME_RULES[kind].accepts(name):
                problems.append(f"{resource.type} {name!r}")
        else:
            assert "name" not in resource.inputs, (
                f"{resource.type} has a physical name: list it in PHYSICAL_NAME_INPUTS, rule in NAME_RULES"
            )
    return problems


# --- quotas ------------------------------------------------------------------------------------------


def test_a_stack_that_needs_more_tables_than_the_quota_is_refused(tier_file: Any) -> None:
    # GIVEN a tier file whose stack declares one table more than the configured quota
    tables = len(run_program(tier_file()).of_type(TABLE))
    run = run_program(tier_file(), config={"dynamodbTableQuota": str(tables - 1)}, raise_errors=False)
    # THEN nothing is declared and the message counts the tables and says how to get more
    expect_refusal(
        run,
        f"needs {tables} DynamoDB tables",
        f"{SILO_TENANTS} silo tables",
        "tenant-tiers:dynamodbTableQuota",
        "Service Quotas",
        "pooled tiers",
        "pulumi config set tenant-tiers:dynamodbTableQuota",
    )


def test_the_quota_counts_every_table_the_stack_declares(tier_file: Any) -> None:
    # GIVEN a quota of exactly as many tables as the stack declares THEN it deploys
    tables = len(run_program(tier_file()).of_type(TABLE))
    assert len(run_program(tier_file(), config={"dynamodbTableQuota": str(tables)}).of_type(TABLE)) == tables


def test_more_tenants_than_the_api_key_quota_are_refused(tier_file: Any) -> None:
    run = run_program(tier_file(), config={"apiKeyQuota": str(len(TENANTS) - 1)}, raise_errors=False)
    expect_refusal(
        run,
        f"{len(TENANTS)} tenants",
        "tenant-tiers:apiKeyQuota",
        "10,000 API keys per account and region",
        "another region or account",
    )
    assert len(run_program(tier_file(), config={"apiKeyQuota": str(len(TENANTS))}).of_type(API_KEY)) == len(
        TENANTS
    )


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ({"apiKeyQuota": "10001"}, ["tenant-tiers:apiKeyQuota", "'10001'", "10,000"]),
        ({"apiKeyQuota": "0"}, ["tenant-tiers:apiKeyQuota", "'0'"]),
        ({"dynamodbTableQuota": "lots"}, ["tenant-tiers:dynamodbTableQuota", "'lots'"]),
        ({"dynamodbTableQuota": "-5"}, ["tenant-tiers:dynamodbTableQuota", "'-5'"]),
    ],
)
def test_bad_quota_settings_say_what_is_allowed(
    tier_file: Any, config: dict[str, str], needles: list[str]
) -> None:
    expect_refusal(run_program(tier_file(), config=config, raise_errors=False), *needles, "pulumi config set")


# --- physical names ------------------------------------------------------------------------------------


def test_a_stack_name_that_makes_a_function_name_too_long_is_refused_naming_stack_and_limit(
    tier_file: Any,
) -> None:
    # GIVEN a stack name that pushes "<project>-<stack>-tenant-api" past Lambda's 64 characters
    stack = "customer-facing-production-eu-west-1-blue"
    run = run_program(tier_file(), stack=stack, raise_errors=False)
    # THEN the program stops before declaring anything, naming the stack, the kind of name and the limit
    message = expect_refusal(
        run, f"stack '{stack}'", "Lambda function", "limit of 64", "tenant-tiers-" + stack
    )
    assert "IAM role" not in message


def test_a_dotted_stack_name_is_refused_where_aws_forbids_dots(tier_file: Any) -> None:
    run = run_program(tier_file(), stack="prod.eu", raise_errors=False)
    message = expect_refusal(run, "stack 'prod.eu'", "Lambda function", "'.'", "stack name")
    # DynamoDB, Cognito and CloudWatch Logs take dots: only the kinds AWS refuses are reported
    assert "DynamoDB table" not in message
    assert "log group" not in message


def test_every_problem_is_reported_at_once(tier_file: Any) -> None:
    run = run_program(tier_file(), stack="x" * 100, config={"apiKeyQuota": "1"}, raise_errors=False)
    message = expect_refusal(run, "Lambda function", "tenant-tiers:apiKeyQuota")
    assert "(and 1 more like it)" in message  # both functions, one line


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack=stack_names)
def test_for_any_stack_name_the_program_declares_only_valid_names_or_nothing(stack: str) -> None:
    # GIVEN any name Pulumi accepts for a stack
    with tempfile.TemporaryDirectory() as directory:
        run = run_program(
            write_tier_file(Path(directory) / "t.yaml", TIERS, TENANTS), stack=stack, raise_errors=False
        )
    # THEN either every physical name it declares passes AWS's rules ...
    if run.error is None:
        assert declared_name_problems(run) == []
    # ... or it declared nothing and said which stack name breaks which limit
    else:
        expect_refusal(run, f"stack '{stack}'")


def test_the_names_checked_before_declaring_are_the_names_declared(tier_file: Any) -> None:
    # GIVEN the names the preflight checks (Naming.physical_names) and the run that follows
    path = tier_file()
    run = run_program(path)
    catalog = load_catalog(path)
    checked = set(
        Naming(project=PROJECT, stack="test").physical_names(
            tier_names=catalog.tiers,
            tenant_ids=catalog.tenants,
            silo_tenant_ids=[tenant.id for tenant in catalog.tenants.values() if catalog.is_silo(tenant)],
            stage_name="v1",
        )
    )
    # THEN every physical name the program declares was checked, under its kind
    declared = {
        (kind, resource.inputs[key])
        for resource in run.custom_resources
        if resource.type in PHYSICAL_NAME_INPUTS
        for key, kind in [PHYSICAL_NAME_INPUTS[resource.type]]
        if key in resource.inputs
    }
    assert declared - checked == set(), "add these names to Naming.physical_names"


def test_the_dev_stack_declares_only_valid_names(tier_file: Any) -> None:
    run = run_program(tier_file(), stack="dev")
    assert declared_name_problems(run) == []
    assert {TABLE, FUNCTION, LOG_GROUP, API_KEY, USER_POOL} <= {
        resource.type for resource in run.custom_resources
    }


# --- provider retries -----------------------------------------------------------------------------------


def eleven_tenants() -> dict[str, Any]:
    """Eleven tenants make 44 management calls: beyond API Gateway's burst of 40."""
    return {f"t{index}": {"tier": "basic"} for index in range(11)}


def test_a_stack_beyond_the_burst_needs_enough_provider_retries(tier_file: Any) -> None:
    path = tier_file(tenants=eleven_tenants())
    run = run_program(path, config={"aws:maxRetries": None}, raise_errors=False)
    expect_refusal(
        run,
        "11 tenants",
        "aws:maxRetries is unset",
        f"pulumi config set aws:maxRetries {MIN_MAX_RETRIES}",
        f"pulumi up --parallel {DEPLOY_PARALLELISM}",
    )
    expect_refusal(
        run_program(path, config={"aws:maxRetries": "25"}, raise_errors=False), "aws:maxRetries is 25"
    )
    assert run_program(path, config={"aws:maxRetries": str(MIN_MAX_RETRIES)}).error is None


def test_a_small_stack_deploys_with_the_providers_default_retries(tier_file: Any) -> None:
    assert run_program(tier_file(), config={"aws:maxRetries": None}).error is None


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ({"aws:maxRetries": "many"}, ["aws:maxRetries is 'many'", "whole number"]),
        ({"aws:retryMode": "eager"}, ["aws:retryMode is 'eager'", "standard, adaptive"]),
    ],
)
def test_bad_retry_settings_are_refused(tier_file: Any, config: dict[str, str], needles: list[str]) -> None:
    expect_refusal(run_program(tier_file(), config=config, raise_errors=False), *needles)
