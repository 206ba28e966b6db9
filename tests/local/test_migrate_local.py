"""End to end on the local stack: `python -m tiers migrate --local-port`, the tenant's data served from its
new table through the gateway, and back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import boto3

from local.client import id_token
from local.settings import DUMMY_CREDENTIALS
from tests.local.conftest import REPO, call_api, run_local, running_stack

TIERS = textwrap.dedent(
    """\
    tiers:
      shared:
        isolation: pooled
        throttle: {rate: 100, burst: 100}
        quota: {limit: 100000, period: MONTH}
      vault:
        isolation: silo
        throttle: {rate: 100, burst: 100}
        quota: {limit: 100000, period: MONTH}
    tenants:
      vaulted: {tier: vault, name: Vaulted}
      neighbour: {tier: shared, name: Neighbour}
    """
)


def tiers_process(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m tiers ...` as the operator types it."""
    return subprocess.run(
        [sys.executable, "-m", "tiers", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def migrate_tenant(port: int, tenant_id: str, to: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return tiers_process("migrate", tenant_id, "--to", to, "--local-port", str(port), *extra)


def rows(stack_info: dict[str, Any], table: str, tenant_id: str) -> list[str]:
    dynamodb = boto3.session.Session(region_name=stack_info["region"], **DUMMY_CREDENTIALS).client(
        "dynamodb", endpoint_url=stack_info["moto_endpoint"]
    )
    answer = dynamodb.query(
        TableName=table,
        KeyConditionExpression="tenant_id = :t",
        ExpressionAttributeValues={":t": {"S": tenant_id}},
    )
    return sorted(item["sk"]["S"] for item in answer["Items"])


def files(stack_info: dict[str, Any], bucket: str, tenant_id: str) -> list[str]:
    s3 = boto3.session.Session(region_name=stack_info["region"], **DUMMY_CREDENTIALS).client(
        "s3", endpoint_url=stack_info["moto_endpoint"]
    )
    answer = s3.list_objects_v2(Bucket=bucket, Prefix=f"{tenant_id}/")
    return sorted(str(entry["Key"]) for entry in answer.get("Contents", []))


def test_a_silo_tenant_moves_to_the_pooled_table_and_back_while_served(tmp_path: Path) -> None:
    tiers_file = tmp_path / "tiers.yaml"
    tiers_file.write_text(TIERS)
    with running_stack(tiers_file, tmp_path) as stack:
        port = stack.port
        info = call_api(port, "GET", "/_local/stack").json()
        token = id_token("vaulted", port)
        # GIVEN the silo tenant's items, counter and a file, in its silo table and silo bucket
        for n in range(12):
            assert call_api(port, "PUT", f"/items/doc-{n:02d}", token, {"n": n}).status == 201
        assert call_api(port, "POST", "/counter", token).json()["counter"] == 1
        assert call_api(port, "PUT", "/files/contract.json", token, {"signed": True}).status == 201
        silo, pooled = info["tenants"]["vaulted"]["table"], info["pooled_table"]
        silo_bucket, pooled_bucket = info["tenants"]["vaulted"]["bucket"], info["pooled_bucket"]
        assert len(rows(info, silo, "vaulted")) == 13
        assert files(info, silo_bucket, "vaulted") == ["vaulted/contract.json"]

        # WHEN the operator moves it to the pooled table
        moved = migrate_tenant(port, "vaulted", "pooled", "--drain-seconds", "0")
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "switched" in moved.stdout

        # THEN its data lives in the pooled table only, and the API serves it from there, writes included
        assert len(rows(info, pooled, "vaulted")) == 13
        assert rows(info, silo, "vaulted") == []
        assert call_api(port, "GET", "/items/doc-07", token).json() == {"id": "doc-07", "value": {"n": 7}}
        assert len(call_api(port, "GET", "/items?limit=100", token).json()["items"]) == 12
        assert call_api(port, "POST", "/counter", token).json()["counter"] == 2
        assert call_api(port, "PUT", "/items/after", token, {"moved": True}).status == 201
        assert "item#after" in rows(info, pooled, "vaulted")
        # AND its file moved to the pooled bucket, under its prefix, and is served from there (the data
        # role's policy, enforced locally, lets it reach its prefix of the pooled bucket)
        assert files(info, pooled_bucket, "vaulted") == ["vaulted/contract.json"]
        assert files(info, silo_bucket, "vaulted") == []
        assert call_api(port, "GET", "/files/contract.json", token).json() == {"signed": True}

        # WHEN it runs again THEN nothing to do; WHEN moved back THEN the silo table serves it all again
        again = migrate_tenant(port, "vaulted", "pooled")
        assert again.returncode == 0
        assert "nothing to do" in again.stdout
        back = migrate_tenant(port, "vaulted", "silo", "--drain-seconds", "0")
        assert back.returncode == 0, back.stdout + back.stderr
        assert len(rows(info, silo, "vaulted")) == 14
        assert rows(info, pooled, "vaulted") == []
        assert call_api(port, "GET", "/items/after", token).json() == {
            "id": "after",
            "value": {"moved": True},
        }
        assert files(info, silo_bucket, "vaulted") == ["vaulted/contract.json"]
        assert files(info, pooled_bucket, "vaulted") == []
        assert call_api(port, "GET", "/files/contract.json", token).json() == {"signed": True}
        # AND an upload URL (its window recorded under the data role's own rights) is for the silo bucket
        upload = call_api(port, "POST", "/files/big.bin/upload-url", token, {"size": 10})
        assert upload.status == 200, upload.body
        assert upload.json()["fields"]["key"] == "vaulted/big.bin"
        # AND the neighbour in the pooled table never noticed
        neighbour = id_token("neighbour", port)
        assert call_api(port, "GET", "/items", neighbour).json() == {"items": [], "next": None}
    assert "Traceback" not in stack.output()


def test_the_lifecycle_walk_pooled_to_silo_and_back_with_reload(tmp_path: Path) -> None:
    """The README's walk: pin, edit + reload, migrate; then migrate back, edit + reload, decommission."""
    tiers_file = tmp_path / "tiers.yaml"
    tiers_file.write_text(TIERS)
    with running_stack(tiers_file, tmp_path) as stack:
        port = stack.port
        info = call_api(port, "GET", "/_local/stack").json()
        silo, pooled = info["silo_table_prefix"] + "neighbour", info["pooled_table"]
        token = id_token("neighbour", port)
        # GIVEN a pooled tenant with data
        for n in range(5):
            assert call_api(port, "PUT", f"/items/n{n}", token, {"n": n}).status == 201

        # WHEN the operator starts the upgrade before the tier edit THEN the tenant is pinned (exit 3)
        pinned = migrate_tenant(port, "neighbour", "silo")
        assert pinned.returncode == 3, pinned.stdout + pinned.stderr
        assert "pinned tenant neighbour" in pinned.stdout
        # WHEN the tier file says silo and the stack reloads it (as `pulumi up` would)
        tiers_file.write_text(TIERS.replace("neighbour: {tier: shared", "neighbour: {tier: vault"))
        reloaded = run_local("reload", "--port", str(port))
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        # THEN the new silo table exists but the tenant is still served its data from the pooled table
        assert call_api(port, "GET", "/items/n3", token).json() == {"id": "n3", "value": {"n": 3}}
        assert rows(info, silo, "neighbour") == []
        # WHEN migrate runs again THEN the data moves and is served from the silo table
        moved = migrate_tenant(port, "neighbour", "silo", "--drain-seconds", "0")
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert len(rows(info, silo, "neighbour")) == 5
        assert rows(info, pooled, "neighbour") == []
        assert call_api(port, "PUT", "/items/in-silo", token, {"silo": True}).status == 201
        assert "item#in-silo" in rows(info, silo, "neighbour")

        # WHEN the tenant goes back: migrate first, then the tier edit with the table unprotected
        back = migrate_tenant(port, "neighbour", "pooled", "--drain-seconds", "0")
        assert back.returncode == 0, back.stdout + back.stderr
        tiers_file.write_text(TIERS)
        reloaded = run_local("reload", "--port", str(port), "--unprotect", "neighbour")
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        # THEN everything is served from the pooled table
        assert len(call_api(port, "GET", "/items?limit=100", token).json()["items"]) == 6
        # WHEN the emptied silo table is decommissioned THEN it is gone, the data is untouched
        retired = tiers_process(
            "decommission", "neighbour", "--table", silo, "--delete-table", "--local-port", str(port)
        )
        assert retired.returncode == 0, retired.stdout + retired.stderr
        assert "deleted it" in retired.stdout
        assert len(rows(info, pooled, "neighbour")) == 6
    assert "Traceback" not in stack.output()
