"""The TLS-only bucket policy: refused over plain HTTP, by moto's own bucket-policy check and by the local
IAM evaluator, whoever signs; with TLS it denies nothing (the caller's own permissions decide)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from blueprint.policies import tls_only_bucket_policy
from local.iam.policy import Decision, Request, evaluate

BUCKET = "tenant-tiers-dev-0123abcd-pooled"
POLICY = tls_only_bucket_policy(BUCKET)
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield boto3.client("s3")


def test_moto_refuses_plain_http_once_the_policy_is_on(s3: Any) -> None:
    # GIVEN a bucket holding an object, then the TLS-only policy
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="acme/a.txt", Body=b"x")
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(POLICY))
    # WHEN anyone reads or writes over moto's plain HTTP THEN S3's 403 answers
    for call in (
        lambda: s3.put_object(Bucket=BUCKET, Key="acme/b.txt", Body=b"x"),
        lambda: s3.get_object(Bucket=BUCKET, Key="acme/a.txt"),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize("action", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"])
@pytest.mark.parametrize("resource", [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/acme/a.txt"])
def test_the_policy_denies_every_request_without_tls_and_nothing_with_it(action: str, resource: str) -> None:
    insecure = Request(action, resource, context={"aws:SecureTransport": "false"}, principal="*")
    secure = Request(action, resource, context={"aws:SecureTransport": "true"}, principal="*")
    assert evaluate(POLICY, insecure) is Decision.EXPLICIT_DENY
    assert evaluate(POLICY, secure) is Decision.IMPLICIT_DENY


def test_the_policy_covers_the_bucket_and_its_objects_only() -> None:
    [statement] = POLICY["Statement"]
    assert statement["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    other = Request(
        "s3:GetObject",
        "arn:aws:s3:::another-bucket/k",
        context={"aws:SecureTransport": "false"},
        principal="*",
    )
    assert evaluate(POLICY, other) is Decision.IMPLICIT_DENY
