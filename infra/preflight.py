"""What AWS would refuse late, checked before anything is declared: quotas, physical names, retry settings.

Mocks and moto accept a 70-character function name, a 2,501st table and unbounded retries
of throttled calls; AWS does not, and `pulumi up` would fail halfway through. Each check
returns problems in the words of ``ConfigError``: what is wrong, where, and what to do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

import pulumi

from infra.config import MAX_API_KEYS, ConfigKey, Settings
from infra.rates import DEPLOY_PARALLELISM, MANAGEMENT_BURST, MIN_MAX_RETRIES, exceeds_burst
from tiers.bucket_rules import bucket_problems
from tiers.model import Catalog
from tiers.naming import NAME_RULES, NameKind, Naming
from tiers.plan import CALLS_PER_NEW_TENANT

AWS_NAMESPACE = "aws"
MAX_RETRIES_KEY = "maxRetries"
RETRY_MODE_KEY = "retryMode"
RETRY_MODES = ("standard", "adaptive")


def preflight_problems(
    settings: Settings, catalog: Catalog, naming: Naming, aws_config: pulumi.Config | None = None
) -> list[str]:
    """Every problem AWS would hit while deploying ``catalog`` with ``settings``; empty when there is none."""
    aws_config = aws_config if aws_config is not None else pulumi.Config(AWS_NAMESPACE)
    names = list(physical_names(naming, catalog, settings.stage_name))
    return [
        *quota_problems(settings, catalog, names),
        *invalid_name_problems(naming, names),
        *retry_problems(catalog, aws_config),
        *bucket_problems(catalog, naming, settings.s3_bucket_quota, ConfigKey.S3_BUCKET_QUOTA.qualified),
    ]


def physical_names(naming: Naming, catalog: Catalog, stage_name: str) -> Iterator[tuple[NameKind, str]]:
    return naming.physical_names(
        tier_names=catalog.tiers,
        tenant_ids=catalog.tenants,
        silo_tenant_ids=(tenant.id for tenant in catalog.tenants.values() if catalog.is_silo(tenant)),
        stage_name=stage_name,
    )


def quota_problems(settings: Settings, catalog: Catalog, names: Iterable[tuple[NameKind, str]]) -> list[str]:
    """Tables are counted from the stack's physical names: every table the stack makes has one."""
    problems = []
    silo_tables = sum(1 for tenant in catalog.tenants.values() if catalog.is_silo(tenant))
    tables = sum(1 for kind, _ in names if kind is NameKind.DYNAMODB_TABLE)
    if tables > settings.dynamodb_table_quota:
        key = ConfigKey.DYNAMODB_TABLE_QUOTA.qualified
        problems.append(
            f"the tier file needs {tables:,} DynamoDB tables ({tables - silo_tables} shared + "
            f"{silo_tables:,} silo tables), more than {key} allows ({settings.dynamodb_table_quota:,}). "
            "Move tenants to pooled tiers, or raise the account's table quota in this region (Service "
            "Quotas: Amazon DynamoDB, 'Maximum number of tables') and then "
            f"`pulumi config set {key} <tables this stack may use>`."
        )
    tenants = len(catalog.tenants)
    if tenants > settings.api_key_quota:
        key = ConfigKey.API_KEY_QUOTA.qualified
        problems.append(
            f"the tier file has {tenants:,} tenants, each with its own API key, more than {key} allows "
            f"({settings.api_key_quota:,}). AWS allows {MAX_API_KEYS:,} API keys per account and region, "
            "shared with every other stack there, and does not raise it: remove tenants or move some to a "
            "stack in another region or account; if other stacks in this account now hold fewer keys, "
            f"`pulumi config set {key} <keys this stack may use>`."
        )
    return problems


def invalid_name_problems(naming: Naming, names: Iterable[tuple[NameKind, str]]) -> list[str]:
    """One problem per kind of name AWS would refuse: its longest or first offending name, and a count."""
    offenders: dict[NameKind, list[str]] = defaultdict(list)
    for kind, name in names:
        if not NAME_RULES[kind].accepts(name):
            offenders[kind].append(name)
    return [_name_problem(naming, kind, names_of_kind) for kind, names_of_kind in offenders.items()]


def _name_problem(naming: Naming, kind: NameKind, names: list[str]) -> str:
    rule = NAME_RULES[kind]
    origin = f"project '{naming.project}' and stack '{naming.stack}'"
    others = f" (and {len(names) - 1:,} more like it)" if len(names) > 1 else ""
    longest = max(names, key=len)
    if rule.max_length is not None and rule.too_long(longest):
        excess = len(longest) - rule.max_length
        return (
            f"the {kind} name '{longest}'{others} is {len(longest)} characters, over AWS's limit of "
            f"{rule.max_length}; it is made from {origin}. Use a stack name at least {excess} characters "
            f"shorter than '{naming.stack}' (`pulumi stack init <name>`), or a shorter project name."
        )
    offending = next(name for name in names if rule.bad_characters(name) or rule.too_short(name))
    bad = rule.bad_characters(offending)
    if not bad:
        return (
            f"the {kind} name '{offending}'{others} is {len(offending)} characters, under AWS's minimum of "
            f"{rule.min_length}; it is made from {origin}."
        )
    culprit = "stack name" if any(char in naming.stack for char in bad) else "project name"
    return (
        f"the {kind} name '{offending}'{others} contains {', '.join(repr(char) for char in bad)}, which AWS "
        f"does not allow there ({rule.allowed} only); it comes from "
        f"the {culprit} ({origin}). Use a stack and project name of letters, digits and hyphens."
    )


def retry_problems(catalog: Catalog, aws_config: pulumi.Config) -> list[str]:
    """The default AWS provider's retries must outlast the throttling a large update meets."""
    problems = []
    tenants = len(catalog.tenants)
    raw_retries = aws_config.get(MAX_RETRIES_KEY)
    retries = _int_or_none(raw_retries)
    set_retries = f"`pulumi config set {AWS_NAMESPACE}:{MAX_RETRIES_KEY} {MIN_MAX_RETRIES}`"
    if raw_retries is not None and retries is None:
        problems.append(
            f"{AWS_NAMESPACE}:{MAX_RETRIES_KEY} is {raw_retries!r}: expected a whole number; {set_retries}."
        )
    elif exceeds_burst(tenants) and (retries is None or retries < MIN_MAX_RETRIES):
        now = "unset: the provider's default is 25" if retries is None else f"{retries}"
        calls = tenants * CALLS_PER_NEW_TENANT
        problems.append(
            f"the tier file has {tenants:,} tenants: about {calls:,} API Gateway calls "
            f"when they are created, beyond the account's burst of {MANAGEMENT_BURST} at 10 calls/s, so many "
            f"are throttled and retried. {AWS_NAMESPACE}:{MAX_RETRIES_KEY} is {now}; {set_retries} so that "
            f"no step runs out of retries, and deploy with `pulumi up --parallel {DEPLOY_PARALLELISM}` "
            "(README, Deploy)."
        )
    mode = aws_config.get(RETRY_MODE_KEY)
    if mode is not None and mode not in RETRY_MODES:
        problems.append(
            f"{AWS_NAMESPACE}:{RETRY_MODE_KEY} is {mode!r}: expected one of {', '.join(RETRY_MODES)}; "
            f"`pulumi config set {AWS_NAMESPACE}:{RETRY_MODE_KEY} standard`."
        )
    return problems


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw.strip()) if raw is not None else None
    except ValueError:
        return None
