"""`python -m tiers plan`: what an edit of the tier file does, before `pulumi up` does it.

Compares two catalogs (two files, or a file at a git revision against the working copy) and lists every
change: tenants added, removed, suspended, resumed, moved between tiers; tiers added, removed, renamed or
with new limits; tables to be created; and, for every tenant whose storage changes or whose data stays
behind, the operator's steps with their exact commands. It estimates the least time AWS's published
control-plane rates allow for the change.

Exit status (:class:`Verdict`): 0 no change, 1 a file is wrong (the validator's messages), 2 changes that
`pulumi up` applies by itself, 3 changes that need an operator step before or after `pulumi up`.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Final

import yaml

from tiers.loader import CatalogError, parse_catalog
from tiers.migration import migrate_command
from tiers.model import Catalog, Isolation, Tenant, Tier
from tiers.naming import PROJECT, STORAGE_COMPONENT_TYPE, Naming, silo_storage_resources
from tiers.problems import Problem

# API Gateway's fixed control-plane quotas per account and region ("API Gateway quotas for creating,
# deploying and managing an API"): they cannot be raised.
CREATE_API_KEY_PER_SECOND: Final = 5
DELETE_API_KEY_PER_SECOND: Final = 5
UPDATE_USAGE_PLAN_SECONDS: Final = 20
"""UpdateUsagePlan: one request per 20 seconds."""
MANAGEMENT_CALLS_PER_SECOND: Final = 10
"""Every management call together."""

# Management calls `pulumi up` makes (the provider reads every resource back after changing it).
CALLS_PER_NEW_TENANT: Final = 4  # CreateApiKey, GetApiKey, CreateUsagePlanKey, GetUsagePlanKey
CALLS_PER_REMOVED_TENANT: Final = 2  # DeleteUsagePlanKey, DeleteApiKey
CALLS_PER_KEY_UPDATE: Final = 2  # UpdateApiKey, GetApiKey (suspend, resume)
CALLS_PER_TIER_MOVE: Final = 3  # DeleteUsagePlanKey, CreateUsagePlanKey, GetUsagePlanKey
CALLS_PER_PLAN_CHANGE: Final = 2  # Create/Update/DeleteUsagePlan, GetUsagePlan

GIT_TIMEOUT_SECONDS: Final = 30


class Verdict(IntEnum):
    """The exit status of `python -m tiers plan`."""

    NO_CHANGES = 0
    ERROR = 1
    APPLIES_ITSELF = 2
    NEEDS_OPERATOR = 3


class Kind(StrEnum):
    TENANT_ADDED = "tenant added"
    TENANT_REMOVED = "tenant removed"
    TENANT_SUSPENDED = "tenant suspended"
    TENANT_RESUMED = "tenant resumed"
    TENANT_MOVED = "tenant moved"
    TENANT_RENAMED = "tenant display name"
    TIER_ADDED = "tier added"
    TIER_REMOVED = "tier removed"
    TIER_RENAMED = "tier renamed"
    TIER_LIMITS = "tier limits changed"
    TIER_ISOLATION = "tier isolation changed"
    TABLE_CREATED = "table to create"
    STORAGE_MOVE = "storage move"
    DATA_LEFT = "data left behind"


class When(StrEnum):
    """When a step runs, relative to the deploy (`pulumi up`, or `python -m local reload` locally)."""

    BEFORE = "before"
    AFTER = "after"


@dataclass(frozen=True)
class Change:
    kind: Kind
    subject: str
    detail: str


@dataclass(frozen=True)
class Step:
    when: When
    tenant: str
    command: str
    why: str


@dataclass(frozen=True)
class Workload:
    """Control-plane work of a change, counted in the calls AWS rate-limits."""

    new_keys: int = 0
    deleted_keys: int = 0
    key_updates: int = 0
    tier_moves: int = 0
    plan_creates_or_deletes: int = 0
    plan_updates: int = 0

    @property
    def management_calls(self) -> int:
        return (
            self.new_keys * CALLS_PER_NEW_TENANT
            + self.deleted_keys * CALLS_PER_REMOVED_TENANT
            + self.key_updates * CALLS_PER_KEY_UPDATE
            + self.tier_moves * CALLS_PER_TIER_MOVE
            + (self.plan_creates_or_deletes + self.plan_updates) * CALLS_PER_PLAN_CHANGE
        )

    def floors(self) -> list[tuple[str, float]]:
        """(what, seconds) for each published rate the change is bound by, the tightest first."""
        floors = [
            (
                f"{_count(self.new_keys, 'new API key')} (CreateApiKey 5/s)",
                self.new_keys / CREATE_API_KEY_PER_SECOND,
            ),
            (
                f"{_count(self.deleted_keys, 'deleted API key')} (DeleteApiKey 5/s)",
                self.deleted_keys / DELETE_API_KEY_PER_SECOND,
            ),
            (
                f"{_count(self.plan_updates, 'usage plan update')} (UpdateUsagePlan 1 per 20 s)",
                self.plan_updates * UPDATE_USAGE_PLAN_SECONDS,
            ),
            (
                f"{_count(self.management_calls, 'API Gateway management call')} (10/s in all)",
                self.management_calls / MANAGEMENT_CALLS_PER_SECOND,
            ),
        ]
        return sorted(((what, seconds) for what, seconds in floors if seconds > 0), key=lambda f: -f[1])


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    workload: Workload = field(default_factory=Workload)
    deploy: str = "pulumi up"
    """The command that applies the edit, as the steps refer to it."""
    control_plane: bool = True
    """Whether AWS's control-plane rates bound the change (not on the local stack)."""

    @property
    def verdict(self) -> Verdict:
        if self.steps:
            return Verdict.NEEDS_OPERATOR
        return Verdict.APPLIES_ITSELF if self.changes else Verdict.NO_CHANGES


@dataclass(frozen=True)
class StackNames:
    """Where the plan's commands point: the Pulumi project and stack, for table names and URNs."""

    project: str
    stack: str
    local_port: int | None = None
    """The local stack (`python -m local up`) on this port: the commands are the local stack's."""

    @property
    def naming(self) -> Naming:
        return Naming(project=self.project, stack=self.stack)

    @property
    def deploy(self) -> str:
        if self.local_port is None:
            return "pulumi up"
        return f"python -m local reload --port {self.local_port}"

    def migrate(self, tenant_id: str, isolation: Isolation) -> str:
        return migrate_command(tenant_id, isolation) + self._local_option

    def decommission(self, tenant_id: str, *, table: str | None = None) -> str:
        return decommission_command(tenant_id, table=table) + self._local_option

    def unprotect(self, tenant_id: str) -> str:
        """What lets the deploy drop the tenant's silo table and bucket from the stack (both stay in AWS)."""
        if self.local_port is None:
            urns = " ".join(f"'{urn}'" for urn in self.silo_storage_urns(tenant_id))
            return f"pulumi state unprotect {urns}"
        return f"{self.deploy} --unprotect {tenant_id}"

    @property
    def _local_option(self) -> str:
        return "" if self.local_port is None else f" --local-port {self.local_port}"

    def silo_storage_urns(self, tenant_id: str) -> list[str]:
        """The URNs of the protected resources of the tenant's silo storage: table, bucket, its settings."""
        return [
            f"urn:pulumi:{self.stack}::{self.project}::{STORAGE_COMPONENT_TYPE}${kind}::{name}"
            for kind, name in silo_storage_resources(tenant_id)
        ]


def plan(old: Catalog, new: Catalog, names: StackNames) -> Plan:
    """Every change from ``old`` to ``new``, the operator steps they need, and their control-plane work."""
    result = Plan(deploy=names.deploy, control_plane=names.local_port is None)
    renamed = renamed_tiers(old, new)
    _tier_changes(old, new, renamed, result)
    _tenant_changes(old, new, renamed, names, result)
    result.workload = _workload(old, new, renamed)
    return result


def renamed_tiers(old: Catalog, new: Catalog) -> dict[str, str]:
    """New tier name -> old name, for tiers that take over a plan of ``old`` (renamed_from)."""
    return {
        tier.name: tier.renamed_from
        for tier in new.tiers.values()
        if tier.renamed_from is not None
        and tier.renamed_from in old.tiers
        and tier.renamed_from not in new.tiers
    }


def _plan_of(tier: str, renamed: dict[str, str]) -> str:
    """The usage plan (by its name in the old file) that tier ``tier`` of the new file is."""
    return renamed.get(tier, tier)


def _tier_changes(old: Catalog, new: Catalog, renamed: dict[str, str], result: Plan) -> None:
    carried_over = set(renamed.values())
    for tier in new.tiers.values():
        before = old.tiers.get(_plan_of(tier.name, renamed))
        if before is None:
            result.changes.append(Change(Kind.TIER_ADDED, tier.name, f"new usage plan: {_limits(tier)}"))
            continue
        if tier.name in renamed:
            result.changes.append(
                Change(Kind.TIER_RENAMED, tier.name, f"was {before.name}; its usage plan and keys carry over")
            )
        if (before.throttle, before.quota) != (tier.throttle, tier.quota):
            result.changes.append(
                Change(Kind.TIER_LIMITS, tier.name, f"{_limits(before)} -> {_limits(tier)}")
            )
        if before.isolation is not tier.isolation:
            detail = f"{before.isolation} -> {tier.isolation} for its tenants"
            result.changes.append(Change(Kind.TIER_ISOLATION, tier.name, detail))
    for tier in old.tiers.values():
        if tier.name not in new.tiers and tier.name not in carried_over:
            result.changes.append(Change(Kind.TIER_REMOVED, tier.name, "its usage plan is deleted"))


def _tenant_changes(
    old: Catalog, new: Catalog, renamed: dict[str, str], names: StackNames, result: Plan
) -> None:
    naming = names.naming
    for tenant in new.tenants.values():
        tier = new.tier_of(tenant)
        before = old.tenants.get(tenant.id)
        if before is None:
            result.changes.append(Change(Kind.TENANT_ADDED, tenant.id, f"on {tier.name} ({tier.isolation})"))
            if tier.isolation is Isolation.SILO:
                result.changes.append(Change(Kind.TABLE_CREATED, naming.silo_table(tenant.id), tenant.id))
            continue
        old_tier = old.tier_of(before)
        if _plan_of(tenant.tier, renamed) != before.tier:
            result.changes.append(Change(Kind.TENANT_MOVED, tenant.id, f"{before.tier} -> {tenant.tier}"))
        if before.suspended != tenant.suspended:
            kind = Kind.TENANT_SUSPENDED if tenant.suspended else Kind.TENANT_RESUMED
            what = "key disabled, users denied; data kept" if tenant.suspended else "key enabled again"
            result.changes.append(Change(kind, tenant.id, what))
        if before.name != tenant.name:
            result.changes.append(
                Change(Kind.TENANT_RENAMED, tenant.id, f"{before.name!r} -> {tenant.name!r}")
            )
        if old_tier.isolation is not tier.isolation:
            _storage_move(tenant, old_tier, tier, names, result)
    for tenant in old.tenants.values():
        if tenant.id not in new.tenants:
            _removal(tenant, old.tier_of(tenant), names, result)


def _storage_move(tenant: Tenant, old_tier: Tier, tier: Tier, names: StackNames, result: Plan) -> None:
    naming = names.naming
    move = f"{old_tier.isolation} -> {tier.isolation}"
    result.changes.append(Change(Kind.STORAGE_MOVE, tenant.id, move))
    command = names.migrate(tenant.id, tier.isolation)
    if tier.isolation is Isolation.SILO:
        result.changes.append(Change(Kind.TABLE_CREATED, naming.silo_table(tenant.id), tenant.id))
        result.steps += [
            Step(
                When.BEFORE,
                tenant.id,
                command,
                "pins the tenant to its pooled rows, so the registry's switch to the new table moves nothing",
            ),
            Step(
                When.AFTER, tenant.id, command, "copies its rows into the new silo table, verifies, switches"
            ),
        ]
        return
    silo_table = naming.silo_table(tenant.id)
    result.steps += [
        Step(When.BEFORE, tenant.id, command, "copies its rows into the pooled table, verifies, switches"),
        Step(
            When.BEFORE,
            tenant.id,
            names.unprotect(tenant.id),
            f"lets `{names.deploy}` drop {silo_table} and the silo bucket from the stack (both stay)",
        ),
        Step(
            When.AFTER,
            tenant.id,
            names.decommission(tenant.id, table=silo_table),
            "exports what is left in the old silo table, then deletes it (optional)",
        ),
    ]


def _removal(tenant: Tenant, tier: Tier, names: StackNames, result: Plan) -> None:
    result.changes.append(
        Change(Kind.TENANT_REMOVED, tenant.id, f"was on {tier.name}; key and registry entry go")
    )
    where = "its rows stay in the pooled table"
    if tier.isolation is Isolation.SILO:
        silo_table = names.naming.silo_table(tenant.id)
        where = f"its silo table {silo_table} stays"
        result.steps.append(
            Step(
                When.BEFORE,
                tenant.id,
                names.unprotect(tenant.id),
                f"lets `{names.deploy}` drop {silo_table} and the silo bucket from the stack (both stay)",
            )
        )
    result.changes.append(Change(Kind.DATA_LEFT, tenant.id, where))
    result.steps.append(
        Step(
            When.AFTER,
            tenant.id,
            names.decommission(tenant.id),
            "exports its data to a file, verifies it, then deletes the data (only when you mean it)",
        )
    )


def _workload(old: Catalog, new: Catalog, renamed: dict[str, str]) -> Workload:
    carried_over = set(renamed.values())
    kept = [tenant for tenant in new.tenants.values() if tenant.id in old.tenants]
    changed_plans = sum(
        1
        for tier in new.tiers.values()
        if (before := old.tiers.get(_plan_of(tier.name, renamed))) is not None
        and (before.throttle, before.quota, before.isolation, before.name)
        != (tier.throttle, tier.quota, tier.isolation, tier.name)
    )
    return Workload(
        new_keys=sum(1 for tenant_id in new.tenants if tenant_id not in old.tenants),
        deleted_keys=sum(1 for tenant_id in old.tenants if tenant_id not in new.tenants),
        key_updates=sum(1 for tenant in kept if old.tenants[tenant.id].suspended != tenant.suspended),
        tier_moves=sum(1 for tenant in kept if _plan_of(tenant.tier, renamed) != old.tenants[tenant.id].tier),
        plan_creates_or_deletes=sum(
            1 for tier in new.tiers.values() if _plan_of(tier.name, renamed) not in old.tiers
        )
        + sum(1 for name in old.tiers if name not in new.tiers and name not in carried_over),
        plan_updates=changed_plans,
    )


def decommission_command(tenant_id: str, *, table: str | None = None) -> str:
    return f"python -m tiers decommission {tenant_id}" + (f" --table {table} --delete-table" if table else "")


def _limits(tier: Tier) -> str:
    rate = tier.throttle.rate
    shown_rate = int(rate) if float(rate).is_integer() else rate
    offset = f" offset {tier.quota.offset}" if tier.quota.offset else ""
    return f"{shown_rate}/s burst {tier.throttle.burst}, {tier.quota.limit:,}/{tier.quota.period}{offset}"


# --- reading the two sides -------------------------------------------------------------------------------


def catalog_at_revision(revision: str, file: str) -> Catalog:
    """The tier file ``file`` as it was at git revision ``revision``; raises CatalogError."""
    source = f"{revision}:{file}"
    try:
        shown = subprocess.run(
            ["git", "show", f"{revision}:./{file}"],
            capture_output=True,
            check=False,
            timeout=GIT_TIMEOUT_SECONDS,
        )
    except FileNotFoundError:
        raise _file_error(source, "git is not installed; compare two files instead: plan OLD NEW.") from None
    except subprocess.TimeoutExpired:
        raise _file_error(source, f"git did not answer within {GIT_TIMEOUT_SECONDS} s.") from None
    if shown.returncode != 0:
        reason = " ".join(shown.stderr.decode(errors="replace").split()) or "git show failed"
        raise _file_error(
            source,
            f"git cannot show this file at that revision ({reason}). Check the revision and the path "
            "(relative to the current directory), or compare two files: plan OLD NEW.",
        )
    try:
        text = shown.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise _file_error(source, "the file at that revision is not UTF-8 text.") from None
    return parse_catalog(text, source)


def _file_error(source: str, message: str) -> CatalogError:
    return CatalogError([Problem(source, None, "", message)])


# --- the report ------------------------------------------------------------------------------------------


def report(result: Plan, old_source: str, new_source: str) -> str:
    lines = [f"plan: {old_source} -> {new_source}"]
    if not result.changes:
        lines.append(f"No changes: `{result.deploy}` has nothing to do for the tier file.")
        return "\n".join(lines)
    lines += ["", *changes_table(result)]
    for when in When:
        lines += steps_lines(result, when)
    floors = result.workload.floors() if result.control_plane else []
    if floors:
        lines += ["", "Control-plane time (AWS's published API Gateway rates, per account and region):"]
        lines += [f"  {what}: at least {_duration(seconds)}" for what, seconds in floors]
    verdict = result.verdict
    lines += [
        "",
        f"Needs the operator steps above; `{result.deploy}` applies the rest."
        if verdict is Verdict.NEEDS_OPERATOR
        else f"`{result.deploy}` applies all of it by itself.",
    ]
    return "\n".join(lines)


def changes_table(result: Plan) -> list[str]:
    """The changes as table lines (a header, then one line per change)."""
    rows = [("CHANGE", "WHAT", "DETAIL")] + [(c.kind.value, c.subject, c.detail) for c in result.changes]
    return list(_table(rows))


def steps_lines(result: Plan, when: When) -> list[str]:
    """The operator steps to run ``when`` (before or after the deploy), with a heading; none: no lines."""
    steps = [step for step in result.steps if step.when is when]
    if not steps:
        return []
    return [
        "",
        f"Operator steps {when.value} `{result.deploy}`:",
        *(f"  {step.command}\n      {step.tenant}: {step.why}" for step in steps),
    ]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{math.ceil(seconds)} s"
    if seconds < 3600:
        return f"{math.ceil(seconds / 60)} min"
    hours, minutes = divmod(math.ceil(seconds / 60), 60)
    return f"{hours} h {minutes} min"


def _table(rows: Sequence[Sequence[str]]) -> Iterator[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        yield "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def project_name(project_file: Path = Path("Pulumi.yaml")) -> str:
    """The Pulumi project's name (``name:`` of Pulumi.yaml), or the project's own name when there is none."""
    try:
        document = yaml.safe_load(project_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return PROJECT
    name = document.get("name") if isinstance(document, dict) else None
    return name if isinstance(name, str) and name else PROJECT
