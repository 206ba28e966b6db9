"""The tenant API's routes, answers and errors, end to end through lambda_handler on moto."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import tenant_api
from handlers.contract import DATA_PARTITION_KEY, DATA_SORT_KEY, ROUTES, ContextKey, Env
from tests.handlers.tenant_fixtures import (
    ACME,
    ACME_CORP,
    GLOBEX,
    NAMING,
    TenantApi,
    TenantSpec,
    api_event,
    running_tenant_api,
    table_contents,
)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantApi]:
    with running_tenant_api(monkeypatch) as running:
        yield running


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the tenant API's logger writes (its handler keeps the stdout it saw at import)."""
    buffer = io.StringIO()
    monkeypatch.setattr(tenant_api.logger.registered_handler, "stream", buffer)
    return buffer


def log_records(logs: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logs.getvalue().splitlines()]


def metric_records(output: str) -> list[dict[str, Any]]:
    """The EMF records printed on stdout."""
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


# ---------------------------------------------------------------------------------------------------------
# GET /tenant


def test_get_tenant_describes_the_tenant_of_the_authorizer_context(api: TenantApi) -> None:
    # GIVEN a silo tenant with a fractional rate, and an event whose header names another tenant
    tenant = TenantSpec("initech", isolation="silo", tier="premium", throttle_rate="12.5", quota_offset="100")
    event = api_event("get_tenant", tenant)
    assert event["headers"]["X-Tenant-Id"] != tenant.tenant_id

    # WHEN it asks who it is
    answer = api.call(event)

    # THEN the answer comes from the authorizer context, with numbers as numbers
    assert answer.status == 200
    assert answer.body == {
        "tenant_id": "initech",
        "tier": "premium",
        "isolation": "silo",
        "limits": {
            "throttle": {"rate": 12.5, "burst": 20},
            "quota": {"limit": 10000, "period": "MONTH", "offset": 100},
        },
    }


def test_get_tenant_needs_no_data_access(api: TenantApi) -> None:
    # GIVEN a cold container
    # WHEN a tenant asks who it is
    answer = api.send("get_tenant", ACME)
    # THEN it is answered without fetching any credentials
    assert answer.status == 200
    assert api.clients.cached_tenants() == []


# ---------------------------------------------------------------------------------------------------------
# POST /counter


def test_counter_starts_at_one_and_counts_per_tenant(api: TenantApi) -> None:
    # GIVEN two tenants sharing the pooled table and one silo tenant
    # WHEN acme counts three times and acme-corp and globex once each
    acme_answers = [api.count(ACME).body for _ in range(3)]
    acme_corp = api.count(ACME_CORP).body
    globex = api.count(GLOBEX).body

    # THEN each tenant's counter is its own and starts at 1
    assert acme_answers == [{"tenant_id": "acme", "counter": n} for n in (1, 2, 3)]
    assert acme_corp == {"tenant_id": "acme-corp", "counter": 1}
    assert globex == {"tenant_id": "globex", "counter": 1}


def test_counter_never_shows_up_as_an_item(api: TenantApi) -> None:
    # GIVEN a tenant with a counter and one item
    api.count(ACME)
    api.put(ACME, "only", "1")
    # WHEN it lists its items
    items = api.list_all(ACME)
    # THEN only the item is there
    assert items == [{"id": "only", "value": 1}]


# ---------------------------------------------------------------------------------------------------------
# PUT / GET / DELETE /items/{id}


def test_put_answers_201_when_new_and_200_when_replaced(api: TenantApi) -> None:
    # GIVEN no item "order-1"
    # WHEN the tenant puts it twice
    first = api.put(ACME, "order-1", '{"qty": 1}')
    second = api.put(ACME, "order-1", '{"qty": 2}')

    # THEN the first put creates, the second replaces, and the last document is what GET returns
    assert (first.status, first.body) == (201, {"id": "order-1", "created": True})
    assert (second.status, second.body) == (200, {"id": "order-1", "created": False})
    assert api.get(ACME, "order-1").body == {"id": "order-1", "value": {"qty": 2}}


def test_the_stored_document_comes_back_byte_for_byte(api: TenantApi) -> None:
    # GIVEN a document whose numbers no float keeps and with a repeated key
    document = '{"price": 12.50, "big": 123456789012345678901234567890, "tiny": 1e-400, "a": 1, "a": 2}'

    # WHEN it is stored and read back
    api.put(ACME, "exact", document)
    response = tenant_api.lambda_handler(api_event("get_item", ACME, item_id="exact"), None)  # type: ignore[arg-type]

    # THEN the response carries the very same text
    assert response["body"] == '{"id":"exact","value":' + document + "}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_any_json_value_round_trips(api: TenantApi, value: Any) -> None:
    # GIVEN any JSON value
    # WHEN it is stored and read back
    assert api.put(ACME, "any", json.dumps(value)).status in (200, 201)
    answer = api.get(ACME, "any")
    # THEN it is the same value
    assert answer.status == 200
    assert answer.body == {"id": "any", "value": value}


def test_a_base64_encoded_body_is_decoded(api: TenantApi) -> None:
    # GIVEN the base64 fixture event (API Gateway encodes bodies of binary media types)
    event = api_event("put_item_base64", ACME)
    # WHEN it is stored
    created = api.call(event)
    # THEN the decoded JSON document is what GET returns
    assert created.status == 201
    assert api.get(ACME, "order-1").body == {"id": "order-1", "value": {"note": "héllo", "n": 1}}


def test_get_of_a_missing_item_is_404(api: TenantApi) -> None:
    answer = api.get(ACME, "nothing-here")
    assert answer.status == 404
    assert answer.body == {"message": 'item "nothing-here" does not exist'}


def test_delete_answers_204_and_the_item_is_gone(api: TenantApi) -> None:
    # GIVEN a stored item
    api.put(ACME, "doomed", "[1]")
    # WHEN it is deleted, twice
    first = api.delete(ACME, "doomed")
    second = api.delete(ACME, "doomed")
    # THEN both answer 204 with no body and GET finds nothing
    assert (first.status, first.body) == (204, None)
    assert (second.status, second.body) == (204, None)
    assert api.get(ACME, "doomed").status == 404


def test_the_tenant_comes_only_from_the_authorizer_context(api: TenantApi) -> None:
    # GIVEN the fixture event: header X-Tenant-Id and the body both say "globex"; the context says acme
    event = api_event("put_item", ACME)
    assert event["headers"]["X-Tenant-Id"] == "globex"
    assert "globex" in event["body"]

    # WHEN it is sent
    assert api.call(event).status == 201

    # THEN the item sits in acme's partition of the pooled table and nowhere else
    pooled = table_contents(NAMING.pooled_table, api.admin)
    assert [(item[DATA_PARTITION_KEY]["S"], item[DATA_SORT_KEY]["S"]) for item in pooled] == [
        ("acme", "item#order-1")
    ]
    assert table_contents(GLOBEX.table, api.admin) == []


def test_a_silo_tenant_writes_to_its_own_table(api: TenantApi) -> None:
    # WHEN the silo tenant stores an item and counts
    api.put(GLOBEX, "x", "true")
    api.count(GLOBEX)
    # THEN both are in its silo table, under its own partition key, and not in the pooled table
    silo = table_contents(NAMING.silo_table("globex"), api.admin)
    assert sorted((item[DATA_PARTITION_KEY]["S"], item[DATA_SORT_KEY]["S"]) for item in silo) == [
        ("globex", "counter"),
        ("globex", "item#x"),
    ]
    assert table_contents(NAMING.pooled_table, api.admin) == []


# ---------------------------------------------------------------------------------------------------------
# GET /items (pagination)


def test_listing_pages_through_every_item_in_id_order(api: TenantApi) -> None:
    # GIVEN seven items of acme and some of acme-corp (same pooled table, a prefix-sharing id)
    ids = [f"item-{n}" for n in (4, 0, 6, 2, 5, 1, 3)]
    for item_id in ids:
        api.put(ACME, item_id, json.dumps({"n": item_id}))
    api.put(ACME_CORP, "item-9", "9")

    # WHEN acme follows `next` with pages of 3
    first = api.list_page(ACME, limit="3")
    second = api.list_page(ACME, limit="3", next=first.body["next"])
    third = api.list_page(ACME, limit="3", next=second.body["next"])

    # THEN it sees exactly its seven items, in id order, and the last page says there is no more
    pages = [first, second, third]
    assert [len(page.body["items"]) for page in pages] == [3, 3, 1]
    listed = [item for page in pages for item in page.body["items"]]
    assert listed == [{"id": item_id, "value": {"n": item_id}} for item_id in sorted(ids)]
    assert third.body["next"] is None


def test_listing_defaults_to_25_items_per_page(api: TenantApi) -> None:
    for n in range(27):
        api.put(ACME, f"i{n:02d}", str(n))
    first = api.send("list_items", ACME, query={})
    assert len(first.body["items"]) == 25
    assert first.body["next"] is not None
    assert len(api.list_page(ACME, next=first.body["next"]).body["items"]) == 2


def test_an_empty_listing(api: TenantApi) -> None:
    answer = api.list_page(ACME)
    assert (answer.status, answer.body) == (200, {"items": [], "next": None})


def test_a_next_token_of_another_tenant_is_rejected(api: TenantApi) -> None:
    # GIVEN acme holds a `next` token from its own listing
    for n in range(3):
        api.put(ACME, f"a{n}", "0")
        api.put(ACME_CORP, f"a{n}", "1")
    token = api.list_page(ACME, limit="1").body["next"]

    # WHEN acme-corp (whose id starts with "acme") presents it
    answer = api.list_page(ACME_CORP, limit="1", next=token)

    # THEN it is refused with a message saying what is wrong
    assert answer.status == 400
    assert "issued to another tenant" in answer.body["message"]


def test_a_forged_token_still_lists_only_the_callers_partition(api: TenantApi) -> None:
    # GIVEN acme-corp's items, and a token acme forges with its own binding to start after "a"
    api.put(ACME_CORP, "b", "1")
    api.put(ACME, "c", "2")
    forged = tenant_api.encode_page_token("acme", "a")

    # WHEN acme lists with it
    answer = api.list_page(ACME, next=forged)

    # THEN only acme's own items come back
    assert answer.body == {"items": [{"id": "c", "value": 2}], "next": None}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "", "1.5", "9" * 30])
def test_a_bad_limit_is_400(api: TenantApi, limit: str) -> None:
    answer = api.list_page(ACME, limit=limit)
    assert answer.status == 400
    assert "'limit'" in answer.body["message"]
    assert "1 to 100" in answer.body["message"]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "%%%",
        base64.urlsafe_b64encode(b"[1, 2]").decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"v": 2, "t": "x", "a": "b"}').decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"v": 1, "t": "x", "a": "bad id!"}').decode().rstrip("="),
        "QQ",  # base64 of a non-JSON byte
        "A" * 500,
    ],
)
def test_a_malformed_next_is_400(api: TenantApi, token: str) -> None:
    answer = api.list_page(ACME, next=token)
    assert answer.status == 400
    assert "'next'" in answer.body["message"]


# ---------------------------------------------------------------------------------------------------------
# 400 on bad input


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"a": 1', "not valid JSON"),
        ("{'a': 1}", "not valid JSON"),
        ("NaN", "NaN is not a JSON value"),
        ('{"x": -Infinity}', "-Infinity is not a JSON value"),
        ("[1] [2]", "not valid JSON"),
        ("", "body is empty"),
    ],
)
def test_a_body_that_is_not_one_json_value_is_400(api: TenantApi, body: str, problem: str) -> None:
    answer = api.put(ACME, "x", body)
    assert answer.status == 400
    assert problem in answer.body["message"]
    assert api.get(ACME, "x").status == 404


def test_a_missing_body_is_400(api: TenantApi) -> None:
    event = api_event("put_item", ACME)
    event["body"] = None
    answer = api.call(event)
    assert answer.status == 400
    assert "body is empty" in answer.body["message"]


def json_string_of_bytes(size: int, char: str = "x") -> str:
    """A JSON string document of exactly ``size`` bytes in UTF-8 (``char`` is one or two bytes)."""
    width = len(char.encode())
    assert (size - 2) % width == 0
    return '"' + char * ((size - 2) // width) + '"'


def test_the_body_limit_is_64_kib_measured_in_bytes(api: TenantApi) -> None:
    # GIVEN documents of exactly 65,536 bytes and of 65,538 bytes made of two-byte characters
    at_limit = json_string_of_bytes(65536)
    over_in_bytes = json_string_of_bytes(65538, "é")
    assert len(over_in_bytes) < 65536  # fewer characters than the limit, more bytes

    # WHEN both are put
    accepted = api.put(ACME, "big", at_limit)
    refused = api.put(ACME, "bigger", over_in_bytes)

    # THEN the first is stored and the second refused with its size
    assert accepted.status == 201
    assert refused.status == 400
    assert refused.body["message"] == (
        "the request body is 65538 bytes: items are limited to 65536 bytes of JSON"
    )


def test_the_limit_applies_to_the_decoded_base64_body(api: TenantApi) -> None:
    # GIVEN a 60,000-byte document, base64-encoded to 80,000 characters
    document = json_string_of_bytes(60000)
    # WHEN it is put
    answer = api.send("put_item", ACME, item_id="b64", body=document, base64_body=True)
    # THEN it is accepted and stored decoded
    assert answer.status == 201
    assert api.get(ACME, "b64").body == {"id": "b64", "value": json.loads(document)}


def test_a_body_that_is_not_base64_or_not_utf8_is_400(api: TenantApi) -> None:
    bad_base64 = api_event("put_item_base64", ACME)
    bad_base64["body"] = "!!!not-base64!!!"
    not_utf8 = api_event("put_item_base64", ACME)
    not_utf8["body"] = base64.b64encode(b'"\xff\xfe"').decode()

    assert api.call(bad_base64).status == 400
    answer = api.call(not_utf8)
    assert answer.status == 400
    assert "not UTF-8" in answer.body["message"]


@pytest.mark.parametrize("item_id", ["has space", "x" * 129, "a:b", "ü", "a%2Fb", "(x)", "a+b"])
def test_a_bad_item_id_is_400_on_every_item_route(api: TenantApi, item_id: str) -> None:
    for name in ("put_item", "get_item", "delete_item"):
        answer = api.send(name, ACME, item_id=item_id, body="1" if name == "put_item" else None)
        assert answer.status == 400, name
        assert "A-Z a-z 0-9 . _ ~ -" in answer.body["message"]


def test_the_longest_item_id_and_every_allowed_character_work(api: TenantApi) -> None:
    for item_id in ["A" * 128, "Az09._~-"]:
        assert api.put(ACME, item_id, "0").status == 201
        assert api.get(ACME, item_id).status == 200


# ---------------------------------------------------------------------------------------------------------
# 404 for unknown routes


def test_an_unknown_route_is_404_listing_the_routes(api: TenantApi) -> None:
    answer = api.send("unknown_route", ACME)
    assert answer.status == 404
    assert answer.body["message"].startswith('no route "GET /admin/tenants": this API serves GET /tenant')


@pytest.mark.parametrize(
    ("method", "path"), [("PATCH", "/items/x"), ("GET", "/items/a/b"), ("POST", "/tenant")]
)
def test_other_methods_and_paths_are_404(api: TenantApi, method: str, path: str) -> None:
    event = api_event("unknown_route", ACME)
    event["httpMethod"] = method
    event["path"] = path
    answer = api.call(event)
    assert answer.status == 404
    assert "no route" in answer.body["message"]


# ---------------------------------------------------------------------------------------------------------
# A missing or invalid authorizer context (only a misconfigured API can send one)


@pytest.mark.parametrize(
    "broken",
    [
        None,
        {"requestContext": None},
        {},
        {ContextKey.TENANT_ID: None},
        {ContextKey.TENANT_ID: "ACME"},
        {ContextKey.TENANT_ID: "acme*"},
        {ContextKey.TENANT_ID: "acme/../globex"},
        {ContextKey.ISOLATION: "shared"},
        {ContextKey.TABLE: ""},
        {ContextKey.TABLE: "t"},
        {ContextKey.THROTTLE_RATE: "fast"},
        {ContextKey.THROTTLE_BURST: "1.5"},
        {ContextKey.QUOTA_LIMIT: True},
        {ContextKey.QUOTA_PERIOD: "YEAR"},
    ],
)
def test_a_bad_authorizer_context_is_refused_with_500(
    api: TenantApi, broken: dict[str, Any] | None, logs: io.StringIO
) -> None:
    # GIVEN an event whose authorizer context is missing or has a bad value
    event = api_event("get_item", ACME)
    if broken is None:
        del event["requestContext"]["authorizer"]
    elif broken == {"requestContext": None}:
        event["requestContext"] = None
    elif broken == {}:
        event["requestContext"]["authorizer"] = {"principalId": "someone"}
    else:
        event["requestContext"]["authorizer"].update(broken)

    # WHEN it arrives
    answer = api.call(event)

    # THEN nothing is served: a 500 naming the cause and the request id, and an error log line
    assert answer.status == 500
    # (without a request context, Lambda's request id is the one to report)
    request_id = "lambda-req-0001" if event["requestContext"] is None else "req-0001"
    assert answer.body["request_id"] == request_id
    assert "misconfigured" in answer.body["message"]
    assert api.clients.cached_tenants() == []
    errors = [record for record in log_records(logs) if record["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == request_id


# ---------------------------------------------------------------------------------------------------------
# Throttling and unexpected errors


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_dynamodb_throttling_is_503_with_retry_after(api: TenantApi, code: str) -> None:
    # GIVEN DynamoDB throttles acme's next request
    with Stubber(api.clients.client_for("acme")) as stub:
        # (its first call reads the tenant's placement)
        stub.add_client_error("get_item", service_error_code=code, http_status_code=400)
        # WHEN acme puts an item
        answer = api.put(ACME, "x", "1")
    # THEN it is told to come back later
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert "retry" in answer.body["message"]


def test_an_unexpected_error_is_500_with_the_request_id_and_no_traceback(
    api: TenantApi, logs: io.StringIO
) -> None:
    # GIVEN DynamoDB fails acme's next request in a way the API does not expect
    with Stubber(api.clients.client_for("acme")) as stub:
        stub.add_client_error("get_item", service_error_code="InternalServerError", http_status_code=500)
        # WHEN acme reads an item
        answer = api.send("get_item", ACME, item_id="x", request_id="req-boom")

    # THEN it gets a 500 with the request id and nothing of the failure's insides
    assert answer.status == 500
    assert answer.body == {
        "message": "internal error: the request was not completed; report the request id if it persists",
        "request_id": "req-boom",
    }
    # AND the traceback is in the log, tagged with the tenant and the request
    failure = next(record for record in log_records(logs) if record["level"] == "ERROR")
    assert "Traceback" in failure["exception"]
    assert (failure["tenant_id"], failure["request_id"]) == ("acme", "req-boom")


@pytest.mark.parametrize("variable", [Env.TENANT_DATA_ROLE_ARN, Env.PLACEMENT_TABLE])
def test_a_missing_data_setting_is_a_500_that_names_it(
    api: TenantApi, monkeypatch: pytest.MonkeyPatch, logs: io.StringIO, variable: str
) -> None:
    # GIVEN a deployment that forgot the data role's ARN or the placement table's name
    monkeypatch.delenv(variable)
    monkeypatch.setattr(tenant_api, "data_clients", type(api.clients)(session=api.session))
    # WHEN a tenant touches its data
    answer = api.count(ACME)
    # THEN it is a 500 for the caller and the log names the missing variable
    assert answer.status == 500
    assert f"environment variable {variable} is not set" in logs.getvalue()


# ---------------------------------------------------------------------------------------------------------
# Logs and metrics


def test_every_log_line_names_tenant_tier_and_request_and_never_the_body(
    api: TenantApi, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN requests that log (a bad request, a failure) with a secret in their bodies
    secret = "s3cr3t-do-not-log"
    api.put(ACME_CORP, "x", '{"card": "' + secret + '"')
    with Stubber(api.clients.client_for("acme-corp")) as stub:
        stub.add_client_error("put_item", service_error_code="ValidationException", http_status_code=400)
        api.put(ACME_CORP, "y", json.dumps({"card": secret}))

    # WHEN the output is read
    output = logs.getvalue() + capsys.readouterr().out
    records = log_records(logs)

    # THEN every line carries the tenant, tier and request id, and neither the body nor credentials
    assert len(records) >= 2
    for record in records:
        assert (record["tenant_id"], record["tier"], record["request_id"]) == (
            "acme-corp",
            "basic",
            "req-0001",
        )
    assert secret not in output
    assert "SecretAccessKey" not in output
    assert "testing" not in output


def test_each_request_emits_request_and_error_counts_by_tier_and_route(
    api: TenantApi, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN one good request by acme and one failing request by globex
    api.send("get_tenant", ACME)
    with Stubber(api.clients.client_for("globex")) as stub:
        stub.add_client_error("update_item", service_error_code="InternalServerError", http_status_code=500)
        api.count(GLOBEX)

    # WHEN the EMF records are read
    records = metric_records(capsys.readouterr().out)

    # THEN each request has one record, dimensioned by tier and route, counting the request and any error
    assert [(r["tier"], r["route"], r["Requests"], r["Errors"]) for r in records] == [
        ("basic", "GET /tenant", [1.0], [0.0]),
        ("premium", "POST /counter", [1.0], [1.0]),
    ]
    directive = records[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "TenantTiersTest"
    assert directive["Dimensions"] == [["tier", "route", "service"]]
    # AND the tenant id is a property of the record (searchable in Logs Insights), not a dimension
    assert [r["tenant_id"] for r in records] == ["acme", "globex"]


def test_metric_dimension_sets_are_bounded_by_tiers_times_routes_not_tenants(
    api: TenantApi, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN 1,000 tenants spread over three tiers
    tiers = ("basic", "gold", "premium")
    tenants = [TenantSpec(f"tenant-{number}", tier=tiers[number % 3]) for number in range(1000)]
    # WHEN each sends GET /tenant and a request on a path outside the contract
    for tenant in tenants:
        assert api.send("get_tenant", tenant).status == 200
        assert api.send("unknown_route", tenant).status == 404
    # AND a few tenants of every tier call every other route
    for tenant in tenants[:6]:
        api.put(tenant, "item-1", '{"a": 1}')
        api.get(tenant, "item-1")
        api.list_page(tenant)
        api.count(tenant)
        api.delete(tenant, "item-1")
        api.put_file(tenant, "file-1", b"x")
        api.get_file(tenant, "file-1")
        api.list_files(tenant)
        api.upload_url(tenant, "file-2", {"size": 1})
        api.download_url(tenant, "file-1")
        api.delete_file(tenant, "file-1")
    records = metric_records(capsys.readouterr().out)
    assert len(records) == 2 * 1000 + 11 * 6

    # THEN every record has the same dimension names: tier, route (and powertools' service)
    directives = {json.dumps(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"]) for r in records}
    assert directives == {json.dumps([["tier", "route", "service"]])}
    # AND the distinct dimension sets number at most tiers x (routes + "other"), whatever the tenants
    dimension_sets = {(r["tier"], r["route"], r["service"]) for r in records}
    assert len(dimension_sets) <= len(tiers) * (len(ROUTES) + 1)
    assert {route for _, route, _ in dimension_sets} == {f"{m} {p}" for m, p in ROUTES} | {"other"}
    # AND no tenant id is ever a dimension value; each is still on its records as a property
    assert not {value for dimension_set in dimension_sets for value in dimension_set} & {
        tenant.tenant_id for tenant in tenants
    }
    assert {r["tenant_id"] for r in records} == {tenant.tenant_id for tenant in tenants}
