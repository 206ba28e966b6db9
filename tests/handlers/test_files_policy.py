"""The data role's S3 statements, judged by the local IAM evaluator (moto enforces no IAM in process).

Every S3 request the files API sends, and every presigned URL it hands out, is mapped to the authorization
requests AWS evaluates (``local.iam.s3``) and judged against the data role's real policy: allowed for the
tenant whose session signed it, denied for every other tenant, prefix-sharing ids included.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.contract import TENANT_ID_MAX_LENGTH, TENANT_ID_PATTERN, TENANT_SESSION_TAG
from local.iam.policy import Request, evaluate_all
from local.iam.s3 import s3_requests
from local.iam.wire import Caller
from tests.handlers.tenant_fixtures import (
    ACCOUNT,
    BUCKETS,
    DATA_ROLE_ARN,
    FILE_TENANTS,
    REGION,
    TenantApi,
    TenantSpec,
    data_policy,
    running_tenant_api,
)

POLICY = data_policy()
tenant_ids = st.from_regex(TENANT_ID_PATTERN, fullmatch=True).filter(lambda value: len(value) <= 32)


def caller(tenant_id: str | None) -> Caller:
    tags = {} if tenant_id is None else {TENANT_SESSION_TAG: tenant_id}
    return Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/data/tenant-{tenant_id}", DATA_ROLE_ARN, tags)


def allowed(requests_: list[Request]) -> bool:
    return bool(requests_) and all(evaluate_all([POLICY], request).value == "Allow" for request in requests_)


def object_call(method: str, bucket: str, key: str, tenant_id: str | None) -> list[Request]:
    return s3_requests(method, f"/{bucket}/{key}", "", {}, caller(tenant_id))


def listing(bucket: str, prefix: str | None, tenant_id: str) -> list[Request]:
    query = "list-type=2" + ("" if prefix is None else f"&prefix={prefix}")
    return s3_requests("GET", f"/{bucket}", query, {}, caller(tenant_id))


# ---------------------------------------------------------------------------------------------------------
# The statements, request by request


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
@pytest.mark.parametrize("tenant", FILE_TENANTS, ids=lambda t: t.tenant_id)
def test_a_tenant_reaches_its_own_objects(method: str, tenant: TenantSpec) -> None:
    key = f"{tenant.tenant_id}/report.pdf"
    assert allowed(object_call(method, tenant.bucket, key, tenant.tenant_id))


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
@pytest.mark.parametrize(
    ("caller_id", "victim_id"),
    [("a", "acme"), ("acme", "a"), ("acme", "acme-corp"), ("acme-corp", "acme"),
     ("acme-silo", "acme-silo-two"), ("acme-silo-two", "acme-silo"), ("acme", "globex"), ("globex", "acme")],
)  # fmt: skip
def test_another_tenants_objects_are_denied_wherever_they_are(
    method: str, caller_id: str, victim_id: str
) -> None:
    victim = next(t for t in FILE_TENANTS if t.tenant_id == victim_id)
    # the victim's key in the victim's bucket, the pooled bucket and the victim's silo bucket (the caller's
    # own silo bucket is all the caller's: no other tenant's file can be there)
    for bucket in {victim.bucket, BUCKETS.pooled, BUCKETS.silo(victim_id)}:
        assert not allowed(object_call(method, bucket, f"{victim_id}/report.pdf", caller_id)), bucket
    # a key that merely starts with the caller's id ("acme-corp/…" for "acme") is not the caller's prefix
    assert not allowed(object_call(method, BUCKETS.pooled, f"{caller_id}-x/report.pdf", caller_id))
    assert not allowed(object_call(method, BUCKETS.pooled, f"{caller_id}report.pdf", caller_id))


def test_listing_the_pooled_bucket_needs_exactly_the_callers_prefix() -> None:
    assert allowed(listing(BUCKETS.pooled, "acme/", "acme"))
    assert allowed(listing(BUCKETS.pooled, "acme/report", "acme"))
    for prefix in (None, "", "acme", "acme-corp/", "a", "a/"):
        assert not allowed(listing(BUCKETS.pooled, prefix, "acme")), prefix


def test_a_silo_tenant_lists_its_own_bucket_only() -> None:
    assert allowed(listing(BUCKETS.silo("globex"), "globex/", "globex"))
    assert allowed(listing(BUCKETS.silo("globex"), None, "globex"))
    assert not allowed(listing(BUCKETS.silo("acme-silo-two"), None, "acme-silo"))
    assert not allowed(listing(BUCKETS.silo("globex"), "globex/", "acme"))


def test_a_session_without_the_tenant_tag_gets_no_file() -> None:
    for method in ("GET", "PUT", "DELETE"):
        assert not allowed(object_call(method, BUCKETS.pooled, "acme/x", None))


def test_old_versions_and_other_buckets_are_out_of_reach() -> None:
    versioned = s3_requests("GET", f"/{BUCKETS.pooled}/acme/x", "versionId=abc", {}, caller("acme"))
    assert not allowed(versioned)
    deleted = s3_requests("DELETE", f"/{BUCKETS.pooled}/acme/x", "versionId=abc", {}, caller("acme"))
    assert not allowed(deleted)
    for bucket in ("another-apps-bucket", f"{BUCKETS.prefix}registry", BUCKETS.pooled + "-copy"):
        assert not allowed(object_call("GET", bucket, "acme/x", "acme"))


def test_a_bucket_of_another_account_with_the_same_name_is_out_of_reach() -> None:
    [request] = object_call("GET", BUCKETS.pooled, "acme/x", "acme")
    elsewhere = Request(
        request.action,
        request.resource,
        request.principal_tags,
        {**request.context, "aws:ResourceAccount": "999999999999"},
        request.principal,
        request.known_keys,
    )
    assert evaluate_all([POLICY], elsewhere).value != "Allow"


@settings(max_examples=60, deadline=None)
@given(one=tenant_ids, other=tenant_ids, suffix=st.sampled_from(["", "-corp", "0", "-a-b"]))
def test_any_two_tenants_are_kept_apart_in_both_kinds_of_bucket(one: str, other: str, suffix: str) -> None:
    # GIVEN two different tenants, often one a prefix of the other
    other = (one + suffix)[:TENANT_ID_MAX_LENGTH] if suffix else other
    if other == one:
        return
    for owner, intruder in ((one, other), (other, one)):
        for bucket in (BUCKETS.pooled, BUCKETS.silo(owner)):
            for method in ("GET", "PUT", "DELETE"):
                assert allowed(object_call(method, bucket, f"{owner}/f", owner))
                assert not allowed(object_call(method, bucket, f"{owner}/f", intruder))
        assert allowed(listing(BUCKETS.pooled, f"{owner}/", owner))
        assert not allowed(listing(BUCKETS.pooled, f"{owner}/", intruder))
        assert not allowed(listing(BUCKETS.silo(owner), None, intruder))


# ---------------------------------------------------------------------------------------------------------
# Every request the files API really sends, and every URL it hands out


@dataclass(frozen=True)
class WireCall:
    access_key: str
    method: str
    path: str
    """``/bucket/key``, whichever addressing style the client used."""
    query: str


def path_style(url: str) -> tuple[str, str]:
    """(``/bucket/key``, query) of an S3 URL, virtual-hosted or path-style."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ".s3." in host or host.endswith(".s3.amazonaws.com"):
        bucket = host.split(".s3.", 1)[0]
        return f"/{bucket}{parts.path}", parts.query
    return parts.path, parts.query


class WireTap:
    """Records the signed S3 requests a boto3 session sends, and which tenant tag each key carries."""

    def __init__(self, session: Any) -> None:
        self.calls: list[WireCall] = []
        self.tag_of_key: dict[str, str] = {}
        self._lock = threading.Lock()
        session.events.register("before-parameter-build.sts.AssumeRole", self._assume_role_params)
        session.events.register("after-call.sts.AssumeRole", self._assume_role_result)
        session.events.register("before-send.s3", self._s3_request)

    def _assume_role_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["tenant_tag"] = {tag["Key"]: tag["Value"] for tag in params["Tags"]}[TENANT_SESSION_TAG]

    def _assume_role_result(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.tag_of_key[parsed["Credentials"]["AccessKeyId"]] = context["tenant_tag"]

    def _s3_request(self, request: Any, **_: Any) -> None:
        authorization = request.headers.get("Authorization", b"")
        authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
        if "Credential=" not in authorization:
            return
        access_key = authorization.split("Credential=", 1)[1].split("/", 1)[0]
        path, query = path_style(request.url)
        with self._lock:
            self.calls.append(WireCall(access_key, request.method, path, query))


@pytest.fixture
def tapped(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TenantApi, WireTap]]:
    session = boto3.session.Session(region_name=REGION)
    tap = WireTap(session)
    with running_tenant_api(monkeypatch, session) as api:
        yield api, tap


def judged_for_owner_only(
    method: str, path: str, query: str, owner: str, form_key: str | None = None
) -> None:
    for tenant in FILE_TENANTS:
        requests_ = s3_requests(method, path, query, {}, caller(tenant.tenant_id), form_key)
        assert allowed(requests_) is (tenant.tenant_id == owner), (tenant.tenant_id, method, path, query)


def test_every_s3_call_and_url_of_the_files_api_is_allowed_for_its_tenant_only(
    tapped: tuple[TenantApi, WireTap],
) -> None:
    api, tap = tapped
    urls: list[tuple[str, str]] = []
    forms: list[tuple[str, dict[str, Any]]] = []
    # GIVEN every files route used by pooled and silo tenants whose ids prefix one another
    for tenant in FILE_TENANTS:
        for name in ("one.txt", "two.txt"):
            assert api.put_file(tenant, name, b"1").status == 201
        api.put_file(tenant, "one.txt", b"again")
        api.get_file(tenant, "one.txt")
        api.get_file(tenant, "missing.txt")
        api.list_files(tenant, limit=1)
        api.delete_file(tenant, "two.txt")
        download = api.download_url(tenant, "one.txt")
        assert api.download_url(tenant, "missing.txt").status == 404
        urls.append((tenant.tenant_id, download.body["url"]))
        forms.append((tenant.tenant_id, api.upload_url(tenant, "up.bin", {"size": 3}).body))

    # WHEN each signed request is judged for its own session's tag and for every other tenant's
    tenant_calls = [call for call in tap.calls if call.access_key in tap.tag_of_key]
    assert {call.method for call in tenant_calls} == {"PUT", "GET", "HEAD", "DELETE"}
    for call in tenant_calls:
        # THEN only the tenant whose credentials signed it is allowed
        judged_for_owner_only(call.method, call.path, call.query, tap.tag_of_key[call.access_key])
    # AND the calls not on tenant credentials are the test's own bucket setup: the handler has none
    assert all(call.access_key not in tap.tag_of_key for call in tap.calls if call not in tenant_calls)

    # AND every presigned URL is signed by its tenant's session and allowed for that tenant only
    for owner, url in urls:
        path, query = path_style(url)
        signer = parse_qs(query)["X-Amz-Credential"][0].split("/", 1)[0]
        assert tap.tag_of_key[signer] == owner
        judged_for_owner_only("GET", path, query, owner)
        assert requests.get(url, timeout=30).content == b"again"
    for owner, form in forms:
        signer = form["fields"]["x-amz-credential"].split("/", 1)[0]
        assert tap.tag_of_key[signer] == owner
        path, _ = path_style(form["url"])
        judged_for_owner_only("POST", path.rstrip("/") or path, "", owner, form_key=form["fields"]["key"])
