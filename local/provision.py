"""Create in moto what the Pulumi program declares, from the same catalog, names and policy documents."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3

from blueprint.identity import (
    AUTH_FLOWS,
    CLIENT_READABLE_ATTRIBUTES,
    TENANT_ID_ATTRIBUTE,
    USER_WRITABLE_ATTRIBUTES,
    USERNAME_ATTRIBUTES,
    USERNAME_CASE_SENSITIVE,
)
from blueprint.policies import (
    lambda_trust_policy,
    tenant_api_policy,
    tenant_data_policy,
    tenant_data_trust_policy,
)
from handlers.contract import (
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    PLACEMENT_PARTITION_KEY,
    REGISTRY_PARTITION_KEY,
    TENANT_CLAIM,
)
from local.limits import ApiKey
from local.settings import DUMMY_CREDENTIALS, REGION
from tiers.model import Catalog, Tenant, Tier
from tiers.naming import BucketNames, Naming
from tiers.registry import data_table, file_bucket, registry_item

# API Gateway takes key values of 20-128 characters; 30 random bytes make 40 URL-safe characters.
API_KEY_BYTES = 30
API_KEY_ID_LENGTH = 10

TENANT_ATTRIBUTE_SCHEMA = {
    "Name": TENANT_ID_ATTRIBUTE.name,
    "AttributeDataType": "String",
    "Mutable": TENANT_ID_ATTRIBUTE.mutable,
    "StringAttributeConstraints": {
        "MinLength": str(TENANT_ID_ATTRIBUTE.min_length),
        "MaxLength": str(TENANT_ID_ATTRIBUTE.max_length),
    },
}

# DynamoDB BatchWriteItem takes 25 items at most.
BATCH_SIZE = 25


@dataclass(frozen=True)
class DemoUser:
    """Made in Cognito on the tenant's first `python -m local token`: at 10,000 tenants, creating
    every one up front would take minutes of emulator calls."""

    username: str
    password: str


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    tier: Tier
    table: str
    bucket: str
    api_key: ApiKey
    demo_user: DemoUser


@dataclass(frozen=True)
class Provisioned:
    account_id: str
    user_pool_id: str
    app_client_id: str
    registry_table: str
    pooled_table: str
    placement_table: str
    buckets: BucketNames
    tenant_data_role_arn: str
    tenant_api_role_arn: str
    tenants: dict[str, ProvisionedTenant]


class AwsClients:
    """boto3 clients bound to one endpoint with dummy credentials, never to the environment's."""

    def __init__(self, endpoint_url: str, region: str = REGION) -> None:
        self._session = boto3.session.Session(region_name=region, **DUMMY_CREDENTIALS)
        self._endpoint_url = endpoint_url

    @property
    def session(self) -> Any:
        return self._session

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint_url)


def demo_username(tenant_id: str) -> str:
    return f"demo@{tenant_id}.example"


def new_demo_user(tenant_id: str) -> DemoUser:
    return DemoUser(demo_username(tenant_id), _password())


def _password() -> str:
    # Random, then one of each class Cognito's default password policy requires.
    return f"{secrets.token_urlsafe(18)}aA1!"


def provision(catalog: Catalog, naming: Naming, clients: AwsClients) -> Provisioned:
    dynamodb = clients.client("dynamodb")
    account_id = clients.client("sts").get_caller_identity()["Account"]

    _create_table(dynamodb, naming.registry_table, [REGISTRY_PARTITION_KEY])
    pooled_arn = _create_table(dynamodb, naming.pooled_table, [DATA_PARTITION_KEY, DATA_SORT_KEY])
    placement_arn = _create_table(dynamodb, naming.placement_table, [PLACEMENT_PARTITION_KEY])
    for tenant in catalog.tenants.values():
        if catalog.is_silo(tenant):
            _create_table(dynamodb, naming.silo_table(tenant.id), [DATA_PARTITION_KEY, DATA_SORT_KEY])

    buckets = naming.buckets(account_id, REGION)
    s3 = clients.client("s3")
    create_bucket(s3, buckets.pooled)
    for tenant in catalog.tenants.values():
        if catalog.is_silo(tenant):
            create_bucket(s3, buckets.silo(tenant.id))

    api_role_arn, role_arn = _create_roles(clients.client("iam"), naming, pooled_arn, placement_arn, buckets)
    user_pool_id, app_client_id = _create_user_pool(clients.client("cognito-idp"), naming)
    api_keys = _api_keys(catalog)

    tenants = {
        tenant.id: ProvisionedTenant(
            tenant=tenant,
            tier=catalog.tier_of(tenant),
            table=data_table(catalog, tenant, naming),
            bucket=file_bucket(catalog, tenant, buckets),
            api_key=api_keys[tenant.id],
            demo_user=new_demo_user(tenant.id),
        )
        for tenant in catalog.tenants.values()
    }
    _write_registry(dynamodb, catalog, naming, buckets, tenants)
    return Provisioned(
        account_id=account_id,
        user_pool_id=user_pool_id,
        app_client_id=app_client_id,
        registry_table=naming.registry_table,
        pooled_table=naming.pooled_table,
        placement_table=naming.placement_table,
        buckets=buckets,
        tenant_data_role_arn=role_arn,
        tenant_api_role_arn=api_role_arn,
        tenants=tenants,
    )


def _create_table(dynamodb: Any, name: str, keys: Sequence[str]) -> str:
    key_types = ("HASH", "RANGE")
    table = dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
        KeySchema=[
            {"AttributeName": key, "KeyType": kind} for key, kind in zip(keys, key_types, strict=False)
        ],
    )
    return str(table["TableDescription"]["TableArn"])


def create_bucket(s3: Any, name: str) -> None:
    """A bucket with the program's settings: versioned, encrypted, public access blocked.

    Not its TLS-only policy: moto serves plain HTTP on 127.0.0.1 and does enforce that policy's deny, so
    every request would be refused (tests/blueprint/test_bucket_policy.py shows it refusing HTTP).
    """
    create: dict[str, Any] = {"Bucket": name}
    if REGION != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": REGION}
    s3.create_bucket(**create)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def _create_roles(
    iam: Any, naming: Naming, pooled_table_arn: str, placement_table_arn: str, buckets: BucketNames
) -> tuple[str, str]:
    """The tenant API's role and the tenant data role it assumes, with the program's policy documents.

    Returns both ARNs (tenant API role, data role)."""
    data_role_name = f"{naming.prefix}-tenant-data"
    api_role_name = f"{naming.prefix}-tenant-api"
    account_id = pooled_table_arn.split(":")[4]
    data_role_arn = f"arn:aws:iam::{account_id}:role/{data_role_name}"
    api_role = iam.create_role(
        RoleName=api_role_name, AssumeRolePolicyDocument=json.dumps(lambda_trust_policy())
    )
    iam.put_role_policy(
        RoleName=api_role_name,
        PolicyName="assume-tenant-data-role",
        PolicyDocument=json.dumps(tenant_api_policy(data_role_arn)),
    )
    iam.create_role(
        RoleName=data_role_name,
        AssumeRolePolicyDocument=json.dumps(tenant_data_trust_policy(api_role["Role"]["Arn"])),
    )
    iam.put_role_policy(
        RoleName=data_role_name,
        PolicyName="tenant-own-items",
        PolicyDocument=json.dumps(
            tenant_data_policy(
                pooled_table_arn,
                naming.silo_table_prefix,
                placement_table_arn,
                buckets.pooled,
                buckets.silo_prefix,
            )
        ),
    )
    return str(api_role["Role"]["Arn"]), data_role_arn


def _create_user_pool(cognito: Any, naming: Naming) -> tuple[str, str]:
    pool = cognito.create_user_pool(
        PoolName=naming.user_pool,
        Schema=[TENANT_ATTRIBUTE_SCHEMA],
        UsernameAttributes=list(USERNAME_ATTRIBUTES),
        UsernameConfiguration={"CaseSensitive": USERNAME_CASE_SENSITIVE},
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )
    pool_id = pool["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=naming.app_client,
        GenerateSecret=False,
        ExplicitAuthFlows=list(AUTH_FLOWS),
        WriteAttributes=list(USER_WRITABLE_ATTRIBUTES),
        ReadAttributes=list(CLIENT_READABLE_ATTRIBUTES),
    )
    return pool_id, client["UserPoolClient"]["ClientId"]


def _api_keys(catalog: Catalog) -> dict[str, ApiKey]:
    """One key per tenant. Only the gateway reads them; moto holds none (it does not enforce plans)."""
    return {tenant_id: new_api_key() for tenant_id in catalog.tenants}


def new_api_key() -> ApiKey:
    alphabet = string.ascii_lowercase + string.digits
    return ApiKey(
        id="".join(secrets.choice(alphabet) for _ in range(API_KEY_ID_LENGTH)),
        value=secrets.token_urlsafe(API_KEY_BYTES),
    )


def create_silo_table(dynamodb: Any, naming: Naming, tenant_id: str) -> None:
    """The silo table of a tenant that becomes silo on a running stack (``local.reload``)."""
    _create_table(dynamodb, naming.silo_table(tenant_id), [DATA_PARTITION_KEY, DATA_SORT_KEY])


def create_silo_bucket(s3: Any, buckets: BucketNames, tenant_id: str) -> None:
    """The silo bucket of a tenant that becomes silo on a running stack; one kept from before stays."""
    try:
        create_bucket(s3, buckets.silo(tenant_id))
    except s3.exceptions.BucketAlreadyOwnedByYou:
        return


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def registry_items(
    catalog: Catalog, naming: Naming, buckets: BucketNames, tenants: Mapping[str, ProvisionedTenant]
) -> dict[str, dict[str, Any]]:
    """Each tenant's registry item (DynamoDB JSON) by tenant id, as the program writes them."""
    return {
        tenant_id: registry_item(
            catalog,
            provisioned.tenant,
            naming,
            buckets=buckets,
            api_key_id=provisioned.api_key.id,
            api_key_value=provisioned.api_key.value,
        )
        for tenant_id, provisioned in tenants.items()
    }


def _write_registry(
    dynamodb: Any,
    catalog: Catalog,
    naming: Naming,
    buckets: BucketNames,
    tenants: dict[str, ProvisionedTenant],
) -> None:
    items = registry_items(catalog, naming, buckets, tenants).values()
    write_registry(dynamodb, naming.registry_table, items, [])


def write_registry(
    dynamodb: Any, table: str, items: Iterable[dict[str, Any]], removed_tenant_ids: Iterable[str]
) -> None:
    """Put ``items`` in the registry and delete the items of ``removed_tenant_ids``, in batches."""
    requests = [{"PutRequest": {"Item": item}} for item in items] + [
        {"DeleteRequest": {"Key": {REGISTRY_PARTITION_KEY: {"S": tenant_id}}}}
        for tenant_id in removed_tenant_ids
    ]
    for chunk in _chunks(requests, BATCH_SIZE):
        pending: dict[str, Any] = {table: list(chunk)}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def create_demo_user(cognito: Any, pool_id: str, tenant_id: str, user: DemoUser) -> None:
    """The tenant's demo user, confirmed with its password; one that exists already is left as it is."""
    try:
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=user.username,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": user.username},
                {"Name": "email_verified", "Value": "true"},
                {"Name": TENANT_CLAIM, "Value": tenant_id},
            ],
        )
    except cognito.exceptions.UsernameExistsException:
        return
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=user.username, Password=user.password, Permanent=True
    )
