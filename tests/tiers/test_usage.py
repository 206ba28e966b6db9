"""`python -m tiers usage` against recorded API Gateway answers (botocore Stubber): paging, gaps, errors.

The answers below have the shapes API Gateway sends: GetUsagePlan with its quota, GetUsage with
``values`` (``items`` in boto3) per key id, one ``[used, remaining]`` per day, a ``position`` while
more keys follow, and keys without a single request in the range left out.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tiers.cli import main
from tiers.usage import (
    CSV_COLUMNS,
    DateRange,
    OutputFormat,
    StackPlans,
    UsageError,
    collect_usage,
    read_outputs_file,
    render,
    stack_plans,
)

TODAY = date(2026, 11, 30)
OUTPUTS: dict[str, Any] = {
    "apiUrl": "https://abc.execute-api.us-east-1.amazonaws.com/v1",
    "plans": {"basic": "pl4n01", "premium": "pl4n02"},
    "tenants": {
        "acme": {"apiKeyId": "key0acme01", "table": "t-silo-acme", "tier": "premium"},
        "globex": {"apiKeyId": "key0globex", "table": "t-pooled", "tier": "basic"},
        "initech": {"apiKeyId": "key0initec", "table": "t-pooled", "tier": "basic"},
        "umbrella": {"apiKeyId": "key0umbrel", "table": "t-pooled", "tier": "basic"},
    },
}
BASIC_PLAN = {"id": "pl4n01", "name": "p-basic", "quota": {"limit": 1000, "offset": 0, "period": "MONTH"}}
PREMIUM_PLAN = {"id": "pl4n02", "name": "p-premium", "quota": {"limit": 50, "offset": 0, "period": "DAY"}}


@pytest.fixture
def client() -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("apigateway")


def _stack() -> StackPlans:
    return stack_plans(OUTPUTS, "outputs.json")


def test_every_page_of_every_plan_is_read_and_joined_to_tenants(client: Any) -> None:
    # GIVEN the basic plan answers in two pages (position) and premium in one, for 28-30 Nov
    stubber = Stubber(client)
    stubber.add_response("get_usage_plan", BASIC_PLAN, {"usagePlanId": "pl4n01"})
    first = {"usagePlanId": "pl4n01", "startDate": "2026-11-28", "endDate": "2026-11-30", "limit": 500}
    stubber.add_response(
        "get_usage",
        {
            "usagePlanId": "pl4n01",
            "startDate": "2026-11-28",
            "endDate": "2026-11-30",
            "position": "next-page-token",
            "items": {"key0globex": [[5, 995], [0, 995], [7, 988]]},
        },
        first,
    )
    stubber.add_response(
        "get_usage",
        {
            "usagePlanId": "pl4n01",
            "startDate": "2026-11-28",
            "endDate": "2026-11-30",
            "items": {"key0umbrel": [[1, 999], [2, 997], [3, 994]]},
        },
        {**first, "position": "next-page-token"},
    )
    stubber.add_response("get_usage_plan", PREMIUM_PLAN, {"usagePlanId": "pl4n02"})
    stubber.add_response(
        "get_usage",
        {
            "usagePlanId": "pl4n02",
            "startDate": "2026-11-28",
            "endDate": "2026-11-30",
            "items": {"key0acme01": [[50, 0], [12, 38], [0, 50]]},
        },
        {"usagePlanId": "pl4n02", "startDate": "2026-11-28", "endDate": "2026-11-30", "limit": 500},
    )
    # WHEN usage is collected for that range
    with stubber:
        rows = collect_usage(client, _stack(), DateRange(date(2026, 11, 28), None), today=TODAY)
        stubber.assert_no_pending_responses()
    # THEN each tenant has a row per day, in stack output order, with the values of its own key
    table = [(row.tenant, row.tier, row.day.isoformat(), row.used, row.remaining) for row in rows]
    assert table == [
        ("acme", "premium", "2026-11-28", 50, 0),
        ("acme", "premium", "2026-11-29", 12, 38),
        ("acme", "premium", "2026-11-30", 0, 50),
        ("globex", "basic", "2026-11-28", 5, 995),
        ("globex", "basic", "2026-11-29", 0, 995),
        ("globex", "basic", "2026-11-30", 7, 988),
        # AND a tenant whose key had no request in the range (absent from every page) reads 0 used
        ("initech", "basic", "2026-11-28", 0, 1000),
        ("initech", "basic", "2026-11-29", 0, 1000),
        ("initech", "basic", "2026-11-30", 0, 1000),
        ("umbrella", "basic", "2026-11-28", 1, 999),
        ("umbrella", "basic", "2026-11-29", 2, 997),
        ("umbrella", "basic", "2026-11-30", 3, 994),
    ]


def test_the_default_range_is_each_plans_current_quota_period(client: Any) -> None:
    # GIVEN a MONTH plan and a DAY plan, and no --from/--to
    stubber = Stubber(client)
    stubber.add_response("get_usage_plan", BASIC_PLAN, {"usagePlanId": "pl4n01"})
    stubber.add_response(
        "get_usage",
        {"usagePlanId": "pl4n01", "startDate": "2026-11-01", "endDate": "2026-11-30", "items": {}},
        {"usagePlanId": "pl4n01", "startDate": "2026-11-01", "endDate": "2026-11-30", "limit": 500},
    )
    stubber.add_response("get_usage_plan", PREMIUM_PLAN, {"usagePlanId": "pl4n02"})
    stubber.add_response(
        "get_usage",
        {"usagePlanId": "pl4n02", "startDate": "2026-11-30", "endDate": "2026-11-30", "items": {}},
        {"usagePlanId": "pl4n02", "startDate": "2026-11-30", "endDate": "2026-11-30", "limit": 500},
    )
    # WHEN collected
    with stubber:
        rows = collect_usage(client, _stack(), DateRange(None, None), today=TODAY)
        stubber.assert_no_pending_responses()
    # THEN the MONTH tier covers the month so far and the DAY tier today only
    assert {row.day for row in rows if row.tier == "basic"} == {date(2026, 11, day) for day in range(1, 31)}
    assert {row.day for row in rows if row.tier == "premium"} == {TODAY}


def test_a_tenant_filter_asks_only_its_plan_for_its_key(client: Any) -> None:
    # GIVEN a filter on one basic tenant
    stubber = Stubber(client)
    stubber.add_response("get_usage_plan", BASIC_PLAN, {"usagePlanId": "pl4n01"})
    stubber.add_response(
        "get_usage",
        {
            "usagePlanId": "pl4n01",
            "startDate": "2026-11-30",
            "endDate": "2026-11-30",
            "items": {"key0globex": [[4, 996]]},
        },
        {
            "usagePlanId": "pl4n01",
            "startDate": "2026-11-30",
            "endDate": "2026-11-30",
            "limit": 500,
            "keyId": "key0globex",
        },
    )
    # WHEN collected: THEN only that tenant's rows, from one GetUsage call with its key id
    with stubber:
        rows = collect_usage(client, _stack(), DateRange(TODAY, TODAY), tenant="globex", today=TODAY)
        stubber.assert_no_pending_responses()
    assert [(row.tenant, row.used, row.remaining) for row in rows] == [("globex", 4, 996)]


def test_a_position_returned_twice_stops_instead_of_looping(client: Any) -> None:
    stubber = Stubber(client)
    stubber.add_response("get_usage_plan", BASIC_PLAN, {"usagePlanId": "pl4n01"})
    looping = {
        "usagePlanId": "pl4n01",
        "startDate": "2026-11-30",
        "endDate": "2026-11-30",
        "position": "same",
    }
    stubber.add_response("get_usage", {**looping, "items": {}})
    stubber.add_response("get_usage", {**looping, "items": {}})
    with stubber, pytest.raises(UsageError, match="returned position 'same' twice"):
        collect_usage(client, _stack(), DateRange(TODAY, TODAY), tenant="globex", today=TODAY)


def test_a_plan_missing_from_the_account_says_the_stack_is_not_deployed_there(client: Any) -> None:
    stubber = Stubber(client)
    stubber.add_client_error(
        "get_usage_plan", "NotFoundException", "Invalid Usage Plan ID specified", http_status_code=404
    )
    with stubber, pytest.raises(UsageError) as raised:
        collect_usage(client, _stack(), DateRange(None, None), tenant="acme", today=TODAY)
    message = str(raised.value)
    assert "usage plan pl4n02 of tier premium was not found" in message
    assert "--region" in message


def test_a_key_missing_from_its_plan_says_the_outputs_are_stale(client: Any) -> None:
    stubber = Stubber(client)
    stubber.add_response("get_usage_plan", BASIC_PLAN, {"usagePlanId": "pl4n01"})
    stubber.add_client_error(
        "get_usage", "NotFoundException", "Invalid API Key identifier specified", http_status_code=404
    )
    with (
        stubber,
        pytest.raises(UsageError, match="API key key0globex is not in usage plan pl4n01 of tier basic"),
    ):
        collect_usage(client, _stack(), DateRange(TODAY, TODAY), tenant="globex", today=TODAY)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (DateRange(date(2026, 11, 20), date(2026, 11, 10)), "--from 2026-11-20 is after --to 2026-11-10"),
        (DateRange(date(2026, 8, 31), None), "more than 90 days ago"),
        (DateRange(None, date(2026, 12, 1)), "--to 2026-12-01 is in the future"),
        (DateRange(None, date(2026, 10, 15)), "before the current quota period"),
    ],
)
def test_date_ranges_getusage_cannot_answer_are_refused_with_the_fix(
    client: Any, requested: DateRange, expected: str
) -> None:
    stubber = Stubber(client)
    stubber.add_response("get_usage_plan", BASIC_PLAN, {"usagePlanId": "pl4n01"})
    with stubber, pytest.raises(UsageError, match=expected):
        collect_usage(client, _stack(), requested, tenant="globex", today=TODAY)


def test_an_unknown_tenant_filter_lists_the_stacks_tenants(client: Any) -> None:
    with pytest.raises(UsageError, match="unknown tenant 'acmee': the stack's tenants are acme, globex"):
        collect_usage(client, _stack(), DateRange(None, None), tenant="acmee", today=TODAY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty: the stack is not deployed"),
        ("{}", "holds no stack outputs: the stack is not deployed"),
        ('{"apiUrl": "x"}', "has no plans, tenants output"),
        ("not json", "is not JSON"),
    ],
)
def test_outputs_of_a_stack_that_is_not_deployed_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=expected):
        stack_plans(read_outputs_file(str(path)), str(path))


def test_outputs_come_from_standard_input_with_a_dash() -> None:
    outputs = read_outputs_file("-", stdin=lambda: json.dumps(OUTPUTS))
    assert stack_plans(outputs, "standard input").tenants["acme"].api_key_id == "key0acme01"


def test_csv_and_json_have_the_documented_shapes(client: Any) -> None:
    stubber = Stubber(client)
    stubber.add_response("get_usage_plan", BASIC_PLAN, {"usagePlanId": "pl4n01"})
    stubber.add_response(
        "get_usage",
        {
            "usagePlanId": "pl4n01",
            "startDate": "2026-11-30",
            "endDate": "2026-11-30",
            "items": {"key0globex": [[9, 991]]},
        },
    )
    with stubber:
        rows = collect_usage(client, _stack(), DateRange(TODAY, None), tenant="globex", today=TODAY)
    # THEN CSV has exactly the columns tenant,tier,date,used,remaining
    parsed = list(csv.reader(io.StringIO(render(rows, OutputFormat.CSV))))
    assert parsed == [list(CSV_COLUMNS), ["globex", "basic", "2026-11-30", "9", "991"]]
    # AND JSON is a list of objects with the same keys, numbers as numbers
    assert json.loads(render(rows, OutputFormat.JSON)) == [
        {"tenant": "globex", "tier": "basic", "date": "2026-11-30", "used": 9, "remaining": 991}
    ]


def test_the_command_prints_one_line_errors_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the outputs of a stack that was never deployed (pulumi prints {})
    path = tmp_path / "outputs.json"
    path.write_text("{}\n")
    # WHEN usage runs on it
    code = main(["usage", "--stack-outputs", str(path)])
    # THEN exit 1, one line naming the problem and the fix, no traceback
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert "pulumi up" in err
    assert "Traceback" not in err


def test_a_malformed_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["usage", "--local-port", "8080", "--from", "30/11/2026"])
    assert raised.value.code == 2
    assert "'30/11/2026' is not a date: use YYYY-MM-DD" in capsys.readouterr().err
