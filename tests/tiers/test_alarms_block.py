"""The optional `alarms:` block of a tier: defaults, accepted values, and every mistake on its line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from blueprint.defaults import DEFAULT_SERVER_ERROR_PERCENT, DEFAULT_THROTTLED_PERCENT
from tiers.loader import Problem, parse_catalog
from tiers.model import AlarmThresholds

BASE = """\
tiers:
  basic:
    isolation: pooled
    throttle: {rate: 10, burst: 20}
    quota: {limit: 1000, period: DAY}
{alarms}
  premium:
    isolation: silo
    throttle: {rate: 100, burst: 200}
    quota: {limit: 100000, period: MONTH}
tenants:
  acme: {tier: basic}
"""


def with_alarms(block: str) -> str:
    return BASE.replace("{alarms}", block)


def test_a_tier_without_alarms_gets_the_defaults() -> None:
    catalog = parse_catalog(with_alarms(""), "t.yaml")
    assert catalog.tiers["basic"].alarms == AlarmThresholds(
        server_error_percent=DEFAULT_SERVER_ERROR_PERCENT, throttled_percent=DEFAULT_THROTTLED_PERCENT
    )


def test_a_tier_sets_its_own_thresholds_and_leaves_out_what_it_wants_defaulted() -> None:
    # GIVEN basic sets both thresholds (one a decimal) and premium sets only the throttled share
    text = with_alarms("    alarms: {server_error_percent: 2.5, throttled_percent: 30}").replace(
        "    quota: {limit: 100000, period: MONTH}",
        "    quota: {limit: 100000, period: MONTH}\n    alarms:\n      throttled_percent: 1",
    )
    # WHEN loaded
    catalog = parse_catalog(text, "t.yaml")
    # THEN each tier carries its own, the rest defaulted
    assert catalog.tiers["basic"].alarms == AlarmThresholds(2.5, 30.0)
    assert catalog.tiers["premium"].alarms == AlarmThresholds(DEFAULT_SERVER_ERROR_PERCENT, 1.0)


@pytest.mark.parametrize(
    ("block", "line", "path", "words"),
    [
        (
            "    alarms: {server_errors_percent: 2}",
            6,
            "tiers.basic.alarms.server_errors_percent",
            ["unknown key 'server_errors_percent'", "Did you mean 'server_error_percent'?"],
        ),
        (
            "    alarms: {throttled_percent: 0}",
            6,
            "tiers.basic.alarms.throttled_percent",
            ["'throttled_percent' must be a percentage above 0 and at most 100", "found the whole number 0"],
        ),
        (
            "    alarms: {server_error_percent: 150}",
            6,
            "tiers.basic.alarms.server_error_percent",
            ["at most 100", "found the whole number 150"],
        ),
        (
            '    alarms: {server_error_percent: "5"}',
            6,
            "tiers.basic.alarms.server_error_percent",
            ['found the text "5"', "Remove the quotes"],
        ),
        (
            "    alarms: [5, 10]",
            6,
            "tiers.basic.alarms",
            ["'alarms' must be a mapping with server_error_percent and throttled_percent", "found a list"],
        ),
        (
            "    alarms:\n      throttled_percent: true",
            7,
            "tiers.basic.alarms.throttled_percent",
            ["found the boolean true"],
        ),
    ],
)
def test_mistakes_in_the_alarms_block_are_reported_on_their_line(
    problems_of: Callable[[str], list[Problem]], block: str, line: int, path: str, words: list[str]
) -> None:
    # WHEN a tier file with one mistake in an alarms block is loaded
    problems = problems_of(with_alarms(block))
    # THEN exactly that one problem, on its line and path, says what is wrong and what is allowed
    assert len(problems) == 1, problems
    [problem] = problems
    assert (problem.line, problem.path) == (line, path)
    for word in words:
        assert word in problem.message
