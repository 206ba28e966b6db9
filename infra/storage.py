"""Tables: the pooled data table, one silo table per silo tenant, the tenant registry, the placement table.

The placement table is declared here but its items are not: `python -m tiers migrate` writes them
(where each moved tenant's data lives right now, and the write fence during a move), so nothing
`pulumi up` does can overwrite a move in progress.

Every table is protected and retained from its first deploy, so no edit of the tier
file can delete data: removing a silo tenant, or moving it to a pooled tier, fails
the update until an operator unprotects its table on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from handlers.contract import (
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    PLACEMENT_PARTITION_KEY,
    REGISTRY_PARTITION_KEY,
)
from tiers.naming import Naming


@dataclass(frozen=True)
class StorageArgs:
    naming: Naming
    silo_tenant_ids: Sequence[str]


class Storage(pulumi.ComponentResource):
    pooled_table: aws.dynamodb.Table
    registry_table: aws.dynamodb.Table
    placement_table: aws.dynamodb.Table
    silo_tables: dict[str, aws.dynamodb.Table]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tenant-tiers:infra:Storage", name, None, opts)
        naming = args.naming
        self.pooled_table = self._table(
            f"{name}-pooled", naming.pooled_table, DATA_PARTITION_KEY, DATA_SORT_KEY
        )
        self.registry_table = self._table(f"{name}-registry", naming.registry_table, REGISTRY_PARTITION_KEY)
        self.placement_table = self._table(
            f"{name}-placement", naming.placement_table, PLACEMENT_PARTITION_KEY
        )
        self.silo_tables = {
            tenant_id: self._table(
                f"{name}-silo-{tenant_id}", naming.silo_table(tenant_id), DATA_PARTITION_KEY, DATA_SORT_KEY
            )
            for tenant_id in args.silo_tenant_ids
        }
        self.register_outputs(
            {
                "pooled_table": self.pooled_table.name,
                "registry_table": self.registry_table.name,
                "placement_table": self.placement_table.name,
            }
        )

    def _table(
        self, logical_name: str, physical_name: str, hash_key: str, range_key: str | None = None
    ) -> aws.dynamodb.Table:
        attributes = [aws.dynamodb.TableAttributeArgs(name=hash_key, type="S")]
        if range_key is not None:
            attributes.append(aws.dynamodb.TableAttributeArgs(name=range_key, type="S"))
        return aws.dynamodb.Table(
            logical_name,
            name=physical_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=hash_key,
            range_key=range_key,
            attributes=attributes,
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            deletion_protection_enabled=True,
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
