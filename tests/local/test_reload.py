"""End to end over HTTP: edit the tier file of a running `python -m local up`, `python -m local reload`, and
the change is live; a refused reload changes nothing."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.client import id_token
from local.settings import DUMMY_CREDENTIALS
from tests.local.conftest import StackProcess, call_api, run_local, running_stack

TIERS = textwrap.dedent(
    """\
    tiers:
      roomy:
        isolation: pooled
        throttle: {rate: 100, burst: 100}
        quota: {limit: 100000, period: MONTH}
      tight:
        isolation: pooled
        throttle: {rate: 1, burst: 3}
        quota: {limit: 1000, period: DAY}
      vault:
        isolation: silo
        throttle: {rate: 50, burst: 60}
        quota: {limit: 50000, period: MONTH}
    tenants:
      acme: {tier: roomy, name: Acme}
      globex: {tier: roomy, name: Globex}
      hooli: {tier: vault, name: Hooli}
    """
)


@pytest.fixture
def tiers_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiers.yaml"
    path.write_text(TIERS)
    return path


@pytest.fixture
def stack(tiers_file: Path, tmp_path: Path) -> Iterator[StackProcess]:
    # The authorizer cache is on (the program's default): reload must not leave stale answers behind.
    with running_stack(tiers_file, tmp_path, "--quiet") as running:
        yield running
    assert "Traceback" not in running.output()


def edit(tiers_file: Path, old: str, new: str) -> None:
    text = tiers_file.read_text()
    assert old in text, f"{old!r} is not in the tier file"
    tiers_file.write_text(text.replace(old, new))


def reload(stack: StackProcess, *options: str) -> Any:
    return run_local("reload", "--port", str(stack.port), *options)


def get(path: str, stack: StackProcess) -> Any:
    answer = call_api(stack.port, "GET", path)
    assert answer.status == 200
    return answer.json()


def dynamodb(stack: StackProcess) -> Any:
    described = get("/_local/stack", stack)
    session = boto3.session.Session(region_name=described["region"], **DUMMY_CREDENTIALS)
    return session.client("dynamodb", endpoint_url=described["moto_endpoint"])


def stored_ids(stack: StackProcess, table: str, tenant_id: str) -> list[str]:
    """Item ids of ``tenant_id`` in ``table``, read on the stack's own credentials."""
    rows = dynamodb(stack).query(
        TableName=table,
        KeyConditionExpression="tenant_id = :t",
        ExpressionAttributeValues={":t": {"S": tenant_id}},
    )["Items"]
    return sorted(row["sk"]["S"] for row in rows)


def test_new_suspended_resumed_and_removed_tenants_follow_the_file(stack, tiers_file):
    port = stack.port
    acme = id_token("acme", port)
    globex = id_token("globex", port)
    assert call_api(port, "GET", "/tenant", globex).status == 200

    # WHEN a tenant is added and globex suspended, then the stack reloads
    edit(tiers_file, "  hooli:", "  initech: {tier: roomy, name: Initech}\n  hooli:")
    edit(
        tiers_file,
        "globex: {tier: roomy, name: Globex}",
        "globex: {tier: roomy, name: Globex, suspended: true}",
    )
    reloaded = reload(stack)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "tenant added" in reloaded.stdout
    assert "initech" in reloaded.stdout
    assert "tenant suspended" in reloaded.stdout

    # THEN the new tenant signs in and is served; the suspended one gets 403 with the token it had
    initech = id_token("initech", port)
    assert call_api(port, "GET", "/tenant", initech).json()["tenant_id"] == "initech"
    assert call_api(port, "PUT", "/items/kept", initech, {"v": 1}).status == 201
    assert call_api(port, "GET", "/tenant", globex).status == 403
    assert call_api(port, "GET", "/tenant", id_token("globex", port)).status == 403
    # ...and a tenant the edit did not touch is served as before
    assert call_api(port, "GET", "/tenant", acme).status == 200

    # WHEN globex resumes
    edit(
        tiers_file,
        "globex: {tier: roomy, name: Globex, suspended: true}",
        "globex: {tier: roomy, name: Globex}",
    )
    reloaded = reload(stack)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "tenant resumed" in reloaded.stdout
    # THEN its old and new tokens are served again
    assert call_api(port, "GET", "/tenant", globex).status == 200
    assert call_api(port, "GET", "/tenant", id_token("globex", port)).status == 200

    # WHEN initech is removed from the file
    edit(tiers_file, "  initech: {tier: roomy, name: Initech}\n", "")
    reloaded = reload(stack)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "tenant removed" in reloaded.stdout
    # THEN its key and registry entry are gone (its token is refused, it has no sign-in) but its rows stay
    assert call_api(port, "GET", "/tenant", initech).status == 403
    assert "initech" not in get("/_local/outputs", stack)["tenants"]
    assert run_local("token", "initech", "--port", str(port)).returncode == 1
    described = get("/_local/stack", stack)
    assert stored_ids(stack, described["registry_table"], "initech") == []
    pooled_table = get("/_local/outputs", stack)["tenants"]["acme"]["table"]
    assert stored_ids(stack, pooled_table, "initech") != []

    # WHEN it is added again
    edit(tiers_file, "  hooli:", "  initech: {tier: roomy, name: Initech}\n  hooli:")
    assert reload(stack).returncode == 0
    # THEN it signs in as its demo user again and finds the data it left
    again = id_token("initech", port)
    assert [item["id"] for item in call_api(port, "GET", "/items", again).json()["items"]] == ["kept"]


def test_a_moved_tenant_gets_its_new_tiers_limits_and_keeps_its_data_and_usage(stack, tiers_file):
    port = stack.port
    token = id_token("acme", port)
    assert call_api(port, "PUT", "/items/first", token, {"v": 1}).status == 201
    for _ in range(4):
        assert call_api(port, "GET", "/tenant", token).status == 200
    used_before = _used(stack, "acme")
    assert used_before == 5
    plans_before = get("/_local/outputs", stack)["plans"]
    key_before = get("/_local/outputs", stack)["tenants"]["acme"]["apiKeyId"]

    # WHEN acme moves from roomy (burst 100) to tight (rate 1, burst 3)
    edit(tiers_file, "acme: {tier: roomy", "acme: {tier: tight")
    reloaded = reload(stack)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "tenant moved" in reloaded.stdout
    assert "roomy -> tight" in reloaded.stdout

    # THEN the same token is now served as tight, and a burst past 3 gets 429
    assert call_api(port, "GET", "/tenant", token).json()["tier"] == "tight"
    statuses, started = [], time.monotonic()
    for _ in range(8):
        statuses.append(call_api(port, "GET", "/items", token).status)
    elapsed = time.monotonic() - started
    assert 429 in statuses
    # The bucket held 3 after the first request; at most one more token per second of the burst came back.
    assert statuses.count(200) <= 2 + int(elapsed) + 1
    # ...its data is still there, its key is the same, its usage carried over into the new plan's quota
    assert call_api(port, "GET", "/items/first", token).status in (200, 429)
    outputs = get("/_local/outputs", stack)
    assert outputs["tenants"]["acme"]["apiKeyId"] == key_before
    assert outputs["plans"] == plans_before
    assert _used(stack, "acme") >= used_before + 1
    assert stored_ids(stack, outputs["tenants"]["acme"]["table"], "acme") == ["item#first"]

    # WHEN the tier is renamed (renamed_from) and its burst raised
    edit(
        tiers_file,
        "  tight:\n    isolation: pooled\n    throttle: {rate: 1, burst: 3}",
        "  snug:\n    renamed_from: tight\n    isolation: pooled\n    throttle: {rate: 1, burst: 5}",
    )
    edit(tiers_file, "acme: {tier: tight", "acme: {tier: snug")
    reloaded = reload(stack)
    assert reloaded.returncode == 0, reloaded.stderr
    assert "tier renamed" in reloaded.stdout
    assert "tier limits changed" in reloaded.stdout
    # THEN the plan (and its id) carries over under the new name with the new limits, the key stays
    outputs = get("/_local/outputs", stack)
    assert outputs["plans"]["snug"] == plans_before["tight"]
    assert "tight" not in outputs["plans"]
    assert outputs["tenants"]["acme"]["apiKeyId"] == key_before
    described = call_api(port, "GET", "/tenant", token)
    if described.status == 200:
        assert described.json()["limits"]["throttle"] == {"rate": 1, "burst": 5}
    assert _usage_entry(stack, "acme")["throttle"] == {"rate": 1, "burst": 5}


def test_a_pooled_to_silo_move_creates_the_silo_table_and_a_new_tier_its_plan(stack, tiers_file):
    port = stack.port
    token = id_token("globex", port)
    assert call_api(port, "PUT", "/items/old", token, {"v": 1}).status == 201
    silo_table = "tenant-tiers-local-silo-globex"
    client = dynamodb(stack)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_table(TableName=silo_table)

    # WHEN globex moves to a new silo tier
    edit(
        tiers_file,
        "tenants:",
        "  fort:\n    isolation: silo\n    throttle: {rate: 5, burst: 5}\n"
        "    quota: {limit: 100, period: DAY}\ntenants:",
    )
    edit(tiers_file, "globex: {tier: roomy", "globex: {tier: fort")
    dry = reload(stack, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    # THEN a dry run says what will happen, with the local commands, and changes nothing
    assert f"python -m tiers migrate globex --to silo --local-port {port}" in dry.stdout
    assert "fort" not in get("/_local/outputs", stack)["plans"]

    reloaded = reload(stack)
    assert reloaded.returncode == 0, reloaded.stderr
    # THEN it warns that globex, not pinned first, is now served from its empty silo table
    assert "warning: tenant globex was not pinned before this reload" in reloaded.stdout
    assert f"python -m tiers migrate globex --to silo --local-port {port}" in reloaded.stdout
    # ...the table exists, the tier has a plan, and globex is served from the new table (empty until
    # migrate copies its rows, which stay in the pooled table)
    assert client.describe_table(TableName=silo_table)["Table"]["TableStatus"] == "ACTIVE"
    outputs = get("/_local/outputs", stack)
    assert "fort" in outputs["plans"]
    assert outputs["tenants"]["globex"] == {
        "apiKeyId": outputs["tenants"]["globex"]["apiKeyId"],
        "table": silo_table,
        "tier": "fort",
    }
    tenant = call_api(port, "GET", "/tenant", token).json()
    assert (tenant["tier"], tenant["isolation"]) == ("fort", "silo")
    # ...and it has its silo bucket for files, as the stack describes it
    described = get("/_local/stack", stack)
    bucket = described["tenants"]["globex"]["bucket"]
    assert bucket != described["tenants"]["acme"]["bucket"]
    session = boto3.session.Session(region_name=described["region"], **DUMMY_CREDENTIALS)
    s3 = session.client("s3", endpoint_url=described["moto_endpoint"])
    assert bucket in {entry["Name"] for entry in s3.list_buckets()["Buckets"]}
    assert stored_ids(stack, outputs["tenants"]["acme"]["table"], "globex") == ["item#old"]


def test_refused_reloads_change_nothing(stack, tiers_file):
    port = stack.port
    token = id_token("hooli", port)
    assert call_api(port, "PUT", "/items/precious", token, {"v": 1}).status == 201
    before = (get("/_local/outputs", stack), get("/_local/stack", stack))
    original = tiers_file.read_text()

    # WHEN the file is broken (and also adds a tenant): THEN the validator's messages, exit 1, nothing changed
    tiers_file.write_text(original + "  newco: {tier: nowhere, name: New}\n")
    refused = reload(stack)
    assert refused.returncode == 1
    assert "nowhere" in refused.stderr
    assert "unchanged" in refused.stderr
    assert (get("/_local/outputs", stack), get("/_local/stack", stack)) == before

    # WHEN the silo tenant is removed along with other edits: THEN refused with the exact command
    tiers_file.write_text(
        original.replace("  hooli: {tier: vault, name: Hooli}\n", "").replace(
            "globex: {tier: roomy, name: Globex}", "globex: {tier: roomy, name: Globex, suspended: true}"
        )
    )
    refused = reload(stack)
    assert refused.returncode == 1
    assert f"python -m local reload --port {port} --unprotect hooli" in refused.stderr
    assert (get("/_local/outputs", stack), get("/_local/stack", stack)) == before
    assert call_api(port, "GET", "/items/precious", token).status == 200
    assert call_api(port, "GET", "/tenant", id_token("globex", port)).status == 200

    # WHEN --unprotect names a tenant whose table is not leaving: THEN refused too
    refused = reload(stack, "--unprotect", "hooli", "--unprotect", "acme")
    assert refused.returncode == 1
    assert "--unprotect acme" in refused.stderr
    assert (get("/_local/outputs", stack), get("/_local/stack", stack)) == before

    # WHEN the operator unprotects hooli: THEN the edit applies; hooli's table and rows stay in the emulator
    applied = reload(stack, "--unprotect", "hooli")
    assert applied.returncode == 0, applied.stderr
    assert "hooli" not in get("/_local/outputs", stack)["tenants"]
    assert stored_ids(stack, "tenant-tiers-local-silo-hooli", "hooli") == ["item#precious"]
    assert call_api(port, "GET", "/tenant", token).status == 403

    # WHEN hooli comes back on its silo tier while its old table is still there: THEN refused, as
    # `pulumi up` fails to create a table that exists, with the command that clears the way
    tiers_file.write_text(original)
    refused = reload(stack)
    assert refused.returncode == 1
    assert "exists already" in refused.stderr
    assert "python -m tiers decommission hooli --table tenant-tiers-local-silo-hooli" in refused.stderr


def test_the_reload_route_takes_json_from_this_machine_only(stack):
    # GIVEN a form post (what a web page can send to another origin without asking)
    answer = call_api(stack.port, "POST", "/_local/reload", raw_authorization=None)
    # THEN it is refused before anything is read again
    assert answer.status == 415
    assert json.loads(answer.body)["message"].startswith("POST /_local/reload takes a JSON body")


def _usage_entry(stack: StackProcess, tenant_id: str) -> dict[str, Any]:
    entries = get("/_local/usage", stack)["tenants"]
    return next(entry for entry in entries if entry["tenant_id"] == tenant_id)


def _used(stack: StackProcess, tenant_id: str) -> int:
    return int(_usage_entry(stack, tenant_id)["used"])
