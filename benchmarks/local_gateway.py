"""What a warm request through the local gateway adds to the tenant API handler's own time.

Starts a local stack in this process (port 0, a roomy tier so nothing is
throttled), signs a tenant in, then sends warm requests over one keep-alive
connection. For each request it records the HTTP round trip and the handler's
own time (the handler wrapped before the stack imports it); the difference is
what the gateway adds: HTTP parsing, route match, cached authorizer result,
policy check, usage plan, proxy event and response mapping.

    python benchmarks/local_gateway.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TIERS = """\
tiers:
  roomy:
    isolation: pooled
    throttle: {rate: 100000, burst: 100000}
    quota: {limit: 100000000, period: MONTH}
tenants:
  bench: {tier: roomy, name: Bench}
"""

ROUTES = (("GET", "/tenant", None), ("POST", "/counter", None), ("PUT", "/items/bench", b'{"v": 1}'))


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _timed(handler: Callable[[Any, Any], Any], samples: list[float]) -> Callable[[Any, Any], Any]:
    def run(event: Any, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return handler(event, context)
        finally:
            samples.append(time.perf_counter() - started)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per route")
    args = parser.parse_args()

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    import handlers.tenant_api as tenant_api
    from local.client import id_token
    from local.stack import LocalStack, StackOptions

    handler_seconds: list[float] = []
    tenant_api.lambda_handler = _timed(tenant_api.lambda_handler, handler_seconds)  # type: ignore[assignment]

    with tempfile.TemporaryDirectory() as workdir:
        tiers_file = Path(workdir) / "bench.yaml"
        tiers_file.write_text(TIERS)
        stack = LocalStack(StackOptions(tiers_file=tiers_file, port=0, access_log=False))
        stack.start()
        try:
            token = id_token("bench", stack.port)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
            print(f"{'route':<16}{'round trip p50':>16}{'handler p50':>14}{'added p50':>14}{'added p95':>14}")
            for method, path, body in ROUTES:
                round_trips: list[float] = []
                with contextlib.redirect_stdout(io.StringIO()):  # the handlers' metric lines
                    for index in range(args.requests + 50):
                        before = len(handler_seconds)
                        started = time.perf_counter()
                        connection.request(method, path, body=body, headers=headers)
                        response = connection.getresponse()
                        response.read()
                        elapsed = time.perf_counter() - started
                        if response.status >= 300 or len(handler_seconds) != before + 1:
                            raise SystemExit(f"{method} {path} answered {response.status}")
                        if index >= 50:  # the first 50 warm up
                            round_trips.append(elapsed)
                handler = handler_seconds[-args.requests :]
                added = [trip - own for trip, own in zip(round_trips, handler, strict=True)]
                ms = 1000
                print(
                    f"{method + ' ' + path:<16}{statistics.median(round_trips) * ms:>13.2f} ms"
                    f"{statistics.median(handler) * ms:>11.2f} ms{statistics.median(added) * ms:>11.2f} ms"
                    f"{_percentile(added, 0.95) * ms:>11.2f} ms"
                )
            connection.close()
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
