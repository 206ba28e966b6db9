"""Bad input stops the program before it declares anything, with the same report a user gets elsewhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.config import PROJECT_ROOT
from tests.infra.harness import run_program

BAD_TIER_FILE = """\
tiers:
  basic:
    isolation: pooled
    thottle: {rate: 10, burst: 20}
    quota: {limit: 10000, period: MONTH}
tenants:
  acme:
    tier: gold
    name: Acme Corp
  Bad_Id:
    tier: basic
    name: Bad
"""


def test_a_bad_tier_file_fails_with_the_validators_report_and_declares_nothing(tmp_path: Path) -> None:
    # GIVEN a tier file with several problems
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_TIER_FILE)
    validate = subprocess.run(
        [sys.executable, "-m", "tiers", "validate", str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert validate.returncode == 1
    # WHEN the program runs on it
    run = run_program(path, raise_errors=False)
    # THEN it fails with a RunError (printed without a traceback) carrying exactly the validator's report
    assert isinstance(run.error, pulumi.RunError)
    assert str(run.error) == validate.stderr.strip()
    for needle in ("bad.yaml:4", "thottle", "bad.yaml:8", "gold", "Bad_Id"):
        assert needle in str(run.error)
    assert run.resources == ()


def test_a_missing_tier_file_says_which_file(tmp_path: Path) -> None:
    run = run_program(tmp_path / "nowhere.yaml", raise_errors=False)
    assert isinstance(run.error, pulumi.RunError)
    assert "nowhere.yaml" in str(run.error)
    assert "no such file" in str(run.error)
    assert run.resources == ()


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ({"lambdaArchitecture": "sparc"}, ["tenant-tiers:lambdaArchitecture", "'sparc'", "arm64, x86_64"]),
        ({"lambdaRuntime": "python3.8"}, ["tenant-tiers:lambdaRuntime", "python3.12"]),
        ({"authorizerCacheTtlSeconds": "3601"}, ["tenant-tiers:authorizerCacheTtlSeconds", "0", "3600"]),
        ({"authorizerCacheTtlSeconds": "-1"}, ["tenant-tiers:authorizerCacheTtlSeconds", "'-1'"]),
        ({"authorizerCacheTtlSeconds": "five"}, ["tenant-tiers:authorizerCacheTtlSeconds", "'five'"]),
        ({"stageName": "v 1"}, ["tenant-tiers:stageName", "letters, digits"]),
        (
            {"manageApiGatewayAccount": "yes please"},
            ["tenant-tiers:manageApiGatewayAccount", "true or false"],
        ),
        ({"logRetentionDays": "10"}, ["tenant-tiers:logRetentionDays", "14"]),
    ],
)
def test_bad_stack_config_fails_with_the_key_the_value_and_what_is_allowed(
    tier_file: Any, config: dict[str, str], needles: list[str]
) -> None:
    run = run_program(tier_file(), config=config, raise_errors=False)
    assert isinstance(run.error, pulumi.RunError)
    message = str(run.error)
    for needle in needles:
        assert needle in message
    assert "pulumi config set" in message
    assert run.resources == ()


def test_every_config_problem_is_reported_at_once(tier_file: Any) -> None:
    run = run_program(
        tier_file(),
        config={"lambdaArchitecture": "sparc", "authorizerCacheTtlSeconds": "9999"},
        raise_errors=False,
    )
    message = str(run.error)
    assert "lambdaArchitecture" in message
    assert "authorizerCacheTtlSeconds" in message
    assert run.resources == ()
