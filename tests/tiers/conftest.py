from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tiers.loader import CatalogError, Problem, load_catalog

# A valid tier file; the tests below edit one line of it at a time.
#   line 1 tiers, 2 basic, 3 isolation, 4 throttle, 5 quota, 6 tenants, 7 acme, 8 tier
VALID = """\
tiers:
  basic:
    isolation: pooled
    throttle: {rate: 10, burst: 20}
    quota: {limit: 1000, period: MONTH}
tenants:
  acme:
    tier: basic
"""


@pytest.fixture
def write_tier_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "tiers.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def problems_of(write_tier_file: Callable[[str], Path]) -> Callable[[str], list[Problem]]:
    """The problems load_catalog reports for a tier file with this text (an empty list if it loads)."""

    def problems(text: str) -> list[Problem]:
        try:
            load_catalog(write_tier_file(text))
        except CatalogError as error:
            return error.problems
        return []

    return problems
