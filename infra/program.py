"""The whole program: read the stack config, load the tier file, build the bundle, compose the components.

Everything that can be wrong with the input is checked before the first resource is
declared, and reported as a pulumi.RunError: Pulumi prints its text, without a traceback.
"""

from __future__ import annotations

import gc
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.api import Api, ApiArgs
from infra.bundle import BundleError, BundleSpec, build_bundle
from infra.config import ConfigError, Settings, load_settings
from infra.functions import Functions, FunctionsArgs
from infra.identity import Identity, IdentityArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.plans import Plans, PlansArgs
from infra.preflight import preflight_problems
from infra.storage import Storage, StorageArgs
from tiers.loader import CatalogError, load_catalog
from tiers.model import Catalog, Tenant
from tiers.naming import STORAGE_COMPONENT_NAME, BucketNames, Naming
from tiers.registry import data_table, file_bucket


def main() -> None:
    """The program ``pulumi up`` runs (``__main__.py`` calls this)."""
    stop_cyclic_collection()
    stack = pulumi.get_stack()
    naming = Naming(project=pulumi.get_project(), stack=stack)
    try:
        settings = load_settings(stack)
        catalog = load_catalog(settings.tiers_file)
        problems = preflight_problems(settings, catalog, naming)
        if problems:
            raise ConfigError(problems, heading="AWS would refuse this stack part-way through `pulumi up`")
        bundle = build_bundle(BundleSpec(settings.python_version, settings.lambda_architecture))
    except (ConfigError, CatalogError, BundleError) as error:
        raise pulumi.RunError(str(error)) from None
    if not bundle.from_cache:
        pulumi.log.info(f"Built the Lambda bundle in {bundle.path}")
    if bundle.bytecode_warning:
        pulumi.log.warn(bundle.bytecode_warning)
    for name, value in deploy(settings, catalog, naming, pulumi.FileArchive(str(bundle.path))).items():
        pulumi.export(name, value)


def stop_cyclic_collection() -> None:
    """Turn off Python's cyclic garbage collector for the rest of this process: the evaluation.

    The SDK keeps every declared resource's Outputs, futures and request structures alive
    until the program ends, so the heap only grows while resources are declared and
    registered, and each full collection walks all of it to free next to nothing: about
    half the evaluation's time at 10,000 tenants. Without the collector, memory that only
    cycles hold is freed when the process exits, which it does when the evaluation ends
    (docs/benchmarks.md measures both effects). Reference counting frees everything else
    as before.
    """
    gc.disable()


def deployment_buckets(naming: Naming) -> pulumi.Output[BucketNames]:
    """The stack's bucket names in the account and region the provider deploys to."""
    account = aws.get_caller_identity_output().account_id
    region = aws.get_region_output().region
    return pulumi.Output.all(account, region).apply(lambda found: naming.buckets(found[0], found[1]))


def _file_bucket(catalog: Catalog, tenant: Tenant, buckets: pulumi.Output[BucketNames]) -> pulumi.Output[str]:
    return buckets.apply(lambda names: file_bucket(catalog, tenant, names))


def deploy(settings: Settings, catalog: Catalog, naming: Naming, code: pulumi.Archive) -> dict[str, Any]:
    """Declare every resource of the stack; returns the stack outputs (none of them secret)."""
    identity = Identity("identity", IdentityArgs(naming=naming))
    buckets = deployment_buckets(naming)
    storage = Storage(
        STORAGE_COMPONENT_NAME,
        StorageArgs(
            naming=naming,
            silo_tenant_ids=[tenant.id for tenant in catalog.tenants.values() if catalog.is_silo(tenant)],
            buckets=buckets,
        ),
    )
    functions = Functions(
        "functions",
        FunctionsArgs(
            naming=naming,
            code=code,
            runtime=settings.lambda_runtime,
            architecture=settings.lambda_architecture,
            log_retention_days=settings.log_retention_days,
            registry_table_name=storage.registry_table.name,
            registry_table_arn=storage.registry_table.arn,
            pooled_table_arn=storage.pooled_table.arn,
            placement_table_name=storage.placement_table.name,
            placement_table_arn=storage.placement_table.arn,
            buckets=buckets,
            tenant_isolation=settings.lambda_tenant_isolation,
            token_issuer=identity.issuer,
            jwks_url=identity.jwks_url,
            app_client_id=identity.app_client.id,
        ),
    )
    api = Api(
        "api",
        ApiArgs(
            naming=naming,
            stage_name=settings.stage_name,
            authorizer_cache_ttl_seconds=settings.authorizer_cache_ttl_seconds,
            log_retention_days=settings.log_retention_days,
            manage_api_gateway_account=settings.manage_api_gateway_account,
            authorizer=functions.authorizer,
            tenant_api=functions.tenant_api,
            forward_tenant_id=settings.lambda_tenant_isolation,
        ),
    )
    monitoring = Monitoring(
        "monitoring", MonitoringArgs(naming=naming, catalog=catalog, access_log_group=api.access_logs)
    )
    plans = Plans(
        "tenants",
        PlansArgs(
            naming=naming,
            catalog=catalog,
            rest_api_id=api.rest_api.id,
            stage_name=api.stage.stage_name,
            registry_table_name=storage.registry_table.name,
            buckets=buckets,
        ),
    )
    return {
        "apiUrl": api.url,
        "userPoolId": identity.user_pool.id,
        "appClientId": identity.app_client.id,
        "registryTable": storage.registry_table.name,
        # What `python -m tiers migrate|decommission --stack-outputs -` reads.
        "pooledTable": storage.pooled_table.name,
        "placementTable": storage.placement_table.name,
        "siloTablePrefix": naming.silo_table_prefix,
        "pooledBucket": buckets.apply(lambda names: names.pooled),
        "siloBucketPrefix": buckets.apply(lambda names: names.silo_prefix),
        "alarmTopicArn": monitoring.alarm_topic.arn,
        "plans": {tier: plan.id for tier, plan in plans.usage_plans.items()},
        "tenants": {
            tenant.id: {
                "apiKeyId": plans.api_keys[tenant.id].id,
                "table": data_table(catalog, tenant, naming),
                "bucket": _file_bucket(catalog, tenant, buckets),
                "tier": tenant.tier,
            }
            for tenant in catalog.tenants.values()
        },
    }
