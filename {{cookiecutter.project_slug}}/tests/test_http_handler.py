"""The connection handler's request header parser, alone and in the real server."""

import io
import json
import socket

import pytest
from conftest import http_get

from {{ cookiecutter.package_name }}.http_handler import RequestHeaders

HEAD = b"Host: example\r\nContent-Type:  text/plain \r\nX-Twice: first\r\nx-twice: second\r\n\r\n"


def test_fields_are_read_as_pywsgi_expects():
    stream = io.BytesIO(HEAD + b"the body")
    headers = RequestHeaders(stream)

    assert headers.status == ""
    assert headers.get("HOST") == headers.getheader("host") == "example"
    assert headers.typeheader == "text/plain"
    assert headers.get("X-Twice") == "first"  # as the email parser answers
    assert headers.get("Content-Length") is None
    # pywsgi turns these lines into the HTTP_* keys of environ.
    assert headers.headers == [
        "Host: example\r\n",
        "Content-Type: text/plain\r\n",
        "X-Twice: first\r\n",
        "x-twice: second\r\n",
    ]
    assert stream.read() == b"the body"  # left for the app

    del headers["x-twice"]
    assert headers.get("X-Twice") is None
    assert headers.items() == [("Host", "example"), ("Content-Type", "text/plain")]


BAD_HEADS = {
    "folded-line": b"X-Long: one\r\n  two\r\n",
    "space-before-colon": b"Content-Length : 5\r\n",
    "no-colon": b"just words\r\n",
    "bare-cr": b"X-A: one\rtwo\r\n",
    "nul": b"X-A: one\x00\r\n",
    "two-lengths": b"Content-Length: 5\r\nContent-Length: 6\r\n",
    "signed-length": b"Content-Length: +5\r\n",
    "too-many-fields": b"".join(b"X-%d: v\r\n" % n for n in range(101)),
    "line-too-long": b"X-Big: " + b"a" * 70_000 + b"\r\n",
}


@pytest.mark.parametrize("head", BAD_HEADS.values(), ids=BAD_HEADS.keys())
def test_bad_fields_are_refused(head):
    headers = RequestHeaders(io.BytesIO(head + b"\r\n"))
    assert headers.status


@pytest.mark.parametrize("name", ["folded-line", "two-lengths", "too-many-fields"])
def test_bad_fields_get_400_and_others_are_served(live_server, name):
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n" + BAD_HEADS[name] + b"\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    status, body = http_get(live_server.port, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
