"""The REST API: the contract's ROUTES behind a TOKEN authorizer, and a stage with JSON access logs.

The API key source is AUTHORIZER: the authorizer returns the caller's tenant key as
``usageIdentifierKey``, and every method requires an API key, so each request is
metered against that tenant's key in its tier's usage plan.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from blueprint import policies
from handlers.contract import ROUTES, ContextKey
from tiers.naming import Naming

IDENTITY_SOURCE = "method.request.header.Authorization"

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "tenantId": f"$context.authorizer.{ContextKey.TENANT_ID}",
        "apiKeyId": "$context.identity.apiKeyId",
        "status": "$context.status",
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "path": "$context.resourcePath",
        "latencyMs": "$context.responseLatency",
        "requestTime": "$context.requestTime",
        "error": "$context.error.message",
        "authorizerError": "$context.authorizer.error",
    }
)


@dataclass(frozen=True)
class ApiArgs:
    naming: Naming
    stage_name: str
    authorizer_cache_ttl_seconds: int
    log_retention_days: int
    manage_api_gateway_account: bool
    """Declare the region's API Gateway account settings (its CloudWatch role), needed for access logs."""
    authorizer: aws.lambda_.Function
    tenant_api: aws.lambda_.Function


def route_slug(path: str) -> str:
    """``/items/{id}`` -> ``items-id``: a resource path as a piece of a logical name."""
    return "-".join(segment.strip("{}") for segment in path.strip("/").split("/"))


def source_arn_path(path: str) -> str:
    """``/items/{id}`` -> ``/items/*``: a resource path as it appears in an execute-api ARN."""
    return "/".join("*" if segment.startswith("{") else segment for segment in path.split("/"))


class Api(pulumi.ComponentResource):
    rest_api: aws.apigateway.RestApi
    authorizer: aws.apigateway.Authorizer
    stage: aws.apigateway.Stage
    url: pulumi.Output[str]

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tenant-tiers:infra:Api", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rest_api = aws.apigateway.RestApi(
            f"{name}-rest-api",
            name=f"{args.naming.prefix}-api",
            api_key_source="AUTHORIZER",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            opts=child,
        )
        self.authorizer = aws.apigateway.Authorizer(
            f"{name}-authorizer",
            name="cognito-id-token",
            rest_api=self.rest_api.id,
            type="TOKEN",
            authorizer_uri=args.authorizer.invoke_arn,
            identity_source=IDENTITY_SOURCE,
            authorizer_result_ttl_in_seconds=args.authorizer_cache_ttl_seconds,
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-authorizer-permission",
            action="lambda:InvokeFunction",
            function=args.authorizer.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.format(
                "{0}/authorizers/{1}", self.rest_api.execution_arn, self.authorizer.id
            ),
            opts=child,
        )

        resource_ids = self._resources(name)
        routes: list[pulumi.Resource] = []
        route_ids: list[pulumi.Output[str]] = []
        for method, path in ROUTES:
            route = f"{method.lower()}-{route_slug(path)}"
            api_method = aws.apigateway.Method(
                f"{name}-method-{route}",
                rest_api=self.rest_api.id,
                resource_id=resource_ids[path],
                http_method=method,
                authorization="CUSTOM",
                authorizer_id=self.authorizer.id,
                api_key_required=True,
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{name}-integration-{route}",
                rest_api=self.rest_api.id,
                resource_id=resource_ids[path],
                http_method=api_method.http_method,
                integration_http_method="POST",
                type="AWS_PROXY",
                uri=args.tenant_api.invoke_arn,
                opts=child,
            )
            aws.lambda_.Permission(
                f"{name}-permission-{route}",
                action="lambda:InvokeFunction",
                function=args.tenant_api.name,
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.format(
                    "{0}/{1}/{2}{3}",
                    self.rest_api.execution_arn,
                    args.stage_name,
                    method,
                    source_arn_path(path),
                ),
                opts=child,
            )
            routes += [api_method, integration]
            route_ids += [api_method.id, integration.id]

        # A deployment is a snapshot: it must be replaced whenever a route, an integration or the
        # authorizer changes, or the stage keeps serving the old API.
        redeployment = pulumi.Output.all(
            self.authorizer.id,
            args.authorizer.invoke_arn,
            args.tenant_api.invoke_arn,
            *route_ids,
        ).apply(
            lambda ids: _fingerprint(
                {
                    "routes": ROUTES,
                    "ids": ids,
                    "authorizer": [IDENTITY_SOURCE, args.authorizer_cache_ttl_seconds],
                }
            )
        )
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.rest_api.id,
            triggers={"redeployment": redeployment},
            opts=pulumi.ResourceOptions(parent=self, depends_on=routes),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{args.naming.prefix}-api/{args.stage_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        stage_depends_on: list[pulumi.Resource] = []
        if args.manage_api_gateway_account:
            stage_depends_on.append(self._account(name))
        self.stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=self.rest_api.id,
            deployment=deployment.id,
            stage_name=args.stage_name,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn,
                format=ACCESS_LOG_FORMAT,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=stage_depends_on),
        )
        self.url = self.stage.invoke_url
        self.register_outputs({"url": self.url, "rest_api_id": self.rest_api.id})

    def _resources(self, name: str) -> dict[str, pulumi.Input[str]]:
        """One API Gateway resource per path segment of the routes; returns path -> resource id."""
        ids: dict[str, pulumi.Input[str]] = {"": self.rest_api.root_resource_id}
        for _, path in ROUTES:
            segments = path.strip("/").split("/")
            for depth in range(1, len(segments) + 1):
                prefix = "/" + "/".join(segments[:depth])
                if prefix in ids:
                    continue
                parent = "/" + "/".join(segments[: depth - 1]) if depth > 1 else ""
                ids[prefix] = aws.apigateway.Resource(
                    f"{name}-resource-{route_slug(prefix)}",
                    rest_api=self.rest_api.id,
                    parent_id=ids[parent],
                    path_part=segments[depth - 1],
                    opts=pulumi.ResourceOptions(parent=self),
                ).id
        return ids

    def _account(self, name: str) -> aws.apigateway.Account:
        """The region-wide role API Gateway writes CloudWatch logs with (one per account and region)."""
        role = aws.iam.Role(
            f"{name}-cloudwatch-role",
            assume_role_policy=json.dumps(policies.api_gateway_trust_policy()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        logging = aws.iam.RolePolicy(
            f"{name}-cloudwatch-policy",
            role=role.id,
            policy=json.dumps(policies.api_gateway_logging_policy()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.apigateway.Account(
            f"{name}-account",
            cloudwatch_role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logging]),
        )


def _fingerprint(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
