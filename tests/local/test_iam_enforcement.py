"""IAM enforced by the local stack's emulator: tagged sessions against the provisioned tables and roles.

GIVEN the emulator (moto behind the IAM enforcer) provisioned from a catalog by local/provision.py, with
acme and acme-corp (pooled, one id a prefix of the other) and globex (silo), and the stack's credentials
standing for the tenant API's role, as `python -m local up` sets it up;
sessions are assumed exactly as the tenant API assumes them (handlers.tenant_data.TenantClients).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.contract import (
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    REGISTRY_PARTITION_KEY,
    TENANT_ID_MAX_LENGTH,
    TENANT_ID_PATTERN,
    TENANT_SESSION_TAG,
)
from handlers.tenant_data import TenantClients
from local.emulator import Emulator
from local.provision import AwsClients, Provisioned, provision
from local.settings import HOST
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier
from tiers.naming import Naming

# Its own stack name: moto's state is per process, and other in-process tests may have used the default.
NAMING = Naming("tenant-tiers", "iamtest")
CATALOG = Catalog(
    tiers={
        "basic": Tier("basic", Isolation.POOLED, Throttle(10, 20), Quota(1000, QuotaPeriod.DAY)),
        "premium": Tier("premium", Isolation.SILO, Throttle(10, 20), Quota(1000, QuotaPeriod.DAY)),
    },
    tenants={
        "acme": Tenant("acme", "basic", "Acme"),
        "acme-corp": Tenant("acme-corp", "basic", "Acme Corp"),
        "globex": Tenant("globex", "premium", "Globex"),
    },
)
DYNAMODB_ACCESS_DENIED = "AccessDeniedException"


class Stack:
    def __init__(self, emulator: Emulator, provisioned: Provisioned) -> None:
        self.emulator = emulator
        self.provisioned = provisioned
        self.admin = AwsClients(emulator.endpoint)
        self.clients = TenantClients(
            role_arn=provisioned.tenant_data_role_arn,
            session=AwsClients(emulator.endpoint).session,
        )

    def session(self, tenant_id: str) -> Any:
        """A DynamoDB client on the data role, tagged with ``tenant_id``, as the tenant API makes it."""
        return self.clients.client_for(tenant_id)

    def table_of(self, tenant_id: str) -> str:
        return self.provisioned.tenants[tenant_id].table


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    emulator = Emulator(HOST)
    endpoint = emulator.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            # TenantClients reaches AWS where the Lambda environment points it, as in the local stack.
            patch.setenv("AWS_ENDPOINT_URL", endpoint)
            provisioned = provision(CATALOG, NAMING, AwsClients(endpoint))
            emulator.enforcer.stack_credentials_act_as(provisioned.tenant_api_role_arn, "tenant-api")
            yield Stack(emulator, provisioned)
    finally:
        emulator.stop()


def key(tenant_id: str, item: str = "item#a") -> dict[str, Any]:
    return {DATA_PARTITION_KEY: {"S": tenant_id}, DATA_SORT_KEY: {"S": item}}


def denied(call: Any) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == DYNAMODB_ACCESS_DENIED, raised.value.response
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return raised.value


def test_a_tenant_session_uses_its_own_partition_and_its_own_silo_table(stack: Stack) -> None:
    for tenant_id in ("acme", "acme-corp", "globex"):
        client, table = stack.session(tenant_id), stack.table_of(tenant_id)
        # WHEN a session writes, reads, queries, updates and deletes in its own partition
        client.put_item(TableName=table, Item={**key(tenant_id), "doc": {"S": tenant_id}})
        assert client.get_item(TableName=table, Key=key(tenant_id))["Item"]["doc"] == {"S": tenant_id}
        page = client.query(
            TableName=table,
            KeyConditionExpression="#pk = :tenant AND begins_with(#sk, :items)",
            ExpressionAttributeNames={"#pk": DATA_PARTITION_KEY, "#sk": DATA_SORT_KEY},
            ExpressionAttributeValues={":tenant": {"S": tenant_id}, ":items": {"S": "item#"}},
        )
        # THEN each call is allowed and sees its own data only
        assert [item["doc"]["S"] for item in page["Items"]] == [tenant_id]
        client.update_item(
            TableName=table,
            Key=key(tenant_id, "counter"),
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "count"},
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        client.delete_item(TableName=table, Key=key(tenant_id, "item#gone"))


@pytest.mark.parametrize(
    ("caller", "victim"), [("acme", "acme-corp"), ("acme-corp", "acme"), ("globex", "acme")]
)
def test_another_tenants_partition_is_refused_with_dynamodbs_access_denied(
    stack: Stack, caller: str, victim: str
) -> None:
    # GIVEN the victim's item
    stack.session(victim).put_item(
        TableName=stack.table_of(victim), Item={**key(victim, "item#secret"), "doc": {"S": "secret"}}
    )
    client, table = stack.session(caller), stack.table_of(victim)
    # WHEN the caller's session names the victim's partition, in any item call
    error = denied(lambda: client.get_item(TableName=table, Key=key(victim, "item#secret")))
    denied(lambda: client.put_item(TableName=table, Item={**key(victim, "item#secret"), "doc": {"S": "x"}}))
    denied(lambda: client.delete_item(TableName=table, Key=key(victim, "item#secret")))
    denied(
        lambda: client.query(
            TableName=table,
            KeyConditionExpression=f"{DATA_PARTITION_KEY} = :victim",
            ExpressionAttributeValues={":victim": {"S": victim}},
        )
    )
    # THEN the message is AWS's, naming the session, the action and the table
    message = error.response["Error"]["Message"]
    session_arn = f"arn:aws:sts::{stack.provisioned.account_id}:assumed-role/{NAMING.prefix}-tenant-data/"
    assert message.startswith(f"User: {session_arn}tenant-{caller} is not authorized to perform: ")
    assert message.endswith(
        f"dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:{stack.provisioned.account_id}:table/"
        f"{table} because no identity-based policy allows the dynamodb:GetItem action"
    )
    # AND the victim's item is unchanged
    item = stack.admin.client("dynamodb").get_item(TableName=table, Key=key(victim, "item#secret"))["Item"]
    assert item["doc"] == {"S": "secret"}


def test_a_session_cannot_scan_the_pooled_table_or_read_the_registry(stack: Stack) -> None:
    client = stack.session("acme")
    pooled, registry = stack.provisioned.pooled_table, stack.provisioned.registry_table
    # WHEN the session scans its own pooled table (a Scan names no leading key)
    denied(lambda: client.scan(TableName=pooled))
    # AND reads the registry, which holds every tenant's API key value, by its own key or another's
    for tenant_id in ("acme", "globex"):
        denied(
            lambda t=tenant_id: client.get_item(TableName=registry, Key={REGISTRY_PARTITION_KEY: {"S": t}})
        )
    denied(lambda: client.scan(TableName=registry))
    # AND uses batch or PartiQL calls on its own partition
    denied(lambda: client.batch_get_item(RequestItems={pooled: {"Keys": [key("acme")]}}))
    denied(lambda: client.execute_statement(Statement=f"SELECT * FROM \"{pooled}\" WHERE tenant_id = 'acme'"))
    # AND a transaction that touches another tenant's partition (AWS judges each of its items by the
    # item action: GetItem, PutItem, ...; on its own partition alone a transaction is allowed)
    mixed = [{"Get": {"TableName": pooled, "Key": key(tenant_id)}} for tenant_id in ("acme", "acme-corp")]
    denied(lambda: client.transact_get_items(TransactItems=mixed))
    assert client.transact_get_items(TransactItems=mixed[:1])["Responses"]
    # AND item calls on tables that do not exist or cannot (their partition key is unknown)
    denied(lambda: client.get_item(TableName="no-such-table", Key=key("acme")))
    denied(lambda: client.get_item(TableName="ab", Key=key("acme")))
    # AND table-level calls
    denied(lambda: client.describe_table(TableName=pooled))
    denied(lambda: client.delete_table(TableName=stack.table_of("globex")))
    # THEN every one was refused before moto ran it: the silo table is still there
    assert stack.admin.client("dynamodb").describe_table(TableName=stack.table_of("globex"))


def test_the_stacks_own_credentials_stay_unrestricted(stack: Stack) -> None:
    # The documented deviation: provisioning, the authorizer's registry reads and tests use them.
    admin = stack.admin.client("dynamodb")
    assert admin.get_item(
        TableName=stack.provisioned.registry_table, Key={REGISTRY_PARTITION_KEY: {"S": "acme"}}
    )
    assert admin.scan(TableName=stack.provisioned.pooled_table)["Items"]


def assume(stack: Stack, tags: list[dict[str, str]]) -> Any:
    return stack.admin.client("sts").assume_role(
        RoleArn=stack.provisioned.tenant_data_role_arn, RoleSessionName="tenant-x", Tags=tags
    )


@pytest.mark.parametrize(
    "tags",
    [
        [],
        [{"Key": "tenant", "Value": "acme"}],
        [{"Key": TENANT_SESSION_TAG, "Value": "acme"}, {"Key": "role", "Value": "admin"}],
    ],
    ids=["no tag", "another tag key", "an extra tag"],
)
def test_the_data_role_is_assumed_only_with_exactly_the_tenant_tag(
    stack: Stack, tags: list[dict[str, str]]
) -> None:
    # WHEN the stack's credentials (standing for the tenant API's role) assume the data role otherwise
    with pytest.raises(ClientError) as raised:
        assume(stack, tags)
    # THEN STS refuses as AWS does, by the trust policy
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert raised.value.response["Error"]["Message"].endswith(
        f"is not authorized to perform: sts:AssumeRole on resource: {stack.provisioned.tenant_data_role_arn}"
    )
    # AND with exactly the tenant tag it works
    assert assume(stack, [{"Key": TENANT_SESSION_TAG, "Value": "acme"}])["Credentials"]["AccessKeyId"]


def test_a_session_cannot_assume_a_role_itself(stack: Stack) -> None:
    credentials = assume(stack, [{"Key": TENANT_SESSION_TAG, "Value": "acme"}])["Credentials"]
    session_sts = stack.admin.session.client(
        "sts",
        endpoint_url=stack.emulator.endpoint,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    with pytest.raises(ClientError) as raised:
        session_sts.assume_role(
            RoleArn=stack.provisioned.tenant_data_role_arn,
            RoleSessionName="tenant-globex",
            Tags=[{"Key": TENANT_SESSION_TAG, "Value": "globex"}],
        )
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    # GetCallerIdentity needs no permission, on AWS as here
    assert session_sts.get_caller_identity()["Arn"].endswith("/tenant-x")


tenant_ids = st.from_regex(TENANT_ID_PATTERN, fullmatch=True).filter(
    lambda value: len(value) <= TENANT_ID_MAX_LENGTH
)


@settings(max_examples=25, deadline=None)
@given(caller=tenant_ids, victim=tenant_ids, suffix=st.sampled_from(["", "-corp", "0", "-a-b"]))
def test_any_two_tenant_sessions_are_kept_apart_by_the_emulator(
    stack: Stack, caller: str, victim: str, suffix: str
) -> None:
    # GIVEN two different tenant ids, often one a prefix of the other, each with its own tagged session
    victim = (caller + suffix)[:TENANT_ID_MAX_LENGTH] if suffix else victim
    if victim == caller:
        return
    client, pooled = stack.session(caller), stack.provisioned.pooled_table
    # WHEN the caller writes and reads its own partition THEN that works
    client.put_item(TableName=pooled, Item={**key(caller), "doc": {"S": caller}})
    assert client.get_item(TableName=pooled, Key=key(caller))["Item"]["doc"] == {"S": caller}
    # WHEN it names the other tenant's partition, or the other's silo table, THEN the emulator refuses
    denied(lambda: client.get_item(TableName=pooled, Key=key(victim)))
    denied(lambda: client.put_item(TableName=pooled, Item={**key(victim), "doc": {"S": caller}}))
    denied(lambda: client.get_item(TableName=NAMING.silo_table(victim), Key=key(caller)))
