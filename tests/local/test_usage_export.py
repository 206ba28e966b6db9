"""`python -m tiers usage --local-port` end to end: requests through the local gateway, then the export.

The local stack answers GetUsagePlan and GetUsage itself (moto implements neither), so the export
runs the same boto3 code path it runs against AWS.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from local.client import id_token
from tests.local.conftest import REPO, StackProcess, call_api, running_stack

TIERS = textwrap.dedent(
    """\
    tiers:
      daily:
        isolation: pooled
        throttle: {rate: 100, burst: 100}
        quota: {limit: 40, period: DAY}
      monthly:
        isolation: silo
        throttle: {rate: 100, burst: 100}
        quota: {limit: 1000, period: MONTH}
    tenants:
      alpha: {tier: daily}
      bravo: {tier: daily}
      charlie: {tier: monthly}
      delta: {tier: monthly}
      idle: {tier: daily}
    """
)
# Requests each tenant sends (idle sends none); alpha's go past the daily quota of 40.
SENT = {"alpha": 45, "bravo": 3, "charlie": 7, "delta": 1}
LIMITS = {"alpha": 40, "bravo": 40, "charlie": 1000, "delta": 1000, "idle": 40}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    workdir = tmp_path_factory.mktemp("usage")
    tiers_file = workdir / "tiers.yaml"
    tiers_file.write_text(TIERS)
    with running_stack(tiers_file, workdir, "--quiet") as running:
        for tenant, count in SENT.items():
            token = id_token(tenant, running.port)
            for _ in range(count):
                call_api(running.port, "GET", "/tenant", token)
        yield running
    assert "Traceback" not in running.output()


def tiers_usage(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tiers", "usage", "--local-port", str(port), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_csv_export_counts_exactly_the_admitted_requests_of_the_day(stack: StackProcess) -> None:
    # GIVEN N requests per tenant today (alpha's last 5 refused by its daily quota of 40)
    # WHEN the usage of today is exported as CSV
    completed = tiers_usage(stack.port, "--format", "csv", "--from", today())
    assert completed.returncode == 0, completed.stderr
    rows = list(csv.DictReader(io.StringIO(completed.stdout)))
    # THEN the columns are exactly tenant,tier,date,used,remaining
    assert completed.stdout.splitlines()[0] == "tenant,tier,date,used,remaining"
    # AND each tenant has one row for today: used = admitted requests, remaining = limit - used
    by_tenant = {row["tenant"]: row for row in rows if row["date"] == today()}
    assert set(by_tenant) == set(LIMITS)
    for tenant, limit in LIMITS.items():
        used = min(SENT.get(tenant, 0), limit)
        assert by_tenant[tenant]["used"] == str(used), tenant
        assert by_tenant[tenant]["remaining"] == str(limit - used), tenant
    assert by_tenant["charlie"]["tier"] == "monthly"


def test_json_export_of_one_tenant_over_its_default_period(stack: StackProcess) -> None:
    # WHEN one MONTH-tier tenant's usage is exported as JSON with no range (its current month)
    completed = tiers_usage(stack.port, "--format", "json", "--tenant", "charlie")
    assert completed.returncode == 0, completed.stderr
    rows = json.loads(completed.stdout)
    # THEN one object per day from the 1st of the month to today, only for that tenant
    first = datetime.now(UTC).date().replace(day=1)
    assert [row["date"] for row in rows] == [
        (first + timedelta(days=index)).isoformat()
        for index in range((datetime.now(UTC).date() - first).days + 1)
    ]
    assert {row["tenant"] for row in rows} == {"charlie"}
    assert set(rows[-1]) == {"tenant", "tier", "date", "used", "remaining"}
    assert (rows[-1]["used"], rows[-1]["remaining"]) == (7, 993)
    assert sum(row["used"] for row in rows) == 7


def test_the_table_is_the_default_format(stack: StackProcess) -> None:
    completed = tiers_usage(stack.port, "--tenant", "bravo", "--from", today())
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == [
        "TENANT",
        "TIER",
        "DATE",
        "USED",
        "REMAINING",
        "bravo",
        "daily",
        today(),
        "3",
        "37",
    ]


def test_the_local_stack_pages_getusage_like_api_gateway(stack: StackProcess) -> None:
    # GIVEN a plain boto3 client on the local stack's API Gateway emulation
    outputs = json.loads(call_api(stack.port, "GET", "/_local/outputs").body)
    client = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        "apigateway", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{stack.port}/_local/apigateway"
    )
    # WHEN the daily plan's usage is read one key per page
    request = {"usagePlanId": outputs["plans"]["daily"], "startDate": today(), "endDate": today(), "limit": 1}
    pages = [client.get_usage(**request)]
    while "position" in pages[-1]:
        pages.append(client.get_usage(**request, position=pages[-1]["position"]))
    # THEN each page holds one key, and together they are the plan's three keys with their usage
    assert [len(page["items"]) for page in pages] == [1, 1, 1]
    merged = {key: days for page in pages for key, days in page["items"].items()}
    keys = {tenant: entry["apiKeyId"] for tenant, entry in outputs["tenants"].items()}
    assert merged == {keys["alpha"]: [[40, 0]], keys["bravo"]: [[3, 37]], keys["idle"]: [[0, 40]]}
    # AND the plan's quota is readable, as GetUsagePlan gives it
    plan = client.get_usage_plan(usagePlanId=outputs["plans"]["monthly"])
    assert plan["quota"] == {"limit": 1000, "offset": 0, "period": "MONTH"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--tenant", "zulu"),
            "unknown tenant 'zulu': the stack's tenants are alpha, bravo, charlie, delta, idle",
        ),
        (("--from", "2026-11-20", "--to", "2026-11-10"), "--from 2026-11-20 is after --to 2026-11-10"),
        (("--from", "2020-01-01"), "more than 90 days ago"),
    ],
)
def test_bad_filters_and_ranges_are_one_line_errors(
    stack: StackProcess, args: tuple[str, ...], expected: str
) -> None:
    completed = tiers_usage(stack.port, *args)
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert expected in completed.stderr
    assert "Traceback" not in completed.stderr


def test_no_running_stack_is_a_one_line_error(tmp_path: Path) -> None:
    completed = tiers_usage(9, "--format", "csv")
    assert completed.returncode == 1
    assert "no local stack answers on http://127.0.0.1:9/_local/outputs" in completed.stderr
    assert "python -m local up --port 9" in completed.stderr
