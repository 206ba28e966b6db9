"""Physical names of everything the tier file drives, shared by the Pulumi program and the local stack.

Names depend on the stack and the tenant id only, never on the tier, so a tier
move renames nothing. ``NAME_RULES`` holds AWS's length and character rules for
each kind of name as data, and ``Naming.physical_names`` lists every name a stack
makes, so the program checks them all before it declares anything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Final

from blueprint import monitoring
from handlers.contract import AUTHORIZER_FUNCTION, TENANT_API_FUNCTION

PROJECT: Final = "tenant-tiers"
"""The Pulumi project's name (``name:`` in Pulumi.yaml); the local stack names itself after it too."""
LOCAL_STACK: Final = "local"
"""The stack name of the local stack (`python -m local up`), in its physical names."""

FUNCTIONS = (AUTHORIZER_FUNCTION, TENANT_API_FUNCTION)


class NameKind(StrEnum):
    """A kind of AWS resource name; the value is how messages call it."""

    DYNAMODB_TABLE = "DynamoDB table"
    LAMBDA_FUNCTION = "Lambda function"
    LOG_GROUP = "CloudWatch Logs log group"
    IAM_ROLE = "IAM role"
    REST_API = "API Gateway REST API"
    STAGE = "API Gateway stage"
    API_KEY = "API Gateway API key"
    USAGE_PLAN = "API Gateway usage plan"
    USER_POOL = "Cognito user pool"
    USER_POOL_CLIENT = "Cognito app client"
    SNS_TOPIC = "SNS topic"
    DASHBOARD = "CloudWatch dashboard"
    METRIC_FILTER = "CloudWatch Logs metric filter"
    CONTRIBUTOR_RULE = "Contributor Insights rule"
    METRIC_ALARM = "CloudWatch alarm"


@dataclass(frozen=True)
class NameRule:
    """AWS's rule for one kind of name: a length range and, where AWS has one, a character set."""

    min_length: int
    max_length: int | None
    """None: AWS publishes no maximum."""
    characters: str | None = None
    """A regular-expression character class (``[A-Za-z0-9_.-]``); None: AWS publishes no character rule."""
    allowed: str = "any characters"
    """The character set in words, for messages."""

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        return re.compile(f"{self.characters}*") if self.characters else None

    def too_short(self, name: str) -> bool:
        return len(name) < self.min_length

    def too_long(self, name: str) -> bool:
        return self.max_length is not None and len(name) > self.max_length

    def bad_characters(self, name: str) -> str:
        """The characters of ``name`` outside the allowed set, in order of first appearance, once each."""
        pattern = self._pattern
        if pattern is None or pattern.fullmatch(name):
            return ""
        return "".join(dict.fromkeys(char for char in name if not pattern.fullmatch(char)))

    def accepts(self, name: str) -> bool:
        return not (self.too_short(name) or self.too_long(name) or self.bad_characters(name))


# From each service's API reference (the request parameter that takes the name). API Gateway's
# CreateRestApi, CreateApiKey and CreateUsagePlan document no rule for `name`.
NAME_RULES: dict[NameKind, NameRule] = {
    NameKind.DYNAMODB_TABLE: NameRule(3, 255, "[A-Za-z0-9_.-]", "letters, digits, '_', '.' and '-'"),
    NameKind.LAMBDA_FUNCTION: NameRule(1, 64, "[A-Za-z0-9_-]", "letters, digits, '_' and '-'"),
    NameKind.LOG_GROUP: NameRule(1, 512, "[A-Za-z0-9_./#-]", "letters, digits, '_', '.', '/', '#' and '-'"),
    NameKind.IAM_ROLE: NameRule(1, 64, r"[\w+=,.@-]", "letters, digits and '+=,.@_-'"),
    NameKind.STAGE: NameRule(1, 128, "[A-Za-z0-9_-]", "letters, digits, '_' and '-'"),
    NameKind.USER_POOL: NameRule(1, 128, r"[\w\s+=,.@-]", "letters, digits, spaces and '+=,.@_-'"),
    NameKind.USER_POOL_CLIENT: NameRule(1, 128, r"[\w\s+=,.@-]", "letters, digits, spaces and '+=,.@_-'"),
    NameKind.REST_API: NameRule(1, None),
    NameKind.API_KEY: NameRule(1, None),
    NameKind.USAGE_PLAN: NameRule(1, None),
    NameKind.SNS_TOPIC: NameRule(1, 256, "[A-Za-z0-9_-]", "letters, digits, '_' and '-'"),
    NameKind.DASHBOARD: NameRule(1, 255, "[A-Za-z0-9_-]", "letters, digits, '_' and '-'"),
    NameKind.METRIC_FILTER: NameRule(1, 512, "[^:*]", "any characters but ':' and '*'"),
    NameKind.CONTRIBUTOR_RULE: NameRule(1, 128, "[\x20-\x7e]", "printable ASCII characters"),
    NameKind.METRIC_ALARM: NameRule(1, 255),
}

# S3 bucket names are global across every AWS account, so a bucket name carries a digest of the
# deployment (account, region, project, stack) after a readable label cut to this length: the silo
# bucket of a 32-character tenant id then fits S3's 63 characters exactly (16 + 1 + 8 + 1 + 5 + 32).
BUCKET_LABEL_MAX_LENGTH: Final = 16
BUCKET_DIGEST_LENGTH: Final = 8
_NOT_BUCKET_CHARACTERS: Final = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class BucketNames:
    """The stack's S3 bucket names in one account and region: ``<label>-<digest>-pooled`` and
    ``<label>-<digest>-silo-<tenant id>``."""

    prefix: str
    """``<label>-<digest>-``: the readable stack prefix (lowercased, cut) and the deployment digest."""

    @property
    def pooled(self) -> str:
        return f"{self.prefix}pooled"

    @property
    def silo_prefix(self) -> str:
        """Silo bucket names are this prefix plus the tenant id (the IAM policy relies on it)."""
        return f"{self.prefix}silo-"

    def silo(self, tenant_id: str) -> str:
        return f"{self.silo_prefix}{tenant_id}"


@dataclass(frozen=True)
class Naming:
    project: str
    stack: str

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    @property
    def pooled_table(self) -> str:
        return f"{self.prefix}-pooled"

    @property
    def registry_table(self) -> str:
        return f"{self.prefix}-registry"

    @property
    def placement_table(self) -> str:
        return f"{self.prefix}-placement"

    @property
    def silo_table_prefix(self) -> str:
        """Silo table names are this prefix plus the tenant id (the IAM policy relies on it)."""
        return f"{self.prefix}-silo-"

    def silo_table(self, tenant_id: str) -> str:
        return f"{self.silo_table_prefix}{tenant_id}"

    def buckets(self, account_id: str, region: str) -> BucketNames:
        """Bucket names for this stack in ``account_id`` and ``region``.

        Deterministic, so a redeploy, a preview and the local stack all find the same buckets; unique per
        account, region, project and stack, so two deployments of this program never claim one name.
        Only lowercase letters, digits and hyphens: no dots, so virtual-hosted HTTPS certificates match.
        """
        label = _NOT_BUCKET_CHARACTERS.sub("-", self.prefix.lower()).strip("-")
        label = label[:BUCKET_LABEL_MAX_LENGTH].rstrip("-") or "tenant-tiers"
        identity = f"{account_id}:{region}:{self.project}:{self.stack}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:BUCKET_DIGEST_LENGTH]
        return BucketNames(f"{label}-{digest}-")

    def api_key(self, tenant_id: str) -> str:
        return f"{self.prefix}-{tenant_id}"

    def function(self, function: str) -> str:
        return f"{self.prefix}-{function}"

    def function_log_group(self, function: str) -> str:
        """The group Lambda writes ``function``'s logs to (its name is fixed by Lambda)."""
        return f"/aws/lambda/{self.function(function)}"

    def usage_plan(self, tier_name: str) -> str:
        return f"{self.prefix}-{tier_name}"

    @property
    def rest_api(self) -> str:
        return f"{self.prefix}-api"

    def access_log_group(self, stage_name: str) -> str:
        return f"/aws/apigateway/{self.rest_api}/{stage_name}"

    @property
    def user_pool(self) -> str:
        return f"{self.prefix}-users"

    @property
    def app_client(self) -> str:
        return f"{self.prefix}-app"

    def physical_names(
        self,
        *,
        tier_names: Iterable[str],
        tenant_ids: Iterable[str],
        silo_tenant_ids: Iterable[str],
        stage_name: str,
    ) -> Iterator[tuple[NameKind, str]]:
        """Every physical name a stack with these tiers, tenants and stage makes, with its kind."""
        tiers = list(tier_names)
        yield NameKind.DYNAMODB_TABLE, self.pooled_table
        yield NameKind.DYNAMODB_TABLE, self.registry_table
        yield NameKind.DYNAMODB_TABLE, self.placement_table
        for tenant_id in silo_tenant_ids:
            yield NameKind.DYNAMODB_TABLE, self.silo_table(tenant_id)
        for function in FUNCTIONS:
            yield NameKind.LAMBDA_FUNCTION, self.function(function)
            yield NameKind.LOG_GROUP, self.function_log_group(function)
        yield NameKind.REST_API, self.rest_api
        yield NameKind.STAGE, stage_name
        yield NameKind.LOG_GROUP, self.access_log_group(stage_name)
        for tier_name in tiers:
            yield NameKind.USAGE_PLAN, self.usage_plan(tier_name)
        for tenant_id in tenant_ids:
            yield NameKind.API_KEY, self.api_key(tenant_id)
        yield NameKind.USER_POOL, self.user_pool
        yield NameKind.USER_POOL_CLIENT, self.app_client
        yield from self.monitoring_names(tiers)

    def monitoring_names(self, tier_names: list[str]) -> Iterator[tuple[NameKind, str]]:
        """The names ``blueprint.monitoring`` gives metric filters, rules, dashboards and alarms."""
        prefix = self.prefix
        yield NameKind.SNS_TOPIC, monitoring.alarm_topic_name(prefix)
        for metric in monitoring.AccessMetric:
            yield NameKind.METRIC_FILTER, monitoring.metric_filter_name(prefix, metric)
        for top in monitoring.TopTenants:
            yield NameKind.CONTRIBUTOR_RULE, monitoring.rule_name(prefix, top)
        for dashboard in monitoring.dashboard_names(prefix, len(tier_names)):
            yield NameKind.DASHBOARD, dashboard
        yield NameKind.METRIC_ALARM, monitoring.authorizer_alarm_name(prefix)
        for tier_name in tier_names:
            for kind in monitoring.AlarmKind:
                yield NameKind.METRIC_ALARM, monitoring.tier_alarm_name(prefix, tier_name, kind)


# The storage component's logical names and the Pulumi types of the protected resources that hold a silo
# tenant's data: the program declares them under these names, and `python -m tiers plan` names their URNs
# for `pulumi state unprotect` when the tenant's silo storage is to leave the stack.
STORAGE_COMPONENT_NAME: Final = "storage"
STORAGE_COMPONENT_TYPE: Final = "tenant-tiers:infra:Storage"
TABLE_TYPE: Final = "aws:dynamodb/table:Table"
BUCKET_TYPE: Final = "aws:s3/bucket:Bucket"
BUCKET_SETTINGS: Final = (
    ("public-access", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"),
    ("encryption", "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"),
    ("versioning", "aws:s3/bucketVersioning:BucketVersioning"),
    ("tls-only", "aws:s3/bucketPolicy:BucketPolicy"),
)
"""A bucket's settings, each declared as ``<bucket's logical name>-<suffix>``, protected like the bucket."""


def silo_table_resource_name(component: str, tenant_id: str) -> str:
    return f"{component}-silo-{tenant_id}"


def silo_bucket_resource_name(component: str, tenant_id: str) -> str:
    return f"{component}-silo-bucket-{tenant_id}"


def bucket_setting_resource_name(bucket_resource_name: str, suffix: str) -> str:
    return f"{bucket_resource_name}-{suffix}"


def silo_storage_resources(tenant_id: str) -> list[tuple[str, str]]:
    """(Pulumi type, logical name) of every protected resource of ``tenant_id``'s silo storage."""
    bucket = silo_bucket_resource_name(STORAGE_COMPONENT_NAME, tenant_id)
    return [
        (TABLE_TYPE, silo_table_resource_name(STORAGE_COMPONENT_NAME, tenant_id)),
        (BUCKET_TYPE, bucket),
        *((kind, bucket_setting_resource_name(bucket, suffix)) for suffix, kind in BUCKET_SETTINGS),
    ]
