"""A local stack as a separate process (`python -m local up --port 0`), and an HTTP client for it.

The stack runs in its own process so its moto state and the handlers' module
state never mix with other tests' in-process mocks.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_local(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call_api(
    port: int,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    raw_authorization: str | None = None,
) -> HttpAnswer:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if raw_authorization is not None:
        headers["Authorization"] = raw_authorization
    payload = None if body is None else json.dumps(body).encode()
    if payload is not None:
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return HttpAnswer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


BANNER_API_LINE = re.compile(r"^\s*API\s+http://127\.0\.0\.1:(\d+)", re.MULTILINE)


@dataclass
class StackProcess:
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    port: int = 0
    """The port the stack got (it starts with --port 0), read from its banner."""

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"`python -m local up` exited with {self.process.returncode}:\n{self.output()}")
            announced = BANNER_API_LINE.search(self.stdout.read_text())
            if announced is not None:
                self.port = int(announced.group(1))
                with contextlib.suppress(OSError, ValueError):
                    if call_api(self.port, "GET", "/_local/stack").status == 200:
                        return
            time.sleep(0.1)
        pytest.fail(f"`python -m local up` not ready after {READY_TIMEOUT_SECONDS}s:\n{self.output()}")

    def children(self) -> list[int]:
        """Processes whose parent is the stack process (Linux /proc)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:
                    found.append(int(stat.parent.name))
        return found


def start_stack(
    tiers_file: Path, workdir: Path, *extra: str, launcher: tuple[str, ...] = ("-m", "local")
) -> StackProcess:
    """``python <launcher> up`` on the tier file (the launcher may be a module wrapping `python -m local`)."""
    stdout, stderr = workdir / "stack.out", workdir / "stack.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        # Output goes to files, never to an unread pipe that would fill up and block the stack.
        process = subprocess.Popen(
            [sys.executable, *launcher, "up", "--tiers", str(tiers_file), "--port", "0", *extra],
            cwd=REPO,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return StackProcess(process, stdout, stderr)


@contextlib.contextmanager
def running_stack(
    tiers_file: Path, workdir: Path, *extra: str, launcher: tuple[str, ...] = ("-m", "local")
) -> Iterator[StackProcess]:
    stack = start_stack(tiers_file, workdir, *extra, launcher=launcher)
    try:
        stack.wait_ready()
        yield stack
    finally:
        if stack.process.poll() is None:
            stack.process.send_signal(signal.SIGTERM)
            try:
                stack.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stack.process.kill()
                stack.process.wait()
