"""The IAM enforcer as WSGI middleware: what reaches the emulator, what is answered in its place.

The app behind it stands in for moto's (it records what reached it and answers AssumeRole as moto does);
the roles and tables the enforcer looks up live in moto (in process, ``mock_aws``), written with the
program's policy documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from wsgiref.types import StartResponse, WSGIEnvironment

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import EnvironBuilder

from blueprint.policies import tenant_api_policy, tenant_data_policy, tenant_data_trust_policy
from local.iam.enforcer import IamEnforcer

REGION, ACCOUNT = "us-east-1", "123456789012"
POOLED = "tenant-tiers-unit-pooled"
POOLED_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{POOLED}"
API_ROLE = f"arn:aws:iam::{ACCOUNT}:role/unit-tenant-api"
DATA_ROLE = f"arn:aws:iam::{ACCOUNT}:role/unit-tenant-data"
SESSION_KEY = "ASIASESSIONKEY"
ISSUED_AT = 1_800_000_000.0  # 2027-01-15T08:00:00Z, an hour before the session expires


@dataclass
class Emulator:
    """Stands in for moto's app: records each request that reaches it and answers AssumeRole."""

    reached: list[str] = field(default_factory=list)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.reached.append(environ.get("HTTP_X_AMZ_TARGET") or body.decode())
        if b"Action=AssumeRole" in body:
            start_response("200 OK", [("Content-Type", "text/xml")])
            return [assume_role_answer()]
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b"{}"]


def ignore_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def assume_role_answer() -> bytes:
    return (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
        f"<Credentials><AccessKeyId>{SESSION_KEY}</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
        "<SessionToken>t</SessionToken><Expiration>2027-01-15T09:00:00Z</Expiration></Credentials>"
        "<AssumedRoleUser><AssumedRoleId>AROA:tenant-acme</AssumedRoleId>"
        f"<Arn>arn:aws:sts::{ACCOUNT}:assumed-role/unit-tenant-data/tenant-acme</Arn></AssumedRoleUser>"
        "</AssumeRoleResult></AssumeRoleResponse>"
    ).encode()


@dataclass(frozen=True)
class Answered:
    status: str
    headers: dict[str, str]
    body: bytes


class Harness:
    def __init__(self) -> None:
        self.emulator = Emulator()
        self.now = ISSUED_AT
        self.enforcer = IamEnforcer(
            self.emulator,
            lambda service, region: boto3.client(service, region_name=region),
            clock=lambda: self.now,
        )
        self.enforcer.stack_credentials_act_as(API_ROLE, "unit-tenant-api")

    def send(self, access_key: str, service: str, body: bytes, **headers: str) -> Answered:
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/20270115/{REGION}/{service}/aws4_request, S=x"
        )
        content_type = headers.pop("content_type", "application/x-amz-json-1.0")
        request_headers = [("Authorization", authorization), *headers.items()]
        environ = EnvironBuilder(
            method="POST", path="/", headers=request_headers, data=body, content_type=content_type
        ).get_environ()
        started: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started.update(status=status, headers=dict(response_headers))

        answer = b"".join(self.enforcer(environ, start_response))
        return Answered(started["status"], started["headers"], answer)

    def assume(self, tags: dict[str, str]) -> Answered:
        parameters = {"Action": "AssumeRole", "RoleArn": DATA_ROLE, "RoleSessionName": "tenant-acme"}
        for index, (name, value) in enumerate(tags.items(), start=1):
            parameters.update({f"Tags.member.{index}.Key": name, f"Tags.member.{index}.Value": value})
        return self.send(
            "testing", "sts", urlencode(parameters).encode(), content_type="application/x-www-form-urlencoded"
        )

    def get_item(self, tenant_id: str, access_key: str = SESSION_KEY) -> Answered:
        body = json.dumps(
            {"TableName": POOLED, "Key": {"tenant_id": {"S": tenant_id}, "sk": {"S": "item#a"}}}
        )
        return self.send(access_key, "dynamodb", body.encode(), X_Amz_Target="DynamoDB_20120810.GetItem")


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_role(RoleName="unit-tenant-api", AssumeRolePolicyDocument="{}")
        iam.put_role_policy(
            RoleName="unit-tenant-api",
            PolicyName="assume",
            PolicyDocument=json.dumps(tenant_api_policy(DATA_ROLE)),
        )
        iam.create_role(
            RoleName="unit-tenant-data",
            AssumeRolePolicyDocument=json.dumps(tenant_data_trust_policy(API_ROLE)),
        )
        iam.put_role_policy(
            RoleName="unit-tenant-data",
            PolicyName="own-items",
            PolicyDocument=json.dumps(
                tenant_data_policy(
                    POOLED_ARN,
                    "unit-silo-",
                    POOLED_ARN.replace(POOLED, "unit-placement"),
                    "unit-pooled-bucket",
                    "unit-silo-bucket-",
                )
            ),
        )
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=POOLED,
            KeySchema=[
                {"AttributeName": "tenant_id", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "tenant_id", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Harness()


def test_a_session_is_learned_from_assume_role_and_judged_on_every_call(harness: Harness) -> None:
    # GIVEN the stack's credentials assume the data role with the tenant tag
    assert harness.assume({"tenant_id": "acme"}).status.startswith("200")
    (session,) = harness.enforcer.sessions().values()
    assert (session.arn, session.role_arn, dict(session.tags)) == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/unit-tenant-data/tenant-acme",
        DATA_ROLE,
        {"tenant_id": "acme"},
    )
    # WHEN the session reads its own partition, then another tenant's
    own, other = harness.get_item("acme"), harness.get_item("acme-corp")
    # THEN the first reaches the emulator, the second is answered in its place as DynamoDB answers
    assert own.status.startswith("200")
    assert other.status == "400 Bad Request"
    assert other.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert other.headers["x-amzn-RequestId"]
    assert json.loads(other.body) == {
        "__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
        "message": f"User: {session.arn} is not authorized to perform: dynamodb:GetItem on resource: "
        f"{POOLED_ARN} because no identity-based policy allows the dynamodb:GetItem action",
    }
    assert harness.emulator.reached.count("DynamoDB_20120810.GetItem") == 1


def test_a_refused_assume_role_never_reaches_the_emulator_and_issues_no_session(harness: Harness) -> None:
    answer = harness.assume({"tenant_id": "acme", "admin": "true"})
    assert answer.status == "403 Forbidden"
    assert b"<Code>AccessDenied</Code>" in answer.body
    assert harness.emulator.reached == []
    assert harness.enforcer.sessions() == {}


def test_expired_credentials_get_the_expired_token_error(harness: Harness) -> None:
    harness.assume({"tenant_id": "acme"})
    harness.now = ISSUED_AT + 3600
    answer = harness.get_item("acme")
    assert answer.status == "400 Bad Request"
    assert json.loads(answer.body)["__type"].endswith("#ExpiredTokenException")


def test_a_changed_role_policy_applies_to_existing_sessions(harness: Harness) -> None:
    harness.assume({"tenant_id": "acme"})
    assert harness.get_item("acme").status.startswith("200")
    # WHEN the data role's policy is removed (in moto) and the IAM call passes through the enforcer
    boto3.client("iam", region_name=REGION).delete_role_policy(
        RoleName="unit-tenant-data", PolicyName="own-items"
    )
    harness.send(
        "testing", "iam", b"Action=DeleteRolePolicy", content_type="application/x-www-form-urlencoded"
    )
    # THEN the session's next call is judged on the role as it is now
    assert harness.get_item("acme").status == "400 Bad Request"


def test_a_session_calling_an_unmapped_service_or_sending_what_cannot_be_read_is_refused(
    harness: Harness,
) -> None:
    harness.assume({"tenant_id": "acme"})
    unmapped = harness.send(
        SESSION_KEY, "sqs", b"Action=ListQueues", content_type="application/x-www-form-urlencoded"
    )
    assert unmapped.status == "403 Forbidden"
    assert b"no IAM mapping for the sqs service" in unmapped.body
    garbled = harness.send(SESSION_KEY, "dynamodb", b"{not json", X_Amz_Target="DynamoDB_20120810.GetItem")
    assert garbled.status == "400 Bad Request"
    assert "cannot judge it" in json.loads(garbled.body)["message"]
    # only the AssumeRole reached the emulator
    assert len(harness.emulator.reached) == 1


def test_the_stacks_own_credentials_and_unsigned_requests_pass_unjudged(harness: Harness) -> None:
    assert harness.get_item("anyone", access_key="testing").status.startswith("200")
    environ = EnvironBuilder(method="GET", path="/pool/.well-known/jwks.json").get_environ()
    assert b"".join(harness.enforcer(environ, ignore_start)) == b"{}"
    assert harness.emulator.reached == ["DynamoDB_20120810.GetItem", ""]
