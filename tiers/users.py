"""A tenant's users in the Cognito user pool: create, list and disable them.

Every user carries the immutable ``custom:tenant_id`` attribute the authorizer
reads from the ID token, and may only be created for a tenant the tier file
lists. The functions take a boto3 ``cognito-idp`` client, so the same code
runs against AWS and the local stack; every AWS failure becomes a UserError
with one line that says what went wrong and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from handlers.contract import TENANT_CLAIM
from tiers.model import Catalog
from tiers.problems import listing

DEFAULT_REGION: Final = "us-east-1"
# A person waits on these commands: fail within seconds when the endpoint is unreachable.
_CLIENT_CONFIG: Final = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 2}
)


class UserError(Exception):
    """A user command failed; ``str(error)`` is one line naming the cause and the fix."""


@dataclass(frozen=True)
class User:
    email: str
    tenant_id: str | None
    enabled: bool
    status: str
    """Cognito's UserStatus, such as CONFIRMED or FORCE_CHANGE_PASSWORD."""


def cognito_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A cognito-idp client for AWS, or for the local stack when ``endpoint_url`` is given.

    The region defaults to the AWS configuration, then us-east-1. The local
    stack accepts any credentials, so when none are configured it gets
    placeholder ones rather than failing.
    """
    session = boto3.session.Session()
    placeholder: Mapping[str, str] = {}
    if endpoint_url and session.get_credentials() is None:
        placeholder = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return session.client(
        "cognito-idp",
        region_name=region or session.region_name or DEFAULT_REGION,
        endpoint_url=endpoint_url,
        config=_CLIENT_CONFIG,
        **placeholder,
    )


def add_user(
    client: Any,
    user_pool_id: str,
    catalog: Catalog,
    tenant_id: str,
    email: str,
    *,
    password: str | None = None,
    tiers_file: str = "the tier file",
) -> User:
    """Create ``email`` as a user of ``tenant_id``.

    With ``password`` the password is set as permanent so the user can sign in
    at once and Cognito sends no invitation; without it Cognito emails an
    invitation with a temporary password.
    """
    if tenant_id not in catalog.tenants:
        raise UserError(_unknown_tenant_message(tenant_id, catalog, tiers_file))
    username = normalized_email(email)
    attributes = [
        {"Name": "email", "Value": username},
        {"Name": "email_verified", "Value": "true"},
        {"Name": TENANT_CLAIM, "Value": tenant_id},
    ]
    request: dict[str, Any] = {"UserPoolId": user_pool_id, "Username": username, "UserAttributes": attributes}
    if password is not None:
        # The password doubles as the temporary one so a password the pool's policy rejects
        # fails the creation itself instead of leaving a user behind without a usable password.
        request |= {"TemporaryPassword": password, "MessageAction": "SUPPRESS"}
    else:
        request["DesiredDeliveryMediums"] = ["EMAIL"]
    with _aws_errors(user_pool_id, username):
        created = client.admin_create_user(**request)["User"]
        if password is not None:
            client.admin_set_user_password(
                UserPoolId=user_pool_id, Username=username, Password=password, Permanent=True
            )
            created["UserStatus"] = "CONFIRMED"
    return _user(created)


def list_users(client: Any, user_pool_id: str, tenant_id: str | None = None) -> list[User]:
    """The pool's users in Cognito's order, only ``tenant_id``'s when given.

    Cognito's ListUsers filter cannot match custom attributes, so the
    filtering happens here.
    """
    users: list[User] = []
    with _aws_errors(user_pool_id, None):
        for page in client.get_paginator("list_users").paginate(UserPoolId=user_pool_id):
            users.extend(_user(raw) for raw in page.get("Users", []))
    return [user for user in users if tenant_id is None or user.tenant_id == tenant_id]


def disable_user(client: Any, user_pool_id: str, email: str) -> str:
    """Disable the user and return their username: no more sign-ins; issued tokens run until they expire."""
    username = normalized_email(email)
    with _aws_errors(user_pool_id, username):
        client.admin_disable_user(UserPoolId=user_pool_id, Username=username)
    return username


def normalized_email(email: str) -> str:
    """The email as the username: trimmed and lower-cased, so `Ann@X.com` and `ann@x.com` are one user."""
    address = email.strip().lower()
    local, _, domain = address.partition("@")
    if not local or "." not in domain or any(char.isspace() for char in address) or "@" in domain:
        raise UserError(f"'{email}' is not an email address; give one such as ann@example.com.")
    return address


def _user(raw: Mapping[str, Any]) -> User:
    attributes = {item["Name"]: item["Value"] for item in raw.get("Attributes", [])}
    return User(
        email=attributes.get("email", raw["Username"]),
        tenant_id=attributes.get(TENANT_CLAIM),
        enabled=bool(raw.get("Enabled", True)),
        status=str(raw.get("UserStatus", "UNKNOWN")),
    )


def _unknown_tenant_message(tenant_id: str, catalog: Catalog, tiers_file: str) -> str:
    known = list(catalog.tenants)
    listed = f"tenants there: {listing(known)}" if known else "it lists no tenants yet"
    return (
        f"tenant '{tenant_id}' is not in {tiers_file} ({listed}). Check the spelling, or add the tenant "
        "under `tenants:` and deploy it (`pulumi up`) before adding its users."
    )


@contextmanager
def _aws_errors(user_pool_id: str, username: str | None) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        raise UserError(_client_error_message(error, user_pool_id, username)) from None
    except (NoCredentialsError, PartialCredentialsError):
        raise UserError(
            "no AWS credentials found; configure them (aws configure, AWS_PROFILE or the AWS_* environment "
            "variables), or pass --endpoint-url to use the local stack."
        ) from None
    except EndpointConnectionError as error:
        raise UserError(
            f"cannot reach {error.kwargs.get('endpoint_url', 'the endpoint')}; check --endpoint-url and "
            "--region, and that the local stack (./dev up) is running if you meant it."
        ) from None
    except BotoCoreError as error:
        raise UserError(f"AWS request failed: {error}.") from None


def _client_error_message(error: ClientError, user_pool_id: str, username: str | None) -> str:
    details = error.response.get("Error", {})
    code = details.get("Code", "Unknown")
    aws_says = details.get("Message", "")
    if code == "ResourceNotFoundException":
        return (
            f"user pool '{user_pool_id}' not found ({aws_says}); check --user-pool-id "
            "(or TENANT_TIERS_USER_POOL_ID) and --region against the stack output."
        )
    if code == "UsernameExistsException":
        return f"user '{username}' already exists in the pool; `python -m tiers users list` shows it."
    if code == "UserNotFoundException":
        return f"no user '{username}' in the pool; `python -m tiers users list` shows the users there."
    if code == "InvalidPasswordException":
        return f"the pool's password policy rejects this password ({aws_says}); choose a stronger one."
    if code in {"UnrecognizedClientException", "InvalidClientTokenId", "AccessDeniedException"}:
        return f"AWS refused the credentials ({code}: {aws_says}); check the profile or keys in use."
    return f"AWS error {code}: {aws_says}"
