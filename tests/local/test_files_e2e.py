"""End to end over HTTP: the files API on `python -m local up --lambda-tenant-isolation`.

Presigned URLs go straight to the emulator, where IAM is enforced on the signing session and a presigned
POST's policy is checked as S3 checks it.
"""

from __future__ import annotations

import http.client
import textwrap
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from local.client import id_token
from tests.local.conftest import HttpAnswer, StackProcess, call_api, running_stack

TIERS = textwrap.dedent(
    """\
    tiers:
      shared:
        isolation: pooled
        throttle: {rate: 200, burst: 200}
        quota: {limit: 100000, period: MONTH}
      own:
        isolation: silo
        throttle: {rate: 200, burst: 200}
        quota: {limit: 100000, period: MONTH}
    tenants:
      a: {tier: shared, name: A}
      acme: {tier: shared, name: Acme}
      acme-corp: {tier: shared, name: Acme Corp}
      acme-silo: {tier: own, name: Acme Silo}
      globex: {tier: own, name: Globex}
    """
)
TENANTS = ("a", "acme", "acme-corp", "acme-silo", "globex")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    workdir = tmp_path_factory.mktemp("files-e2e")
    tiers_file = workdir / "tiers.yaml"
    tiers_file.write_text(TIERS)
    with running_stack(tiers_file, workdir, "--lambda-tenant-isolation") as running:
        yield running
    assert "Traceback" not in running.output()


@pytest.fixture(scope="module")
def tokens(stack: StackProcess) -> dict[str, str]:
    return {tenant: id_token(tenant, stack.port) for tenant in TENANTS}


def send(
    port: int, method: str, path: str, token: str, body: bytes = b"", content_type: str = ""
) -> HttpAnswer:
    """A request with a raw body (files are bytes) and a path sent exactly as given."""
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return HttpAnswer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def upload(form: dict[str, Any], content: bytes) -> requests.Response:
    return requests.post(
        form["url"], data=form["fields"], files={"file": ("upload.bin", content)}, timeout=60
    )


def test_a_file_round_trips_through_the_api(stack: StackProcess, tokens: dict[str, str]) -> None:
    content = bytes(range(256)) * 10
    put = send(stack.port, "PUT", "/files/data.bin", tokens["acme"], content, "application/octet-stream")
    assert (put.status, put.json()["created"]) == (201, True)
    got = send(stack.port, "GET", "/files/data.bin", tokens["acme"])
    assert got.status == 200
    assert got.body == content
    listed = call_api(stack.port, "GET", "/files", tokens["acme"]).json()
    assert [f["name"] for f in listed["files"]] == ["data.bin"]
    # AND the tenant whose id extends acme's sees nothing of it
    assert call_api(stack.port, "GET", "/files", tokens["acme-corp"]).json()["files"] == []
    assert send(stack.port, "GET", "/files/data.bin", tokens["acme-corp"]).status == 404


@pytest.mark.parametrize("tenant", ["acme", "globex"])
def test_upload_and_download_through_presigned_urls(
    stack: StackProcess, tokens: dict[str, str], tenant: str
) -> None:
    # GIVEN an upload URL for 20 bytes, from a pooled and from a silo tenant
    content = b"presigned upload 20b"
    form = call_api(stack.port, "POST", "/files/big.log/upload-url", tokens[tenant], {"size": len(content)})
    assert form.status == 200, form.body
    # WHEN the file goes straight to the emulator, then comes back through a download URL
    uploaded = upload(form.json(), content)
    assert uploaded.status_code == 204, uploaded.text
    download = call_api(stack.port, "GET", "/files/big.log/download-url", tokens[tenant])
    assert download.status == 200
    fetched = requests.get(download.json()["url"], timeout=60)
    # THEN the bytes are the tenant's own, also through the API
    assert (fetched.status_code, fetched.content) == (200, content)
    assert send(stack.port, "GET", "/files/big.log", tokens[tenant]).body == content


def test_an_upload_of_another_size_than_declared_is_refused(
    stack: StackProcess, tokens: dict[str, str]
) -> None:
    form = call_api(stack.port, "POST", "/files/sized.bin/upload-url", tokens["a"], {"size": 10}).json()
    too_large = upload(form, b"x" * 11)
    assert too_large.status_code == 400
    assert "<Code>EntityTooLarge</Code>" in too_large.text
    assert upload(form, b"x" * 9).status_code == 400
    assert send(stack.port, "GET", "/files/sized.bin", tokens["a"]).status == 404
    # AND the form cannot store under another key
    fields = {**form["fields"], "key": "acme/sized.bin"}
    forged = requests.post(form["url"], data=fields, files={"file": ("f", b"x" * 10)}, timeout=60)
    assert forged.status_code == 403
    acme_files = call_api(stack.port, "GET", "/files", tokens["acme"]).json()["files"]
    assert "sized.bin" not in {f["name"] for f in acme_files}


def test_a_download_url_pointed_at_another_tenants_file_is_denied(
    stack: StackProcess, tokens: dict[str, str]
) -> None:
    # GIVEN acme-corp's file and a download URL acme got for its own file of the same name
    send(stack.port, "PUT", "/files/secret.txt", tokens["acme-corp"], b"acme-corp's secret")
    send(stack.port, "PUT", "/files/secret.txt", tokens["acme"], b"acme's own")
    url = urlsplit(
        call_api(stack.port, "GET", "/files/secret.txt/download-url", tokens["acme"]).json()["url"]
    )
    assert url.path.endswith("/acme/secret.txt")
    # WHEN acme rewrites the key to acme-corp's
    tampered = urlunsplit(url._replace(path=url.path.replace("/acme/secret.txt", "/acme-corp/secret.txt")))
    answer = requests.get(tampered, timeout=60)
    # THEN the emulator refuses it: the URL carries acme's session, which reaches only acme's prefix
    assert answer.status_code == 403
    assert "AccessDenied" in answer.text
    assert b"acme-corp's secret" not in answer.content
    assert requests.get(urlunsplit(url), timeout=60).content == b"acme's own"


@pytest.mark.parametrize(
    "path", ["/files/..", "/files/.", "/files/a%01b", "/files/a%2Fb", "/files/caf%C3%A9", "/files/a%20b"]
)
def test_unsafe_file_names_get_400(stack: StackProcess, tokens: dict[str, str], path: str) -> None:
    answer = send(stack.port, "PUT", path, tokens["acme"], b"x")
    assert answer.status == 400, answer.body
    assert "file name" in answer.json()["message"]


def test_a_file_too_large_for_the_api_gets_413(stack: StackProcess, tokens: dict[str, str]) -> None:
    # over the function's 4 MiB, and over API Gateway's 10 MB
    for size in (4 * 1024 * 1024 + 1, 11 * 1024 * 1024):
        answer = send(stack.port, "PUT", "/files/huge.bin", tokens["acme"], b"\0" * size)
        assert answer.status == 413, size
    assert send(stack.port, "GET", "/files/huge.bin", tokens["acme"]).status == 404


def test_each_tenant_runs_in_its_own_instance_whose_cache_never_serves_another(
    stack: StackProcess, tokens: dict[str, str]
) -> None:
    # GIVEN every tenant counting and listing files, interleaved
    for _ in range(2):
        for tenant in TENANTS:
            assert call_api(stack.port, "POST", "/counter", tokens[tenant]).status == 200
            assert call_api(stack.port, "GET", "/files", tokens[tenant]).status == 200
    # THEN each tenant has exactly one warm instance, and its module-level client cache holds only that
    # tenant's credentials: the same warm cache never served two tenants
    instances = call_api(stack.port, "GET", "/_local/instances").json()
    assert instances["lambda_tenant_isolation"] is True
    by_tenant = {instance["tenant_id"]: instance for instance in instances["instances"]}
    assert set(TENANTS) <= set(by_tenant)
    for tenant_id, instance in by_tenant.items():
        assert instance["cached_tenants"] == [tenant_id]
    counters = {tenant: call_api(stack.port, "POST", "/counter", tokens[tenant]).json() for tenant in TENANTS}
    assert all(answer["tenant_id"] == tenant for tenant, answer in counters.items())
