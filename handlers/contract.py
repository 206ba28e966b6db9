"""The contract between the deployed program and the Lambda code.

Everything the infrastructure writes and the handlers read is named here once:
the tenant claim, the registry item shape, the data table keys, the authorizer
context and the environment. The Pulumi program, the local stack and the tests
import these names; the handlers package imports nothing from them, so this
module must stay free of third-party imports.
"""

from __future__ import annotations

import re
from typing import Final

# A tenant id is used verbatim as a DynamoDB partition key, inside DynamoDB
# table names ([a-zA-Z0-9_.-], 3-255), API key and usage plan names, Pulumi
# logical names, IAM policy variables and a Cognito attribute value. The rule
# below is safe in all of them: 1-32 characters, lowercase letters, digits and
# single hyphens, starting with a letter and ending with a letter or digit.
TENANT_ID_PATTERN: Final = r"[a-z](?:-?[a-z0-9])*"
TENANT_ID_MAX_LENGTH: Final = 32
_TENANT_ID_RE: Final = re.compile(TENANT_ID_PATTERN)


def is_valid_tenant_id(value: object) -> bool:
    """True when ``value`` is a string obeying the tenant id rule."""
    return (
        isinstance(value, str)
        and len(value) <= TENANT_ID_MAX_LENGTH
        and _TENANT_ID_RE.fullmatch(value) is not None
    )


# Cognito: the custom attribute (without the ``custom:`` prefix) and the claim
# it becomes in ID tokens.
TENANT_ATTRIBUTE: Final = "tenant_id"
TENANT_CLAIM: Final = f"custom:{TENANT_ATTRIBUTE}"

# STS session tag the tenant API sets when it assumes the tenant data role; the
# role's policy compares dynamodb:LeadingKeys with ${aws:PrincipalTag/<tag>}.
TENANT_SESSION_TAG: Final = "tenant_id"

# Data tables (pooled and silo share one key schema, so IAM's LeadingKeys
# condition applies to both and the tenant API has one code path).
DATA_PARTITION_KEY: Final = "tenant_id"
DATA_SORT_KEY: Final = "sk"
# A row in the tenant's partition, written (under the fence, like any write) before an upload URL is
# handed out: until when S3 may still store a file the tenant API did not see. A move waits that out
# before it copies the tenant's files.
UPLOAD_WINDOW_SORT_KEY: Final = "upload-window"
UPLOAD_WINDOW_UNTIL_ATTRIBUTE: Final = "until"  # N, Unix time the last upload URL issued expires

# Registry table: one item per tenant, keyed by tenant id.
REGISTRY_PARTITION_KEY: Final = "tenant_id"


class RegistryField:
    """Attribute names of a registry item (DynamoDB JSON, types in comments)."""

    TENANT_ID: Final = REGISTRY_PARTITION_KEY  # S
    NAME: Final = "name"  # S, display name
    TIER: Final = "tier"  # S
    ISOLATION: Final = "isolation"  # S: "pooled" | "silo"
    TABLE: Final = "table"  # S, physical table name holding the tenant's data
    BUCKET: Final = "bucket"  # S, S3 bucket holding the tenant's files under "<tenant id>/"
    API_KEY_ID: Final = "api_key_id"  # S
    API_KEY_VALUE: Final = "api_key_value"  # S, secret: read by the authorizer only
    SUSPENDED: Final = "suspended"  # BOOL
    THROTTLE_RATE: Final = "throttle_rate"  # N, requests per second
    THROTTLE_BURST: Final = "throttle_burst"  # N
    QUOTA_LIMIT: Final = "quota_limit"  # N
    QUOTA_PERIOD: Final = "quota_period"  # S: DAY | WEEK | MONTH
    QUOTA_OFFSET: Final = "quota_offset"  # N


# Placement table: where a tenant's data lives right now, written only by `python -m tiers migrate` (never
# by the program, so `pulumi up` cannot overwrite a move in progress). One item per tenant that was ever
# moved; a tenant without one lives in the table its registry item names.
PLACEMENT_PARTITION_KEY: Final = "tenant_id"


class PlacementField:
    """Attribute names of a placement item (DynamoDB JSON, types in comments)."""

    TENANT_ID: Final = PLACEMENT_PARTITION_KEY  # S
    TABLE: Final = "table"  # S, the table serving the tenant's data (reads and writes)
    STATE: Final = "state"  # S: PLACEMENT_SERVING | PLACEMENT_MOVING (writes fenced)
    EPOCH: Final = "epoch"  # N, bumped by every change; every data write is conditional on it
    SOURCE: Final = "source"  # S, while moving: the table copied from (= TABLE)
    TARGET: Final = "target"  # S, while moving: the table copied to
    CLEANUP: Final = "cleanup"  # S, after a move: the old table whose rows are still to be deleted
    KEPT: Final = "kept"  # S, after a move with --keep-source: the old table still holding a copy
    # S, the bucket serving the tenant's files (under ``file_key_prefix``): it follows TABLE (the pooled
    # bucket with the pooled table, the silo bucket with the silo table); absent in an item written before
    # migrate moved files, where the authorizer context's bucket serves.
    BUCKET: Final = "bucket"


PLACEMENT_SERVING: Final = "serving"
PLACEMENT_MOVING: Final = "moving"

# Values of the isolation and quota period fields, in the registry and the authorizer context alike.
ISOLATION_POOLED: Final = "pooled"
ISOLATION_SILO: Final = "silo"
ISOLATIONS: Final = (ISOLATION_POOLED, ISOLATION_SILO)
QUOTA_PERIOD_DAY: Final = "DAY"
QUOTA_PERIOD_WEEK: Final = "WEEK"
QUOTA_PERIOD_MONTH: Final = "MONTH"
QUOTA_PERIODS: Final = (QUOTA_PERIOD_DAY, QUOTA_PERIOD_WEEK, QUOTA_PERIOD_MONTH)


class ContextKey:
    """Keys of the authorizer ``context`` the tenant API reads (all strings)."""

    TENANT_ID: Final = "tenant_id"
    TIER: Final = "tier"
    ISOLATION: Final = "isolation"
    TABLE: Final = "table"
    BUCKET: Final = "bucket"
    THROTTLE_RATE: Final = "throttle_rate"
    THROTTLE_BURST: Final = "throttle_burst"
    QUOTA_LIMIT: Final = "quota_limit"
    QUOTA_PERIOD: Final = "quota_period"
    QUOTA_OFFSET: Final = "quota_offset"


# Files live under "<tenant id>/" in the pooled bucket and in a silo bucket alike (one layout, like the
# tables' key schema): the trailing slash keeps tenant "acme" out of "acme-corp/", and the data role's
# policy grants exactly this prefix.
FILE_KEY_SEPARATOR: Final = "/"


def file_key_prefix(tenant_id: str) -> str:
    """The S3 key prefix of ``tenant_id``'s files, in whichever bucket holds them."""
    return f"{tenant_id}{FILE_KEY_SEPARATOR}"


# Lambda tenant isolation mode (TenancyConfig.TenantIsolationMode) of the tenant API function.
TENANT_ISOLATION_MODE: Final = "PER_TENANT"
# The invocation header Lambda takes the tenant id from; API Gateway's integration fills it from the
# authorizer context, never from anything the client sends.
TENANT_ID_INVOKE_HEADER: Final = "X-Amz-Tenant-Id"


class Env:
    """Environment variables the Lambdas read."""

    REGISTRY_TABLE: Final = "REGISTRY_TABLE"
    TOKEN_ISSUER: Final = "TOKEN_ISSUER"
    JWKS_URL: Final = "JWKS_URL"
    APP_CLIENT_ID: Final = "APP_CLIENT_ID"
    TENANT_DATA_ROLE_ARN: Final = "TENANT_DATA_ROLE_ARN"
    PLACEMENT_TABLE: Final = "PLACEMENT_TABLE"
    # Set to TENANT_ISOLATION_MODE when the tenant API runs in Lambda tenant isolation mode: every
    # invocation must then carry the authorizer's tenant id in the Lambda context.
    TENANT_ISOLATION: Final = "TENANT_ISOLATION"
    # Standard powertools variables, set by the program for both functions.
    SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
    METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"


# Lambda function names without the stack prefix; each is also that function's powertools service name.
AUTHORIZER_FUNCTION: Final = "authorizer"
TENANT_API_FUNCTION: Final = "tenant-api"
METRICS_NAMESPACE: Final = "TenantTiers"


class MetricDimension:
    """Dimensions of the tenant API's metrics and of the access log's metric filters: bounded by
    tiers x routes. Tenant ids are never a dimension (each value would be a billed custom metric)."""

    TIER: Final = "tier"
    ROUTE: Final = "route"


# Lambda entry points inside the bundle.
AUTHORIZER_HANDLER: Final = "handlers.authorizer.lambda_handler"
TENANT_API_HANDLER: Final = "handlers.tenant_api.lambda_handler"

# Routes of the tenant API: (HTTP method, API Gateway resource path).
ROUTES: Final[tuple[tuple[str, str], ...]] = (
    ("GET", "/tenant"),
    ("POST", "/counter"),
    ("GET", "/items"),
    ("GET", "/items/{id}"),
    ("PUT", "/items/{id}"),
    ("DELETE", "/items/{id}"),
    ("GET", "/files"),
    ("GET", "/files/{name}"),
    ("PUT", "/files/{name}"),
    ("DELETE", "/files/{name}"),
    ("POST", "/files/{name}/upload-url"),
    ("GET", "/files/{name}/download-url"),
)
