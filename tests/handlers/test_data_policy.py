"""The tenant data role's IAM documents, judged by the local stack's IAM evaluator (local/iam).

moto enforces no IAM, so these tests are what shows that a session tagged with one tenant cannot touch
another tenant's items, and that every call the tenant API really makes fits the policy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blueprint.policies import tenant_data_trust_policy
from handlers.contract import DATA_PARTITION_KEY, TENANT_ID_MAX_LENGTH, TENANT_ID_PATTERN, TENANT_SESSION_TAG
from local.iam.dynamodb import dynamodb_requests
from local.iam.policy import (
    Decision,
    Request,
    UnsupportedPolicyError,
    all_allowed,
    evaluate,
    is_allowed,
)
from local.iam.sts import AssumeRoleCall, assume_role_requests
from tests.handlers.tenant_fixtures import (
    ACCOUNT,
    ACME,
    ACME_CORP,
    GLOBEX,
    NAMING,
    REGION,
    TenantApi,
    data_policy,
    running_tenant_api,
)

POLICY = data_policy()
TENANT_API_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{NAMING.prefix}-tenant-api"
TRUST = tenant_data_trust_policy(TENANT_API_ROLE)
ITEM_ACTIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query")

tenant_ids = st.from_regex(TENANT_ID_PATTERN, fullmatch=True).filter(
    lambda value: len(value) <= TENANT_ID_MAX_LENGTH
)


def data_partition_key(_table: str, _index: str | None) -> str:
    """Every table the tenant API touches has the same partition key."""
    return DATA_PARTITION_KEY


def silo_table(tenant_id: str) -> str:
    return NAMING.silo_table(tenant_id)


def call(
    operation: str, table: str, partition: str, *, session_tenant: str | None, **params: Any
) -> list[Request]:
    """The authorization requests of a DynamoDB call, shaped as the tenant API shapes its calls."""
    key = {DATA_PARTITION_KEY: {"S": partition}, "sk": {"S": "item#x"}}
    shapes: dict[str, dict[str, Any]] = {
        "GetItem": {"Key": key},
        "DeleteItem": {"Key": key},
        "UpdateItem": {"Key": key},
        "PutItem": {"Item": {**key, "doc": {"S": "1"}}},
        "Query": {
            "KeyConditionExpression": "#pk = :tenant AND begins_with(#sk, :items)",
            "ExpressionAttributeNames": {"#pk": DATA_PARTITION_KEY, "#sk": "sk"},
            "ExpressionAttributeValues": {":tenant": {"S": partition}, ":items": {"S": "item#"}},
        },
    }
    return dynamodb_requests(
        operation,
        {"TableName": table, **shapes.get(operation, {}), **params},
        region=REGION,
        account=ACCOUNT,
        partition_key_of=data_partition_key,
        principal_tags={} if session_tenant is None else {TENANT_SESSION_TAG: session_tenant},
    )


# ---------------------------------------------------------------------------------------------------------
# The evaluator itself (so a wrong verdict below cannot come from a broken judge)


def test_an_explicit_deny_beats_an_allow_and_no_match_is_an_implicit_deny() -> None:
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
        ]
    }
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/k")) is Decision.ALLOW
    assert evaluate(policy, Request("s3:DeleteBucket", "arn:aws:s3:::b")) is Decision.EXPLICIT_DENY
    assert evaluate(policy, Request("sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:q")) is Decision.IMPLICIT_DENY


def test_action_wildcards_ignore_case_and_resource_wildcards_do_not() -> None:
    policy = {"Statement": {"Effect": "Allow", "Action": "dynamodb:Get?tem", "Resource": "arn:x:table/T-*"}}
    assert is_allowed(policy, Request("DynamoDB:getitem", "arn:x:table/T-1"))
    assert not is_allowed(policy, Request("dynamodb:GetItems", "arn:x:table/T-1"))
    assert not is_allowed(policy, Request("dynamodb:GetItem", "arn:x:table/t-1"))


def test_principal_tag_variables_are_substituted_literally_and_unknown_ones_match_nothing() -> None:
    policy = {
        "Statement": {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "arn:x:table/silo-${aws:PrincipalTag/tenant}",
        }
    }
    assert is_allowed(policy, Request("a:b", "arn:x:table/silo-acme", {"tenant": "acme"}))
    assert not is_allowed(policy, Request("a:b", "arn:x:table/silo-acme-corp", {"tenant": "acme"}))
    assert not is_allowed(policy, Request("a:b", "arn:x:table/silo-acme", {}))
    assert not is_allowed(policy, Request("a:b", "arn:x:table/silo-other", {"tenant": "*"}))


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"ForAllValues:StringEquals": {"k": ["a"]}}, {}, True),  # absent key: vacuously true
        ({"ForAllValues:StringEquals": {"k": ["a"]}}, {"k": ["a", "b"]}, False),
        ({"ForAnyValue:StringEquals": {"k": ["a"]}}, {}, False),
        ({"ForAnyValue:StringEquals": {"k": ["a"]}}, {"k": ["b", "a"]}, True),
        ({"Null": {"k": "false"}}, {}, False),
        ({"Null": {"k": "false"}}, {"k": ["a"]}, True),
        ({"Null": {"k": "true"}}, {}, True),
        ({"StringEquals": {"K": "a"}}, {"k": "a"}, True),  # key names are case-insensitive
        ({"StringEquals": {"k": "a"}}, {"k": "A"}, False),
        ({"StringEquals": {"k": "a"}}, {}, False),
        ({"StringLike": {"k": "acme*"}}, {"k": "acme-corp"}, True),  # why a prefix match would leak
        ({"StringEquals": {"k": ["x", "a"]}, "Null": {"j": "true"}}, {"k": "a"}, True),
        ({"StringEquals": {"k": ["x", "a"]}, "Null": {"j": "true"}}, {"k": "a", "j": "1"}, False),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    policy = {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}}
    assert is_allowed(policy, Request("a:b", "r", context=context)) is expected


def test_the_evaluator_refuses_what_it_does_not_understand() -> None:
    for statement in (
        {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericLessThan": {"k": "1"}}},
        {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {"ForAllValues:StringNotEquals": {"k": "a"}},
        },
    ):
        with pytest.raises(UnsupportedPolicyError):
            evaluate({"Statement": [statement]}, Request("a:b", "r", context={"k": ["a"]}))


# ---------------------------------------------------------------------------------------------------------
# The data role's policy


@pytest.mark.parametrize("operation", ITEM_ACTIONS)
def test_a_tenant_may_use_its_own_items_in_the_pooled_table_and_its_own_silo_table(operation: str) -> None:
    assert all_allowed(POLICY, call(operation, NAMING.pooled_table, "acme", session_tenant="acme"))
    assert all_allowed(POLICY, call(operation, silo_table("globex"), "globex", session_tenant="globex"))


@pytest.mark.parametrize("operation", ITEM_ACTIONS)
@pytest.mark.parametrize(
    ("caller", "victim"), [("acme", "acme-corp"), ("acme-corp", "acme"), ("acme", "globex")]
)
def test_another_tenants_partition_is_denied(operation: str, caller: str, victim: str) -> None:
    # in the pooled table
    assert not all_allowed(POLICY, call(operation, NAMING.pooled_table, victim, session_tenant=caller))
    # in the victim's silo table, whichever partition key is named
    assert not all_allowed(POLICY, call(operation, silo_table(victim), victim, session_tenant=caller))
    assert not all_allowed(POLICY, call(operation, silo_table(victim), caller, session_tenant=caller))


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("Scan", {}),
        ("ExecuteStatement", {"Statement": f'SELECT * FROM "{NAMING.pooled_table}"'}),
        (
            "ExecuteStatement",
            {"Statement": f"SELECT * FROM \"{NAMING.pooled_table}\" WHERE tenant_id = 'acme'"},
        ),
        (
            "ExecuteStatement",
            {"Statement": f"DELETE FROM \"{NAMING.pooled_table}\" WHERE tenant_id = 'acme'"},
        ),
    ],
)
def test_scans_and_partiql_are_denied_even_on_the_callers_own_table(
    operation: str, params: dict[str, Any]
) -> None:
    for table in (NAMING.pooled_table, silo_table("acme")):
        on_table = {key: value.replace(NAMING.pooled_table, table) for key, value in params.items()}
        assert not all_allowed(POLICY, call(operation, table, "acme", session_tenant="acme", **on_table))


@pytest.mark.parametrize("keys_of", [["acme"], ["acme", "acme-corp"], ["acme-corp"]])
def test_batch_reads_and_writes_are_denied(keys_of: list[str]) -> None:
    keys = [{DATA_PARTITION_KEY: {"S": tenant}, "sk": {"S": "item#x"}} for tenant in keys_of]
    batch_get = {"RequestItems": {NAMING.pooled_table: {"Keys": keys}}}
    batch_write = {"RequestItems": {NAMING.pooled_table: [{"DeleteRequest": {"Key": key}} for key in keys]}}
    assert not all_allowed(
        POLICY, call("BatchGetItem", NAMING.pooled_table, "acme", session_tenant="acme", **batch_get)
    )
    assert not all_allowed(
        POLICY, call("BatchWriteItem", NAMING.pooled_table, "acme", session_tenant="acme", **batch_write)
    )


def transact(session_tenant: str, *actions: tuple[str, str, str]) -> list[Request]:
    """A TransactWriteItems call of (kind, table, partition) actions, as the tenant API shapes them."""
    items = []
    for kind, table, partition in actions:
        key = {DATA_PARTITION_KEY: {"S": partition}}
        if table != NAMING.placement_table:
            key["sk"] = {"S": "item#x"}
        items.append({kind: {"TableName": table, ("Item" if kind == "Put" else "Key"): key}})
    return call(
        "TransactWriteItems", "unused", session_tenant, session_tenant=session_tenant, TransactItems=items
    )


@pytest.mark.parametrize("kind", ["Put", "Update", "Delete"])
@pytest.mark.parametrize("table", [NAMING.pooled_table, silo_table("acme")])
def test_a_write_checked_against_the_own_placement_item_is_allowed(kind: str, table: str) -> None:
    # GIVEN acme's session WHEN it writes its own item on condition of its own placement item THEN allowed
    fenced_write = transact("acme", ("ConditionCheck", NAMING.placement_table, "acme"), (kind, table, "acme"))
    assert all_allowed(POLICY, fenced_write)
    # AND it may read its own placement item
    assert all_allowed(POLICY, call("GetItem", NAMING.placement_table, "acme", session_tenant="acme"))


@pytest.mark.parametrize("kind", ["Put", "Update", "Delete"])
def test_no_tenant_can_write_a_placement_item_or_check_anothers(kind: str) -> None:
    # GIVEN acme's session: it cannot lift its own fence or move itself (only the operator writes placement)
    assert not all_allowed(POLICY, call(f"{kind}Item", NAMING.placement_table, "acme", session_tenant="acme"))
    assert not all_allowed(POLICY, transact("acme", (kind, NAMING.placement_table, "acme")))
    # AND it can neither read nor check another tenant's placement item
    other_placement = call("GetItem", NAMING.placement_table, "acme-corp", session_tenant="acme")
    assert not all_allowed(POLICY, other_placement)
    other_fence = transact(
        "acme", ("ConditionCheck", NAMING.placement_table, "acme-corp"), ("Put", NAMING.pooled_table, "acme")
    )
    assert not all_allowed(POLICY, other_fence)
    # AND a transaction may not smuggle another tenant's write next to its own check
    smuggled = transact(
        "acme", ("ConditionCheck", NAMING.placement_table, "acme"), (kind, NAMING.pooled_table, "acme-corp")
    )
    assert not all_allowed(POLICY, smuggled)
    # AND condition checks on data tables are not granted (nothing needs them)
    assert not all_allowed(POLICY, transact("acme", ("ConditionCheck", NAMING.pooled_table, "acme")))


def test_a_session_without_the_tenant_tag_gets_nothing() -> None:
    for operation in ITEM_ACTIONS:
        assert not all_allowed(POLICY, call(operation, NAMING.pooled_table, "acme", session_tenant=None))


def test_no_other_table_is_reachable() -> None:
    for table in (NAMING.registry_table, "other-app-table", f"{NAMING.prefix}-pooled-archive"):
        assert not all_allowed(POLICY, call("GetItem", table, "acme", session_tenant="acme"))


@settings(max_examples=60, deadline=None)
@given(caller=tenant_ids, victim=tenant_ids, suffix=st.sampled_from(["", "-corp", "0", "-a-b"]))
def test_any_two_tenants_are_kept_apart(caller: str, victim: str, suffix: str) -> None:
    # GIVEN two different tenants, often one a prefix of the other
    victim = (caller + suffix)[:TENANT_ID_MAX_LENGTH] if suffix else victim
    if victim == caller:
        return
    for operation in ITEM_ACTIONS:
        # THEN the caller reaches its own partition and own silo table
        assert all_allowed(POLICY, call(operation, NAMING.pooled_table, caller, session_tenant=caller))
        assert all_allowed(POLICY, call(operation, silo_table(caller), caller, session_tenant=caller))
        # AND none of the other tenant's, in either direction
        for one, other in ((caller, victim), (victim, caller)):
            assert not all_allowed(POLICY, call(operation, NAMING.pooled_table, other, session_tenant=one))
            assert not all_allowed(POLICY, call(operation, silo_table(other), other, session_tenant=one))
            assert not all_allowed(POLICY, call(operation, silo_table(other), one, session_tenant=one))


# ---------------------------------------------------------------------------------------------------------
# The data role's trust policy


def assume_role(principal: str, tags: dict[str, str]) -> list[Request]:
    """AssumeRole with session tags needs sts:AssumeRole and, with any tag, sts:TagSession."""
    role = f"arn:aws:iam::{ACCOUNT}:role/{NAMING.prefix}-tenant-data"
    return assume_role_requests(AssumeRoleCall(role, "tenant-x", tags), principal=principal)


def test_the_tenant_api_may_assume_the_data_role_with_exactly_the_tenant_tag() -> None:
    assert all_allowed(TRUST, assume_role(TENANT_API_ROLE, {TENANT_SESSION_TAG: "acme"}))


@pytest.mark.parametrize(
    ("principal", "tags"),
    [
        (TENANT_API_ROLE, {}),
        (TENANT_API_ROLE, {TENANT_SESSION_TAG: "acme", "role": "admin"}),
        (TENANT_API_ROLE, {"tenant": "acme"}),
        (f"arn:aws:iam::{ACCOUNT}:role/{NAMING.prefix}-authorizer", {TENANT_SESSION_TAG: "acme"}),
        ("arn:aws:iam::999999999999:root", {TENANT_SESSION_TAG: "acme"}),
    ],
)
def test_assuming_the_data_role_otherwise_is_denied(principal: str, tags: dict[str, str]) -> None:
    assert not all_allowed(TRUST, assume_role(principal, tags))


# ---------------------------------------------------------------------------------------------------------
# Every call the tenant API really makes fits the policy of its own session, and no other


@dataclass(frozen=True)
class WireCall:
    access_key: str
    operation: str
    body: dict[str, Any]


class WireTap:
    """Records the signed DynamoDB requests a boto3 session sends, and which tenant tag each key carries.

    The access key id in a request's signature is how AWS knows the session (and its tags): so this judges
    what AWS would judge, not what the handler meant to do.
    """

    def __init__(self, session: Any) -> None:
        self.calls: list[WireCall] = []
        self.tag_of_key: dict[str, str] = {}
        self.assume_role_params: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        session.events.register("before-parameter-build.sts.AssumeRole", self._assume_role_params)
        session.events.register("after-call.sts.AssumeRole", self._assume_role_result)
        session.events.register("before-send.dynamodb", self._dynamodb_request)

    def _assume_role_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["tenant_tag"] = {tag["Key"]: tag["Value"] for tag in params.get("Tags", [])}[
            TENANT_SESSION_TAG
        ]
        with self._lock:
            self.assume_role_params.append(dict(params))

    def _assume_role_result(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.tag_of_key[parsed["Credentials"]["AccessKeyId"]] = context["tenant_tag"]

    def _dynamodb_request(self, request: Any, **_: Any) -> None:
        authorization = request.headers["Authorization"].decode()
        access_key = authorization.split("Credential=", 1)[1].split("/", 1)[0]
        operation = request.headers["X-Amz-Target"].decode().split(".", 1)[1]
        with self._lock:
            self.calls.append(WireCall(access_key, operation, json.loads(request.body)))


@pytest.fixture
def tapped(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TenantApi, WireTap]]:
    session = boto3.session.Session(region_name=REGION)
    tap = WireTap(session)
    with running_tenant_api(monkeypatch, session) as api:
        yield api, tap


def test_every_call_the_tenant_api_makes_is_allowed_for_its_tenant_only(
    tapped: tuple[TenantApi, WireTap],
) -> None:
    api, tap = tapped
    # GIVEN every data route used by two pooled tenants (one id a prefix of the other) and a silo tenant
    for tenant in (ACME, ACME_CORP, GLOBEX):
        for n in range(3):
            api.put(tenant, f"i{n}", json.dumps({"n": n}))
        api.put(tenant, "i0", "0")
        api.get(tenant, "i1")
        api.get(tenant, "missing")
        api.list_all(tenant, limit=2)
        api.count(tenant)
        api.delete(tenant, "i2")

    # WHEN each signed request is judged by the policy, for its own session's tag and for every other's
    tenant_calls = [wire for wire in tap.calls if wire.access_key in tap.tag_of_key]
    # (the only calls on other credentials are the test's own CreateTable: the handler has no others)
    assert {wire.operation for wire in tap.calls if wire not in tenant_calls} == {"CreateTable"}
    # (writes are transactions: a check of the tenant's placement item plus the write itself)
    assert {wire.operation for wire in tenant_calls} == {"GetItem", "Query", "TransactWriteItems"}
    tenants = ("acme", "acme-corp", "globex")
    for wire in tenant_calls:
        owner = tap.tag_of_key[wire.access_key]

        def requests_as(tenant: str, wire: WireCall = wire) -> list[Request]:
            return dynamodb_requests(
                wire.operation,
                wire.body,
                region=REGION,
                account=ACCOUNT,
                partition_key_of=data_partition_key,
                principal_tags={TENANT_SESSION_TAG: tenant},
            )

        # THEN it is allowed for the tenant whose credentials signed it, and for no other tenant
        assert all_allowed(POLICY, requests_as(owner)), wire
        for other in tenants:
            if other != owner:
                assert not all_allowed(POLICY, requests_as(other)), (other, wire)

    # AND every credential came from an AssumeRole the trust policy allows, one per tenant
    assert sorted(tap.tag_of_key.values()) == sorted(tenants)
    for params in tap.assume_role_params:
        tags = {tag["Key"]: tag["Value"] for tag in params["Tags"]}
        assert all_allowed(TRUST, assume_role(TENANT_API_ROLE, tags))
