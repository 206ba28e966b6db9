"""The data layer's write fence and counter, on their own: placement items written by hand, as the operator's
`python -m tiers migrate` writes them (its own tests are in tests/tiers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from handlers.contract import PLACEMENT_MOVING, PLACEMENT_SERVING, PlacementField
from handlers.tenant_data import ContendedWriteError, TenantTable
from tests.handlers.tenant_fixtures import (
    ACME,
    GLOBEX,
    NAMING,
    REGION,
    TenantApi,
    create_data_table,
    running_tenant_api,
    serialize_dynamodb_calls,
    table_contents,
)


def place(api: TenantApi, tenant_id: str, table: str, state: str, epoch: int) -> None:
    api.admin.put_item(
        TableName=NAMING.placement_table,
        Item={
            PlacementField.TENANT_ID: {"S": tenant_id},
            PlacementField.TABLE: {"S": table},
            PlacementField.STATE: {"S": state},
            PlacementField.EPOCH: {"N": str(epoch)},
        },
    )


def stored(api: TenantApi, table: str, tenant_id: str) -> dict[str, dict[str, Any]]:
    return {
        row["sk"]["S"]: row for row in table_contents(table, api.admin) if row["tenant_id"]["S"] == tenant_id
    }


@pytest.fixture
def session() -> Any:
    return boto3.session.Session(region_name=REGION)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, session: Any) -> Iterator[TenantApi]:
    with running_tenant_api(monkeypatch, session) as running:
        yield running


@pytest.mark.parametrize(
    ("route", "send"),
    [
        ("PUT", lambda api: api.put(ACME, "a", '"new"')),
        ("DELETE", lambda api: api.delete(ACME, "a")),
        ("POST /counter", lambda api: api.count(ACME)),
    ],
)
def test_every_write_of_a_fenced_tenant_is_503_and_changes_nothing(
    api: TenantApi, route: str, send: Any
) -> None:
    # GIVEN acme's item and counter, then its placement set to moving (the fence)
    assert api.put(ACME, "a", '"old"').status == 201
    assert api.count(ACME).status == 200
    before = stored(api, NAMING.pooled_table, "acme")
    place(api, "acme", NAMING.pooled_table, PLACEMENT_MOVING, 2)
    # WHEN it writes THEN 503 with Retry-After and nothing changed
    answer = send(api)
    assert answer.status == 503, route
    assert answer.headers["Retry-After"] == "5"
    assert stored(api, NAMING.pooled_table, "acme") == before
    # AND reads are still served
    assert api.get(ACME, "a").body == {"id": "a", "value": "old"}
    # AND another tenant is not fenced
    assert api.put(GLOBEX, "a", "1").status == 201


def test_writes_and_reads_follow_the_placement_not_the_authorizer_context(api: TenantApi) -> None:
    # GIVEN acme's registry entry (the authorizer context) says pooled, its placement its silo table
    silo = NAMING.silo_table("acme")
    create_data_table(silo, api.admin)
    place(api, "acme", silo, PLACEMENT_SERVING, 3)
    # WHEN acme writes and reads THEN the placement's table is used
    assert api.put(ACME, "x", "1").status == 201
    assert api.count(ACME).body["counter"] == 1
    assert set(stored(api, silo, "acme")) == {"item#x", "counter"}
    assert stored(api, NAMING.pooled_table, "acme") == {}
    assert api.get(ACME, "x").status == 200


def test_a_counter_under_constant_contention_gives_up_with_503(
    api: TenantApi, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN another writer bumps acme's counter between every read and write of this one
    monkeypatch.setattr("handlers.tenant_data.BACKOFF_BASE_SECONDS", 0.0)

    def bump(**_: Any) -> None:
        api.admin.update_item(
            TableName=NAMING.pooled_table,
            Key={"tenant_id": {"S": "acme"}, "sk": {"S": "counter"}},
            UpdateExpression="ADD #count :one",
            ExpressionAttributeNames={"#count": "count"},
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    session.events.register("before-call.dynamodb.TransactWriteItems", bump)
    # WHEN acme increments THEN it is told to retry, not given a wrong value
    answer = api.count(ACME)
    assert answer.status == 503
    assert "concurrent" in answer.body["message"]
    assert answer.headers["Retry-After"] == "1"


def test_the_counter_is_exact_under_concurrent_increments(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN eight threads incrementing acme's counter directly through the data layer (no handler lock),
    # each DynamoDB call atomic as in DynamoDB
    session = boto3.session.Session(region_name=REGION)
    serialize_dynamodb_calls(threading.Lock(), session)
    with running_tenant_api(monkeypatch, session) as api:
        table: TenantTable = api.clients.table("acme", NAMING.pooled_table)
        answers: list[int] = []
        failures: list[BaseException] = []
        lock = threading.Lock()

        def increment(times: int) -> None:
            for _ in range(times):
                try:
                    value = table.increment_counter()
                except ContendedWriteError as error:
                    with lock:
                        failures.append(error)
                    continue
                with lock:
                    answers.append(value)

        threads = [threading.Thread(target=increment, args=(15,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        # THEN each success got its own value, one after the other, and the stored value counts them all
        assert sorted(answers) == list(range(1, len(answers) + 1))
        assert len(answers) + len(failures) == 8 * 15
        assert stored(api, NAMING.pooled_table, "acme")["counter"]["count"]["N"] == str(len(answers))
