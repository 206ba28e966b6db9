"""`python -m tiers validate`: a summary and exit 0, or every problem and exit 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiers.conftest import VALID
from tiers.cli import main

REPO = Path(__file__).resolve().parents[2]

SUMMARY_FILE = """\
tiers:
  basic:
    isolation: pooled
    throttle: {rate: 10, burst: 20}
    quota: {limit: 10000, period: MONTH}
  premium:
    isolation: silo
    throttle: {rate: 2.5, burst: 400}
    quota: {limit: 5000000, period: WEEK, offset: 2}
  unused:
    isolation: pooled
    throttle: {rate: 1, burst: 1}
    quota: {limit: 1, period: DAY}
tenants:
  acme: {tier: premium, name: Acme Corp}
  globex: {tier: basic, suspended: true}
  initech: {tier: basic}
  hooli: {tier: premium, suspended: true}
"""


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_prints_a_summary_of_a_valid_file(capsys, tmp_path):
    # GIVEN a valid tier file with suspended and silo tenants and a tier nobody uses
    path = tmp_path / "stack.yaml"
    path.write_text(SUMMARY_FILE)
    # WHEN validated
    code, out, err = run_cli(capsys, "validate", str(path))
    # THEN exit 0 and a summary: totals, then per tier its settings and tenant count
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{path}: valid. 3 tiers, 4 tenants (2 silo, 2 suspended).",
        "  tier     isolation  throttle         quota                    tenants",
        "  basic    pooled     10/s burst 20    10,000/MONTH             2 (1 suspended)",
        "  premium  silo       2.5/s burst 400  5,000,000/WEEK offset 2  2 (1 suspended)",
        "  unused   pooled     1/s burst 1      1/DAY                    0",
    ]


def test_validate_reports_every_problem_and_a_count_on_stderr(capsys, tmp_path):
    # GIVEN a tier file with two mistakes
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace("tier: basic", "tier: gold") + "    suspended: maybe\n")
    # WHEN validated
    code, out, err = run_cli(capsys, "validate", str(path))
    # THEN exit 1, nothing on stdout, each problem on its own line, then the count
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{path}:8: tenants.acme.tier: unknown tier 'gold'; tiers in this file: basic. "
        "Use one of them or add the tier under `tiers:`.",
        f"{path}:9: tenants.acme.suspended: 'suspended' must be true or false; found the text \"maybe\".",
        f"2 problems in {path}; nothing was accepted. Fix them and check again with "
        f"`python -m tiers validate {path}`.",
    ]


def test_validate_defaults_to_the_dev_stack_file(capsys, tmp_path, monkeypatch):
    # GIVEN a directory with tiers/dev.yaml
    (tmp_path / "tiers").mkdir()
    (tmp_path / "tiers" / "dev.yaml").write_text(VALID)
    monkeypatch.chdir(tmp_path)
    # WHEN validate is run without a file
    code, out, _ = run_cli(capsys, "validate")
    # THEN it checks tiers/dev.yaml
    assert code == 0
    assert out.startswith("tiers/dev.yaml: valid. 1 tier, 1 tenant (0 silo, 0 suspended).")


def test_validate_of_a_missing_file_is_a_problem_not_a_traceback(capsys, tmp_path):
    code, out, err = run_cli(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert (code, out) == (1, "")
    assert (
        err.splitlines()[0]
        == f"{tmp_path / 'nope.yaml'}: no such file. Check the path, or create the tier file there."
    )


@pytest.mark.parametrize(
    "argv", [[], ["validate", "a.yaml", "b.yaml"], ["check"], ["users"], ["validate", "--x"]]
)
def test_bad_usage_exits_2_with_argparse_message(capsys, argv):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m tiers" in err
    assert "Traceback" not in err


def python_m_tiers(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "tiers", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_m_tiers_validates_the_dev_stack():
    result = python_m_tiers("validate", "tiers/dev.yaml")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("tiers/dev.yaml: valid. 2 tiers, 3 tenants (1 silo, 1 suspended).")


@pytest.mark.parametrize(
    "text",
    ["tiers: [\n", "", "\x00binary", VALID.replace("rate: 10", 'rate: "10"')],
    ids=["syntax-error", "empty", "control-character", "quoted-number"],
)
def test_python_m_tiers_fails_cleanly_on_bad_files(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = python_m_tiers("validate", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert all(line.startswith(str(path)) for line in lines[:-1])
    assert lines[-1].startswith("1 problem in ")


def test_python_m_tiers_bad_usage_exits_2():
    result = python_m_tiers("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    assert "Traceback" not in result.stderr
