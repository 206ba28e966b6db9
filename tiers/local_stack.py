"""How a running local stack (`python -m local up`) is reached: its host, reserved paths and credentials.

The local stack serves these paths and the operator commands (`python -m tiers usage|migrate|decommission
--local-port PORT`) call them, so both sides read them here, one definition.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final

HOST: Final = "127.0.0.1"
REGION: Final = "us-east-1"
DUMMY_CREDENTIALS: Final = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
"""moto accepts any credentials; setting them explicitly keeps a real profile or key from being used."""

RESERVED_PREFIX: Final = "/_local/"
STACK_PATH: Final = f"{RESERVED_PREFIX}stack"
USAGE_PATH: Final = f"{RESERVED_PREFIX}usage"
OUTPUTS_PATH: Final = f"{RESERVED_PREFIX}outputs"
INSTANCES_PATH: Final = f"{RESERVED_PREFIX}instances"
MANAGEMENT_PREFIX: Final = f"{RESERVED_PREFIX}apigateway"
RELOAD_PATH: Final = f"{RESERVED_PREFIX}reload"

REQUEST_TIMEOUT_SECONDS: Final = 5


class LocalStackUnreachableError(Exception):
    """No local stack answered as one; the message says where it looked and what to do."""


def fetch(port: int, path: str) -> Any:
    """GET ``path`` of the local stack on ``port`` and return its JSON."""
    url = f"http://{HOST}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise LocalStackUnreachableError(
            f"what answers on port {port} is not a tenant-tiers local stack ({url}: HTTP {error.code}); "
            "pass the port `python -m local up` printed"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise LocalStackUnreachableError(
            f"no local stack answers on {url} ({getattr(error, 'reason', error)}); "
            f"start one with `python -m local up --port {port}` or pass the --port it runs on"
        ) from None
