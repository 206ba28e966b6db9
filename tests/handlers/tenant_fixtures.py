"""Shared pieces of the tenant API tests: tenants, tables in moto, events from JSON fixtures, a caller."""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from blueprint.policies import tenant_data_policy
from handlers import tenant_api
from handlers.contract import (
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    PLACEMENT_PARTITION_KEY,
    ContextKey,
    Env,
)
from handlers.tenant_data import TenantClients
from tiers.naming import Naming

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account: assumed-role credentials map back to it
NAMING = Naming("tenant-tiers", "test")
BUCKETS = NAMING.buckets(ACCOUNT, REGION)
DATA_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{NAMING.prefix}-tenant-data"
EVENTS = Path(__file__).parent / "events"
# Reused by tests that register no event hooks: a session keeps service models loaded, and loading them
# is most of the cost of a new client.
SHARED_SESSION = boto3.session.Session(region_name=REGION)


def table_arn(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"


def data_policy() -> dict[str, Any]:
    """The data role's policy, exactly as the program renders it for this stack."""
    return tenant_data_policy(
        table_arn(NAMING.pooled_table),
        NAMING.silo_table_prefix,
        table_arn(NAMING.placement_table),
        BUCKETS.pooled,
        BUCKETS.silo_prefix,
    )


@dataclass(frozen=True)
class TenantSpec:
    tenant_id: str
    isolation: str = "pooled"
    tier: str = "basic"
    throttle_rate: str = "10"
    throttle_burst: str = "20"
    quota_limit: str = "10000"
    quota_period: str = "MONTH"
    quota_offset: str = "0"

    @property
    def table(self) -> str:
        return NAMING.silo_table(self.tenant_id) if self.isolation == "silo" else NAMING.pooled_table

    @property
    def bucket(self) -> str:
        return BUCKETS.silo(self.tenant_id) if self.isolation == "silo" else BUCKETS.pooled

    def authorizer_context(self) -> dict[str, Any]:
        return {
            "principalId": f"user-of-{self.tenant_id}",
            ContextKey.TENANT_ID: self.tenant_id,
            ContextKey.TIER: self.tier,
            ContextKey.ISOLATION: self.isolation,
            ContextKey.TABLE: self.table,
            ContextKey.BUCKET: self.bucket,
            ContextKey.THROTTLE_RATE: self.throttle_rate,
            ContextKey.THROTTLE_BURST: self.throttle_burst,
            ContextKey.QUOTA_LIMIT: self.quota_limit,
            ContextKey.QUOTA_PERIOD: self.quota_period,
            ContextKey.QUOTA_OFFSET: self.quota_offset,
            "integrationLatency": 7,
        }


ACME = TenantSpec("acme")
ACME_CORP = TenantSpec("acme-corp")
GLOBEX = TenantSpec("globex", isolation="silo", tier="premium", throttle_rate="200", throttle_burst="400")
# Files: pooled tenants whose ids prefix one another ("a" of "acme" of "acme-corp"), and silo tenants
# whose ids do too, so any prefix match in a key or a bucket name would show.
A = TenantSpec("a")
ACME_SILO = TenantSpec("acme-silo", isolation="silo", tier="premium")
ACME_SILO_TWO = TenantSpec("acme-silo-two", isolation="silo", tier="premium")
FILE_TENANTS = (A, ACME, ACME_CORP, GLOBEX, ACME_SILO, ACME_SILO_TWO)


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"tenant_api_{name}.json").read_text())
    return event


def api_event(
    name: str,
    tenant: TenantSpec,
    *,
    item_id: str | None = None,
    file_name: str | None = None,
    body: str | None = None,
    base64_body: bool = False,
    query: dict[str, str] | None = None,
    request_id: str = "req-0001",
) -> dict[str, Any]:
    """The fixture event ``name``, sent by ``tenant``, with the given item id, body and query."""
    event = copy.deepcopy(load_event(name))
    event["requestContext"]["authorizer"] = tenant.authorizer_context()
    event["requestContext"]["requestId"] = request_id
    if item_id is not None:
        event["path"] = event["resource"].replace("{id}", item_id)
        event["requestContext"]["path"] = "/dev" + event["path"]
        event["pathParameters"] = {"id": item_id}
    if file_name is not None:
        event["path"] = event["resource"].replace("{name}", file_name)
        event["requestContext"]["path"] = "/dev" + event["path"]
        event["pathParameters"] = {"name": file_name}
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
        event["isBase64Encoded"] = base64_body
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {key: [value] for key, value in query.items()} or None
    return event


@dataclass
class LambdaContextStub:
    aws_request_id: str = "lambda-req-0001"
    function_name: str = "tenant-tiers-test-tenant-api"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:tenant-tiers-test-tenant-api"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or None for an empty body

    @classmethod
    def of(cls, response: dict[str, Any]) -> Answer:
        raw = response.get("body") or ""
        headers = dict(response.get("headers") or {})
        headers.update(
            {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
        )
        return cls(int(response["statusCode"]), headers, json.loads(raw) if raw else None)


@dataclass(frozen=True)
class RawAnswer:
    """A proxy response whose body may be bytes (base64 on the wire)."""

    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, response: dict[str, Any]) -> RawAnswer:
        raw = response.get("body") or ""
        body = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
        headers = dict(response.get("headers") or {})
        headers.update(
            {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
        )
        return cls(int(response["statusCode"]), headers, body)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class TenantApi:
    """The tenant API's lambda_handler wired to moto tables and STS, called like API Gateway would."""

    clients: TenantClients
    session: Any
    admin: Any  # a DynamoDB client with full rights, for looking at raw tables
    requests: int = field(default=0)

    def call(self, event: dict[str, Any]) -> Answer:
        self.requests += 1
        return Answer.of(tenant_api.lambda_handler(event, LambdaContextStub()))  # type: ignore[arg-type]

    def send(self, name: str, tenant: TenantSpec, **kwargs: Any) -> Answer:
        return self.call(api_event(name, tenant, **kwargs))

    def put(self, tenant: TenantSpec, item_id: str, document: str) -> Answer:
        return self.send("put_item", tenant, item_id=item_id, body=document)

    def get(self, tenant: TenantSpec, item_id: str) -> Answer:
        return self.send("get_item", tenant, item_id=item_id)

    def delete(self, tenant: TenantSpec, item_id: str) -> Answer:
        return self.send("delete_item", tenant, item_id=item_id)

    def count(self, tenant: TenantSpec) -> Answer:
        return self.send("post_counter", tenant)

    def list_page(self, tenant: TenantSpec, **query: str) -> Answer:
        return self.send("list_items", tenant, query=query)

    def put_file(
        self, tenant: TenantSpec, name: str, content: bytes, content_type: str | None = None
    ) -> Answer:
        event = api_event("put_file", tenant, file_name=name)
        event["body"] = base64.b64encode(content).decode()
        event["isBase64Encoded"] = True
        headers = {key: value for key, value in event["headers"].items() if key.lower() != "content-type"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        event["headers"] = headers
        event["multiValueHeaders"] = {key: [value] for key, value in headers.items()}
        return self.call(event)

    def get_file(self, tenant: TenantSpec, name: str) -> RawAnswer:
        return RawAnswer.of(self.raw_call(api_event("get_file", tenant, file_name=name)))

    def delete_file(self, tenant: TenantSpec, name: str) -> Answer:
        return self.send("delete_file", tenant, file_name=name)

    def upload_url(self, tenant: TenantSpec, name: str, request: Any) -> Answer:
        return self.send("upload_url", tenant, file_name=name, body=json.dumps(request))

    def download_url(self, tenant: TenantSpec, name: str) -> Answer:
        return self.send("download_url", tenant, file_name=name)

    def list_files(self, tenant: TenantSpec, limit: int = 2) -> list[dict[str, Any]]:
        """Every file of ``tenant``, following ``next`` through all pages."""
        files: list[dict[str, Any]] = []
        query = {"limit": str(limit)}
        while True:
            answer = self.send("list_files", tenant, query=query)
            assert answer.status == 200, answer
            files.extend(answer.body["files"])
            if answer.body["next"] is None:
                return files
            query = {"limit": str(limit), "next": answer.body["next"]}

    def raw_call(self, event: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        response: dict[str, Any] = tenant_api.lambda_handler(event, LambdaContextStub())  # type: ignore[arg-type]
        return response

    def list_all(self, tenant: TenantSpec, limit: int = 2) -> list[dict[str, Any]]:
        """Every item of ``tenant``, following ``next`` through all pages."""
        items: list[dict[str, Any]] = []
        query = {"limit": str(limit)}
        while True:
            answer = self.list_page(tenant, **query)
            assert answer.status == 200, answer
            items.extend(answer.body["items"])
            if answer.body["next"] is None:
                return items
            query = {"limit": str(limit), "next": answer.body["next"]}


def create_data_table(name: str, client: Any) -> None:
    """A data table with the program's key schema (partition tenant id, sort key sk)."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": DATA_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": DATA_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": DATA_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": DATA_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def create_placement_table(client: Any) -> None:
    """The placement table with the program's key schema (partition tenant id)."""
    client.create_table(
        TableName=NAMING.placement_table,
        KeySchema=[{"AttributeName": PLACEMENT_PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": PLACEMENT_PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def create_bucket(name: str, client: Any) -> None:
    """A versioned bucket, as the program declares it (the protections are tested on the program)."""
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def bucket_keys(name: str, client: Any) -> list[str]:
    """Every object key of a bucket (the test looks with full rights)."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys.extend(entry["Key"] for entry in page.get("Contents", []))
    return keys


def table_contents(name: str, client: Any) -> list[dict[str, Any]]:
    """Every raw item of a table (the test looks with full rights; the handler never scans)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def serialize_dynamodb_calls(lock: threading.Lock, *sessions: Any) -> None:
    """Every DynamoDB call made through ``sessions`` holds ``lock`` from send to answer."""

    def acquire(**_: Any) -> None:
        lock.acquire()

    def release(**_: Any) -> None:
        lock.release()

    for session in sessions:
        session.events.register("before-call.dynamodb", acquire)
        session.events.register("after-call.dynamodb", release)
        session.events.register("after-call-error.dynamodb", release)


def set_aws_environment(setenv: Any) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        Env.TENANT_DATA_ROLE_ARN: DATA_ROLE_ARN,
        Env.PLACEMENT_TABLE: NAMING.placement_table,
        Env.METRICS_NAMESPACE: "TenantTiersTest",
        Env.SERVICE_NAME: "tenant-api",
    }.items():
        setenv(name, value)


def start_tenant_api(session: Any = None) -> TenantApi:
    """Tables for ACME, ACME_CORP (pooled) and GLOBEX (silo), the placement table (no items: every tenant
    lives where its registry item says) and a fresh client cache; moto must be active.

    The caller installs ``api.clients`` as ``tenant_api.data_clients`` (and restores the old one).
    """
    session = session or SHARED_SESSION
    admin = session.client("dynamodb")
    # Every tenant's table, files tenants' too: an upload URL records its window in the tenant's table.
    tenants = (ACME, ACME_CORP, GLOBEX, *FILE_TENANTS)
    for table in sorted({tenant.table for tenant in tenants}):
        create_data_table(table, admin)
    create_placement_table(admin)
    s3 = session.client("s3")
    for bucket in sorted({tenant.bucket for tenant in FILE_TENANTS}):
        create_bucket(bucket, s3)
    return TenantApi(
        clients=TenantClients(role_arn=DATA_ROLE_ARN, session=session), session=session, admin=admin
    )


@contextmanager
def running_tenant_api(monkeypatch: pytest.MonkeyPatch, session: Any = None) -> Iterator[TenantApi]:
    """GIVEN the tenant API on moto DynamoDB and STS, with acme, acme-corp (pooled) and globex (silo)."""
    set_aws_environment(monkeypatch.setenv)
    with mock_aws():
        api = start_tenant_api(session)
        monkeypatch.setattr(tenant_api, "data_clients", api.clients)
        yield api
