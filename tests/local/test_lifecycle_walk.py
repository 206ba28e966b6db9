"""The README's walk of a tenant from pooled to silo and back on the local stack, run line by line.

The lines are read from README.md itself, so the walk there cannot drift from what works: each line's
trailing ``# exit N`` is the exit status it must have.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from local.settings import DUMMY_CREDENTIALS
from tests.local.conftest import REPO, call_api, running_stack

WALK_HEADING = "### On the local stack: pooled → silo and back"
README_PORT = "8080"
LINE = re.compile(r"^(?P<command>.+?)\s+# exit (?P<status>\d+)(?P<note>.*)$")


@dataclass(frozen=True)
class Step:
    command: str
    status: int
    note: str


def walk_steps() -> list[Step]:
    readme = (REPO / "README.md").read_text()
    section = readme.split(WALK_HEADING, 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    steps = []
    for line in block.splitlines():
        matched = LINE.match(line)
        assert matched is not None, f"README walk line without its `# exit N`: {line}"
        steps.append(Step(matched["command"], int(matched["status"]), matched["note"]))
    return steps


def test_the_readme_walk_runs_as_written(tmp_path: Path) -> None:
    # GIVEN the dev tier file in a scratch directory and a local stack serving it
    (tmp_path / "tiers").mkdir()
    tiers_file = tmp_path / "tiers" / "dev.yaml"
    shutil.copyfile(REPO / "tiers" / "dev.yaml", tiers_file)
    steps = walk_steps()
    assert any("python -m tiers plan" in step.command for step in steps)
    assert any("python -m local reload" in step.command for step in steps)
    assert any("python -m tiers migrate" in step.command for step in steps)

    with running_stack(tiers_file, tmp_path, "--quiet") as stack:
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        outputs = []
        for step in steps:
            # WHEN each line runs as written, on this stack's port and with this interpreter
            command = step.command.replace(README_PORT, str(stack.port))
            command = re.sub(r"\bpython -m ", f"{sys.executable} -m ", command)
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=environment,
                capture_output=True,
                text=True,
                timeout=180,
            )
            # THEN it exits as the README says
            assert done.returncode == step.status, (
                f"`{step.command}` exited {done.returncode}, the README says {step.status}\n"
                f"{done.stdout}\n{done.stderr}"
            )
            outputs.append(done.stdout)
            # ...and a reload after the pin has nothing to warn about
            assert "was not pinned" not in done.stdout
            if "served from the silo table" in step.note:
                # ...and globex's item is served from its silo table, which holds it
                assert '"plan": "basic"' in done.stdout or '"plan":"basic"' in done.stdout
                assert _silo_rows(stack.port) == 1

        # THEN at the end globex is back on basic with its item, its silo table is gone, the file restored
        assert '"plan"' in outputs[-2]
        assert tiers_file.read_text() == (REPO / "tiers" / "dev.yaml").read_text()
        tenants = call_api(stack.port, "GET", "/_local/outputs").json()["tenants"]
        assert tenants["globex"]["tier"] == "basic"
        with pytest.raises(Exception, match="ResourceNotFound"):
            _silo_rows(stack.port)
        assert sorted(path.name for path in tmp_path.iterdir()) == ["stack.err", "stack.out", "tiers"]
    assert "Traceback" not in stack.output()


def _silo_rows(port: int) -> int:
    described = call_api(port, "GET", "/_local/stack").json()
    client = boto3.session.Session(region_name=described["region"], **DUMMY_CREDENTIALS).client(
        "dynamodb", endpoint_url=described["moto_endpoint"]
    )
    return int(client.scan(TableName="tenant-tiers-local-silo-globex", Select="COUNT")["Count"])
