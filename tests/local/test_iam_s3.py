"""S3 on the local IAM enforcer: requests mapped to authorization requests, and presigned POST policies
checked as S3 checks them (moto checks neither)."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from local.iam.policy import UnsupportedPolicyError
from local.iam.s3 import form_fields, lower_fields, post_form_scope, post_policy_failure, s3_requests
from local.iam.wire import Caller

CALLER = Caller(
    "arn:aws:sts::123456789012:assumed-role/data/tenant-acme",
    "arn:aws:iam::123456789012:role/data",
    {"tenant_id": "acme"},
)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()


def policy(conditions: Sequence[object], expiration: str = "2026-12-01T12:05:00Z") -> str:
    return base64.b64encode(
        json.dumps({"expiration": expiration, "conditions": conditions}).encode()
    ).decode()


def fields(conditions: Sequence[object], **extra: str) -> dict[str, str]:
    return {"key": "acme/f.bin", "policy": policy(conditions), **extra}


BOUND = [{"bucket": "b"}, {"key": "acme/f.bin"}, ["content-length-range", 10, 10]]


def test_a_form_within_its_policy_passes() -> None:
    assert post_policy_failure("b", fields(BOUND), 10, now=lambda: NOW) is None


@pytest.mark.parametrize(
    ("size", "code"), [(11, "EntityTooLarge"), (9, "EntityTooSmall"), (0, "EntityTooSmall")]
)
def test_a_file_outside_the_content_length_range_is_refused(size: int, code: str) -> None:
    failure = post_policy_failure("b", fields(BOUND), size, now=lambda: NOW)
    assert failure is not None
    assert (failure.status, failure.code) == (400, code)


def test_another_key_bucket_or_an_expired_policy_is_refused() -> None:
    for bucket, form, now in (
        ("b", {**fields(BOUND), "key": "acme-corp/f.bin"}, NOW),
        ("other-bucket", fields(BOUND), NOW),
        ("b", fields(BOUND), NOW + 3600),
    ):
        failure = post_policy_failure(bucket, form, 10, now=functools.partial(float, now))
        assert failure is not None
        assert failure.status == 403


def test_starts_with_and_a_broken_policy() -> None:
    prefixed = [["starts-with", "$key", "acme/"]]
    assert post_policy_failure("b", fields(prefixed), 1, now=lambda: NOW) is None
    assert post_policy_failure("b", {**fields(prefixed), "key": "other/x"}, 1, now=lambda: NOW) is not None
    broken = post_policy_failure("b", {"policy": "not base64!"}, 1, now=lambda: NOW)
    assert broken is not None
    assert broken.code == "InvalidPolicyDocument"


def test_the_session_of_a_form_upload_is_read_from_its_fields() -> None:
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="X-Amz-Credential"\r\n\r\n'
        f"ASIAEXAMPLE/20261201/us-east-1/s3/aws4_request\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\nacme/f.bin\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n0123456789\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    parsed = form_fields(body, f"multipart/form-data; boundary={boundary}")
    assert parsed["file"] == b"0123456789"
    assert post_form_scope(lower_fields(parsed)) == ("ASIAEXAMPLE", "us-east-1", "s3")


def test_requests_name_the_object_or_the_listing_prefix() -> None:
    [get] = s3_requests("GET", "/b/acme/f.bin", "", {}, CALLER)
    assert (get.action, get.resource) == ("s3:GetObject", "arn:aws:s3:::b/acme/f.bin")
    [listing] = s3_requests("GET", "/b", "list-type=2&prefix=acme%2F", {}, CALLER)
    assert (listing.action, listing.context["s3:prefix"]) == ("s3:ListBucket", "acme/")
    [unprefixed] = s3_requests("GET", "/b", "list-type=2", {}, CALLER)
    assert "s3:prefix" not in unprefixed.context
    [post] = s3_requests("POST", "/b", "", {}, CALLER, form_key="acme/f.bin")
    assert (post.action, post.resource) == ("s3:PutObject", "arn:aws:s3:::b/acme/f.bin")


@pytest.mark.parametrize(
    ("method", "path", "query", "headers"),
    [("PUT", "/b", "policy", {}), ("GET", "/b/k", "acl", {}), ("POST", "/b", "delete", {}),
     ("PUT", "/b/k", "", {"x-amz-copy-source": "/other/k"}), ("GET", "/", "", {}), ("PATCH", "/b/k", "", {})],
)  # fmt: skip
def test_what_is_not_mapped_is_refused_not_guessed(
    method: str, path: str, query: str, headers: dict[str, str]
) -> None:
    with pytest.raises(UnsupportedPolicyError):
        s3_requests(method, path, query, headers, CALLER)
