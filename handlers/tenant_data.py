"""One tenant's data, reached only through STS credentials tagged with that tenant's id.

Storage layout, the same in the pooled table and in a silo table:

- partition key ``tenant_id`` (``contract.DATA_PARTITION_KEY``): the tenant id;
- sort key ``sk`` (``contract.DATA_SORT_KEY``): ``item#<item id>`` for an item and ``counter`` for the
  tenant's counter (no item sort key can equal it, so the counter never appears among the items);
- ``doc``: the item's JSON document as text, exactly as the client sent it, so every JSON value round-trips
  byte for byte (numbers keep their digits, duplicate keys and key order survive);
- ``count``: the counter's value (a number, set by compare-and-set: see ``TenantTable.increment_counter``).

Which table: the tenant's item in the placement table (``contract.PlacementField``), written only by
``python -m tiers migrate``, else the table of its registry item. Every write is conditional on that
placement (see ``TenantTable``), which is how a move fences the tenant's writes.

Every request names the tenant's own partition key: that is what the data role's IAM policy demands
(``dynamodb:LeadingKeys`` equal to the session tag), so a bug here is refused by AWS rather than served.

boto3 is imported on first use, not at import time: it is most of a cold start, and ``GET /tenant`` and
every 4xx answer never need it.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Protocol

from handlers.contract import (
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    PLACEMENT_PARTITION_KEY,
    PLACEMENT_SERVING,
    TENANT_SESSION_TAG,
    UPLOAD_WINDOW_SORT_KEY,
    UPLOAD_WINDOW_UNTIL_ATTRIBUTE,
    Env,
    PlacementField,
)
from handlers.tenant_files import S3Client, TenantFiles

ITEM_SORT_KEY_PREFIX: Final = "item#"
COUNTER_SORT_KEY: Final = "counter"
DOCUMENT_ATTRIBUTE: Final = "doc"
COUNT_ATTRIBUTE: Final = "count"

# Refresh a tenant's credentials this long before STS says they expire, so no request starts on
# credentials that lapse mid-flight (retries included), and no presigned URL (valid for
# tenant_files.PRESIGNED_URL_SECONDS at most) outlives the credentials that signed it.
CREDENTIAL_REFRESH_MARGIN_SECONDS: Final = 300.0
ASSUMED_ROLE_DURATION_SECONDS: Final = 3600
# The settings a cached client depends on when they come from the environment.
_ENVIRONMENT_SETTINGS: Final = (
    Env.TENANT_DATA_ROLE_ARN,
    Env.PLACEMENT_TABLE,
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
)
# A warm container serves a bounded number of tenants' clients; the least recently used one is dropped.
MAX_CACHED_TENANTS: Final = 512
# Writes retry a few times on their own when the item or the placement changed under them (each attempt
# re-reads the placement); past that the caller gets 503 and retries later.
MAX_WRITE_ATTEMPTS: Final = 10
BACKOFF_BASE_SECONDS: Final = 0.005
# What a fenced write tells the client to wait: a move of a few thousand items takes seconds.
MIGRATION_RETRY_AFTER_SECONDS: Final = 5


class DynamoDBClient(Protocol):
    """The low-level DynamoDB client calls this module makes (boto3 ships no type hints)."""

    def get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    def query(self, **kwargs: Any) -> dict[str, Any]: ...
    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]: ...


class MissingConfigurationError(RuntimeError):
    """The function's environment lacks a setting the deployment must provide."""


class RetryLaterError(RuntimeError):
    """A write that was not made and may succeed if sent again after ``retry_after`` seconds."""

    retry_after: int = 1


class WritesFencedError(RetryLaterError):
    """The tenant's data is being moved to another table: writes wait until the move ends."""

    retry_after = MIGRATION_RETRY_AFTER_SECONDS


class MovedDuringWriteError(RetryLaterError):
    """A file write that a move may have missed: the placement changed while S3 stored it."""

    retry_after = MIGRATION_RETRY_AFTER_SECONDS


class ContendedWriteError(RetryLaterError):
    """The item kept changing under concurrent writes of the same tenant for every attempt."""


@dataclass(frozen=True)
class StoredItem:
    item_id: str
    document: str  # JSON text


@dataclass(frozen=True)
class ItemPage:
    items: tuple[StoredItem, ...]
    # The id of the last item returned when more items may follow, else None.
    resume_after: str | None


@dataclass(frozen=True)
class Placement:
    """Where the tenant's data is served from right now, and the fence every write is conditional on."""

    table: str
    epoch: int | None  # None: no placement item, the tenant lives where its registry item says
    moving: bool  # a move is under way: reads go to ``table``, writes are refused
    bucket: str | None = None  # None: the files live where the registry (authorizer context) says


class _Outcome(Enum):
    DONE = "done"
    PLACEMENT_CHANGED = "placement changed"  # a move started or ended since the placement was read
    ITEM_CONDITION_FAILED = "item condition failed"
    CONFLICT = "conflict"  # another transaction on the same items was in progress


def item_sort_key(item_id: str) -> str:
    return f"{ITEM_SORT_KEY_PREFIX}{item_id}"


@dataclass(frozen=True)
class TenantTable:
    """The tenant's data, on a client holding that tenant's scoped credentials.

    ``registry_table`` is where the registry says the data lives; the tenant's placement item, when it has
    one, overrides it. The placement is read (strongly consistent) on every request rather than cached: a
    cached location could serve reads from a table whose rows a finished move is deleting, and costs a
    failed write and a retry after every move. Every write is a transaction of a ``ConditionCheck`` on the
    placement item (no item, or ``serving`` at the epoch read) and the write itself: once a move has
    fenced the tenant (a new epoch), no write that read the old placement can land anywhere, however long
    it was in flight.
    """

    client: DynamoDBClient
    registry_table: str
    tenant_id: str
    placement_table: str

    def _key(self, sort_key: str) -> dict[str, dict[str, str]]:
        return {DATA_PARTITION_KEY: {"S": self.tenant_id}, DATA_SORT_KEY: {"S": sort_key}}

    def placement(self) -> Placement:
        response = self.client.get_item(
            TableName=self.placement_table,
            Key={PLACEMENT_PARTITION_KEY: {"S": self.tenant_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return Placement(self.registry_table, None, moving=False)
        bucket = item.get(PlacementField.BUCKET)
        return Placement(
            table=str(item[PlacementField.TABLE]["S"]),
            epoch=int(item[PlacementField.EPOCH]["N"]),
            moving=item[PlacementField.STATE]["S"] != PLACEMENT_SERVING,
            bucket=None if bucket is None else str(bucket["S"]),
        )

    def file_write_placement(self) -> Placement:
        """The placement a file write goes by; ``WritesFencedError`` while moving.

        S3 has no write conditional on a DynamoDB item, so a file write checks the placement before it
        and, with ``confirm_file_write``, after it: a write both checks saw unchanged was stored before
        any fence, so the move's copy (which starts after its fence) sees it.
        """
        return self._writable_placement()

    def confirm_file_write(self, before: Placement) -> None:
        """Raise ``MovedDuringWriteError`` when the placement changed since ``before`` (a move began or
        ended while S3 stored the write): the write may be in a bucket no longer served, so the client is
        told to send it again, which is safe (a PUT or DELETE of a file is idempotent)."""
        if self.placement() != before:
            raise MovedDuringWriteError(
                "the tenant's data started or finished moving while this file was written; send it again"
            )

    def open_upload_window(self, until: int) -> Placement:
        """Record, as a fenced write, that S3 may store the tenant's files until ``until`` (Unix time)
        through an upload URL; the placement the URL is to be issued for.

        Once a move has fenced the tenant, this fails like any write (503), so every URL issued for the
        source bucket is on record in the source table, where the move reads how long to wait.
        """
        for attempt in range(MAX_WRITE_ATTEMPTS):
            placement = self._writable_placement()
            update = {
                "TableName": placement.table,
                "Key": self._key(UPLOAD_WINDOW_SORT_KEY),
                "UpdateExpression": "SET #until = :until",
                "ConditionExpression": "attribute_not_exists(#until) OR #until < :until",
                "ExpressionAttributeNames": {"#until": UPLOAD_WINDOW_UNTIL_ATTRIBUTE},
                "ExpressionAttributeValues": {":until": {"N": str(until)}},
            }
            outcome = self._transact(placement, {"Update": update})
            # A failed item condition: a later URL keeps the window open longer already.
            if outcome in (_Outcome.DONE, _Outcome.ITEM_CONDITION_FAILED):
                return placement
            _back_off(attempt, outcome)
        raise ContendedWriteError("the upload window kept changing under concurrent upload URL requests")

    def _writable_placement(self) -> Placement:
        placement = self.placement()
        if placement.moving:
            raise WritesFencedError(
                "the tenant's data is being moved to another table; writes resume when the move ends"
            )
        return placement

    def _fence_check(self, placement: Placement) -> dict[str, Any]:
        check: dict[str, Any] = {
            "TableName": self.placement_table,
            "Key": {PLACEMENT_PARTITION_KEY: {"S": self.tenant_id}},
        }
        if placement.epoch is None:
            check["ConditionExpression"] = "attribute_not_exists(#pk)"
            check["ExpressionAttributeNames"] = {"#pk": PLACEMENT_PARTITION_KEY}
        else:
            check["ConditionExpression"] = "#state = :serving AND #epoch = :epoch"
            check["ExpressionAttributeNames"] = {
                "#state": PlacementField.STATE,
                "#epoch": PlacementField.EPOCH,
            }
            check["ExpressionAttributeValues"] = {
                ":serving": {"S": PLACEMENT_SERVING},
                ":epoch": {"N": str(placement.epoch)},
            }
        return {"ConditionCheck": check}

    def _transact(self, placement: Placement, write: dict[str, Any]) -> _Outcome:
        from botocore.exceptions import ClientError

        try:
            self.client.transact_write_items(TransactItems=[self._fence_check(placement), write])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return _Outcome.PLACEMENT_CHANGED
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                return _Outcome.ITEM_CONDITION_FAILED
            if "TransactionConflict" in reasons:
                return _Outcome.CONFLICT
            raise
        return _Outcome.DONE

    def put(self, item_id: str, document: str) -> bool:
        """Store the item; True when it did not exist before.

        A transaction returns no old values, so the put says what it expects (a new item, or a replaced
        one) as its condition, and flips the expectation when the item says otherwise.
        """
        expect_new = True
        for attempt in range(MAX_WRITE_ATTEMPTS):
            placement = self._writable_placement()
            put = {
                "TableName": placement.table,
                "Item": {**self._key(item_sort_key(item_id)), DOCUMENT_ATTRIBUTE: {"S": document}},
                "ConditionExpression": "attribute_not_exists(#sk)" if expect_new else "attribute_exists(#sk)",
                "ExpressionAttributeNames": {"#sk": DATA_SORT_KEY},
            }
            outcome = self._transact(placement, {"Put": put})
            if outcome is _Outcome.DONE:
                return expect_new
            if outcome is _Outcome.ITEM_CONDITION_FAILED:
                expect_new = not expect_new
                if attempt == 0:
                    continue  # the common replace: no one raced, the first guess was just wrong
            _back_off(attempt, outcome)
        raise ContendedWriteError(f"item {item_id!r} kept changing under concurrent writes")

    def get(self, item_id: str) -> str | None:
        response = self.client.get_item(
            TableName=self.placement().table,
            Key=self._key(item_sort_key(item_id)),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else str(item[DOCUMENT_ATTRIBUTE]["S"])

    def delete(self, item_id: str) -> None:
        for attempt in range(MAX_WRITE_ATTEMPTS):
            placement = self._writable_placement()
            delete = {"TableName": placement.table, "Key": self._key(item_sort_key(item_id))}
            outcome = self._transact(placement, {"Delete": delete})
            if outcome is _Outcome.DONE:
                return
            _back_off(attempt, outcome)
        raise ContendedWriteError(f"item {item_id!r} kept changing under concurrent writes")

    def increment_counter(self) -> int:
        """Add one to the counter and return its new value, exactly, under any concurrency.

        A transaction cannot return the updated value, so this is a compare-and-set: read the counter
        (strongly consistent), then write value + 1 on condition that it still holds the value read, and
        read again when another increment came first.
        """
        for attempt in range(MAX_WRITE_ATTEMPTS):
            placement = self._writable_placement()
            key = self._key(COUNTER_SORT_KEY)
            response = self.client.get_item(TableName=placement.table, Key=key, ConsistentRead=True)
            current = response.get("Item")
            value = 0 if current is None else int(current[COUNT_ATTRIBUTE]["N"])
            update: dict[str, Any] = {
                "TableName": placement.table,
                "Key": key,
                "UpdateExpression": "SET #count = :next",
                "ExpressionAttributeNames": {"#count": COUNT_ATTRIBUTE},
                "ExpressionAttributeValues": {":next": {"N": str(value + 1)}},
            }
            if current is None:
                update["ConditionExpression"] = "attribute_not_exists(#count)"
            else:
                update["ConditionExpression"] = "#count = :current"
                update["ExpressionAttributeValues"][":current"] = {"N": str(value)}
            outcome = self._transact(placement, {"Update": update})
            if outcome is _Outcome.DONE:
                return value + 1
            _back_off(attempt, outcome)
        raise ContendedWriteError("the counter kept changing under concurrent increments")

    def list_items(self, limit: int, after: str | None, max_document_bytes: int) -> ItemPage:
        """Up to ``limit`` items in id order, starting after the item id ``after``.

        Stops early once the documents reach ``max_document_bytes`` (a Lambda response is capped at
        6 MB; 100 items of 64 KB would not fit), always returning at least one item when any is left.
        """
        table = self.placement().table
        items: list[StoredItem] = []
        document_bytes = 0
        start_key = None if after is None else self._key(item_sort_key(after))
        while True:
            query: dict[str, Any] = {
                "TableName": table,
                "KeyConditionExpression": "#pk = :tenant AND begins_with(#sk, :items)",
                "ExpressionAttributeNames": {"#pk": DATA_PARTITION_KEY, "#sk": DATA_SORT_KEY},
                "ExpressionAttributeValues": {
                    ":tenant": {"S": self.tenant_id},
                    ":items": {"S": ITEM_SORT_KEY_PREFIX},
                },
                "Limit": limit - len(items),
                "ConsistentRead": True,
            }
            if start_key is not None:
                query["ExclusiveStartKey"] = start_key
            response = self.client.query(**query)
            for raw in response.get("Items", []):
                document = str(raw[DOCUMENT_ATTRIBUTE]["S"])
                document_bytes += len(document.encode())
                if items and document_bytes > max_document_bytes:
                    return ItemPage(tuple(items), items[-1].item_id)
                sort_key = str(raw[DATA_SORT_KEY]["S"])
                items.append(StoredItem(sort_key.removeprefix(ITEM_SORT_KEY_PREFIX), document))
            start_key = response.get("LastEvaluatedKey")
            if start_key is None:
                return ItemPage(tuple(items), None)
            if len(items) == limit:
                return ItemPage(tuple(items), items[-1].item_id)


def _back_off(attempt: int, outcome: _Outcome) -> None:
    """Before the next attempt: none after a placement change (re-reading it is the answer), a short
    jittered exponential wait when another write of the same tenant got there first."""
    if outcome in (_Outcome.ITEM_CONDITION_FAILED, _Outcome.CONFLICT):
        time.sleep(random.uniform(0, BACKOFF_BASE_SECONDS * 2**attempt))


@dataclass
class _CachedClient:
    client: DynamoDBClient
    refresh_at: float
    credentials: dict[str, str]
    s3: S3Client | None = None


class TenantClients:
    """DynamoDB clients on STS credentials of the tenant data role, one per tenant, tagged with its id.

    A tenant's client is reused until ``refresh_margin`` seconds before its credentials expire. Safe to
    share between threads: one STS call per tenant at a time, other tenants are not held up by it.

    Without an explicit ``role_arn`` and ``session`` the role and the AWS endpoint come from the
    environment, and a change of either drops every cached client: Lambda never changes them, but the
    local stack may restart moto on another port within one process.
    """

    def __init__(
        self,
        *,
        role_arn: str | None = None,
        placement_table: str | None = None,
        session: Any = None,
        refresh_margin: float = CREDENTIAL_REFRESH_MARGIN_SECONDS,
        max_tenants: int = MAX_CACHED_TENANTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._explicit_role_arn = role_arn
        self._explicit_placement_table = placement_table
        self._placement_table = placement_table
        self._explicit_session = session
        self._environment: tuple[str | None, ...] | None = None
        self._role_arn = role_arn
        self._session = session
        self._refresh_margin = refresh_margin
        self._max_tenants = max_tenants
        self._clock = clock
        self._sts: Any = None
        self._clients: OrderedDict[str, _CachedClient] = OrderedDict()
        self._tenant_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the dicts and the (not thread-safe) session

    def cached_tenants(self) -> list[str]:
        """Tenants holding cached credentials, least recently used first."""
        with self._lock:
            return list(self._clients)

    def table(self, tenant_id: str, registry_table: str) -> TenantTable:
        """The tenant's data; ``registry_table`` is the table its registry item names."""
        client = self.client_for(tenant_id)
        return TenantTable(client, registry_table, tenant_id, self._placement_table_name())

    def files(self, tenant_id: str, bucket: str) -> TenantFiles:
        return TenantFiles(self.s3_client_for(tenant_id), bucket, tenant_id)

    def client_for(self, tenant_id: str) -> DynamoDBClient:
        return self._entry(tenant_id).client

    def s3_client_for(self, tenant_id: str) -> S3Client:
        """An S3 client on the same tagged credentials as the tenant's DynamoDB client (made on first use)."""
        entry = self._entry(tenant_id)
        with self._lock:
            if entry.s3 is None:
                from botocore.config import Config

                entry.s3 = self._boto_session().client(
                    "s3",
                    **entry.credentials,
                    config=Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 3}),
                )
            return entry.s3

    def _entry(self, tenant_id: str) -> _CachedClient:
        self._follow_environment()
        cached = self._fresh(tenant_id)
        if cached is not None:
            return cached
        with self._lock:
            tenant_lock = self._tenant_locks.setdefault(tenant_id, threading.Lock())
        with tenant_lock:
            cached = self._fresh(tenant_id)  # another thread may have refreshed it meanwhile
            if cached is not None:
                return cached
            entry = self._assume(tenant_id)
            with self._lock:
                self._clients[tenant_id] = entry
                self._clients.move_to_end(tenant_id)
                while len(self._clients) > self._max_tenants:
                    evicted, _ = self._clients.popitem(last=False)
                    self._tenant_locks.pop(evicted, None)
            return entry

    def _follow_environment(self) -> None:
        environment = tuple(os.environ.get(name) for name in _ENVIRONMENT_SETTINGS)
        with self._lock:
            if environment == self._environment:
                return
            self._environment = environment
            self._clients.clear()
            self._tenant_locks.clear()
            self._sts = None
            self._role_arn = self._explicit_role_arn
            self._placement_table = self._explicit_placement_table
            self._session = self._explicit_session

    def _fresh(self, tenant_id: str) -> _CachedClient | None:
        with self._lock:
            entry = self._clients.get(tenant_id)
            if entry is None or self._clock() >= entry.refresh_at:
                return None
            self._clients.move_to_end(tenant_id)
            return entry

    def _assume(self, tenant_id: str) -> _CachedClient:
        sts = self._sts_client()
        response = sts.assume_role(
            RoleArn=self._data_role_arn(),
            RoleSessionName=f"tenant-{tenant_id}",
            Tags=[{"Key": TENANT_SESSION_TAG, "Value": tenant_id}],
            DurationSeconds=ASSUMED_ROLE_DURATION_SECONDS,
        )
        credentials = response["Credentials"]
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        from botocore.config import Config

        with self._lock:
            client = self._boto_session().client(
                "dynamodb", **keys, config=Config(retries={"mode": "standard", "max_attempts": 3})
            )
        refresh_at = credentials["Expiration"].timestamp() - self._refresh_margin
        return _CachedClient(client, refresh_at, keys)

    def _sts_client(self) -> Any:
        with self._lock:
            if self._sts is None:
                self._sts = self._boto_session().client("sts")
            return self._sts

    def _boto_session(self) -> Any:
        # Called with self._lock held.
        if self._session is None:
            import boto3

            self._session = boto3.session.Session()
        return self._session

    def _placement_table_name(self) -> str:
        with self._lock:
            if self._placement_table is None:
                name = os.environ.get(Env.PLACEMENT_TABLE, "")
                if not name:
                    raise MissingConfigurationError(
                        f"environment variable {Env.PLACEMENT_TABLE} is not set: the deployment must pass "
                        "the placement table's name to the tenant API function"
                    )
                self._placement_table = name
            return self._placement_table

    def _data_role_arn(self) -> str:
        if self._role_arn is None:
            role_arn = os.environ.get(Env.TENANT_DATA_ROLE_ARN, "")
            if not role_arn:
                raise MissingConfigurationError(
                    f"environment variable {Env.TENANT_DATA_ROLE_ARN} is not set: the deployment must pass "
                    "the tenant data role's ARN to the tenant API function"
                )
            self._role_arn = role_arn
        return self._role_arn
