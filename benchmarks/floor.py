"""The floor the program is measured against: the same resources, declared as plainly as Python allows.

Every resource the program declares, with the same type, logical name and inputs,
through the same pulumi_aws classes and the same Output plumbing where an input
depends on another resource, and the same stack outputs; but no catalog, no
validation, no settings, no components: one flat function over the tier file's raw
YAML. Whatever the program costs above this is the price of its structure.

``tests/benchmarks`` checks, at a small size, that the floor and the program register
the same multiset of (type, name, inputs), so the floor cannot drift into flattery.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from blueprint import monitoring, openapi, policies
from blueprint.defaults import DEFAULT_SERVER_ERROR_PERCENT, DEFAULT_THROTTLED_PERCENT
from blueprint.identity import AUTH_FLOWS, CLIENT_READABLE_ATTRIBUTES, USER_WRITABLE_ATTRIBUTES
from blueprint.monitoring import ACCESS_LOG_FORMAT
from handlers.contract import (
    AUTHORIZER_HANDLER,
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    METRICS_NAMESPACE,
    PLACEMENT_PARTITION_KEY,
    REGISTRY_PARTITION_KEY,
    TENANT_API_HANDLER,
    TENANT_ATTRIBUTE,
    TENANT_ID_MAX_LENGTH,
    Env,
    RegistryField,
)
from infra.bundle import BundleSpec, build_bundle
from infra.config import Settings
from infra.functions import render_policy
from infra.monitoring import dashboard_bodies, metric_queries, rule_definition
from tiers.naming import BucketNames, Naming

DEFAULTS = Settings(tiers_file=Path())
"""The floor reads no stack config: it declares what the program declares with the default settings."""
RUNTIME = DEFAULTS.lambda_runtime
ARCHITECTURE = DEFAULTS.lambda_architecture.value
STAGE_NAME = DEFAULTS.stage_name
AUTHORIZER_CACHE_TTL_SECONDS = DEFAULTS.authorizer_cache_ttl_seconds
LOG_RETENTION_DAYS = DEFAULTS.log_retention_days


def default_bundle() -> Path:
    """The Lambda bundle the program builds with the default settings (from the cache when it is there)."""
    return build_bundle(BundleSpec(DEFAULTS.python_version, DEFAULTS.lambda_architecture)).path


def floor(tiers_file: Path, code_dir: Path, prefix: str) -> None:
    """Declare the stack for ``tiers_file``; ``prefix`` is ``<project>-<stack>``, ``code_dir`` the bundle."""
    raw = yaml.load(tiers_file.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    tiers: dict[str, dict[str, Any]] = raw["tiers"]
    tenants: dict[str, dict[str, Any]] = raw["tenants"]
    code = pulumi.FileArchive(str(code_dir))

    user_pool = aws.cognito.UserPool(
        "identity-user-pool",
        name=f"{prefix}-users",
        username_attributes=["email"],
        username_configuration={"case_sensitive": False},
        auto_verified_attributes=["email"],
        admin_create_user_config={"allow_admin_create_user_only": True},
        schemas=[
            {
                "name": TENANT_ATTRIBUTE,
                "attribute_data_type": "String",
                "mutable": False,
                "required": False,
                "developer_only_attribute": False,
                "string_attribute_constraints": {"min_length": "1", "max_length": str(TENANT_ID_MAX_LENGTH)},
            }
        ],
        password_policy={
            "minimum_length": 12,
            "require_lowercase": True,
            "require_uppercase": True,
            "require_numbers": True,
            "require_symbols": False,
            "temporary_password_validity_days": 7,
        },
        account_recovery_setting={"recovery_mechanisms": [{"name": "verified_email", "priority": 1}]},
        deletion_protection="ACTIVE",
        opts=pulumi.ResourceOptions(protect=True),
    )
    app_client = aws.cognito.UserPoolClient(
        "identity-app-client",
        name=f"{prefix}-app",
        user_pool_id=user_pool.id,
        generate_secret=False,
        explicit_auth_flows=list(AUTH_FLOWS),
        write_attributes=list(USER_WRITABLE_ATTRIBUTES),
        read_attributes=list(CLIENT_READABLE_ATTRIBUTES),
        prevent_user_existence_errors="ENABLED",
        enable_token_revocation=True,
    )
    issuer = pulumi.Output.format("https://{0}", user_pool.endpoint)

    pooled_table = _table("storage-pooled", f"{prefix}-pooled", DATA_PARTITION_KEY, DATA_SORT_KEY)
    registry_table = _table("storage-registry", f"{prefix}-registry", REGISTRY_PARTITION_KEY)
    placement_table = _table("storage-placement", f"{prefix}-placement", PLACEMENT_PARTITION_KEY)
    silo_tiers = {name for name, tier in tiers.items() if tier["isolation"] == "silo"}
    for tenant_id, tenant in tenants.items():
        if tenant["tier"] in silo_tiers:
            _table(
                f"storage-silo-{tenant_id}", f"{prefix}-silo-{tenant_id}", DATA_PARTITION_KEY, DATA_SORT_KEY
            )
    naming = Naming(pulumi.get_project(), pulumi.get_stack())
    buckets = pulumi.Output.all(
        aws.get_caller_identity_output().account_id, aws.get_region_output().region
    ).apply(lambda found: naming.buckets(found[0], found[1]))
    _bucket("storage-pooled-bucket", buckets.apply(lambda names: names.pooled))
    for tenant_id, tenant in tenants.items():
        if tenant["tier"] in silo_tiers:
            _bucket(f"storage-silo-bucket-{tenant_id}", buckets.apply(functools.partial(_silo, tenant_id)))

    lambda_trust = json.dumps(policies.lambda_trust_policy())
    authorizer_role = aws.iam.Role("functions-authorizer-role", assume_role_policy=lambda_trust)
    tenant_api_role = aws.iam.Role("functions-tenant-api-role", assume_role_policy=lambda_trust)
    data_role = aws.iam.Role(
        "functions-tenant-data-role",
        description="Assumed by the tenant API with a tenant_id session tag: that tenant's items only",
        assume_role_policy=render_policy(policies.tenant_data_trust_policy, tenant_api_role.arn),
    )
    data_policy = aws.iam.RolePolicy(
        "functions-tenant-data-policy",
        role=data_role.id,
        policy=render_policy(
            lambda pooled_arn, placement_arn, pooled_bucket, silo_prefix: policies.tenant_data_policy(
                pooled_arn, f"{prefix}-silo-", placement_arn, pooled_bucket, silo_prefix
            ),
            pooled_table.arn,
            placement_table.arn,
            buckets.apply(lambda names: names.pooled),
            buckets.apply(lambda names: names.silo_prefix),
        ),
    )
    authorizer_access = aws.iam.RolePolicy(
        "functions-authorizer-policy",
        role=authorizer_role.id,
        policy=render_policy(policies.authorizer_policy, registry_table.arn),
    )
    tenant_api_access = aws.iam.RolePolicy(
        "functions-tenant-api-policy",
        role=tenant_api_role.id,
        policy=render_policy(policies.tenant_api_policy, data_role.arn),
    )
    environment: dict[str, Any] = {
        Env.REGISTRY_TABLE: registry_table.name,
        Env.TOKEN_ISSUER: issuer,
        Env.JWKS_URL: pulumi.Output.format("{0}/.well-known/jwks.json", issuer),
        Env.APP_CLIENT_ID: app_client.id,
        Env.TENANT_DATA_ROLE_ARN: data_role.arn,
        Env.PLACEMENT_TABLE: placement_table.name,
        Env.METRICS_NAMESPACE: METRICS_NAMESPACE,
    }
    functions: dict[str, aws.lambda_.Function] = {}
    for function, role, handler, timeout, depends_on in (
        ("authorizer", authorizer_role, AUTHORIZER_HANDLER, 10, [authorizer_access]),
        ("tenant-api", tenant_api_role, TENANT_API_HANDLER, 15, [tenant_api_access, data_policy]),
    ):
        log_group = aws.cloudwatch.LogGroup(
            f"functions-{function}-logs",
            name=f"/aws/lambda/{prefix}-{function}",
            retention_in_days=LOG_RETENTION_DAYS,
        )
        logging = aws.iam.RolePolicy(
            f"functions-{function}-logs-policy",
            role=role.id,
            policy=render_policy(policies.lambda_logs_policy, log_group.arn),
        )
        functions[function] = aws.lambda_.Function(
            f"functions-{function}",
            name=f"{prefix}-{function}",
            role=role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=handler,
            code=code,
            memory_size=512,
            timeout=timeout,
            environment={"variables": {**environment, Env.SERVICE_NAME: function}},
            opts=pulumi.ResourceOptions(
                depends_on=[log_group, logging, *depends_on], delete_before_replace=True
            ),
        )
    authorizer_function, tenant_api = functions["authorizer"], functions["tenant-api"]

    body = pulumi.Output.all(authorizer_function.invoke_arn, tenant_api.invoke_arn).apply(
        lambda uris: json.dumps(
            openapi.rest_api_document(
                title=f"{prefix}-api",
                authorizer_uri=str(uris[0]),
                tenant_api_uri=str(uris[1]),
                authorizer_cache_ttl_seconds=AUTHORIZER_CACHE_TTL_SECONDS,
            ),
            sort_keys=True,
        )
    )
    rest_api = aws.apigateway.RestApi(
        "api-rest-api",
        name=f"{prefix}-api",
        body=body,
        put_rest_api_mode="overwrite",
        fail_on_warnings=True,
        api_key_source=openapi.API_KEY_SOURCE,
        endpoint_configuration={"types": "REGIONAL"},
    )
    aws.lambda_.Permission(
        "api-authorizer-permission",
        action="lambda:InvokeFunction",
        function=authorizer_function.name,
        principal="apigateway.amazonaws.com",
        source_arn=pulumi.Output.format("{0}/authorizers/*", rest_api.execution_arn),
    )
    tenant_api_permission = aws.lambda_.Permission(
        "api-tenant-api-permission",
        action="lambda:InvokeFunction",
        function=tenant_api.name,
        principal="apigateway.amazonaws.com",
        source_arn=pulumi.Output.format("{0}/{1}/*/*", rest_api.execution_arn, STAGE_NAME),
    )
    deployment = aws.apigateway.Deployment(
        "api-deployment",
        rest_api=rest_api.id,
        triggers={"redeployment": body.apply(lambda text: hashlib.sha256(text.encode()).hexdigest())},
        opts=pulumi.ResourceOptions(depends_on=[tenant_api_permission]),
    )
    access_logs = aws.cloudwatch.LogGroup(
        "api-access-logs",
        name=f"/aws/apigateway/{prefix}-api/{STAGE_NAME}",
        retention_in_days=LOG_RETENTION_DAYS,
    )
    retained = pulumi.ResourceOptions(retain_on_delete=True)
    cloudwatch_role = aws.iam.Role(
        "api-cloudwatch-role",
        assume_role_policy=json.dumps(policies.api_gateway_trust_policy()),
        opts=retained,
    )
    cloudwatch_policy = aws.iam.RolePolicy(
        "api-cloudwatch-policy",
        role=cloudwatch_role.id,
        policy=json.dumps(policies.api_gateway_logging_policy()),
        opts=retained,
    )
    account = aws.apigateway.Account(
        "api-account",
        cloudwatch_role_arn=cloudwatch_role.arn,
        opts=pulumi.ResourceOptions(retain_on_delete=True, depends_on=[cloudwatch_policy]),
    )
    stage = aws.apigateway.Stage(
        "api-stage",
        rest_api=rest_api.id,
        deployment=deployment.id,
        stage_name=STAGE_NAME,
        access_log_settings={"destination_arn": access_logs.arn, "format": ACCESS_LOG_FORMAT},
        opts=pulumi.ResourceOptions(depends_on=[account]),
    )

    namespace = monitoring.metric_namespace(prefix)
    for spec in monitoring.METRIC_FILTERS:
        aws.cloudwatch.LogMetricFilter(
            f"monitoring-metric-{spec.metric.value}",
            name=f"{prefix}-{spec.metric.value}",
            log_group_name=access_logs.name,
            pattern=spec.pattern,
            metric_transformation={
                "name": spec.metric.value,
                "namespace": namespace,
                "value": spec.value,
                "unit": spec.unit,
                "dimensions": dict(monitoring.METRIC_FILTER_DIMENSIONS),
            },
        )
    for top in monitoring.TopTenants:
        aws.cloudwatch.ContributorInsightRule(
            f"monitoring-top-tenants-{top.value}",
            rule_name=f"{prefix}-top-tenants-{top.value}",
            rule_state="ENABLED",
            rule_definition=access_logs.name.apply(functools.partial(rule_definition, top)),
        )
    views = [
        monitoring.TierView(
            name=tier_name,
            isolation=tier["isolation"],
            rate=float(tier["throttle"]["rate"]),
            burst=tier["throttle"]["burst"],
            quota_limit=tier["quota"]["limit"],
            quota_period=tier["quota"]["period"],
            server_error_percent=float(
                tier.get("alarms", {}).get("server_error_percent", DEFAULT_SERVER_ERROR_PERCENT)
            ),
            throttled_percent=float(
                tier.get("alarms", {}).get("throttled_percent", DEFAULT_THROTTLED_PERCENT)
            ),
        )
        for tier_name, tier in tiers.items()
    ]
    bodies = pulumi.Output.all(access_logs.arn, access_logs.name).apply(
        lambda group: dashboard_bodies(prefix, group[0], group[1], views)
    )
    for dashboard in monitoring.dashboard_names(prefix, len(views)):
        aws.cloudwatch.Dashboard(
            f"monitoring-dashboard-{dashboard.removeprefix(prefix + '-')}",
            dashboard_name=dashboard,
            dashboard_body=bodies.apply(operator.itemgetter(dashboard)),
        )
    alarm_topic = aws.sns.Topic("monitoring-alarms", name=monitoring.alarm_topic_name(prefix))
    alarms = [monitoring.authorizer_alarm(prefix)]
    alarms += [alarm for view in views for alarm in monitoring.tier_alarms(prefix, view)]
    for alarm in alarms:
        aws.cloudwatch.MetricAlarm(
            f"monitoring-alarm-{alarm.name.removeprefix(prefix + '-')}",
            name=alarm.name,
            alarm_description=alarm.description,
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            threshold=alarm.threshold,
            treat_missing_data="notBreaching",
            metric_queries=metric_queries(alarm),
            alarm_actions=[alarm_topic.arn],
            ok_actions=[alarm_topic.arn],
        )

    plan_ids: dict[str, pulumi.Output[str]] = {}
    for tier_name, tier in tiers.items():
        throttle, quota = tier["throttle"], tier["quota"]
        plan_ids[tier_name] = aws.apigateway.UsagePlan(
            f"tenants-plan-{tier_name}",
            name=f"{prefix}-{tier_name}",
            description=f"Tier {tier_name} ({tier['isolation']})",
            api_stages=[{"api_id": rest_api.id, "stage": stage.stage_name}],
            throttle_settings={"rate_limit": throttle["rate"], "burst_limit": throttle["burst"]},
            quota_settings={
                "limit": quota["limit"],
                "period": quota["period"],
                "offset": quota.get("offset", 0),
            },
        ).id
    tenant_outputs: dict[str, Any] = {}
    for tenant_id, tenant in tenants.items():
        tier_name = tenant["tier"]
        suspended = tenant.get("suspended", False)
        api_key = aws.apigateway.ApiKey(
            f"tenants-key-{tenant_id}", name=f"{prefix}-{tenant_id}", enabled=not suspended
        )
        plan_key = aws.apigateway.UsagePlanKey(
            f"tenants-plan-key-{tenant_id}",
            key_id=api_key.id,
            key_type="API_KEY",
            usage_plan_id=plan_ids[tier_name],
            opts=pulumi.ResourceOptions(delete_before_replace=True, additional_secret_outputs=["value"]),
        )
        tier = tiers[tier_name]
        table = f"{prefix}-silo-{tenant_id}" if tier_name in silo_tiers else f"{prefix}-pooled"
        bucket = buckets.apply(
            functools.partial(_silo, tenant_id) if tier_name in silo_tiers else lambda names: names.pooled
        )
        fields = {
            RegistryField.TENANT_ID: {"S": tenant_id},
            RegistryField.NAME: {"S": tenant["name"]},
            RegistryField.TIER: {"S": tier_name},
            RegistryField.ISOLATION: {"S": tier["isolation"]},
            RegistryField.TABLE: {"S": table},
        }
        limits = {
            RegistryField.SUSPENDED: {"BOOL": suspended},
            RegistryField.THROTTLE_RATE: {"N": _number(tier["throttle"]["rate"])},
            RegistryField.THROTTLE_BURST: {"N": str(tier["throttle"]["burst"])},
            RegistryField.QUOTA_LIMIT: {"N": str(tier["quota"]["limit"])},
            RegistryField.QUOTA_PERIOD: {"S": tier["quota"]["period"]},
            RegistryField.QUOTA_OFFSET: {"N": str(tier["quota"].get("offset", 0))},
        }
        item: pulumi.Output[str] = pulumi.Output.all(api_key.id, api_key.value, bucket).apply(
            functools.partial(_registry_item, fields, limits)
        )
        aws.dynamodb.TableItem(
            f"tenants-registry-{tenant_id}",
            table_name=registry_table.name,
            hash_key=REGISTRY_PARTITION_KEY,
            item=item,
            opts=pulumi.ResourceOptions(depends_on=[plan_key]),
        )
        tenant_outputs[tenant_id] = {
            "apiKeyId": api_key.id,
            "table": table,
            "bucket": bucket,
            "tier": tier_name,
        }

    pulumi.export("apiUrl", stage.invoke_url)
    pulumi.export("userPoolId", user_pool.id)
    pulumi.export("appClientId", app_client.id)
    pulumi.export("registryTable", registry_table.name)
    pulumi.export("pooledTable", pooled_table.name)
    pulumi.export("placementTable", placement_table.name)
    pulumi.export("siloTablePrefix", f"{prefix}-silo-")
    pulumi.export("pooledBucket", buckets.apply(lambda names: names.pooled))
    pulumi.export("siloBucketPrefix", buckets.apply(lambda names: names.silo_prefix))
    pulumi.export("alarmTopicArn", alarm_topic.arn)
    pulumi.export("plans", plan_ids)
    pulumi.export("tenants", tenant_outputs)


def _registry_item(
    fields: dict[str, dict[str, Any]], limits: dict[str, dict[str, Any]], key: list[Any]
) -> pulumi.Output[str]:
    item = {
        **fields,
        RegistryField.BUCKET: {"S": key[2]},
        RegistryField.API_KEY_ID: {"S": key[0]},
        RegistryField.API_KEY_VALUE: {"S": key[1]},
        **limits,
    }
    return pulumi.Output.secret(json.dumps(item))


def _silo(tenant_id: str, names: BucketNames) -> str:
    return names.silo(tenant_id)


def _bucket(logical_name: str, name: pulumi.Input[str]) -> None:
    kept = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
    bucket = aws.s3.Bucket(logical_name, bucket=name, opts=kept)
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{logical_name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=kept,
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{logical_name}-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                "blocked_encryption_types": ["SSE-C"],
            }
        ],
        opts=pulumi.ResourceOptions(protect=True, retain_on_delete=True, depends_on=[public_access]),
    )
    versioning = aws.s3.BucketVersioning(
        f"{logical_name}-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=pulumi.ResourceOptions(protect=True, retain_on_delete=True, depends_on=[encryption]),
    )
    aws.s3.BucketPolicy(
        f"{logical_name}-tls-only",
        bucket=bucket.id,
        policy=bucket.bucket.apply(
            lambda bucket_name: json.dumps(policies.tls_only_bucket_policy(bucket_name))
        ),
        opts=pulumi.ResourceOptions(protect=True, retain_on_delete=True, depends_on=[versioning]),
    )


def _table(logical_name: str, name: str, hash_key: str, range_key: str | None = None) -> aws.dynamodb.Table:
    attributes: list[aws.dynamodb.TableAttributeArgsDict] = [{"name": hash_key, "type": "S"}]
    if range_key is not None:
        attributes.append({"name": range_key, "type": "S"})
    return aws.dynamodb.Table(
        logical_name,
        name=name,
        billing_mode="PAY_PER_REQUEST",
        hash_key=hash_key,
        range_key=range_key,
        attributes=attributes,
        point_in_time_recovery={"enabled": True},
        server_side_encryption={"enabled": True},
        deletion_protection_enabled=True,
        opts=pulumi.ResourceOptions(protect=True, retain_on_delete=True),
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
