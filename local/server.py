"""The HTTP front of the local stack: the gateway on every path but the reserved ``/_local/`` ones.

Deviation from API Gateway: ``GET /_local/stack`` (where the stack's pieces are
and the demo users' sign-in details, for ``python -m local token``),
``GET /_local/usage`` (per-tenant usage, for ``python -m local usage``),
``GET /_local/outputs`` (the stack outputs the Pulumi program would export) and
``/_local/apigateway/...`` (API Gateway's GetUsagePlan and GetUsage, for
``python -m tiers usage --local-port``) are answered by the local stack itself, and
``POST /_local/reload`` (re-read the tier file, ``python -m local reload``) changes
it, for clients on this machine only.
No tenant route can collide with them: the prefix is checked against
``handlers.contract.ROUTES`` at import.

What the server itself guarantees, before the gateway sees a request:

- Load: a listen backlog of ``LISTEN_BACKLOG`` connections (bursts wait in the
  kernel's queue instead of being refused), a thread per connection, and
  ``READ_TIMEOUT_SECONDS`` for every read and write and ``REQUEST_DEADLINE_SECONDS``
  for a whole request to arrive, so an idle keep-alive, a stalled upload or a
  trickling client gives its thread back.
- Framing: exactly one of ``Content-Length`` (digits only, once) or
  ``Transfer-Encoding: chunked`` (well-formed hex sizes, CRLF after each chunk).
  Anything else, both at once (request smuggling), a body that ends before its
  announced size, or a request line past 65,536 bytes is refused (400, 414)
  with a JSON message and the connection closed; nothing reaches the gateway.
  A body over the gateway's ``MAX_PAYLOAD_BYTES`` is refused with API
  Gateway's 413 after reading at most that many bytes: a declared length
  over it is refused before reading any (and before ``100 Continue``).
- Every HTTP method reaches the gateway, which answers what it does not route
  with 403 ``Missing Authentication Token``, as API Gateway does.
- Shutdown (``stop``): stop accepting, take the connections the kernel already
  completed, close idle keep-alive connections, let requests in flight finish
  and answer (``Connection: close``) for up to ``SHUTDOWN_GRACE_SECONDS``, then
  cut whatever is left.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import re
import select
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from handlers.contract import ROUTES
from local.gateway import MAX_PAYLOAD_BYTES, Gateway, Request, Response, gateway_error
from tiers.local_stack import MANAGEMENT_PREFIX, RESERVED_PREFIX

if any(resource.startswith(RESERVED_PREFIX) for _, resource in ROUTES):
    raise RuntimeError(f"a tenant route starts with the local stack's reserved prefix {RESERVED_PREFIX}")

ReservedRoutes = Mapping[str, Callable[[], Any]]
ManagementHandler = Callable[[str, str], Response]
"""(method, request target) -> response, for paths under MANAGEMENT_PREFIX."""
ReservedActions = Mapping[str, Callable[[bytes], Response]]
"""POST paths that change the stack: (JSON request body) -> response; loopback clients only."""

# The standard library's default backlog is 5: a burst of 200 connections left 71 requests unserved.
LISTEN_BACKLOG = 1024
READ_TIMEOUT_SECONDS = 15.0
# A client that trickles its request a byte at a time never trips the read timeout: the whole request line,
# headers and body must arrive within this.
REQUEST_DEADLINE_SECONDS = 60.0
SHUTDOWN_GRACE_SECONDS = 10.0
# After refusing a body, what the client still sends is read and dropped for this long before the
# connection closes: closing with unread data resets the connection, and the client may lose the answer.
LINGER_SECONDS = 1.0
LINGER_READ_BYTES = 64 * 1024

MAX_REQUEST_LINE_BYTES = 65_536
# The standard library's header limits (http.client): it answers 431 past them.
MAX_HEADER_LINE_BYTES = 65_536
MAX_HEADER_LINES = 100
MAX_CHUNK_LINE_BYTES = 1024
MAX_TRAILER_LINES = 100
# Sizes beyond what a signed 64-bit integer holds are not sizes any client means.
LARGEST_SIZE = 2**63 - 1
_DECIMAL_SIZE = re.compile(r"[0-9]{1,19}")
_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CRLF = b"\r\n"


class FramingError(Exception):
    """The request's body cannot be delimited or is too large; ``status`` and message are the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _shown(value: str | bytes) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return json.dumps(text if len(text) <= 40 else text[:40] + "...")


def _payload_too_large() -> FramingError:
    return FramingError(413, "Request Too Large")


def body_length(headers: Message) -> int | None:
    """The body's length from ``Content-Length`` (0 without one), or None for ``Transfer-Encoding: chunked``.

    Raises FramingError for anything ambiguous, malformed or over ``MAX_PAYLOAD_BYTES``.
    """
    encodings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if encodings and lengths:
        raise FramingError(
            400,
            "the request has both Transfer-Encoding and Content-Length, which could delimit its body in two "
            "ways: send only one of them",
        )
    if encodings:
        if [encoding.strip().lower() for encoding in encodings] != ["chunked"]:
            raise FramingError(
                400,
                f"Transfer-Encoding {_shown(', '.join(encodings))} is not supported: send the body with "
                "a Content-Length, or with Transfer-Encoding: chunked alone",
            )
        return None
    if not lengths:
        return 0
    if len(lengths) > 1:
        raise FramingError(400, f"the request has {len(lengths)} Content-Length headers: send exactly one")
    value = lengths[0].strip()
    if _DECIMAL_SIZE.fullmatch(value) is None or int(value) > LARGEST_SIZE:
        raise FramingError(
            400,
            f"Content-Length {_shown(value)} is not a number of bytes: send the body's size in bytes as "
            "digits only, e.g. Content-Length: 42",
        )
    if int(value) > MAX_PAYLOAD_BYTES:
        raise _payload_too_large()
    return int(value)


class BodyEndedEarly(Exception):
    """The client stopped sending (closed its side) before the body was complete."""


@dataclass
class _Reader:
    """Reads a request body off a buffered socket file, never more than ``MAX_PAYLOAD_BYTES`` of data."""

    rfile: Any

    def exactly(self, size: int) -> bytes:
        data: bytes = self.rfile.read(size)
        if len(data) < size:
            raise BodyEndedEarly(f"the request body ended after {len(data)} of the {size} bytes announced")
        return data

    def line(self) -> bytes:
        line: bytes = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
        if not line.endswith(b"\n"):
            if len(line) > MAX_CHUNK_LINE_BYTES:
                raise FramingError(
                    400, f"a chunk size or trailer line is longer than {MAX_CHUNK_LINE_BYTES} bytes"
                )
            raise BodyEndedEarly("the chunked request body ended before its last (zero-size) chunk")
        if not line.endswith(_CRLF):
            raise FramingError(400, "chunked body lines must end with CRLF, not a bare LF")
        return line[:-2]

    def chunked(self) -> bytes:
        chunks: list[bytes] = []
        received = 0
        while True:
            size_line = self.line()
            size_text = size_line.split(b";", 1)[0].rstrip(b" \t") if b";" in size_line else size_line
            if _HEX_SIZE.fullmatch(size_text) is None or int(size_text, 16) > LARGEST_SIZE:
                raise FramingError(
                    400,
                    f"chunk size {_shown(size_text)} is not a size: each chunk starts with its size in "
                    "hexadecimal digits, then CRLF",
                )
            size = int(size_text, 16)
            if size == 0:
                break
            received += size
            if received > MAX_PAYLOAD_BYTES:
                raise _payload_too_large()
            chunks.append(self.exactly(size))
            if self.rfile.read(2) != _CRLF:
                raise FramingError(400, "a chunk's data must be followed by CRLF, exactly its size later")
        for _ in range(MAX_TRAILER_LINES):
            if not self.line():
                return b"".join(chunks)
        raise FramingError(400, f"the chunked body has more than {MAX_TRAILER_LINES} trailer lines")


class _ConnectionState(Enum):
    NEW = "new"
    IDLE = "idle"
    """Waiting for (or receiving) a request line."""
    READING = "reading"
    """Receiving a request's headers and body."""
    BUSY = "busy"
    """The request is complete and being served."""
    CLOSED = "closed by the server"
    """Idle at shutdown, or too slow to send its request."""


_RECEIVING = (_ConnectionState.NEW, _ConnectionState.IDLE, _ConnectionState.READING)


def _has_pending_data(connection: socket.socket) -> bool:
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    return bool(poller.poll(0))


class GatewayServer(ThreadingHTTPServer):
    """A thread per connection; ``stop`` drains in-flight requests within a bounded grace period."""

    request_queue_size = LISTEN_BACKLOG
    # A handler stuck past the grace period must not keep the process from exiting.
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], gateway: Gateway | None, *, access_log: bool = True) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway
        self.reserved: ReservedRoutes = {}
        self.management: ManagementHandler | None = None
        self.actions: ReservedActions = {}
        self.access_log = access_log
        self._connections: dict[socket.socket, tuple[_ConnectionState, float]] = {}
        self._lock = threading.Condition()
        self._draining = False
        self._serving: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def draining(self) -> bool:
        return self._draining

    def start(
        self,
        gateway: Gateway,
        reserved: ReservedRoutes,
        management: ManagementHandler | None = None,
        actions: ReservedActions | None = None,
    ) -> None:
        self.gateway = gateway
        self.reserved = reserved
        self.management = management
        self.actions = actions or {}
        self._serving = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="local-gateway", daemon=True
        )
        self._serving.start()

    def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> int:
        """Stop accepting, answer what is in flight (up to ``grace`` seconds); returns how many were cut."""
        with self._lock:
            self._draining = True
        if self._serving is not None:
            self.shutdown()
            self._serving.join()
            self._serving = None
            self._accept_backlog()
        self.server_close()
        self._close_idle_connections()
        deadline = time.monotonic() + grace
        with self._lock:
            while self._connections and (remaining := deadline - time.monotonic()) > 0:
                self._lock.wait(remaining)
            cut = list(self._connections.items())
            for connection, (state, _) in cut:
                # One still receiving its request is told so (408); one being served is cut.
                self._close(connection, socket.SHUT_RD if state in _RECEIVING else socket.SHUT_RDWR)
        return len(cut)

    def _accept_backlog(self) -> None:
        """Serve the connections the kernel completed before the listening socket closes (their clients
        may already have sent a request)."""
        self.socket.setblocking(False)
        while True:
            try:
                request, client_address = self.get_request()
            except OSError:
                return
            self.process_request(request, client_address)

    def _close_idle_connections(self) -> None:
        with self._lock:
            for connection, (state, _) in self._connections.items():
                if state in (_ConnectionState.NEW, _ConnectionState.IDLE) and not _has_pending_data(
                    connection
                ):
                    self._close(connection, socket.SHUT_RDWR)

    def _close(self, connection: socket.socket, how: int) -> None:
        self._connections[connection] = (_ConnectionState.CLOSED, time.monotonic())
        with contextlib.suppress(OSError):
            connection.shutdown(how)

    def service_actions(self) -> None:
        """Between accepts: stop receiving from connections whose request is overdue (see
        REQUEST_DEADLINE_SECONDS); one that was mid-request still gets its 408."""
        super().service_actions()
        overdue = time.monotonic() - REQUEST_DEADLINE_SECONDS
        with self._lock:
            for connection, (state, since) in list(self._connections.items()):
                if state in _RECEIVING and since < overdue:
                    self._close(connection, socket.SHUT_RD)

    def _move(self, connection: socket.socket, state: _ConnectionState) -> bool:
        """Record the connection's new state; False if the server already closed it."""
        if self._connections.get(connection, (None, 0.0))[0] is _ConnectionState.CLOSED:
            return False
        self._connections[connection] = (state, time.monotonic())
        return True

    def await_request(self, connection: socket.socket) -> bool:
        """Called before reading a request line: False when the server is draining and nothing was sent."""
        with self._lock:
            if self._draining and not _has_pending_data(connection):
                return False
            return self._move(connection, _ConnectionState.IDLE)

    def begin_request(self, connection: socket.socket) -> bool:
        """Called once a request line arrived: False when the server closed the connection meanwhile."""
        with self._lock:
            return self._move(connection, _ConnectionState.READING)

    def request_received(self, connection: socket.socket) -> bool:
        """Called once headers and body are in: False when they came too late (the server stopped reading)."""
        with self._lock:
            return self._move(connection, _ConnectionState.BUSY)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections[request] = (_ConnectionState.NEW, time.monotonic())
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.pop(request, None)
            self._lock.notify_all()
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002 (the stdlib's signature)
        """One line on stderr, never a traceback; a client that went away is not an error."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        host, port = client_address[:2]
        print(
            f"local stack: request from {host}:{port} failed: {type(error).__name__}: {error}",
            file=sys.stderr,
        )


class _RequestHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"
    server_version = "tenant-tiers-local"
    timeout = READ_TIMEOUT_SECONDS
    # Headers and body go out in two writes: with Nagle's algorithm on, a keep-alive client's
    # delayed ACK would hold the body back ~40 ms.
    disable_nagle_algorithm = True

    # Error answers carry a status line even when the request line could not be parsed.
    default_request_version = "HTTP/1.1"

    def handle_one_request(self) -> None:
        """One request of the connection: every method is served (the gateway routes), framing is strict."""
        self.close_connection = True
        if not self.server.await_request(self.connection):
            return
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE_BYTES + 1)
        except TimeoutError:
            return  # an idle keep-alive connection
        if not self.raw_requestline or not self.server.begin_request(self.connection):
            return
        self.request_version = self.default_request_version
        if len(self.raw_requestline) > MAX_REQUEST_LINE_BYTES:
            self.requestline = self.command = ""
            self.send_error(414)
            return
        self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        self.command = ""
        if len(self.raw_requestline.split()) == 2:
            # HTTP/0.9 has no headers; the stdlib would wait for some.
            self.send_error(400, "the request line must be METHOD TARGET HTTP/1.1 (HTTP/0.9 is not served)")
            return
        try:
            if not self.raw_requestline.endswith(b"\n"):
                raise BodyEndedEarly("the request ended inside its request line")
            if not self._parse_head():
                return
            body = self._body(body_length(self.headers))
            if not self.server.request_received(self.connection):
                raise TimeoutError("the request took longer than its deadline")
            self._serve(body)
        except FramingError as error:
            self._refuse(error)
        except BodyEndedEarly as error:
            if not self.server.request_received(self.connection):
                self._refuse(_too_slow())
            else:
                self._refuse(FramingError(400, f"{error}; nothing was stored: send the whole request"))
        except TimeoutError:
            self._refuse(_too_slow())

    def _parse_head(self) -> bool:
        """The stdlib's parse_request, on header lines known to end with the blank line that closes them.

        Read straight off the socket, headers cut short by the client's close would parse as complete."""
        lines: list[bytes] = []
        # One line more than the stdlib accepts, so it still sees, and refuses, too many or too long ones.
        for _ in range(MAX_HEADER_LINES + 1):
            line = self.rfile.readline(MAX_HEADER_LINE_BYTES + 1)
            lines.append(line)
            if len(line) > MAX_HEADER_LINE_BYTES or line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                raise BodyEndedEarly("the request ended inside its headers (no blank line closed them)")
        socket_file, self.rfile = self.rfile, io.BytesIO(b"".join(lines))
        try:
            return self.parse_request()
        finally:
            self.rfile = socket_file

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (bad request line or headers, too many or too long headers) as JSON.

        The stdlib would %-format the message into its error template, which cannot escape JSON."""
        self.log_error("code %d, message %s", code, message)
        text = message or explain or self.responses.get(code, ("error",))[0]
        with contextlib.suppress(OSError):
            self._write(_json_response(code, {"message": text}), close=True)

    def handle_expect_100(self) -> bool:
        """Refuse a malformed or oversized body before the client sends it (no ``100 Continue``)."""
        try:
            body_length(self.headers)
        except FramingError as error:
            self._refuse(error)
            return False
        return super().handle_expect_100()

    def _body(self, length: int | None) -> bytes:
        reader = _Reader(self.rfile)
        return reader.chunked() if length is None else reader.exactly(length)

    def _refuse(self, error: FramingError) -> None:
        """Answer, then close: the rest of the body cannot be told apart from a next request."""
        request_id = str(uuid.uuid4())
        if error.status == 413:
            response = gateway_error(413, "Request Too Large", "RequestTooLargeException", request_id)
        else:
            response = _json_response(error.status, {"message": str(error)})
        with contextlib.suppress(OSError):
            self._write(response, close=True)
            self._linger()

    def _linger(self) -> None:
        """Read and drop what the client still sends, for at most LINGER_SECONDS, then let it close."""
        self.connection.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            self.connection.settimeout(remaining)
            if not self.connection.recv(LINGER_READ_BYTES):
                return

    def _serve(self, body: bytes) -> None:
        path = urlsplit(self.path).path
        if path.startswith(MANAGEMENT_PREFIX + "/") and self.server.management is not None:
            self._write(self.server.management(self.command, self.path))
            return
        if path in self.server.actions and self.command == "POST":
            self._write(self._action(path, body))
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

    def _action(self, path: str, body: bytes) -> Response:
        # The server listens on 127.0.0.1 only; a browser page cannot send a JSON content type to
        # another origin without a preflight, which this server never answers.
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            return _json_response(403, {"message": f"POST {path} is for clients on this machine only"})
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _json_response(
                415, {"message": f"POST {path} takes a JSON body: send Content-Type: application/json"}
            )
        return self.server.actions[path](body)

    def _reserved(self, path: str) -> Response:
        route = self.server.reserved.get(path)
        if route is None or self.command != "GET":
            paths = ", ".join(
                [f"GET {p}" for p in sorted(self.server.reserved)]
                + [f"POST {p}" for p in sorted(self.server.actions)]
            )
            return _json_response(
                404, {"message": f"{self.command} {path} is not a local stack path; try {paths}"}
            )
        return _json_response(200, route())

    def _write(self, response: Response, *, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close or self.server.draining:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            super().log_message(format, *args)


def _too_slow() -> FramingError:
    return FramingError(
        408,
        f"the request did not arrive in time: the server waits at most {READ_TIMEOUT_SECONDS:g} s for "
        f"each piece and {REQUEST_DEADLINE_SECONDS:g} s for the whole request; send it without pauses",
    )


def _json_response(status: int, payload: Any) -> Response:
    return Response(
        status=status, headers=[("Content-Type", "application/json")], body=json.dumps(payload).encode()
    )
