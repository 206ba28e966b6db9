"""IAM policy documents as plain data.

Pure functions of ARNs, so the program renders them from outputs and the tests
evaluate the very same documents against requests of other tenants.
"""

from __future__ import annotations

from typing import Any

from handlers.contract import FILE_KEY_SEPARATOR, TENANT_SESSION_TAG

PolicyDocument = dict[str, Any]

TENANT_TAG_VARIABLE = f"${{aws:PrincipalTag/{TENANT_SESSION_TAG}}}"

# Item-level operations only: no Scan, no PartiQL, no batch calls (a Scan has no
# leading key, so ForAllValues would let it through). Transactions are judged item
# by item with these same actions, so they too stay in the caller's partition.
TENANT_ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
)
# The placement item is read before every request and checked inside every write; only
# `python -m tiers migrate`, on operator credentials, writes it.
TENANT_PLACEMENT_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:ConditionCheckItem",
)


# The object calls the files API makes (HeadObject is authorized as GetObject; presigned URLs carry the
# same two). No version-level actions: a tenant never reads or deletes old versions, so an overwrite or
# a delete stays recoverable by an operator.
TENANT_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
# Only buckets of the signing account: a bucket of the same name in another account (the names are
# predictable) is never written to or read from, presigned URLs included.
_OWN_ACCOUNT_BUCKETS = {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}}


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def lambda_trust_policy() -> PolicyDocument:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def silo_table_arn_pattern(pooled_table_arn: str, silo_table_prefix: str) -> str:
    """The ARN of "the caller's own silo table", built from the pooled table's ARN.

    ``arn:aws:dynamodb:REGION:ACCOUNT:table/POOLED`` becomes
    ``arn:aws:dynamodb:REGION:ACCOUNT:table/<silo prefix>${aws:PrincipalTag/tenant_id}``:
    an exact name once IAM substitutes the session tag, never a wildcard.
    """
    table_arn_base, _, _ = pooled_table_arn.rpartition("/")
    return f"{table_arn_base}/{silo_table_prefix}{TENANT_TAG_VARIABLE}"


def _own_items_only() -> dict[str, Any]:
    return {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [TENANT_TAG_VARIABLE]},
        "Null": {"dynamodb:LeadingKeys": "false"},
    }


def tenant_data_policy(
    pooled_table_arn: str,
    silo_table_prefix: str,
    placement_table_arn: str,
    pooled_bucket: str,
    silo_bucket_prefix: str,
) -> PolicyDocument:
    """A session tagged with a tenant id: its own items, in the pooled table or its own silo table,
    reading (never writing) its own placement item, and its own files, under ``<tenant id>/`` in the
    pooled bucket or in its own silo bucket.

    The trailing slash of the pooled prefix is what keeps ``acme`` out of ``acme-corp/``; listing the
    pooled bucket is allowed only with an ``s3:prefix`` under the same prefix. A silo bucket is named
    exactly (prefix + tag), never with a wildcard.
    """
    own_prefix = f"{TENANT_TAG_VARIABLE}{FILE_KEY_SEPARATOR}"
    silo_bucket = bucket_arn(f"{silo_bucket_prefix}{TENANT_TAG_VARIABLE}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PooledOwnItems",
                "Effect": "Allow",
                "Action": list(TENANT_ITEM_ACTIONS),
                "Resource": pooled_table_arn,
                "Condition": _own_items_only(),
            },
            {
                "Sid": "SiloOwnTable",
                "Effect": "Allow",
                "Action": list(TENANT_ITEM_ACTIONS),
                "Resource": silo_table_arn_pattern(pooled_table_arn, silo_table_prefix),
                "Condition": _own_items_only(),
            },
            {
                "Sid": "OwnPlacementReadOnly",
                "Effect": "Allow",
                "Action": list(TENANT_PLACEMENT_ACTIONS),
                "Resource": placement_table_arn,
                "Condition": _own_items_only(),
            },
            {
                "Sid": "PooledOwnFiles",
                "Effect": "Allow",
                "Action": list(TENANT_OBJECT_ACTIONS),
                "Resource": f"{bucket_arn(pooled_bucket)}/{own_prefix}*",
                "Condition": _OWN_ACCOUNT_BUCKETS,
            },
            {
                "Sid": "PooledListOwnPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn(pooled_bucket),
                "Condition": {"StringLike": {"s3:prefix": f"{own_prefix}*"}, **_OWN_ACCOUNT_BUCKETS},
            },
            {
                "Sid": "SiloOwnBucketFiles",
                "Effect": "Allow",
                "Action": list(TENANT_OBJECT_ACTIONS),
                "Resource": f"{silo_bucket}/*",
                "Condition": _OWN_ACCOUNT_BUCKETS,
            },
            {
                "Sid": "SiloListOwnBucket",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": silo_bucket,
                "Condition": _OWN_ACCOUNT_BUCKETS,
            },
        ],
    }


def tls_only_bucket_policy(bucket: str) -> PolicyDocument:
    """A bucket policy refusing every request that does not come over TLS, whoever signs it."""
    arn = bucket_arn(bucket)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def tenant_data_trust_policy(tenant_api_role_arn: str) -> PolicyDocument:
    """Only the tenant API's role may assume the data role, and only with exactly the tenant session tag."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TenantApiWithTenantTag",
                "Effect": "Allow",
                "Principal": {"AWS": tenant_api_role_arn},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "Null": {f"aws:RequestTag/{TENANT_SESSION_TAG}": "false"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": [TENANT_SESSION_TAG]},
                },
            }
        ],
    }


def tenant_api_policy(tenant_data_role_arn: str) -> PolicyDocument:
    """The tenant API touches no table itself: it may only assume the tagged data role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AssumeTenantDataRole",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Resource": tenant_data_role_arn,
            }
        ],
    }


def authorizer_policy(registry_table_arn: str) -> PolicyDocument:
    """The authorizer reads registry items, one at a time."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadRegistry",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem"],
                "Resource": registry_table_arn,
            }
        ],
    }


def lambda_logs_policy(log_group_arn: str) -> PolicyDocument:
    """A function writes its logs to its own log group only (the group itself is declared, not created)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{log_group_arn}:log-stream:*",
            }
        ],
    }


def api_gateway_trust_policy() -> PolicyDocument:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def api_gateway_logging_policy() -> PolicyDocument:
    """What API Gateway's account-level CloudWatch role needs to write access and execution logs.

    The same actions as the AWS managed policy AmazonAPIGatewayPushToCloudWatchLogs, inline so the
    program needs no partition lookup.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PushToCloudWatchLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:FilterLogEvents",
                ],
                "Resource": "*",
            }
        ],
    }
