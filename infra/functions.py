"""The two Lambdas (authorizer, tenant API), their roles and log groups, and the tenant data role."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from blueprint import policies
from blueprint.defaults import TENANT_API_TIMEOUT_SECONDS
from handlers.contract import (
    AUTHORIZER_FUNCTION,
    AUTHORIZER_HANDLER,
    METRICS_NAMESPACE,
    TENANT_API_FUNCTION,
    TENANT_API_HANDLER,
    TENANT_ISOLATION_MODE,
    Env,
)
from infra.config import Architecture
from tiers.naming import BucketNames, Naming


@dataclass(frozen=True)
class FunctionsArgs:
    naming: Naming
    code: pulumi.Archive
    runtime: str
    architecture: Architecture
    log_retention_days: int
    registry_table_name: pulumi.Input[str]
    registry_table_arn: pulumi.Input[str]
    pooled_table_arn: pulumi.Input[str]
    placement_table_name: pulumi.Input[str]
    placement_table_arn: pulumi.Input[str]
    buckets: pulumi.Output[BucketNames]
    tenant_isolation: bool
    """Lambda tenant isolation mode for the tenant API (set only at creation: a change replaces it)."""
    token_issuer: pulumi.Input[str]
    jwks_url: pulumi.Input[str]
    app_client_id: pulumi.Input[str]


def render_policy(
    document: Callable[..., policies.PolicyDocument], *arns: pulumi.Input[str]
) -> pulumi.Output[str]:
    """A policy document function rendered as JSON once the ARNs it takes are known.

    The ARNs are handed over as text, so that under mocks which model no ARN the program
    still evaluates (to a document naming "None") instead of failing inside a policy function.
    """
    return pulumi.Output.all(*arns).apply(lambda values: json.dumps(document(*map(str, values))))


class Functions(pulumi.ComponentResource):
    authorizer: aws.lambda_.Function
    tenant_api: aws.lambda_.Function
    tenant_data_role: aws.iam.Role

    def __init__(self, name: str, args: FunctionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tenant-tiers:infra:Functions", name, None, opts)
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)

        authorizer_role = self._lambda_role(AUTHORIZER_FUNCTION)
        tenant_api_role = self._lambda_role(TENANT_API_FUNCTION)
        # The data role trusts the tenant API's role, and the tenant API's role may assume the data
        # role: the roles come first and the permissions are attached afterwards, so there is no cycle.
        self.tenant_data_role = aws.iam.Role(
            f"{name}-tenant-data-role",
            description="Assumed by the tenant API with a tenant_id session tag: that tenant's items only",
            assume_role_policy=render_policy(policies.tenant_data_trust_policy, tenant_api_role.arn),
            opts=child,
        )
        data_policy = aws.iam.RolePolicy(
            f"{name}-tenant-data-policy",
            role=self.tenant_data_role.id,
            policy=render_policy(
                lambda pooled_arn, placement_arn, pooled_bucket, silo_bucket_prefix: (
                    policies.tenant_data_policy(
                        pooled_arn,
                        args.naming.silo_table_prefix,
                        placement_arn,
                        pooled_bucket,
                        silo_bucket_prefix,
                    )
                ),
                args.pooled_table_arn,
                args.placement_table_arn,
                args.buckets.apply(lambda buckets: buckets.pooled),
                args.buckets.apply(lambda buckets: buckets.silo_prefix),
            ),
            opts=child,
        )
        authorizer_access = aws.iam.RolePolicy(
            f"{name}-authorizer-policy",
            role=authorizer_role.id,
            policy=render_policy(policies.authorizer_policy, args.registry_table_arn),
            opts=child,
        )
        tenant_api_access = aws.iam.RolePolicy(
            f"{name}-tenant-api-policy",
            role=tenant_api_role.id,
            policy=render_policy(policies.tenant_api_policy, self.tenant_data_role.arn),
            opts=child,
        )

        environment: dict[str, pulumi.Input[str]] = {
            Env.REGISTRY_TABLE: args.registry_table_name,
            Env.TOKEN_ISSUER: args.token_issuer,
            Env.JWKS_URL: args.jwks_url,
            Env.APP_CLIENT_ID: args.app_client_id,
            Env.TENANT_DATA_ROLE_ARN: self.tenant_data_role.arn,
            Env.PLACEMENT_TABLE: args.placement_table_name,
            Env.METRICS_NAMESPACE: METRICS_NAMESPACE,
        }
        self.authorizer = self._function(
            AUTHORIZER_FUNCTION,
            role=authorizer_role,
            handler=AUTHORIZER_HANDLER,
            environment=environment,
            timeout=10,
            depends_on=[authorizer_access],
        )
        tenant_api_environment = dict(environment)
        if args.tenant_isolation:
            tenant_api_environment[Env.TENANT_ISOLATION] = TENANT_ISOLATION_MODE
        self.tenant_api = self._function(
            TENANT_API_FUNCTION,
            role=tenant_api_role,
            handler=TENANT_API_HANDLER,
            environment=tenant_api_environment,
            timeout=TENANT_API_TIMEOUT_SECONDS,
            depends_on=[tenant_api_access, data_policy],
            tenancy=(
                aws.lambda_.FunctionTenancyConfigArgs(tenant_isolation_mode=TENANT_ISOLATION_MODE)
                if args.tenant_isolation
                else None
            ),
        )
        self.register_outputs(
            {
                "authorizer": self.authorizer.name,
                "tenant_api": self.tenant_api.name,
                "tenant_data_role": self.tenant_data_role.arn,
            }
        )

    def _lambda_role(self, function: str) -> aws.iam.Role:
        return aws.iam.Role(
            f"{self._name}-{function}-role",
            assume_role_policy=json.dumps(policies.lambda_trust_policy()),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _function(
        self,
        function: str,
        *,
        role: aws.iam.Role,
        handler: str,
        environment: dict[str, pulumi.Input[str]],
        timeout: int,
        depends_on: list[pulumi.Resource],
        tenancy: aws.lambda_.FunctionTenancyConfigArgs | None = None,
    ) -> aws.lambda_.Function:
        args = self._args
        # An explicit function name lets the program own its log group (retention, least-privilege logging).
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-{function}-logs",
            name=args.naming.function_log_group(function),
            retention_in_days=args.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        logging = aws.iam.RolePolicy(
            f"{self._name}-{function}-logs-policy",
            role=role.id,
            policy=render_policy(policies.lambda_logs_policy, log_group.arn),
            opts=pulumi.ResourceOptions(parent=self),
        )
        variables: dict[str, pulumi.Input[str]] = {**environment, Env.SERVICE_NAME: function}
        return aws.lambda_.Function(
            f"{self._name}-{function}",
            name=args.naming.function(function),
            role=role.arn,
            runtime=args.runtime,
            architectures=[args.architecture.value],
            handler=handler,
            code=args.code,
            memory_size=512,
            timeout=timeout,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
            tenancy_config=tenancy,
            # The tenancy config is set only at creation: changing it replaces the function, and its fixed
            # name means the old one must go first.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[log_group, logging, *depends_on], delete_before_replace=True
            ),
        )
