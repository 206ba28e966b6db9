"""`python -m tiers usage`: what each tenant used, per UTC day, from API Gateway's usage plans.

    python -m tiers usage --stack-outputs outputs.json [--region R]   # AWS: `pulumi stack output --json`
    python -m tiers usage --local-port 8080                            # the local stack
        [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--tenant ID] [--format table|csv|json]

The stack outputs give every tier's usage plan id and every tenant's API key id and tier. For
each plan, GetUsagePlan gives its quota (the default range is the current quota period, up to
today) and GetUsage, page by page (``position``), gives ``[used, remaining]`` per key and day;
key ids are joined back to tenant ids. The local stack answers the same two requests under
``/_local/apigateway``, so both run through one boto3 ``apigateway`` client.

Rows are per tenant and day: ``tenant,tier,date,used,remaining``. A tenant without a single
request in the range is absent from GetUsage's answer; it gets ``used`` 0 and ``remaining``
the plan's whole limit on each day.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from tiers.local_stack import (
    DUMMY_CREDENTIALS,
    HOST,
    MANAGEMENT_PREFIX,
    OUTPUTS_PATH,
    REGION,
    LocalStackUnreachableError,
    fetch,
)
from tiers.model import Quota, QuotaPeriod
from tiers.quota import quota_period
from tiers.table import text_table

USAGE_HISTORY_DAYS: Final = 90
"""GetUsage reads at most 90 days back."""
PAGE_KEYS: Final = 500
"""GetUsage's largest page (keys per page)."""
CSV_COLUMNS: Final = ("tenant", "tier", "date", "used", "remaining")
DEFAULT_REGION: Final = "us-east-1"
# GetUsage is a management call: API Gateway throttles it per account, so back off and retry.
_CLIENT_CONFIG: Final = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 8}
)


class UsageError(Exception):
    """``str(error)`` is one line: what is wrong and what to do."""


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True)
class StackTenant:
    tenant_id: str
    tier: str
    api_key_id: str


@dataclass(frozen=True)
class StackPlans:
    """What the stack outputs say about metering: tier -> usage plan id, tenants with key id and tier."""

    plans: Mapping[str, str]
    tenants: Mapping[str, StackTenant]


@dataclass(frozen=True)
class UsageRow:
    tenant: str
    tier: str
    day: date
    used: int
    remaining: int

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "tier": self.tier,
            "date": self.day.isoformat(),
            "used": self.used,
            "remaining": self.remaining,
        }


@dataclass(frozen=True)
class DateRange:
    start: date | None
    end: date | None


# ---------------------------------------------------------------------------------------------------------
# Stack outputs


def stack_plans(outputs: object, source: str) -> StackPlans:
    """The plans and tenants in ``outputs`` (the JSON of `pulumi stack output --json`)."""
    if not isinstance(outputs, dict) or not outputs:
        raise UsageError(
            f"{source} holds no stack outputs: the stack is not deployed. Run `pulumi up`, then pass "
            "`pulumi stack output --json` (a file, or - for standard input)."
        )
    plans = outputs.get("plans")
    tenants = outputs.get("tenants")
    if not isinstance(plans, dict) or not isinstance(tenants, dict):
        missing = ", ".join(name for name in ("plans", "tenants") if not isinstance(outputs.get(name), dict))
        raise UsageError(
            f"{source} has no {missing} output: these are not a tenant-tiers stack's outputs, or the stack "
            "was deployed before they existed. Run `pulumi up` with this program and export them again."
        )
    parsed: dict[str, StackTenant] = {}
    for tenant_id, entry in tenants.items():
        key_id = entry.get("apiKeyId") if isinstance(entry, dict) else None
        tier = entry.get("tier") if isinstance(entry, dict) else None
        if not isinstance(key_id, str) or not isinstance(tier, str) or tier not in plans:
            raise UsageError(
                f"{source}: tenants.{tenant_id} needs apiKeyId and a tier listed under plans; export the "
                "outputs of a complete `pulumi up` again."
            )
        parsed[str(tenant_id)] = StackTenant(str(tenant_id), tier, key_id)
    return StackPlans(plans={str(tier): str(plan_id) for tier, plan_id in plans.items()}, tenants=parsed)


def read_outputs_file(path: str, stdin: Callable[[], str] = sys.stdin.read) -> object:
    source = "standard input" if path == "-" else path
    try:
        text = stdin() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such file. Write it with `pulumi stack output --json > {path}`, "
            "or pass - and pipe the outputs in."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{source} cannot be read ({error}); check the path.") from None
    if not text.strip():
        raise UsageError(
            f"{source} is empty: the stack is not deployed, or the command that wrote it failed. "
            "Run `pulumi up`, then `pulumi stack output --json`."
        )
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(
            f"{source} is not JSON ({error}); pass what `pulumi stack output --json` prints."
        ) from None


def local_outputs(port: int) -> object:
    try:
        return fetch(port, OUTPUTS_PATH)
    except LocalStackUnreachableError as error:
        raise UsageError(str(error)) from None


def apigateway_client(*, region: str | None = None, local_port: int | None = None) -> Any:
    """The one client both targets use: AWS in ``region``, or the local stack's API Gateway emulation."""
    if local_port is not None:
        return boto3.session.Session(**DUMMY_CREDENTIALS).client(
            "apigateway",
            region_name=REGION,
            endpoint_url=f"http://{HOST}:{local_port}{MANAGEMENT_PREFIX}",
            config=_CLIENT_CONFIG,
        )
    session = boto3.session.Session()
    return session.client(
        "apigateway", region_name=region or session.region_name or DEFAULT_REGION, config=_CLIENT_CONFIG
    )


# ---------------------------------------------------------------------------------------------------------
# Dates


def parse_day(text: str) -> date:
    """A YYYY-MM-DD date, for argparse."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: use YYYY-MM-DD, such as 2026-11-01"
        ) from None


def check_range(requested: DateRange, today: date) -> None:
    """Refuse what GetUsage cannot answer: a reversed range, days before its 90-day window, the future."""
    oldest = today - timedelta(days=USAGE_HISTORY_DAYS)
    if requested.start is not None and requested.end is not None and requested.start > requested.end:
        raise UsageError(
            f"--from {requested.start} is after --to {requested.end}; swap them or pick another range."
        )
    if requested.start is not None and requested.start < oldest:
        raise UsageError(
            f"--from {requested.start} is more than {USAGE_HISTORY_DAYS} days ago: API Gateway keeps usage "
            f"for {USAGE_HISTORY_DAYS} days. Use --from {oldest} or later (today is {today}, UTC)."
        )
    for flag, day in (("--from", requested.start), ("--to", requested.end)):
        if day is not None and day > today:
            raise UsageError(
                f"{flag} {day} is in the future (today is {today}, UTC); usage exists up to today."
            )


def range_for(quota: Quota, requested: DateRange, today: date) -> tuple[date, date]:
    """The requested range, a missing end being today and a missing start the current quota period's start."""
    end = requested.end or today
    start = requested.start
    if start is None:
        period_start, _ = quota_period(quota, datetime.combine(today, datetime.min.time(), UTC))
        start = period_start.date()
    if start > end:
        raise UsageError(
            f"--to {end} is before the current quota period, which starts on {start}; give --from as well."
        )
    return start, end


# ---------------------------------------------------------------------------------------------------------
# GetUsage


def plan_quota(client: Any, plan_id: str, tier: str) -> Quota:
    answer = _call(client.get_usage_plan, tier, plan_id, usagePlanId=plan_id)
    quota = answer.get("quota") or {}
    try:
        return Quota(
            limit=int(quota["limit"]), period=QuotaPeriod(quota["period"]), offset=int(quota.get("offset", 0))
        )
    except (KeyError, TypeError, ValueError):
        raise UsageError(
            f"usage plan {plan_id} (tier {tier}) has no quota; it is not one this program declares."
        ) from None


def usage_pages(
    client: Any, plan_id: str, tier: str, start: date, end: date, key_id: str | None = None
) -> dict[str, list[list[int]]]:
    """GetUsage of one plan, every page followed by its ``position``: key id -> [used, remaining] per day."""
    request: dict[str, Any] = {
        "usagePlanId": plan_id,
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "limit": PAGE_KEYS,
    }
    if key_id is not None:
        request["keyId"] = key_id
    items: dict[str, list[list[int]]] = {}
    seen: set[str] = set()
    while True:
        page = _call(client.get_usage, tier, plan_id, **request)
        items.update(page.get("items") or {})
        position = page.get("position")
        if not position:
            return items
        if position in seen:
            raise UsageError(
                f"GetUsage of usage plan {plan_id} (tier {tier}) returned position {position!r} twice; "
                "stopped instead of looping. Retry; if it persists, report it."
            )
        seen.add(position)
        request["position"] = position


def collect_usage(
    client: Any,
    stack: StackPlans,
    requested: DateRange,
    *,
    tenant: str | None = None,
    today: date | None = None,
) -> list[UsageRow]:
    """Rows per tenant (stack output order) and day, over every plan of the stack."""
    today = today or datetime.now(UTC).date()
    check_range(requested, today)
    if tenant is not None and tenant not in stack.tenants:
        known = ", ".join(stack.tenants) or "none"
        raise UsageError(f"unknown tenant {tenant!r}: the stack's tenants are {known}.")
    wanted = [stack.tenants[tenant]] if tenant is not None else list(stack.tenants.values())
    by_tenant: dict[str, list[UsageRow]] = {}
    for tier, plan_id in stack.plans.items():
        members = [member for member in wanted if member.tier == tier]
        if not members:
            continue
        quota = plan_quota(client, plan_id, tier)
        start, end = range_for(quota, requested, today)
        items = usage_pages(
            client, plan_id, tier, start, end, key_id=members[0].api_key_id if tenant else None
        )
        for member in members:
            by_tenant[member.tenant_id] = list(_rows(member, items.get(member.api_key_id), start, end, quota))
    return [row for member in wanted for row in by_tenant.get(member.tenant_id, [])]


def _rows(
    member: StackTenant, days: Sequence[Sequence[int]] | None, start: date, end: date, quota: Quota
) -> Iterator[UsageRow]:
    remaining = quota.limit
    for index in range((end - start).days + 1):
        used = 0
        if days is not None and index < len(days):
            used, remaining = int(days[index][0]), int(days[index][1])
        yield UsageRow(member.tenant_id, member.tier, start + timedelta(days=index), used, remaining)


def _call(operation: Callable[..., Any], tier: str, plan_id: str, **request: Any) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = operation(**request)
    except NoCredentialsError:
        raise UsageError(
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE or the AWS_* variables) "
            "for the account the stack is deployed in."
        ) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "NotFoundException" and "keyId" in request and "key" in message.lower():
            raise UsageError(
                f"API key {request['keyId']} is not in usage plan {plan_id} of tier {tier} ({message}): the "
                "stack outputs are stale. Export them again after `pulumi up`."
            ) from None
        if code == "NotFoundException":
            raise UsageError(
                f"usage plan {plan_id} of tier {tier} was not found ({message}): the stack is not deployed "
                "in this account and region, or the outputs are stale. Check --region, or export the "
                "outputs again after `pulumi up`."
            ) from None
        raise UsageError(f"API Gateway refused {request} for tier {tier}: {code}: {message}") from None
    except BotoCoreError as error:
        raise UsageError(f"API Gateway could not be reached for tier {tier}: {error}") from None
    return answer


# ---------------------------------------------------------------------------------------------------------
# Output


def render(rows: Sequence[UsageRow], output_format: OutputFormat) -> str:
    if output_format is OutputFormat.CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows((row.tenant, row.tier, row.day.isoformat(), row.used, row.remaining) for row in rows)
        return buffer.getvalue()
    if output_format is OutputFormat.JSON:
        return json.dumps([row.as_json() for row in rows], indent=2) + "\n"
    if not rows:
        return "no usage rows: the stack has no tenants.\n"
    table = [tuple(column.upper() for column in CSV_COLUMNS)]
    table += [(row.tenant, row.tier, row.day.isoformat(), str(row.used), str(row.remaining)) for row in rows]
    return "\n".join(text_table(table)) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Command line


def add_usage_command(commands: Any) -> None:
    """Register `usage` on the `python -m tiers` subcommands."""
    usage = commands.add_parser(
        "usage",
        help="per-tenant, per-day usage from the stack's usage plans (for billing)",
        description="Per-tenant, per-day requests used and quota remaining, from API Gateway's usage plans.",
    )
    target = usage.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--stack-outputs",
        metavar="FILE",
        help="the stack's `pulumi stack output --json` (a file, or - for standard input): reads AWS",
    )
    target.add_argument("--local-port", type=_port, metavar="PORT", help="read the local stack on this port")
    usage.add_argument(
        "--region", help=f"AWS region of the stack (default: the AWS configuration, else {DEFAULT_REGION})"
    )
    usage.add_argument(
        "--from",
        dest="start",
        type=parse_day,
        metavar="DATE",
        help="first day, YYYY-MM-DD (UTC); default: the start of each tier's current quota period",
    )
    usage.add_argument(
        "--to", dest="end", type=parse_day, metavar="DATE", help="last day (UTC); default: today"
    )
    usage.add_argument("--tenant", metavar="ID", help="only this tenant")
    usage.add_argument(
        "--format",
        type=OutputFormat,
        choices=list(OutputFormat),
        default=OutputFormat.TABLE,
        help="default: %(default)s",
    )
    usage.set_defaults(command=run_usage)


def run_usage(args: argparse.Namespace) -> int:
    try:
        if args.local_port is not None:
            stack = stack_plans(local_outputs(args.local_port), f"the local stack on port {args.local_port}")
            client = apigateway_client(local_port=args.local_port)
        else:
            stack = stack_plans(read_outputs_file(args.stack_outputs), args.stack_outputs)
            client = apigateway_client(region=args.region)
        rows = collect_usage(client, stack, DateRange(args.start, args.end), tenant=args.tenant)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(render(rows, args.format))
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use a whole number from 1 to 65535")
    return int(text)
