"""Registry lookups: typed records from the items the program writes, a short cache that bounds how long a
change takes to bite, and a registry outage that becomes 401, never a 500 or a wrong Deny."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from handlers.authorizer import Authorizer, AuthorizerSettings
from handlers.contract import RegistryField
from handlers.tenant_registry import (
    REGISTRY_TTL_SECONDS,
    UNKNOWN_TENANT_TTL_SECONDS,
    RegistryItemInvalidError,
    RegistryUnavailableError,
    TenantRegistry,
    parse_registry_item,
)
from tests.handlers.conftest import (
    ALLOW,
    APP_CLIENT_ID,
    ISSUER,
    TEST_BUCKETS,
    TEST_CATALOG,
    TEST_NAMING,
    UNAUTHORIZED,
    JwksServer,
    ManualClock,
    RegistryTable,
    SigningKey,
    api_key_value,
    bearer,
    create_registry_table,
    id_token_claims,
    load_event,
    outcome,
)
from tiers.model import Tenant
from tiers.registry import data_table, registry_item


class CountingClient:
    """A real (moto) DynamoDB client that counts GetItem calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.reads = 0
        self._lock = threading.Lock()

    def get_item(self, **kwargs: Any) -> Any:
        with self._lock:
            self.reads += 1
        return self.client.get_item(**kwargs)


@pytest.fixture
def counting_client(registry_table: RegistryTable) -> CountingClient:
    return CountingClient(registry_table.client)


@pytest.fixture
def registry(
    registry_table: RegistryTable, counting_client: CountingClient, clock: ManualClock
) -> TenantRegistry:
    return TenantRegistry(registry_table.name, lambda: counting_client, clock=clock)


@pytest.mark.parametrize("tenant_id", list(TEST_CATALOG.tenants))
def test_a_record_says_what_the_tier_file_says(registry: TenantRegistry, tenant_id: str) -> None:
    # GIVEN the registry written from the catalog
    tenant = TEST_CATALOG.tenants[tenant_id]
    tier = TEST_CATALOG.tier_of(tenant)

    # WHEN the tenant is looked up
    record = registry.lookup(tenant_id).record

    # THEN every field matches the catalog, typed
    assert record is not None
    assert (record.tenant_id, record.name, record.tier, record.isolation) == (
        tenant.id,
        tenant.name,
        tier.name,
        tier.isolation.value,
    )
    assert record.table == data_table(TEST_CATALOG, tenant, TEST_NAMING)
    assert record.api_key_value == api_key_value(tenant_id)
    assert record.suspended is tenant.suspended
    assert (record.throttle_rate, record.throttle_burst) == (tier.throttle.rate, tier.throttle.burst)
    assert (record.quota_limit, record.quota_period, record.quota_offset) == (
        tier.quota.limit,
        tier.quota.period.value,
        tier.quota.offset,
    )


def test_the_api_key_stays_out_of_the_record_repr(registry: TenantRegistry) -> None:
    record = registry.lookup("acme").record
    assert api_key_value("acme") not in repr(record)


def test_a_record_is_read_once_per_ttl(
    registry: TenantRegistry, counting_client: CountingClient, clock: ManualClock
) -> None:
    # GIVEN a tenant looked up once
    registry.lookup("acme")

    # WHEN it is looked up again within the TTL, and once after
    for _ in range(10):
        registry.lookup("acme")
    reads_within_ttl = counting_client.reads
    clock.advance(REGISTRY_TTL_SECONDS)
    registry.lookup("acme")

    # THEN one read per TTL
    assert (reads_within_ttl, counting_client.reads) == (1, 2)


def test_an_unknown_tenant_becomes_known_after_the_short_ttl(
    registry: TenantRegistry, registry_table: RegistryTable, clock: ManualClock
) -> None:
    # GIVEN a tenant looked up before it was added
    assert registry.lookup("hooli").record is None
    registry_table.write(Tenant("hooli", "basic", "Hooli"))

    # WHEN it is looked up before and after the unknown-tenant TTL
    before = registry.lookup("hooli").record
    clock.advance(UNKNOWN_TENANT_TTL_SECONDS)
    after = registry.lookup("hooli").record

    # THEN it appears once that TTL has passed
    assert before is None
    assert after is not None
    assert after.tenant_id == "hooli"


def test_the_client_is_built_once_on_first_use(registry_table: RegistryTable) -> None:
    built: list[CountingClient] = []

    def factory() -> CountingClient:
        built.append(CountingClient(registry_table.client))
        return built[-1]

    registry = TenantRegistry(registry_table.name, factory, ttl=0, unknown_ttl=0)
    assert built == []
    for tenant_id in ("acme", "globex", "hooli", "acme"):
        registry.lookup(tenant_id)
    assert len(built) == 1
    assert built[0].reads == 4


def test_a_registry_outage_raises_one_error_type(registry_table: RegistryTable) -> None:
    # GIVEN a registry table that does not exist (AWS answering an error)
    registry = TenantRegistry("no-such-table", lambda: registry_table.client)

    # WHEN / THEN the lookup raises the one error the authorizer maps to 401
    with pytest.raises(RegistryUnavailableError):
        registry.lookup("acme")


def test_a_client_that_cannot_be_built_is_an_outage_too() -> None:
    def factory() -> Any:
        raise RuntimeError("no credentials")

    with pytest.raises(RegistryUnavailableError):
        TenantRegistry("registry", factory).lookup("acme")


def test_through_the_authorizer_an_outage_is_401_and_is_not_remembered(
    jwks_server: JwksServer, aws: None, signing_key: SigningKey
) -> None:
    # GIVEN an authorizer whose registry table does not exist (yet)
    settings = AuthorizerSettings(ISSUER, APP_CLIENT_ID, jwks_server.url, TEST_NAMING.registry_table)
    authorizer = Authorizer.from_settings(settings)
    event = load_event("authorizer_token", bearer(signing_key.sign(id_token_claims())))

    # WHEN a valid token comes during the outage, and again once the registry is back
    during = outcome(authorizer, event)[0]
    create_registry_table()
    after = outcome(authorizer, event)[0]

    # THEN 401 (a retry), then Allow
    assert (during, after) == (UNAUTHORIZED, ALLOW)


def valid_item() -> dict[str, Any]:
    return registry_item(
        TEST_CATALOG,
        TEST_CATALOG.tenants["globex"],
        TEST_NAMING,
        buckets=TEST_BUCKETS,
        api_key_id="id",
        api_key_value="v" * 30,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (RegistryField.TIER, None),
        (RegistryField.API_KEY_VALUE, {"S": ""}),
        (RegistryField.TABLE, {"N": "1"}),
        (RegistryField.SUSPENDED, {"S": "false"}),
        (RegistryField.THROTTLE_RATE, {"N": "-1"}),
        (RegistryField.THROTTLE_RATE, {"N": "fast"}),
        (RegistryField.THROTTLE_BURST, {"N": "2.5"}),
        (RegistryField.QUOTA_LIMIT, "1000"),
    ],
)
def test_a_malformed_item_is_refused_naming_the_field(field: str, value: Any) -> None:
    # GIVEN an item with one field missing or of the wrong shape
    item = valid_item()
    if value is None:
        del item[field]
    else:
        item[field] = value

    # WHEN / THEN it is refused, and the message names the field
    with pytest.raises(RegistryItemInvalidError, match=field):
        parse_registry_item(item)


def test_an_item_stored_under_another_key_is_refused(registry_table: RegistryTable) -> None:
    item = valid_item()
    registry_table.client.put_item(
        TableName=registry_table.name, Item={**item, RegistryField.TENANT_ID: {"S": "hooli"}}
    )
    stray = TenantRegistry(registry_table.name, lambda: MisroutingClient(registry_table.client))
    with pytest.raises(RegistryItemInvalidError):
        stray.lookup("globex")


class MisroutingClient:
    """Answers every GetItem with hooli's item, as a broken registry might."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get_item(self, **kwargs: Any) -> Any:
        return self.client.get_item(**{**kwargs, "Key": {RegistryField.TENANT_ID: {"S": "hooli"}}})
