"""`python -m local up` on a path that is no tier file: `FILE: what is wrong`, exit 1, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.local.conftest import free_port, port_is_open, run_local
from tests.tiers.hostile import HOSTILE, Hostile


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda hostile: hostile.name)
def test_up_refuses_each_hostile_tier_file_cleanly(tmp_path: Path, hostile: Hostile) -> None:
    # GIVEN a path that is no tier file (deep nesting, oversized, a device, a FIFO, a directory, binary)
    path = hostile.make(tmp_path)
    port = free_port()
    # WHEN the local stack is started on it, in a process of its own (a crash or a hang fails here)
    result = run_local("up", "--tiers", str(path), "--port", str(port), timeout=60)
    # THEN exit 1 with the loader's one problem about the file, no traceback, and nothing listening
    assert result.returncode == 1, result.stderr[-2_000:]
    assert "Traceback" not in result.stderr
    first, last = result.stderr.splitlines()
    assert first.startswith(f"{path}")
    assert hostile.words in first
    assert last.startswith(f"1 problem in {path}")
    assert not port_is_open(port)
