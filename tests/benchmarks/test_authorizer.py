"""The authorizer benchmark keeps working: a quick run succeeds, stays off the fakes after warm-up, and
prints its figures in the documented format (never asserted on: timings are not tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "authorizer.py"
NUMBER = r"\d+(?:\.\d+)?"


def test_quick_run_prints_every_figure_and_the_summary_line() -> None:
    # WHEN the benchmark runs in its quick mode
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=120,
    )

    # THEN it succeeds
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    output = completed.stdout
    # AND reports the three hot-path measurements
    for name in ("warm, distinct tokens", "warm, repeated token", "PyJWT decode_complete"):
        assert re.search(
            rf"^  {re.escape(name)} +p50 +{NUMBER} us +p99 +{NUMBER} us +[\d,]+ /s$", output, re.M
        ), name
    # AND the measured loops touched neither the key set nor the registry after warm-up
    assert re.search(r"^  after warm-up: 0 JWKS fetches, 0 registry reads$", output, re.M)
    # AND an import time for each handler module
    for module in ("handlers.authorizer", "handlers.tenant_api"):
        assert re.search(
            rf"^  {re.escape(module)} +{NUMBER} ms \(median of 1\) +no \.pyc: +{NUMBER} ms$", output, re.M
        )
    # AND ends with the summary line
    assert re.fullmatch(rf"authorizer p50 {NUMBER} us = {NUMBER}x PyJWT decode", output.splitlines()[-1])


def test_bad_arguments_get_a_usage_error() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--tokens", "0"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 2
    assert "error:" in completed.stderr
    assert "Traceback" not in completed.stderr
