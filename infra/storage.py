"""Tables and buckets: the pooled data table and bucket, one silo table and bucket per silo tenant, the
tenant registry, the placement table.

The placement table is declared here but its items are not: `python -m tiers migrate` writes them
(where each moved tenant's data lives right now, and the write fence during a move), so nothing
`pulumi up` does can overwrite a move in progress.

Every table and bucket is protected and retained from its first deploy, so no edit of the tier file can
delete data: removing a silo tenant, or moving it to a pooled tier, fails the update until an operator
unprotects its table and bucket on purpose. A bucket's settings (public access block, encryption,
versioning, TLS-only policy) are protected and retained with it, so a retained bucket keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from blueprint.policies import tls_only_bucket_policy
from handlers.contract import (
    DATA_PARTITION_KEY,
    DATA_SORT_KEY,
    PLACEMENT_PARTITION_KEY,
    REGISTRY_PARTITION_KEY,
)
from tiers.naming import (
    STORAGE_COMPONENT_TYPE,
    BucketNames,
    Naming,
    bucket_setting_resource_name,
    silo_bucket_resource_name,
    silo_table_resource_name,
)


@dataclass(frozen=True)
class StorageArgs:
    naming: Naming
    silo_tenant_ids: Sequence[str]
    buckets: pulumi.Output[BucketNames]
    """The stack's bucket names in the deployment's account and region."""


def _silo_bucket(buckets: pulumi.Output[BucketNames], tenant_id: str) -> pulumi.Output[str]:
    return buckets.apply(lambda names: names.silo(tenant_id))


class Storage(pulumi.ComponentResource):
    pooled_table: aws.dynamodb.Table
    registry_table: aws.dynamodb.Table
    placement_table: aws.dynamodb.Table
    silo_tables: dict[str, aws.dynamodb.Table]
    pooled_bucket: aws.s3.Bucket
    silo_buckets: dict[str, aws.s3.Bucket]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(STORAGE_COMPONENT_TYPE, name, None, opts)
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
                silo_table_resource_name(name, tenant_id),
                naming.silo_table(tenant_id),
                DATA_PARTITION_KEY,
                DATA_SORT_KEY,
            )
            for tenant_id in args.silo_tenant_ids
        }
        self.pooled_bucket = self._bucket(f"{name}-pooled-bucket", args.buckets.apply(lambda b: b.pooled))
        self.silo_buckets = {
            tenant_id: self._bucket(
                silo_bucket_resource_name(name, tenant_id), _silo_bucket(args.buckets, tenant_id)
            )
            for tenant_id in args.silo_tenant_ids
        }
        self.register_outputs(
            {
                "pooled_table": self.pooled_table.name,
                "registry_table": self.registry_table.name,
                "placement_table": self.placement_table.name,
                "pooled_bucket": self.pooled_bucket.bucket,
            }
        )

    def _bucket(self, logical_name: str, physical_name: pulumi.Input[str]) -> aws.s3.Bucket:
        """A private, encrypted, versioned, TLS-only bucket, protected and retained with its settings.

        The settings are applied one after another: S3 may refuse concurrent configuration changes of one
        bucket (OperationAborted, "a conflicting conditional operation is currently in progress").
        """
        kept = pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True)

        def after(resource: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[resource]))

        bucket = aws.s3.Bucket(logical_name, bucket=physical_name, opts=kept)
        public_access = aws.s3.BucketPublicAccessBlock(
            bucket_setting_resource_name(logical_name, "public-access"),
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=kept,
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            bucket_setting_resource_name(logical_name, "encryption"),
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=(
                        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        )
                    ),
                    # A customer-provided key would make a tenant's objects unreadable to the operator.
                    blocked_encryption_types=["SSE-C"],
                )
            ],
            opts=after(public_access),
        )
        versioning = aws.s3.BucketVersioning(
            bucket_setting_resource_name(logical_name, "versioning"),
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=after(encryption),
        )
        aws.s3.BucketPolicy(
            bucket_setting_resource_name(logical_name, "tls-only"),
            bucket=bucket.id,
            policy=bucket.bucket.apply(lambda bucket_name: json.dumps(tls_only_bucket_policy(bucket_name))),
            opts=after(versioning),
        )
        return bucket

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
