"""Loads a tier file into a Catalog, or reports every problem in it at once.

    catalog = load_catalog("tiers/dev.yaml")   # raises CatalogError

Each Problem names the file, the line, the dotted path and the fix; str(error)
is the whole report, ready to print.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from handlers.contract import TENANT_ID_MAX_LENGTH, is_valid_tenant_id
from tiers.model import AlarmThresholds, Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier
from tiers.problems import CatalogError, Problem, listing, shortened
from tiers.schema import (
    AWS_INTEGER_MAX,
    TenantEntry,
    TierEntry,
    describe,
    entry_problems,
    unknown_key_message,
)
from tiers.source_file import MAX_FILE_BYTES, read_tier_file
from tiers.yaml_source import Path as KeyPath
from tiers.yaml_source import SourceDocument, YamlLimits, YamlSyntaxError, read_yaml

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NESTING",
    "MAX_TENANTS",
    "MAX_TIERS",
    "MAX_VALUES",
    "CatalogError",
    "Problem",
    "load_catalog",
    "parse_catalog",
]

MAX_TIERS: Final = 300
"""One usage plan per tier; AWS allows 300 usage plans per account and region."""
MAX_TENANTS: Final = 10_000
"""One API key per tenant; AWS allows 10,000 API keys per account and region (a hard limit)."""

MAX_NESTING: Final = 32
"""Lists and mappings nested in one another; a tier file needs 4."""
MAX_VALUES: Final = 100_000
"""YAML values in one file: a valid one has at most 85,405 (the limits above, every field written out)."""
TIER_FILE_LIMITS: Final = YamlLimits(
    max_depth=MAX_NESTING, max_values=MAX_VALUES, largest_number=AWS_INTEGER_MAX
)

TOP_LEVEL_KEYS: Final = ("tiers", "tenants")
ID_RULE: Final = (
    f"1-{TENANT_ID_MAX_LENGTH} characters of lowercase letters, digits and single hyphens, "
    "starting with a letter and ending with a letter or digit"
)
_ID_WHY: Final = (
    "It becomes part of table names, API key and usage plan names, Cognito attribute values "
    "and IAM policy variables, where other characters break or blur tenant boundaries."
)


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read and check the tier file at ``path``; raise CatalogError listing every problem."""
    source = os.fspath(path)
    raw = read_tier_file(path)
    if b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise CatalogError(
            [
                Problem(
                    source,
                    line,
                    "",
                    "the file has NUL bytes: it is binary, or text saved as UTF-16 or UTF-32, not a tier "
                    "file. Check the path, or save the file as UTF-8 text.",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CatalogError(
            [Problem(source, line, "", "the file is not UTF-8 text; save it as UTF-8.")]
        ) from None
    return parse_catalog(text, source)


def parse_catalog(text: str, source: str) -> Catalog:
    """Check the tier file ``text``; ``source`` is the file name the problems carry."""
    checker = _Checker(source)
    catalog = checker.check(text)
    if catalog is None:
        raise CatalogError(checker.problems)
    return catalog


def id_problem(kind: str, value: str) -> str | None:
    """Why ``value`` breaks the tenant id rule (which tier names follow too), or None when it obeys it."""
    if is_valid_tenant_id(value):
        return None
    if not value:
        reason = "is empty"
    elif len(value) > TENANT_ID_MAX_LENGTH:
        reason = f"is {len(value)} characters long"
    elif any(char.isupper() for char in value):
        reason = "has upper-case letters"
    elif bad := sorted({char for char in value if not (char.isascii() and (char.isalnum() or char == "-"))}):
        reason = "has " + ", ".join(repr(char) for char in bad)
    elif not value[0].isalpha():
        reason = "does not start with a letter"
    elif value.endswith("-"):
        reason = "ends with a hyphen"
    else:
        reason = "has a double hyphen"
    examples = "'basic' or 'premium-eu'" if kind == "tier name" else "'acme' or 'globex-eu'"
    return f"{kind} '{shortened(value)}' {reason}; use {ID_RULE} (such as {examples}). {_ID_WHY}"


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._document = SourceDocument(data=None)
        # Places with a YAML-level issue: a schema complaint about the same place would only repeat it.
        self._flagged: set[KeyPath] = set()

    def check(self, text: str) -> Catalog | None:
        try:
            self._document = read_yaml(text, TIER_FILE_LIMITS)
        except YamlSyntaxError as error:
            self.problems.append(Problem(self.source, error.line, "", error.message))
            return None
        for issue in self._document.issues:
            self._add(issue.path, issue.message, issue.line)
        self._flagged = {issue.path for issue in self._document.issues}
        for duplicate in self._document.duplicates:
            self._add(
                duplicate.path, _duplicate_message(duplicate.path, duplicate.first_line), duplicate.line
            )
        root = self._document.data
        if root is None:
            self.problems.append(
                Problem(
                    self.source,
                    None,
                    "",
                    "the file is empty; a tier file needs `tiers:` (and `tenants:`). "
                    "See docs/tier-file.md or tiers/dev.yaml for the format.",
                )
            )
            return None
        if not isinstance(root, dict):
            self._add(
                (),
                f"a tier file is a mapping with `tiers:` and `tenants:` at the top; found {describe(root)}. "
                "See docs/tier-file.md for the format.",
            )
            return None
        for key in root:
            if key not in TOP_LEVEL_KEYS:
                self._add((key,), unknown_key_message(key, TOP_LEVEL_KEYS))
        tiers = self._tiers(root)
        tenants = self._tenants(root, tier_names=list(_as_mapping(root.get("tiers"))))
        if self.problems:
            return None
        return Catalog(tiers=tiers, tenants=tenants)

    def _tiers(self, root: Mapping[str, Any]) -> dict[str, Tier]:
        if "tiers" not in root:
            self._add((), "no `tiers:` section; add one with at least one tier (docs/tier-file.md).")
            return {}
        raw = root["tiers"]
        if raw is None or raw == {}:
            self._add(
                ("tiers",), "no tiers defined; add at least one tier under `tiers:` (docs/tier-file.md)."
            )
            return {}
        if not isinstance(raw, dict):
            self._add(
                ("tiers",), f"'tiers' must be a mapping of tier name to settings; found {describe(raw)}."
            )
            return {}
        if len(raw) > MAX_TIERS:
            self._add(
                ("tiers",),
                f"{len(raw)} tiers, more than {MAX_TIERS}: each tier is a usage plan and AWS allows "
                f"{MAX_TIERS} usage plans per account and region. Merge tiers, or split them across "
                "stacks in other regions or accounts.",
            )
        tiers: dict[str, Tier] = {}
        for name, value in raw.items():
            path = ("tiers", name)
            if problem := id_problem("tier name", name):
                self._add(path, problem)
            entry = self._entry(TierEntry, path, value, "tier", "isolation, throttle and quota", {})
            if isinstance(entry, TierEntry):
                tiers[name] = _tier(name, entry)
        self._check_renames(tiers)
        return tiers

    def _check_renames(self, tiers: Mapping[str, Tier]) -> None:
        """A previous name is a valid tier name, no tier's current name, and claimed by one tier only."""
        claimed: dict[str, str] = {}
        for tier in tiers.values():
            old = tier.renamed_from
            if old is None:
                continue
            path = ("tiers", tier.name, "renamed_from")
            if problem := id_problem("previous tier name", old):
                self._add(path, problem)
            elif old == tier.name:
                self._add(path, f"renamed_from names the tier itself ('{old}'); remove renamed_from.")
            elif old in tiers:
                self._add(
                    path,
                    f"renamed_from '{old}' is still a tier in this file: a tier can take over another's "
                    f"usage plan only once that tier is gone. Remove tier '{old}' (moving its tenants to "
                    f"'{tier.name}'), or remove renamed_from.",
                )
            elif old in claimed:
                self._add(
                    path,
                    f"renamed_from '{old}' is also claimed by tier '{claimed[old]}': one usage plan can "
                    "carry over to one tier only. Keep renamed_from on one of them.",
                )
            else:
                claimed[old] = tier.name

    def _tenants(self, root: Mapping[str, Any], tier_names: list[str]) -> dict[str, Tenant]:
        raw = root.get("tenants")
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self._add(
                ("tenants",), f"'tenants' must be a mapping of tenant id to settings; found {describe(raw)}."
            )
            return {}
        if len(raw) > MAX_TENANTS:
            self._add(
                ("tenants",),
                f"{len(raw)} tenants, more than {MAX_TENANTS:,}: each tenant has an API key and AWS allows "
                f"{MAX_TENANTS:,} API keys per account and region. Move tenants to a stack in another "
                "region or account.",
            )
        in_this_file = _tier_list(tier_names)
        expected = {"tier": f"the name of one of this file's tiers: {in_this_file}"}
        known_tiers = set(tier_names)
        tenants: dict[str, Tenant] = {}
        for tenant_id, value in raw.items():
            path = ("tenants", tenant_id)
            if problem := id_problem("tenant id", tenant_id):
                self._add(path, problem)
            # The tier reference is checked on the raw entry, so a mistake elsewhere in it does not hide it.
            tier = value.get("tier") if isinstance(value, dict) else None
            if isinstance(tier, str) and tier not in known_tiers:
                self._add((*path, "tier"), _unknown_tier_message(tier, tier_names, in_this_file))
            entry = self._entry(
                TenantEntry, path, value, "tenant", "`tier:` and optionally name and suspended", expected
            )
            if isinstance(entry, TenantEntry):
                tenants[tenant_id] = Tenant(
                    id=tenant_id, tier=entry.tier, name=entry.name or tenant_id, suspended=entry.suspended
                )
        return tenants

    def _entry(
        self,
        model: type[TierEntry] | type[TenantEntry],
        path: KeyPath,
        value: Any,
        kind: str,
        fields: str,
        expected: Mapping[str, str],
    ) -> TierEntry | TenantEntry | None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self._add(path, f"a {kind} must be a mapping with {fields}; found {describe(value)}.")
            return None
        try:
            return model.model_validate(value)
        except ValidationError as error:
            for loc, message in entry_problems(model, error.errors(include_url=False), expected):
                self._add((*path, *loc), message)
            return None

    def _add(self, path: KeyPath, message: str, line: int | None = None) -> None:
        if path in self._flagged:
            return
        if line is None:
            line = self._document.line_of(path)
        self.problems.append(Problem(self.source, line, ".".join(path), message))


def _as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _tier(name: str, entry: TierEntry) -> Tier:
    return Tier(
        name=name,
        renamed_from=entry.renamed_from,
        isolation=Isolation(entry.isolation),
        throttle=Throttle(rate=float(entry.throttle.rate), burst=entry.throttle.burst),
        quota=Quota(
            limit=entry.quota.limit, period=QuotaPeriod(entry.quota.period), offset=entry.quota.offset
        ),
        alarms=AlarmThresholds(
            server_error_percent=float(entry.alarms.server_error_percent),
            throttled_percent=float(entry.alarms.throttled_percent),
        ),
    )


def _tier_list(tier_names: list[str]) -> str:
    return listing(tier_names) if tier_names else "(none yet)"


def _unknown_tier_message(tier: str, tier_names: list[str], in_this_file: str) -> str:
    close = difflib.get_close_matches(tier, tier_names, n=1, cutoff=0.6)
    suggestion = f" Did you mean '{close[0]}'?" if close else ""
    return (
        f"unknown tier '{shortened(tier)}'; tiers in this file: {in_this_file}.{suggestion} "
        "Use one of them or add the tier under `tiers:`."
    )


def _duplicate_message(path: KeyPath, first_line: int) -> str:
    parent, key = path[:-1], path[-1]
    if parent == ("tenants",):
        what, fix = "tenant id", "give each tenant its own id, or merge the two entries"
    elif parent == ("tiers",):
        what, fix = "tier name", "rename one tier or merge the two"
    else:
        what, fix = "key", "keep only one of them"
    return (
        f"duplicate {what} '{shortened(key)}': first at line {first_line}, again here. "
        f"YAML would silently keep just one; {fix}."
    )
