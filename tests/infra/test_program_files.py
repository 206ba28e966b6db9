"""The program under Pulumi mocks: buckets for files, Lambda tenant isolation mode, and their checks."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from blueprint.policies import TENANT_TAG_VARIABLE
from handlers.contract import ROUTES, TENANT_ID_INVOKE_HEADER, ContextKey, Env
from tests.infra.conftest import TENANTS, TIERS, write_tier_file
from tests.infra.harness import (
    ACCOUNT,
    BUCKET,
    BUCKET_ENCRYPTION,
    BUCKET_POLICY,
    BUCKET_PUBLIC_ACCESS_BLOCK,
    BUCKET_VERSIONING,
    FUNCTION,
    REGION,
    REST_API,
    ProgramRun,
    run_program,
)
from tiers.naming import Naming

NAMING = Naming(project="tenant-tiers", stack="test")
BUCKETS = NAMING.buckets(ACCOUNT, REGION)
SETTINGS = (BUCKET_PUBLIC_ACCESS_BLOCK, BUCKET_ENCRYPTION, BUCKET_VERSIONING, BUCKET_POLICY)


@pytest.fixture(scope="module")
def tiers_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tier_file(tmp_path_factory.mktemp("tiers") / "test.yaml", TIERS, TENANTS)


@pytest.fixture(scope="module")
def run(tiers_path: Path) -> ProgramRun:
    return run_program(tiers_path)


@pytest.fixture(scope="module")
def isolated(tiers_path: Path) -> ProgramRun:
    return run_program(tiers_path, config={"lambdaTenantIsolation": "true"})


def settings_of(run: ProgramRun, bucket_logical_name: str) -> dict[str, Any]:
    bucket = run.named(bucket_logical_name)
    found = {
        resource.type: resource
        for resource in run.resources
        if resource.type in SETTINGS and resource.inputs.get("bucket") == bucket.id
    }
    assert set(found) == set(SETTINGS), bucket_logical_name
    return found


def test_one_pooled_bucket_and_one_bucket_per_silo_tenant_with_deterministic_names(run: ProgramRun) -> None:
    # GIVEN the tier file (silo tenants acme and hooli) WHEN the program runs
    names = {bucket.name: bucket.inputs["bucket"] for bucket in run.of_type(BUCKET)}
    # THEN the buckets carry the stack's label and the deployment digest, and nothing random
    assert names == {
        "storage-pooled-bucket": BUCKETS.pooled,
        "storage-silo-bucket-acme": BUCKETS.silo("acme"),
        "storage-silo-bucket-hooli": BUCKETS.silo("hooli"),
    }
    assert BUCKETS.pooled == NAMING.buckets(ACCOUNT, REGION).pooled
    assert BUCKETS.pooled != NAMING.buckets("210987654321", REGION).pooled
    assert BUCKETS.pooled != NAMING.buckets(ACCOUNT, "eu-west-1").pooled
    assert BUCKETS.pooled != Naming("tenant-tiers", "prod").buckets(ACCOUNT, REGION).pooled


def test_every_bucket_is_private_encrypted_versioned_tls_only_protected_and_retained(run: ProgramRun) -> None:
    for bucket in run.of_type(BUCKET):
        found = settings_of(run, bucket.name)
        assert found[BUCKET_PUBLIC_ACCESS_BLOCK].inputs == {
            "bucket": bucket.id,
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        }
        [rule] = found[BUCKET_ENCRYPTION].inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
        assert rule["blockedEncryptionTypes"] == ["SSE-C"]
        assert found[BUCKET_VERSIONING].inputs["versioningConfiguration"] == {"status": "Enabled"}
        # protected and retained, settings included, so a retained bucket keeps its protections
        for resource in (bucket, *found.values()):
            assert resource.protect, resource.name
            assert resource.retain_on_delete, resource.name


def test_the_bucket_policy_denies_every_request_without_tls(run: ProgramRun) -> None:
    for bucket in run.of_type(BUCKET):
        policy = json.loads(settings_of(run, bucket.name)[BUCKET_POLICY].inputs["policy"])
        arn = f"arn:aws:s3:::{bucket.inputs['bucket']}"
        assert policy["Statement"] == [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]


def test_bucket_settings_are_applied_one_after_another(run: ProgramRun) -> None:
    for bucket in run.of_type(BUCKET):
        found = settings_of(run, bucket.name)
        chain = [found[kind] for kind in SETTINGS]
        for earlier, later in itertools.pairwise(chain):
            assert earlier.urn in later.dependencies, (earlier.name, later.name)


def test_the_data_role_reaches_the_stacks_buckets_by_exact_name(run: ProgramRun) -> None:
    document = json.loads(run.named("functions-tenant-data-policy").inputs["policy"])
    s3_resources = {
        statement["Sid"]: statement["Resource"]
        for statement in document["Statement"]
        if statement["Sid"].endswith(("Files", "Prefix", "Bucket"))
    }
    assert s3_resources == {
        "PooledOwnFiles": f"arn:aws:s3:::{BUCKETS.pooled}/{TENANT_TAG_VARIABLE}/*",
        "PooledListOwnPrefix": f"arn:aws:s3:::{BUCKETS.pooled}",
        "SiloOwnBucketFiles": f"arn:aws:s3:::{BUCKETS.silo_prefix}{TENANT_TAG_VARIABLE}/*",
        "SiloListOwnBucket": f"arn:aws:s3:::{BUCKETS.silo_prefix}{TENANT_TAG_VARIABLE}",
    }


def test_the_registry_and_the_outputs_name_each_tenants_bucket(run: ProgramRun) -> None:
    assert run.outputs["tenants"]["acme"]["bucket"] == BUCKETS.silo("acme")
    assert run.outputs["tenants"]["globex"]["bucket"] == BUCKETS.pooled
    item = json.loads(run.named("tenants-registry-globex").inputs["item"])
    assert item["bucket"] == {"S": BUCKETS.pooled}


def operations_of(run: ProgramRun) -> list[dict[str, Any]]:
    """Every operation of the API's OpenAPI document (the RestApi's body)."""
    document = json.loads(run.one(REST_API).inputs["body"])
    return [operation for item in document["paths"].values() for operation in item.values()]


def test_every_body_reaches_the_tenant_api_as_bytes(run: ProgramRun) -> None:
    document = json.loads(run.one(REST_API).inputs["body"])
    assert document["x-amazon-apigateway-binary-media-types"] == ["*/*"]


# --- Lambda tenant isolation mode ------------------------------------------------------------------------


def test_tenant_isolation_is_off_by_default(run: ProgramRun) -> None:
    tenant_api = run.named("functions-tenant-api")
    assert "tenancyConfig" not in tenant_api.inputs
    assert Env.TENANT_ISOLATION not in tenant_api.inputs["environment"]["variables"]
    # a function without tenant isolation refuses invocations that carry a tenant id
    for operation in operations_of(run):
        assert "requestParameters" not in operation["x-amazon-apigateway-integration"]


def test_with_tenant_isolation_the_function_is_per_tenant_and_replaced_delete_first(
    isolated: ProgramRun,
) -> None:
    tenant_api = isolated.named("functions-tenant-api")
    assert tenant_api.inputs["tenancyConfig"] == {"tenantIsolationMode": "PER_TENANT"}
    assert tenant_api.inputs["environment"]["variables"][Env.TENANT_ISOLATION] == "PER_TENANT"
    # its fixed name: the replacement a tenancy change forces must delete the old function first
    assert tenant_api.delete_before_replace
    # the authorizer is not invoked per tenant (API Gateway calls it before any tenant is known)
    authorizer = isolated.named("functions-authorizer")
    assert "tenancyConfig" not in authorizer.inputs
    assert len(isolated.of_type(FUNCTION)) == 2


def test_with_tenant_isolation_every_integration_passes_the_authorizers_tenant_id(
    isolated: ProgramRun,
) -> None:
    header = f"integration.request.header.{TENANT_ID_INVOKE_HEADER}"
    operations = operations_of(isolated)
    assert len(operations) == len(ROUTES)
    for operation in operations:
        mapping = operation["x-amazon-apigateway-integration"]["requestParameters"]
        assert mapping == {header: f"context.authorizer.{ContextKey.TENANT_ID}"}
        # never from anything the client sends
        assert "method.request" not in json.dumps(mapping)


def test_turning_tenant_isolation_on_redeploys_the_stage(run: ProgramRun, isolated: ProgramRun) -> None:
    triggers = [r.named("api-deployment").inputs["triggers"] for r in (run, isolated)]
    assert triggers[0] != triggers[1]


@pytest.mark.parametrize("value", ["yes", "1", "PER_TENANT", ""])
def test_a_bad_tenant_isolation_setting_is_refused_before_anything_is_declared(
    tiers_path: Path, value: str
) -> None:
    failed = run_program(tiers_path, config={"lambdaTenantIsolation": value}, raise_errors=False)
    assert failed.error is not None
    assert "tenant-tiers:lambdaTenantIsolation" in str(failed.error)
    assert "true or false" in str(failed.error)
    assert failed.resources == ()


# --- S3's limits, before anything is declared ------------------------------------------------------------


def test_more_silo_tenants_than_the_bucket_quota_is_refused_before_anything_is_declared(
    tiers_path: Path,
) -> None:
    # GIVEN two silo tenants and a quota of two buckets (pooled + 2 silo = 3)
    failed = run_program(tiers_path, config={"s3BucketQuota": "2"}, raise_errors=False)
    assert failed.error is not None
    message = str(failed.error)
    assert "3 S3 buckets" in message
    assert "pulumi config set tenant-tiers:s3BucketQuota" in message
    assert failed.resources == ()


def test_a_silo_tenant_whose_bucket_name_s3_reserves_is_refused(tmp_path: Path) -> None:
    # GIVEN a silo tenant whose id makes its bucket name end with S3's reserved "-s3alias"
    path = write_tier_file(tmp_path / "t.yaml", TIERS, {"s3alias": {"tier": "premium", "name": "Alias"}})
    failed = run_program(path, raise_errors=False)
    assert failed.error is not None
    assert "tenant 's3alias'" in str(failed.error)
    assert "'-s3alias', which S3 reserves" in str(failed.error)
    assert failed.resources == ()


def test_bucket_names_fit_s3_for_the_longest_tenant_ids_and_any_project_and_stack(tmp_path: Path) -> None:
    longest = "a" * 32
    for project, stack in (("tenant-tiers", "dev"), ("My_Project.Name", "Prod.EU_1"), ("x", "y" * 100)):
        buckets = Naming(project, stack).buckets("123456789012", "ap-southeast-2")
        for name in (buckets.pooled, buckets.silo(longest)):
            assert 3 <= len(name) <= 63, name
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name), name
