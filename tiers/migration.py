"""`python -m tiers migrate TENANT --to silo|pooled`: move a tenant's data without losing a write.

The tenant's placement item (``handlers.contract.PlacementField``) is the only state, and every step is
one conditional write of it, so a run killed at any point (kill -9) is finished by running it again:

1. **fence**: state ``moving``, a new epoch, source and target recorded. Every data write of the tenant
   API is a transaction conditional on (state ``serving``, the epoch it read): from this write on, no
   write can land anywhere, even one already in flight; they get 503 with Retry-After. Reads are still
   served from the source.
2. **copy**: every row of the tenant (items and the counter) from source to target, then remove rows
   in the target that the source lacks (the target is not served, so they are no one's live data).
3. **verify**: row count and a SHA-256 over every row, on both sides; a mismatch stops here, fenced,
   and the next run copies again.
4. **switch**: state ``serving`` at the target, a new epoch (writes resume, on the target); the source is
   recorded as ``cleanup`` (or as ``kept`` with ``--keep-source``).
5. **clean up**: after the tenant API's timeout (requests that read the old placement finish reading),
   delete the tenant's rows in the source, then drop ``cleanup``.

A tenant without a placement item lives where its registry item says. If the target table does not
exist yet (pooled → silo before `pulumi up` created it), the command only **pins** the tenant: it writes
its placement item at the current table, so the `pulumi up` that points the registry at the new silo
table moves nothing, and says to run it again after `pulumi up`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from blueprint.defaults import TENANT_API_TIMEOUT_SECONDS
from handlers.contract import (
    DATA_SORT_KEY,
    PLACEMENT_MOVING,
    PLACEMENT_PARTITION_KEY,
    PLACEMENT_SERVING,
    PlacementField,
)
from tiers.datastore import (
    PlacementRecord,
    RunningSummary,
    StackTables,
    Summary,
    TenantObjects,
    TenantRows,
    placement_record,
    registry_entry,
    summarize_objects,
)
from tiers.model import Isolation

PROGRESS_EVERY_ROWS: Final = 1000
DEFAULT_DRAIN_SECONDS: Final = TENANT_API_TIMEOUT_SECONDS
# An upload S3 began to receive before its URL expired may still be arriving after: the files are copied
# this long after the last upload URL issued before the fence expired.
DEFAULT_UPLOAD_GRACE_SECONDS: Final = 60.0

Say = Callable[[str], None]


class MigrationError(Exception):
    """The move cannot go on; the message says why, what state the tenant is in and what to do."""


class MigrationOutcome(Enum):
    MOVED = "moved"
    NOTHING_TO_DO = "nothing to do"
    PINNED = "pinned"  # the target table does not exist yet; run again after `pulumi up`


@dataclass(frozen=True)
class MigrationOptions:
    keep_source: bool = False
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    upload_grace_seconds: float = DEFAULT_UPLOAD_GRACE_SECONDS


def migrate_command(tenant_id: str, isolation: Isolation) -> str:
    """The command line an operator types to run (or resume) this move."""
    return f"python -m tiers migrate {tenant_id} --to {isolation.value}"


def migrate(
    tables: StackTables,
    tenant_id: str,
    to: Isolation,
    options: MigrationOptions = MigrationOptions(),
    say: Say = print,
) -> MigrationOutcome:
    """Move (or finish moving) ``tenant_id``'s data to its ``to`` table; see the module docstring."""
    move = _Move(tables, tenant_id, to, options, say)
    return move.run()


@dataclass
class _Move:
    tables: StackTables
    tenant_id: str
    to: Isolation
    options: MigrationOptions
    say: Say

    @property
    def rows(self) -> TenantRows:
        return TenantRows(self.tables.client, self.tenant_id)

    @property
    def files(self) -> TenantObjects:
        return TenantObjects(self.tables.s3, self.tenant_id)

    def bucket_for(self, table: str) -> str:
        return self.tables.bucket_for(self.tenant_id, table)

    def run(self) -> MigrationOutcome:
        target = self.tables.table_for(self.tenant_id, self.to)
        placement = placement_record(self.tables, self.tenant_id)
        if placement is not None and placement.moving:
            if placement.target != target:
                other = self.tables.isolation_of(placement.target or "")
                raise MigrationError(
                    f"tenant {self.tenant_id} is in the middle of a move from {placement.source} to "
                    f"{placement.target} (an earlier run stopped; its writes are fenced): finish it first "
                    f"with `{migrate_command(self.tenant_id, other)}`"
                )
            self.say(
                f"resuming the move of {self.tenant_id} from {placement.source} to {placement.target} "
                f"(writes fenced since an earlier run, epoch {placement.epoch})"
            )
            self._copy_verify_switch(placement)
            return MigrationOutcome.MOVED
        if placement is not None and placement.cleanup is not None:
            self._clean_up(placement.cleanup)
            placement = placement_record(self.tables, self.tenant_id)

        registry = registry_entry(self.tables, self.tenant_id)
        if registry is None:
            raise MigrationError(
                f"tenant {self.tenant_id} is not in the registry table {self.tables.registry_table} of "
                f"{self.tables.where}: only deployed tenants are migrated (add it to the tier file and "
                f"`pulumi up`); a removed tenant's data leaves with `python -m tiers decommission "
                f"{self.tenant_id}`"
            )
        location = registry.table if placement is None else placement.table
        if location == target:
            self.say(f"nothing to do: tenant {self.tenant_id} is already served from {target}.")
            self._warn_about_rows_left_elsewhere(placement, target)
            return MigrationOutcome.NOTHING_TO_DO
        if not self.tables.table_exists(target):
            return self._pin(placement, location, target)
        if self.rows.has_rows(target) and (placement is None or placement.kept != target):
            raise MigrationError(
                f"table {target} already holds rows of tenant {self.tenant_id} that are not served (the "
                f"tenant is served from {location}); nothing was changed. Export and remove them first "
                f"with `python -m tiers decommission {self.tenant_id} --table {target}`, then run this "
                "command again"
            )
        target_bucket = self.bucket_for(target)
        if self.files.listing(target_bucket) and (placement is None or placement.kept != target):
            raise MigrationError(
                f"bucket {target_bucket} already holds files of tenant {self.tenant_id} under "
                f"{self.files.prefix} that are not served (the tenant is served from {location}); nothing "
                f"was changed. Move them elsewhere or remove them (`aws s3 rm --recursive "
                f"s3://{target_bucket}/{self.files.prefix}`: the bucket is versioned, earlier versions "
                "stay), then run this command again"
            )
        fenced = self._fence(placement, location, target)
        self._copy_verify_switch(fenced)
        return MigrationOutcome.MOVED

    # -- steps ---------------------------------------------------------------------------------------------

    def _pin(self, placement: PlacementRecord | None, location: str, target: str) -> MigrationOutcome:
        if placement is None:
            self.tables.client.put_item(
                TableName=self.tables.placement_table,
                Item={
                    PlacementField.TENANT_ID: {"S": self.tenant_id},
                    PlacementField.TABLE: {"S": location},
                    PlacementField.STATE: {"S": PLACEMENT_SERVING},
                    PlacementField.EPOCH: {"N": "1"},
                    PlacementField.BUCKET: {"S": self.bucket_for(location)},
                },
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": PLACEMENT_PARTITION_KEY},
            )
            pinned = f"pinned tenant {self.tenant_id} to {location}: "
        else:
            pinned = f"tenant {self.tenant_id} stays pinned to {location}: "
        self.say(
            f"{pinned}the target table {target} does not exist yet, so nothing was moved. The tenant keeps "
            f"being served from {location}, also after `pulumi up` points its registry entry at {target}. "
            f"Next: set its tier to a {self.to.value} tier in the tier file, run `pulumi up` (it creates "
            f"{target}; on the local stack, `python -m local reload`), then run "
            f"`{migrate_command(self.tenant_id, self.to)}` again."
        )
        return MigrationOutcome.PINNED

    def _fence(self, placement: PlacementRecord | None, source: str, target: str) -> PlacementRecord:
        epoch = 1 if placement is None else placement.epoch + 1
        moving = {
            PlacementField.TABLE: {"S": source},
            PlacementField.STATE: {"S": PLACEMENT_MOVING},
            PlacementField.EPOCH: {"N": str(epoch)},
            PlacementField.SOURCE: {"S": source},
            PlacementField.TARGET: {"S": target},
            PlacementField.BUCKET: {"S": self.bucket_for(source)},
        }
        if placement is None:
            self._write_placement(
                Item={PlacementField.TENANT_ID: {"S": self.tenant_id}, **moving},
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": PLACEMENT_PARTITION_KEY},
            )
        else:
            self._write_placement(
                Item={
                    PlacementField.TENANT_ID: {"S": self.tenant_id},
                    **moving,
                    **({PlacementField.KEPT: {"S": placement.kept}} if placement.kept else {}),
                },
                ConditionExpression="#epoch = :epoch AND #state = :serving",
                ExpressionAttributeNames={"#epoch": PlacementField.EPOCH, "#state": PlacementField.STATE},
                ExpressionAttributeValues={
                    ":epoch": {"N": str(placement.epoch)},
                    ":serving": {"S": PLACEMENT_SERVING},
                },
            )
        self.say(
            f"fenced the writes of tenant {self.tenant_id} (epoch {epoch}): they get 503 with Retry-After "
            f"until the switch; reads are served from {source}"
        )
        return PlacementRecord(
            table=source,
            state=PLACEMENT_MOVING,
            epoch=epoch,
            source=source,
            target=target,
            kept=None if placement is None else placement.kept,
            bucket=self.bucket_for(source),
        )

    def _copy_verify_switch(self, placement: PlacementRecord) -> None:
        source, target = placement.source, placement.target
        if source is None or target is None:
            raise MigrationError(
                f"the placement item of tenant {self.tenant_id} in {self.tables.placement_table} says "
                "'moving' without a source and target: it was edited by hand; restore it or delete it"
            )
        if not self.tables.table_exists(target):
            raise MigrationError(
                f"the target table {target} of the move of tenant {self.tenant_id} is gone; the tenant "
                f"stays fenced and served (read-only) from {source}: recreate the table (`pulumi up`)"
            )
        # The source is fenced since before this run began: what the copy read is what it holds.
        source_summary = self._copy(source, target)
        target_summary = self.rows.summary(target)
        if source_summary != target_summary:
            raise MigrationError(
                f"verification failed: {source} holds {source_summary.count} rows of {self.tenant_id} "
                f"(sha256 {source_summary.digest[:16]}...), {target} holds {target_summary.count} "
                f"(sha256 {target_summary.digest[:16]}...). The tenant stays fenced and served read-only "
                f"from {source}; run `{migrate_command(self.tenant_id, self.to)}` again to copy again"
            )
        self.say(
            f"copied and verified {source_summary.count:,} rows of {self.tenant_id}: "
            f"sha256 {source_summary.digest[:16]}... on both sides"
        )
        self._wait_for_upload_urls(source)
        self._copy_verify_files(self.bucket_for(source), self.bucket_for(target))
        self._switch(placement, source, target)

    def _wait_for_upload_urls(self, source_table: str) -> None:
        """Wait until no upload URL issued before the fence can store a file in the source bucket.

        The tenant API records each URL's expiry in the source table as a fenced write before it hands the
        URL out, so the record read now (the source is fenced) covers every URL there is.
        """
        until = self.rows.upload_window_end(source_table)
        if until is None:
            return
        wait = until + self.options.upload_grace_seconds - time.time()
        if wait > 0:
            self.say(
                f"waiting {wait:.0f} s for the upload URLs of {self.tenant_id} issued before the fence to "
                f"expire (plus {self.options.upload_grace_seconds:g} s for uploads still arriving) before "
                "copying its files"
            )
            time.sleep(wait)

    def _copy_verify_files(self, source: str, target: str) -> None:
        source_files = self.files.listing(source)
        if source_files and not self.files.bucket_exists(target):
            raise MigrationError(
                f"the target bucket {target} of the move of tenant {self.tenant_id} does not exist; the "
                f"tenant stays fenced and served (read-only) from {source}: create it (`pulumi up`)"
            )
        target_files = {stored.name: stored for stored in self.files.listing(target)}
        copied = 0
        for stored in source_files:
            if target_files.get(stored.name) != stored:
                self.files.copy(source, target, stored.name)
                copied += 1
                if copied % PROGRESS_EVERY_ROWS == 0:
                    self.say(f"  copied {copied:,} files to {target}")
        wanted = {stored.name for stored in source_files}
        strays = [name for name in target_files if name not in wanted]
        if strays:
            self.files.delete(target, strays)
            self.say(f"  removed {len(strays):,} files from {target} that {source} does not hold")
        # The source is fenced and its upload URLs expired: the listing read above is what it holds.
        source_summary, target_summary = summarize_objects(source_files), self.files.summary(target)
        if source_summary != target_summary:
            raise MigrationError(
                f"verification failed: {source} holds {source_summary.count} files of {self.tenant_id}, "
                f"{target} holds {target_summary.count} (or their sizes and ETags differ). The tenant stays "
                f"fenced and served read-only from {source}; run "
                f"`{migrate_command(self.tenant_id, self.to)}` again to copy again"
            )
        self.say(
            f"copied and verified {source_summary.count:,} files of {self.tenant_id} from {source} to "
            f"{target}: sha256 over name, size and ETag {source_summary.digest[:16]}... on both sides"
        )

    def _copy(self, source: str, target: str) -> Summary:
        """Make the target's rows of the tenant equal to the source's; the source's summary."""
        copied = 0
        next_report = PROGRESS_EVERY_ROWS
        source_keys: set[str] = set()
        source_summary = RunningSummary()
        for page in self.rows.pages(source):
            self.rows.put(target, page)
            for item in page:
                source_keys.add(str(item[DATA_SORT_KEY]["S"]))
                source_summary.add(item)
            copied += len(page)
            if copied >= next_report:
                self.say(f"  copied {copied:,} rows to {target}")
                next_report += PROGRESS_EVERY_ROWS
        strays = [key for key in self.rows.sort_keys(target) if key not in source_keys]
        if strays:
            self.rows.delete(target, strays)
            self.say(f"  removed {len(strays):,} rows from {target} that {source} does not hold")
        return source_summary.summary()

    def _switch(self, placement: PlacementRecord, source: str, target: str) -> None:
        left_behind = PlacementField.KEPT if self.options.keep_source else PlacementField.CLEANUP
        self._write_placement(
            Item={
                PlacementField.TENANT_ID: {"S": self.tenant_id},
                PlacementField.TABLE: {"S": target},
                PlacementField.STATE: {"S": PLACEMENT_SERVING},
                PlacementField.EPOCH: {"N": str(placement.epoch + 1)},
                PlacementField.BUCKET: {"S": self.bucket_for(target)},
                left_behind: {"S": source},
            },
            ConditionExpression="#epoch = :epoch AND #state = :moving",
            ExpressionAttributeNames={"#epoch": PlacementField.EPOCH, "#state": PlacementField.STATE},
            ExpressionAttributeValues={
                ":epoch": {"N": str(placement.epoch)},
                ":moving": {"S": PLACEMENT_MOVING},
            },
        )
        self.say(f"switched: tenant {self.tenant_id} is served from {target}; its writes are accepted again")
        if self.options.keep_source:
            self.say(
                f"kept its rows in {source} (--keep-source): a copy as of the switch, no longer served. "
                f"Remove them with `python -m tiers decommission {self.tenant_id} --table {source}`"
            )
            return
        self._clean_up(source)

    def _clean_up(self, old_table: str) -> None:
        """Delete the tenant's rows left in ``old_table`` and its files left in that table's bucket."""
        if self.options.drain_seconds > 0:
            self.say(
                f"waiting {self.options.drain_seconds:g} s for requests that read the old placement to "
                f"finish before deleting the rows of {self.tenant_id} in {old_table}"
            )
            time.sleep(self.options.drain_seconds)

        deleted = self.rows.delete_all(
            old_table, lambda deleted: self.say(f"  deleted {deleted:,} rows from {old_table}")
        )
        old_bucket = self.bucket_for(old_table)
        names = [stored.name for stored in self.files.listing(old_bucket)]
        self.files.delete(old_bucket, names)
        self.say(f"  deleted {len(names):,} files of {self.tenant_id} from {old_bucket}")
        self.tables.client.update_item(
            TableName=self.tables.placement_table,
            Key={PLACEMENT_PARTITION_KEY: {"S": self.tenant_id}},
            UpdateExpression="REMOVE #cleanup",
            ConditionExpression="#cleanup = :old",
            ExpressionAttributeNames={"#cleanup": PlacementField.CLEANUP},
            ExpressionAttributeValues={":old": {"S": old_table}},
        )
        self.say(f"deleted the {deleted:,} remaining rows of {self.tenant_id} in {old_table}: move complete.")

    def _warn_about_rows_left_elsewhere(self, placement: PlacementRecord | None, target: str) -> None:
        other = (
            self.tables.pooled_table if self.to is Isolation.SILO else self.tables.silo_table(self.tenant_id)
        )
        if placement is not None and placement.kept == other:
            return
        if self.tables.table_exists(other) and self.rows.has_rows(other):
            self.say(
                f"note: {other} still holds rows of {self.tenant_id} that are not served (its registry "
                f"entry was moved to {target} without `python -m tiers migrate`). Keep them, or export and "
                f"remove them with `python -m tiers decommission {self.tenant_id} --table {other}`."
            )

    def _write_placement(self, **put: Any) -> None:
        client = self.tables.client
        try:
            client.put_item(TableName=self.tables.placement_table, **put)
        except client.exceptions.ConditionalCheckFailedException as error:
            raise MigrationError(
                f"the placement item of tenant {self.tenant_id} changed while this command ran (another "
                f"`python -m tiers migrate {self.tenant_id}` at the same time?); nothing was lost: run "
                "this command again once the other one has finished"
            ) from error
