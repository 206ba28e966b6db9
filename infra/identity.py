"""Cognito: the user pool holding each user's immutable tenant id, and the app client users sign in with."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from blueprint.identity import (
    AUTH_FLOWS,
    CLIENT_READABLE_ATTRIBUTES,
    TENANT_ID_ATTRIBUTE,
    USER_WRITABLE_ATTRIBUTES,
    USERNAME_ATTRIBUTES,
    USERNAME_CASE_SENSITIVE,
)
from tiers.naming import Naming


@dataclass(frozen=True)
class IdentityArgs:
    naming: Naming


class Identity(pulumi.ComponentResource):
    user_pool: aws.cognito.UserPool
    app_client: aws.cognito.UserPoolClient
    issuer: pulumi.Output[str]
    """The ``iss`` of the pool's tokens: ``https://cognito-idp.<region>.amazonaws.com/<pool id>``."""
    jwks_url: pulumi.Output[str]

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tenant-tiers:infra:Identity", name, None, opts)
        # Users are data: the pool is protected like the tables (a schema change would replace it).
        self.user_pool = aws.cognito.UserPool(
            f"{name}-user-pool",
            name=args.naming.user_pool,
            username_attributes=list(USERNAME_ATTRIBUTES),
            username_configuration=aws.cognito.UserPoolUsernameConfigurationArgs(
                case_sensitive=USERNAME_CASE_SENSITIVE
            ),
            auto_verified_attributes=["email"],
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(
                allow_admin_create_user_only=True,
            ),
            schemas=[
                aws.cognito.UserPoolSchemaArgs(
                    name=TENANT_ID_ATTRIBUTE.name,
                    attribute_data_type="String",
                    mutable=TENANT_ID_ATTRIBUTE.mutable,
                    required=False,
                    developer_only_attribute=False,
                    string_attribute_constraints=aws.cognito.UserPoolSchemaStringAttributeConstraintsArgs(
                        min_length=str(TENANT_ID_ATTRIBUTE.min_length),
                        max_length=str(TENANT_ID_ATTRIBUTE.max_length),
                    ),
                )
            ],
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=False,
                temporary_password_validity_days=7,
            ),
            account_recovery_setting=aws.cognito.UserPoolAccountRecoverySettingArgs(
                recovery_mechanisms=[
                    aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(
                        name="verified_email", priority=1
                    )
                ],
            ),
            deletion_protection="ACTIVE",
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.app_client = aws.cognito.UserPoolClient(
            f"{name}-app-client",
            name=args.naming.app_client,
            user_pool_id=self.user_pool.id,
            generate_secret=False,
            explicit_auth_flows=list(AUTH_FLOWS),
            write_attributes=list(USER_WRITABLE_ATTRIBUTES),
            read_attributes=list(CLIENT_READABLE_ATTRIBUTES),
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.issuer = pulumi.Output.format("https://{0}", self.user_pool.endpoint)
        self.jwks_url = pulumi.Output.format("{0}/.well-known/jwks.json", self.issuer)
        self.register_outputs(
            {
                "user_pool_id": self.user_pool.id,
                "app_client_id": self.app_client.id,
                "issuer": self.issuer,
            }
        )
