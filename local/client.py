"""The command-line side of a running local stack: its coordinates, sign-in tokens, usage."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from blueprint.identity import sign_in_username
from local.provision import DemoUser, create_demo_user
from local.settings import DUMMY_CREDENTIALS, HOST
from tiers.local_stack import RELOAD_PATH, STACK_PATH, USAGE_PATH, LocalStackUnreachableError
from tiers.local_stack import fetch as fetch_json

# A reload of thousands of tenants writes thousands of registry items to the emulator.
RELOAD_TIMEOUT_SECONDS = 600


class LocalClientError(Exception):
    """One line saying what went wrong and what to do."""


def fetch(port: int, path: str) -> Any:
    try:
        return fetch_json(port, path)
    except LocalStackUnreachableError as error:
        raise LocalClientError(str(error)) from None


def id_token(tenant_id: str, port: int) -> str:
    """A fresh ID token of ``tenant_id``'s demo user, from the stack's Cognito (USER_PASSWORD_AUTH).

    The first call for a tenant creates its demo user (see ``DemoUser``)."""
    stack = fetch(port, STACK_PATH)
    if not isinstance(stack, dict) or not isinstance(stack.get("tenants"), dict):
        raise LocalClientError(
            f"what answers on port {port} is not a tenant-tiers local stack; pass its --port"
        )
    tenant = stack["tenants"].get(tenant_id)
    if tenant is None:
        known = ", ".join(stack["tenants"]) or "none"
        raise LocalClientError(
            f"unknown tenant {tenant_id!r}: the stack on port {port} ({stack['tiers_file']}) has {known}"
        )
    cognito = boto3.session.Session(region_name=stack["region"], **DUMMY_CREDENTIALS).client(
        "cognito-idp", endpoint_url=stack["moto_endpoint"]
    )
    user = DemoUser(**tenant["demo_user"])
    try:
        try:
            return sign_in(cognito, stack["app_client_id"], user.username, user.password)
        except cognito.exceptions.UserNotFoundException:
            create_demo_user(cognito, stack["user_pool_id"], tenant_id, user)
            return sign_in(cognito, stack["app_client_id"], user.username, user.password)
    except (BotoCoreError, ClientError, KeyError, TypeError) as error:
        raise LocalClientError(
            f"sign-in of {user.username} on the stack on port {port} failed: {error}"
        ) from error


def sign_in(cognito: Any, app_client_id: str, username: str, password: str) -> str:
    """An ID token for ``username`` (USER_PASSWORD_AUTH), which matches whatever its case, as in the
    deployed pool (``blueprint.identity.sign_in_username``)."""
    answer = cognito.initiate_auth(
        ClientId=app_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": sign_in_username(username), "PASSWORD": password},
    )
    return str(answer["AuthenticationResult"]["IdToken"])


def reload(port: int, unprotect: Sequence[str] = (), *, dry_run: bool = False) -> tuple[bool, str]:
    """Ask the stack on ``port`` to follow its tier file: (applied, report); not applied: nothing changed."""
    url = f"http://{HOST}:{port}{RELOAD_PATH}"
    body = json.dumps({"unprotect": list(unprotect), "dry_run": dry_run}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=RELOAD_TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            answer = _json_or_none(error.read())
        if not isinstance(answer, dict) or not isinstance(answer.get("report"), str):
            raise LocalClientError(
                f"what answers on port {port} is not a tenant-tiers local stack that reloads "
                f"(HTTP {error.code} for {RELOAD_PATH}); pass the --port of `python -m local up`"
            ) from error
        return False, answer["report"]
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise LocalClientError(
            f"no local stack answers on {url} ({getattr(error, 'reason', error)}); "
            f"start one with `python -m local up --port {port}` or pass the --port it runs on"
        ) from error
    if not isinstance(answer, dict) or not isinstance(answer.get("report"), str):
        raise LocalClientError(f"what answers on port {port} is not a tenant-tiers local stack")
    return True, answer["report"]


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def usage(port: int) -> dict[str, Any]:
    report = fetch(port, USAGE_PATH)
    if not isinstance(report, dict) or not isinstance(report.get("tenants"), list):
        raise LocalClientError(
            f"what answers on port {port} is not a tenant-tiers local stack; pass its --port"
        )
    return report


def usage_table(report: dict[str, Any]) -> str:
    headers = (
        "TENANT",
        "TIER",
        "KEY",
        "USED",
        "LEFT",
        "QUOTA",
        "PERIOD START (UTC)",
        "PERIOD END (UTC)",
        "THROTTLE",
    )
    rows = [headers]
    for entry in report["tenants"]:
        quota, throttle = entry["quota"], entry["throttle"]
        rows.append(
            (
                entry["tenant_id"],
                entry["tier"],
                "enabled" if entry["enabled"] else "disabled",
                str(entry["used"]),
                str(entry["remaining"]),
                f"{quota['limit']}/{quota['period']}",
                _minutes(entry["period_start"]),
                _minutes(entry["period_end"]),
                f"{_number(throttle['rate'])}/s burst {throttle['burst']}",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(headers))]
    # Every line ends with a newline, the last one too, so the table can be written as it is.
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


def _minutes(timestamp: str) -> str:
    return timestamp[:16].replace("T", " ")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
