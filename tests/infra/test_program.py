"""The program under Pulumi mocks: what a tier file makes it declare, and how."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from blueprint import openapi
from blueprint.policies import TENANT_TAG_VARIABLE
from handlers.contract import (
    AUTHORIZER_HANDLER,
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    PLACEMENT_PARTITION_KEY,
    REGISTRY_PARTITION_KEY,
    ROUTES,
    TENANT_API_HANDLER,
    TENANT_ATTRIBUTE,
    TENANT_CLAIM,
    Env,
)
from infra.api import Api, ApiArgs
from infra.config import PROJECT_ROOT
from tests.infra.conftest import TENANTS, TIERS, write_tier_file
from tests.infra.harness import (
    ACCOUNT,
    ACCOUNT_SETTINGS,
    API_KEY,
    AUTHORIZER,
    DEPLOYMENT,
    FUNCTION,
    INTEGRATION,
    METHOD,
    PERMISSION,
    PROJECT,
    REGION,
    RESOURCE,
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
    run_program,
)
from tiers.loader import load_catalog
from tiers.naming import Naming
from tiers.plan import StackNames
from tiers.registry import registry_item

NAMING = Naming(project="tenant-tiers", stack="test")
BUCKETS = NAMING.buckets(ACCOUNT, REGION)


@pytest.fixture(scope="module")
def tiers_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tier_file(tmp_path_factory.mktemp("tiers") / "test.yaml", TIERS, TENANTS)


@pytest.fixture(scope="module")
def run(tiers_path: Path) -> ProgramRun:
    return run_program(tiers_path)


def policy_of(run: ProgramRun, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run.named(name).inputs["policy"])
    return document


def all_statements(run: ProgramRun) -> list[dict[str, Any]]:
    documents = [json.loads(policy.inputs["policy"]) for policy in run.of_type(ROLE_POLICY)]
    documents += [json.loads(role.inputs["assumeRolePolicy"]) for role in run.of_type(ROLE)]
    return [statement for document in documents for statement in document["Statement"]]


# --- usage plans, keys and plan keys -------------------------------------------------------------


def test_one_usage_plan_per_tier_with_its_throttle_and_quota_bound_to_the_stage(run: ProgramRun) -> None:
    # GIVEN three tiers WHEN the program runs THEN each has one plan carrying its limits on the stage
    rest_api = run.one(REST_API)
    stage = run.one(STAGE)
    plans = {plan.name: plan.inputs for plan in run.of_type(USAGE_PLAN)}
    assert set(plans) == {f"tenants-plan-{tier}" for tier in TIERS}
    for tier_name, tier in TIERS.items():
        plan = plans[f"tenants-plan-{tier_name}"]
        assert plan["name"] == NAMING.usage_plan(tier_name)
        assert plan["throttleSettings"] == {
            "rateLimit": tier["throttle"]["rate"],
            "burstLimit": tier["throttle"]["burst"],
        }
        assert plan["quotaSettings"] == {
            "limit": tier["quota"]["limit"],
            "period": tier["quota"]["period"],
            "offset": tier["quota"].get("offset", 0),
        }
        assert plan["apiStages"] == [{"apiId": rest_api.id, "stage": stage.inputs["stageName"]}]


def test_each_tenant_has_one_key_on_exactly_its_tiers_plan(run: ProgramRun) -> None:
    keys = {key.name: key for key in run.of_type(API_KEY)}
    plan_keys = {plan_key.name: plan_key for plan_key in run.of_type(USAGE_PLAN_KEY)}
    assert set(keys) == {f"tenants-key-{tenant}" for tenant in TENANTS}
    assert set(plan_keys) == {f"tenants-plan-key-{tenant}" for tenant in TENANTS}
    for tenant_id, tenant in TENANTS.items():
        key = keys[f"tenants-key-{tenant_id}"]
        plan_key = plan_keys[f"tenants-plan-key-{tenant_id}"]
        assert key.inputs["name"] == NAMING.api_key(tenant_id)
        assert "value" not in key.inputs, "AWS generates key values; the program must not set one"
        assert plan_key.inputs["keyId"] == key.id
        assert plan_key.inputs["keyType"] == "API_KEY"
        assert plan_key.inputs["usagePlanId"] == run.named(f"tenants-plan-{tenant['tier']}").id


def test_a_suspended_tenants_key_is_disabled_and_the_others_enabled(run: ProgramRun) -> None:
    for tenant_id, tenant in TENANTS.items():
        assert run.named(f"tenants-key-{tenant_id}").inputs["enabled"] is not tenant.get("suspended", False)


def test_plan_keys_are_deleted_before_they_are_replaced(run: ProgramRun) -> None:
    # A key may sit in one plan per stage: the old association must go before the new one is made.
    assert all(plan_key.delete_before_replace for plan_key in run.of_type(USAGE_PLAN_KEY))


# --- tables and the registry ----------------------------------------------------------------------


def test_one_pooled_table_and_one_silo_table_per_silo_tenant(run: ProgramRun) -> None:
    data_tables = {
        table.name: table.inputs
        for table in run.of_type(TABLE)
        if table.name not in ("storage-registry", "storage-placement")
    }
    silo_tenants = [tenant for tenant, spec in TENANTS.items() if TIERS[spec["tier"]]["isolation"] == "silo"]
    assert set(data_tables) == {"storage-pooled", *(f"storage-silo-{tenant}" for tenant in silo_tenants)}
    assert data_tables["storage-pooled"]["name"] == NAMING.pooled_table
    for tenant in silo_tenants:
        assert data_tables[f"storage-silo-{tenant}"]["name"] == NAMING.silo_table(tenant)
    for table in data_tables.values():
        assert table["hashKey"] == DATA_PARTITION_KEY
        assert table["rangeKey"] == DATA_SORT_KEY
        assert table["attributes"] == [
            {"name": DATA_PARTITION_KEY, "type": "S"},
            {"name": DATA_SORT_KEY, "type": "S"},
        ]


def test_every_table_is_on_demand_recoverable_encrypted_protected_and_retained(run: ProgramRun) -> None:
    tables = run.of_type(TABLE)
    assert len(tables) == 3 + 2  # pooled, registry, placement, two silo tenants
    for table in tables:
        assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
        assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
        assert table.inputs["serverSideEncryption"] == {"enabled": True}
        assert table.inputs["deletionProtectionEnabled"] is True
        assert table.protect, table.name
        assert table.retain_on_delete, table.name


def test_the_plan_unprotects_exactly_the_protected_resources_of_a_silo_tenants_storage(
    run: ProgramRun,
) -> None:
    # GIVEN the program's protected resources that belong to silo tenant acme
    silo_tenant = "acme"
    protected = {
        resource.urn for resource in run.resources if resource.protect and silo_tenant in resource.name
    }
    # WHEN `python -m tiers plan` names the URNs to unprotect before acme's silo storage leaves the stack
    named = StackNames(project=PROJECT, stack="test").silo_storage_urns(silo_tenant)
    # THEN they are exactly those: `pulumi up` will not stop at one it left out
    assert len(protected) == 6  # the table, the bucket, its four settings
    assert set(named) == protected


def test_the_placement_table_is_declared_without_items(run: ProgramRun) -> None:
    # GIVEN the program WHEN it runs THEN the placement table exists, keyed by tenant id, and no
    # TableItem writes into it: its items belong to `python -m tiers migrate`, so `pulumi up` during a
    # move can neither overwrite nor delete the fence or a tenant's location.
    placement = run.named("storage-placement")
    assert placement.inputs["name"] == NAMING.placement_table
    assert placement.inputs["hashKey"] == PLACEMENT_PARTITION_KEY
    assert placement.inputs.get("rangeKey") is None
    assert all(item.inputs["tableName"] != NAMING.placement_table for item in run.of_type(TABLE_ITEM))


def test_the_registry_holds_one_secret_item_per_tenant(run: ProgramRun, tiers_path: Path) -> None:
    catalog = load_catalog(tiers_path)
    registry = run.named("storage-registry")
    assert registry.inputs["hashKey"] == REGISTRY_PARTITION_KEY
    assert registry.inputs["name"] == NAMING.registry_table
    items = {item.name: item for item in run.of_type(TABLE_ITEM)}
    assert set(items) == {f"tenants-registry-{tenant}" for tenant in TENANTS}
    for tenant in catalog.tenants.values():
        item = items[f"tenants-registry-{tenant.id}"]
        key = run.named(f"tenants-key-{tenant.id}")
        assert item.inputs["tableName"] == NAMING.registry_table
        assert item.inputs["hashKey"] == REGISTRY_PARTITION_KEY
        assert "item" in item.secret_inputs, "the item carries the key value: it must be a secret"
        assert json.loads(item.inputs["item"]) == registry_item(
            catalog, tenant, NAMING, buckets=BUCKETS, api_key_id=key.id, api_key_value=key.outputs["value"]
        )


def test_at_most_three_resources_per_pooled_tenant_and_nine_per_silo_tenant(
    tier_file: Any,
) -> None:
    # GIVEN the same file with and without one more pooled and one more silo tenant
    base = run_program(tier_file())
    grown = run_program(
        tier_file(
            tenants={
                **TENANTS,
                "newco": {"tier": "basic", "name": "NewCo"},
                "bigco": {"tier": "premium", "name": "BigCo"},
            },
            name="grown.yaml",
        )
    )
    # THEN the two tenants cost 3 + 9 resources (a silo tenant: table, bucket and its four settings), all
    # named after their tenant id
    added = {resource.name for resource in grown.resources} - {resource.name for resource in base.resources}
    assert added == {
        "tenants-key-newco",
        "tenants-plan-key-newco",
        "tenants-registry-newco",
        "tenants-key-bigco",
        "tenants-plan-key-bigco",
        "tenants-registry-bigco",
        "storage-silo-bigco",
        "storage-silo-bucket-bigco",
        "storage-silo-bucket-bigco-public-access",
        "storage-silo-bucket-bigco-encryption",
        "storage-silo-bucket-bigco-versioning",
        "storage-silo-bucket-bigco-tls-only",
    }
    assert len(grown.resources) == len(base.resources) + 12


# --- API, authorizer, functions ---------------------------------------------------------------------


def document_of(run: ProgramRun) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(run.one(REST_API).inputs["body"])
    return body


def test_rest_api_is_defined_by_the_openapi_document_and_nothing_else(run: ProgramRun) -> None:
    # GIVEN the program WHEN it declares the API THEN the RestApi carries the whole definition as its body
    rest_api = run.one(REST_API).inputs
    assert document_of(run) == openapi.rest_api_document(
        title=f"{NAMING.prefix}-api",
        authorizer_uri=run.named("functions-authorizer").outputs["invokeArn"],
        tenant_api_uri=run.named("functions-tenant-api").outputs["invokeArn"],
        authorizer_cache_ttl_seconds=300,
    )
    assert rest_api["name"] == f"{NAMING.prefix}-api"
    # overwrite: a route the document no longer has is deleted, not merged back in
    assert rest_api["putRestApiMode"] == "overwrite"
    assert rest_api["failOnWarnings"] is True
    assert rest_api["apiKeySource"] == document_of(run)["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
    assert rest_api["endpointConfiguration"] == {"types": "REGIONAL"}
    # AND no route, integration or authorizer is declared beside it (two definitions would diverge)
    declared = {resource.type for resource in run.resources}
    for type_token in (AUTHORIZER, INTEGRATION, METHOD, RESOURCE):
        assert type_token not in declared


def test_the_api_definition_serves_exactly_the_contracts_routes(run: ProgramRun) -> None:
    assert openapi.routes_of(document_of(run)) == set(ROUTES)


def test_every_route_runs_the_token_authorizer_requires_an_api_key_and_proxies_to_the_tenant_api(
    run: ProgramRun,
) -> None:
    document = document_of(run)
    authorizer = document["components"]["securitySchemes"][openapi.AUTHORIZER_NAME]
    assert authorizer["name"] == "Authorization"
    assert authorizer["in"] == "header"
    assert authorizer["x-amazon-apigateway-authorizer"] == {
        "type": "token",
        "authorizerUri": run.named("functions-authorizer").outputs["invokeArn"],
        "authorizerResultTtlInSeconds": 300,
    }
    tenant_api_uri = run.named("functions-tenant-api").outputs["invokeArn"]
    for path_item in document["paths"].values():
        for operation in path_item.values():
            assert operation["security"] == [{openapi.AUTHORIZER_NAME: []}, {openapi.API_KEY_SCHEME: []}]
            integration = operation["x-amazon-apigateway-integration"]
            assert (integration["type"], integration["httpMethod"]) == ("aws_proxy", "POST")
            assert integration["uri"] == tenant_api_uri
            assert "requestParameters" not in integration, "tenant isolation mode is off by default"


def test_authorizer_cache_ttl_comes_from_config(tier_file: Any) -> None:
    run = run_program(tier_file(), config={"authorizerCacheTtlSeconds": "0"})
    scheme = document_of(run)["components"]["securitySchemes"][openapi.AUTHORIZER_NAME]
    assert scheme["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] == 0


def test_one_lambda_permission_per_function_covers_every_route_of_this_api(tier_file: Any) -> None:
    # GIVEN a stack on stage "prod" WHEN the program runs
    run = run_program(tier_file(), config={"stageName": "prod"})
    execution_arn = run.one(REST_API).outputs["executionArn"]
    permissions = {permission.name: permission.inputs for permission in run.of_type(PERMISSION)}
    # THEN there is exactly one permission per function, scoped to this API (and the tenant API's to
    # this stage), so no route can be added without one or removed leaving one behind
    assert set(permissions) == {"api-authorizer-permission", "api-tenant-api-permission"}
    authorizer = permissions["api-authorizer-permission"]
    tenant_api = permissions["api-tenant-api-permission"]
    assert authorizer["function"] == run.named("functions-authorizer").inputs["name"]
    assert authorizer["sourceArn"] == f"{execution_arn}/authorizers/*"
    assert tenant_api["function"] == run.named("functions-tenant-api").inputs["name"]
    assert tenant_api["sourceArn"] == f"{execution_arn}/prod/*/*"
    for permission in permissions.values():
        assert permission["principal"] == "apigateway.amazonaws.com"
        assert permission["action"] == "lambda:InvokeFunction"


def test_a_route_added_to_the_contract_needs_no_resource_of_its_own(
    tier_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the contract with one more route WHEN the program runs
    path = tier_file()
    before = run_program(path)
    monkeypatch.setattr(openapi, "ROUTES", (*ROUTES, ("GET", "/reports")))
    after = run_program(path)
    # THEN the same resources are declared (the route lives in the document, its permission already covers it)
    assert sorted(resource.urn for resource in after.resources) == sorted(
        resource.urn for resource in before.resources
    )
    assert ("GET", "/reports") in openapi.routes_of(document_of(after))


def test_the_deployment_is_replaced_exactly_when_the_api_definition_changes(
    tier_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def trigger(run: ProgramRun) -> str:
        value: str = run.one(DEPLOYMENT).inputs["triggers"]["redeployment"]
        assert value == hashlib.sha256(run.one(REST_API).inputs["body"].encode()).hexdigest()
        return value

    path = tier_file()
    baseline_run = run_program(path)
    baseline = trigger(baseline_run)
    assert trigger(run_program(path)) == baseline, "an unchanged program must not redeploy"
    assert trigger(run_program(path, config={"authorizerCacheTtlSeconds": "60"})) != baseline
    # GIVEN a route removed from the contract
    remaining = tuple(route for route in ROUTES if route != ("DELETE", "/items/{id}"))
    monkeypatch.setattr(openapi, "ROUTES", remaining)
    removed = run_program(path)
    # THEN it is gone from the API definition and the stage gets a new deployment of it
    assert openapi.routes_of(document_of(removed)) == set(remaining)
    assert trigger(removed) != baseline
    # AND the deployment is taken after the RestApi has the new definition (it depends on it)
    deployment = removed.one(DEPLOYMENT)
    assert deployment.inputs["restApi"] == removed.one(REST_API).id
    assert removed.one(REST_API).urn in deployment.dependencies
    assert removed.named("api-tenant-api-permission").urn in deployment.dependencies


def test_stage_writes_json_access_logs_with_tenant_request_and_status(run: ProgramRun) -> None:
    stage = run.one(STAGE)
    access_logs = run.named("api-access-logs")
    assert stage.inputs["stageName"] == "v1"
    assert stage.inputs["deployment"] == run.one(DEPLOYMENT).id
    settings = stage.inputs["accessLogSettings"]
    assert settings["destinationArn"] == access_logs.outputs["arn"]
    # (API Gateway writes status and latency as numbers: a sample line is valid JSON once they are)
    log_line = settings["format"].replace("$context.status", "429").replace("$context.responseLatency", "12")
    log_format = json.loads(log_line)
    assert log_format["tenantId"] == "$context.authorizer.tenant_id"
    assert log_format["tier"] == "$context.authorizer.tier"
    assert log_format["apiKeyId"] == "$context.identity.apiKeyId"
    assert log_format["route"] == "$context.httpMethod $context.resourcePath"
    assert log_format["requestId"] == "$context.requestId"
    assert log_format["errorType"] == "$context.error.responseType"
    assert (log_format["status"], log_format["latencyMs"]) == (429, 12)
    for variable in ("$context.identity.sourceIp", "$context.httpMethod"):
        assert variable in log_format.values()
    # The account-level CloudWatch role that access logs need is declared by default ...
    account = run.one(ACCOUNT_SETTINGS)
    assert account.urn in stage.dependencies
    role = run.named("api-cloudwatch-role")
    assert account.inputs["cloudwatchRoleArn"] == role.outputs["arn"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }


def test_the_api_can_forward_the_verified_tenant_id_to_every_integration(tmp_path: Path) -> None:
    # GIVEN the API component asked to forward the tenant id (Lambda tenant isolation mode)
    def program() -> None:
        role = "arn:aws:iam::123456789012:role/functions"
        Api(
            "api",
            ApiArgs(
                naming=NAMING,
                stage_name="v1",
                authorizer_cache_ttl_seconds=300,
                log_retention_days=30,
                manage_api_gateway_account=False,
                authorizer=aws.lambda_.Function("authorizer", role=role, runtime="python3.12"),
                tenant_api=aws.lambda_.Function("tenant-api", role=role, runtime="python3.12"),
                forward_tenant_id=True,
            ),
        )

    # WHEN it is declared
    run = run_program(write_tier_file(tmp_path / "unused.yaml", TIERS, TENANTS), program=program)
    # THEN every integration maps X-Amz-Tenant-Id from the authorizer's context
    operations = [operation for item in document_of(run)["paths"].values() for operation in item.values()]
    assert len(operations) == len(ROUTES)
    for operation in operations:
        assert operation["x-amazon-apigateway-integration"]["requestParameters"] == openapi.TENANT_ID_MAPPING


def test_api_gateway_account_settings_role_and_policy_survive_a_destroy(run: ProgramRun) -> None:
    # The region's setting is shared by every stack in it: destroying this one must not reset it
    # (the provider's delete does) nor delete the role it names or that role's logging policy.
    for name in ("api-account", "api-cloudwatch-role", "api-cloudwatch-policy"):
        assert run.named(name).retain_on_delete, name


def test_api_gateway_account_settings_can_be_left_to_another_stack(tier_file: Any) -> None:
    run = run_program(tier_file(), config={"manageApiGatewayAccount": "false", "stageName": "prod"})
    assert run.of_type(ACCOUNT_SETTINGS) == []
    assert run.one(STAGE).inputs["stageName"] == "prod"
    assert run.outputs["apiUrl"].endswith("/prod")


def test_functions_get_runtime_architecture_handlers_environment_and_the_bundle(
    run: ProgramRun, default_bundle: Any
) -> None:
    pool = run.one(USER_POOL)
    issuer = f"https://{pool.outputs['endpoint']}"
    for logical, handler in (
        ("functions-authorizer", AUTHORIZER_HANDLER),
        ("functions-tenant-api", TENANT_API_HANDLER),
    ):
        function = run.named(logical).inputs
        assert function["handler"] == handler
        assert function["runtime"] == "python3.12"
        assert function["architectures"] == ["arm64"]
        code = Path(function["code"].path)
        assert code.parent == default_bundle.path.parent
        assert code.name.startswith("bundle-py3.12-arm64-")
        variables = function["environment"]["variables"]
        assert variables[Env.REGISTRY_TABLE] == NAMING.registry_table
        assert variables[Env.TOKEN_ISSUER] == issuer
        assert variables[Env.JWKS_URL] == f"{issuer}/.well-known/jwks.json"
        assert variables[Env.APP_CLIENT_ID] == run.one(USER_POOL_CLIENT).id
        assert variables[Env.TENANT_DATA_ROLE_ARN] == run.named("functions-tenant-data-role").outputs["arn"]
        assert variables[Env.PLACEMENT_TABLE] == NAMING.placement_table
        assert variables[Env.SERVICE_NAME]
        assert variables[Env.METRICS_NAMESPACE]
        log_group = run.named(f"{logical}-logs")
        assert log_group.inputs["name"] == f"/aws/lambda/{function['name']}"
        assert log_group.inputs["retentionInDays"] == 30
        assert log_group.urn in run.named(logical).dependencies


def test_functions_follow_the_configured_architecture(tier_file: Any) -> None:
    run = run_program(tier_file(), config={"lambdaArchitecture": "x86_64", "lambdaRuntime": "python3.12"})
    code_dirs = {Path(function.inputs["code"].path) for function in run.of_type(FUNCTION)}
    assert [function.inputs["architectures"] for function in run.of_type(FUNCTION)] == [["x86_64"]] * 2
    [code_dir] = code_dirs
    assert "x86_64" in code_dir.name


# --- Cognito ------------------------------------------------------------------------------------------


def test_tenant_attribute_is_immutable_and_users_are_created_by_admins_only(run: ProgramRun) -> None:
    pool = run.one(USER_POOL)
    [schema] = pool.inputs["schemas"]
    assert schema["name"] == TENANT_ATTRIBUTE
    assert schema["attributeDataType"] == "String"
    assert schema["mutable"] is False
    assert schema["stringAttributeConstraints"] == {"minLength": "1", "maxLength": "32"}
    assert pool.inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is True
    assert pool.inputs["usernameAttributes"] == ["email"]
    assert pool.protect


def test_usernames_match_whatever_their_case_from_the_first_deploy(run: ProgramRun) -> None:
    # `python -m tiers users add` stores emails lower-cased; a user typing capitals must still sign in.
    # Cognito fixes this when the pool is created (changing it replaces the pool and its users).
    assert run.one(USER_POOL).inputs["usernameConfiguration"] == {"caseSensitive": False}


def test_app_client_cannot_write_the_tenant_attribute_has_no_secret_and_the_right_flows(
    run: ProgramRun,
) -> None:
    client = run.one(USER_POOL_CLIENT).inputs
    assert TENANT_CLAIM not in client["writeAttributes"]
    assert client["writeAttributes"], "without an explicit list Cognito lets users write every attribute"
    assert TENANT_CLAIM in client["readAttributes"]
    assert client["generateSecret"] is False
    assert set(client["explicitAuthFlows"]) == {
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert client["preventUserExistenceErrors"] == "ENABLED"
    assert client["userPoolId"] == run.one(USER_POOL).id


# --- IAM ----------------------------------------------------------------------------------------------


def test_tenant_data_role_reaches_only_the_callers_own_items(run: ProgramRun) -> None:
    pooled_arn = run.named("storage-pooled").outputs["arn"]
    document = policy_of(run, "functions-tenant-data-policy")
    assert (
        run.named("functions-tenant-data-policy").inputs["role"] == run.named("functions-tenant-data-role").id
    )
    resources = set()
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        if statement["Action"] == "s3:ListBucket" or "s3:GetObject" in statement["Action"]:
            continue  # the files statements: judged against requests in tests/handlers/test_files_policy.py
        assert statement["Condition"] == {
            "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [TENANT_TAG_VARIABLE]},
            "Null": {"dynamodb:LeadingKeys": "false"},
        }
        resources.add(statement["Resource"])
    table_base = pooled_arn.rpartition("/")[0]
    placement_arn = run.named("storage-placement").outputs["arn"]
    assert resources == {
        pooled_arn,
        f"{table_base}/{NAMING.silo_table_prefix}{TENANT_TAG_VARIABLE}",
        placement_arn,
    }
    # THEN the placement table is only read and checked inside write transactions, never written
    (placement,) = [s for s in document["Statement"] if s["Resource"] == placement_arn]
    assert placement["Action"] == ["dynamodb:GetItem", "dynamodb:ConditionCheckItem"]


def test_no_role_may_scan_or_use_partiql_or_wildcard_tables(run: ProgramRun) -> None:
    for statement in all_statements(run):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert action not in ("dynamodb:Scan", "dynamodb:*", "*")
            assert not action.startswith("dynamodb:PartiQL")
        resource = statement.get("Resource", "")
        assert not str(resource).endswith("table/*")


def test_only_the_tenant_api_role_may_assume_the_data_role_with_a_session_tag(run: ProgramRun) -> None:
    trust = json.loads(run.named("functions-tenant-data-role").inputs["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"AWS": run.named("functions-tenant-api-role").outputs["arn"]}
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    api_policy = policy_of(run, "functions-tenant-api-policy")
    assert [statement["Resource"] for statement in api_policy["Statement"]] == [
        run.named("functions-tenant-data-role").outputs["arn"]
    ]


def test_authorizer_reads_the_registry_and_functions_log_to_their_own_groups_only(run: ProgramRun) -> None:
    [read] = policy_of(run, "functions-authorizer-policy")["Statement"]
    assert read["Action"] == ["dynamodb:GetItem"]
    assert read["Resource"] == run.named("storage-registry").outputs["arn"]
    for function in ("authorizer", "tenant-api"):
        [write] = policy_of(run, f"functions-{function}-logs-policy")["Statement"]
        assert write["Resource"] == f"{run.named(f'functions-{function}-logs').outputs['arn']}:log-stream:*"
        assert (
            run.named(f"functions-{function}-logs-policy").inputs["role"]
            == run.named(f"functions-{function}-role").id
        )


# --- outputs ------------------------------------------------------------------------------------------


def test_stack_outputs_name_every_plan_and_tenant_and_hold_no_secret(run: ProgramRun) -> None:
    outputs = run.outputs
    assert outputs["apiUrl"] == run.one(STAGE).outputs["invokeUrl"]
    assert outputs["userPoolId"] == run.one(USER_POOL).id
    assert outputs["appClientId"] == run.one(USER_POOL_CLIENT).id
    assert outputs["registryTable"] == NAMING.registry_table
    assert outputs["placementTable"] == NAMING.placement_table
    assert outputs["pooledTable"] == NAMING.pooled_table
    assert outputs["siloTablePrefix"] == NAMING.silo_table_prefix
    assert outputs["plans"] == {tier: run.named(f"tenants-plan-{tier}").id for tier in TIERS}
    assert outputs["tenants"]["acme"] == {
        "apiKeyId": run.named("tenants-key-acme").id,
        "table": NAMING.silo_table("acme"),
        "bucket": BUCKETS.silo("acme"),
        "tier": "premium",
    }
    assert outputs["tenants"]["globex"]["table"] == NAMING.pooled_table
    assert set(outputs["tenants"]) == set(TENANTS)
    assert run.secret_outputs == frozenset()
    rendered = json.dumps(outputs)
    for key in run.of_type(API_KEY):
        assert key.outputs["value"] not in rendered


# --- changes over time ----------------------------------------------------------------------------------


def _archive_flavour(archive: pulumi.FileArchive) -> str:
    # The bundle's name without its content hash: other helpers may edit handlers/ between two runs.
    return Path(archive.path).name.rpartition("-")[0]


def _comparable(run: ProgramRun) -> dict[str, tuple[Any, ...]]:
    return {
        resource.urn: (
            json.dumps(resource.inputs, sort_keys=True, default=_archive_flavour),
            resource.protect,
            resource.retain_on_delete,
            resource.delete_before_replace,
        )
        for resource in run.resources
    }


def test_adding_a_tenant_changes_nothing_for_the_others(tier_file: Any) -> None:
    before = _comparable(run_program(tier_file()))
    after = _comparable(
        run_program(
            tier_file(tenants={**TENANTS, "zeta": {"tier": "premium", "name": "Zeta"}}, name="more.yaml")
        )
    )
    assert {urn: after[urn] for urn in before} == before
    assert all("zeta" in urn for urn in set(after) - set(before))


def test_moving_a_tenant_between_tiers_only_moves_its_plan_key(tier_file: Any) -> None:
    # GIVEN globex on basic WHEN it moves to gold (both pooled)
    before = run_program(tier_file())
    after = run_program(
        tier_file(tenants={**TENANTS, "globex": {"tier": "gold", "name": "Globex"}}, name="moved.yaml")
    )
    old, new = _comparable(before), _comparable(after)
    # THEN the same resources exist, and only globex's plan association and registry entry differ
    assert set(old) == set(new)
    changed = {urn.rpartition("::")[2] for urn in old if old[urn] != new[urn]}
    assert changed == {"tenants-plan-key-globex", "tenants-registry-globex"}
    assert after.named("tenants-plan-key-globex").inputs["usagePlanId"] == after.named("tenants-plan-gold").id


def test_moving_a_pooled_tenant_to_a_silo_tier_keeps_its_key_and_adds_its_table(tier_file: Any) -> None:
    before = run_program(tier_file())
    after = run_program(
        tier_file(tenants={**TENANTS, "globex": {"tier": "premium", "name": "Globex"}}, name="silo.yaml")
    )
    assert after.named("tenants-key-globex").urn == before.named("tenants-key-globex").urn
    assert after.named("tenants-key-globex").inputs == before.named("tenants-key-globex").inputs
    assert after.named("storage-silo-globex").protect
    assert after.outputs["tenants"]["globex"]["table"] == NAMING.silo_table("globex")


def test_renaming_a_tier_keeps_its_usage_plan_and_every_key(tier_file: Any) -> None:
    # GIVEN tier basic with two tenants
    before = run_program(tier_file())
    # WHEN it is renamed standard (renamed_from: basic) and its tenants follow the new name
    renamed_tenants = {
        tenant_id: {**entry, "tier": "standard"} if entry["tier"] == "basic" else entry
        for tenant_id, entry in TENANTS.items()
    }
    tiers = {
        "standard" if name == "basic" else name: {**tier, "renamed_from": "basic"}
        if name == "basic"
        else tier
        for name, tier in TIERS.items()
    }
    after = run_program(tier_file(tiers=tiers, tenants=renamed_tenants, name="renamed.yaml"))

    # THEN the plan answers to its old logical name, so Pulumi updates it in place instead of replacing it
    plan = after.named("tenants-plan-standard")
    assert plan.aliases == ("tenants-plan-basic",)
    assert plan.inputs["name"] == NAMING.usage_plan("standard")
    # AND every other resource keeps its logical name, and no key or table changes at all
    old, new = _comparable(before), _comparable(after)
    # (the tier's alarms carry its name, so they are renamed too: nothing stateful is lost by that)
    renamed_urn = {
        urn: urn.replace("tenants-plan-basic", "tenants-plan-standard").replace(
            "monitoring-alarm-basic-", "monitoring-alarm-standard-"
        )
        for urn in old
    }
    assert {renamed_urn[urn] for urn in old} == set(new)
    for urn in old:
        name = urn.rpartition("::")[2]
        if name.startswith(("tenants-key-", "storage-")):
            assert old[urn] == new[renamed_urn[urn]], name
    # AND the tier's associations point at the plan (the same physical plan: mocks cannot show that id)
    assert after.named("tenants-plan-key-globex").inputs["usagePlanId"] == plan.id


# --- robustness -----------------------------------------------------------------------------------------


class InputsOnlyMocks(pulumi.runtime.Mocks):
    """The mocks of Pulumi's testing guide: every resource echoes its inputs, no output is modelled."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}_id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return {}, []


@pytest.mark.parametrize("preview", [False, True])
def test_the_program_evaluates_under_mocks_that_model_no_outputs(
    run: ProgramRun, tiers_path: Path, preview: bool
) -> None:
    # GIVEN mocks that return no ARNs, endpoints or key values WHEN the program runs (up or preview)
    bare = run_program(tiers_path, mocks=InputsOnlyMocks(), preview=preview)
    # THEN it declares the very same resources
    assert sorted((resource.type, resource.name) for resource in bare.resources) == sorted(
        (resource.type, resource.name) for resource in run.resources
    )


def test_a_relative_tier_file_is_found_from_the_working_directory_or_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_tier_file(tmp_path / "mine.yaml", TIERS, {"solo": {"tier": "gold", "name": "Solo"}})
    mine = run_program(Path("mine.yaml"))
    assert set(mine.outputs["tenants"]) == {"solo"}
    project = run_program(Path("tiers/dev.yaml"))
    assert set(project.outputs["tenants"]) == set(load_catalog(PROJECT_ROOT / "tiers" / "dev.yaml").tenants)
