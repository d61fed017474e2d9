"""Where a request ends, against the real server: each way of making a proxy and this server
disagree about it (request smuggling) is refused or framed one way only, on a raw socket."""

import hashlib
import json
import socket

import pytest

from .support import assert_still_serving, exchange, statuses

HOST = b"Host: test\r\n"


def post(
    body: bytes, *headers: bytes, path: bytes = b"/body", version: bytes = b"HTTP/1.1"
) -> bytes:
    return b"POST " + path + b" " + version + b"\r\n" + HOST + b"".join(headers) + b"\r\n" + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def body_of(response: bytes) -> dict:
    return json.loads(response.partition(b"\r\n\r\n")[2].partition(b"HTTP/1.1")[0])


SMUGGLED = b"GET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n"
FOLLOW_UP = b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"


@pytest.mark.parametrize(
    "upgrade",
    [
        b"Upgrade: foo\r\nConnection: upgrade\r\n",
        b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n",
        b"Connection: upgrade\r\n",
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n",  # but /body is no WebSocket route
    ],
    ids=["foo", "h2c", "connection-only", "websocket-elsewhere"],
)
def test_an_upgrade_that_is_not_taken_reads_its_body_once(server, upgrade):
    """The body (a whole request, if read twice) goes to the app once; the next request on the
    connection is answered as sent, and the one inside the body is never served."""
    request = post(SMUGGLED, upgrade, b"Content-Length: %d\r\n" % len(SMUGGLED))
    response, closed = exchange(server.port, request + FOLLOW_UP)
    assert statuses(response) == [200, 200], response
    assert body_of(response) == {
        "length": len(SMUGGLED),
        "sha256": hashlib.sha256(SMUGGLED).hexdigest(),
    }
    assert b"SMUGGLED" not in response
    assert closed


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([b"Transfer-Encoding: identity, chunked\r\n", b"Content-Length: 41\r\n"], 400),
        ([b"Transfer-Encoding: gzip, chunked\r\n"], 400),
        ([b"Transfer-Encoding: chunked, identity\r\n"], 400),
        ([b"Transfer-Encoding: bogus\r\n"], 501),
        ([b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: chunked\r\n"], 400),
        ([b"Transfer-Encoding: chunked\r\n", b"Content-Length: 41\r\n"], 400),
        ([b"Content-Length: 41\r\n", b"Transfer-Encoding: chunked\r\n"], 400),
    ],
    ids=[
        "identity-chunked",
        "gzip-chunked",
        "chunked-identity",
        "unknown",
        "te-twice",
        "te-cl",
        "cl-te",
    ],
)
def test_ambiguous_framing_is_refused_and_the_connection_closed(server, headers, status):
    response, closed = exchange(server.port, post(chunked(SMUGGLED), *headers) + FOLLOW_UP)
    assert statuses(response) == [status], response  # nothing after it is read as a request
    assert closed
    assert b"SMUGGLED" not in response


def test_transfer_encoding_on_http_1_0_is_refused(server):
    response, closed = exchange(
        server.port, post(chunked(b"x"), b"Transfer-Encoding: chunked\r\n", version=b"HTTP/1.0")
    )
    assert statuses(response) == [400]
    assert closed


def test_a_chunked_body_is_read_once_and_whole(server):
    parts = [b'{"text": ', b'"de-chunked once"}', b"\n" * 5000]
    response, _ = exchange(
        server.port, post(chunked(*parts), b"Transfer-Encoding: chunked\r\n") + FOLLOW_UP
    )
    whole = b"".join(parts)
    assert statuses(response) == [200, 200]
    assert body_of(response) == {"length": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n-1\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"1" * 40 + b"\r\n",
    ],
    ids=["not-hex", "negative", "no-crlf-after-data", "size-too-long"],
)
def test_an_invalid_chunk_is_a_400_that_closes_without_a_traceback(server, body):
    response, closed = exchange(
        server.port, post(body, b"Transfer-Encoding: chunked\r\n") + SMUGGLED
    )
    assert statuses(response) == [400]
    assert closed
    assert "Traceback" not in server.log


def test_the_body_cap_applies_to_chunked_bodies(start_server):
    live = start_server(max_body_size=1000)
    response, closed = exchange(
        live.port, post(chunked(*[b"x" * 100] * 20), b"Transfer-Encoding: chunked\r\n")
    )
    assert statuses(response) == [413]
    assert closed
    response, _ = exchange(
        live.port,
        post(chunked(b"x" * 1000), b"Transfer-Encoding: chunked\r\n", b"Connection: close\r\n"),
    )
    assert statuses(response) == [200]


def test_a_body_over_the_cap_is_refused_before_it_is_sent(start_server):
    live = start_server(max_body_size=1000)
    response, closed = exchange(live.port, post(b"", b"Content-Length: 100000000\r\n"))
    assert statuses(response) == [413]
    assert closed


def test_a_body_cut_short_is_a_400(start_server):
    live = start_server(body_timeout=5)
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(post(b"only this", b"Content-Length: 100\r\n"))
        sock.shutdown(socket.SHUT_WR)  # the client will send no more
        response = sock.recv(65536)
    assert statuses(response) == [400]


def test_http_1_0_closes_after_a_response_without_a_length(server):
    response, closed = exchange(
        server.port, b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    )
    assert response.endswith(b"START\nMIDDLE\nEND\n")
    assert b"Connection: close" in response
    assert closed


@pytest.mark.parametrize(
    "line",
    [
        b"GET / HTTP/1\r\n",
        b"GET / HTTP/2.0\r\n",
        b"GET / HTTP/1.1.1\r\n",
        b"GET /\r\n",
        b"GET  / HTTP/1.1\r\n",
        b"NONSENSE\r\n",
    ],
    ids=["no-minor", "http-2", "three-parts", "http-0.9", "double-space", "one-word"],
)
def test_a_malformed_request_line_is_a_400_without_a_traceback(server, line):
    response, closed = exchange(server.port, line + HOST + b"\r\n")
    assert statuses(response) == [400]
    assert closed
    assert "Traceback" not in server.log
    assert_still_serving(server)
