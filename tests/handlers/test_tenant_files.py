"""The S3 data layer on its own: what S3 answers on AWS that moto does not."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers.tenant_files import TenantFiles


class PrefixOnlyS3:
    """S3 as it answers a pooled tenant on AWS: allowed to list only its own prefix, so a read of a
    missing object is a 403 AccessDenied, not a 404 (S3 hides existence from callers that cannot list)."""

    def __init__(self, keys: set[str]) -> None:
        self.keys = keys
        self.listed: list[dict[str, Any]] = []

    def _denied(self, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, operation)

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        raise self._denied("GetObject")

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs["Key"] in self.keys:
            return {}
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self.listed.append(kwargs)
        return {"Contents": [{"Key": key} for key in sorted(self.keys) if key.startswith(kwargs["Prefix"])]}


def test_a_403_for_a_missing_object_of_ones_own_prefix_is_not_found() -> None:
    # GIVEN acme's own prefix holding another name, and S3 answering 403 for what it cannot show
    s3 = PrefixOnlyS3({"acme/present.txt", "acme/missing.txt.bak"})
    files = TenantFiles(s3, "pooled-bucket", "acme")  # type: ignore[arg-type]
    # WHEN acme reads a name it does not have THEN it is "not found", told apart by a listing of that key
    assert files.get("missing.txt", 1024) is None
    assert not files.exists("missing.txt")
    assert files.exists("present.txt")
    assert s3.listed[0] == {"Bucket": "pooled-bucket", "Prefix": "acme/missing.txt", "MaxKeys": 1}


def test_a_403_for_an_object_that_is_listed_is_a_real_denial() -> None:
    files = TenantFiles(PrefixOnlyS3({"acme/there.txt"}), "pooled-bucket", "acme")  # type: ignore[arg-type]
    with pytest.raises(ClientError):
        files.get("there.txt", 1024)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\x00", "x" * 256])
def test_the_data_layer_refuses_an_unsafe_name_whatever_the_caller_checked(name: str) -> None:
    files = TenantFiles(PrefixOnlyS3(set()), "pooled-bucket", "acme")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="breaks the rule"):
        files.key(name)
