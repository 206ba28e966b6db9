"""Every check of the tier file: the message says what is wrong and what to do, on the right line."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.tiers.conftest import VALID
from tiers.loader import MAX_TENANTS, MAX_TIERS, CatalogError, Problem, load_catalog, parse_catalog
from tiers.model import Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier

DEV_YAML = Path(__file__).resolve().parents[2] / "tiers" / "dev.yaml"


def edit(line: int, replacement: str) -> str:
    """VALID with its 1-based ``line`` replaced (several lines if ``replacement`` has newlines)."""
    lines = VALID.splitlines()
    lines[line - 1] = replacement
    return "\n".join(lines) + "\n"


def tier_file(tiers: str, tenants: str = "") -> str:
    return f"tiers:\n{tiers}tenants:\n{tenants}"


# (id, tier file text, line, path, words the message must contain)
SINGLE_PROBLEM_CASES = [
    # YAML itself
    (
        "yaml-syntax-error",
        edit(4, "   throttle: {rate: 10, burst: 20}"),
        4,
        "",
        ["YAML syntax error at line 4, column 4", "did not find expected key", "indentation"],
    ),
    (
        "unclosed-flow-mapping",
        edit(4, "    throttle: {rate: 10, burst: 20"),
        5,
        "",
        ["YAML syntax error at line 5"],
    ),
    ("tab-indentation", "tiers:\n\tbasic: {}\n", 2, "", ["YAML syntax error at line 2, column 1"]),
    ("two-documents", VALID + "---\n" + VALID, 9, "", ["expected a single document"]),
    ("empty-file", "", None, "", ["the file is empty", "tiers:"]),
    ("only-comments", "# nothing yet\n\n", None, "", ["the file is empty"]),
    ("file-is-a-list", "- basic\n- premium\n", 1, "", ["a tier file is a mapping", "found a list"]),
    ("file-is-text", "basic\n", 1, "", ["a tier file is a mapping", 'found the text "basic"']),
    (
        "unsupported-tag",
        edit(3, "    isolation: !custom pooled"),
        3,
        "tiers.basic.isolation",
        ["unsupported YAML tag"],
    ),
    (
        "merge-key",
        VALID + "    <<: {suspended: false}\n",
        9,
        "tenants.acme.<<",
        ["merge keys (<<) are not supported"],
    ),
    # unknown keys
    ("unknown-top-level-key", VALID + "extra: 1\n", 9, "extra", ["unknown key 'extra'", "tiers, tenants"]),
    (
        "top-level-typo",
        VALID + "tenents: {}\n",
        9,
        "tenents",
        ["unknown key 'tenents'", "Did you mean 'tenants'?"],
    ),
    (
        "unknown-throttle-key",
        edit(4, "    throttle: {rate: 10, burst: 20, brust: 30}"),
        4,
        "tiers.basic.throttle.brust",
        ["unknown key 'brust'", "Did you mean 'burst'?", "rate, burst"],
    ),
    (
        "unknown-quota-key",
        edit(5, "    quota: {limit: 1000, period: MONTH, ofset: 1}"),
        5,
        "tiers.basic.quota.ofset",
        ["Did you mean 'offset'?"],
    ),
    (
        "unknown-tenant-key",
        VALID + "    suspend: true\n",
        9,
        "tenants.acme.suspend",
        ["unknown key 'suspend'", "Did you mean 'suspended'?", "tier, name, suspended"],
    ),
    (
        "unknown-tier-key",
        edit(3, "    isolation: pooled\n    region: eu"),
        4,
        "tiers.basic.region",
        ["unknown key 'region'", "isolation, throttle, quota"],
    ),
    # wrong types
    (
        "quoted-rate",
        edit(4, '    throttle: {rate: "10", burst: 20}'),
        4,
        "tiers.basic.throttle.rate",
        ["'rate' must be a positive number", 'found the text "10"', "Remove the quotes"],
    ),
    (
        "boolean-rate",
        edit(4, "    throttle: {rate: true, burst: 20}"),
        4,
        "tiers.basic.throttle.rate",
        ["'rate' must be a positive number", "found the boolean true"],
    ),
    (
        "decimal-burst",
        edit(4, "    throttle: {rate: 10, burst: 20.5}"),
        4,
        "tiers.basic.throttle.burst",
        ["'burst' must be a positive whole number", "found the number 20.5", "Use a whole number"],
    ),
    (
        "decimal-limit",
        edit(5, "    quota: {limit: 1000.0, period: MONTH}"),
        5,
        "tiers.basic.quota.limit",
        ["'limit' must be a positive whole number", "Use a whole number"],
    ),
    (
        "quoted-limit",
        edit(5, '    quota: {limit: "1000", period: MONTH}'),
        5,
        "tiers.basic.quota.limit",
        ["Remove the quotes"],
    ),
    (
        "yes-is-not-a-boolean",
        VALID + "    suspended: yes\n",
        9,
        "tenants.acme.suspended",
        ["'suspended' must be true or false", 'found the text "yes"', "Write true or false"],
    ),
    (
        "numeric-name",
        VALID + "    name: 42\n",
        9,
        "tenants.acme.name",
        ["'name' must be text of 1 to 128 characters", "found the whole number 42"],
    ),
    (
        "throttle-not-a-mapping",
        edit(4, "    throttle: 10"),
        4,
        "tiers.basic.throttle",
        ["'throttle' must be a mapping with rate and burst", "found the whole number 10"],
    ),
    (
        "tenant-not-a-mapping",
        edit(7, "  acme: basic").replace("    tier: basic\n", ""),
        7,
        "tenants.acme",
        ["a tenant must be a mapping with `tier:`", 'found the text "basic"'],
    ),
    (
        "tier-not-a-mapping",
        edit(2, "  basic: [pooled]")
        .replace("    isolation: pooled\n", "")
        .replace("    throttle: {rate: 10, burst: 20}\n", "")
        .replace("    quota: {limit: 1000, period: MONTH}\n", ""),
        2,
        "tiers.basic",
        ["a tier must be a mapping with isolation, throttle and quota", "found a list"],
    ),
    (
        "tiers-is-a-list",
        "tiers:\n  - basic\n",
        1,
        "tiers",
        ["'tiers' must be a mapping of tier name", "found a list"],
    ),
    (
        "tenants-is-a-list",
        edit(7, "  - acme").replace("    tier: basic\n", ""),
        6,
        "tenants",
        ["'tenants' must be a mapping of tenant id", "found a list"],
    ),
    # values out of range
    (
        "limit-beyond-aws",
        edit(5, "    quota: {limit: 2147483648, period: MONTH}"),
        5,
        "tiers.basic.quota.limit",
        ["up to 2,147,483,647", "found the whole number 2147483648"],
    ),
    (
        "control-character",
        VALID + "    name: bell\x07\n",
        9,
        "",
        ["character U+0007 at line 9 is not allowed in YAML", "remove it"],
    ),
    (
        "zero-rate",
        edit(4, "    throttle: {rate: 0, burst: 20}"),
        4,
        "tiers.basic.throttle.rate",
        ["positive"],
    ),
    (
        "negative-rate",
        edit(4, "    throttle: {rate: -1.5, burst: 20}"),
        4,
        "tiers.basic.throttle.rate",
        ["-1.5"],
    ),
    ("nan-rate", edit(4, "    throttle: {rate: .nan, burst: 20}"), 4, "tiers.basic.throttle.rate", ["nan"]),
    (
        "infinite-rate",
        edit(4, "    throttle: {rate: .inf, burst: 20}"),
        4,
        "tiers.basic.throttle.rate",
        ["inf"],
    ),
    (
        "zero-burst",
        edit(4, "    throttle: {rate: 0.5, burst: 0}"),
        4,
        "tiers.basic.throttle.burst",
        ["'burst' must be a positive whole number", "found the whole number 0"],
    ),
    (
        "zero-limit",
        edit(5, "    quota: {limit: 0, period: MONTH}"),
        5,
        "tiers.basic.quota.limit",
        ["'limit' must be a positive whole number", "found the whole number 0"],
    ),
    (
        "burst-below-rate",
        edit(4, "    throttle: {rate: 10.5, burst: 10}"),
        4,
        "tiers.basic.throttle.burst",
        ["burst 10 is below the rate 10.5", "Raise burst to 11 or more, or lower the rate"],
    ),
    (
        "unknown-period",
        edit(5, "    quota: {limit: 1000, period: YEAR}"),
        5,
        "tiers.basic.quota.period",
        ["'period' must be DAY, WEEK or MONTH", 'found the text "YEAR"'],
    ),
    (
        "lower-case-period",
        edit(5, "    quota: {limit: 1000, period: week}"),
        5,
        "tiers.basic.quota.period",
        ["Did you mean 'WEEK'?"],
    ),
    (
        "negative-offset",
        edit(5, "    quota: {limit: 1000, period: MONTH, offset: -1}"),
        5,
        "tiers.basic.quota.offset",
        ["'offset' must be a whole number from 0", "found the whole number -1"],
    ),
    (
        "day-offset",
        edit(5, "    quota: {limit: 1000, period: DAY, offset: 1}"),
        5,
        "tiers.basic.quota.offset",
        ["offset 1 is out of range for period DAY", "it must be 0 ", "docs/tier-file.md"],
    ),
    (
        "week-offset",
        edit(5, "    quota: {limit: 1000, period: WEEK, offset: 7}"),
        5,
        "tiers.basic.quota.offset",
        ["it must be 0 to 6"],
    ),
    (
        "month-offset",
        edit(5, "    quota: {limit: 1000, period: MONTH, offset: 28}"),
        5,
        "tiers.basic.quota.offset",
        ["it must be 0 to 27"],
    ),
    (
        "offset-not-below-limit",
        edit(5, "    quota: {limit: 3, period: WEEK, offset: 3}"),
        5,
        "tiers.basic.quota.offset",
        ["limit 3", "it must be 0 to 2", "always below the limit"],
    ),
    (
        "isolation-typo",
        edit(3, "    isolation: silos"),
        3,
        "tiers.basic.isolation",
        ["'isolation' must be pooled", "Did you mean 'silo'?"],
    ),
    # tenants and tiers
    (
        "tenant-without-tier",
        edit(8, "    name: Acme"),
        7,
        "tenants.acme.tier",
        ["missing 'tier'", "add `tier:`", "basic"],
    ),
    (
        "tenant-with-nothing",
        edit(7, "  acme:").replace("    tier: basic\n", ""),
        7,
        "tenants.acme.tier",
        ["missing 'tier'"],
    ),
    (
        "unknown-tier",
        edit(8, "    tier: gold"),
        8,
        "tenants.acme.tier",
        ["unknown tier 'gold'; tiers in this file: basic.", "Use one of them or add the tier"],
    ),
    ("unknown-tier-typo", edit(8, "    tier: basik"), 8, "tenants.acme.tier", ["Did you mean 'basic'?"]),
    (
        "duplicate-tenant",
        VALID + "  acme:\n    tier: basic\n",
        9,
        "tenants.acme",
        ["duplicate tenant id 'acme': first at line 7, again here", "silently"],
    ),
    (
        "duplicate-tier",
        tier_file(
            "  basic: {isolation: pooled, throttle: {rate: 1, burst: 1}, quota: {limit: 5, period: DAY}}\n"
            * 2
        ),
        3,
        "tiers.basic",
        ["duplicate tier name 'basic': first at line 2, again here"],
    ),
    (
        "duplicate-key-in-tenant",
        VALID + "    tier: basic\n",
        9,
        "tenants.acme.tier",
        ["duplicate key 'tier': first at line 8, again here"],
    ),
    (
        "duplicate-key-in-flow-mapping",
        edit(4, "    throttle: {rate: 10, burst: 20, rate: 30}"),
        4,
        "tiers.basic.throttle.rate",
        ["duplicate key 'rate': first at line 4"],
    ),
    (
        "duplicate-section",
        VALID + "tenants:\n  globex: {tier: basic}\n",
        9,
        "tenants",
        ["duplicate key 'tenants': first at line 6"],
    ),
    (
        "duplicate-quoted-and-plain",
        VALID + '  "acme": {tier: basic}\n',
        9,
        "tenants.acme",
        ["duplicate tenant id 'acme'"],
    ),
    (
        "upper-case-id",
        edit(7, "  Acme:"),
        7,
        "tenants.Acme",
        ["tenant id 'Acme' has upper-case letters", "1-32"],
    ),
    ("id-with-underscore", edit(7, "  acme_corp:"), 7, "tenants.acme_corp", ["has '_'", "table names"]),
    ("id-starting-with-digit", edit(7, "  1acme:"), 7, "tenants.1acme", ["does not start with a letter"]),
    ("id-ending-with-hyphen", edit(7, "  acme-:"), 7, "tenants.acme-", ["ends with a hyphen"]),
    ("id-with-double-hyphen", edit(7, "  ac--me:"), 7, "tenants.ac--me", ["double hyphen"]),
    ("id-too-long", edit(7, "  " + "a" * 33 + ":"), 7, "tenants." + "a" * 33, ["is 33 characters long"]),
    ("id-non-ascii", edit(7, "  café:"), 7, "tenants.café", ["has 'é'"]),
    ("id-empty", edit(7, '  "":'), 7, "tenants.", ["tenant id '' is empty"]),
    ("id-with-slash", edit(7, "  a/b:"), 7, "tenants.a/b", ["has '/'"]),
    (
        "bad-tier-name",
        edit(2, "  Basic:").replace("tier: basic", "tier: Basic"),
        2,
        "tiers.Basic",
        ["tier name 'Basic' has upper-case letters"],
    ),
    (
        "empty-name",
        VALID + '    name: ""\n',
        9,
        "tenants.acme.name",
        ["text of 1 to 128 characters", "empty text"],
    ),
    ("blank-name", VALID + '    name: "   "\n', 9, "tenants.acme.name", ["only white space"]),
    (
        "long-name",
        VALID + "    name: " + "x" * 129 + "\n",
        9,
        "tenants.acme.name",
        ["text of 1 to 128 characters", "found text of 129 characters"],
    ),
    # missing parts
    (
        "missing-isolation",
        edit(3, "    # isolation to be decided"),
        2,
        "tiers.basic.isolation",
        ["missing 'isolation'", "add `isolation:`", "pooled", "silo"],
    ),
    (
        "missing-rate",
        edit(4, "    throttle: {burst: 20}"),
        4,
        "tiers.basic.throttle.rate",
        ["missing 'rate'"],
    ),
    (
        "missing-burst",
        edit(4, "    throttle: {rate: 10}"),
        4,
        "tiers.basic.throttle.burst",
        ["missing 'burst'"],
    ),
    (
        "missing-period",
        edit(5, "    quota: {limit: 10}"),
        5,
        "tiers.basic.quota.period",
        ["missing 'period'", "DAY"],
    ),
    ("missing-limit", edit(5, "    quota: {period: DAY}"), 5, "tiers.basic.quota.limit", ["missing 'limit'"]),
    ("missing-quota", edit(5, "    # no quota"), 2, "tiers.basic.quota", ["missing 'quota'", "add `quota:`"]),
    ("missing-tiers-section", "tenants: {}\n", 1, "", ["no `tiers:` section", "at least one tier"]),
    ("empty-tiers-section", "tiers:\ntenants: {}\n", 1, "tiers", ["no tiers defined"]),
    ("empty-tiers-mapping", "tiers: {}\n", 1, "tiers", ["no tiers defined"]),
]


@pytest.mark.parametrize(
    ("text", "line", "path", "words"),
    [case[1:] for case in SINGLE_PROBLEM_CASES],
    ids=[case[0] for case in SINGLE_PROBLEM_CASES],
)
def test_each_mistake_is_reported_once_on_its_line(problems_of, text, line, path, words):
    # GIVEN a tier file with one mistake
    # WHEN it is loaded
    problems = problems_of(text)
    # THEN exactly that mistake is reported, on its line and path, saying what is wrong and what to do
    assert [(problem.line, problem.path) for problem in problems] == [(line, path)], problems
    for word in words:
        assert word in problems[0].message


def test_a_typo_in_a_key_is_reported_with_the_missing_field_it_causes(problems_of):
    # GIVEN a tier whose `throttle` key is misspelled
    problems = problems_of(edit(4, "    thottle: {rate: 10, burst: 20}"))
    # THEN the typo is named on its line with the suggestion, and the missing throttle on the tier's line
    assert [(p.line, p.path) for p in problems] == [(2, "tiers.basic.throttle"), (4, "tiers.basic.thottle")]
    assert "Did you mean 'throttle'?" in problems[1].message


def test_too_many_tiers(problems_of):
    # GIVEN one tier more than AWS allows usage plans in a region
    tier = "  t{}: {{isolation: pooled, throttle: {{rate: 1, burst: 1}}, quota: {{limit: 5, period: DAY}}}}\n"
    text = tier_file("".join(tier.format(index) for index in range(MAX_TIERS + 1)))
    # WHEN loaded
    problems = problems_of(text)
    # THEN one problem on the `tiers:` line names the limit and why
    assert [(p.line, p.path) for p in problems] == [(1, "tiers")]
    assert "301 tiers, more than 300" in problems[0].message
    assert "usage plans" in problems[0].message


def test_exactly_the_tier_limit_is_accepted(problems_of):
    tier = "  t{}: {{isolation: pooled, throttle: {{rate: 1, burst: 1}}, quota: {{limit: 5, period: DAY}}}}\n"
    assert problems_of(tier_file("".join(tier.format(index) for index in range(MAX_TIERS)))) == []


def test_too_many_tenants(problems_of):
    # GIVEN one tenant more than AWS allows API keys in a region
    tenants = "".join(f"  t{index}: {{tier: basic}}\n" for index in range(MAX_TENANTS + 1))
    # WHEN loaded
    problems = problems_of(VALID.replace("  acme:\n    tier: basic\n", tenants))
    # THEN one problem on the `tenants:` line names the limit and why
    assert [(p.line, p.path) for p in problems] == [(6, "tenants")]
    assert "10001 tenants, more than 10,000" in problems[0].message
    assert "API keys" in problems[0].message


def test_a_file_with_many_mistakes_reports_all_of_them_in_line_order(problems_of):
    # GIVEN a file with mistakes in several tiers and tenants, one tenant's hiding nothing of another's
    text = """\
tiers:
  basic:
    isolation: pooled
    throttle: {rate: 10, burst: 5}
    quota: {limit: 10000, period: month}
  premium:
    isolation: silo
    throttle: {rate: "200", burst: 400}
    quota: {limit: 5000000, period: MONTH, offset: 30}
tenants:
  acme:
    tier: gold
    suspended: yes
  Bad_Id:
    tier: basic
  globex:
    name: Globex
  acme:
    tier: basic
  initech:
    tier: premium
    suspended: maybe
extra: true
"""
    # WHEN loaded
    problems = problems_of(text)
    # THEN every one is reported, in line order
    assert [(p.line, p.path) for p in problems] == [
        (4, "tiers.basic.throttle.burst"),
        (5, "tiers.basic.quota.period"),
        (8, "tiers.premium.throttle.rate"),
        (9, "tiers.premium.quota.offset"),
        (12, "tenants.acme.tier"),
        (13, "tenants.acme.suspended"),
        (14, "tenants.Bad_Id"),
        (16, "tenants.globex.tier"),
        (18, "tenants.acme"),
        (22, "tenants.initech.suspended"),
        (23, "extra"),
    ]


def test_duplicate_keys_are_reported_at_every_level(problems_of):
    # GIVEN duplicate keys at the top, among tiers, inside a tier, inside a throttle and among tenants
    text = """\
tiers:
  basic:
    isolation: pooled
    isolation: silo
    throttle: {rate: 1, burst: 2, burst: 3}
    quota: {limit: 5, period: DAY}
  basic:
    isolation: silo
tenants:
  acme: {tier: basic}
  acme: {tier: basic}
tiers: {}
"""
    # WHEN loaded
    problems = problems_of(text)
    # THEN each duplicate is reported where it repeats, naming where it first appeared
    assert [(p.line, p.path) for p in problems] == [
        (4, "tiers.basic.isolation"),
        (5, "tiers.basic.throttle.burst"),
        (7, "tiers.basic"),
        (11, "tenants.acme"),
        (12, "tiers"),
    ]
    assert [p.message.split(":")[1] for p in problems] == [
        " first at line 3, again here. YAML would silently keep just one; keep only one of them.",
        " first at line 5, again here. YAML would silently keep just one; keep only one of them.",
        " first at line 2, again here. YAML would silently keep just one; rename one tier or merge the two.",
        " first at line 10, again here. YAML would silently keep just one; give each tenant its own id, or "
        "merge the two entries.",
        " first at line 1, again here. YAML would silently keep just one; keep only one of them.",
    ]


def test_the_dev_stack_tier_file_is_valid():
    catalog = load_catalog(DEV_YAML)
    assert list(catalog.tiers) == ["basic", "premium"]
    assert list(catalog.tenants) == ["acme", "globex", "initech"]


def test_a_valid_file_becomes_the_catalog_with_defaults_filled_in_and_file_order_kept():
    # GIVEN tiers and tenants in a non-alphabetical order, some fields left to their defaults
    text = """\
tiers:
  zeta:
    isolation: silo
    throttle: {rate: 2.5, burst: 5}
    quota: {limit: 100, period: WEEK, offset: 6}
  alpha:
    isolation: pooled
    throttle: {rate: 10, burst: 10}
    quota: {limit: 28, period: MONTH, offset: 27}
tenants:
  zed: {tier: alpha}
  acme: {tier: zeta, name: "Acme: the company", suspended: true}
"""
    # WHEN parsed
    catalog = parse_catalog(text, "inline.yaml")
    # THEN the catalog holds them in file order, a missing name is the id, suspended defaults to false
    assert list(catalog.tiers.items()) == [
        ("zeta", Tier("zeta", Isolation.SILO, Throttle(2.5, 5), Quota(100, QuotaPeriod.WEEK, 6))),
        ("alpha", Tier("alpha", Isolation.POOLED, Throttle(10.0, 10), Quota(28, QuotaPeriod.MONTH, 27))),
    ]
    assert list(catalog.tenants.items()) == [
        ("zed", Tenant("zed", "alpha", "zed", suspended=False)),
        ("acme", Tenant("acme", "zeta", "Acme: the company", suspended=True)),
    ]


@pytest.mark.parametrize(
    "tenants", ["tenants:\n", "tenants: {}\n", ""], ids=["empty", "empty-mapping", "absent"]
)
def test_a_stack_without_tenants_is_valid(tenants):
    # GIVEN tiers and no tenants: a new stack before its first customer
    text = VALID.split("tenants:")[0] + tenants
    # THEN it loads with zero tenants
    catalog = parse_catalog(text, "new.yaml")
    assert list(catalog.tiers) == ["basic"]
    assert dict(catalog.tenants) == {}


def test_yaml_1_2_reads_yes_and_no_as_text_so_they_are_valid_names(problems_of):
    # GIVEN names and ids that YAML 1.1 would turn into booleans or numbers
    text = VALID + "    name: no\n  on:\n    tier: basic\n    name: Yes\n"
    # THEN they load as the text written
    assert problems_of(text) == []
    catalog = parse_catalog(text, "x.yaml")
    assert catalog.tenants["acme"].name == "no"
    assert catalog.tenants["on"].name == "Yes"


def test_anchors_and_aliases_are_followed(problems_of):
    # GIVEN two tiers sharing a throttle through an alias
    text = tier_file(
        "  basic:\n    isolation: pooled\n    throttle: &standard {rate: 10, burst: 20}\n"
        "    quota: {limit: 5, period: DAY}\n"
        "  silo:\n    isolation: silo\n    throttle: *standard\n    quota: {limit: 5, period: DAY}\n"
    )
    catalog = parse_catalog(text, "x.yaml")
    assert catalog.tiers["silo"].throttle == Throttle(10.0, 20)


def test_the_billion_laughs_costs_nothing():
    # GIVEN nested aliases that would expand to 10**9 strings if copied
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    text = "x:\n" + "".join(f"  {level}\n" for level in levels) + VALID
    # WHEN parsed
    started = time.perf_counter()
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, "laughs.yaml")
    # THEN it is rejected at once as an unknown key
    assert time.perf_counter() - started < 2
    assert [(p.line, p.path) for p in raised.value.problems] == [(1, "x")]


def test_problem_text_is_file_line_path_message():
    assert str(Problem("t.yaml", 14, "tenants.acme.tier", "unknown tier 'gold'")) == (
        "t.yaml:14: tenants.acme.tier: unknown tier 'gold'"
    )
    assert str(Problem("t.yaml", None, "", "the file is empty")) == "t.yaml: the file is empty"
    assert str(Problem("t.yaml", 1, "", "YAML syntax error")) == "t.yaml:1: YAML syntax error"


def test_the_error_text_is_the_whole_report_with_a_closing_count():
    # GIVEN a file with two problems
    with pytest.raises(CatalogError) as raised:
        parse_catalog(edit(8, "    tier: gold") + "    suspended: 1\n", "t.yaml")
    # THEN str(error) lists both, one per line, then how many there are and how to check again
    lines = str(raised.value).splitlines()
    assert lines[:2] == [str(problem) for problem in raised.value.problems]
    assert lines[2] == (
        "2 problems in t.yaml; nothing was accepted. "
        "Fix them and check again with `python -m tiers validate t.yaml`."
    )


def test_a_missing_file_is_a_problem_not_a_traceback(tmp_path):
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path / "nope.yaml")
    assert [(p.file, p.line, p.message) for p in raised.value.problems] == [
        (str(tmp_path / "nope.yaml"), None, "no such file. Check the path, or create the tier file there.")
    ]


def test_a_directory_is_a_problem(tmp_path):
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path)
    assert "this is a directory" in raised.value.problems[0].message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_problem(write_tier_file):
    path = write_tier_file(VALID)
    path.chmod(0)
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert "permission denied" in raised.value.problems[0].message


def test_a_file_that_is_not_utf8_is_a_problem_on_its_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(VALID.encode() + "    name: Café\n".encode("latin-1"))
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert [(p.line, p.message) for p in raised.value.problems] == [
        (9, "the file is not UTF-8 text; save it as UTF-8.")
    ]


def test_ten_thousand_tenants_load(tmp_path):
    # GIVEN the largest tier file AWS allows: 10,000 tenants, four lines each
    tenants = "".join(
        f"  tenant-{index}:\n    tier: {'basic' if index % 3 else 'premium'}\n    name: Tenant {index}\n"
        "    suspended: false\n"
        for index in range(MAX_TENANTS)
    )
    premium = (
        "  premium:\n    isolation: silo\n    throttle: {rate: 200, burst: 400}\n"
        "    quota: {limit: 9, period: DAY}\n"
    )
    path = tmp_path / "big.yaml"
    path.write_text(tier_file(VALID.split("tenants:")[0].removeprefix("tiers:\n") + premium, tenants))
    # WHEN loaded (its time is measured, not tested: docs/tier-file.md, Limits)
    catalog = load_catalog(path)
    # THEN every tenant is there
    assert len(catalog.tenants) == MAX_TENANTS
