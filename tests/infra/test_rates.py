"""The deploy arithmetic: AWS's published rates, what the program derives from them, what the README says."""

from __future__ import annotations

from pathlib import Path

from infra.rates import (
    DEPLOY_PARALLELISM,
    MIN_MAX_RETRIES,
    exceeds_burst,
    first_deploy_floor_seconds,
)
from tiers.loader import MAX_TENANTS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_floor_for_ten_thousand_tenants_is_set_by_the_total_management_rate() -> None:
    # 10,000 CreateApiKey at 5/s is 2,000 s; 40,000 calls at 10/s in total is 4,000 s
    assert first_deploy_floor_seconds(MAX_TENANTS) == 4_000
    # with one call per tenant the CreateApiKey rate alone would bind
    assert first_deploy_floor_seconds(1) == 0.4


def test_the_burst_absorbs_ten_tenants_and_no_more() -> None:
    assert not exceeds_burst(10)
    assert exceeds_burst(11)


def test_the_readme_deploys_with_the_settings_the_program_derives() -> None:
    assert f"pulumi up --parallel {DEPLOY_PARALLELISM} --yes" in README
    assert f"pulumi config set aws:maxRetries {MIN_MAX_RETRIES}" in README
    assert f"{first_deploy_floor_seconds(MAX_TENANTS) / 60:.0f} minutes" in README
