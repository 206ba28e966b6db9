"""Hostile request bodies, headers and item ids: the tenant API answers 2xx or a clear 4xx, never a 5xx."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.tenant_api import MAX_NESTING_DEPTH, nesting_depth
from tests.handlers.tenant_fixtures import ACME, TenantApi, api_event, running_tenant_api


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantApi]:
    with running_tenant_api(monkeypatch) as running:
        yield running


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_2kb_body_of_open_brackets_is_400_saying_it_nests_too_deep(api: TenantApi) -> None:
    # GIVEN the body that used to crash the JSON parser (RecursionError → 500)
    # WHEN it is put, and so is a 64 KiB one
    for body in ("[" * 1000, "[" * 2000, '{"a":' * 13000, "[" * 65536):
        answer = api.put(ACME, "deep", body)
        # THEN each is a 400 naming the nesting limit, and nothing is stored
        assert answer.status == 400
        assert f"more than {MAX_NESTING_DEPTH} levels deep" in answer.body["message"]
    assert api.get(ACME, "deep").status == 404


def test_the_nesting_limit_is_64_levels_of_arrays_and_objects(api: TenantApi) -> None:
    # GIVEN documents nested exactly at the limit, one level over, and a mix of objects and arrays
    at_limit = nested(MAX_NESTING_DEPTH)
    over = nested(MAX_NESTING_DEPTH + 1)
    mixed_over = '{"a":' * 40 + nested(25) + "}" * 40
    # WHEN they are put
    # THEN the first is stored and read back, the others are refused with the reason
    assert api.put(ACME, "at-limit", at_limit).status == 201
    assert api.get(ACME, "at-limit").status == 200
    for body in (over, mixed_over):
        refused = api.put(ACME, "over", body)
        assert refused.status == 400
        assert refused.body["message"] == (
            "the request body nests arrays and objects more than 64 levels deep: "
            "items are limited to 64 levels of nesting"
        )


@pytest.mark.parametrize(
    ("document", "depth"), [("1", 0), ("[]", 1), ('{"a": [1, {}]}', 3), ("[[], [[[]]]]", 4)]
)
def test_nesting_depth_counts_levels_of_arrays_and_objects(document: str, depth: int) -> None:
    assert nesting_depth(json.loads(document)) == depth


@pytest.mark.parametrize("item_id", [".", ".."])
def test_dot_segment_item_ids_are_400_on_every_item_route(api: TenantApi, item_id: str) -> None:
    # GIVEN ids every HTTP client rewrites out of a URL path
    for name in ("put_item", "get_item", "delete_item"):
        # WHEN a raw request still carries one
        answer = api.send(name, ACME, item_id=item_id, body="1" if name == "put_item" else None)
        # THEN it is refused, saying why
        assert answer.status == 400, name
        assert "rewrite" in answer.body["message"]
    # AND ids that merely contain dots still work
    assert api.put(ACME, "...", "1").status == 201
    assert api.put(ACME, ".hidden", "1").status == 201


def test_a_base64_body_with_non_ascii_characters_is_400(api: TenantApi) -> None:
    event = api_event("put_item_base64", ACME)
    event["body"] = "éé=="
    answer = api.call(event)
    assert answer.status == 400
    assert "could not be decoded" in answer.body["message"]


text_or_binary = st.one_of(
    st.text(max_size=300),
    st.text(st.sampled_from('[]{}",:0 \\e-.\n'), max_size=300),
    st.integers(min_value=0, max_value=3000).map(nested),
    st.integers(min_value=0, max_value=3000).map(lambda depth: "[" * depth),
    st.integers(min_value=0, max_value=70_000).map(lambda size: '"' + "x" * size + '"'),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children),
        max_leaves=30,
    ).map(lambda value: json.dumps(value)),
)
bodies = st.one_of(
    st.none(),
    text_or_binary.map(lambda text: (text, False)),
    st.binary(max_size=300).map(lambda raw: (base64.b64encode(raw).decode(), True)),
    text_or_binary.map(lambda text: (text, True)),
    text_or_binary.map(lambda text: (base64.b64encode(text.encode()).decode(), True)),
)
header_names = st.one_of(
    st.sampled_from(["Content-Type", "Content-Encoding", "Content-Length", "Accept", "Accept-Encoding"]),
    st.text(min_size=1, max_size=20),
)
header_values = st.one_of(
    st.sampled_from(
        ["application/json", "text/plain; charset=latin-1", "application/octet-stream", "gzip", "*/*", ""]
    ),
    st.text(max_size=40),
)
# PUT is the route that reads the body: most examples go there.
ROUTES = ["put_item"] * 6 + [
    "get_item",
    "delete_item",
    "list_items",
    "post_counter",
    "get_tenant",
    "unknown_route",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    body=bodies,
    base64_flag=st.sampled_from([None, True, False, "true", 0]),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    item_id=st.one_of(st.none(), st.text(max_size=140), st.sampled_from([".", "..", "ok-id", "A" * 129])),
)
def test_any_body_headers_and_item_id_get_a_2xx_or_a_4xx_never_a_5xx(
    api: TenantApi,
    route: str,
    body: tuple[str, bool] | None,
    base64_flag: Any,
    headers: dict[str, str],
    item_id: str | None,
) -> None:
    # GIVEN any body (text, base64 or not, any size and nesting), any headers and any item id
    event = api_event(route, ACME, item_id=item_id)
    if body is None:
        event["body"] = None
    else:
        event["body"], event["isBase64Encoded"] = body
    if base64_flag is not None:
        event["isBase64Encoded"] = base64_flag
    event["headers"] = headers or None
    event["multiValueHeaders"] = {name: [value] for name, value in headers.items()} or None
    # WHEN the tenant API gets it
    answer = api.call(event)
    # THEN it answers 2xx, or 4xx with a message saying what is wrong
    assert answer.status < 500, answer
    if answer.status >= 400:
        assert answer.body["message"]
