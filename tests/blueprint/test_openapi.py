"""The API's OpenAPI document: the contract's routes, each behind the authorizer with an API key required.

The extension names and shapes follow API Gateway's developer guide ("OpenAPI extensions to
API Gateway": x-amazon-apigateway-api-key-source, -authorizer, -authtype, -integration, and
"Configure a method to use API keys with an OpenAPI definition" for the ``api_key`` scheme).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from openapi_spec_validator import validate

from blueprint import openapi
from handlers.contract import ROUTES

REGION = "us-east-1"
FUNCTIONS = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions"
AUTHORIZER_URI = f"{FUNCTIONS}/arn:aws:lambda:{REGION}:123456789012:function:stack-authorizer/invocations"
TENANT_API_URI = f"{FUNCTIONS}/arn:aws:lambda:{REGION}:123456789012:function:stack-tenant-api/invocations"


def document(**overrides: Any) -> openapi.OpenApiDocument:
    arguments: dict[str, Any] = {
        "title": "tenant-tiers-test-api",
        "authorizer_uri": AUTHORIZER_URI,
        "tenant_api_uri": TENANT_API_URI,
        "authorizer_cache_ttl_seconds": 300,
        **overrides,
    }
    return openapi.rest_api_document(**arguments)


def operations(definition: openapi.OpenApiDocument) -> list[dict[str, Any]]:
    return [
        operation
        for path_item in definition["paths"].values()
        for method, operation in path_item.items()
        if method in openapi.OPERATION_METHODS
    ]


def test_the_document_is_valid_openapi_3() -> None:
    # GIVEN the document the program hands to PutRestApi WHEN an OpenAPI 3 validator reads it THEN it passes
    definition = document()
    assert definition["openapi"].startswith("3.0.")
    validate(definition)  # raises on any structural error


def test_the_routes_are_exactly_the_contracts() -> None:
    assert openapi.routes_of(document()) == set(ROUTES)
    assert len(operations(document())) == len(ROUTES)


def test_every_operation_runs_the_authorizer_and_requires_an_api_key() -> None:
    schemes = document()["components"]["securitySchemes"]
    for operation in operations(document()):
        named = {name for requirement in operation["security"] for name in requirement}
        assert named == {openapi.AUTHORIZER_NAME, openapi.API_KEY_SCHEME}
        assert named <= set(schemes), "an operation names a scheme the document does not define"


def test_the_api_takes_keys_from_the_authorizer() -> None:
    assert document()["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
    # The scheme that makes API Gateway set apiKeyRequired: its documented name and shape.
    assert document()["components"]["securitySchemes"]["api_key"] == {
        "type": "apiKey",
        "name": "x-api-key",
        "in": "header",
    }


def test_the_authorizer_is_a_token_authorizer_on_the_authorization_header_with_the_cache_ttl() -> None:
    scheme = document(authorizer_cache_ttl_seconds=0)["components"]["securitySchemes"]["cognito-id-token"]
    # A TOKEN authorizer's identity source is the header the scheme names ("in" must be header).
    assert {key: scheme[key] for key in ("type", "name", "in")} == {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
    }
    assert scheme["x-amazon-apigateway-authtype"] == "custom"
    assert scheme["x-amazon-apigateway-authorizer"] == {
        "type": "token",
        "authorizerUri": AUTHORIZER_URI,
        "authorizerResultTtlInSeconds": 0,
    }
    assert openapi.IDENTITY_SOURCE == "method.request.header.Authorization"


def test_every_operation_is_a_lambda_proxy_to_the_tenant_api() -> None:
    for operation in operations(document()):
        assert operation["x-amazon-apigateway-integration"] == {
            "type": "aws_proxy",
            "httpMethod": "POST",
            "uri": TENANT_API_URI,
            "passthroughBehavior": "when_no_match",
        }


def test_path_parameters_are_declared_where_the_path_has_them() -> None:
    for path, path_item in document()["paths"].items():
        for operation in path_item.values():
            declared = [parameter["name"] for parameter in operation.get("parameters", [])]
            assert declared == openapi.path_parameters(path)
            assert all(parameter["in"] == "path" for parameter in operation.get("parameters", []))


def test_the_tenant_id_reaches_the_integration_only_when_asked_and_only_from_the_authorizer() -> None:
    # GIVEN Lambda tenant isolation off (the default) THEN no integration sets X-Amz-Tenant-Id
    assert all(
        "requestParameters" not in operation["x-amazon-apigateway-integration"]
        for operation in operations(document())
    )
    # GIVEN it on THEN every integration maps the header from the authorizer's context, never the caller's
    forwarded = document(forward_tenant_id=True)
    validate(forwarded)
    for operation in operations(forwarded):
        assert operation["x-amazon-apigateway-integration"]["requestParameters"] == {
            "integration.request.header.X-Amz-Tenant-Id": "context.authorizer.tenant_id"
        }


def test_a_route_removed_from_the_contract_is_gone_from_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    before = document()
    remaining = tuple(route for route in ROUTES if route != ("DELETE", "/items/{id}"))
    monkeypatch.setattr(openapi, "ROUTES", remaining)
    after = document()
    assert openapi.routes_of(after) == set(remaining)
    assert "delete" not in after["paths"]["/items/{id}"]
    assert json.dumps(after, sort_keys=True) != json.dumps(before, sort_keys=True)


# API Gateway's quotas for a REST API ("Quotas for configuring and running a REST API"): mocks and
# moto accept any size, AWS refuses the import past these.
MAX_DEFINITION_BYTES = 2 * 1024 * 1024  # PutRestApi: maximum size of the API definition file
MAX_RESOURCES_PER_API = 300
MAX_AUTHORIZERS_PER_API = 10
LONGEST_INVOKE_ARN = f"{FUNCTIONS}/arn:aws:lambda:{REGION}:123456789012:function:{'f' * 64}/invocations"


def test_the_contracts_api_is_within_api_gateways_quotas() -> None:
    # GIVEN the longest invoke ARNs a function name allows and tenant isolation on (the biggest document)
    definition = document(
        authorizer_uri=LONGEST_INVOKE_ARN, tenant_api_uri=LONGEST_INVOKE_ARN, forward_tenant_id=True
    )
    # THEN PutRestApi takes it: under the definition size limit, the resource and authorizer quotas
    assert len(json.dumps(definition).encode()) <= MAX_DEFINITION_BYTES
    resources = {"/"} | {
        "/" + "/".join(path.strip("/").split("/")[:depth])
        for path in definition["paths"]
        for depth in range(1, len(path.strip("/").split("/")) + 1)
    }
    assert len(resources) <= MAX_RESOURCES_PER_API
    authorizers = [
        scheme
        for scheme in definition["components"]["securitySchemes"].values()
        if openapi.EXTENSION_AUTHORIZER in scheme
    ]
    assert 1 <= len(authorizers) <= MAX_AUTHORIZERS_PER_API


segments = st.from_regex(r"[a-z]{1,8}", fullmatch=True)
templated = st.from_regex(r"\{[a-z]{1,8}\}", fullmatch=True)
# A path names each of its parameters once (API Gateway and OpenAPI refuse /{a}/{a}).
paths = st.lists(
    st.one_of(segments, templated), min_size=1, max_size=4, unique_by=lambda part: part.strip("{}")
).map(lambda parts: "/" + "/".join(parts))
route_sets = st.sets(st.tuples(st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH"]), paths), max_size=8)


@settings(deadline=None)
@given(route_sets)
def test_any_route_set_gives_a_valid_document_with_exactly_those_routes(routes: set[tuple[str, str]]) -> None:
    # GIVEN any contract (paths with literal and templated segments) WHEN the document is built
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(openapi, "ROUTES", tuple(sorted(routes)))
        definition = document()
    # THEN it is valid OpenAPI 3 and defines those routes and no others, each authorized and keyed
    validate(definition)
    assert openapi.routes_of(definition) == routes
    assert all(len(operation["security"]) == 2 for operation in operations(definition))


@mock_aws
def test_an_overwrite_import_replaces_the_whole_route_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an API imported from the document (moto's emulation of PutRestApi, warnings failing it)
    client = boto3.client("apigateway", region_name=REGION)
    api_id = client.create_rest_api(name="tenant-tiers-test-api")["id"]

    def put(definition: openapi.OpenApiDocument) -> set[tuple[str, str]]:
        client.put_rest_api(
            restApiId=api_id, mode="overwrite", failOnWarnings=True, body=json.dumps(definition).encode()
        )
        resources = client.get_resources(restApiId=api_id)["items"]
        return {(method, item["path"]) for item in resources for method in item.get("resourceMethods", {})}

    assert put(document()) == set(ROUTES)
    # WHEN the document loses a route and is put again in overwrite mode
    remaining = tuple(route for route in ROUTES if route != ("POST", "/counter"))
    monkeypatch.setattr(openapi, "ROUTES", remaining)
    # THEN the API has exactly the remaining routes: nothing of the old definition survives
    assert put(document()) == set(remaining)
