from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.bundle import Bundle, BundleSpec, build_bundle
from infra.config import Architecture, Settings

TierFileWriter = Callable[..., Path]

BASIC: dict[str, Any] = {
    "isolation": "pooled",
    "throttle": {"rate": 10, "burst": 20},
    "quota": {"limit": 10000, "period": "MONTH"},
}
GOLD: dict[str, Any] = {
    "isolation": "pooled",
    "throttle": {"rate": 50.5, "burst": 100},
    "quota": {"limit": 70000, "period": "WEEK", "offset": 2},
}
PREMIUM: dict[str, Any] = {
    "isolation": "silo",
    "throttle": {"rate": 200, "burst": 400},
    "quota": {"limit": 5000000, "period": "MONTH"},
}
TIERS: dict[str, Any] = {"basic": BASIC, "gold": GOLD, "premium": PREMIUM}
TENANTS: dict[str, Any] = {
    "acme": {"tier": "premium", "name": "Acme Corp"},
    "globex": {"tier": "basic", "name": "Globex"},
    "initech": {"tier": "basic", "name": "Initech", "suspended": True},
    "umbrella": {"tier": "gold", "name": "Umbrella"},
    "hooli": {"tier": "premium", "name": "Hooli", "suspended": True},
}


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated classes when its modules are imported.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")


def write_tier_file(path: Path, tiers: Mapping[str, Any], tenants: Mapping[str, Any]) -> Path:
    """A tier file (JSON is YAML) with these tiers and tenants."""
    path.write_text(json.dumps({"tiers": tiers, "tenants": tenants}, indent=2))
    return path


@pytest.fixture(scope="session", autouse=True)
def default_bundle() -> Bundle:
    """The bundle the program builds with the default settings, built once so program runs hit the cache."""
    defaults = Settings(tiers_file=Path("unused"))
    assert defaults.lambda_architecture is Architecture.ARM64
    return build_bundle(BundleSpec(defaults.python_version, defaults.lambda_architecture))


@pytest.fixture
def tier_file(tmp_path: Path) -> TierFileWriter:
    """tier_file(tiers=..., tenants=..., name=...) writes a tier file under tmp_path."""

    def write(
        tiers: Mapping[str, Any] = TIERS, tenants: Mapping[str, Any] = TENANTS, name: str = "tiers.yaml"
    ) -> Path:
        return write_tier_file(tmp_path / name, tiers, tenants)

    return write
