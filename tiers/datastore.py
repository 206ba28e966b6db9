"""The stack's tables as the operator commands (migrate, decommission) reach them, and a tenant's rows.

These commands run on operator credentials, never on the tenant data role: they read and write whole
partitions with ``Query`` and ``BatchWriteItem``, and they are the only writers of placement items.

Where the tables are comes from one of two places:

- AWS: the stack outputs (``pulumi stack output --json``, from a file or piped into ``--stack-outputs -``):
  ``registryTable``, ``placementTable``, ``pooledTable``, ``siloTablePrefix``, ``pooledBucket``,
  ``siloBucketPrefix``; the region from ``--region``
  or the AWS configuration, credentials from the usual AWS chain;
- the local stack: ``--local-port PORT``, whose ``/_local/stack`` names its emulator and tables.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from handlers.contract import (
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    PLACEMENT_PARTITION_KEY,
    PLACEMENT_SERVING,
    REGISTRY_PARTITION_KEY,
    UPLOAD_WINDOW_SORT_KEY,
    UPLOAD_WINDOW_UNTIL_ATTRIBUTE,
    PlacementField,
    RegistryField,
    file_key_prefix,
)
from tiers.local_stack import DUMMY_CREDENTIALS, STACK_PATH, LocalStackUnreachableError, fetch
from tiers.model import Isolation

# DynamoDB's BatchWriteItem takes at most 25 requests.
BATCH_SIZE: Final = 25
# Unprocessed batch items are sent again after a pause that doubles up to this many seconds.
MAX_BATCH_BACKOFF_SECONDS: Final = 2.0
# Rows per Query page: bounds memory and paces progress reports (DynamoDB also stops a page at 1 MB).
PAGE_ROWS: Final = 500
STACK_OUTPUT_KEYS: Final = (
    "registryTable",
    "placementTable",
    "pooledTable",
    "siloTablePrefix",
    "pooledBucket",
    "siloBucketPrefix",
)

Item = dict[str, Any]  # one DynamoDB item in DynamoDB JSON


class DataStoreError(Exception):
    """The stack's tables cannot be reached or are not what they should be; the message says what to do."""


@dataclass(frozen=True)
class StackTables:
    """The tables and buckets of one stack, with DynamoDB and S3 clients on the operator's credentials."""

    client: Any
    registry_table: str
    placement_table: str
    pooled_table: str
    silo_table_prefix: str
    where: str  # "the local stack on port 8080", "the stack outputs" ... for messages
    s3: Any
    pooled_bucket: str
    silo_bucket_prefix: str

    def table_for(self, tenant_id: str, isolation: Isolation) -> str:
        if isolation is Isolation.SILO:
            return self.silo_table(tenant_id)
        return self.pooled_table

    def silo_table(self, tenant_id: str) -> str:
        return f"{self.silo_table_prefix}{tenant_id}"

    def bucket_for(self, tenant_id: str, table: str) -> str:
        """The bucket holding the tenant's files while ``table`` holds its rows: files follow rows."""
        if self.isolation_of(table) is Isolation.POOLED:
            return self.pooled_bucket
        return f"{self.silo_bucket_prefix}{tenant_id}"

    def isolation_of(self, table: str) -> Isolation:
        return Isolation.POOLED if table == self.pooled_table else Isolation.SILO

    def table_exists(self, table: str) -> bool:
        try:
            self.client.describe_table(TableName=table)
        except self.client.exceptions.ResourceNotFoundException:
            return False
        return True


def stack_tables_from_outputs(outputs: object, *, region: str | None, name: str) -> StackTables:
    """The tables named by ``pulumi stack output --json`` (parsed, read from ``name``)."""
    if not isinstance(outputs, dict):
        outputs = {}
    missing = [key for key in STACK_OUTPUT_KEYS if not isinstance(outputs.get(key), str) or not outputs[key]]
    if missing:
        raise DataStoreError(
            f"{name} has no {', '.join(missing)}: pass `pulumi stack output --json` of a stack deployed "
            "with this version of the program (run `pulumi up` to add the outputs)"
        )
    import boto3

    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        raise DataStoreError("no AWS region: pass --region REGION (the stack's aws:region)")
    return StackTables(
        client=session.client("dynamodb"),
        registry_table=outputs["registryTable"],
        placement_table=outputs["placementTable"],
        pooled_table=outputs["pooledTable"],
        silo_table_prefix=outputs["siloTablePrefix"],
        where=f"the stack in {session.region_name}",
        s3=session.client("s3"),
        pooled_bucket=outputs["pooledBucket"],
        silo_bucket_prefix=outputs["siloBucketPrefix"],
    )


def stack_tables_from_local(port: int) -> StackTables:
    """The tables of the local stack serving on ``port``."""
    import boto3

    try:
        stack = fetch(port, STACK_PATH)
    except LocalStackUnreachableError as error:
        raise DataStoreError(str(error)) from None
    keys = (
        "moto_endpoint",
        "region",
        "registry_table",
        "placement_table",
        "pooled_table",
        "silo_table_prefix",
        "pooled_bucket",
        "silo_bucket_prefix",
    )
    if not isinstance(stack, dict) or any(not stack.get(key) for key in keys):
        raise DataStoreError(
            f"what answers on port {port} is not a tenant-tiers local stack of this version; pass its --port"
        )
    session = boto3.session.Session(region_name=stack["region"], **DUMMY_CREDENTIALS)
    return StackTables(
        client=session.client("dynamodb", endpoint_url=stack["moto_endpoint"]),
        registry_table=stack["registry_table"],
        placement_table=stack["placement_table"],
        pooled_table=stack["pooled_table"],
        silo_table_prefix=stack["silo_table_prefix"],
        where=f"the local stack on port {port}",
        s3=session.client("s3", endpoint_url=stack["moto_endpoint"]),
        pooled_bucket=stack["pooled_bucket"],
        silo_bucket_prefix=stack["silo_bucket_prefix"],
    )


# ---------------------------------------------------------------------------------------------------------
# Registry and placement items


@dataclass(frozen=True)
class RegistryEntry:
    table: str
    suspended: bool
    bucket: str | None = None


@dataclass(frozen=True)
class PlacementRecord:
    """A tenant's placement item (see ``handlers.contract.PlacementField``)."""

    table: str
    state: str
    epoch: int
    source: str | None = None
    target: str | None = None
    cleanup: str | None = None
    kept: str | None = None
    bucket: str | None = None

    @property
    def moving(self) -> bool:
        return self.state != PLACEMENT_SERVING


def registry_entry(tables: StackTables, tenant_id: str) -> RegistryEntry | None:
    response = tables.client.get_item(
        TableName=tables.registry_table,
        Key={REGISTRY_PARTITION_KEY: {"S": tenant_id}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    if item is None:
        return None
    suspended = item.get(RegistryField.SUSPENDED, {}).get("BOOL", False)
    bucket = item.get(RegistryField.BUCKET)
    return RegistryEntry(
        table=str(item[RegistryField.TABLE]["S"]),
        suspended=bool(suspended),
        bucket=None if bucket is None else str(bucket["S"]),
    )


def placement_record(tables: StackTables, tenant_id: str) -> PlacementRecord | None:
    response = tables.client.get_item(
        TableName=tables.placement_table,
        Key={PLACEMENT_PARTITION_KEY: {"S": tenant_id}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    if item is None:
        return None

    def text(field: str) -> str | None:
        value = item.get(field)
        return None if value is None else str(value["S"])

    return PlacementRecord(
        table=str(item[PlacementField.TABLE]["S"]),
        state=str(item[PlacementField.STATE]["S"]),
        epoch=int(item[PlacementField.EPOCH]["N"]),
        source=text(PlacementField.SOURCE),
        target=text(PlacementField.TARGET),
        cleanup=text(PlacementField.CLEANUP),
        kept=text(PlacementField.KEPT),
        bucket=text(PlacementField.BUCKET),
    )


# ---------------------------------------------------------------------------------------------------------
# A tenant's rows


@dataclass(frozen=True)
class Summary:
    """What verification compares: how many rows, and a SHA-256 over all of them in key order."""

    count: int
    digest: str


def canonical_line(item: Mapping[str, Any]) -> str:
    """One item as canonical JSON (sorted keys, no spaces): equal items give equal lines."""
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class RunningSummary:
    """A ``Summary`` built one item at a time, in key order."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._count = 0

    def add(self, item: Mapping[str, Any]) -> None:
        self._digest.update(canonical_line(item).encode())
        self._digest.update(b"\n")
        self._count += 1

    def summary(self) -> Summary:
        return Summary(self._count, self._digest.hexdigest())


def summarize(items: Iterable[Mapping[str, Any]]) -> Summary:
    """Count and digest of items given in key order (the order Query returns and exports are written)."""
    running = RunningSummary()
    for item in items:
        running.add(item)
    return running.summary()


@dataclass(frozen=True)
class TenantRows:
    """One tenant's partition in any data table (pooled or silo: same key schema)."""

    client: Any
    tenant_id: str

    def pages(self, table: str, *, keys_only: bool = False) -> Iterator[list[Item]]:
        """Every row of the tenant in ``table``, in key order, a page at a time (strongly consistent)."""
        query: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#pk = :tenant",
            "ExpressionAttributeNames": {"#pk": DATA_PARTITION_KEY},
            "ExpressionAttributeValues": {":tenant": {"S": self.tenant_id}},
            "ConsistentRead": True,
            "Limit": PAGE_ROWS,
        }
        if keys_only:
            query["ProjectionExpression"] = "#pk, #sk"
            query["ExpressionAttributeNames"]["#sk"] = DATA_SORT_KEY
        while True:
            response = self.client.query(**query)
            yield list(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                return
            query["ExclusiveStartKey"] = last

    def rows(self, table: str) -> Iterator[Item]:
        for page in self.pages(table):
            yield from page

    def upload_window_end(self, table: str) -> float | None:
        """When the last upload URL the tenant API issued while ``table`` served the tenant expires."""
        response = self.client.get_item(
            TableName=table,
            Key={DATA_PARTITION_KEY: {"S": self.tenant_id}, DATA_SORT_KEY: {"S": UPLOAD_WINDOW_SORT_KEY}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else float(item[UPLOAD_WINDOW_UNTIL_ATTRIBUTE]["N"])

    def sort_keys(self, table: str) -> list[str]:
        return [str(item[DATA_SORT_KEY]["S"]) for page in self.pages(table, keys_only=True) for item in page]

    def has_rows(self, table: str) -> bool:
        response = self.client.query(
            TableName=table,
            KeyConditionExpression="#pk = :tenant",
            ExpressionAttributeNames={"#pk": DATA_PARTITION_KEY},
            ExpressionAttributeValues={":tenant": {"S": self.tenant_id}},
            ConsistentRead=True,
            Limit=1,
        )
        return bool(response.get("Items"))

    def summary(self, table: str) -> Summary:
        return summarize(self.rows(table))

    def put(self, table: str, items: Sequence[Item]) -> None:
        """Write ``items`` (the tenant's own rows) into ``table``, replacing rows with the same keys."""
        self._batch_write(table, [{"PutRequest": {"Item": item}} for item in items])

    def delete(self, table: str, sort_keys: Sequence[str]) -> None:
        requests = [
            {"DeleteRequest": {"Key": {DATA_PARTITION_KEY: {"S": self.tenant_id}, DATA_SORT_KEY: {"S": key}}}}
            for key in sort_keys
        ]
        self._batch_write(table, requests)

    def delete_all(self, table: str, progress: Callable[[int], None] | None = None) -> int:
        """Delete every row of the tenant in ``table``; returns how many there were."""
        deleted = 0
        while True:
            # Always the first page of what is left: no cursor to go stale under the deletes.
            keys = [str(item[DATA_SORT_KEY]["S"]) for item in next(self.pages(table, keys_only=True))]
            if not keys:
                return deleted
            self.delete(table, keys)
            deleted += len(keys)
            if progress is not None:
                progress(deleted)

    def _batch_write(self, table: str, requests: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_SIZE):
            pending: dict[str, Any] = {table: list(requests[start : start + BATCH_SIZE])}
            pause = 0.05
            while pending:
                response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if pending:
                    time.sleep(pause)
                    pause = min(pause * 2, MAX_BATCH_BACKOFF_SECONDS)


# ---------------------------------------------------------------------------------------------------------
# A tenant's files


# DeleteObjects takes at most 1,000 keys.
DELETE_OBJECTS_BATCH: Final = 1000


@dataclass(frozen=True)
class StoredObject:
    """The current version of one of the tenant's files: its name under the tenant's prefix, size, ETag."""

    name: str
    size: int
    etag: str


@dataclass(frozen=True)
class TenantObjects:
    """One tenant's files (current versions) under ``<tenant id>/`` in any of the stack's buckets.

    Verification compares the count and a SHA-256 over ``name, size, ETag`` of every file in name order.
    The ETag is the MD5 of the content for an object stored in one request with SSE-S3 (the stack's
    buckets; the tenant API and its upload URLs store every file that way), and CopyObject keeps it, in
    S3 and moto alike, so equal digests mean equal contents without reading them back.
    """

    client: Any
    tenant_id: str

    @property
    def prefix(self) -> str:
        return file_key_prefix(self.tenant_id)

    def bucket_exists(self, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise
        return True

    def listing(self, bucket: str) -> list[StoredObject]:
        """The tenant's files in ``bucket`` in name order; none when the bucket does not exist."""
        if not self.bucket_exists(bucket):
            return []
        objects: list[StoredObject] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=self.prefix):
            for entry in page.get("Contents", []):
                name = str(entry["Key"]).removeprefix(self.prefix)
                objects.append(StoredObject(name, int(entry["Size"]), str(entry["ETag"]).strip('"')))
        return sorted(objects, key=lambda stored: stored.name)

    def summary(self, bucket: str) -> Summary:
        return summarize_objects(self.listing(bucket))

    def download(self, bucket: str, name: str, path: Path) -> str:
        """Write the file's current version to ``path`` (fsynced); its content type."""
        response = self.client.get_object(Bucket=bucket, Key=f"{self.prefix}{name}")
        with path.open("wb") as handle:
            shutil.copyfileobj(response["Body"], handle)
            handle.flush()
            os.fsync(handle.fileno())
        return str(response.get("ContentType") or "")

    def copy(self, source: str, target: str, name: str) -> None:
        key = f"{self.prefix}{name}"
        self.client.copy_object(Bucket=target, Key=key, CopySource={"Bucket": source, "Key": key})

    def delete(self, bucket: str, names: Sequence[str]) -> None:
        """Delete the current versions (the stack's buckets are versioned: earlier versions stay)."""
        for start in range(0, len(names), DELETE_OBJECTS_BATCH):
            batch = names[start : start + DELETE_OBJECTS_BATCH]
            self.client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": f"{self.prefix}{name}"} for name in batch], "Quiet": True},
            )


def summarize_objects(objects: Iterable[StoredObject]) -> Summary:
    digest = hashlib.sha256()
    count = 0
    for stored in objects:
        digest.update(f"{stored.name}\t{stored.size}\t{stored.etag}\n".encode())
        count += 1
    return Summary(count, digest.hexdigest())
