"""The HTTP front of the local stack: the gateway on every path but the reserved ``/_local/`` ones.

Deviation from API Gateway: ``GET /_local/stack`` (where the stack's pieces are
and the demo users' sign-in details, for ``python -m local token``),
``GET /_local/usage`` (per-tenant usage, for ``python -m local usage``),
``GET /_local/outputs`` (the stack outputs the Pulumi program would export) and
``/_local/apigateway/...`` (API Gateway's GetUsagePlan and GetUsage, for
``python -m tiers usage --local-port``) are answered by the local stack itself.
No tenant route can collide with them: the prefix is checked against
``handlers.contract.ROUTES`` at import.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from handlers.contract import ROUTES
from local.gateway import Gateway, Request, Response

RESERVED_PREFIX = "/_local/"
STACK_PATH = f"{RESERVED_PREFIX}stack"
USAGE_PATH = f"{RESERVED_PREFIX}usage"
OUTPUTS_PATH = f"{RESERVED_PREFIX}outputs"
MANAGEMENT_PREFIX = f"{RESERVED_PREFIX}apigateway"

if any(resource.startswith(RESERVED_PREFIX) for _, resource in ROUTES):
    raise RuntimeError(f"a tenant route starts with the local stack's reserved prefix {RESERVED_PREFIX}")

ReservedRoutes = Mapping[str, Callable[[], Any]]
ManagementHandler = Callable[[str, str], Response]
"""(method, request target) -> response, for paths under MANAGEMENT_PREFIX."""

MAX_CHUNK_LINE = 1024


class GatewayServer(ThreadingHTTPServer):
    """A thread per connection; ``stop`` also closes idle keep-alive connections so nothing lingers."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], gateway: Gateway | None, *, access_log: bool = True) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway
        self.reserved: ReservedRoutes = {}
        self.management: ManagementHandler | None = None
        self.access_log = access_log
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._serving: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(
        self, gateway: Gateway, reserved: ReservedRoutes, management: ManagementHandler | None = None
    ) -> None:
        self.gateway = gateway
        self.reserved = reserved
        self.management = management
        self._serving = threading.Thread(target=self.serve_forever, name="local-gateway", daemon=True)
        self._serving.start()

    def stop(self) -> None:
        if self._serving is not None:
            self.shutdown()
            self._serving.join()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)


class _RequestHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"
    server_version = "tenant-tiers-local"
    # Headers and body go out in two writes: with Nagle's algorithm on, a keep-alive client's
    # delayed ACK would hold the body back ~40 ms.
    disable_nagle_algorithm = True

    # Errors the stdlib answers itself (request line or headers too long, bad syntax) as JSON too.
    error_content_type = "application/json"
    error_message_format = '{"message": "%(message)s"}'

    def _serve(self) -> None:
        body = self._body()
        if body is None:
            message = "unreadable request body: send a Content-Length in bytes or well-formed chunks"
            self._write(_json_response(400, {"message": message}))
            self.close_connection = True
            return
        path = urlsplit(self.path).path
        if path.startswith(MANAGEMENT_PREFIX + "/") and self.server.management is not None:
            self._write(self.server.management(self.command, self.path))
            return
        if path.startswith(RESERVED_PREFIX):
            self._write(self._reserved(path))
            return
        gateway = self.server.gateway
        if gateway is None:
            self._write(_json_response(503, {"message": "the local stack is still starting"}))
            return
        request = Request(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        self._write(gateway.handle(request))

    def _body(self) -> bytes | None:
        """The request body, by Content-Length or chunked as curl sends from stdin; None if unreadable."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(MAX_CHUNK_LINE).split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(MAX_CHUNK_LINE).strip():
                        pass  # trailers end with a blank line
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(MAX_CHUNK_LINE)
        length = self.headers.get("Content-Length") or "0"
        return self.rfile.read(int(length)) if length.isdigit() else None

    def _reserved(self, path: str) -> Response:
        route = self.server.reserved.get(path)
        if route is None or self.command != "GET":
            paths = ", ".join(f"GET {p}" for p in sorted(self.server.reserved))
            return _json_response(
                404, {"message": f"{self.command} {path} is not a local stack path; try {paths}"}
            )
        return _json_response(200, route())

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            super().log_message(format, *args)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


def _json_response(status: int, payload: Any) -> Response:
    return Response(
        status=status, headers=[("Content-Type", "application/json")], body=json.dumps(payload).encode()
    )
