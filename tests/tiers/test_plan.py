"""`python -m tiers plan`: each edit of the tier file gets its changes, operator steps and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tiers.loader import parse_catalog
from tiers.plan import Kind, StackNames, Verdict, When, plan

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NAMES = StackNames(project="tenant-tiers", stack="prod")

BASIC = {
    "isolation": "pooled",
    "throttle": {"rate": 10, "burst": 20},
    "quota": {"limit": 1000, "period": "MONTH"},
}
GOLD = {
    "isolation": "pooled",
    "throttle": {"rate": 50, "burst": 100},
    "quota": {"limit": 9000, "period": "WEEK"},
}
PREMIUM = {
    "isolation": "silo",
    "throttle": {"rate": 200, "burst": 400},
    "quota": {"limit": 10**6, "period": "DAY"},
}
TIERS: dict[str, Any] = {"basic": BASIC, "gold": GOLD, "premium": PREMIUM}
TENANTS: dict[str, Any] = {
    "acme": {"tier": "premium"},
    "globex": {"tier": "basic", "name": "Globex"},
    "initech": {"tier": "gold", "suspended": True},
}


def catalog(tiers: Mapping[str, Any] = TIERS, tenants: Mapping[str, Any] = TENANTS) -> Any:
    return parse_catalog(json.dumps({"tiers": tiers, "tenants": tenants}), "tiers.yaml")


@dataclass(frozen=True)
class Edit:
    name: str
    tiers: Mapping[str, Any] = field(default_factory=lambda: TIERS)
    tenants: Mapping[str, Any] = field(default_factory=lambda: TENANTS)
    verdict: Verdict = Verdict.APPLIES_ITSELF
    changes: frozenset[tuple[Kind, str]] = frozenset()
    steps: tuple[tuple[When, str], ...] = ()
    """(when, the command's start) in order."""


EDITS = [
    Edit("no change", verdict=Verdict.NO_CHANGES),
    Edit(
        "onboard a pooled tenant",
        tenants={**TENANTS, "hooli": {"tier": "basic"}},
        changes=frozenset({(Kind.TENANT_ADDED, "hooli")}),
    ),
    Edit(
        "onboard a silo tenant",
        tenants={**TENANTS, "hooli": {"tier": "premium"}},
        changes=frozenset(
            {(Kind.TENANT_ADDED, "hooli"), (Kind.TABLE_CREATED, "tenant-tiers-prod-silo-hooli")}
        ),
    ),
    Edit(
        "suspend",
        tenants={**TENANTS, "globex": {"tier": "basic", "name": "Globex", "suspended": True}},
        changes=frozenset({(Kind.TENANT_SUSPENDED, "globex")}),
    ),
    Edit(
        "resume",
        tenants={**TENANTS, "initech": {"tier": "gold"}},
        changes=frozenset({(Kind.TENANT_RESUMED, "initech")}),
    ),
    Edit(
        "move between pooled tiers",
        tenants={**TENANTS, "globex": {"tier": "gold", "name": "Globex"}},
        changes=frozenset({(Kind.TENANT_MOVED, "globex")}),
    ),
    Edit(
        "change a tier's limits",
        tiers={**TIERS, "gold": {**GOLD, "throttle": {"rate": 60, "burst": 120}}},
        changes=frozenset({(Kind.TIER_LIMITS, "gold")}),
    ),
    Edit(
        "rename a tier",
        tiers={"standard": {**BASIC, "renamed_from": "basic"}, "gold": GOLD, "premium": PREMIUM},
        tenants={**TENANTS, "globex": {"tier": "standard", "name": "Globex"}},
        changes=frozenset({(Kind.TIER_RENAMED, "standard")}),
    ),
    Edit(
        "replace a tier without renamed_from",
        tiers={"standard": BASIC, "gold": GOLD, "premium": PREMIUM},
        tenants={**TENANTS, "globex": {"tier": "standard", "name": "Globex"}},
        changes=frozenset(
            {(Kind.TIER_ADDED, "standard"), (Kind.TIER_REMOVED, "basic"), (Kind.TENANT_MOVED, "globex")}
        ),
    ),
    Edit(
        "upgrade pooled to silo",
        tenants={**TENANTS, "globex": {"tier": "premium", "name": "Globex"}},
        verdict=Verdict.NEEDS_OPERATOR,
        changes=frozenset(
            {
                (Kind.TENANT_MOVED, "globex"),
                (Kind.STORAGE_MOVE, "globex"),
                (Kind.TABLE_CREATED, "tenant-tiers-prod-silo-globex"),
            }
        ),
        steps=(
            (When.BEFORE, "python -m tiers migrate globex --to silo"),
            (When.AFTER, "python -m tiers migrate globex --to silo"),
        ),
    ),
    Edit(
        "downgrade silo to pooled",
        tenants={**TENANTS, "acme": {"tier": "gold"}},
        verdict=Verdict.NEEDS_OPERATOR,
        changes=frozenset({(Kind.TENANT_MOVED, "acme"), (Kind.STORAGE_MOVE, "acme")}),
        steps=(
            (When.BEFORE, "python -m tiers migrate acme --to pooled"),
            (When.BEFORE, "pulumi state unprotect 'urn:pulumi:prod::tenant-tiers::"),
            (When.AFTER, "python -m tiers decommission acme --table tenant-tiers-prod-silo-acme"),
        ),
    ),
    Edit(
        "a tier turns silo",
        tiers={**TIERS, "gold": {**GOLD, "isolation": "silo"}},
        verdict=Verdict.NEEDS_OPERATOR,
        changes=frozenset(
            {
                (Kind.TIER_ISOLATION, "gold"),
                (Kind.STORAGE_MOVE, "initech"),
                (Kind.TABLE_CREATED, "tenant-tiers-prod-silo-initech"),
            }
        ),
        steps=(
            (When.BEFORE, "python -m tiers migrate initech --to silo"),
            (When.AFTER, "python -m tiers migrate initech --to silo"),
        ),
    ),
    Edit(
        "remove a pooled tenant",
        tenants={key: value for key, value in TENANTS.items() if key != "globex"},
        verdict=Verdict.NEEDS_OPERATOR,
        changes=frozenset({(Kind.TENANT_REMOVED, "globex"), (Kind.DATA_LEFT, "globex")}),
        steps=((When.AFTER, "python -m tiers decommission globex"),),
    ),
    Edit(
        "remove a silo tenant",
        tenants={key: value for key, value in TENANTS.items() if key != "acme"},
        verdict=Verdict.NEEDS_OPERATOR,
        changes=frozenset({(Kind.TENANT_REMOVED, "acme"), (Kind.DATA_LEFT, "acme")}),
        steps=(
            (When.BEFORE, "pulumi state unprotect 'urn:pulumi:prod::tenant-tiers::"),
            (When.AFTER, "python -m tiers decommission acme"),
        ),
    ),
]


@pytest.mark.parametrize("edit", EDITS, ids=[edit.name for edit in EDITS])
def test_each_edit_gets_its_changes_steps_and_verdict(edit: Edit) -> None:
    # GIVEN the deployed tier file and an edit of it WHEN planned
    result = plan(catalog(), catalog(edit.tiers, edit.tenants), NAMES)

    # THEN exactly the expected changes, operator steps in order, and exit status
    assert {(change.kind, change.subject) for change in result.changes} == set(edit.changes)
    assert len(result.steps) == len(edit.steps)
    for step, (when, command) in zip(result.steps, edit.steps, strict=True):
        assert step.when is when
        assert step.command.startswith(command), step.command
    assert result.verdict is edit.verdict


def test_the_unprotect_step_names_the_silo_table_bucket_and_bucket_settings() -> None:
    command = NAMES.unprotect("acme")
    prefix = "urn:pulumi:prod::tenant-tiers::tenant-tiers:infra:Storage$"
    assert command.startswith(
        f"pulumi state unprotect '{prefix}aws:dynamodb/table:Table::storage-silo-acme' "
    )
    assert f"'{prefix}aws:s3/bucket:Bucket::storage-silo-bucket-acme'" in command
    assert command.count("'urn:pulumi:") == 6


def test_a_large_onboarding_is_estimated_from_the_published_rates() -> None:
    # GIVEN 9,000 new tenants
    many = {f"t{index}": {"tier": "basic"} for index in range(9000)}

    # WHEN planned
    result = plan(catalog(tenants={}), catalog(tenants=many), NAMES)

    # THEN the estimate names what binds: 4 management calls per tenant at 10/s = 60 min, keys at 5/s = 30 min
    floors = dict(result.workload.floors())
    assert floors["9,000 new API keys (CreateApiKey 5/s)"] == 1800
    assert floors["36,000 API Gateway management calls (10/s in all)"] == 3600
    assert result.verdict is Verdict.APPLIES_ITSELF


def run_plan(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tiers", "plan", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
    )


def write(path: Path, tiers: Mapping[str, Any] = TIERS, tenants: Mapping[str, Any] = TENANTS) -> Path:
    path.write_text(json.dumps({"tiers": tiers, "tenants": tenants}, indent=2))
    return path


def test_the_command_prints_the_plan_and_exits_with_its_verdict(tmp_path: Path) -> None:
    old = write(tmp_path / "old.yaml")
    new = write(tmp_path / "prod.yaml", tenants={**TENANTS, "globex": {"tier": "premium"}})

    completed = run_plan(str(old), str(new))

    assert completed.returncode == Verdict.NEEDS_OPERATOR, completed.stderr
    assert "storage move" in completed.stdout
    assert (
        "Operator steps before `pulumi up`:\n  python -m tiers migrate globex --to silo" in completed.stdout
    )
    assert "tenant-tiers-prod-silo-globex" in completed.stdout  # --stack defaults to the file's name


def test_a_bad_file_gets_the_validator_s_messages_and_exit_1(tmp_path: Path) -> None:
    old = write(tmp_path / "old.yaml")
    new = tmp_path / "new.yaml"
    new.write_text("tiers:\n  basic: {isolation: pooled}\n")

    completed = run_plan(str(old), str(new))

    assert completed.returncode == Verdict.ERROR
    assert f"{new}:2: tiers.basic.throttle: missing 'throttle'" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("args", [["only-one.yaml"], ["--no-such-option"], ["a", "b", "c"]])
def test_a_wrong_command_line_exits_1_not_2(args: list[str]) -> None:
    # 2 means "changes pulumi up applies": a mistyped command must not read as that.
    completed = run_plan(*args)
    assert completed.returncode == Verdict.ERROR
    assert "error:" in completed.stderr


def test_git_mode_compares_the_committed_file_with_the_working_copy(tmp_path: Path) -> None:
    # GIVEN a git repository whose committed tier file the working copy has edited
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, timeout=30)

    git("init", "-q")
    tiers = write(tmp_path / "dev.yaml")
    git("add", "dev.yaml")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "tiers")
    write(tiers, tenants={**TENANTS, "hooli": {"tier": "gold"}})

    # WHEN planned against HEAD, and against a revision that does not exist
    completed = run_plan("--git", "HEAD", "dev.yaml", cwd=tmp_path)
    missing = run_plan("--git", "no-such-rev", "dev.yaml", cwd=tmp_path)

    # THEN the edit is shown and `pulumi up` applies it; a bad revision is a clear error
    assert completed.returncode == Verdict.APPLIES_ITSELF, completed.stderr
    assert "plan: HEAD:dev.yaml -> dev.yaml" in completed.stdout
    assert "tenant added" in completed.stdout
    assert missing.returncode == Verdict.ERROR
    assert "git cannot show this file at that revision" in missing.stderr


def test_for_the_local_stack_every_step_is_a_local_command(tmp_path: Path) -> None:
    # GIVEN an edit that moves acme from silo to pooled, moves globex from pooled to silo, removes initech
    old = write(tmp_path / "old.yaml")
    new = write(
        tmp_path / "new.yaml",
        tenants={"acme": {"tier": "basic"}, "globex": {"tier": "premium"}},
    )

    # WHEN it is planned for the local stack on port 8123
    completed = run_plan(str(old), str(new), "--local-port", "8123")

    # THEN the steps are the local stack's commands, around its reload, with its table names
    assert completed.returncode == Verdict.NEEDS_OPERATOR, completed.stderr
    out = completed.stdout
    assert "Operator steps before `python -m local reload --port 8123`:" in out
    assert "python -m tiers migrate globex --to silo --local-port 8123" in out
    assert "python -m tiers migrate acme --to pooled --local-port 8123" in out
    assert "python -m local reload --port 8123 --unprotect acme" in out
    assert (
        "python -m tiers decommission acme --table tenant-tiers-local-silo-acme --delete-table "
        "--local-port 8123" in out
    )
    assert "python -m tiers decommission initech --local-port 8123" in out
    assert "pulumi" not in out
    # ...and no AWS control-plane estimate: it does not apply to the emulator
    assert "Control-plane time" not in out


def test_local_port_with_a_pulumi_stack_name_is_a_command_line_error(tmp_path: Path) -> None:
    old = write(tmp_path / "old.yaml")
    completed = run_plan(str(old), str(old), "--local-port", "8123", "--stack", "prod")
    assert completed.returncode == Verdict.ERROR
    assert "--local-port names the local stack" in completed.stderr
