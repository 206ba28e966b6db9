"""The files routes of the tenant API (a powertools Router the tenant API includes).

- ``GET /files?limit=N&next=TOKEN`` → 200 ``{"files": [{"name", "size", "etag", "last_modified"}, ...],
  "next": TOKEN | null}`` in name order; ``limit`` and ``next`` as for ``GET /items``.
- ``PUT /files/{name}`` with the file as the body (at most ``MAX_API_FILE_BYTES`` = 4 MiB) → 201
  ``{"name", "size", "created": true}`` when new, 200 with ``"created": false`` when replaced; 413 when
  larger. The request's ``Content-Type`` is stored and served back.
- ``GET /files/{name}`` → 200 with the bytes and their content type; 303 to a presigned download URL when
  the file is larger than the API can return (uploaded through an upload URL); 404.
- ``DELETE /files/{name}`` → 204, whether or not it existed (the bucket is versioned: earlier versions stay
  recoverable by an operator).
- ``POST /files/{name}/upload-url`` with ``{"size": <bytes>, "content_type": <optional>}`` → 200
  ``{"method": "POST", "url", "fields", "size", "expires_in"}``: a presigned POST; send ``fields`` and then
  the file as multipart/form-data. S3 accepts exactly ``size`` bytes (1 byte to 5 GiB), to this name only.
- ``GET /files/{name}/download-url`` → 200 ``{"method": "GET", "url", "expires_in"}``, or 404.

Why 4 MiB through the API: API Gateway takes at most 10 MB, but a Lambda synchronous invocation takes at
most 6 MB (6,291,456 bytes) of event JSON, and a binary body travels base64-encoded (4/3 as large): 4 MiB
becomes 5,592,408 bytes, leaving room for headers and the request context; the response has the same
6 MB cap. Anything larger goes through presigned URLs, straight between the client and S3.

Why a presigned POST for uploads: its policy carries a ``content-length-range`` condition that S3 itself
enforces, so an upload URL can store exactly the declared size and nothing larger; a presigned PUT would
only bind a length if the client sends the signed ``Content-Length`` header exactly.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from http import HTTPStatus
from typing import Any, Final

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from handlers.api_common import (
    BadRequestError,
    decode_page_token,
    encode_page_token,
    json_response,
    page_limit,
    quoted,
)
from handlers.tenant_files import (
    DEFAULT_CONTENT_TYPE,
    FILE_NAME_RULE,
    MAX_UPLOAD_BYTES,
    PRESIGNED_URL_SECONDS,
    TenantFiles,
    is_valid_file_name,
)

MAX_API_FILE_BYTES: Final = 4 * 1024 * 1024
MAX_CONTENT_TYPE_LENGTH: Final = 255
MAX_UPLOAD_REQUEST_BYTES: Final = 4096


def checked_file_name(name: str) -> str:
    if not is_valid_file_name(name):
        raise BadRequestError(f"file name {quoted(name)} is invalid: use {FILE_NAME_RULE}")
    return name


def file_content(body: str | None, is_base64_encoded: bool) -> bytes:
    """The request body as bytes (API Gateway sends binary bodies base64-encoded)."""
    if not body:
        return b""
    if not is_base64_encoded:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as error:
        raise BadRequestError("the request body is flagged base64 but is not: send the file as is") from error


def content_type_of(value: str | None) -> str:
    if value is None or not value.strip():
        return DEFAULT_CONTENT_TYPE
    value = value.strip()
    if len(value) > MAX_CONTENT_TYPE_LENGTH or not value.isascii() or not value.isprintable():
        raise BadRequestError(
            f"content type {quoted(value)} is invalid: use a printable ASCII media type of at most "
            f"{MAX_CONTENT_TYPE_LENGTH} characters"
        )
    return value


def upload_request(body: str | None, is_base64_encoded: bool) -> tuple[int, str]:
    """``(size, content type)`` from the body of ``POST /files/{name}/upload-url``."""
    usage = f'send {{"size": <bytes, 1 to {MAX_UPLOAD_BYTES}>}} and optionally "content_type": <media type>'
    raw = file_content(body, is_base64_encoded)
    if len(raw) > MAX_UPLOAD_REQUEST_BYTES:
        raise BadRequestError(f"the request body is {len(raw)} bytes: {usage}")
    try:
        request = json.loads(raw) if raw else None
    except (UnicodeDecodeError, ValueError) as error:
        raise BadRequestError(f"the request body is not JSON: {usage}") from error
    if not isinstance(request, dict) or not set(request) <= {"size", "content_type"}:
        raise BadRequestError(f"the request body is not an upload request: {usage}")
    size = request.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_UPLOAD_BYTES:
        raise BadRequestError(f"'size' is {json.dumps(size)[:40]}: {usage}")
    content_type = request.get("content_type")
    if content_type is not None and not isinstance(content_type, str):
        raise BadRequestError(f"'content_type' must be a string: {usage}")
    return size, content_type_of(content_type)


def too_large(size: int) -> Response[str]:
    return json_response(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        {
            "message": f"the file is {size} bytes: PUT /files/{{name}} takes at most {MAX_API_FILE_BYTES} "
            "bytes (4 MiB); for a larger file, POST /files/{name}/upload-url and upload it to S3 directly"
        },
    )


def not_found(name: str) -> Response[str]:
    return json_response(HTTPStatus.NOT_FOUND, {"message": f"file {quoted(name)} does not exist"})


def serialize_response_body(body: object) -> str | bytes:
    """The resolver's serializer, which it applies to every body of a JSON content type that is not a str:
    a file's bytes, served with the content type it was stored with (``application/json`` included), go
    out unchanged (base64 on the wire); anything else is JSON."""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, separators=(",", ":"))


def files_router(
    files_of: Callable[[], TenantFiles],
    file_write: Callable[[], AbstractContextManager[TenantFiles]],
    files_for_upload: Callable[[], TenantFiles],
) -> Router:
    """The files routes. ``files_of()`` gives the caller's files, on its tenant-scoped credentials, for a
    read; ``file_write()`` for a PUT or DELETE: it refuses while the tenant's data is being moved and
    checks after the write that no move began meanwhile (503 with Retry-After); ``files_for_upload()``
    for an upload URL, once the URL's lifetime is on record where a move will wait it out (503 while one
    runs).

    A new Router per call: a Router points at the resolver that last included it, so each tenant API
    instance (the local stack runs one per tenant in tenant isolation mode) needs its own.
    """
    router = Router()  # type: ignore[no-untyped-call]  # powertools leaves Router.__init__ unannotated

    @router.get("/files")
    def list_files() -> Response[str]:
        query = router.current_event.query_string_parameters or {}
        limit = page_limit(query.get("limit"))
        token = query.get("next")
        files = files_of()
        after = (
            None
            if token is None
            else decode_page_token(files.tenant_id, token, route="GET /files", is_valid=is_valid_file_name)
        )
        page = files.list(limit, after)
        resume = page.resume_after
        next_token = None if resume is None else encode_page_token(files.tenant_id, resume)
        return json_response(HTTPStatus.OK, {"files": [f.as_json() for f in page.files], "next": next_token})

    @router.put("/files/<name>")
    def put_file(name: str) -> Response[str]:
        checked_file_name(name)
        event = router.current_event
        content = file_content(event.body, bool(event.is_base64_encoded))
        if len(content) > MAX_API_FILE_BYTES:
            return too_large(len(content))
        content_type = content_type_of(event.headers.get("content-type") or event.headers.get("Content-Type"))
        with file_write() as files:
            created = files.put(name, content, content_type)
        return json_response(
            HTTPStatus.CREATED if created else HTTPStatus.OK,
            {"name": name, "size": len(content), "created": created},
        )

    @router.get("/files/<name>")
    def get_file(name: str) -> Response[Any]:
        checked_file_name(name)
        files = files_of()
        stored = files.get(name, MAX_API_FILE_BYTES)
        if stored is None:
            return not_found(name)
        if stored.content is None:
            url = files.download_url(name)
            return json_response(
                HTTPStatus.SEE_OTHER,
                {
                    "message": f"the file is {stored.info.size} bytes, more than the API returns "
                    f"({MAX_API_FILE_BYTES}): download it from S3 at 'url'",
                    "url": url,
                    "expires_in": PRESIGNED_URL_SECONDS,
                },
                headers={"Location": url},
            )
        return Response(status_code=HTTPStatus.OK, content_type=stored.content_type, body=stored.content)

    @router.delete("/files/<name>")
    def delete_file(name: str) -> Response[str]:
        checked_file_name(name)
        with file_write() as files:
            files.delete(name)
        return Response(status_code=HTTPStatus.NO_CONTENT, body="")

    @router.post("/files/<name>/upload-url")
    def upload_url(name: str) -> Response[str]:
        checked_file_name(name)
        event = router.current_event
        size, content_type = upload_request(event.body, bool(event.is_base64_encoded))
        form = files_for_upload().upload_form(name, size, content_type)
        return json_response(
            HTTPStatus.OK,
            {
                "method": "POST",
                "url": form.url,
                "fields": dict(form.fields),
                "size": size,
                "expires_in": PRESIGNED_URL_SECONDS,
            },
        )

    @router.get("/files/<name>/download-url")
    def download_url(name: str) -> Response[str]:
        checked_file_name(name)
        files = files_of()
        if not files.exists(name):
            return not_found(name)
        url = files.download_url(name)
        return json_response(
            HTTPStatus.OK, {"method": "GET", "url": url, "expires_in": PRESIGNED_URL_SECONDS}
        )

    return router
