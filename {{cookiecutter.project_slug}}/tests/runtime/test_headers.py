"""The request header parser: alone, in its worst case, and in the real server."""

import io
import threading
import time

import pytest

from {{ cookiecutter.package_name }}.runtime.headers import RequestHeaders, framing_problem

from .support import exchange, statuses

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


def test_drop_upgrade_keeps_the_other_connection_options():
    headers = RequestHeaders(io.BytesIO(b"Upgrade: h2c\r\nConnection: Upgrade, close\r\n\r\n"))
    headers.drop_upgrade()
    assert headers.get("upgrade") is None
    assert headers.get("connection") == "close"
    assert headers.headers == ["Connection: close\r\n"]


# Each bad head, and the reason the parser gives (pywsgi answers 400 and closes).
BAD_HEADS = {
    "folded-line": (b"X-Long: one\r\n  two\r\n", "malformed header line"),
    "space-before-colon": (b"Content-Length : 5\r\n", "malformed header line"),
    "no-colon": (b"just words\r\n", "malformed header line"),
    "empty-name": (b": value\r\n", "malformed header line"),
    "bare-cr": (b"X-A: one\rtwo\r\n", "control character"),
    "cr-cr-lf": (b"X-A: one\r\r\n", "control character"),
    "nul": (b"X-A: one\x00\r\n", "control character"),
    "delete-char": (b"X-A: one\x7f\r\n", "control character"),
    "two-lengths": (b"Content-Length: 5\r\nContent-Length: 5\r\n", "repeated Content-Length"),
    "signed-length": (b"Content-Length: +5\r\n", "bad or repeated Content-Length"),
    "underscored-length": (b"Content-Length: 5_0\r\n", "bad or repeated Content-Length"),
    "empty-length": (b"Content-Length: \r\n", "bad or repeated Content-Length"),
    "too-many-fields": (
        b"".join(b"X-%d: v\r\n" % n for n in range(101)),
        "more than 100 header fields",
    ),
    "line-too-long": (b"X-Big: " + b"a" * 70_000 + b"\r\n", "header line too long"),
}


@pytest.mark.parametrize(("head", "reason"), BAD_HEADS.values(), ids=BAD_HEADS.keys())
def test_bad_fields_are_refused_with_a_reason(head, reason):
    assert reason in RequestHeaders(io.BytesIO(head + b"\r\n")).status


# Whitespace runs, and runs of the characters each check looks for: a backtracking pattern
# takes time in the square of such a line's length.
WORST_LINES = [
    b"X: a" + b" \t" * 32_000 + b"b\r\n",
    b"X: a" + b" " * 65_000 + b"\r\n",
    b"X" * 65_000 + b": b\r\n",
    b"X: " + b"\x1f" * 65_000 + b"\r\n",
]


@pytest.mark.parametrize(
    "line", WORST_LINES, ids=["spaces-and-tabs", "trailing", "name", "control"]
)
def test_a_64_kib_line_takes_linear_time(line):
    """Nothing the parser runs backtracks: each worst case is read in milliseconds, where the
    regular expression this replaced took seconds (best of three, to ignore a busy machine)."""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        RequestHeaders(io.BytesIO(line + b"\r\n"))
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.02, timings


@pytest.mark.parametrize("name", ["folded-line", "two-lengths", "too-many-fields", "bare-cr"])
def test_bad_fields_get_400_and_the_connection_closes(server, name):
    request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n" + BAD_HEADS[name][0] + b"\r\n"
    response, closed = exchange(server.port, request + b"GET /healthz HTTP/1.1\r\n\r\n")
    assert statuses(response) == [400]  # and the pipelined request is not answered
    assert closed


def test_a_64_kib_line_of_whitespace_runs_is_answered_at_once(server):
    """One such line froze the whole process for seconds; now it costs what its bytes cost."""
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + WORST_LINES[0] + b"\r\n"
    )
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response, _ = exchange(server.port, request)
        timings.append(time.perf_counter() - started)
        assert statuses(response) == [200]
    assert min(timings) < 0.05, timings


@pytest.mark.parametrize(
    ("head", "version", "expected"),
    [
        (b"", "HTTP/1.1", None),
        (b"Transfer-Encoding: chunked\r\n", "HTTP/1.1", None),
        (b"Transfer-Encoding:  Chunked \r\n", "HTTP/1.1", None),
        (b"Transfer-Encoding: chunked\r\n", "HTTP/1.0", 400),
        (b"Transfer-Encoding: identity, chunked\r\n", "HTTP/1.1", 400),
        (b"Transfer-Encoding: gzip, chunked\r\n", "HTTP/1.1", 400),
        (b"Transfer-Encoding: chunked, chunked\r\n", "HTTP/1.1", 400),
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "HTTP/1.1", 400),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "HTTP/1.1", 400),
        (b"Transfer-Encoding: bogus\r\n", "HTTP/1.1", 501),
        (b"Transfer-Encoding: gzip, bogus\r\n", "HTTP/1.1", 501),
    ],
)
def test_framing_is_one_chunked_coding_or_none(head, version, expected):
    problem = framing_problem(RequestHeaders(io.BytesIO(head + b"\r\n")), version)
    assert (problem and problem[0]) == expected


def test_other_connections_do_not_notice_a_request_of_whitespace_runs(server):
    """A thread sends the largest such request (100 lines of 64 KiB) again and again while this
    one asks for /healthz: its answers keep coming at once, where a regular expression that
    backtracks held every connection for seconds."""
    plain = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    hostile = plain[:-2] + WORST_LINES[0] * 98 + b"\r\n"
    stop = threading.Event()

    def attack() -> None:
        while not stop.is_set():
            exchange(server.port, hostile)

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        waits = []
        for _ in range(20):
            started = time.perf_counter()
            response, _ = exchange(server.port, plain)
            waits.append(time.perf_counter() - started)
            assert statuses(response) == [200]
    finally:
        stop.set()
        attacker.join()
    assert sorted(waits)[len(waits) // 2] < 0.1, waits  # the median: a loaded machine has outliers
