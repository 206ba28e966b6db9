"""The REST API, defined by one OpenAPI document, and a stage with JSON access logs.

The document (``blueprint.openapi``) holds every route of the contract, the TOKEN authorizer,
API keys required on every method and the Lambda proxy integrations. The RestApi imports it
with PutRestApi in ``overwrite`` mode, so one update replaces the whole route set (a removed
route's method is gone) before the Deployment, which depends on the RestApi and is replaced
whenever the document changes, snapshots it for the stage.

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

from blueprint import openapi, policies
from blueprint.monitoring import ACCESS_LOG_FORMAT
from tiers.naming import Naming


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
    forward_tenant_id: bool = False
    """Pass the authorizer's tenant id to the tenant API as ``X-Amz-Tenant-Id`` (Lambda tenant isolation)."""


def render_document(args: ApiArgs, api_name: str) -> pulumi.Output[str]:
    """The API's OpenAPI document as JSON, once the Lambdas' invoke ARNs are known.

    The ARNs are handed over as text (like ``infra.functions.render_policy``), so that under
    mocks which model no ARN the program still evaluates.
    """
    return pulumi.Output.all(args.authorizer.invoke_arn, args.tenant_api.invoke_arn).apply(
        lambda uris: json.dumps(
            openapi.rest_api_document(
                title=api_name,
                authorizer_uri=str(uris[0]),
                tenant_api_uri=str(uris[1]),
                authorizer_cache_ttl_seconds=args.authorizer_cache_ttl_seconds,
                forward_tenant_id=args.forward_tenant_id,
            ),
            sort_keys=True,
        )
    )


def document_fingerprint(document: str) -> str:
    """The Deployment's trigger: any change of the document makes a new deployment."""
    return hashlib.sha256(document.encode()).hexdigest()


class Api(pulumi.ComponentResource):
    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    access_logs: aws.cloudwatch.LogGroup
    url: pulumi.Output[str]

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tenant-tiers:infra:Api", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        api_name = args.naming.rest_api
        document = render_document(args, api_name)
        self.rest_api = aws.apigateway.RestApi(
            f"{name}-rest-api",
            name=api_name,
            body=document,
            # Overwrite, not merge: a merge keeps the methods the document no longer has.
            put_rest_api_mode="overwrite",
            # A warning on import means something of the document was dropped (an authorizer that
            # did not resolve leaves its methods out): fail the update instead of serving less.
            fail_on_warnings=True,
            api_key_source=openapi.API_KEY_SOURCE,
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            opts=child,
        )
        # API Gateway names its execute-api ARNs after the stage, method and path, and the
        # authorizer by an id the import assigns: one permission per function, each over the
        # whole API (this API's stage for the tenant API), so that no route can ever be left
        # without its permission or a removed route keep one.
        aws.lambda_.Permission(
            f"{name}-authorizer-permission",
            action="lambda:InvokeFunction",
            function=args.authorizer.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.format("{0}/authorizers/*", self.rest_api.execution_arn),
            opts=child,
        )
        tenant_api_permission = aws.lambda_.Permission(
            f"{name}-tenant-api-permission",
            action="lambda:InvokeFunction",
            function=args.tenant_api.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.format("{0}/{1}/*/*", self.rest_api.execution_arn, args.stage_name),
            opts=child,
        )
        # A deployment is a snapshot of the API: it is replaced whenever the document changes, and
        # it depends on the RestApi, so the snapshot is taken after the new document is in place.
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.rest_api.id,
            triggers={"redeployment": document.apply(document_fingerprint)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[tenant_api_permission]),
        )
        self.access_logs = access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=args.naming.access_log_group(args.stage_name),
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

    def _account(self, name: str) -> aws.apigateway.Account:
        """The region-wide role API Gateway writes CloudWatch logs with (one per account and region).

        All three are retained on delete: the setting is the region's, not this stack's, and since
        provider v6 deleting the Account resets the region's role. Destroying this stack must not
        take access logs away from every other API in the region, so the setting, the role it
        names and the role's policy stay behind.
        """
        retained = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        role = aws.iam.Role(
            f"{name}-cloudwatch-role",
            assume_role_policy=json.dumps(policies.api_gateway_trust_policy()),
            opts=retained,
        )
        logging = aws.iam.RolePolicy(
            f"{name}-cloudwatch-policy",
            role=role.id,
            policy=json.dumps(policies.api_gateway_logging_policy()),
            opts=retained,
        )
        return aws.apigateway.Account(
            f"{name}-account",
            cloudwatch_role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[logging]),
        )
