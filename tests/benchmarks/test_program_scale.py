"""The scale benchmark keeps working, and its floor stays honest: it declares what the program declares."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest

from benchmarks.floor import default_bundle, floor
from benchmarks.program_scale import DEFAULT_SIZES, STACK, write_tier_file
from tests.infra.harness import PROJECT, ProgramRun, run_program

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "program_scale.py"
SMALLEST = min(DEFAULT_SIZES)
NUMBER = r"\d+(?:\.\d+)?"


def _canonical(value: Any) -> Any:
    """Inputs as comparable JSON: an archive is its path (the objects differ, the bundle is one)."""
    if isinstance(value, pulumi.FileArchive):
        return {"FileArchive": value.path}
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _declared(run: ProgramRun) -> Counter[tuple[Any, ...]]:
    return Counter(
        (
            resource.type,
            resource.name,
            json.dumps(_canonical(dict(resource.inputs)), sort_keys=True),
            resource.secret_inputs,
            resource.protect,
            resource.retain_on_delete,
            resource.delete_before_replace,
            resource.additional_secret_outputs,
            tuple(sorted(dependency.rpartition("::")[2] for dependency in resource.dependencies)),
        )
        for resource in run.custom_resources
    )


def test_floor_declares_exactly_what_the_program_declares(tmp_path: Path) -> None:
    # GIVEN the benchmark's tier file at its smallest size and the program's default bundle
    tiers_file = write_tier_file(tmp_path / f"{STACK}.yaml", SMALLEST)
    bundle = default_bundle()

    # WHEN the program and the floor each run under the recording mocks
    program = run_program(tiers_file, stack=STACK)
    floor_run = run_program(
        tiers_file,
        stack=STACK,
        program=functools.partial(floor, tiers_file, bundle, f"{PROJECT}-{STACK}"),
    )

    # THEN they register the same multiset of custom resources (type, name, inputs, options, dependencies)
    program_declared, floor_declared = _declared(program), _declared(floor_run)
    assert program_declared - floor_declared == Counter(), "declared by the program only"
    assert floor_declared - program_declared == Counter(), "declared by the floor only"
    assert len(program.custom_resources) > 3 * SMALLEST
    # AND export the same stack outputs
    assert floor_run.outputs == program.outputs
    assert floor_run.secret_outputs == program.secret_outputs
    # AND the floor has no components at all
    assert all(resource.custom for resource in floor_run.resources)


def test_benchmark_runs_at_its_smallest_size() -> None:
    # WHEN the benchmark runs once at its smallest size
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", str(SMALLEST), "--repeat", "1"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=240,
    )

    # THEN it succeeds and prints a row per variant, the ratios and the targets
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout
    assert "Traceback" not in completed.stderr
    rows = {
        match["variant"]: match
        for match in re.finditer(
            rf"^  (?P<variant>program|floor) +(?P<resources>\d+) +(?P<pooled>{NUMBER}) +(?P<silo>{NUMBER})"
            rf" +{NUMBER} +{NUMBER} +{NUMBER} +-?{NUMBER}$",
            output,
            re.MULTILINE,
        )
    }
    assert set(rows) == {"program", "floor"}, output
    assert rows["program"]["resources"] == rows["floor"]["resources"]
    assert re.search(
        rf"program/floor: wall {NUMBER}x, CPU {NUMBER}x, peak RSS {NUMBER}x, RSS growth -?{NUMBER}x", output
    )
    # AND the resource budget per pooled tenant holds (a count, not a timing)
    assert float(rows["program"]["pooled"]) <= 3
    assert float(rows["program"]["silo"]) > float(rows["program"]["pooled"])
    assert re.search(r"^targets at 100 tenants \(target size not run\):$", output, re.MULTILINE)


@pytest.mark.parametrize("arguments", [["--sizes", "ten"], ["--sizes", "0"], ["--repeat", "-1"]])
def test_bad_arguments_get_a_usage_error(arguments: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert completed.returncode == 2
    assert "error:" in completed.stderr
    assert "Traceback" not in completed.stderr
