"""python -m local up | token TENANT | usage | reload: the local stack from the command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from local.client import LocalClientError, id_token, reload, usage, usage_table
from local.server import SHUTDOWN_GRACE_SECONDS
from local.settings import DEFAULT_PORT, DEFAULT_TIERS_FILE

MAX_PORT = 65_535


def _port(text: str, *, lowest: int = 1) -> int:
    if not text.isdigit() or not lowest <= int(text) <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port: use a whole number from {lowest} to {MAX_PORT}"
        )
    return int(text)


def _listen_port(text: str) -> int:
    """Port 0 asks the system for a free port; the banner says which one."""
    return _port(text, lowest=0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="The tenant API on this machine: real handlers, emulated AWS (moto), no AWS account.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser(
        "up", help="start the local stack and serve the tenant API until Ctrl-C or SIGTERM"
    )
    up.add_argument("--tiers", type=Path, default=DEFAULT_TIERS_FILE, help="tier file (default: %(default)s)")
    up.add_argument(
        "--port",
        type=_listen_port,
        default=DEFAULT_PORT,
        help="port on 127.0.0.1, 0 for any (default: %(default)s)",
    )
    up.add_argument(
        "--authorizer-cache-ttl",
        type=float,
        default=None,
        metavar="SECONDS",
        help="authorizer result cache TTL (default: the program's authorizerCacheTtlSeconds; 0 disables)",
    )
    up.add_argument("--quiet", action="store_true", help="no access log line per request")
    up.add_argument(
        "--lambda-tenant-isolation",
        action="store_true",
        help="run each tenant's requests in its own tenant API instance, as Lambda's tenant isolation mode "
        "does (the stack setting tenant-tiers:lambdaTenantIsolation)",
    )

    token = commands.add_parser("token", help="print a fresh ID token of a tenant's demo user")
    token.add_argument("tenant", help="tenant id from the tier file")
    token.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port of the running stack")

    usage_command = commands.add_parser("usage", help="per-tenant requests used and left in the quota period")
    usage_command.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port of the running stack")
    usage_command.add_argument("--json", action="store_true", help="print JSON instead of a table")

    reload_command = commands.add_parser(
        "reload",
        help="re-read the running stack's tier file and apply the edit as `pulumi up` would",
        description="The running stack reads its tier file again and applies the difference: new, "
        "suspended, resumed, moved and removed tenants, tier limits, renames, new tiers and silo tables. "
        "A bad file, or a silo table that would leave the stack without --unprotect, is refused and "
        "nothing changes. Exit status: 0 applied (or nothing to do), 1 refused or no stack.",
    )
    reload_command.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port of the running stack")
    reload_command.add_argument(
        "--unprotect",
        action="append",
        default=[],
        metavar="TENANT",
        help="let TENANT's silo table leave the stack (the local `pulumi state unprotect`); "
        "the table and its rows stay in the emulator. Repeat for several tenants",
    )
    reload_command.add_argument(
        "--dry-run", action="store_true", help="say what the reload would do and change nothing"
    )
    return parser


def _up(args: argparse.Namespace) -> int:
    # Imported here: moto and the handlers load only for `up`, so `token` and `usage` start fast.
    from local.stack import LocalStack, StackError, StackOptions
    from tiers.loader import CatalogError

    stop = threading.Event()

    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda _signum, _frame: stop.set())
    stack = LocalStack(
        StackOptions(
            tiers_file=args.tiers,
            port=args.port,
            authorizer_cache_ttl=args.authorizer_cache_ttl,
            access_log=not args.quiet,
            lambda_tenant_isolation=args.lambda_tenant_isolation,
        )
    )
    try:
        stack.start()
    except CatalogError as error:
        print(error, file=sys.stderr)
        return 1
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        print(stack.banner(), flush=True)
        while not stop.wait(0.5):
            pass
        print(
            f"stopping the local stack: answering requests in flight (at most {SHUTDOWN_GRACE_SECONDS:g} s)",
            flush=True,
        )
    finally:
        cut = stack.stop()
    if cut:
        print(
            f"{cut} connection(s) still open after {SHUTDOWN_GRACE_SECONDS:g} s were closed "
            "(requests still arriving were answered 408, requests being served were cut)",
            file=sys.stderr,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "up":
        return _up(args)
    try:
        if args.command == "token":
            print(id_token(args.tenant, args.port))
        elif args.command == "reload":
            done, report = reload(args.port, args.unprotect, dry_run=args.dry_run)
            print(report, file=sys.stdout if done else sys.stderr)
            return 0 if done else 1
        elif args.json:
            print(json.dumps(usage(args.port), indent=2))
        else:
            print(usage_table(usage(args.port)), end="")
    except LocalClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
