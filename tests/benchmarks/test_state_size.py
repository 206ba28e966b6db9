"""The state-size estimate runs, counts what the program declares, and holds no key value in plaintext."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.program_scale import STACK, write_tier_file
from benchmarks.state_size import checkpoint_entry, measure
from tests.infra.harness import API_KEY, run_program

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_checkpoint_entries_hold_key_values_only_as_ciphertext(tmp_path: Path) -> None:
    # GIVEN a small stack run under the recording mocks
    run = run_program(write_tier_file(tmp_path / f"{STACK}.yaml", 20), stack=STACK)
    key_values = [key.outputs["value"] for key in run.of_type(API_KEY)]
    # WHEN its checkpoint entries are built as the state would hold them
    rendered = json.dumps([checkpoint_entry(resource) for resource in run.resources])
    # THEN no key value appears in them (the key, its association and the registry item are encrypted)
    assert key_values
    assert not [value for value in key_values if value in rendered]
    assert rendered.count('"ciphertext"') >= 3 * len(key_values)


def test_the_state_grows_by_the_per_tenant_resources(tmp_path: Path) -> None:
    small, large = measure(10), measure(20)
    # 10 more tenants, one of them silo: 3 resources each plus its table, bucket and the bucket's 4 settings
    assert large.resources - small.resources == 10 * 3 + 1 + 5
    assert large.indented_bytes > large.compact_bytes > small.compact_bytes
    assert large.first_deploy_written_bytes == large.resources * large.indented_bytes


def test_the_script_reports_size_and_writes() -> None:
    completed = subprocess.run(
        [sys.executable, "benchmarks/state_size.py", "--tenants", "10"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for needle in ("resources in state", "checkpoint, as written", "first deploy writes", "TableItem"):
        assert needle in completed.stdout
