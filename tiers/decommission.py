"""`python -m tiers decommission TENANT`: export a tenant's data that is no longer served, verify, remove it.

The only command that deletes tenant data on purpose (`python -m tiers migrate` deletes only the
source rows and files of a move it has verified). It works on data that no request can reach any more;
a tenant's files go with the table its rows are in (the pooled bucket with the pooled table, its silo
bucket with its silo table):

- a tenant removed from the tier file (no registry entry after `pulumi up`): its rows in the pooled
  table and in its silo table, its files in both buckets, and its placement item;
- a tenant still deployed: only tables (and their buckets) that do not serve it, e.g. the silo table it
  left with `migrate --to pooled`, or data kept with `--keep-source`; ``--table`` names one.

For each such table: every row of the tenant goes to a JSON-lines file (one ``{"table", "item"}`` per
line, the item in DynamoDB JSON, in key order), and every file (current version) to a directory beside
it, ``<export>.files/<bucket>/<name>``, with one ``{"bucket", "file", "size", "etag", "content_type",
"path"}`` line each; the export is read back and its row count and SHA-256 per table, and each file's
size and MD5 (S3's ETag; the size alone for a multipart upload's ETag), compared with the source, and
only then are the rows and files deleted. The buckets are versioned: a deleted file's earlier versions
stay until the bucket's owner removes them. A silo table is left empty; with ``--delete-table`` (and
once the stack no longer declares it) its deletion protection is turned off and it is deleted, otherwise
the exact commands are printed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from handlers.contract import PLACEMENT_PARTITION_KEY, PlacementField
from tiers.datastore import (
    Item,
    StackTables,
    StoredObject,
    Summary,
    TenantObjects,
    TenantRows,
    placement_record,
    registry_entry,
    summarize,
)
from tiers.naming import silo_storage_resources

EXPORT_FORMAT: Final = "tenant-tiers-export/1"

Say = Callable[[str], None]


class DecommissionError(Exception):
    """Nothing (more) was removed; the message says why and what to do."""


@dataclass(frozen=True)
class DecommissionOptions:
    out: Path | None = None  # default: ./<tenant>-export-<UTC time>.jsonl
    table: str | None = None  # only this table
    delete_table: bool = False


@dataclass
class DecommissionResult:
    export: Path | None
    removed: dict[str, int] = field(default_factory=dict)  # table -> rows removed
    removed_files: dict[str, int] = field(default_factory=dict)  # bucket -> files removed
    deleted_tables: list[str] = field(default_factory=list)


def default_export_path(tenant_id: str, now: datetime | None = None) -> Path:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"{tenant_id}-export-{moment}.jsonl")


def decommission(
    tables: StackTables,
    tenant_id: str,
    options: DecommissionOptions = DecommissionOptions(),
    say: Say = print,
) -> DecommissionResult:
    rows = TenantRows(tables.client, tenant_id)
    files = TenantObjects(tables.s3, tenant_id)
    registry = registry_entry(tables, tenant_id)
    placement = placement_record(tables, tenant_id)
    if placement is not None and placement.moving:
        raise DecommissionError(
            f"tenant {tenant_id} is in the middle of a move from {placement.source} to {placement.target}: "
            f"finish it first with `python -m tiers migrate {tenant_id} --to "
            f"{tables.isolation_of(placement.target or '').value}`"
        )
    # Without a registry entry the authorizer denies every request of the tenant: nothing is live.
    live = None if registry is None else placement.table if placement is not None else registry.table
    silo = tables.silo_table(tenant_id)
    if options.table is not None:
        if options.table not in (tables.pooled_table, silo):
            raise DecommissionError(
                f"--table {options.table}: tenant {tenant_id}'s data can only be in {tables.pooled_table} "
                f"or {silo}"
            )
        candidates = [options.table]
    else:
        candidates = [tables.pooled_table, silo]
    if live in candidates:
        if options.table is not None:
            raise DecommissionError(
                f"{live} serves tenant {tenant_id}'s data now: remove the tenant from the tier file and "
                f"`pulumi up` first (or move it away with `python -m tiers migrate`)"
            )
        candidates.remove(live)
    existing = [table for table in candidates if tables.table_exists(table)]
    with_rows = [table for table in existing if rows.has_rows(table)]
    buckets = [tables.bucket_for(tenant_id, table) for table in candidates]
    with_files = {bucket: listing for bucket in buckets if (listing := files.listing(bucket))}
    silo_left = silo in existing and silo != live
    if not with_rows and not with_files and not silo_left:
        where = f"; it is served from {live}" if live else ""
        say(
            f"nothing to decommission: no table or bucket of {tables.where} holds data of {tenant_id} off "
            f"duty{where}."
        )
        if registry is None and placement is not None:
            _forget_placement(tables, tenant_id)
            say(f"removed the placement item of {tenant_id} (it no longer has any data).")
        return DecommissionResult(export=None)

    result = DecommissionResult(export=None)
    if with_rows or with_files:
        out = options.out or default_export_path(tenant_id)
        summaries = _export(rows, with_rows, files, with_files, out)
        _verify_export(out, tenant_id, summaries)
        _verify_exported_files(out, tenant_id, with_files)
        result.export = out
        described = ", ".join(f"{summary.count:,} from {table}" for table, summary in summaries.items())
        if described:
            say(f"exported and verified {described} rows of {tenant_id} to {out} (count, sha256 per table)")
        for bucket, listing in with_files.items():
            say(
                f"exported and verified {len(listing):,} files of {tenant_id} from {bucket} to "
                f"{files_directory(out) / bucket} (size and MD5 of each)"
            )
        for bucket, listing in with_files.items():
            if files.listing(bucket) != listing:
                raise DecommissionError(
                    f"the files of {tenant_id} in {bucket} changed after the export (are they served "
                    f"again?): nothing was removed from {bucket}; run the command again"
                )
            files.delete(bucket, [stored.name for stored in listing])
            result.removed_files[bucket] = len(listing)
            say(
                f"removed {len(listing):,} files of {tenant_id} from {bucket} (their earlier versions stay "
                "in the versioned bucket)"
            )
        for table, summary in summaries.items():
            if rows.summary(table) != summary:
                raise DecommissionError(
                    f"the rows of {tenant_id} in {table} changed after the export (is it served again?): "
                    f"nothing was removed from {table}; run the command again"
                )
            result.removed[table] = rows.delete_all(table)
            say(f"removed {result.removed[table]:,} rows of {tenant_id} from {table}")
    if placement is not None and registry is None:
        _forget_placement(tables, tenant_id)
        say(f"removed the placement item of {tenant_id}.")
    elif placement is not None and placement.kept in result.removed:
        tables.client.update_item(
            TableName=tables.placement_table,
            Key={PLACEMENT_PARTITION_KEY: {"S": tenant_id}},
            UpdateExpression="REMOVE #kept",
            ExpressionAttributeNames={"#kept": PlacementField.KEPT},
        )
    if silo_left:
        _retire_silo_table(
            tables,
            tenant_id,
            silo,
            registry_table=registry.table if registry else None,
            delete=options.delete_table,
            result=result,
            say=say,
        )
    return result


def _forget_placement(tables: StackTables, tenant_id: str) -> None:
    tables.client.delete_item(
        TableName=tables.placement_table, Key={PLACEMENT_PARTITION_KEY: {"S": tenant_id}}
    )


def files_directory(out: Path) -> Path:
    """Where an export's files go: beside the JSON-lines file, ``<name>.files/``."""
    return out.with_name(f"{out.name}.files")


def _export(
    rows: TenantRows,
    tables: list[str],
    files: TenantObjects,
    buckets: dict[str, list[StoredObject]],
    out: Path,
) -> dict[str, Summary]:
    """Write every row of the tenant in ``tables`` to ``out`` (created, never overwritten), and every file
    in ``buckets`` beside it, each listed in ``out``; all fsynced."""
    try:
        handle = out.open("x", encoding="utf-8")
    except FileExistsError as error:
        raise DecommissionError(f"{out} exists already: pass another --out FILE") from error
    except OSError as error:
        raise DecommissionError(f"cannot create {out}: {error.strerror}; pass another --out FILE") from error
    summaries: dict[str, Summary] = {}
    with handle:
        for table in tables:

            def tee(table: str = table) -> Iterator[Item]:
                for item in rows.rows(table):
                    handle.write(json.dumps({"table": table, "item": item}, ensure_ascii=False) + "\n")
                    yield item

            summaries[table] = summarize(tee())
        for bucket, listing in buckets.items():
            directory = files_directory(out) / bucket
            directory.mkdir(parents=True, exist_ok=True)
            for stored in listing:
                path = directory / stored.name
                content_type = files.download(bucket, stored.name, path)
                record = {
                    "bucket": bucket,
                    "file": stored.name,
                    "size": stored.size,
                    "etag": stored.etag,
                    "content_type": content_type,
                    "path": str(path.relative_to(out.parent)),
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return summaries


def _verify_exported_files(out: Path, tenant_id: str, buckets: dict[str, list[StoredObject]]) -> None:
    """Each exported file has the size S3 listed and the MD5 S3 computed when it was stored (its ETag: the
    tenant API and its upload URLs store a file in one request, with SSE-S3)."""
    for bucket, listing in buckets.items():
        for stored in listing:
            path = files_directory(out) / bucket / stored.name
            # A multipart upload's ETag (with a '-') is not the MD5 of the content: the size has to do.
            single_part = "-" not in stored.etag
            if (
                not path.is_file()
                or path.stat().st_size != stored.size
                or (single_part and _md5(path) != stored.etag)
            ):
                raise DecommissionError(
                    f"{path} does not hold file {stored.name} of {tenant_id} as {bucket} does (size or MD5 "
                    "differ): nothing was removed; check the disk and run the command again with another "
                    "--out"
                )


def _md5(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def _verify_export(out: Path, tenant_id: str, expected: dict[str, Summary]) -> None:
    by_table: dict[str, list[Item]] = defaultdict(list)
    with out.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                if "file" in record:
                    continue
                by_table[record["table"]].append(record["item"])
            except (ValueError, KeyError, TypeError) as error:
                raise DecommissionError(
                    f"{out} line {number} does not read back ({error}): nothing was removed; check the "
                    "disk and run the command again with another --out"
                ) from error
    found = {table: summarize(items) for table, items in by_table.items()}
    if found != expected:
        raise DecommissionError(
            f"{out} does not hold what was read from the tables ({found} != {expected}): nothing of "
            f"{tenant_id} was removed; run the command again with another --out"
        )


def _retire_silo_table(
    tables: StackTables,
    tenant_id: str,
    silo: str,
    *,
    registry_table: str | None,
    delete: bool,
    result: DecommissionResult,
    say: Say,
) -> None:
    declared = registry_table == silo
    names = "|".join(name for _, name in silo_storage_resources(tenant_id))
    urns = f"$(pulumi stack --show-urns | grep -oE 'urn:pulumi:[^ ]*::({names})$')"
    steps = []
    if declared:
        steps += [
            f"set tenant {tenant_id}'s tier to a pooled tier in the tier file (or remove the tenant)",
            f"pulumi state unprotect {urns}   # its silo table and bucket, and the bucket's settings",
            "pulumi up    # the table leaves the stack and stays in AWS (retain_on_delete)",
        ]
    steps += [
        f"aws dynamodb update-table --table-name {silo} --no-deletion-protection-enabled",
        f"aws dynamodb delete-table --table-name {silo}",
    ]
    if delete and not declared:
        if TenantRows(tables.client, tenant_id).has_rows(silo):
            raise DecommissionError(f"{silo} is not empty; it was not deleted")
        tables.client.update_table(TableName=silo, DeletionProtectionEnabled=False)
        tables.client.delete_table(TableName=silo)
        result.deleted_tables.append(silo)
        say(f"turned off deletion protection of {silo} and deleted it.")
        return
    reason = (
        "the stack still declares it (the registry entry names it)"
        if declared
        else "--delete-table was not given"
    )
    say(f"{silo} is empty and stays ({reason}). To delete it:")
    for step in steps:
        say(f"  {step}")
