"""`renamed_from:` lets a tier take a new name and keep its usage plan: checked like every other field."""

from __future__ import annotations

import pytest

from tiers.loader import parse_catalog

TIER = "    isolation: pooled\n    throttle: {rate: 10, burst: 20}\n    quota: {limit: 1000, period: MONTH}\n"


def problems(text: str) -> list[str]:
    try:
        parse_catalog(text, "tiers.yaml")
    except Exception as error:  # CatalogError: its problems as printed
        return [str(problem) for problem in error.problems]  # type: ignore[attr-defined]
    return []


def test_a_renamed_tier_carries_its_previous_name() -> None:
    # GIVEN tier standard that was called basic
    text = f"tiers:\n  standard:\n    renamed_from: basic\n{TIER}tenants:\n  acme: {{tier: standard}}\n"

    # WHEN the file is loaded THEN the catalog knows the tier's previous name
    catalog = parse_catalog(text, "tiers.yaml")
    assert catalog.tiers["standard"].renamed_from == "basic"
    assert catalog.tenants["acme"].tier == "standard"


@pytest.mark.parametrize(
    ("tiers", "line", "words"),
    [
        (f"  standard:\n    renamed_from: standard\n{TIER}", 3, "names the tier itself"),
        (
            f"  basic:\n{TIER}  standard:\n    renamed_from: basic\n{TIER}",
            7,
            "'basic' is still a tier in this file",
        ),
        (
            f"  standard:\n    renamed_from: basic\n{TIER}  economy:\n    renamed_from: basic\n{TIER}",
            8,
            "also claimed by tier 'standard'",
        ),
        (f"  standard:\n    renamed_from: Basic Tier\n{TIER}", 3, "previous tier name 'Basic Tier'"),
        (f"  standard:\n    renamed_from: 7\n{TIER}", 3, "'renamed_from' must be the tier's previous name"),
    ],
    ids=["itself", "still-present", "claimed-twice", "invalid-name", "not-text"],
)
def test_a_wrong_previous_name_is_reported_on_its_line(tiers: str, line: int, words: str) -> None:
    # GIVEN a tier file whose renamed_from is wrong WHEN it is checked
    found = problems(f"tiers:\n{tiers}tenants: {{}}\n")

    # THEN exactly one problem, on the renamed_from line, saying what is wrong
    assert len(found) == 1, found
    assert found[0].startswith(f"tiers.yaml:{line}: tiers."), found
    assert words in found[0]
