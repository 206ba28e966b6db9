"""Files isolation as a stateful property: random file operations by several tenants against a model.

Tenants: ``a``, ``acme`` and ``acme-corp`` share the pooled bucket (each id a prefix of the next);
``globex``, ``acme-silo`` and ``acme-silo-two`` have silo buckets (two of them prefix-sharing). They use
the same file names on purpose, through the API and through presigned URLs. After every step each
tenant's listing and the raw contents of every bucket must equal the model: no tenant ever lists, reads,
overwrites or deletes another tenant's file.
"""

from __future__ import annotations

import pytest
import requests
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from moto import mock_aws

from handlers import tenant_api
from tests.handlers.tenant_fixtures import (
    BUCKETS,
    FILE_TENANTS,
    TenantApi,
    TenantSpec,
    set_aws_environment,
    start_tenant_api,
)

tenants = st.sampled_from(FILE_TENANTS)
names = st.sampled_from(["a", "acme", "acme-corp", "report.pdf", "x.1"])
contents = st.binary(max_size=64)


class FilesIsolation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        self.previous_clients = tenant_api.data_clients
        self.api: TenantApi = start_tenant_api()
        tenant_api.data_clients = self.api.clients
        self.s3 = self.api.session.client("s3")
        self.files: dict[str, dict[str, bytes]] = {tenant.tenant_id: {} for tenant in FILE_TENANTS}

    def teardown(self) -> None:
        tenant_api.data_clients = self.previous_clients
        self.mock.stop()

    @rule(tenant=tenants, name=names, content=contents)
    def put_through_the_api(self, tenant: TenantSpec, name: str, content: bytes) -> None:
        answer = self.api.put_file(tenant, name, content)
        assert answer.status == (200 if name in self.files[tenant.tenant_id] else 201)
        self.files[tenant.tenant_id][name] = content

    @rule(tenant=tenants, name=names, content=contents.filter(bool))
    def put_through_an_upload_url(self, tenant: TenantSpec, name: str, content: bytes) -> None:
        form = self.api.upload_url(tenant, name, {"size": len(content)}).body
        posted = requests.post(form["url"], data=form["fields"], files={"file": ("f", content)}, timeout=30)
        assert posted.status_code in (200, 201, 204), posted.text
        self.files[tenant.tenant_id][name] = content

    @rule(tenant=tenants, name=names)
    def get_through_the_api(self, tenant: TenantSpec, name: str) -> None:
        answer = self.api.get_file(tenant, name)
        expected = self.files[tenant.tenant_id].get(name)
        assert answer.status == (404 if expected is None else 200)
        if expected is not None:
            assert answer.body == expected

    @rule(tenant=tenants, name=names)
    def get_through_a_download_url(self, tenant: TenantSpec, name: str) -> None:
        answer = self.api.download_url(tenant, name)
        expected = self.files[tenant.tenant_id].get(name)
        assert answer.status == (404 if expected is None else 200)
        if expected is not None:
            assert requests.get(answer.body["url"], timeout=30).content == expected

    @rule(tenant=tenants, name=names)
    def delete(self, tenant: TenantSpec, name: str) -> None:
        assert self.api.delete_file(tenant, name).status == 204
        self.files[tenant.tenant_id].pop(name, None)

    @invariant()
    def every_tenant_lists_exactly_its_own_files(self) -> None:
        for tenant in FILE_TENANTS:
            listed = self.api.list_files(tenant, limit=2)
            assert {f["name"]: f["size"] for f in listed} == {
                name: len(content) for name, content in self.files[tenant.tenant_id].items()
            }

    @invariant()
    def buckets_hold_exactly_the_model(self) -> None:
        stored: dict[str, dict[str, bytes]] = {tenant.tenant_id: {} for tenant in FILE_TENANTS}
        for bucket in sorted({tenant.bucket for tenant in FILE_TENANTS}):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for entry in page.get("Contents", []):
                    owner, _, name = entry["Key"].partition("/")
                    # a tenant's files live only in the bucket the authorizer names for it, under its prefix
                    tenant = next(t for t in FILE_TENANTS if t.tenant_id == owner)
                    assert tenant.bucket == bucket
                    body = self.s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                    stored[owner][name] = body
        assert stored == self.files


def test_no_tenant_ever_sees_or_changes_another_tenants_files(monkeypatch: pytest.MonkeyPatch) -> None:
    set_aws_environment(monkeypatch.setenv)
    monkeypatch.setattr(tenant_api, "data_clients", tenant_api.data_clients)
    assert BUCKETS.pooled == FILE_TENANTS[0].bucket
    run_state_machine_as_test(
        FilesIsolation, settings=settings(max_examples=10, stateful_step_count=15, deadline=None)
    )
