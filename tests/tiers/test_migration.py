"""`python -m tiers migrate`: a fenced, verified, resumable move of one tenant's data, against moto.

The tenant API runs on the same tables throughout, so these tests see what a client would: which writes
are refused (503) while the move runs, and where reads and writes go before and after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.contract import PLACEMENT_MOVING, PlacementField
from tests.handlers.tenant_fixtures import ACME, ACME_CORP, NAMING, TenantSpec
from tests.tiers.stack_fixtures import (
    CATALOG,
    MotoStack,
    Transcript,
    moto_stack,
    partition,
    placement_of,
    register,
    rows_of,
    seed,
)
from tiers import datastore, migration
from tiers.decommission import DecommissionOptions, decommission
from tiers.migration import MigrationError, MigrationOptions, MigrationOutcome, migrate
from tiers.model import Catalog, Isolation, Tenant

SILO = NAMING.silo_table("acme")


def by_key(row: dict[str, Any]) -> str:
    return str(row["sk"]["S"])


NO_DRAIN = MigrationOptions(drain_seconds=0)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStack]:
    with moto_stack(monkeypatch) as running:
        # acme's silo table exists (as after `pulumi up` of a tier-file edit), its registry entry still
        # names the pooled table: the placement item alone will move it
        from tests.handlers.tenant_fixtures import create_data_table

        create_data_table(SILO, running.admin)
        yield running


def test_pooled_to_silo_and_back_moves_every_row_exactly_once(
    stack: MotoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN small pages and progress steps, so that 600 rows take many pages (thousands: test_migration_kill)
    monkeypatch.setattr(datastore, "PAGE_ROWS", 100)
    monkeypatch.setattr(migration, "PROGRESS_EVERY_ROWS", 200)
    # GIVEN acme with 600 items and its counter in the pooled table, next to acme-corp's rows
    original = rows_of("acme", 600, counter=77)
    neighbour = rows_of("acme-corp", 30, counter=5)
    seed(stack.admin, NAMING.pooled_table, original + neighbour)

    # WHEN acme is moved to its silo table
    said = Transcript()
    assert migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, said) is MigrationOutcome.MOVED

    # THEN the silo table holds exactly acme's rows, the pooled table none of them, acme-corp is untouched
    assert partition(stack.admin, SILO, "acme") == sorted(original, key=by_key)
    assert partition(stack.admin, NAMING.pooled_table, "acme") == []
    assert partition(stack.admin, NAMING.pooled_table, "acme-corp") == sorted(
        neighbour, key=lambda r: r["sk"]["S"]
    )
    # AND the run reported its progress and verification
    assert "copied 200 rows" in said.text
    assert "copied 600 rows" in said.text
    assert "copied and verified 601 rows" in said.text
    # AND the tenant API serves acme from the silo table, though its registry entry still says pooled
    assert stack.api.get(ACME, "00007").body == {"id": "00007", "value": json.loads(original[7]["doc"]["S"])}
    assert stack.api.count(ACME).body["counter"] == 78
    assert stack.api.put(ACME, "new", '{"after": "move"}').status == 201
    assert partition(stack.admin, SILO, "acme")[-1]["sk"]["S"] == "item#new"

    # WHEN it runs again THEN there is nothing to do
    again = Transcript()
    assert migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, again) is MigrationOutcome.NOTHING_TO_DO
    assert "nothing to do" in again.text

    # WHEN acme moves back to the pooled table THEN everything, including what was written since, is there
    expected = partition(stack.admin, SILO, "acme")
    assert migrate(stack.tables, "acme", Isolation.POOLED, NO_DRAIN, Transcript()) is MigrationOutcome.MOVED
    assert partition(stack.admin, NAMING.pooled_table, "acme") == expected
    assert partition(stack.admin, SILO, "acme") == []
    assert stack.api.count(ACME).body["counter"] == 79


def test_writes_are_refused_with_503_and_reads_served_from_the_source_while_fenced(stack: MotoStack) -> None:
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 40, counter=3))
    answers: dict[str, Any] = {}

    def during_the_move() -> None:
        # WHEN acme's clients call the API between the fence and the switch
        answers["put"] = stack.api.put(ACME, "00001", '"changed"')
        answers["new"] = stack.api.put(ACME, "fresh", '"new"')
        answers["delete"] = stack.api.delete(ACME, "00002")
        answers["count"] = stack.api.count(ACME)
        answers["get"] = stack.api.get(ACME, "00001")
        answers["list"] = stack.api.list_page(ACME, limit="100")
        answers["other tenant"] = stack.api.put(ACME_CORP, "x", "1")

    migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, Transcript("fenced", during_the_move))

    # THEN every write got 503 with Retry-After and said why
    for write in ("put", "new", "delete", "count"):
        assert answers[write].status == 503, write
        assert answers[write].headers["Retry-After"] == "5"
        assert "being moved" in answers[write].body["message"]
    # AND reads were served, from the source
    assert answers["get"].status == 200
    assert len(answers["list"].body["items"]) == 40
    # AND another tenant was not held up
    assert answers["other tenant"].status == 201
    # AND nothing refused was written anywhere
    rows = {row["sk"]["S"]: row for row in partition(stack.admin, SILO, "acme")}
    assert "item#fresh" not in rows
    assert "item#00002" in rows
    assert json.loads(rows["item#00001"]["doc"]["S"])["n"] == 1
    assert rows["counter"]["count"]["N"] == "3"


def test_a_write_in_flight_when_the_fence_lands_is_refused(stack: MotoStack) -> None:
    # GIVEN acme's PUT has read its placement (none: the registry's pooled table) and is about to write
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 5))
    fences: list[str] = []

    def fence_now(**_: Any) -> None:
        if not fences:
            fences.append("done")
            # WHEN the operator fences acme before the write reaches DynamoDB
            stack.admin.put_item(
                TableName=NAMING.placement_table,
                Item={
                    PlacementField.TENANT_ID: {"S": "acme"},
                    PlacementField.TABLE: {"S": NAMING.pooled_table},
                    PlacementField.STATE: {"S": PLACEMENT_MOVING},
                    PlacementField.EPOCH: {"N": "1"},
                    PlacementField.SOURCE: {"S": NAMING.pooled_table},
                    PlacementField.TARGET: {"S": SILO},
                },
            )

    stack.api_session.events.register("before-call.dynamodb.TransactWriteItems", fence_now)
    answer = stack.api.put(ACME, "late", '"in flight"')

    # THEN the write is refused and is in neither table
    assert fences
    assert answer.status == 503
    assert not any(r["sk"]["S"] == "item#late" for r in partition(stack.admin, NAMING.pooled_table, "acme"))
    assert partition(stack.admin, SILO, "acme") == []


def test_a_write_that_read_the_old_location_lands_in_the_new_one(stack: MotoStack) -> None:
    # GIVEN acme's PUT read its placement (the pooled table) and is about to write
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 5))
    moved: list[MigrationOutcome] = []

    def move_now(**_: Any) -> None:
        if not moved:
            # WHEN a whole move to the silo table happens before the write reaches DynamoDB
            moved.append(migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, Transcript()))

    stack.api_session.events.register("before-call.dynamodb.TransactWriteItems", move_now)
    answer = stack.api.put(ACME, "late", '"in flight"')

    # THEN the write is retried at the new location: in the silo table, not left behind in the pooled one
    assert moved == [MigrationOutcome.MOVED]
    assert answer.status == 201
    assert any(r["sk"]["S"] == "item#late" for r in partition(stack.admin, SILO, "acme"))
    assert partition(stack.admin, NAMING.pooled_table, "acme") == []


def test_a_missing_target_table_pins_the_tenant_so_pulumi_up_moves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with moto_stack(monkeypatch) as stack:
        # GIVEN acme in the pooled table and no silo table for it yet
        seed(stack.admin, NAMING.pooled_table, rows_of("acme", 10, counter=2))
        said = Transcript()
        # WHEN the operator asks for the move
        outcome = migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, said)
        # THEN acme is pinned to the pooled table, and told what to do next
        assert outcome is MigrationOutcome.PINNED
        assert "does not exist yet" in said.text
        assert "`pulumi up`" in said.text
        assert placement_of(stack.admin, "acme")[PlacementField.TABLE]["S"] == NAMING.pooled_table

        # WHEN `pulumi up` creates the silo table and points the registry entry at it
        from tests.handlers.tenant_fixtures import create_data_table

        create_data_table(SILO, stack.admin)
        silo_catalog = Catalog(
            tiers=CATALOG.tiers, tenants={**CATALOG.tenants, "acme": Tenant("acme", "premium", "Acme")}
        )
        register(stack.admin, silo_catalog, "acme")
        acme_as_silo = TenantSpec("acme", isolation="silo", tier="premium")
        # THEN acme is still served its data from the pooled table, writes included
        assert stack.api.get(acme_as_silo, "00003").status == 200
        assert stack.api.count(acme_as_silo).body["counter"] == 3
        # AND running the command again moves it
        assert migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, Transcript()) is MigrationOutcome.MOVED
        assert len(partition(stack.admin, SILO, "acme")) == 11
        assert stack.api.count(acme_as_silo).body["counter"] == 4


def test_unserved_rows_in_the_target_stop_the_move_until_decommissioned(stack: MotoStack, tmp_path) -> None:
    # GIVEN stray acme rows in its silo table (e.g. written there before a registry flip) and acme pooled
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 5, tag="live"))
    seed(stack.admin, SILO, rows_of("acme", 3, tag="stray"))
    # WHEN the operator moves acme THEN nothing happens and the message names the way out
    with pytest.raises(MigrationError, match="decommission acme --table"):
        migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, Transcript())
    assert placement_of(stack.admin, "acme") is None
    # WHEN the stray rows are exported and removed THEN the move goes through
    decommission(
        stack.tables, "acme", DecommissionOptions(out=tmp_path / "stray.jsonl", table=SILO), Transcript()
    )
    assert migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, Transcript()) is MigrationOutcome.MOVED
    documents = [json.loads(r["doc"]["S"]) for r in partition(stack.admin, SILO, "acme") if "doc" in r]
    assert {document["tag"] for document in documents} == {"live"}


def test_keep_source_leaves_a_copy_that_a_later_move_back_replaces(stack: MotoStack) -> None:
    seed(stack.admin, NAMING.pooled_table, rows_of("acme", 20))
    keep = MigrationOptions(keep_source=True, drain_seconds=0)
    said = Transcript()
    # WHEN acme moves with --keep-source THEN its pooled rows stay, unserved, and the message says so
    migrate(stack.tables, "acme", Isolation.SILO, keep, said)
    assert len(partition(stack.admin, NAMING.pooled_table, "acme")) == 20
    assert "--keep-source" in said.text
    # WHEN acme changes data in the silo table and moves back
    assert stack.api.delete(ACME, "00000").status == 204
    migrate(stack.tables, "acme", Isolation.POOLED, NO_DRAIN, Transcript())
    # THEN the pooled table holds the current data, not the stale copy
    assert len(partition(stack.admin, NAMING.pooled_table, "acme")) == 19
    assert PlacementField.KEPT not in placement_of(stack.admin, "acme")


def test_a_move_stopped_after_the_fence_is_finished_by_the_next_run(stack: MotoStack) -> None:
    # GIVEN a run that died right after fencing (nothing copied)
    original = rows_of("acme", 60, counter=9)
    seed(stack.admin, NAMING.pooled_table, original)

    class Killed(Exception):
        pass

    def die() -> None:
        raise Killed

    with pytest.raises(Killed):
        migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, Transcript("fenced", die))
    # THEN writes stay refused and reads served
    assert stack.api.put(ACME, "x", "1").status == 503
    assert stack.api.get(ACME, "00001").status == 200
    # AND a move to the other side is refused with the command that finishes this one
    with pytest.raises(MigrationError, match="migrate acme --to silo"):
        migrate(stack.tables, "acme", Isolation.POOLED, NO_DRAIN, Transcript())
    # WHEN the command runs again THEN it resumes and completes
    said = Transcript()
    assert migrate(stack.tables, "acme", Isolation.SILO, NO_DRAIN, said) is MigrationOutcome.MOVED
    assert "resuming" in said.text
    assert partition(stack.admin, SILO, "acme") == sorted(original, key=by_key)
    assert stack.api.put(ACME, "x", "1").status == 201


def test_an_unknown_tenant_is_refused_with_what_to_do(stack: MotoStack) -> None:
    with pytest.raises(MigrationError, match=r"not in the registry table .* decommission nobody"):
        migrate(stack.tables, "nobody", Isolation.SILO, NO_DRAIN, Transcript())


def test_verification_compares_count_and_content() -> None:
    # GIVEN two sides differing in one attribute value only THEN their summaries differ; equal ones match
    from tiers.datastore import summarize

    left = rows_of("acme", 3)
    right = [dict(row) for row in left]
    right[1] = {**right[1], "doc": {"S": '"other"'}}
    assert summarize(left) != summarize(right)
    assert summarize(left).count == summarize(right).count == 3
    assert summarize(left) == summarize([dict(row) for row in left])
