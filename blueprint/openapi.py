"""The REST API as an OpenAPI 3 document, from which API Gateway builds every route at once.

A pure function of plain strings (the two Lambdas' invoke ARNs) and settings: the program
renders it once the ARNs are known and hands it to the RestApi as its ``body``; the tests
read the very same document. The routes come only from ``handlers.contract.ROUTES``.

What API Gateway makes of it (PutRestApi, mode ``overwrite``):

- one method per route, on a resource tree built from the paths; any method or resource that
  is not in the document is deleted, so a route removed from the contract is gone from the API
  before the next deployment snapshots it;
- the TOKEN authorizer from the ``securitySchemes`` entry carrying ``x-amazon-apigateway-authorizer``
  (its identity source is the header the scheme names), on every method that lists it;
- ``apiKeyRequired`` on every method that lists the plain ``apiKey`` scheme; with the API key source
  AUTHORIZER the key is the authorizer's ``usageIdentifierKey``, never a header from the caller;
- a Lambda proxy integration per method (``x-amazon-apigateway-integration``).
"""

from __future__ import annotations

from typing import Any, Final

from handlers.contract import ROUTES, TENANT_ID_INVOKE_HEADER, ContextKey

OpenApiDocument = dict[str, Any]

OPENAPI_VERSION: Final = "3.0.1"
API_VERSION: Final = "1.0"

AUTHORIZER_NAME: Final = "cognito-id-token"
"""The security scheme of the TOKEN authorizer; API Gateway names the authorizer after it."""
AUTHORIZATION_HEADER: Final = "Authorization"
IDENTITY_SOURCE: Final = f"method.request.header.{AUTHORIZATION_HEADER}"
"""Where API Gateway reads the token a TOKEN authorizer receives (the scheme's header)."""

API_KEY_SCHEME: Final = "api_key"
"""The scheme API Gateway reads as "API key required" (its documented name and shape)."""
API_KEY_HEADER: Final = "x-api-key"
API_KEY_SOURCE: Final = "AUTHORIZER"

BINARY_MEDIA_TYPES: Final = ("*/*",)
"""Every body reaches the tenant API base64-encoded and its answers go back as sent: files are bytes,
and API Gateway would otherwise pass a binary body through as (mangled) UTF-8 text."""

TENANT_ID_HEADER: Final = TENANT_ID_INVOKE_HEADER
"""The header Lambda tenant isolation mode takes the invocation's tenant from."""
TENANT_ID_MAPPING: Final = {
    f"integration.request.header.{TENANT_ID_HEADER}": f"context.authorizer.{ContextKey.TENANT_ID}"
}
"""Integration request parameters that pass the verified tenant (never a caller's header) to Lambda."""

OPERATION_METHODS: Final = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
"""The keys of an OpenAPI path item that are operations (the others are its summary, parameters, ...)."""

EXTENSION_API_KEY_SOURCE: Final = "x-amazon-apigateway-api-key-source"
EXTENSION_AUTHORIZER: Final = "x-amazon-apigateway-authorizer"
EXTENSION_BINARY_MEDIA_TYPES: Final = "x-amazon-apigateway-binary-media-types"
EXTENSION_AUTHTYPE: Final = "x-amazon-apigateway-authtype"
EXTENSION_INTEGRATION: Final = "x-amazon-apigateway-integration"


def rest_api_document(
    *,
    title: str,
    authorizer_uri: str,
    tenant_api_uri: str,
    authorizer_cache_ttl_seconds: int,
    forward_tenant_id: bool = False,
) -> OpenApiDocument:
    """The whole API: every route of the contract behind the authorizer, each requiring an API key.

    ``authorizer_uri`` and ``tenant_api_uri`` are the Lambdas' invoke ARNs
    (``arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION_ARN/invocations``).
    ``forward_tenant_id`` maps the authorizer's tenant id to the ``X-Amz-Tenant-Id`` header of
    every integration, as Lambda tenant isolation mode requires.
    """
    paths: dict[str, dict[str, Any]] = {}
    for method, path in ROUTES:
        integration: dict[str, Any] = {
            "type": "aws_proxy",
            "httpMethod": "POST",  # Lambda is always invoked with POST, whatever the route's method
            "uri": tenant_api_uri,
            "passthroughBehavior": "when_no_match",
        }
        if forward_tenant_id:
            integration["requestParameters"] = dict(TENANT_ID_MAPPING)
        operation: dict[str, Any] = {
            # OpenAPI requires one response; with a Lambda proxy, API Gateway passes the function's
            # status and body through whatever is declared here ("200", as API Gateway's exports write it).
            "responses": {"200": {"description": "The tenant API's response, proxied as is (any status)"}},
            # API Gateway applies every scheme an operation lists (it does not read the list as
            # OpenAPI's "any one of"): the authorizer runs, and the method requires an API key.
            "security": [{AUTHORIZER_NAME: []}, {API_KEY_SCHEME: []}],
            EXTENSION_INTEGRATION: integration,
        }
        parameters = path_parameters(path)
        if parameters:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in parameters
            ]
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": API_VERSION},
        EXTENSION_API_KEY_SOURCE: API_KEY_SOURCE,
        EXTENSION_BINARY_MEDIA_TYPES: list(BINARY_MEDIA_TYPES),
        "paths": paths,
        "components": {
            "securitySchemes": {
                AUTHORIZER_NAME: {
                    "type": "apiKey",
                    "name": AUTHORIZATION_HEADER,
                    "in": "header",
                    EXTENSION_AUTHTYPE: "custom",
                    EXTENSION_AUTHORIZER: {
                        "type": "token",
                        "authorizerUri": authorizer_uri,
                        "authorizerResultTtlInSeconds": authorizer_cache_ttl_seconds,
                    },
                },
                API_KEY_SCHEME: {"type": "apiKey", "name": API_KEY_HEADER, "in": "header"},
            }
        },
    }


def path_parameters(path: str) -> list[str]:
    """``/items/{id}`` -> ``["id"]``: the templated segments of a resource path, in order."""
    return [segment[1:-1] for segment in path.split("/") if segment.startswith("{") and segment.endswith("}")]


def routes_of(document: OpenApiDocument) -> set[tuple[str, str]]:
    """The (METHOD, path) pairs a document defines, as ``handlers.contract.ROUTES`` spells them."""
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in OPERATION_METHODS
    }
