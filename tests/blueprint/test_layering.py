"""The local stack and the Lambda code run without the deployment engine's SDK.

GIVEN a fresh interpreter in which importing ``pulumi`` (or ``pulumi_aws``) fails,
WHEN every module of ``handlers``, ``local``, ``blueprint`` and ``tiers`` is imported,
THEN all of them import: none needs the Pulumi SDK.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

BLOCKER = """
import importlib.abc, pkgutil, sys

class BlockPulumi(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pulumi", "pulumi_aws"):
            raise ImportError(f"{name} is blocked: this package must not need the Pulumi SDK")
        return None

sys.meta_path.insert(0, BlockPulumi())
package = sys.argv[1]
module = importlib.import_module(package)
for info in pkgutil.walk_packages(module.__path__, prefix=package + "."):
    if not info.name.endswith(".__main__"):  # running a command line is not importing it
        importlib.import_module(info.name)
print("imported", package)
"""


@pytest.mark.parametrize("package", ["handlers", "local", "blueprint", "tiers"])
def test_package_imports_without_pulumi(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, package],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"imported {package}" in result.stdout


def test_blocker_does_block_pulumi() -> None:
    """The check above can fail: the infrastructure package does need Pulumi."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, "infra"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "is blocked" in result.stderr
