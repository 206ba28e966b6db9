"""The files API of the tenant API, on moto S3 and STS: routes, limits, names and presigned URLs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from handlers.files_api import MAX_API_FILE_BYTES
from handlers.tenant_data import CREDENTIAL_REFRESH_MARGIN_SECONDS
from handlers.tenant_files import MAX_UPLOAD_BYTES, PRESIGNED_URL_SECONDS
from tests.handlers.tenant_fixtures import (
    ACME,
    ACME_CORP,
    GLOBEX,
    RawAnswer,
    TenantApi,
    api_event,
    bucket_keys,
    load_event,
    running_tenant_api,
)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantApi]:
    with running_tenant_api(monkeypatch) as running:
        yield running


BINARY = bytes(range(256)) * 3


def test_a_file_round_trips_byte_for_byte_with_its_content_type(api: TenantApi) -> None:
    # GIVEN a binary file PUT through the API
    created = api.put_file(ACME, "photo.raw", BINARY, "image/x-raw")
    # WHEN it is read back, then replaced
    read = api.get_file(ACME, "photo.raw")
    replaced = api.put_file(ACME, "photo.raw", b"v2")
    # THEN it was new, comes back exactly, and the second PUT reports a replacement
    assert (created.status, created.body) == (
        201,
        {"name": "photo.raw", "size": len(BINARY), "created": True},
    )
    assert read.status == 200
    assert read.body == BINARY
    assert read.headers["Content-Type"] == "image/x-raw"
    assert (replaced.status, replaced.body["created"]) == (200, False)
    assert api.get_file(ACME, "photo.raw").body == b"v2"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"signed": true}', "application/json"),
        (b'{"signed": true}', "application/json; charset=utf-8"),
        (b"\xff\xfe not UTF-8, not JSON", "application/json"),
    ],
)
def test_a_file_stored_as_json_comes_back_as_stored(
    api: TenantApi, content: bytes, content_type: str
) -> None:
    # GIVEN a file whose content type is JSON (the resolver would serialize such a body)
    assert api.put_file(ACME, "contract.json", content, content_type).status == 201
    # WHEN it is read back THEN it is the stored bytes, with the stored content type, not a 500
    read = api.get_file(ACME, "contract.json")
    assert read.status == 200
    assert read.body == content
    assert read.headers["Content-Type"] == content_type


def test_the_fixture_event_stores_the_file_under_the_authorizers_tenant_not_the_client_header(
    api: TenantApi,
) -> None:
    # GIVEN the PUT fixture: authorizer tenant acme-corp, a forged X-Tenant-Id: globex header
    event = load_event("put_file")
    assert event["headers"]["X-Tenant-Id"] == "globex"
    answer = api.call(event)
    # THEN the file lands under acme-corp's prefix in the pooled bucket, nowhere else
    assert answer.status == 201
    assert bucket_keys(ACME_CORP.bucket, api.session.client("s3")) == ["acme-corp/report.pdf"]
    assert bucket_keys(GLOBEX.bucket, api.session.client("s3")) == []


def test_delete_answers_204_and_the_file_is_gone(api: TenantApi) -> None:
    api.put_file(GLOBEX, "notes.txt", b"hello")
    assert api.delete_file(GLOBEX, "notes.txt").status == 204
    assert api.delete_file(GLOBEX, "notes.txt").status == 204  # idempotent
    gone = api.get_file(GLOBEX, "notes.txt")
    assert gone.status == 404
    assert gone.json() == {"message": 'file "notes.txt" does not exist'}


def test_listing_pages_through_the_tenants_files_in_name_order(api: TenantApi) -> None:
    # GIVEN five files of acme and files of tenants whose ids share its prefix
    names = ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]
    for name in reversed(names):
        api.put_file(ACME, name, name.encode())
    api.put_file(ACME_CORP, "a.txt", b"other")
    # WHEN acme lists two at a time
    files = api.list_files(ACME, limit=2)
    # THEN it sees exactly its five files, with sizes, once each and in order
    assert [f["name"] for f in files] == names
    assert {f["size"] for f in files} == {5}
    assert [f["name"] for f in api.list_files(ACME_CORP)] == ["a.txt"]


def test_a_listing_token_of_another_tenant_is_refused(api: TenantApi) -> None:
    for name in ("a", "b"):
        api.put_file(ACME, name, b"x")
    page = api.send("list_files", ACME, query={"limit": "1"})
    token = page.body["next"]
    assert token is not None
    refused = api.send("list_files", ACME_CORP, query={"limit": "1", "next": token})
    assert refused.status == 400
    assert "issued to another tenant" in refused.body["message"]


@pytest.mark.parametrize(
    "name",
    [".", "..", "a/b", "a\x00b", "a\x1fb", "tab\tname", "x" * 256, "caf\u00e9", "sp ace", "a?b", "%2e%2e"],
)
def test_unsafe_file_names_get_400(api: TenantApi, name: str) -> None:
    # WHEN any route is called with the name
    answers = [
        api.put_file(ACME, name, b"x"),
        api.send("get_file", ACME, file_name=name),
        api.delete_file(ACME, name),
        api.download_url(ACME, name),
        api.upload_url(ACME, name, {"size": 1}),
    ]
    # THEN every one is a 400 naming the rule, and nothing was stored
    for answer in answers:
        assert answer.status == 400, answer
        assert "1-255 characters from A-Z a-z 0-9 . _ ~ -" in answer.body["message"]
    assert bucket_keys(ACME.bucket, api.session.client("s3")) == []


def test_the_longest_safe_name_and_dotted_names_are_accepted(api: TenantApi) -> None:
    for name in ("x" * 255, ".hidden", "...", "a..b", "~v1_final-2.tar.gz"):
        assert api.put_file(ACME, name, b"x").status == 201, name
        assert api.get_file(ACME, name).body == b"x"


def test_a_file_over_the_api_limit_gets_413_and_one_at_the_limit_is_stored(api: TenantApi) -> None:
    too_large = api.put_file(ACME, "big.bin", b"\0" * (MAX_API_FILE_BYTES + 1))
    assert too_large.status == 413
    assert "upload-url" in too_large.body["message"]
    assert bucket_keys(ACME.bucket, api.session.client("s3")) == []
    assert api.put_file(ACME, "max.bin", b"\1" * MAX_API_FILE_BYTES).status == 201
    assert len(api.get_file(ACME, "max.bin").body) == MAX_API_FILE_BYTES


def test_the_api_limit_keeps_the_lambda_event_under_6_mb() -> None:
    # A Lambda synchronous invocation takes at most 6,291,456 bytes of event JSON; the body travels
    # base64-encoded. The rest of the event (headers up to API Gateway's 10,240 bytes, request context)
    # must still fit in what is left.
    encoded = len(base64.b64encode(b"\0" * MAX_API_FILE_BYTES))
    assert encoded + 64 * 1024 < 6_291_456


def test_presigned_urls_expire_before_the_credentials_that_sign_them() -> None:
    assert PRESIGNED_URL_SECONDS <= CREDENTIAL_REFRESH_MARGIN_SECONDS


def upload_policy(answer: dict[str, Any]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(answer["fields"]["policy"]))
    return policy


def test_an_upload_url_stores_exactly_the_declared_size_under_the_tenants_own_key(api: TenantApi) -> None:
    # WHEN acme asks to upload 10 bytes of text
    answer = api.upload_url(ACME, "big.log", {"size": 10, "content_type": "text/plain"})
    # THEN it gets a presigned POST for its own key, bound to exactly 10 bytes and that type
    assert answer.status == 200
    assert answer.body["method"] == "POST"
    assert answer.body["expires_in"] == PRESIGNED_URL_SECONDS
    fields = answer.body["fields"]
    assert fields["key"] == "acme/big.log"
    assert "x-amz-security-token" in fields  # signed by the tenant's STS session, not the function's role
    conditions = upload_policy(answer.body)["conditions"]
    assert ["content-length-range", 10, 10] in conditions
    assert {"bucket": ACME.bucket} in conditions
    assert {"key": "acme/big.log"} in conditions
    # AND the form uploads to S3, and a download URL gives the bytes back
    upload = requests.post(answer.body["url"], data=fields, files={"file": ("big.log", b"0123456789")})
    assert upload.status_code in (200, 201, 204), upload.text
    download = api.download_url(ACME, "big.log")
    assert download.status == 200
    fetched = requests.get(download.body["url"])
    assert fetched.content == b"0123456789"
    assert "attachment" in fetched.headers.get("Content-Disposition", "")
    assert api.get_file(ACME, "big.log").body == b"0123456789"


def test_a_download_url_is_signed_for_the_tenants_own_key_and_expires_soon(api: TenantApi) -> None:
    api.put_file(GLOBEX, "report.pdf", b"%PDF")
    answer = api.download_url(GLOBEX, "report.pdf")
    url = urlsplit(answer.body["url"])
    query = parse_qs(url.query)
    assert url.path.endswith("/globex/report.pdf")
    assert GLOBEX.bucket in answer.body["url"]
    assert query["X-Amz-Expires"] == [str(PRESIGNED_URL_SECONDS)]
    assert "X-Amz-Security-Token" in query
    assert api.download_url(GLOBEX, "missing.pdf").status == 404


@pytest.mark.parametrize(
    "request_body",
    [None, {}, {"size": 0}, {"size": -1}, {"size": MAX_UPLOAD_BYTES + 1}, {"size": "10"}, {"size": True},
     {"size": 1.5}, {"size": 1, "extra": 1}, {"size": 1, "content_type": 5},
     {"size": 1, "content_type": "a\nb"}, [1]],
)  # fmt: skip
def test_an_upload_request_without_a_valid_size_gets_400(api: TenantApi, request_body: Any) -> None:
    event = api_event("upload_url", ACME, file_name="f.bin")
    event["body"] = None if request_body is None else json.dumps(request_body)
    answer = api.call(event)
    assert answer.status == 400
    # the message shows the expected body
    assert (
        '{"size": <bytes, 1 to 5368709120>}' in answer.body["message"]
        or "content type" in answer.body["message"]
    )


def test_a_file_too_large_for_the_api_is_redirected_to_a_download_url(api: TenantApi) -> None:
    # GIVEN a file uploaded straight to S3, larger than the API returns
    size = MAX_API_FILE_BYTES + 1
    form = api.upload_url(ACME, "huge.bin", {"size": size}).body
    requests.post(form["url"], data=form["fields"], files={"file": ("huge.bin", b"\2" * size)})
    # WHEN it is read through the API
    answer = api.get_file(ACME, "huge.bin")
    # THEN the answer is a redirect to a presigned URL of that file
    assert answer.status == 303
    assert answer.headers["Location"] == answer.json()["url"]
    assert "/acme/huge.bin" in answer.headers["Location"]


def test_the_fixture_events_of_every_files_route_are_served(api: TenantApi) -> None:
    # GIVEN the JSON fixtures of the six routes, sent by acme-corp (the authorizer's tenant in them)
    answers = {
        name: RawAnswer.of(api.raw_call(load_event(name)))
        for name in ("put_file", "get_file", "list_files", "download_url", "upload_url", "delete_file")
    }
    assert {name: answer.status for name, answer in answers.items()} == {
        "put_file": 201,
        "get_file": 200,
        "list_files": 200,
        "download_url": 200,
        "upload_url": 200,
        "delete_file": 204,
    }
    assert [f["name"] for f in answers["list_files"].json()["files"]] == ["report.pdf"]
    assert answers["get_file"].body == base64.b64decode(load_event("put_file")["body"])


def test_a_missing_bucket_in_the_authorizer_context_is_a_500_not_a_guess(api: TenantApi) -> None:
    event = api_event("list_files", ACME)
    del event["requestContext"]["authorizer"]["bucket"]
    answer = api.call(event)
    assert answer.status == 500
    assert "misconfigured" in answer.body["message"]


def test_the_handler_reads_the_content_type_header_in_any_case(api: TenantApi) -> None:
    event = api_event("put_file", ACME, file_name="lower.txt")
    event["headers"] = {"content-type": "text/plain"}
    event["multiValueHeaders"] = {"content-type": ["text/plain"]}
    assert api.call(event).status == 201
    assert api.get_file(ACME, "lower.txt").headers["Content-Type"] == "text/plain"
