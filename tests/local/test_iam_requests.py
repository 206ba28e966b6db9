"""How the local IAM enforcer reads requests: SigV4 scopes, DynamoDB calls as IAM requests, STS AssumeRole.

Pure functions, no emulator: each case is a request as boto3 puts it on the wire, and the authorization
requests AWS evaluates for it (action, resource ARN, dynamodb:LeadingKeys).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from local.iam.dynamodb import LEADING_KEYS, dynamodb_requests, operation_of, parameters_of
from local.iam.policy import Request, UnsupportedPolicyError, evaluate
from local.iam.sts import assume_role_call, issued_credentials
from local.iam.wire import SignedCall, credential_scope

REGION, ACCOUNT = "us-east-1", "123456789012"
POOLED = "tenant-tiers-local-pooled"
ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{POOLED}"
SCHEMAS = {POOLED: ("tenant_id", {"by-owner": "owner", "by-sk": "tenant_id"}), "other": ("pk", {})}


def partition_key_of(table: str, index: str | None) -> str:
    partition_key, indexes = SCHEMAS[table]
    return partition_key if index is None else indexes[index]


def requests(operation: str, **params: Any) -> list[tuple[str, str, Any]]:
    """(action, resource, leading keys or None) of each authorization request of the call."""
    made = dynamodb_requests(
        operation,
        params,
        region=REGION,
        account=ACCOUNT,
        partition_key_of=partition_key_of,
        principal_tags={"tenant_id": "acme"},
    )
    return [(r.action, r.resource, r.context.get(LEADING_KEYS)) for r in made]


def key(tenant: str, sort_key: str = "item#a") -> dict[str, Any]:
    return {"tenant_id": {"S": tenant}, "sk": {"S": sort_key}}


def signed(service: str, body: bytes = b"", **headers: str) -> SignedCall:
    return SignedCall(
        access_key_id="ASIAEXAMPLE",
        region=REGION,
        service=service,
        method="POST",
        path="/",
        query="",
        headers={name.replace("_", "-").lower(): value for name, value in headers.items()},
        body=body,
    )


# ---------------------------------------------------------------------------------------------------------
# SigV4


def test_the_credential_scope_names_key_region_and_service() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261130/eu-west-1/dynamodb/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature=abc"
    )
    assert credential_scope(header, "") == ("ASIAEXAMPLE", "eu-west-1", "dynamodb")
    # a presigned URL carries it in the query
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAK%2F20261130%2Fus-east-1%2Fs3%2Faws4_request"
    )
    assert credential_scope("", query) == ("ASIAK", "us-east-1", "s3")
    # unsigned requests (Cognito's public calls, JWKS) have none
    assert credential_scope("", "") is None
    assert credential_scope("Bearer token", "a=b") is None


# ---------------------------------------------------------------------------------------------------------
# DynamoDB on the wire


def test_the_operation_comes_from_x_amz_target_and_the_parameters_from_the_json_body() -> None:
    call = signed("dynamodb", b'{"TableName": "t"}', x_amz_target="DynamoDB_20120810.GetItem")
    assert operation_of(call) == "GetItem"
    assert parameters_of(call) == {"TableName": "t"}
    for target in ("", "DynamoDBStreams_20120810.GetRecords", "GetItem"):
        with pytest.raises(UnsupportedPolicyError):
            operation_of(signed("dynamodb", x_amz_target=target))
    for body in (b"{not json", b"[1]", b'{"a":' * 100_000):
        with pytest.raises(UnsupportedPolicyError):
            parameters_of(signed("dynamodb", body))


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("GetItem", {"Key": key("acme")}),
        ("DeleteItem", {"Key": key("acme")}),
        ("UpdateItem", {"Key": key("acme"), "UpdateExpression": "SET a = :a"}),
        ("PutItem", {"Item": {**key("acme"), "doc": {"S": "{}"}}}),
    ],
)
def test_item_calls_name_the_table_and_the_partition_key_of_their_key(
    operation: str, params: dict[str, Any]
) -> None:
    assert requests(operation, TableName=POOLED, **params) == [(f"dynamodb:{operation}", ARN, ["acme"])]
    # the table may be named by its ARN
    assert requests(operation, TableName=ARN, **params) == [(f"dynamodb:{operation}", ARN, ["acme"])]


@pytest.mark.parametrize(
    ("expression", "names", "values"),
    [
        ("#pk = :t AND begins_with(#sk, :p)", {"#pk": "tenant_id", "#sk": "sk"}, {":t": "acme", ":p": "i"}),
        ("tenant_id=:t", {}, {":t": "acme"}),
        (":t = #pk", {"#pk": "tenant_id"}, {":t": "acme"}),
        (
            "(#pk = :t) AND #sk = :other",
            {"#pk": "tenant_id", "#sk": "sk"},
            {":t": "acme", ":other": "globex"},
        ),
    ],
)
def test_a_query_leads_with_its_key_conditions_equality_on_the_partition_key(
    expression: str, names: dict[str, str], values: dict[str, str]
) -> None:
    params: dict[str, Any] = {
        "TableName": POOLED,
        "KeyConditionExpression": expression,
        "ExpressionAttributeValues": {name: {"S": value} for name, value in values.items()},
    }
    if names:
        params["ExpressionAttributeNames"] = names
    assert requests("Query", **params) == [("dynamodb:Query", ARN, ["acme"])]


def test_a_query_without_an_equality_on_the_partition_key_cannot_be_judged() -> None:
    for expression in ("#sk = :t", "begins_with(#pk, :t)"):
        with pytest.raises(UnsupportedPolicyError):
            requests(
                "Query",
                TableName=POOLED,
                KeyConditionExpression=expression,
                ExpressionAttributeNames={"#pk": "tenant_id", "#sk": "sk"},
                ExpressionAttributeValues={":t": {"S": "acme"}},
            )


def test_legacy_key_conditions_and_indexes() -> None:
    legacy = {"tenant_id": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "acme"}]}}
    assert requests("Query", TableName=POOLED, KeyConditions=legacy) == [("dynamodb:Query", ARN, ["acme"])]
    # an index has its own partition key and its own resource ARN
    on_index = requests(
        "Query",
        TableName=POOLED,
        IndexName="by-owner",
        KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "bob"}},
    )
    assert on_index == [("dynamodb:Query", f"{ARN}/index/by-owner", ["bob"])]
    assert requests("Scan", TableName=POOLED, IndexName="by-sk") == [
        ("dynamodb:Scan", f"{ARN}/index/by-sk", None)
    ]


def test_a_scan_names_no_leading_key() -> None:
    assert requests("Scan", TableName=POOLED) == [("dynamodb:Scan", ARN, None)]


def test_batch_calls_are_one_request_per_table_with_every_partition_key() -> None:
    batch_get = {
        POOLED: {"Keys": [key("acme"), key("acme-corp"), key("acme", "item#b")]},
        "other": {"Keys": [{"pk": {"S": "x"}}]},
    }
    assert requests("BatchGetItem", RequestItems=batch_get) == [
        ("dynamodb:BatchGetItem", ARN, ["acme", "acme-corp"]),
        ("dynamodb:BatchGetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other", ["x"]),
    ]
    batch_write = {POOLED: [{"PutRequest": {"Item": key("acme")}}, {"DeleteRequest": {"Key": key("globex")}}]}
    assert requests("BatchWriteItem", RequestItems=batch_write) == [
        ("dynamodb:BatchWriteItem", ARN, ["acme", "globex"])
    ]


def test_transactions_are_judged_item_by_item_with_the_item_actions() -> None:
    items = [
        {"Put": {"TableName": POOLED, "Item": key("acme")}},
        {"Update": {"TableName": POOLED, "Key": key("acme"), "UpdateExpression": "SET a = :a"}},
        {"Delete": {"TableName": POOLED, "Key": key("acme-corp")}},
        {"ConditionCheck": {"TableName": POOLED, "Key": key("acme"), "ConditionExpression": "x"}},
    ]
    assert requests("TransactWriteItems", TransactItems=items) == [
        ("dynamodb:PutItem", ARN, ["acme"]),
        ("dynamodb:UpdateItem", ARN, ["acme"]),
        ("dynamodb:DeleteItem", ARN, ["acme-corp"]),
        ("dynamodb:ConditionCheckItem", ARN, ["acme"]),
    ]
    gets = [{"Get": {"TableName": POOLED, "Key": key("globex")}}]
    assert requests("TransactGetItems", TransactItems=gets) == [("dynamodb:GetItem", ARN, ["globex"])]


def test_partiql_table_and_account_calls() -> None:
    statements = [
        {"Statement": f'SELECT * FROM "{POOLED}"'},
        {"Statement": f'DELETE FROM "{POOLED}" WHERE a=1'},
    ]
    assert requests("BatchExecuteStatement", Statements=statements) == [
        ("dynamodb:PartiQLSelect", ARN, None),
        ("dynamodb:PartiQLDelete", ARN, None),
    ]
    assert requests("DescribeTable", TableName=POOLED) == [("dynamodb:DescribeTable", ARN, None)]
    assert requests("ListTables") == [("dynamodb:ListTables", "*", None)]


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("GetItem", {"TableName": POOLED, "Key": {"sk": {"S": "item#a"}}}),  # no partition key
        ("GetItem", {"TableName": POOLED, "Key": {"tenant_id": {"L": [{"S": "acme"}]}}}),  # not a scalar
        ("GetItem", {"Key": key("acme")}),  # no table
        ("PutItem", {"TableName": POOLED, "Item": "acme"}),
        ("ExecuteStatement", {"Statement": "EXISTS(SELECT * FROM t)"}),
        ("TransactWriteItems", {"TransactItems": [{"Copy": {"TableName": POOLED}}]}),
        ("DescribeStream", {"StreamArn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"}),
    ],
)
def test_what_cannot_be_mapped_raises_instead_of_being_guessed(
    operation: str, params: dict[str, Any]
) -> None:
    with pytest.raises(UnsupportedPolicyError):
        requests(operation, **params)


def test_a_condition_on_a_key_the_mapper_does_not_compute_is_refused() -> None:
    # GIVEN a policy conditioned on dynamodb:Select, which the DynamoDB mapper does not compute
    policy = {
        "Statement": {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": "*",
            "Condition": {"StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}},
        }
    }
    (request,) = dynamodb_requests(
        "GetItem",
        {"TableName": POOLED, "Key": key("acme")},
        region=REGION,
        account=ACCOUNT,
        partition_key_of=partition_key_of,
        principal_tags={},
    )
    # THEN its absence is not taken for an absence on AWS
    with pytest.raises(UnsupportedPolicyError, match="dynamodb:Select"):
        evaluate(policy, request)
    # while a hand-written request (complete context) may leave it out
    assert evaluate(policy, Request("dynamodb:GetItem", ARN)).value == "ImplicitDeny"


# ---------------------------------------------------------------------------------------------------------
# STS


def form(**parameters: str) -> bytes:
    return urlencode(parameters).encode()


def test_assume_role_is_read_from_the_form_body_with_its_session_tags() -> None:
    body = form(
        Action="AssumeRole",
        RoleArn="arn:aws:iam::123456789012:role/data",
        RoleSessionName="tenant-acme",
        **{"Tags.member.1.Key": "tenant_id", "Tags.member.1.Value": "acme"},
        **{"Tags.member.2.Key": "team", "Tags.member.2.Value": ""},
    )
    call = signed("sts", body, content_type="application/x-www-form-urlencoded; charset=utf-8")
    assume = assume_role_call(call)
    assert (assume.role_arn, assume.session_name) == ("arn:aws:iam::123456789012:role/data", "tenant-acme")
    assert assume.tags == {"tenant_id": "acme", "team": ""}


@pytest.mark.parametrize(
    "extra",
    [{"Policy": json.dumps({"Statement": []})}, {"PolicyArns.member.1.arn": "arn:aws:iam::aws:policy/x"}],
)
def test_session_policies_are_not_emulated_so_assume_role_with_one_is_refused(extra: dict[str, str]) -> None:
    body = form(Action="AssumeRole", RoleArn="arn:aws:iam::1:role/r", RoleSessionName="s", **extra)
    with pytest.raises(UnsupportedPolicyError):
        assume_role_call(signed("sts", body, content_type="application/x-www-form-urlencoded"))


def test_the_issued_session_is_read_from_the_emulators_answer() -> None:
    answer = (
        b'<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
        b"<Credentials><AccessKeyId>ASIAKEY</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
        b"<SessionToken>t</SessionToken><Expiration>2026-12-01T00:18:52.832268Z</Expiration></Credentials>"
        b"<AssumedRoleUser><AssumedRoleId>AROA:tenant-acme</AssumedRoleId>"
        b"<Arn>arn:aws:sts::123456789012:assumed-role/data/tenant-acme</Arn></AssumedRoleUser>"
        b"</AssumeRoleResult></AssumeRoleResponse>"
    )
    issued = issued_credentials(answer)
    assert issued.access_key_id == "ASIAKEY"
    assert issued.assumed_role_arn == "arn:aws:sts::123456789012:assumed-role/data/tenant-acme"
    assert issued.expires_at == pytest.approx(1796084332.832268)
