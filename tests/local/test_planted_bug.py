"""A planted bug in the tenant API's data layer, caught by IAM on the local stack, end to end over HTTP.

GIVEN `python -m local up` whose data layer reaches for one victim's data with the caller's own tagged
session (tests/local/faulty_stack.py), the real authorizer, gateway and tenant API otherwise;
WHEN another tenant calls every data route;
THEN the emulator refuses each DynamoDB call with AccessDenied, the tenant API answers it as the bug it
is (500 with a request id, as for any unexpected AWS error; an operator's alarm counts 5xx), the client
sees none of the victim's data, and the victim's data is unchanged.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from handlers.contract import DATA_PARTITION_KEY, REGISTRY_PARTITION_KEY
from local.client import id_token
from local.settings import DUMMY_CREDENTIALS, NAMING, REGION
from tests.local.conftest import StackProcess, call_api, running_stack

TIERS = textwrap.dedent(
    """\
    tiers:
      shared:
        isolation: pooled
        throttle: {rate: 100, burst: 100}
        quota: {limit: 100000, period: MONTH}
      own:
        isolation: silo
        throttle: {rate: 100, burst: 100}
        quota: {limit: 100000, period: MONTH}
    tenants:
      acme: {tier: shared, name: Acme}
      acme-corp: {tier: shared, name: Acme Corp}
      globex: {tier: own, name: Globex}
    """
)
SECRET = {"secret": "only for the victim"}


@dataclass(frozen=True)
class Victim:
    tenant_id: str
    table: str
    seeded_through_api: bool
    """The victim's own requests are correct, so it stores its data through the API; the registry is
    written by provisioning."""


VICTIMS = {
    "neighbour in the pooled table": Victim("acme-corp", NAMING.pooled_table, seeded_through_api=True),
    "silo tenant's own table": Victim("globex", NAMING.silo_table("globex"), seeded_through_api=True),
    "the registry (every tenant's API key)": Victim(
        "globex", NAMING.registry_table, seeded_through_api=False
    ),
}


@pytest.fixture(params=list(VICTIMS), scope="module")
def faulty(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[StackProcess, Victim]]:
    victim = VICTIMS[request.param]
    workdir = tmp_path_factory.mktemp("planted")
    tiers_file = workdir / "tiers.yaml"
    tiers_file.write_text(TIERS)
    launcher = ("-m", "tests.local.faulty_stack", victim.tenant_id, victim.table)
    with running_stack(tiers_file, workdir, launcher=launcher) as stack:
        yield stack, victim


def emulator_table(stack: StackProcess, table: str) -> list[dict[str, Any]]:
    """Every raw item of a table, read with the stack's own credentials (unrestricted, like provisioning)."""
    endpoint = call_api(stack.port, "GET", "/_local/stack").json()["moto_endpoint"]
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, **DUMMY_CREDENTIALS)
    items: list[dict[str, Any]] = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return items


def test_the_planted_bug_meets_access_denied_and_leaks_nothing(faulty: tuple[StackProcess, Victim]) -> None:
    stack, victim = faulty
    if victim.seeded_through_api:
        victim_token = id_token(victim.tenant_id, stack.port)
        assert call_api(stack.port, "PUT", "/items/secret", victim_token, SECRET).status == 201
        assert call_api(stack.port, "POST", "/counter", victim_token).json()["counter"] == 1
    before = emulator_table(stack, victim.table)
    assert before

    # WHEN acme calls every data route, each reaching into the victim's data on acme's own session
    token = id_token("acme", stack.port)
    answers = [
        call_api(stack.port, "GET", "/items/secret", token),
        call_api(stack.port, "GET", "/items", token),
        call_api(stack.port, "PUT", "/items/secret", token, {"overwritten": "by acme"}),
        call_api(stack.port, "DELETE", "/items/secret", token),
        call_api(stack.port, "POST", "/counter", token),
    ]

    # THEN every one is the tenant API's answer to an unexpected AWS error, with nothing of the victim's
    for answer in answers:
        assert answer.status == 500, answer
        body = answer.json()
        assert set(body) == {"message", "request_id"}
        assert body["message"].startswith("internal error: the request was not completed")
    # AND it was IAM that refused: the handler logged DynamoDB's AccessDeniedException for acme's session
    output = stack.output()
    assert output.count("AccessDeniedException") >= len(answers)
    assert f"assumed-role/{NAMING.prefix}-tenant-data/tenant-acme is not authorized" in output
    # AND the victim's data is exactly as it was, and acme wrote nothing anywhere
    assert emulator_table(stack, victim.table) == before
    assert not [
        item for item in emulator_table(stack, NAMING.pooled_table) if item[DATA_PARTITION_KEY]["S"] == "acme"
    ]
    if victim.seeded_through_api:
        victim_token = id_token(victim.tenant_id, stack.port)
        assert call_api(stack.port, "GET", "/items/secret", victim_token).json() == {
            "id": "secret",
            "value": SECRET,
        }
        assert call_api(stack.port, "POST", "/counter", victim_token).json()["counter"] == 2
    else:
        registry = emulator_table(stack, NAMING.registry_table)
        assert {item[REGISTRY_PARTITION_KEY]["S"] for item in registry} == {"acme", "acme-corp", "globex"}
