"""A stack's tables and buckets in moto for the migrate and decommission tests: registry, placement, pooled
and silo tables, the pooled bucket and globex's silo bucket, tenants' rows seeded in bulk, the tenant API
wired to the same tables and buckets, and a lock that makes each DynamoDB call atomic across threads (as
DynamoDB is; moto's in-process backend is not thread-safe)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from handlers import tenant_api
from handlers.contract import DATA_PARTITION_KEY, DATA_SORT_KEY, REGISTRY_PARTITION_KEY
from handlers.tenant_data import TenantClients
from tests.handlers.tenant_fixtures import (
    BUCKETS,
    DATA_ROLE_ARN,
    NAMING,
    REGION,
    TenantApi,
    create_bucket,
    create_data_table,
    create_placement_table,
    serialize_dynamodb_calls,
    set_aws_environment,
    table_contents,
)
from tiers.datastore import BATCH_SIZE, StackTables
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier
from tiers.registry import registry_item

# acme and acme-corp are pooled (one id a prefix of the other), globex is silo: as in tenant_fixtures.
CATALOG = Catalog(
    tiers={
        "basic": Tier("basic", Isolation.POOLED, Throttle(10, 20), Quota(10000, QuotaPeriod.MONTH)),
        "premium": Tier("premium", Isolation.SILO, Throttle(200, 400), Quota(5_000_000, QuotaPeriod.MONTH)),
    },
    tenants={
        "acme": Tenant("acme", "basic", "Acme"),
        "acme-corp": Tenant("acme-corp", "basic", "Acme Corp"),
        "globex": Tenant("globex", "premium", "Globex"),
    },
)

Row = dict[str, Any]


def register(client: Any, catalog: Catalog, tenant_id: str) -> None:
    """Write ``tenant_id``'s registry item the way the program does."""
    item = registry_item(
        catalog,
        catalog.tenants[tenant_id],
        NAMING,
        buckets=BUCKETS,
        api_key_id=f"id-{tenant_id}",
        api_key_value="v" * 40,
    )
    client.put_item(TableName=NAMING.registry_table, Item=item)


def rows_of(tenant_id: str, count: int, *, counter: int | None = None, tag: str = "") -> list[Row]:
    """``count`` item rows of ``tenant_id`` (varied documents) and, if given, its counter row."""
    rows: list[Row] = [
        {
            DATA_PARTITION_KEY: {"S": tenant_id},
            DATA_SORT_KEY: {"S": f"item#{n:05d}"},
            "doc": {"S": json.dumps({"n": n, "owner": tenant_id, "tag": tag, "pad": "x" * (n % 50)})},
        }
        for n in range(count)
    ]
    if counter is not None:
        rows.append(
            {
                DATA_PARTITION_KEY: {"S": tenant_id},
                DATA_SORT_KEY: {"S": "counter"},
                "count": {"N": str(counter)},
            }
        )
    return rows


def seed(client: Any, table: str, rows: list[Row]) -> None:
    for start in range(0, len(rows), BATCH_SIZE):
        batch = [{"PutRequest": {"Item": row}} for row in rows[start : start + BATCH_SIZE]]
        client.batch_write_item(RequestItems={table: batch})


def partition(client: Any, table: str, tenant_id: str) -> list[Row]:
    """The raw rows of ``tenant_id`` in ``table``, sorted by key (the test looks with full rights)."""
    rows = [row for row in table_contents(table, client) if row[DATA_PARTITION_KEY]["S"] == tenant_id]
    return sorted(rows, key=lambda row: row[DATA_SORT_KEY]["S"])


def placement_of(client: Any, tenant_id: str) -> Any:
    """The raw placement item of ``tenant_id``, or None."""
    response = client.get_item(
        TableName=NAMING.placement_table, Key={"tenant_id": {"S": tenant_id}}, ConsistentRead=True
    )
    return response.get("Item")


def create_stack_tables(client: Any, *, silo_tenants: tuple[str, ...] = ("globex",)) -> None:
    """The program's tables: registry (every tenant of CATALOG), placement, pooled, silo tables."""
    client.create_table(
        TableName=NAMING.registry_table,
        KeySchema=[{"AttributeName": REGISTRY_PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": REGISTRY_PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    create_placement_table(client)
    create_data_table(NAMING.pooled_table, client)
    for tenant_id in silo_tenants:
        create_data_table(NAMING.silo_table(tenant_id), client)
    for tenant_id in CATALOG.tenants:
        register(client, CATALOG, tenant_id)


def stack_tables(client: Any, s3: Any) -> StackTables:
    return StackTables(
        client=client,
        registry_table=NAMING.registry_table,
        placement_table=NAMING.placement_table,
        pooled_table=NAMING.pooled_table,
        silo_table_prefix=NAMING.silo_table_prefix,
        where="moto",
        s3=s3,
        pooled_bucket=BUCKETS.pooled,
        silo_bucket_prefix=BUCKETS.silo_prefix,
    )


@dataclass
class MotoStack:
    """The tables, the operator's view of them, and the tenant API on its own session."""

    admin: Any
    tables: StackTables
    api: TenantApi
    api_session: Any
    operator_session: Any


@contextmanager
def moto_stack(monkeypatch: pytest.MonkeyPatch, *, serialize: bool = False) -> Iterator[MotoStack]:
    """GIVEN the stack's tables in moto with acme and acme-corp pooled, globex silo, and the tenant API."""
    from moto import mock_aws

    set_aws_environment(monkeypatch.setenv)
    with mock_aws():
        operator_session = boto3.session.Session(region_name=REGION)
        api_session = boto3.session.Session(region_name=REGION)
        if serialize:
            serialize_dynamodb_calls(threading.Lock(), operator_session, api_session)
        admin = operator_session.client("dynamodb")
        create_stack_tables(admin)
        s3 = operator_session.client("s3")
        for bucket in (BUCKETS.pooled, BUCKETS.silo("globex")):
            create_bucket(bucket, s3)
        clients = TenantClients(
            role_arn=DATA_ROLE_ARN, placement_table=NAMING.placement_table, session=api_session
        )
        monkeypatch.setattr(tenant_api, "data_clients", clients)
        api = TenantApi(clients=clients, session=api_session, admin=admin)
        yield MotoStack(admin, stack_tables(admin, s3), api, api_session, operator_session)


class Transcript:
    """Collects what the command says; runs a callback when a line starts with a given text."""

    def __init__(self, when: str | None = None, then: Any = None) -> None:
        self.lines: list[str] = []
        self._when, self._then = when, then

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if self._when is not None and line.startswith(self._when):
            self._then()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
