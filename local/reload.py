"""`python -m local reload`: the running local stack follows edits of its tier file, as `pulumi up` would.

The stack reads its tier file again, takes the difference from what it runs with ``tiers.plan`` (the diff
``python -m tiers plan`` prints) and applies it:

- a new tenant gets an API key in its tier's plan, a registry item and, on a silo tier, its silo table
  (its demo user is made in Cognito on its first ``token``, as at start);
- a suspension or resumption disables or enables the tenant's key and rewrites its registry item;
- a tier move puts the key in the new tier's plan (a new association: a full token bucket of the new
  tier; the key's usage stays) and rewrites the registry item; a pooled -> silo move creates the silo
  table;
- changed tier limits apply to every key of the tier (usage kept); a tier renamed with ``renamed_from``
  keeps its usage plan and plan id; a new tier gets a plan, a removed tier's plan is deleted;
- a removed tenant's key and registry item are deleted; its data stays (pooled rows, silo table, placement).

Refused, with nothing changed: a tier file the validator refuses (its messages); a silo table leaving the
stack (a silo tenant removed, or moved to a pooled tier) unless ``--unprotect TENANT`` says it may, the
local ``pulumi state unprotect`` (the table stays in the emulator, as ``retain_on_delete`` keeps it in
AWS); a silo table to create that exists already outside the stack (left there by such a removal:
``pulumi up`` fails to create it too); ``--unprotect`` of a tenant whose table is not leaving.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping, Set
from dataclasses import dataclass, field, replace
from typing import Any

from handlers.contract import DATA_PARTITION_KEY, PLACEMENT_PARTITION_KEY
from local.gateway import Response
from local.limits import UsagePlans, plan_keys
from local.management import ManagementApi
from local.provision import (
    DemoUser,
    Provisioned,
    ProvisionedTenant,
    create_silo_bucket,
    create_silo_table,
    new_api_key,
    new_demo_user,
    registry_items,
    write_registry,
)
from tiers.loader import CatalogError
from tiers.model import Catalog, Isolation
from tiers.plan import (
    Kind,
    Plan,
    StackNames,
    When,
    changes_table,
    plan,
    renamed_tiers,
    report,
    steps_lines,
)
from tiers.registry import data_table, file_bucket


@dataclass(frozen=True)
class ReloadRequest:
    unprotect: frozenset[str] = frozenset()
    """Tenants whose silo table may leave the stack (the local ``pulumi state unprotect``)."""
    dry_run: bool = False
    """Say what the reload would do, change nothing."""


class ReloadRefused(Exception):
    """The reload changed nothing; ``reasons`` say why and what to do, ``report`` is the whole answer."""

    def __init__(self, reasons: list[str], report: str) -> None:
        super().__init__("\n".join(reasons))
        self.reasons = reasons
        self.report = report


@dataclass(frozen=True)
class ReloadResult:
    plan: Plan
    applied: bool
    report: str

    def as_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "changes": [
                {"change": change.kind.value, "what": change.subject, "detail": change.detail}
                for change in self.plan.changes
            ],
            "steps": [
                {"when": step.when.value, "tenant": step.tenant, "command": step.command, "why": step.why}
                for step in self.plan.steps
            ],
            "report": self.report,
        }


@dataclass
class RunningStack:
    """What a reload reads and changes in a running local stack."""

    catalog: Catalog
    provisioned: Provisioned
    plans: UsagePlans
    management: ManagementApi
    dynamodb: Any
    names: StackNames
    """The local stack's names and port (its commands in messages)."""
    source: str
    """The tier file, as messages name it."""
    former_demo_users: MutableMapping[str, DemoUser] = field(default_factory=dict)
    """Demo users of removed tenants: still in Cognito, so a tenant added again signs in as before."""
    s3: Any = None
    """For the silo buckets of tenants that become silo (None: buckets are left alone)."""


def reload_stack(stack: RunningStack, new: Catalog, request: ReloadRequest) -> ReloadResult:
    """Apply the difference from ``stack.catalog`` to ``new`` (see the module docstring); the stack's
    catalog and provisioned tenants are replaced only once everything else has been applied.

    Raises ReloadRefused, with nothing changed."""
    old = stack.catalog
    result = plan(old, new, stack.names)
    problems = _refusals(stack, new, request.unprotect)
    if problems:
        raise ReloadRefused(problems, _refusal_report(stack, result, problems))
    if request.dry_run or not result.changes:
        return ReloadResult(result, applied=False, report=report(result, "the running stack", stack.source))

    unpinned = _unpinned_moves(stack, new, result)
    tenants = _tenants(stack, new)
    naming = stack.names.naming
    buckets = stack.provisioned.buckets
    old_items = registry_items(old, naming, buckets, stack.provisioned.tenants)
    new_items = registry_items(new, naming, buckets, tenants)
    changed = [item for tenant_id, item in new_items.items() if old_items.get(tenant_id) != item]
    removed = [tenant_id for tenant_id in old_items if tenant_id not in new_items]
    created = _create_silo_tables(stack, new)
    try:
        write_registry(stack.dynamodb, stack.provisioned.registry_table, changed, removed)
    except Exception:
        # Put back what was there: a reload applies whole or not at all.
        restored = [old_items[tenant_id] for tenant_id in old_items]
        added = [tenant_id for tenant_id in new_items if tenant_id not in old_items]
        write_registry(stack.dynamodb, stack.provisioned.registry_table, restored, added)
        for table in created:
            stack.dynamodb.delete_table(TableName=table)
        raise
    moved = {change.subject for change in result.changes if change.kind is Kind.TENANT_MOVED}
    stack.plans.update(
        plan_keys(new, {tenant_id: t.api_key for tenant_id, t in tenants.items()}),
        new_associations={tenants[tenant_id].api_key.value for tenant_id in moved},
    )
    stack.management.follow(new, naming, renamed_tiers(old, new))
    for tenant_id in removed:
        stack.former_demo_users[tenant_id] = stack.provisioned.tenants[tenant_id].demo_user
    stack.catalog = new
    stack.provisioned = replace(stack.provisioned, tenants=tenants)
    return ReloadResult(result, applied=True, report=_applied_report(stack, result, unpinned))


def silo_tenants(catalog: Catalog) -> set[str]:
    """Tenants with a silo table in the stack: the tables the program declares."""
    return {tenant.id for tenant in catalog.tenants.values() if catalog.is_silo(tenant)}


def _refusals(stack: RunningStack, new: Catalog, unprotect: Set[str]) -> list[str]:
    old = stack.catalog
    names = stack.names
    naming = names.naming
    leaving = silo_tenants(old) - silo_tenants(new)
    problems = []
    for tenant_id in sorted(leaving - unprotect):
        table = naming.silo_table(tenant_id)
        tenant = new.tenants.get(tenant_id)
        if tenant is None:
            why = f"tenant {tenant_id} is removed from the tier file"
            first = ""
        else:
            why = f"tenant {tenant_id} moves to the pooled tier {tenant.tier}"
            first = f"Copy its data first (`{names.migrate(tenant_id, Isolation.POOLED)}`), then run "
        problems.append(
            f"{why}, so its silo table {table} would leave the stack; the table is protected (on AWS "
            "`pulumi up` stops here until `pulumi state unprotect`). "
            + (first or "If you mean it, run ")
            + f"`{names.unprotect(tenant_id)}`: the table stays in the emulator, rows and all, until "
            f"`{names.decommission(tenant_id, table=table)}`."
        )
    for tenant_id in sorted(unprotect - leaving):
        problems.append(
            f"--unprotect {tenant_id}: "
            + (
                f"tenant {tenant_id}'s silo table does not leave the stack in this edit"
                if tenant_id in old.tenants
                else f"the running stack has no tenant {tenant_id}"
            )
            + "; nothing to unprotect. Leave it out."
        )
    for tenant_id in sorted(silo_tenants(new) - silo_tenants(old)):
        table = naming.silo_table(tenant_id)
        if _table_exists(stack.dynamodb, table):
            problems.append(
                f"tenant {tenant_id} needs the silo table {table}, which exists already outside the stack "
                "(its tenant's silo table left the stack earlier and was kept); `pulumi up` fails to "
                f"create it too. Export and delete it first: `{names.decommission(tenant_id, table=table)}`."
            )
    return problems


def _unpinned_moves(stack: RunningStack, new: Catalog, result: Plan) -> list[str]:
    """Tenants moving pooled -> silo with rows in the pooled table and no placement item: once the registry
    names their new silo table, that (empty) table serves them and their rows are not served. `pulumi up`
    does the same; the plan's first step (`migrate`, which pins them) avoids it."""
    naming = stack.names.naming
    unpinned = []
    for change in result.changes:
        tenant = new.tenants.get(change.subject)
        if change.kind is not Kind.STORAGE_MOVE or tenant is None or not new.is_silo(tenant):
            continue
        placement = stack.dynamodb.get_item(
            TableName=naming.placement_table,
            Key={PLACEMENT_PARTITION_KEY: {"S": tenant.id}},
            ConsistentRead=True,
        )
        rows = stack.dynamodb.query(
            TableName=naming.pooled_table,
            KeyConditionExpression="#tenant = :tenant",
            ExpressionAttributeNames={"#tenant": DATA_PARTITION_KEY},
            ExpressionAttributeValues={":tenant": {"S": tenant.id}},
            Select="COUNT",
            Limit=1,
        )
        if "Item" not in placement and rows["Count"]:
            unpinned.append(tenant.id)
    return unpinned


def _table_exists(dynamodb: Any, table: str) -> bool:
    try:
        dynamodb.describe_table(TableName=table)
    except dynamodb.exceptions.ResourceNotFoundException:
        return False
    return True


def _tenants(stack: RunningStack, new: Catalog) -> dict[str, ProvisionedTenant]:
    """Every tenant of ``new`` as provisioned: a tenant that stays keeps its key and demo user."""
    naming = stack.names.naming
    tenants = {}
    for tenant in new.tenants.values():
        before = stack.provisioned.tenants.get(tenant.id)
        tier = new.tier_of(tenant)
        tenants[tenant.id] = ProvisionedTenant(
            tenant=tenant,
            tier=tier,
            table=data_table(new, tenant, naming),
            bucket=file_bucket(new, tenant, stack.provisioned.buckets),
            api_key=before.api_key if before is not None else new_api_key(),
            demo_user=before.demo_user
            if before is not None
            else stack.former_demo_users.get(tenant.id) or new_demo_user(tenant.id),
        )
    return tenants


def _create_silo_tables(stack: RunningStack, new: Catalog) -> list[str]:
    naming = stack.names.naming
    created = []
    try:
        for tenant_id in sorted(silo_tenants(new) - silo_tenants(stack.catalog)):
            create_silo_table(stack.dynamodb, naming, tenant_id)
            created.append(naming.silo_table(tenant_id))
            if stack.s3 is not None:
                # Like the program's, a silo bucket is never deleted by the stack: it stays on a rollback.
                create_silo_bucket(stack.s3, stack.provisioned.buckets, tenant_id)
    except Exception:
        for table in created:
            stack.dynamodb.delete_table(TableName=table)
        raise
    return created


def _refusal_report(stack: RunningStack, result: Plan, problems: list[str]) -> str:
    lines = [f"reload of {stack.source} refused; the local stack is unchanged:"]
    lines += [f"  - {problem}" for problem in problems]
    if result.changes:
        lines += ["", "The edit:", *changes_table(result)]
    return "\n".join(lines)


def _applied_report(stack: RunningStack, result: Plan, unpinned: list[str]) -> str:
    lines = [f"reloaded {stack.source}: the local stack runs the edit now", "", *changes_table(result)]
    names = stack.names
    for tenant_id in unpinned:
        silo_table = names.naming.silo_table(tenant_id)
        lines += [
            "",
            f"warning: tenant {tenant_id} was not pinned before this reload, so its new silo table "
            f"{silo_table} serves it now and its rows in {names.naming.pooled_table} are not served. To "
            "serve them again, put it back on a pooled tier, run "
            f"`{names.unprotect(tenant_id)}` and retire the silo table with "
            f"`{names.decommission(tenant_id, table=silo_table)}` (it exports what was written there "
            f"since); then pin it with `{names.migrate(tenant_id, Isolation.SILO)}` before moving it to "
            "silo again.",
        ]
    # The unprotect step is done: the reload could not have applied without it.
    unprotect = {stack.names.unprotect(step.tenant) for step in result.steps}
    pending = replace(result, steps=[step for step in result.steps if step.command not in unprotect])
    before = steps_lines(pending, When.BEFORE)
    if before:
        lines += [
            "",
            "Operator steps this edit needed before the reload (`--dry-run` shows them before applying):",
            *before[2:],
        ]
    lines += steps_lines(result, When.AFTER)
    return "\n".join(lines)


def reload_response(body: bytes, reload: Callable[[ReloadRequest], ReloadResult]) -> Response:
    """``POST /_local/reload``: the request body ``{"unprotect": [TENANT, ...], "dry_run": false}`` (both
    optional), the answer 200 with the result, 400 for a bad tier file or body, 409 for a refused edit."""
    try:
        request = parse_reload_request(body)
    except ValueError as error:
        return json_response(400, {"refused": True, "reasons": [str(error)], "report": str(error)})
    try:
        result = reload(request)
    except CatalogError as error:
        message = f"reload refused; the local stack is unchanged. The tier file has problems:\n{error}"
        return json_response(400, {"refused": True, "reasons": [str(error)], "report": message})
    except ReloadRefused as refused:
        return json_response(409, {"refused": True, "reasons": refused.reasons, "report": refused.report})
    return json_response(200, result.as_json())


def parse_reload_request(body: bytes) -> ReloadRequest:
    """Raises ValueError saying what is wrong with the body."""
    try:
        document = json.loads(body or b"{}")
    except ValueError as error:
        raise ValueError(f"the reload request is not JSON ({error})") from None
    if not isinstance(document, dict) or set(document) - {"unprotect", "dry_run"}:
        raise ValueError('the reload request must be {"unprotect": [TENANT, ...], "dry_run": true|false}')
    unprotect = document.get("unprotect", [])
    dry_run = document.get("dry_run", False)
    if not isinstance(unprotect, list) or not all(isinstance(tenant, str) for tenant in unprotect):
        raise ValueError('"unprotect" must be a list of tenant ids')
    if not isinstance(dry_run, bool):
        raise ValueError('"dry_run" must be true or false')
    return ReloadRequest(unprotect=frozenset(unprotect), dry_run=dry_run)


def json_response(status: int, payload: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(payload).encode())
