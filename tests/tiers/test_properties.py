"""Invariants of the loader over generated tier files.

- A valid catalog written out as YAML (by ruamel.yaml, an independent YAML 1.2
  emitter) loads back as the same catalog, in the same order.
- Any one-field mistake in a valid file is reported on the line it was made.
"""

from __future__ import annotations

import io
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from handlers.contract import TENANT_ID_PATTERN, is_valid_tenant_id
from tiers.loader import CatalogError, parse_catalog
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier
from tiers.schema import OFFSET_MAX

ids = st.from_regex(rf"\A{TENANT_ID_PATTERN}\Z").filter(is_valid_tenant_id)
names = st.text(
    st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x85\xa0\u2028\u2029\ufeff"),
    min_size=1,
    max_size=128,
).filter(lambda name: name.strip() != "")
rates = st.one_of(
    st.integers(1, 10_000).map(float),
    st.floats(0.001, 10_000, allow_nan=False, allow_infinity=False),
)


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    tier_names = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    tiers = {}
    for name in tier_names:
        rate = draw(rates)
        period = draw(st.sampled_from(QuotaPeriod))
        limit = draw(st.integers(1, 10**9))
        tiers[name] = Tier(
            name=name,
            isolation=draw(st.sampled_from(Isolation)),
            throttle=Throttle(rate=rate, burst=draw(st.integers(math.ceil(rate), 50_000))),
            quota=Quota(
                limit=limit, period=period, offset=draw(st.integers(0, min(OFFSET_MAX[period], limit - 1)))
            ),
        )
    tenants = {
        tenant_id: Tenant(
            id=tenant_id,
            tier=draw(st.sampled_from(tier_names)),
            name=draw(st.one_of(st.just(tenant_id), names)),
            suspended=draw(st.booleans()),
        )
        for tenant_id in draw(st.lists(ids, max_size=8, unique=True))
    }
    return Catalog(tiers=tiers, tenants=tenants)


def to_yaml(catalog: Catalog, *, write_defaults: bool) -> str:
    """The tier file for ``catalog``, in block style: every scalar field on its own line."""

    def number(value: float) -> float | int:
        return int(value) if value.is_integer() else value

    tiers = {}
    for tier in catalog.tiers.values():
        quota: dict[str, object] = {"limit": tier.quota.limit, "period": str(tier.quota.period)}
        if write_defaults or tier.quota.offset:
            quota["offset"] = tier.quota.offset
        tiers[tier.name] = {
            "isolation": str(tier.isolation),
            "throttle": {"rate": number(tier.throttle.rate), "burst": tier.throttle.burst},
            "quota": quota,
        }
    tenants = {}
    for tenant in catalog.tenants.values():
        entry: dict[str, object] = {"tier": tenant.tier}
        if write_defaults or tenant.name != tenant.id:
            entry["name"] = tenant.name
        if write_defaults or tenant.suspended:
            entry["suspended"] = tenant.suspended
        tenants[tenant.id] = entry
    emitter = YAML(typ="rt", pure=True)  # keeps insertion order; writes `yes` plain, as YAML 1.2 allows
    emitter.default_flow_style = False
    emitter.width = 4096
    out = io.StringIO()
    emitter.dump({"tiers": tiers, "tenants": tenants}, out)
    return out.getvalue()


@settings(max_examples=60, deadline=None)
@given(catalog=catalogs(), write_defaults=st.booleans())
def test_a_valid_catalog_round_trips_through_its_tier_file(catalog, write_defaults):
    # GIVEN a valid catalog written as a tier file
    text = to_yaml(catalog, write_defaults=write_defaults)
    # WHEN the file is parsed
    loaded = parse_catalog(text, "generated.yaml")
    # THEN it is the same catalog, tiers and tenants in the same order
    assert list(loaded.tiers.items()) == list(catalog.tiers.items())
    assert list(loaded.tenants.items()) == list(catalog.tenants.items())


# Wrong values for each field; none of them can be right whatever the rest of the file says.
BAD_VALUES = {
    "isolation": ["shared", "Pooled", "1", "[silo]", "null"],
    "rate": ['"10"', "0", "-1", "true", ".nan", "{}"],
    "burst": ["0", "1.5", '"20"', "-3", "false"],
    "limit": ["0", "2.5", '"5"', "null", "-10"],
    "period": ["YEAR", "month", "7", '""'],
    "offset": ["-1", "28", "1.5", '"0"'],
    "tier": ["Not-A-Tier", "5", "null"],
    "name": ['""', "x" * 129, "12", "[a]", "true", '"  "'],
    "suspended": ['"true"', "yes", "1", "null"],
}
LINE = re.compile(r"^(?P<indent> *)(?P<key>[^:]+):(?P<value>.*)$")


def field_lines(text: str) -> list[tuple[int, int, str, str]]:
    """(line number, indent, key, section) of every key line below the top level."""
    found = []
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = LINE.match(line)
        assert match, line
        indent = len(match["indent"])
        if indent == 0:
            section = match["key"]
        else:
            found.append((number, indent, match["key"], section))
    return found


def earlier_sibling(text: str, line_number: int, indent: int) -> str | None:
    """The key of an earlier entry at the same level in the same section, if there is one."""
    lines = text.splitlines()
    for previous in range(line_number - 2, -1, -1):
        match = LINE.match(lines[previous])
        assert match
        if len(match["indent"]) < indent:
            return None
        if len(match["indent"]) == indent:
            return match["key"]
    return None


@settings(max_examples=60, deadline=None)
@given(catalog=catalogs(), data=st.data())
def test_a_one_field_mistake_is_reported_on_its_line(catalog, data):
    # GIVEN a valid tier file with one line changed into a mistake
    text = to_yaml(catalog, write_defaults=data.draw(st.booleans(), label="write_defaults"))
    number, indent, key, _section = data.draw(st.sampled_from(field_lines(text)), label="line")
    lines = text.splitlines()
    if indent == 2:  # a tier name or tenant id: make it invalid, or the same as an earlier one's
        sibling = earlier_sibling(text, number, indent)
        mutations = [key.upper() + "_", *([sibling] if sibling is not None else [])]
    else:  # a field: misspell it
        mutations = [f"{key}x", f"{key[:-1]}"]
    value = lines[number - 1].split(":", 1)[1]
    bad_key = data.draw(st.sampled_from(mutations), label="bad key")
    if key in BAD_VALUES and value.strip() and data.draw(st.booleans(), label="change the value"):
        bad_value = data.draw(st.sampled_from(BAD_VALUES[key]), label="bad value")
        lines[number - 1] = f"{' ' * indent}{key}: {bad_value}"
    else:
        lines[number - 1] = f"{' ' * indent}{bad_key}:{value}"
    mutated = "\n".join(lines) + "\n"
    # WHEN it is parsed
    try:
        parse_catalog(mutated, "mutated.yaml")
    except CatalogError as error:
        problems = error.problems
    else:
        problems = []
    # THEN a problem points at that line
    assert number in [problem.line for problem in problems], (mutated, problems)
