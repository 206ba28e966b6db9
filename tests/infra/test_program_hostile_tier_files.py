"""`pulumi up` on a path that is no tier file: a RunError with the loader's one problem, nothing declared."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from tests.infra.harness import run_program
from tests.tiers.hostile import HOSTILE, Hostile


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda hostile: hostile.name)
def test_the_program_refuses_each_hostile_tier_file_before_declaring_anything(
    tmp_path: Path, hostile: Hostile
) -> None:
    # GIVEN stack config pointing at a path that is no tier file
    path = hostile.make(tmp_path)
    # WHEN the program runs
    run = run_program(path, raise_errors=False)
    # THEN it stops with a RunError (Pulumi prints it without a traceback) naming the file and what is wrong
    assert isinstance(run.error, pulumi.RunError)
    first = str(run.error).splitlines()[0]
    assert first.startswith(f"{path}")
    assert hostile.words in first
    # AND it declared nothing
    assert run.resources == ()
