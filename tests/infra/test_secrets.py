"""No API key value reaches Pulumi's state in plaintext: every output that can carry one is secret.

A computed output is encrypted in state only if the provider's SDK class or the program
marks it (``additional_secret_outputs``), or it echoes a secret input. pulumi_aws marks
``ApiKey.value`` but not ``UsagePlanKey.value``, which the provider reads back from
GetUsagePlanKey. Each resource type the program declares is reviewed below; a new type
fails the test until someone has looked at its outputs and listed it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.infra.conftest import TENANTS, TIERS, write_tier_file
from tests.infra.harness import (
    ACCOUNT_SETTINGS,
    API_KEY,
    BUCKET,
    BUCKET_ENCRYPTION,
    BUCKET_POLICY,
    BUCKET_PUBLIC_ACCESS_BLOCK,
    BUCKET_VERSIONING,
    DEPLOYMENT,
    FUNCTION,
    LOG_GROUP,
    PERMISSION,
    REST_API,
    ROLE,
    ROLE_POLICY,
    STAGE,
    TABLE,
    TABLE_ITEM,
    USAGE_PLAN,
    USAGE_PLAN_KEY,
    USER_POOL,
    USER_POOL_CLIENT,
    ProgramRun,
    RecordedResource,
    run_program,
)

KEY_BEARING_OUTPUTS: dict[str, frozenset[str]] = {
    API_KEY: frozenset({"value"}),
    USAGE_PLAN_KEY: frozenset({"value"}),  # read back from GetUsagePlanKey
    TABLE_ITEM: frozenset({"item"}),  # the registry item holds the tenant's key value
    USER_POOL_CLIENT: frozenset({"clientSecret"}),  # none is generated, but a secret would land here
}
"""Outputs (camelCase, as in state) that carry a key or secret value, per resource type."""

NO_KEY_OUTPUTS: dict[str, str] = {
    ACCOUNT_SETTINGS: "a role ARN and throttle settings",
    BUCKET: "names, ARNs, domain names and settings",
    BUCKET_ENCRYPTION: "the algorithm (SSE-S3: no key id)",
    BUCKET_POLICY: "a policy document",
    BUCKET_PUBLIC_ACCESS_BLOCK: "four switches",
    BUCKET_VERSIONING: "a status",
    DEPLOYMENT: "ids, a description and the redeployment trigger hash",
    FUNCTION: "configuration; the environment holds table names, URLs and ARNs only",
    LOG_GROUP: "names and ARNs",
    PERMISSION: "eventSourceToken is for Alexa skills, unset here",
    REST_API: "ids and settings; body is the API definition",
    ROLE: "policy documents and ARNs",
    ROLE_POLICY: "a policy document",
    STAGE: "settings and URLs",
    TABLE: "schema and settings",
    USAGE_PLAN: "limits and stage bindings",
    USER_POOL: "settings; passwordPolicy and softwareTokenMfaConfiguration are settings, not secrets",
    "aws:sns/topic:Topic": "ARN, owner, policies and settings (kmsMasterKeyId is a key id, unset here)",
    "aws:cloudwatch/dashboard:Dashboard": "its ARN and body (metric names, tier names, rule names)",
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": "a filter pattern and its metric",
    "aws:cloudwatch/contributorInsightRule:ContributorInsightRule": "its ARN and rule definition",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "its ARN and settings",
}
"""Types reviewed in pulumi_aws's sources: no output carries a key or secret value."""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return run_program(write_tier_file(tmp_path_factory.mktemp("secrets") / "test.yaml", TIERS, TENANTS))


def secret_outputs(resource: RecordedResource) -> frozenset[str]:
    """Outputs the engine encrypts: marked secret, or echoing a secret input of the same name."""
    return resource.additional_secret_outputs | resource.secret_inputs


def test_every_declared_type_has_been_reviewed_for_key_bearing_outputs(run: ProgramRun) -> None:
    # GIVEN every custom resource the program declares
    declared = {resource.type for resource in run.custom_resources}
    # THEN each type is in exactly one of the review tables (a new type must be looked at first)
    assert not set(KEY_BEARING_OUTPUTS) & set(NO_KEY_OUTPUTS)
    unreviewed = declared - set(KEY_BEARING_OUTPUTS) - set(NO_KEY_OUTPUTS)
    assert not unreviewed, (
        f"review the outputs of {sorted(unreviewed)} in pulumi_aws and list each type in "
        "KEY_BEARING_OUTPUTS (with additional_secret_outputs in the program) or NO_KEY_OUTPUTS"
    )


def test_every_key_bearing_output_is_secret(run: ProgramRun) -> None:
    for resource in run.custom_resources:
        missing = KEY_BEARING_OUTPUTS.get(resource.type, frozenset()) - secret_outputs(resource)
        assert not missing, f"{resource.name} ({resource.type}) stores {sorted(missing)} in plaintext"


def test_the_reviewed_output_names_exist_in_pulumi_aws() -> None:
    """The tables name real outputs: a renamed output must not turn the check above into a no-op."""
    for type_token, outputs in KEY_BEARING_OUTPUTS.items():
        _, module_path, class_name = type_token.split(":")
        module_name = module_path.split("/")[0]
        package = importlib.import_module("pulumi_aws")
        module = getattr(package, module_name, None) or getattr(package, f"{module_name}_")
        resource_class = getattr(module, class_name)
        snake = {
            name.replace("_", "")
            for name, member in vars(resource_class).items()
            if isinstance(member, property)
        }
        for output in outputs:
            assert output.lower() in snake, f"{class_name} has no output {output}"


def test_no_key_value_appears_in_any_plaintext_output(run: ProgramRun) -> None:
    # GIVEN the key values API Gateway generated (the mocks return them like the provider does)
    key_values = {key.outputs["value"] for key in run.of_type(API_KEY)}
    assert len(key_values) == len(TENANTS)
    # THEN wherever one turns up in a resource's state, that output is encrypted
    for resource in run.custom_resources:
        for name, value in resource.outputs.items():
            if any(key_value in str(value) for key_value in key_values):
                assert name in secret_outputs(resource), (
                    f"{resource.name}.{name} holds a key value in plaintext"
                )
    # AND the plan associations do carry the value (so the check above has something to check)
    assert all(plan_key.outputs["value"] in key_values for plan_key in run.of_type(USAGE_PLAN_KEY))


def test_a_tier_file_written_elsewhere_gets_the_same_marks(tmp_path: Path) -> None:
    # GIVEN a single pooled tenant (no silo table, one plan) WHEN the program runs
    run = run_program(
        write_tier_file(tmp_path / "one.yaml", {"basic": TIERS["basic"]}, {"solo": {"tier": "basic"}})
    )
    # THEN its association's value is still marked
    [plan_key] = run.of_type(USAGE_PLAN_KEY)
    assert "value" in plan_key.additional_secret_outputs
