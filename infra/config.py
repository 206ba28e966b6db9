"""Typed stack settings: every ``tenant-tiers:*`` config key, its default, and a clear error if wrong."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import pulumi

from blueprint.defaults import DEFAULT_AUTHORIZER_CACHE_TTL_SECONDS, MAX_AUTHORIZER_CACHE_TTL_SECONDS
from tiers.bucket_rules import DEFAULT_BUCKET_QUOTA
from tiers.loader import MAX_TENANTS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_NAMESPACE = "tenant-tiers"

SUPPORTED_RUNTIMES = ("python3.10", "python3.11", "python3.12", "python3.13")
# CloudWatch Logs accepts only these retention periods (0 keeps logs forever).
LOG_RETENTION_DAYS = (
    0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545,
    731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
# DynamoDB's default "Maximum number of tables" per account and region (raisable in Service Quotas).
DEFAULT_DYNAMODB_TABLE_QUOTA = 2_500
# API keys per account and region: 10,000, and AWS does not raise it (the tier file's tenant limit).
MAX_API_KEYS = MAX_TENANTS


class Architecture(StrEnum):
    ARM64 = "arm64"
    X86_64 = "x86_64"


class ConfigKey(StrEnum):
    TIERS_FILE = "tiersFile"
    LAMBDA_RUNTIME = "lambdaRuntime"
    LAMBDA_ARCHITECTURE = "lambdaArchitecture"
    AUTHORIZER_CACHE_TTL_SECONDS = "authorizerCacheTtlSeconds"
    STAGE_NAME = "stageName"
    MANAGE_API_GATEWAY_ACCOUNT = "manageApiGatewayAccount"
    LOG_RETENTION_DAYS = "logRetentionDays"
    DYNAMODB_TABLE_QUOTA = "dynamodbTableQuota"
    API_KEY_QUOTA = "apiKeyQuota"
    LAMBDA_TENANT_ISOLATION = "lambdaTenantIsolation"
    S3_BUCKET_QUOTA = "s3BucketQuota"

    @property
    def qualified(self) -> str:
        return f"{CONFIG_NAMESPACE}:{self.value}"


@dataclass(frozen=True)
class Settings:
    tiers_file: Path
    lambda_runtime: str = "python3.12"
    lambda_architecture: Architecture = Architecture.ARM64
    authorizer_cache_ttl_seconds: int = DEFAULT_AUTHORIZER_CACHE_TTL_SECONDS
    stage_name: str = "v1"
    manage_api_gateway_account: bool = True
    log_retention_days: int = 30
    dynamodb_table_quota: int = DEFAULT_DYNAMODB_TABLE_QUOTA
    """DynamoDB tables this stack may create in its account and region."""
    api_key_quota: int = MAX_API_KEYS
    """API keys (one per tenant) this stack may create in its account and region."""
    lambda_tenant_isolation: bool = False
    """Run the tenant API in Lambda tenant isolation mode (README: why off by default)."""
    s3_bucket_quota: int = DEFAULT_BUCKET_QUOTA

    @property
    def python_version(self) -> str:
        """``python3.12`` -> ``3.12``: the interpreter the bundle's wheels must fit."""
        return self.lambda_runtime.removeprefix("python")


class ConfigError(Exception):
    """Every problem in the stack config, one per line; ``str()`` is the report."""

    def __init__(self, problems: list[str], heading: str = "Invalid stack config") -> None:
        self.problems = problems
        super().__init__(f"{heading}:\n" + "\n".join(f"  - {problem}" for problem in problems))


_T = TypeVar("_T")


def load_settings(stack: str, config: pulumi.Config | None = None) -> Settings:
    """Read and check the ``tenant-tiers:*`` keys of ``stack``; raise ConfigError listing every problem."""
    config = config if config is not None else pulumi.Config(CONFIG_NAMESPACE)
    defaults = Settings(tiers_file=Path("tiers") / f"{stack}.yaml")
    problems: list[str] = []

    def read(key: ConfigKey, default: _T, parse: Callable[[str], _T], expected: str) -> _T:
        raw = config.get(key.value)
        if raw is None:
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            problems.append(
                f"{key.qualified} is {raw!r}: expected {expected}. "
                f"Fix it with `pulumi config set {key.qualified} <value>` or remove it to use the default "
                f"({_show(default)})."
            )
            return default

    tiers_file = read(ConfigKey.TIERS_FILE, defaults.tiers_file, _parse_path, "a path to a tier file")
    settings = Settings(
        tiers_file=_locate(tiers_file),
        lambda_runtime=read(
            ConfigKey.LAMBDA_RUNTIME,
            defaults.lambda_runtime,
            _one_of(SUPPORTED_RUNTIMES),
            "one of " + ", ".join(SUPPORTED_RUNTIMES),
        ),
        lambda_architecture=read(
            ConfigKey.LAMBDA_ARCHITECTURE,
            defaults.lambda_architecture,
            Architecture,
            "one of " + ", ".join(Architecture),
        ),
        authorizer_cache_ttl_seconds=read(
            ConfigKey.AUTHORIZER_CACHE_TTL_SECONDS,
            defaults.authorizer_cache_ttl_seconds,
            _int_in_range(0, MAX_AUTHORIZER_CACHE_TTL_SECONDS),
            f"a whole number of seconds from 0 (no caching) to {MAX_AUTHORIZER_CACHE_TTL_SECONDS}",
        ),
        stage_name=read(
            ConfigKey.STAGE_NAME,
            defaults.stage_name,
            _stage_name,
            "1-128 letters, digits, hyphens or underscores",
        ),
        manage_api_gateway_account=read(
            ConfigKey.MANAGE_API_GATEWAY_ACCOUNT,
            defaults.manage_api_gateway_account,
            _bool,
            "true or false",
        ),
        log_retention_days=read(
            ConfigKey.LOG_RETENTION_DAYS,
            defaults.log_retention_days,
            _one_of_ints(LOG_RETENTION_DAYS),
            "a CloudWatch Logs retention period: one of " + ", ".join(map(str, LOG_RETENTION_DAYS)),
        ),
        dynamodb_table_quota=read(
            ConfigKey.DYNAMODB_TABLE_QUOTA,
            defaults.dynamodb_table_quota,
            _int_in_range(1, 1_000_000),
            "a whole number of tables of at least 1: the account's DynamoDB table quota in this region "
            "minus the tables other stacks keep there",
        ),
        api_key_quota=read(
            ConfigKey.API_KEY_QUOTA,
            defaults.api_key_quota,
            _int_in_range(1, MAX_API_KEYS),
            f"a whole number of API keys from 1 to {MAX_API_KEYS:,} (AWS's fixed limit per account and "
            "region) minus the keys other stacks keep there",
        ),
        lambda_tenant_isolation=read(
            ConfigKey.LAMBDA_TENANT_ISOLATION,
            defaults.lambda_tenant_isolation,
            _bool,
            "true or false (changing it replaces the tenant API function)",
        ),
        s3_bucket_quota=read(
            ConfigKey.S3_BUCKET_QUOTA,
            defaults.s3_bucket_quota,
            _int_in_range(1, 1_000_000),
            "a whole number of S3 buckets from 1 to 1000000",
        ),
    )
    if problems:
        raise ConfigError(problems)
    return settings


def _locate(tiers_file: Path) -> Path:
    """A relative tier file path is relative to the working directory, which is the project directory
    under Pulumi; it is kept as written there, so problems read exactly as `python -m tiers validate
    <path>` prints them. Run from elsewhere (tests, scripts), a path not found there is looked up in the
    project directory."""
    if tiers_file.is_absolute() or tiers_file.exists():
        return tiers_file
    in_project = PROJECT_ROOT / tiers_file
    return in_project if in_project.exists() else tiers_file


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _parse_path(raw: str) -> Path:
    if not raw:
        raise ValueError(raw)
    return Path(raw)


def _one_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(raw)
        return raw

    return parse


def _one_of_ints(allowed: tuple[int, ...]) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value not in allowed:
            raise ValueError(raw)
        return value

    return parse


def _int_in_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def _stage_name(raw: str) -> str:
    if _STAGE_NAME.fullmatch(raw) is None:
        raise ValueError(raw)
    return raw


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(raw)
