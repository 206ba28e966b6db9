"""`python -m tiers`: check a tier file and manage a tenant's users.

    python -m tiers validate [FILE]
    python -m tiers plan OLD NEW | plan --git REV [FILE]  [--local-port PORT]
    python -m tiers users add TENANT EMAIL [--password P]
    python -m tiers users list [TENANT]
    python -m tiers users disable EMAIL
    python -m tiers usage (--stack-outputs FILE | --local-port PORT) [--from DATE] [--to DATE] ...
    python -m tiers migrate TENANT --to silo|pooled (--stack-outputs FILE|- | --local-port PORT)
    python -m tiers decommission TENANT (--stack-outputs FILE|- | --local-port PORT)

Exit codes: 0 done, 1 the tier file or AWS said no (the reason is printed),
2 the command line itself is wrong (argparse's message); `plan` has its own (see tiers/plan.py);
`migrate` exits 3 when it only pinned the tenant to its current table because the target table does
not exist yet: run it again after `pulumi up`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from tiers.datastore import DataStoreError, StackTables, stack_tables_from_local, stack_tables_from_outputs
from tiers.decommission import DecommissionError, DecommissionOptions, decommission
from tiers.loader import CatalogError, load_catalog
from tiers.migration import (
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_UPLOAD_GRACE_SECONDS,
    MigrationError,
    MigrationOptions,
    MigrationOutcome,
    migrate,
)
from tiers.model import Catalog, Isolation, Tier
from tiers.naming import LOCAL_STACK, PROJECT
from tiers.plan import StackNames, Verdict, catalog_at_revision, plan, project_name, report
from tiers.table import text_table as _table
from tiers.usage import UsageError, add_usage_command, read_outputs_file
from tiers.users import DEFAULT_REGION, UserError, add_user, cognito_client, disable_user, list_users

DEFAULT_TIERS_FILE: Final = "tiers/dev.yaml"
USER_POOL_ENV: Final = "TENANT_TIERS_USER_POOL_ID"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Said by the command's own parser where it has one: `plan` exits 1 on a wrong command line.
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        code: int = args.command(args)
    except CatalogError as error:
        print(error, file=sys.stderr)
        return 1
    except (UserError, DataStoreError, MigrationError, DecommissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def summary(catalog: Catalog, source: str) -> str:
    """What a valid tier file declares: per tier its settings and tenants, then the totals."""
    members = Counter(tenant.tier for tenant in catalog.tenants.values())
    suspended = Counter(tenant.tier for tenant in catalog.tenants.values() if tenant.suspended)
    silo = sum(count for name, count in members.items() if catalog.tiers[name].isolation is Isolation.SILO)
    rows = [("tier", "isolation", "throttle", "quota", "tenants")]
    for tier in catalog.tiers.values():
        paused = suspended[tier.name]
        count = f"{members[tier.name]}" + (f" ({paused} suspended)" if paused else "")
        rows.append((tier.name, str(tier.isolation), _throttle(tier), _quota(tier), count))
    headline = (
        f"{source}: valid. {_count(len(catalog.tiers), 'tier')}, {_count(len(catalog.tenants), 'tenant')} "
        f"({silo} {Isolation.SILO}, {suspended.total()} suspended)."
    )
    return "\n".join([headline, *("  " + line for line in _table(rows))])


def _validate(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.file)
    print(summary(catalog, args.file))
    return 0


def _plan(args: argparse.Namespace) -> int:
    if args.git is not None:
        if len(args.files) > 1:
            raise _usage_error(args, "with --git REV give at most one FILE (the working copy to compare)")
        new_file = args.files[0] if args.files else DEFAULT_TIERS_FILE
        old = catalog_at_revision(args.git, new_file)
        old_source = f"{args.git}:{new_file}"
    elif len(args.files) == 2:
        old_source, new_file = args.files
        old = load_catalog(old_source)
    else:
        raise _usage_error(args, "give two tier files, OLD NEW, or --git REV [FILE]")
    new = load_catalog(new_file)
    names = StackNames(project=args.project or project_name(), stack=args.stack or Path(new_file).stem)
    if args.local_port is not None:
        if args.stack is not None or args.project is not None:
            raise _usage_error(args, "--local-port names the local stack: leave out --stack and --project")
        names = StackNames(project=PROJECT, stack=LOCAL_STACK, local_port=args.local_port)
    result = plan(old, new, names)
    print(report(result, old_source, new_file))
    return int(result.verdict)


def _usage_error(args: argparse.Namespace, message: str) -> SystemExit:
    args.parser.error(message)
    return SystemExit(int(Verdict.ERROR))  # not reached: error() exits


class _CommandParser(argparse.ArgumentParser):
    """A command's parser; `plan` exits 1 on a wrong command line, since its 2 means "changes"."""

    def __init__(self, *args: Any, usage_error_status: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_error_status = usage_error_status

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_error_status, f"{self.prog}: error: {message}\n")


def _users_add(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.tiers)
    user = add_user(
        _client(args),
        args.user_pool_id,
        catalog,
        args.tenant,
        args.email,
        password=args.password,
        tiers_file=args.tiers,
    )
    how = (
        "the password is set; they can sign in now"
        if args.password is not None
        else "Cognito emails them an invitation with a temporary password"
    )
    print(f"created user {user.email} for tenant {args.tenant} ({how}).")
    if catalog.tenants[args.tenant].suspended:
        print(
            f"note: tenant {args.tenant} is suspended in {args.tiers}; its users get 403 until it is resumed."
        )
    return 0


def _users_list(args: argparse.Namespace) -> int:
    users = list_users(_client(args), args.user_pool_id, args.tenant)
    if not users:
        print("no users" + (f" of tenant {args.tenant}" if args.tenant else "") + " in the pool.")
        return 0
    rows = [("email", "tenant", "status", "enabled")]
    rows += [
        (user.email, user.tenant_id or "-", user.status, "yes" if user.enabled else "no") for user in users
    ]
    print("\n".join(_table(rows)))
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    username = disable_user(_client(args), args.user_pool_id, args.email)
    print(f"disabled user {username}; tokens already issued stay valid until they expire.")
    return 0


def _stack_tables(args: argparse.Namespace) -> StackTables:
    if args.local_port is not None:
        return stack_tables_from_local(args.local_port)
    name = "standard input" if args.stack_outputs == "-" else args.stack_outputs
    try:
        outputs = read_outputs_file(args.stack_outputs, lambda: sys.stdin.read())
    except UsageError as error:
        raise DataStoreError(str(error)) from error
    return stack_tables_from_outputs(outputs, region=args.region, name=name)


def _migrate(args: argparse.Namespace) -> int:
    tables = _stack_tables(args)
    options = MigrationOptions(
        keep_source=args.keep_source,
        drain_seconds=args.drain_seconds,
        upload_grace_seconds=args.upload_grace_seconds,
    )
    outcome = migrate(tables, args.tenant, Isolation(args.to), options)
    return 3 if outcome is MigrationOutcome.PINNED else 0


def _decommission(args: argparse.Namespace) -> int:
    tables = _stack_tables(args)
    decommission(
        tables,
        args.tenant,
        DecommissionOptions(out=args.out, table=args.table, delete_table=args.delete_table),
    )
    return 0


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 3600")
    return value


def _client(args: argparse.Namespace) -> object:
    return cognito_client(region=args.region, endpoint_url=args.endpoint_url)


def _throttle(tier: Tier) -> str:
    rate = tier.throttle.rate
    return f"{int(rate) if rate.is_integer() else rate}/s burst {tier.throttle.burst}"


def _quota(tier: Tier) -> str:
    offset = f" offset {tier.quota.offset}" if tier.quota.offset else ""
    return f"{tier.quota.limit:,}/{tier.quota.period}{offset}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tiers", description="Check tier files; manage tenant users."
    )
    commands = parser.add_subparsers(
        dest="name", required=True, metavar="COMMAND", parser_class=_CommandParser
    )

    validate = commands.add_parser("validate", help="check a tier file and summarise it")
    validate.add_argument(
        "file", nargs="?", default=DEFAULT_TIERS_FILE, metavar="FILE", help="default: %(default)s"
    )
    validate.set_defaults(command=_validate)

    planning = commands.add_parser(
        "plan",
        usage_error_status=int(Verdict.ERROR),
        help="what an edit of the tier file does, and the operator steps it needs",
        description="Compare two tier files (OLD NEW), or a file at a git revision with the working copy "
        "(--git REV [FILE]). Exit status: 0 no changes, 1 a file is wrong, 2 changes `pulumi up` applies "
        "by itself, 3 changes that need an operator step.",
    )
    planning.add_argument("files", nargs="*", metavar="FILE", help="OLD NEW, or with --git the working copy")
    planning.add_argument("--git", metavar="REV", help="compare FILE as it was at git revision REV")
    planning.add_argument("--stack", help="the Pulumi stack, for table names and URNs (default: FILE's name)")
    planning.add_argument("--project", help="the Pulumi project (default: name in Pulumi.yaml)")
    planning.add_argument(
        "--local-port",
        type=int,
        metavar="PORT",
        help="the edit is for the local stack on this port: its table names and commands",
    )
    planning.set_defaults(command=_plan, parser=planning)

    aws = _CommandParser(add_help=False)
    pool_default = os.environ.get(USER_POOL_ENV)
    aws.add_argument(
        "--user-pool-id",
        default=pool_default,
        required=pool_default is None,
        help=f"the stack's user pool id (default: ${USER_POOL_ENV})",
    )
    aws.add_argument(
        "--endpoint-url", help="an AWS-compatible endpoint such as the local stack's; default: AWS"
    )
    aws.add_argument("--region", help=f"default: the AWS configuration, else {DEFAULT_REGION}")

    users = commands.add_parser("users", help="a tenant's users in the Cognito user pool")
    user_commands = users.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = user_commands.add_parser("add", parents=[aws], help="create a user of a tenant")
    add.add_argument("tenant", metavar="TENANT", help="a tenant id from the tier file")
    add.add_argument("email", metavar="EMAIL", help="the user's email, also their username")
    add.add_argument("--password", help="set this permanent password (no invitation email)")
    add.add_argument(
        "--tiers", default=DEFAULT_TIERS_FILE, metavar="FILE", help="tier file (default: %(default)s)"
    )
    add.set_defaults(command=_users_add)

    listing = user_commands.add_parser("list", parents=[aws], help="list users, of one tenant if given")
    listing.add_argument("tenant", nargs="?", metavar="TENANT")
    listing.set_defaults(command=_users_list)

    disable = user_commands.add_parser("disable", parents=[aws], help="disable a user (sign-in refused)")
    disable.add_argument("email", metavar="EMAIL")
    disable.set_defaults(command=_users_disable)

    add_usage_command(commands)

    stack = _CommandParser(add_help=False)
    where = stack.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--stack-outputs",
        metavar="FILE",
        help="the stack's `pulumi stack output --json`, in FILE or `-` for standard input (AWS)",
    )
    where.add_argument("--local-port", type=int, metavar="PORT", help="the local stack on this port")
    stack.add_argument(
        "--region", help="with --stack-outputs: the stack's region (default: AWS configuration)"
    )

    move = commands.add_parser(
        "migrate",
        parents=[stack],
        help="move a tenant's data to its silo table or the pooled table, without losing a write",
    )
    move.add_argument("tenant", metavar="TENANT", help="a deployed tenant id")
    move.add_argument("--to", required=True, choices=[isolation.value for isolation in Isolation])
    move.add_argument(
        "--keep-source", action="store_true", help="keep the tenant's rows in the old table after the move"
    )
    move.add_argument(
        "--drain-seconds",
        type=_non_negative_seconds,
        default=DEFAULT_DRAIN_SECONDS,
        metavar="S",
        help="wait before deleting the old rows, for requests that read the old location "
        "(default: the tenant API's timeout, %(default)s)",
    )
    move.add_argument(
        "--upload-grace-seconds",
        type=_non_negative_seconds,
        default=DEFAULT_UPLOAD_GRACE_SECONDS,
        metavar="S",
        help="before copying the files, wait for the tenant's upload URLs issued before the fence to "
        "expire and then this long, for uploads S3 is still receiving (default: %(default)g)",
    )
    move.set_defaults(command=_migrate)

    retire = commands.add_parser(
        "decommission",
        parents=[stack],
        help="export a removed (or silo-leaving) tenant's data to JSON lines, verify, then remove it",
    )
    retire.add_argument("tenant", metavar="TENANT")
    retire.add_argument(
        "--out", type=Path, metavar="FILE", help="export file (default: TENANT-export-<UTC time>.jsonl)"
    )
    retire.add_argument("--table", metavar="TABLE", help="only the tenant's rows in this table")
    retire.add_argument(
        "--delete-table",
        action="store_true",
        help="once empty, turn off deletion protection of the tenant's silo table and delete it "
        "(only when the stack no longer declares it)",
    )
    retire.set_defaults(command=_decommission)
    return parser
