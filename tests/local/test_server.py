"""The HTTP server in process, with the gateway's handler doubles: framing, timeouts and graceful shutdown."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local import server as server_module
from local.gateway import MAX_METHOD_ARN_BYTES, MAX_PAYLOAD_BYTES, MAX_URL_CHARS, Request
from local.server import GatewayServer
from tests.local.test_gateway import EchoApi, FakeAuthorizer, _gateway
from tests.local.test_limits import FakeClock

AUTH = b"Authorization: Bearer allow-alpha\r\n"


class SlowApi(EchoApi):
    """Holds every request until released, so a test can stop the server while requests are in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.entered.release()
        self.release.wait(10)
        return super().__call__(event, context)


def serve(api: EchoApi) -> GatewayServer:
    server = GatewayServer(("127.0.0.1", 0), None, access_log=False)
    server.start(_gateway(FakeAuthorizer(), api, FakeClock()), {})
    return server


@pytest.fixture
def api() -> EchoApi:
    return EchoApi()


@pytest.fixture
def server(api: EchoApi) -> Iterator[GatewayServer]:
    running = serve(api)
    yield running
    running.stop(grace=1)


def read_response(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response off a raw socket (Content-Length framed, as the server sends them)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed without a complete response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)
    }
    while len(body) < int(headers.get("content-length", "0")):
        chunk = connection.recv(65536)
        assert chunk
        body += chunk
    return int(status_line.split()[1]), headers, body


def exchange(
    server: GatewayServer, data: bytes, *, half_close: bool = False
) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(data)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        return read_response(connection)


def put(headers: bytes, body: bytes = b"") -> bytes:
    return b"PUT /items/x HTTP/1.1\r\nHost: t\r\n" + AUTH + headers + b"\r\n" + body


@pytest.mark.parametrize(
    ("headers", "body", "problem"),
    [
        (b"Content-Length: abc\r\n", b"", "Content-Length"),
        (b"Content-Length: -1\r\n", b"", "Content-Length"),
        (b"Content-Length: +5\r\n", b"12345", "Content-Length"),
        (b"Content-Length: 99999999999999999999999\r\n", b"", "Content-Length"),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", b"123456", "2 Content-Length headers"),
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n", "both"),
        (b"Transfer-Encoding: gzip\r\n", b"", "not supported"),
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n", "not supported"),
        (b"Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n", "chunk size"),
        (b"Transfer-Encoding: chunked\r\n", b"-5\r\nabc\r\n0\r\n\r\n", "chunk size"),
        (b"Transfer-Encoding: chunked\r\n", b"0x3\r\nabc\r\n0\r\n\r\n", "chunk size"),
        (b"Transfer-Encoding: chunked\r\n", b"FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n", "chunk size"),
        (b"Transfer-Encoding: chunked\r\n", b"3\r\nabcdef\r\n0\r\n\r\n", "followed by CRLF"),
        (b"Transfer-Encoding: chunked\r\n", b"3\nabc\r\n0\r\n\r\n", "CRLF"),
    ],
)
def test_bad_framing_is_400_with_a_message_and_reaches_nothing(
    server: GatewayServer, api: EchoApi, headers: bytes, body: bytes, problem: str
) -> None:
    # GIVEN a request whose body cannot be delimited one single way
    # WHEN it is sent
    status, response_headers, answer = exchange(server, put(headers, body))
    # THEN it is refused with what is wrong, the connection closes, and the gateway never saw it
    assert status == 400
    assert problem in json.loads(answer)["message"]
    assert response_headers["connection"] == "close"
    assert api.events == []


@pytest.mark.parametrize(
    ("headers", "sent"),
    [
        (b"Content-Length: 12\r\n", b'{"a": '),
        (b"Transfer-Encoding: chunked\r\n", b'c\r\n{"a": '),
        (b"Transfer-Encoding: chunked\r\n", b'6\r\n{"a": \r\n'),
    ],
)
def test_a_body_shorter_than_announced_is_400_and_nothing_is_stored(
    server: GatewayServer, api: EchoApi, headers: bytes, sent: bytes
) -> None:
    # GIVEN an upload that stops early and half-closes
    status, _, answer = exchange(server, put(headers, sent), half_close=True)
    # THEN it is 400 saying so, and the handler was never called
    assert status == 400
    assert "nothing was stored" in json.loads(answer)["message"] or "ended" in json.loads(answer)["message"]
    assert api.events == []


@pytest.mark.parametrize(
    "sent",
    [
        b"POST /counter HTTP/1.1\r\nHost: t\r\n" + AUTH,
        b"POST /counter HTTP/1.1\r\nHost: t\r\n" + AUTH + b"Content-Le",
        b"POST /counter HTTP/1.1",
    ],
    ids=["no blank line", "inside a header", "inside the request line"],
)
def test_a_request_cut_off_before_its_headers_end_is_400_and_never_served(
    server: GatewayServer, api: EchoApi, sent: bytes
) -> None:
    # GIVEN a client that half-closes before the blank line ending its headers
    status, _, answer = exchange(server, sent, half_close=True)
    # THEN the request is refused, not served as if its headers were complete
    assert status == 400
    assert "nothing was stored" in json.loads(answer)["message"]
    assert api.events == []


def test_a_declared_length_over_the_limit_is_413_before_any_body_or_100_continue(
    server: GatewayServer, api: EchoApi
) -> None:
    request = put(f"Content-Length: {MAX_PAYLOAD_BYTES + 1}\r\nExpect: 100-continue\r\n".encode())
    status, headers, answer = exchange(server, request)
    assert (status, json.loads(answer)) == (413, {"message": "Request Too Large"})
    assert headers["x-amzn-errortype"] == "RequestTooLargeException"
    assert api.events == []


def test_a_chunked_body_over_the_limit_is_413(server: GatewayServer, api: EchoApi) -> None:
    chunk = b"x" * (1024 * 1024)
    chunks = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 11
    status, _, answer = exchange(server, put(b"Transfer-Encoding: chunked\r\n", chunks + b"0\r\n\r\n"))
    assert (status, json.loads(answer)) == (413, {"message": "Request Too Large"})
    assert api.events == []


def test_well_formed_bodies_still_pass_with_extensions_and_trailers(
    server: GatewayServer, api: EchoApi
) -> None:
    body = b'3;name=value\r\n{"a\r\n5\r\n": 1}\r\n0\r\nX-Trailer: yes\r\n\r\n'
    status, _, _ = exchange(server, put(b"Transfer-Encoding: chunked\r\n", body))
    assert status == 201
    assert api.events[-1]["body"] == '{"a": 1}'
    status, _, _ = exchange(server, put(b"Content-Length: 8\r\n", b'{"b": 2}'))
    assert status == 201
    assert api.events[-1]["body"] == '{"b": 2}'


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "BREW", "CONNECT"])
def test_any_method_gets_api_gateways_missing_authentication_token(
    server: GatewayServer, method: str
) -> None:
    status, _, answer = exchange(server, f"{method} /tenant HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    assert (status, json.loads(answer)) == (403, {"message": "Missing Authentication Token"})


def test_a_stalled_request_is_answered_408_and_an_idle_connection_closed(
    api: EchoApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a server with a short read timeout
    monkeypatch.setattr(server_module._RequestHandler, "timeout", 0.3)
    monkeypatch.setattr(server_module, "READ_TIMEOUT_SECONDS", 0.3)
    running = serve(api)
    try:
        # WHEN a client stops halfway through its body
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as stalled:
            stalled.sendall(put(b"Content-Length: 10\r\n", b"12345"))
            status, _, answer = read_response(stalled)
            # THEN it gets 408 saying so and the connection is closed
            assert status == 408
            assert "did not arrive in time" in json.loads(answer)["message"]
            assert stalled.recv(1) == b""
        # AND a keep-alive connection that sends nothing more is closed after the timeout
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as idle:
            idle.sendall(b"GET /tenant HTTP/1.1\r\nHost: t\r\n" + AUTH + b"\r\n")
            assert read_response(idle)[0] == 201
            assert idle.recv(1) == b""
        assert [event["path"] for event in api.events] == ["/tenant"]
    finally:
        running.stop(grace=1)


@pytest.mark.parametrize(
    ("request_bytes", "answer"),
    [
        (b"GET /tenant HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100, b"HTTP/1.1 408 "),
        (put(b"Content-Length: 100\r\n", b"1" * 100), b"HTTP/1.1 408 "),
        (b"GET /tenant HTTP/1.1" + b" " * 100, b""),
    ],
    ids=["headers", "body", "request line"],
)
def test_a_request_trickled_in_past_the_deadline_is_cut_off(
    api: EchoApi, monkeypatch: pytest.MonkeyPatch, request_bytes: bytes, answer: bytes
) -> None:
    # GIVEN a server whose whole-request deadline is short, and a client sending a byte every 20 ms
    # (never long enough apart to trip the read timeout)
    monkeypatch.setattr(server_module, "REQUEST_DEADLINE_SECONDS", 0.5)
    running = serve(api)
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as slow:
            received = b""
            for byte in request_bytes:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.02)
                if select.select([slow], [], [], 0)[0]:
                    break
            # WHEN the deadline passes
            slow.settimeout(5)
            while chunk := slow.recv(65536):
                received += chunk
        # THEN the server stopped reading and closed it: a request past its request line gets a 408
        assert received[: len(answer)] == answer
        assert received == b"" or b"did not arrive in time" in received
        assert api.events == []
    finally:
        running.stop(grace=1)


def test_stop_answers_requests_in_flight_and_closes_idle_connections() -> None:
    # GIVEN two requests in flight (one held inside the handler, one waiting for it: a Lambda runs one
    # invocation at a time) and one idle keep-alive connection
    api = SlowApi()
    running = serve(api)
    idle = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    busy = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(2)]
    try:
        for connection in busy:
            connection.sendall(b"POST /counter HTTP/1.1\r\nHost: t\r\n" + AUTH + b"Content-Length: 0\r\n\r\n")
        assert api.entered.acquire(timeout=5)
        # WHEN the server stops while they are in flight (released shortly after)
        threading.Timer(0.3, api.release.set).start()
        cut = running.stop(grace=5)
        # THEN both are answered, told the connection closes, and nothing was cut
        for connection in busy:
            status, headers, _ = read_response(connection)
            assert (status, headers["connection"]) == (201, "close")
        assert cut == 0
        # AND the idle connection was closed, and the port no longer accepts
        assert idle.recv(1) == b""
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", running.port), timeout=1).close()
    finally:
        for connection in [idle, *busy]:
            connection.close()


def test_stop_cuts_what_is_still_running_after_the_grace_period() -> None:
    api = SlowApi()
    running = serve(api)
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as connection:
        connection.sendall(b"POST /counter HTTP/1.1\r\nHost: t\r\n" + AUTH + b"Content-Length: 0\r\n\r\n")
        assert api.entered.acquire(timeout=5)
        try:
            assert running.stop(grace=0.2) == 1
        finally:
            api.release.set()


@pytest.mark.parametrize("ttl", [0, 300])
def test_an_over_long_url_is_414_before_the_authorizer_cached_or_not(ttl: float) -> None:
    # GIVEN a gateway with the authorizer cache on or off, and a token already cached when it is on
    authorizer, api = FakeAuthorizer(), EchoApi()
    gateway = _gateway(authorizer, api, FakeClock(), ttl=ttl)
    headers = [("Host", "t"), ("Authorization", "Bearer allow-alpha")]
    assert gateway.handle(Request("GET", "/tenant", headers, b"", "127.0.0.1")).status == 201
    calls = len(authorizer.calls)
    # WHEN paths make the method ARN or the URL longer than API Gateway allows, with or without a token
    arn_prefix = len(gateway.method_arn("GET", "/items/"))
    long_id = "/items/" + "x" * (MAX_METHOD_ARN_BYTES - arn_prefix + 1)
    longest_id = "/items/" + "x" * (MAX_METHOD_ARN_BYTES - arn_prefix)
    for target, auth in [
        (long_id, headers),
        (long_id, headers[:1]),
        ("/items/" + "é" * 800, headers),
        ("/tenant?q=" + "x" * MAX_URL_CHARS, headers),
    ]:
        response = gateway.handle(Request("GET", target, auth, b"", "127.0.0.1"))
        # THEN the answer is 414, and the authorizer was not asked
        assert (response.status, response.json()) == (414, {"message": "Request-URI Too Long"})
    assert len(authorizer.calls) == calls
    # AND a path one byte shorter still reaches the API with the same token
    assert gateway.handle(Request("GET", longest_id, headers, b"", "127.0.0.1")).status == 201


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x00\x01garbage\\x00\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"GET /tenant\r\n", 400),
        (b"GET /tenant HTTP/1.x\r\n\r\n", 400),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET /tenant HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(150)) + b"\r\n", 431),
        (b"GET /tenant HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    ],
    ids=[
        "garbage",
        "method only",
        "HTTP/0.9",
        "bad version",
        "HTTP/2",
        "150 headers",
        "long header",
        "long line",
    ],
)
def test_unparsable_requests_get_a_status_line_and_a_json_message(
    server: GatewayServer, api: EchoApi, request_bytes: bytes, status: int
) -> None:
    # GIVEN a request the HTTP parser itself refuses
    answer_status, headers, body = exchange(server, request_bytes)
    # THEN the answer is a real HTTP response with valid JSON saying why, and the connection closes
    assert answer_status == status
    assert json.loads(body)["message"]
    assert headers["connection"] == "close"
    assert api.events == []
