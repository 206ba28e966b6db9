"""`python -m tiers migrate` moves a tenant's files with its rows: pooled bucket prefix <-> silo bucket.

Files follow rows: the placement item names the bucket that serves the tenant's files next to the table
that serves its rows, so one conditional write switches both. The tenant API (on the same moto account)
shows what a client sees before, during and after the move.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.contract import PlacementField
from handlers.tenant_files import PRESIGNED_URL_SECONDS
from tests.handlers.tenant_fixtures import ACME, ACME_CORP, BUCKETS, NAMING, bucket_keys, create_bucket
from tests.tiers.stack_fixtures import MotoStack, Transcript, moto_stack, placement_of, rows_of, seed
from tiers import migration
from tiers.migration import MigrationError, MigrationOptions, MigrationOutcome, migrate
from tiers.model import Isolation

SILO_TABLE = NAMING.silo_table("acme")
SILO_BUCKET = BUCKETS.silo("acme")
NO_WAIT = MigrationOptions(drain_seconds=0)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStack]:
    """GIVEN acme pooled, with its silo table and silo bucket created (as by `pulumi up` of the tier edit)."""
    from tests.handlers.tenant_fixtures import create_data_table

    with moto_stack(monkeypatch) as running:
        create_data_table(SILO_TABLE, running.admin)
        create_bucket(SILO_BUCKET, running.operator_session.client("s3"))
        yield running


def files_in(stack: MotoStack, bucket: str, tenant_id: str) -> dict[str, bytes]:
    """The current contents of ``tenant_id``'s files in ``bucket`` (the test looks with full rights)."""
    s3 = stack.operator_session.client("s3")
    prefix = f"{tenant_id}/"
    return {
        key.removeprefix(prefix): s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for key in bucket_keys(bucket, s3)
        if key.startswith(prefix)
    }


def served_files(stack: MotoStack, tenant: Any) -> dict[str, bytes]:
    """What the tenant API serves ``tenant``: every file it lists, read through the API."""
    served = {}
    for listed in stack.api.list_files(tenant, limit=50):
        answer = stack.api.get_file(tenant, listed["name"])
        assert answer.status == 200, answer
        served[listed["name"]] = answer.body
    return served


def put_files(stack: MotoStack, tenant: Any, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        assert stack.api.put_file(tenant, name, content, "text/plain").status == 201


ACME_FILES = {f"report-{n:02d}.txt": f"acme report {n}\n".encode() * (n + 1) for n in range(12)}
ACME_CORP_FILES = {"report-00.txt": b"acme-corp's own report 00\n", "contract.pdf": b"%PDF-1.7 corp"}


def test_files_move_with_the_rows_to_the_silo_bucket_and_back(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acme with rows and files in the pooled table and bucket, next to acme-corp (a prefix of its id)
    monkeypatch.setattr(migration, "PROGRESS_EVERY_ROWS", 5)
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 8, counter=3))
    put_files(stack, ACME, ACME_FILES)
    put_files(stack, ACME_CORP, ACME_CORP_FILES)

    # WHEN acme moves to silo storage
    said = Transcript()
    assert migrate(stack.tables, "acme", Isolation.SILO, NO_WAIT, said) is MigrationOutcome.MOVED

    # THEN its files are in its silo bucket, byte for byte, and gone from the pooled bucket
    assert files_in(stack, SILO_BUCKET, "acme") == ACME_FILES
    assert files_in(stack, BUCKETS.pooled, "acme") == {}
    # AND the tenant API serves them from there, with their content type, though the registry says pooled
    assert served_files(stack, ACME) == ACME_FILES
    assert stack.api.get_file(ACME, "report-03.txt").headers["Content-Type"] == "text/plain"
    # AND acme-corp's files under the neighbouring prefix were not touched
    assert files_in(stack, BUCKETS.pooled, "acme-corp") == ACME_CORP_FILES
    # AND the run reported progress and verification of the files
    assert "copied 10 files" in said.text
    assert "copied and verified 12 files of acme" in said.text
    assert placement_of(stack.admin, "acme")[PlacementField.BUCKET]["S"] == SILO_BUCKET

    # WHEN acme writes a file and deletes one in its silo bucket, then moves back to pooled storage
    assert stack.api.put_file(ACME, "after-move.txt", b"written in silo").status == 201
    assert stack.api.delete_file(ACME, "report-00.txt").status == 204
    expected = {name: content for name, content in ACME_FILES.items() if name != "report-00.txt"}
    expected["after-move.txt"] = b"written in silo"
    assert migrate(stack.tables, "acme", Isolation.POOLED, NO_WAIT, Transcript()) is MigrationOutcome.MOVED

    # THEN the pooled bucket holds exactly the current files, the silo bucket none
    assert files_in(stack, BUCKETS.pooled, "acme") == expected
    assert files_in(stack, SILO_BUCKET, "acme") == {}
    assert served_files(stack, ACME) == expected
    assert files_in(stack, BUCKETS.pooled, "acme-corp") == ACME_CORP_FILES


def test_file_writes_are_refused_with_503_and_reads_served_while_fenced(stack: MotoStack) -> None:
    put_files(stack, ACME, {"kept.txt": b"before the move"})
    answers: dict[str, Any] = {}

    def during_the_move() -> None:
        # WHEN acme's clients call the files API between the fence and the switch
        answers["put"] = stack.api.put_file(ACME, "new.txt", b"during the move")
        answers["delete"] = stack.api.delete_file(ACME, "kept.txt")
        answers["upload url"] = stack.api.upload_url(ACME, "big.bin", {"size": 10_000_000})
        answers["get"] = stack.api.get_file(ACME, "kept.txt")
        answers["list"] = stack.api.list_files(ACME)
        answers["download url"] = stack.api.download_url(ACME, "kept.txt")
        answers["other tenant"] = stack.api.put_file(ACME_CORP, "x.txt", b"x")

    migrate(stack.tables, "acme", Isolation.SILO, NO_WAIT, Transcript("fenced", during_the_move))

    # THEN every write got 503 with Retry-After
    for write in ("put", "delete", "upload url"):
        assert answers[write].status == 503, write
        assert answers[write].headers["Retry-After"] == "5"
        assert "being moved" in answers[write].body["message"]
    # AND reads were served, from the source
    assert answers["get"].status == 200
    assert answers["get"].body == b"before the move"
    assert [listed["name"] for listed in answers["list"]] == ["kept.txt"]
    assert answers["download url"].status == 200
    assert answers["other tenant"].status == 201
    # AND what was refused was not written: the silo bucket holds exactly the file from before
    assert files_in(stack, SILO_BUCKET, "acme") == {"kept.txt": b"before the move"}


def test_a_file_write_during_which_a_whole_move_happens_is_kept_and_answered_503(stack: MotoStack) -> None:
    # GIVEN acme's PUT of a file checked its placement (pooled, serving) and is storing it in S3
    moved: list[MigrationOutcome] = []

    def move_now(**_: Any) -> None:
        if not moved:
            # WHEN a whole move to silo storage happens while S3 stores the file
            moved.append(migrate(stack.tables, "acme", Isolation.SILO, NO_WAIT, Transcript()))

    stack.api_session.events.register("after-call.s3.PutObject", move_now)
    answer = stack.api.put_file(ACME, "in-flight.txt", b"racing the move")

    # THEN the client is told to send it again (a PUT of a file is idempotent) ...
    assert moved == [MigrationOutcome.MOVED]
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "5"
    # ... and the file, stored before the copy, was moved with the others: nothing is lost
    assert files_in(stack, SILO_BUCKET, "acme") == {"in-flight.txt": b"racing the move"}
    assert files_in(stack, BUCKETS.pooled, "acme") == {}
    assert stack.api.put_file(ACME, "in-flight.txt", b"racing the move").status == 200


class Clock:
    """The process's clock (the command's, the tenant API's and moto's alike): real time when the test
    starts, then moved only by the test and by waits, which return at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = time.time()
        self.waits: list[float] = []
        monkeypatch.setattr(time, "time", lambda: self.now)
        monkeypatch.setattr(time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_files_are_copied_only_after_the_upload_urls_issued_before_the_fence_expired(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acme was handed an upload URL (it lives 300 s) just now
    clock = Clock(monkeypatch)
    put_files(stack, ACME, {"a.txt": b"a"})
    assert stack.api.upload_url(ACME, "big.bin", {"size": 10_000_000}).status == 200

    # WHEN acme moves, with the default grace for uploads still arriving
    said = Transcript()
    migrate(stack.tables, "acme", Isolation.SILO, MigrationOptions(drain_seconds=0), said)

    # THEN the command waited until that URL had expired, plus the grace, before it copied the files
    window = PRESIGNED_URL_SECONDS + migration.DEFAULT_UPLOAD_GRACE_SECONDS
    assert clock.waits == [pytest.approx(window, abs=3)]
    assert "for the upload URLs of acme issued before the fence to expire" in said.text
    assert files_in(stack, SILO_BUCKET, "acme") == {"a.txt": b"a"}


def test_a_move_without_upload_urls_on_record_does_not_wait(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acme's last upload URL expired long ago (and files written through the API only since)
    clock = Clock(monkeypatch)
    assert stack.api.upload_url(ACME, "old.bin", {"size": 10}).status == 200
    clock.now += PRESIGNED_URL_SECONDS + migration.DEFAULT_UPLOAD_GRACE_SECONDS + 1
    put_files(stack, ACME, {"a.txt": b"a"})
    # WHEN acme moves THEN nothing is waited for
    migrate(stack.tables, "acme", Isolation.SILO, MigrationOptions(drain_seconds=0), Transcript())
    assert clock.waits == []
    assert files_in(stack, SILO_BUCKET, "acme") == {"a.txt": b"a"}


def test_upload_urls_are_refused_while_fenced_so_the_wait_covers_every_url(stack: MotoStack) -> None:
    answers: dict[str, Any] = {}

    def during_the_move() -> None:
        answers["upload url"] = stack.api.upload_url(ACME, "late.bin", {"size": 10})

    migrate(stack.tables, "acme", Isolation.SILO, NO_WAIT, Transcript("fenced", during_the_move))
    assert answers["upload url"].status == 503
    # AND after the move, URLs are issued for the silo bucket
    after = stack.api.upload_url(ACME, "after.bin", {"size": 10})
    assert after.status == 200
    assert SILO_BUCKET in after.body["url"] + json.dumps(after.body["fields"])


def test_a_resumed_move_waits_only_what_is_left_of_the_upload_window(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    put_files(stack, ACME, {"a.txt": b"a"})
    assert stack.api.upload_url(ACME, "big.bin", {"size": 10}).status == 200
    options = MigrationOptions(drain_seconds=0, upload_grace_seconds=0)

    class Killed(Exception):
        pass

    def die() -> None:
        raise Killed

    # GIVEN a run killed right after its fence, and 100 s gone by since
    with pytest.raises(Killed):
        migrate(stack.tables, "acme", Isolation.SILO, options, Transcript("fenced", die))
    clock.now += 100
    # WHEN the command runs again THEN it waits the 200 s left of the URL's 300, then moves the files
    assert migrate(stack.tables, "acme", Isolation.SILO, options, Transcript()) is MigrationOutcome.MOVED
    assert clock.waits == [pytest.approx(PRESIGNED_URL_SECONDS - 100, abs=3)]
    assert files_in(stack, SILO_BUCKET, "acme") == {"a.txt": b"a"}


def test_unserved_files_in_the_target_bucket_stop_the_move_before_anything_changes(stack: MotoStack) -> None:
    # GIVEN acme's live file in the pooled bucket and a stray one under its prefix in its silo bucket
    put_files(stack, ACME, {"live.txt": b"live"})
    stack.operator_session.client("s3").put_object(Bucket=SILO_BUCKET, Key="acme/stray.txt", Body=b"stray")
    # WHEN the operator moves acme THEN nothing changes and the message says where the strays are
    with pytest.raises(MigrationError, match=rf"bucket {SILO_BUCKET} already holds files of tenant acme"):
        migrate(stack.tables, "acme", Isolation.SILO, NO_WAIT, Transcript())
    assert placement_of(stack.admin, "acme") is None
    assert stack.api.put_file(ACME, "still-writable.txt", b"yes").status == 201


def test_keep_source_keeps_the_files_too_and_a_move_back_replaces_the_stale_copy(stack: MotoStack) -> None:
    put_files(stack, ACME, {"a.txt": b"a", "b.txt": b"b"})
    keep = MigrationOptions(keep_source=True, drain_seconds=0)
    # WHEN acme moves with --keep-source THEN its pooled files stay, unserved
    migrate(stack.tables, "acme", Isolation.SILO, keep, Transcript())
    assert files_in(stack, BUCKETS.pooled, "acme") == {"a.txt": b"a", "b.txt": b"b"}
    assert files_in(stack, SILO_BUCKET, "acme") == {"a.txt": b"a", "b.txt": b"b"}
    # WHEN acme changes its files in the silo bucket and moves back
    assert stack.api.delete_file(ACME, "a.txt").status == 204
    assert stack.api.put_file(ACME, "b.txt", b"b, edited").status == 200
    migrate(stack.tables, "acme", Isolation.POOLED, NO_WAIT, Transcript())
    # THEN the pooled bucket holds the current files, not the stale copy
    assert files_in(stack, BUCKETS.pooled, "acme") == {"b.txt": b"b, edited"}
    assert served_files(stack, ACME) == {"b.txt": b"b, edited"}


def test_a_missing_target_bucket_keeps_the_tenant_fenced_with_what_to_do(stack: MotoStack) -> None:
    # GIVEN acme-corp's silo table exists but its silo bucket does not (created by hand, not by `pulumi up`)
    from tests.handlers.tenant_fixtures import create_data_table

    create_data_table(NAMING.silo_table("acme-corp"), stack.admin)
    put_files(stack, ACME_CORP, {"c.txt": b"c"})
    # WHEN acme-corp is moved to its silo table, whose bucket does not exist
    missing = r"target bucket \S+-silo-acme-corp .* does not exist.*`pulumi up`"
    with pytest.raises(MigrationError, match=missing):
        migrate(stack.tables, "acme-corp", Isolation.SILO, NO_WAIT, Transcript())
    # THEN it stays fenced and served from the pooled bucket
    assert stack.api.get_file(ACME_CORP, "c.txt").body == b"c"
    assert stack.api.put_file(ACME_CORP, "d.txt", b"d").status == 503
    # WHEN the bucket is created and the command runs again THEN the move completes
    create_bucket(BUCKETS.silo("acme-corp"), stack.operator_session.client("s3"))
    assert migrate(stack.tables, "acme-corp", Isolation.SILO, NO_WAIT, Transcript()) is MigrationOutcome.MOVED
    assert files_in(stack, BUCKETS.silo("acme-corp"), "acme-corp") == {"c.txt": b"c"}


def test_file_verification_compares_names_sizes_and_etags() -> None:
    from tiers.datastore import StoredObject, summarize_objects

    md5_a, md5_b = "0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f"
    one = [StoredObject("a.txt", 1, md5_a)]
    assert summarize_objects(one) == summarize_objects(list(one))
    assert summarize_objects(one) != summarize_objects([StoredObject("a.txt", 1, md5_b)])
    assert summarize_objects(one) != summarize_objects([StoredObject("b.txt", 1, md5_a)])
    assert summarize_objects(one) != summarize_objects([StoredObject("a.txt", 2, md5_a)])
    assert summarize_objects(one) != summarize_objects([])
