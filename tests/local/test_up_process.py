"""`python -m local up` as a user runs it: ready, serving, stopped by a signal, and refusing bad input."""

from __future__ import annotations

import signal
import socket
import textwrap

import pytest

from local.client import id_token
from tests.local.conftest import call_api, free_port, port_is_open, run_local, running_stack, start_stack

TIERS = textwrap.dedent(
    """\
    tiers:
      basic:
        isolation: pooled
        throttle: {rate: 2, burst: 3}
        quota: {limit: 5, period: DAY}
    tenants:
      solo: {tier: basic, name: Solo}
    """
)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_up_serves_until_a_signal_then_exits_0_leaving_nothing_behind(tmp_path, stop_signal):
    tiers_file = tmp_path / "tiers.yaml"
    tiers_file.write_text(TIERS)
    with running_stack(tiers_file, tmp_path) as stack:
        # GIVEN a ready stack that prints where everything is
        assert stack.children() == []
        token = id_token("solo", stack.port)
        assert call_api(stack.port, "GET", "/tenant", token).json()["tenant_id"] == "solo"
        banner = stack.stdout.read_text()
        assert f"http://127.0.0.1:{stack.port}" in banner
        assert f"python -m local token solo --port {stack.port}" in banner
        # WHEN it gets the signal
        stack.process.send_signal(stop_signal)
        exit_code = stack.process.wait(timeout=30)
    # THEN it exits 0, its port is closed and no process of it is left
    assert exit_code == 0
    assert not port_is_open(stack.port)
    assert stack.children() == []
    assert "Traceback" not in stack.output()


def test_a_bad_tier_file_prints_its_problems_and_starts_nothing(tmp_path):
    tiers_file = tmp_path / "broken.yaml"
    tiers_file.write_text(TIERS.replace("tier: basic", "tier: gold").replace("burst: 3", "burst: many"))
    port = free_port()
    result = run_local("up", "--tiers", str(tiers_file), "--port", str(port))
    assert result.returncode == 1
    assert "broken.yaml" in result.stderr
    assert "gold" in result.stderr
    assert "burst" in result.stderr
    assert "Traceback" not in result.stderr
    assert not port_is_open(port)


def test_a_missing_tier_file_is_one_clear_error(tmp_path):
    result = run_local("up", "--tiers", str(tmp_path / "absent.yaml"), "--port", str(free_port()))
    assert result.returncode == 1
    assert "absent.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_says_so_and_suggests_another(tmp_path):
    tiers_file = tmp_path / "tiers.yaml"
    tiers_file.write_text(TIERS)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_local("up", "--tiers", str(tiers_file), "--port", str(port))
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_out_of_range_authorizer_cache_ttl_is_refused(tmp_path):
    tiers_file = tmp_path / "tiers.yaml"
    tiers_file.write_text(TIERS)
    stack = start_stack(tiers_file, tmp_path, "--authorizer-cache-ttl", "7200")
    assert stack.process.wait(timeout=60) == 1
    assert "--authorizer-cache-ttl" in stack.stderr.read_text()
    assert "Traceback" not in stack.output()
