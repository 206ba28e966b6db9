"""One tenant's files in S3, reached only through STS credentials tagged with that tenant's id.

Layout, the same in the pooled bucket and in a silo bucket: the object key is ``<tenant id>/<file name>``
(``contract.file_key_prefix``). The data role's policy grants exactly that prefix (with its trailing
slash, so ``acme`` never reaches ``acme-corp/``), so a bug here is refused by S3 rather than served.

File names are one path segment of RFC 3986 unreserved characters (``A-Z a-z 0-9 . _ ~ -``), 1-255 of
them, and never ``.`` or ``..``: a name never needs escaping in a URL or an S3 key, and cannot smuggle a
path separator, an empty segment or a control character into the key.

Presigned URLs are signed with the tenant's own session, so they carry its permissions and nothing more,
and they expire before the credentials that signed them (a URL dies with its signing credentials).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from handlers.contract import file_key_prefix

FILE_NAME_PATTERN: Final = r"[A-Za-z0-9._~-]{1,255}"
FILE_NAME_RULE: Final = "1-255 characters from A-Z a-z 0-9 . _ ~ -, not '.' or '..'"
_FILE_NAME_RE: Final = re.compile(FILE_NAME_PATTERN)
_DOT_SEGMENTS: Final = frozenset({".", ".."})

DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
# Presigned URLs live five minutes: long enough to start a transfer, short enough that a leaked URL is
# soon worthless. Never longer than the credential refresh margin, so the signing credentials outlive it.
PRESIGNED_URL_SECONDS: Final = 300
# S3 takes at most 5 GiB in one PUT or POST upload (larger objects need a multipart upload).
MAX_UPLOAD_BYTES: Final = 5 * 1024**3


def is_valid_file_name(name: object) -> bool:
    return isinstance(name, str) and _FILE_NAME_RE.fullmatch(name) is not None and name not in _DOT_SEGMENTS


class S3Client(Protocol):
    """The S3 client calls this module makes (boto3 ships no type hints)."""

    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def head_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def delete_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...
    def generate_presigned_post(self, **kwargs: Any) -> dict[str, Any]: ...
    def generate_presigned_url(self, *args: Any, **kwargs: Any) -> str: ...


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    etag: str
    last_modified: str  # ISO 8601, UTC

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "etag": self.etag, "last_modified": self.last_modified}


@dataclass(frozen=True)
class StoredFile:
    info: FileInfo
    content_type: str
    content: bytes | None
    """None when the file is larger than the caller was willing to read."""


@dataclass(frozen=True)
class FilePage:
    files: tuple[FileInfo, ...]
    resume_after: str | None
    """The name of the last file returned when more may follow, else None."""


@dataclass(frozen=True)
class UploadForm:
    url: str
    fields: Mapping[str, str]


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class TenantFiles:
    """The tenant's files in its bucket, on an S3 client holding that tenant's scoped credentials."""

    client: S3Client
    bucket: str
    tenant_id: str

    def key(self, name: str) -> str:
        if not is_valid_file_name(name):
            raise ValueError(f"file name {name!r} breaks the rule: {FILE_NAME_RULE}")
        return f"{file_key_prefix(self.tenant_id)}{name}"

    def _info(self, name: str, size: int, etag: str, last_modified: Any) -> FileInfo:
        return FileInfo(name, int(size), etag.strip('"'), last_modified.isoformat())

    def put(self, name: str, content: bytes, content_type: str) -> bool:
        """Store the file; True when no current version existed (one request in that case)."""
        key = self.key(name)
        put = {"Bucket": self.bucket, "Key": key, "Body": content, "ContentType": content_type}
        try:
            self.client.put_object(**put, IfNoneMatch="*")
            return True
        except Exception as error:
            if _error_code(error) not in ("PreconditionFailed", "412"):
                raise
        self.client.put_object(**put)
        return False

    def _missing(self, error: Exception, key: str) -> bool:
        """Whether a failed read means the object does not exist.

        S3 answers 404 for a missing object only to a caller allowed ``s3:ListBucket`` for that request;
        in the pooled bucket a tenant may list only with an ``s3:prefix`` under its own prefix, which a
        GetObject or HeadObject does not carry, so a missing object there answers 403. A listing of
        exactly that key (allowed) tells the two apart.
        """
        code = _error_code(error)
        if code in ("NoSuchKey", "404", "NotFound"):
            return True
        if code not in ("AccessDenied", "403"):
            return False
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return not any(entry.get("Key") == key for entry in listed.get("Contents", []))

    def get(self, name: str, max_bytes: int) -> StoredFile | None:
        """The file, its content read only when it is at most ``max_bytes``; None when it does not exist."""
        key = self.key(name)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as error:
            if self._missing(error, key):
                return None
            raise
        body = response["Body"]
        size = int(response["ContentLength"])
        try:
            content = body.read() if size <= max_bytes else None
        finally:
            body.close()
        info = self._info(name, size, str(response.get("ETag", "")), response["LastModified"])
        return StoredFile(info, str(response.get("ContentType") or DEFAULT_CONTENT_TYPE), content)

    def exists(self, name: str) -> bool:
        key = self.key(name)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as error:
            if self._missing(error, key):
                return False
            raise
        return True

    def delete(self, name: str) -> None:
        """Delete the current version (the bucket is versioned: earlier versions stay recoverable)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.key(name))

    def list(self, limit: int, after: str | None) -> FilePage:
        """Up to ``limit`` files in name order, starting after the file name ``after``."""
        prefix = file_key_prefix(self.tenant_id)
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if after is not None:
            request["StartAfter"] = self.key(after)
        response = self.client.list_objects_v2(**request)
        files = tuple(
            self._info(str(o["Key"]).removeprefix(prefix), o["Size"], str(o["ETag"]), o["LastModified"])
            for o in response.get("Contents", [])
        )
        more = bool(response.get("IsTruncated")) and bool(files)
        return FilePage(files, files[-1].name if more else None)

    def upload_form(self, name: str, size: int, content_type: str) -> UploadForm:
        """A presigned POST that stores exactly ``size`` bytes as this file, and nothing else."""
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=self.key(name),
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", size, size]],
            ExpiresIn=PRESIGNED_URL_SECONDS,
        )
        return UploadForm(str(post["url"]), {str(k): str(v) for k, v in post["fields"].items()})

    def download_url(self, name: str) -> str:
        """A presigned GET of the file, served as an attachment (never rendered inline by a browser)."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.key(name),
                "ResponseContentDisposition": f'attachment; filename="{name}"',
            },
            ExpiresIn=PRESIGNED_URL_SECONDS,
        )
