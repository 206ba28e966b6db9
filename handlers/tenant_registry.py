"""Tenant registry lookups for the authorizer: one GetItem per tenant, cached briefly in memory.

The registry item is written by the program (tiers/registry.py) with the field
names of :class:`handlers.contract.RegistryField`. The cache TTL bounds how
long a tier-file change (a suspension, a tier move, a new key) takes to reach
the authorizer: at most :data:`REGISTRY_TTL_SECONDS` after the item changes,
plus API Gateway's own authorizer cache TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from handlers.contract import RegistryField

REGISTRY_TTL_SECONDS: Final = 60.0
"""How long a registry item is trusted; a suspension bites within this time."""

UNKNOWN_TENANT_TTL_SECONDS: Final = 10.0
"""How long "no such tenant" is trusted, so a newly added tenant is usable soon after it is written."""

MAX_CACHED_TENANTS: Final = 20_000
"""Bound on the cache (twice AWS's 10,000 API keys per region); tenant ids come from verified tokens only."""

Clock = Callable[[], float]
"""Monotonic seconds."""


class DynamoDBGetItem(Protocol):
    """The one boto3 DynamoDB client method the registry uses."""

    def get_item(self, **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant as the registry describes it."""

    tenant_id: str
    name: str
    tier: str
    isolation: str
    table: str
    bucket: str
    api_key_value: str = field(repr=False)  # a secret: kept out of reprs and so out of logs
    suspended: bool
    throttle_rate: float
    throttle_burst: int
    quota_limit: int
    quota_period: str
    quota_offset: int


@dataclass(frozen=True, slots=True)
class TenantLookup:
    """The answer for one tenant id: its record, or ``None`` when the registry has no such tenant."""

    record: TenantRecord | None
    expires_at: float
    """Monotonic time after which the answer must be read again."""


class RegistryError(Exception):
    """The registry could not answer; ``reason`` is a log-safe code."""

    reason = "registry_error"


class RegistryUnavailableError(RegistryError):
    reason = "registry_unavailable"


class RegistryItemInvalidError(RegistryError):
    reason = "registry_item_invalid"


def parse_registry_item(item: Mapping[str, Any]) -> TenantRecord:
    """The record of a registry item in DynamoDB JSON; raises :class:`RegistryItemInvalidError`."""
    return TenantRecord(
        tenant_id=_string(item, RegistryField.TENANT_ID),
        name=_string(item, RegistryField.NAME),
        tier=_string(item, RegistryField.TIER),
        isolation=_string(item, RegistryField.ISOLATION),
        table=_string(item, RegistryField.TABLE),
        bucket=_string(item, RegistryField.BUCKET),
        api_key_value=_string(item, RegistryField.API_KEY_VALUE),
        suspended=_boolean(item, RegistryField.SUSPENDED),
        throttle_rate=float(_number_text(item, RegistryField.THROTTLE_RATE)),
        throttle_burst=_integer(item, RegistryField.THROTTLE_BURST),
        quota_limit=_integer(item, RegistryField.QUOTA_LIMIT),
        quota_period=_string(item, RegistryField.QUOTA_PERIOD),
        quota_offset=_integer(item, RegistryField.QUOTA_OFFSET),
    )


def _attribute(item: Mapping[str, Any], name: str, type_code: str) -> Any:
    attribute = item.get(name)
    if not isinstance(attribute, dict) or type_code not in attribute:
        raise RegistryItemInvalidError(f"registry item field {name!r} is missing or not of type {type_code}")
    return attribute[type_code]


def _string(item: Mapping[str, Any], name: str) -> str:
    value = _attribute(item, name, "S")
    if not isinstance(value, str) or not value:
        raise RegistryItemInvalidError(f"registry item field {name!r} must be a non-empty string")
    return value


def _boolean(item: Mapping[str, Any], name: str) -> bool:
    value = _attribute(item, name, "BOOL")
    if not isinstance(value, bool):
        raise RegistryItemInvalidError(f"registry item field {name!r} must be a boolean")
    return value


def _number_text(item: Mapping[str, Any], name: str) -> str:
    value = _attribute(item, name, "N")
    try:
        if isinstance(value, str) and float(value) >= 0:
            return value
    except ValueError:
        pass
    raise RegistryItemInvalidError(f"registry item field {name!r} must be a non-negative number")


def _integer(item: Mapping[str, Any], name: str) -> int:
    try:
        return int(_number_text(item, name))
    except ValueError:
        raise RegistryItemInvalidError(f"registry item field {name!r} must be an integer") from None


class TenantRegistry:
    """Cached reads of the registry table. Thread-safe; the client is built on first use."""

    def __init__(
        self,
        table_name: str,
        client_factory: Callable[[], DynamoDBGetItem],
        *,
        clock: Clock = time.monotonic,
        ttl: float = REGISTRY_TTL_SECONDS,
        unknown_ttl: float = UNKNOWN_TENANT_TTL_SECONDS,
        max_entries: int = MAX_CACHED_TENANTS,
    ) -> None:
        self._table_name = table_name
        self._client_factory = client_factory
        self._client: DynamoDBGetItem | None = None
        self._clock = clock
        self._ttl = ttl
        self._unknown_ttl = unknown_ttl
        self._max_entries = max_entries
        self._entries: dict[str, TenantLookup] = {}
        self._lock = threading.Lock()

    def lookup(self, tenant_id: str) -> TenantLookup:
        """The tenant's record (cached); raises :class:`RegistryError` when the registry cannot answer."""
        now = self._clock()
        cached = self._entries.get(tenant_id)
        if cached is not None and now < cached.expires_at:
            return cached
        record = self._read(tenant_id)
        lookup = TenantLookup(record, now + (self._ttl if record is not None else self._unknown_ttl))
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._evict(now)
            self._entries[tenant_id] = lookup
        return lookup

    def _evict(self, now: float) -> None:
        for tenant_id in [key for key, entry in self._entries.items() if entry.expires_at <= now]:
            del self._entries[tenant_id]
        if len(self._entries) >= self._max_entries:
            self._entries.clear()

    def _read(self, tenant_id: str) -> TenantRecord | None:
        try:
            response = self._dynamodb().get_item(
                TableName=self._table_name,
                Key={RegistryField.TENANT_ID: {"S": tenant_id}},
            )
        # botocore errors, timeouts and connection failures alike: the caller maps them to one answer.
        except Exception as error:
            raise RegistryUnavailableError(f"registry read failed: {type(error).__name__}") from None
        item = response.get("Item")
        if item is None:
            return None
        record = parse_registry_item(item)
        if record.tenant_id != tenant_id:
            raise RegistryItemInvalidError("registry item tenant id differs from its key")
        return record

    def _dynamodb(self) -> DynamoDBGetItem:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._client_factory()
        return self._client
