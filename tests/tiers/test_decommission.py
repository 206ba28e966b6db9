"""`python -m tiers decommission`: export what no request can reach any more, verify the export, remove it.

Also the command line of migrate and decommission: where the tables come from, and errors without
tracebacks.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.contract import REGISTRY_PARTITION_KEY, PlacementField
from tests.handlers.tenant_fixtures import BUCKETS, NAMING, bucket_keys, create_bucket, create_data_table
from tests.tiers.stack_fixtures import MotoStack, moto_stack, partition, placement_of, rows_of, seed
from tiers import cli
from tiers.datastore import TenantObjects
from tiers.decommission import DecommissionError, DecommissionOptions, decommission
from tiers.migration import MigrationOptions, migrate
from tiers.model import Isolation

SILO = NAMING.silo_table("acme")


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStack]:
    with moto_stack(monkeypatch) as running:
        create_data_table(SILO, running.admin)
        yield running


def remove_from_registry(stack: MotoStack, tenant_id: str) -> None:
    """What `pulumi up` does to the registry when a tenant leaves the tier file."""
    stack.admin.delete_item(TableName=NAMING.registry_table, Key={REGISTRY_PARTITION_KEY: {"S": tenant_id}})


def exported(path: Path) -> dict[str, list[dict[str, Any]]]:
    by_table: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "table" in record:
            by_table.setdefault(record["table"], []).append(record["item"])
    return by_table


def test_a_removed_tenant_is_exported_verified_and_removed_everywhere(
    stack: MotoStack, tmp_path: Path
) -> None:
    # GIVEN acme, moved to its silo table with --keep-source (rows in both tables), then removed
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 40, counter=6) + rows_of("acme-corp", 5))
    migrate(stack.tables, "acme", Isolation.SILO, MigrationOptions(keep_source=True, drain_seconds=0), print)
    remove_from_registry(stack, "acme")
    silo_rows, pooled_rows = (
        partition(stack.admin, SILO, "acme"),
        partition(stack.admin, NAMING.pooled_table, "acme"),
    )
    said: list[str] = []
    out = tmp_path / "acme.jsonl"

    # WHEN the operator decommissions acme, asking for the silo table to go too
    result = decommission(stack.tables, "acme", DecommissionOptions(out=out, delete_table=True), said.append)

    # THEN the export holds every row of both tables, as they were
    assert exported(out) == {NAMING.pooled_table: pooled_rows, SILO: silo_rows}
    assert result.removed == {NAMING.pooled_table: 41, SILO: 41}
    # AND the rows, the placement item and the silo table are gone; the neighbour is untouched
    assert partition(stack.admin, NAMING.pooled_table, "acme") == []
    assert len(partition(stack.admin, NAMING.pooled_table, "acme-corp")) == 5
    assert placement_of(stack.admin, "acme") is None
    assert result.deleted_tables == [SILO]
    assert not stack.tables.table_exists(SILO)
    assert any("exported and verified" in line for line in said)


def put_file(stack: MotoStack, bucket: str, tenant_id: str, name: str, content: bytes) -> None:
    stack.operator_session.client("s3").put_object(
        Bucket=bucket, Key=f"{tenant_id}/{name}", Body=content, ContentType="text/plain"
    )


def files_in(stack: MotoStack, bucket: str, tenant_id: str) -> list[str]:
    return [
        key
        for key in bucket_keys(bucket, stack.operator_session.client("s3"))
        if key.startswith(f"{tenant_id}/")
    ]


def test_a_removed_tenants_files_are_exported_beside_its_rows_verified_and_removed(
    stack: MotoStack, tmp_path: Path
) -> None:
    # GIVEN acme's files in the pooled bucket and, kept from a move, in its silo bucket; then acme removed
    create_bucket(BUCKETS.silo("acme"), stack.operator_session.client("s3"))
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 3))
    put_file(stack, BUCKETS.pooled, "acme", "report.txt", b"the pooled report")
    put_file(stack, BUCKETS.pooled, "acme", "empty.txt", b"")
    put_file(stack, BUCKETS.silo("acme"), "acme", "report.txt", b"the kept silo report")
    put_file(stack, BUCKETS.pooled, "acme-corp", "report.txt", b"the neighbour's report")
    remove_from_registry(stack, "acme")
    out = tmp_path / "acme.jsonl"
    said: list[str] = []

    # WHEN the operator decommissions acme
    result = decommission(stack.tables, "acme", DecommissionOptions(out=out), said.append)

    # THEN every file is exported beside the rows, byte for byte, and listed in the export
    exported_dir = tmp_path / "acme.jsonl.files"
    assert (exported_dir / BUCKETS.pooled / "report.txt").read_bytes() == b"the pooled report"
    assert (exported_dir / BUCKETS.pooled / "empty.txt").read_bytes() == b""
    assert (exported_dir / BUCKETS.silo("acme") / "report.txt").read_bytes() == b"the kept silo report"
    listed = [json.loads(line) for line in out.read_text().splitlines() if '"file"' in line]
    assert {(entry["bucket"], entry["file"], entry["size"], entry["content_type"]) for entry in listed} == {
        (BUCKETS.pooled, "report.txt", 17, "text/plain"),
        (BUCKETS.pooled, "empty.txt", 0, "text/plain"),
        (BUCKETS.silo("acme"), "report.txt", 20, "text/plain"),
    }
    assert all((tmp_path / entry["path"]).is_file() for entry in listed)
    # AND the rows are still exported as before
    assert len(exported(out)[NAMING.pooled_table]) == 3
    # AND the files are gone from both buckets, the neighbour's stay
    assert result.removed_files == {BUCKETS.pooled: 2, BUCKETS.silo("acme"): 1}
    assert files_in(stack, BUCKETS.pooled, "acme") == []
    assert files_in(stack, BUCKETS.silo("acme"), "acme") == []
    assert files_in(stack, BUCKETS.pooled, "acme-corp") == ["acme-corp/report.txt"]
    assert any("exported and verified 2 files of acme" in line for line in said)


def test_an_export_that_does_not_read_back_removes_no_file(
    stack: MotoStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a removed tenant's file, and a disk that stores something else than what was written
    put_file(stack, BUCKETS.pooled, "acme", "report.txt", b"the report")
    remove_from_registry(stack, "acme")
    download = TenantObjects.download

    def corrupting_download(self: TenantObjects, bucket: str, name: str, path: Path) -> str:
        content_type = download(self, bucket, name, path)
        path.write_bytes(b"the rep0rt")
        return content_type

    monkeypatch.setattr(TenantObjects, "download", corrupting_download)
    # WHEN the operator decommissions it THEN it stops, naming the file, and the file stays in S3
    with pytest.raises(DecommissionError, match=r"report.txt .* \(size or MD5 differ\): nothing was removed"):
        decommission(stack.tables, "acme", DecommissionOptions(out=tmp_path / "acme.jsonl"), print)
    assert files_in(stack, BUCKETS.pooled, "acme") == ["acme/report.txt"]


def test_the_files_of_a_served_tenant_are_never_decommissioned(stack: MotoStack, tmp_path: Path) -> None:
    # GIVEN acme-corp deployed (pooled, no silo table), its files served from the pooled bucket
    put_file(stack, BUCKETS.pooled, "acme-corp", "live.txt", b"live")
    # WHEN the operator decommissions it THEN there is nothing off duty, and its live file stays
    said: list[str] = []
    decommission(stack.tables, "acme-corp", DecommissionOptions(out=tmp_path / "x.jsonl"), said.append)
    assert said[0].startswith("nothing to decommission")
    assert files_in(stack, BUCKETS.pooled, "acme-corp") == ["acme-corp/live.txt"]
    assert not (tmp_path / "x.jsonl").exists()


def test_a_silo_table_still_declared_by_the_stack_is_emptied_and_the_steps_printed(
    stack: MotoStack, tmp_path: Path
) -> None:
    # GIVEN acme moved from its silo table to the pooled table (its tier file still says silo)
    seed(stack.admin, SILO, rows_of("acme", 10))
    from tests.tiers.stack_fixtures import CATALOG, register
    from tiers.model import Catalog, Tenant

    silo_catalog = Catalog(CATALOG.tiers, {**CATALOG.tenants, "acme": Tenant("acme", "premium", "Acme")})
    register(stack.admin, silo_catalog, "acme")
    migrate(stack.tables, "acme", Isolation.POOLED, MigrationOptions(drain_seconds=0), print)
    said: list[str] = []
    # WHEN it is decommissioned with --delete-table
    result = decommission(stack.tables, "acme", DecommissionOptions(delete_table=True), said.append)
    # THEN the live pooled rows are untouched, the table is kept, and the exact steps are printed
    assert result.export is None
    assert len(partition(stack.admin, NAMING.pooled_table, "acme")) == 10
    assert stack.tables.table_exists(SILO)
    text = "\n".join(said)
    assert "the stack still declares it" in text
    assert "pulumi state unprotect" in text
    assert f"aws dynamodb update-table --table-name {SILO} --no-deletion-protection-enabled" in text
    assert f"aws dynamodb delete-table --table-name {SILO}" in text


def test_the_live_table_is_never_decommissioned(stack: MotoStack, tmp_path: Path) -> None:
    # GIVEN acme deployed and served from the pooled table
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 3))
    # WHEN the operator names its live table THEN it is refused and nothing is removed
    with pytest.raises(DecommissionError, match="serves tenant acme's data now"):
        decommission(stack.tables, "acme", DecommissionOptions(table=NAMING.pooled_table), print)
    assert len(partition(stack.admin, NAMING.pooled_table, "acme")) == 3
    # AND for a deployed pooled tenant without a silo table there is nothing off duty to remove
    seed(stack.admin, NAMING.pooled_table, rows_of("acme-corp", 3))
    said: list[str] = []
    decommission(stack.tables, "acme-corp", DecommissionOptions(out=tmp_path / "x.jsonl"), said.append)
    assert "nothing to decommission" in said[0]
    assert len(partition(stack.admin, NAMING.pooled_table, "acme-corp")) == 3
    assert not (tmp_path / "x.jsonl").exists()


def test_an_existing_export_file_is_never_overwritten(stack: MotoStack, tmp_path: Path) -> None:
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 3))
    remove_from_registry(stack, "acme")
    out = tmp_path / "taken.jsonl"
    out.write_text("precious\n")
    with pytest.raises(DecommissionError, match="exists already"):
        decommission(stack.tables, "acme", DecommissionOptions(out=out), print)
    assert out.read_text() == "precious\n"
    assert len(partition(stack.admin, NAMING.pooled_table, "acme")) == 3


def test_a_move_in_progress_blocks_decommission(stack: MotoStack) -> None:
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 3))
    stack.admin.put_item(
        TableName=NAMING.placement_table,
        Item={
            PlacementField.TENANT_ID: {"S": "acme"},
            PlacementField.TABLE: {"S": NAMING.pooled_table},
            PlacementField.STATE: {"S": "moving"},
            PlacementField.EPOCH: {"N": "1"},
            PlacementField.SOURCE: {"S": NAMING.pooled_table},
            PlacementField.TARGET: {"S": SILO},
        },
    )
    with pytest.raises(DecommissionError, match="migrate acme --to silo"):
        decommission(stack.tables, "acme", DecommissionOptions(), print)


# --- command line ----------------------------------------------------------------------------------------


STACK_OUTPUTS = {
    "registryTable": NAMING.registry_table,
    "placementTable": NAMING.placement_table,
    "pooledTable": NAMING.pooled_table,
    "siloTablePrefix": NAMING.silo_table_prefix,
    "pooledBucket": BUCKETS.pooled,
    "siloBucketPrefix": BUCKETS.silo_prefix,
    "apiUrl": "https://example.execute-api.eu-west-1.amazonaws.com/v1",
}


def test_migrate_reads_the_stack_outputs_from_standard_input(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN `pulumi stack output --json` piped in
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 5))
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(STACK_OUTPUTS)))
    # WHEN migrate runs on it THEN acme moves, and the exit status is 0
    code = cli.main(["migrate", "acme", "--to", "silo", "--stack-outputs", "-", "--drain-seconds", "0"])
    assert code == 0, capsys.readouterr()
    assert len(partition(stack.admin, SILO, "acme")) == 5
    assert "switched" in capsys.readouterr().out


def test_a_pin_exits_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with moto_stack(monkeypatch):
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(STACK_OUTPUTS)))
        code = cli.main(["migrate", "acme", "--to", "silo", "--stack-outputs", "-"])
    assert code == 3
    assert "run `python -m tiers migrate acme --to silo` again" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("not json", "is not JSON"),
        ("", "is empty"),
        (
            json.dumps({"apiUrl": "x"}),
            "has no registryTable, placementTable, pooledTable, siloTablePrefix, pooledBucket, "
            "siloBucketPrefix",
        ),
    ],
)
def test_bad_stack_outputs_are_named(
    stdin: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(["decommission", "acme", "--stack-outputs", "-", "--region", "eu-west-1"])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert "Traceback" not in err


def test_a_missing_outputs_file_and_a_dead_local_port_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate", "acme", "--to", "silo", "--stack-outputs", "/nonexistent/out.json"]) == 1
    assert "/nonexistent/out.json: no such file" in capsys.readouterr().err
    from tests.local.conftest import free_port

    port = free_port()
    assert cli.main(["migrate", "acme", "--to", "pooled", "--local-port", str(port)]) == 1
    assert f"no local stack answers on http://127.0.0.1:{port}" in capsys.readouterr().err


def test_where_the_tables_are_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["migrate", "acme", "--to", "silo"])
    assert exit_info.value.code == 2
    assert "one of the arguments --stack-outputs --local-port is required" in capsys.readouterr().err
