"""The local IAM benchmark keeps working: a tiny run succeeds and prints its figures in the documented
format (never asserted on: timings are not tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "local_iam.py"
MS = r"-?\d+\.\d{3} ms"


def test_a_tiny_run_prints_each_call_and_the_summary_line() -> None:
    # WHEN the benchmark runs with a handful of calls
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--requests", "3"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=120,
    )
    # THEN it succeeds: every call of the tenant session was allowed on both endpoints
    assert completed.returncode == 0, completed.stdout + completed.stderr
    output = completed.stdout
    # AND it reports each call the tenant API makes, then the overhead
    for call in ("GetItem", "PutItem", "Query", "UpdateItem"):
        assert re.search(rf"^{call} +{MS} +{MS} +{MS}$", output, re.M), output
    assert re.search(rf"^IAM enforcement adds {MS} per DynamoDB call \(median\)$", output, re.M), output
