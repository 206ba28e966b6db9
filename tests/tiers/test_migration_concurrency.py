"""Writes racing a move: each one is either refused with 503 or present afterwards, none lost.

Writer threads call the tenant API (PUT of new items, POST /counter) before, during and after a move of
their tenant from the pooled to its silo table, which runs in another thread. DynamoDB calls are made
atomic with a lock (as DynamoDB makes each call atomic; moto's in-process backend is not thread-safe),
so the move and the requests interleave call by call.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.handlers.tenant_fixtures import ACME, NAMING, create_data_table
from tests.tiers.stack_fixtures import moto_stack, partition, rows_of, seed
from tiers.migration import MigrationOptions, MigrationOutcome, migrate
from tiers.model import Isolation

WRITERS = 3
WRITES_AFTER_THE_MOVE = 4  # per writer


@dataclass
class Ledger:
    """What the clients were told, per request."""

    puts: dict[str, int] = field(default_factory=dict)  # item id -> status
    counters: list[tuple[int, int | None]] = field(default_factory=list)  # (status, counter returned)
    lock: threading.Lock = field(default_factory=threading.Lock)


def test_every_write_during_a_move_is_refused_or_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_stack(monkeypatch, serialize=True) as stack:
        # GIVEN acme with 300 items and its counter at 0 in the pooled table, and its silo table
        silo = NAMING.silo_table("acme")
        create_data_table(silo, stack.admin)
        seed(stack.admin, NAMING.pooled_table, rows_of("acme", 300, counter=0))
        ledger = Ledger()
        started, moved = threading.Event(), threading.Event()

        def writer(number: int) -> None:
            sequence, after = 0, 0
            while after < WRITES_AFTER_THE_MOVE:
                after += moved.is_set()
                item_id = f"w{number}-{sequence:04d}"
                put = stack.api.put(ACME, item_id, json.dumps({"writer": number, "sequence": sequence}))
                count = stack.api.count(ACME)
                with ledger.lock:
                    ledger.puts[item_id] = put.status
                    ledger.counters.append((count.status, (count.body or {}).get("counter")))
                if sequence == 2:
                    started.set()
                sequence += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        # WHEN, with writes flowing, acme is moved to its silo table
        started.wait(timeout=60)
        said: list[str] = []
        outcome = migrate(
            stack.tables, "acme", Isolation.SILO, MigrationOptions(drain_seconds=0.2), said.append
        )
        moved.set()
        for thread in threads:
            thread.join(timeout=120)

        assert outcome is MigrationOutcome.MOVED
        statuses = Counter(ledger.puts.values()) + Counter(status for status, _ in ledger.counters)
        # THEN every request was either accepted or refused with 503, and some of each happened
        assert set(statuses) <= {200, 201, 503}, statuses
        assert statuses[201] > 0
        assert statuses[503] > 0
        rows = {row["sk"]["S"]: row for row in partition(stack.admin, silo, "acme")}
        # AND every accepted item is in the silo table exactly as written, every refused one nowhere
        accepted = [item_id for item_id, status in ledger.puts.items() if status == 201]
        refused = [item_id for item_id, status in ledger.puts.items() if status == 503]
        for item_id in accepted:
            writer_number, sequence = item_id[1:].split("-")
            expected = {"writer": int(writer_number), "sequence": int(sequence)}
            assert json.loads(rows[f"item#{item_id}"]["doc"]["S"]) == expected, item_id
        assert not any(f"item#{item_id}" in rows for item_id in refused)
        assert partition(stack.admin, NAMING.pooled_table, "acme") == []
        assert len(rows) == 300 + len(accepted) + 1
        # AND the counter counted exactly the accepted increments, each answer distinct: none lost
        answers = sorted(value for status, value in ledger.counters if status == 200 and value is not None)
        assert answers == list(range(1, len(answers) + 1))
        assert rows["counter"]["count"]["N"] == str(len(answers))
        print(
            f"{len(ledger.puts)} puts ({len(accepted)} accepted, {len(refused)} refused), "
            f"{len(ledger.counters)} increments ({len(answers)} accepted)"
        )
