"""`python -m local up` under load, hostile framing, huge uploads and SIGTERM, over real sockets."""

from __future__ import annotations

import json
import signal
import socket
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local.client import id_token
from local.gateway import MAX_METHOD_ARN_BYTES
from tests.local.conftest import StackProcess, call_api, run_local, running_stack
from tests.local.test_server import read_response

TIERS = textwrap.dedent(
    """\
    tiers:
      wide:
        isolation: pooled
        throttle: {rate: 5000, burst: 5000}
        quota: {limit: 1000000, period: DAY}
    tenants:
      load: {tier: wide, name: Load}
      other: {tier: wide, name: Other}
    """
)
BURST = 200
IN_FLIGHT_AT_SIGTERM = 60
UPLOAD_BYTES = 200 * 1024 * 1024


def write_tiers(workdir: Path) -> Path:
    tiers_file = workdir / "tiers.yaml"
    tiers_file.write_text(TIERS)
    return tiers_file


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    workdir = tmp_path_factory.mktemp("hardening")
    with running_stack(write_tiers(workdir), workdir, "--quiet") as running:
        yield running
    # THEN no request, however malformed, left a traceback
    assert "Traceback" not in running.output()


@pytest.fixture(scope="module")
def token(stack: StackProcess) -> str:
    return id_token("load", stack.port)


def counter(port: int, token: str) -> int:
    answer = call_api(port, "POST", "/counter", token)
    assert answer.status == 200, answer.body
    return int(answer.json()["counter"])


def counter_request(token: str) -> bytes:
    return (
        f"POST /counter HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()


def raw(port: int, data: bytes, *, half_close: bool = False) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(data)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        return read_response(connection)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc")


def test_a_burst_of_200_parallel_counter_posts_is_all_answered_and_counted(stack, token):
    # GIVEN the counter's value, and 200 clients released at the same moment, one connection each
    before = counter(stack.port, token)
    start = threading.Barrier(BURST)

    def post(_: int) -> int:
        start.wait()
        return call_api(stack.port, "POST", "/counter", token).status

    # WHEN they all POST /counter
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        statuses = list(pool.map(post, range(BURST)))
    # THEN every one is answered 200 and the counter is exactly 200 higher
    assert statuses == [200] * BURST
    assert counter(stack.port, token) == before + BURST + 1


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (b"Content-Length: many\r\n", b""),
        (b"Content-Length: -6\r\n", b""),
        (b"Content-Length: 99999999999999999999999999\r\n", b""),
        (b"Content-Length: 6\r\nContent-Length: 7\r\n", b'"abcd"'),
        (b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b'6\r\n"abcd"\r\n0\r\n\r\n'),
        (b"Transfer-Encoding: chunked\r\n", b'x6\r\n"abcd"\r\n0\r\n\r\n'),
        (b"Transfer-Encoding: chunked\r\n", b'-6\r\n"abcd"\r\n0\r\n\r\n'),
        (b"Transfer-Encoding: chunked\r\n", b'FFFFFFFFFFFFFFFFFFFFFF\r\n"abcd"\r\n0\r\n\r\n'),
    ],
)
def test_bad_framing_is_400_with_a_json_message_and_stores_nothing(stack, token, headers, body):
    # GIVEN a PUT whose body cannot be delimited one single way
    request = (
        f"PUT /items/framing HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n".encode()
        + headers
        + b"\r\n"
        + body
    )
    # WHEN it is sent over a raw socket
    status, response_headers, answer = raw(stack.port, request)
    # THEN it is answered (not dropped) with 400 and a message, and no item was written
    assert status == 400
    assert json.loads(answer)["message"]
    assert response_headers["connection"] == "close"
    assert call_api(stack.port, "GET", "/items/framing", token).status == 404


def test_a_truncated_upload_that_half_closes_is_400_and_stores_nothing(stack, token):
    # GIVEN Content-Length 12, 6 bytes sent, then the client closes its sending side
    request = (
        f"PUT /items/truncated HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        'Content-Length: 12\r\n\r\n{"a": '
    ).encode()
    status, _, answer = raw(stack.port, request, half_close=True)
    # THEN the answer is 400 saying the body ended early, and the item does not exist
    assert status == 400
    assert "ended after 6 of the 12 bytes" in json.loads(answer)["message"]
    assert call_api(stack.port, "GET", "/items/truncated", token).status == 404


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_upload_is_413_without_buffering_it(stack, token, chunked):
    # GIVEN the server's memory before a 200 MB upload
    before = rss_bytes(stack.process.pid)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {UPLOAD_BYTES}"
    head = (
        f"PUT /items/huge HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n{framing}\r\n\r\n"
    ).encode()
    block = b"x" * (1024 * 1024)
    if chunked:
        block = b"%x\r\n" % len(block) + block + b"\r\n"
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as connection:
        connection.sendall(head)

        def stream() -> None:
            # The server stops reading once it has refused the body: the send then fails, as it should.
            try:
                for _ in range(UPLOAD_BYTES // (1024 * 1024)):
                    connection.sendall(block)
            except OSError:
                return

        sender = threading.Thread(target=stream)
        sender.start()
        # WHEN the body streams in
        status, _, answer = read_response(connection)
        after = rss_bytes(stack.process.pid)
        connection.shutdown(socket.SHUT_RDWR)
        sender.join(timeout=30)
    # THEN it is refused with API Gateway's 413, and the server grew by far less than the body
    assert (status, json.loads(answer)) == (413, {"message": "Request Too Large"})
    assert after - before < 64 * 1024 * 1024
    assert call_api(stack.port, "GET", "/items/huge", token).status == 404


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "MKCOL", "X-ANY-TOKEN"])
def test_unrouted_methods_get_missing_authentication_token(stack, token, method):
    answer = call_api(stack.port, method, "/tenant", token)
    assert (answer.status, answer.json()) == (403, {"message": "Missing Authentication Token"})


def test_an_over_long_url_gets_the_same_status_cached_or_not_and_a_valid_token_is_never_401(stack):
    port = stack.port
    # GIVEN a fresh token (not in the authorizer cache) and a path whose method ARN passes 1,600 bytes
    fresh = id_token("other", port)
    too_long = "/items/" + "x" * MAX_METHOD_ARN_BYTES
    # WHEN it is used first on the over-long path, then on a normal one, then on the long one again
    uncached = call_api(port, "GET", too_long, fresh)
    assert call_api(port, "GET", "/tenant", fresh).status == 200
    cached = call_api(port, "GET", too_long, fresh)
    # THEN both long-path answers are the same 414
    assert (uncached.status, uncached.json()) == (414, {"message": "Request-URI Too Long"})
    assert (cached.status, cached.json()) == (414, {"message": "Request-URI Too Long"})
    # AND a long path under the limit is the tenant API's 400 (item id too long), never a 401
    longish = "/items/" + "y" * 1400
    assert call_api(port, "GET", longish, id_token("other", port)).status == 400
    assert call_api(port, "GET", "/tenant?q=" + "z" * 12_000, fresh).status == 414


def test_dot_segment_item_ids_are_400(stack, token):
    for item_id in (".", ".."):
        request = (
            f"PUT /items/{item_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Length: 1\r\n\r\n1"
        ).encode()
        status, _, answer = raw(stack.port, request)
        assert status == 400
        assert "rewrite" in json.loads(answer)["message"]


def test_the_usage_table_ends_with_a_newline(stack):
    table = run_local("usage", "--port", str(stack.port))
    assert table.returncode == 0, table.stderr
    assert table.stdout.endswith("\n")
    assert not table.stdout.endswith("\n\n")


def test_sigterm_with_60_requests_in_flight_answers_every_one_then_exits_0(tmp_path):
    with running_stack(write_tiers(tmp_path), tmp_path, "--quiet") as stack:
        token = id_token("load", stack.port)
        before = counter(stack.port, token)
        # GIVEN 60 counter increments sent in full, on their own connections
        connections = [socket.create_connection(("127.0.0.1", stack.port), timeout=30) for _ in range(60)]
        for connection in connections:
            connection.sendall(counter_request(token))
        # WHEN the stack gets SIGTERM while they are in flight
        stack.process.send_signal(signal.SIGTERM)
        answers = []
        for connection in connections:
            with connection:
                answers.append(read_response(connection))
        exit_code = stack.process.wait(timeout=30)
    # THEN every one was answered 200, and the counters they report are exactly the 60 increments
    assert [status for status, _, _ in answers] == [200] * IN_FLIGHT_AT_SIGTERM
    counters = sorted(json.loads(body)["counter"] for _, _, body in answers)
    assert counters == list(range(before + 1, before + IN_FLIGHT_AT_SIGTERM + 1))
    # AND the stack exited 0 without a traceback
    assert exit_code == 0
    assert "Traceback" not in stack.output()
