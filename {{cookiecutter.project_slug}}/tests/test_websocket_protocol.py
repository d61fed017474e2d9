"""WebSocket bad input against the real server, frame by frame.

Each case sends what a broken or hostile client would, asserts the exact status or close code
that comes back, and then proves that a well-behaved client is still served.
"""

import base64
import logging
import os
import signal
import socket
import struct
import threading
import time
from dataclasses import replace

import bottle
import gevent
import gevent.socket
import pytest
import websocket  # websocket-client: a real client written by someone else
from gevent.pywsgi import WSGIServer
from geventwebsocket.exceptions import WebSocketError

from {{ cookiecutter.package_name }} import websocket_connection
from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.http_handler import make_handler
from {{ cookiecutter.package_name }}.websocket_connection import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    WebSocket,
    unmask,
)
from {{ cookiecutter.package_name }}.websocket_handler import configure as configure_websocket_handler


def build_frame(
    opcode: int,
    payload: bytes = b"",
    fin: bool = True,
    masked: bool = True,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """One client frame; `length` may lie about the payload's size."""
    length = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + unmask(payload, mask)  # XOR both ways


class RawClient:
    """A WebSocket client that sends whatever frames it is told to, valid or not."""

    def __init__(
        self,
        port: int,
        origin: str | None = None,
        timeout: float = 5.0,
        path: str = "/websocket",
        connect=socket.create_connection,
        early: bytes = b"",
    ) -> None:
        self.sock = connect(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        )
        if origin:
            head += f"Origin: {origin}\r\n"
        # `early`: bytes sent in the same write as the handshake, before the 101 arrives.
        self.sock.sendall((head + "\r\n").encode() + early)
        self.buffer = b""
        response = self._read_until(b"\r\n\r\n")
        self.status = int(response.split(b" ", 2)[1])

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            self.buffer += data
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            self.buffer += data
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send_frame(self, opcode: int, payload: bytes = b"", **options) -> None:
        self.sock.sendall(build_frame(opcode, payload, **options))

    def read_frame(self) -> tuple[int, bytes]:
        first, second = self._read_exactly(2)
        assert not second & 0x80, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exactly(8))
        return first & 0x0F, self._read_exactly(length)

    def read_close(self) -> tuple[int, str]:
        """Skip to the close frame; return its code and reason."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == CLOSE:
                return int.from_bytes(payload[:2], "big"), payload[2:].decode()

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the TCP connection."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError):
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def handshake(port: int, head: str) -> tuple[int, str]:
    """Send a raw request head; return the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        response = b""
        while data := sock.recv(65536):
            response += data
            if b"\r\n\r\n" in response and not response.startswith(b"HTTP/1.1 101"):
                head_part, _, body = response.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head_part.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    None,
                )
                if length is not None and len(body) >= length:
                    break
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest.partition(b"\r\n\r\n")[2].decode()


def assert_still_serving(server) -> None:
    ws = websocket.create_connection(f"{server.ws_url}/websocket", timeout=5)
    try:
        ws.send("still serving?")
        assert ws.recv() == "still serving?"
    finally:
        ws.close()


@pytest.fixture
def client(live_server):
    raw = RawClient(live_server.port)
    assert raw.status == 101
    yield raw
    raw.close()
    assert_still_serving(live_server)


# Unmasking


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 65536 + 3])
@pytest.mark.parametrize("path", ["pure Python", "C speedups"])
def test_unmask_matches_a_byte_by_byte_xor(monkeypatch, path, size):
    if path == "pure Python":
        monkeypatch.setattr(websocket_connection, "apply_mask", None)
    else:  # the optional extra: pip install -e '.[speedups]'
        speedups = pytest.importorskip("websockets.speedups")
        monkeypatch.setattr(websocket_connection, "apply_mask", speedups.apply_mask)
    payload, mask = os.urandom(size), os.urandom(4)
    expected = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    assert unmask(payload, mask) == expected


# The closing handshake


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_client_close_is_answered_with_its_own_code(client, code):
    client.send_frame(CLOSE, code.to_bytes(2, "big") + b"bye")
    assert client.read_close() == (code, "")
    assert client.closed_by_server()


def test_close_without_a_code_is_answered_with_1000(client):
    client.send_frame(CLOSE)
    assert client.read_close()[0] == 1000


def test_real_client_close_gets_1000_back(live_server):
    ws = websocket.create_connection(f"{live_server.ws_url}/websocket", timeout=5)
    ws.send_close(1000, b"done")
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 1000
    ws.shutdown()


def test_server_close_sends_its_code_and_reason():
    server_end, client_end = socket.socketpair()
    reader = server_end.makefile("rb")
    ws = WebSocket({}, reader.read, server_end.sendall, lambda: None, max_message_size=1024)
    ws.close(4000, "maintenance ✓")
    assert ws.closed
    frame = client_end.recv(1024)
    assert frame[0] == 0x80 | CLOSE
    assert frame[2:4] == (4000).to_bytes(2, "big")
    assert frame[4:].decode() == "maintenance ✓"
    server_end.close()
    client_end.close()


def test_abort_drops_a_peer_that_stopped_reading():
    """A send stuck on a full socket holds the send lock; abort() must not wait behind it."""
    server_end, client_end = gevent.socket.socketpair()  # the client never reads
    ws = WebSocket(
        {},
        server_end.recv,
        server_end.sendall,
        lambda: server_end.shutdown(socket.SHUT_RDWR),
        max_message_size=1024,
    )

    def send_too_much() -> str:
        try:
            ws.send(b"x" * (16 << 20))  # far more than the socket buffers hold
        except WebSocketError:
            return "failed"
        return "sent"

    sender = gevent.spawn(send_too_much)
    gevent.sleep(0.2)
    assert not sender.ready()  # stuck
    with gevent.Timeout(5):
        ws.abort(1011, "no answer to ping")
        assert sender.get() == "failed"  # the dropped connection ends the stuck send too
    assert ws.closed
    server_end.close()
    client_end.close()


def test_failing_route_closes_with_1011_and_is_logged(settings, caplog):
    app = create_app(settings)

    @app.get("/websocket/boom", skip=True)  # installed as the real WebSocket routes are
    def boom() -> None:
        bottle.request.environ["wsgi.websocket"].receive()
        raise RuntimeError("secret detail")

    handler = make_handler(settings, configure_websocket_handler(settings))
    # gevent's own server and sockets work here without monkey-patching this process.
    server = WSGIServer(
        ("127.0.0.1", 0),
        app,
        handler_class=handler,
        log=None,
        error_log=logging.getLogger("test.errors"),
    )
    server.start()
    connect = gevent.socket.create_connection
    try:
        with caplog.at_level(logging.ERROR), gevent.Timeout(10):
            raw = RawClient(server.server_port, path="/websocket/boom", connect=connect)
            raw.send_frame(TEXT, b"boom")
            assert raw.read_close() == (1011, "internal error")  # and no detail
            raw.close()
            echo = RawClient(server.server_port, connect=connect)
            echo.send_frame(TEXT, b"still serving?")
            assert echo.read_frame() == (TEXT, b"still serving?")
            echo.close()
    finally:
        server.stop()
    assert "WebSocket route failed for /websocket/boom" in caplog.text
    assert "secret detail" in caplog.text  # the traceback, in the log only


# Frames that break the protocol


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([(TEXT, b"\xff\xfe", {})], 1007, id="invalid-utf8"),
        pytest.param(
            [
                (TEXT, b"caf", {"fin": False}),
                (CONTINUATION, b"\xc3", {"fin": False}),
                (CONTINUATION, b"(", {}),
            ],
            1007,
            id="invalid-utf8-across-fragments",
        ),
        pytest.param([(CLOSE, b"\x03\xe8\xff", {})], 1007, id="close-reason-not-utf8"),
        pytest.param([(TEXT, b"hi", {"masked": False})], 1002, id="unmasked"),
        pytest.param([(TEXT, b"hi", {"rsv": 4})], 1002, id="reserved-bit"),
        pytest.param([(0x3, b"", {})], 1002, id="unknown-opcode"),
        pytest.param([(0xB, b"", {})], 1002, id="unknown-control-opcode"),
        pytest.param([(PING, b"", {"fin": False})], 1002, id="fragmented-control"),
        pytest.param([(PING, b"x" * 126, {})], 1002, id="control-too-long"),
        pytest.param([(CLOSE, b"\x03", {})], 1002, id="close-one-byte"),
        pytest.param([(CLOSE, (999).to_bytes(2, "big"), {})], 1002, id="close-code-999"),
        pytest.param([(CLOSE, (1005).to_bytes(2, "big"), {})], 1002, id="close-code-1005"),
        pytest.param([(CLOSE, (1006).to_bytes(2, "big"), {})], 1002, id="close-code-1006"),
        pytest.param([(CLOSE, (2000).to_bytes(2, "big"), {})], 1002, id="close-code-2000"),
        pytest.param([(CONTINUATION, b"x", {})], 1002, id="continuation-first"),
        pytest.param(
            [(TEXT, b"a", {"fin": False}), (TEXT, b"b", {})], 1002, id="new-message-mid-fragment"
        ),
    ],
)
def test_protocol_errors_close_with_the_right_code(client, frames, code):
    for opcode, payload, options in frames:
        client.send_frame(opcode, payload, **options)
    assert client.read_close()[0] == code
    assert client.closed_by_server()


def test_oversized_message_is_refused_before_its_payload_arrives(client):
    # Announce 2 MiB (over the 1 MiB default) and send none of it: the answer must not wait.
    client.send_frame(BINARY, length=2 * 1024 * 1024)
    assert client.read_close()[0] == 1009


def test_oversized_fragmented_message_is_refused(client):
    chunk = b"x" * (512 * 1024)
    client.send_frame(BINARY, chunk, fin=False)
    client.send_frame(CONTINUATION, chunk, fin=False)
    client.send_frame(CONTINUATION, b"x")
    assert client.read_close()[0] == 1009


def test_largest_allowed_message_is_echoed(client, settings):
    payload = os.urandom(settings.max_message_size)
    client.send_frame(BINARY, payload)
    assert client.read_frame() == (BINARY, payload)


def test_fragmented_text_with_a_ping_between_is_echoed_whole(client):
    client.send_frame(TEXT, "héllo ".encode(), fin=False)
    client.send_frame(PING, b"are you there")
    assert client.read_frame() == (PONG, b"are you there")
    client.send_frame(CONTINUATION, "wörld".encode())
    assert client.read_frame() == (TEXT, "héllo wörld".encode())


# The handshake


def upgrade_head(port: int, **changes: str | None) -> str:
    headers = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    method = changes.pop("method", None) or "GET"
    version = changes.pop("http_version", None) or "HTTP/1.1"
    headers.update(changes)
    lines = [f"{method} /websocket {version}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if value is not None]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        pytest.param({"Sec-WebSocket-Key": None}, 400, "Sec-WebSocket-Key", id="missing-key"),
        pytest.param({"Sec-WebSocket-Key": "not base64!"}, 400, "Sec-WebSocket-Key", id="bad-key"),
        pytest.param({"Sec-WebSocket-Key": "c2hvcnQ="}, 400, "16 bytes", id="short-key"),
        pytest.param({"Sec-WebSocket-Version": "8"}, 426, "version 13", id="old-version"),
        pytest.param({"Sec-WebSocket-Version": None}, 426, "version 13", id="no-version"),
        pytest.param({"method": "POST"}, 405, "GET", id="post"),
        pytest.param({"http_version": "HTTP/1.0"}, 400, "HTTP/1.1", id="http-1.0"),
        pytest.param({"Connection": "keep-alive"}, 400, "Connection: Upgrade", id="no-upgrade"),
        pytest.param({"Origin": "https://evil.example"}, 403, "cross-origin", id="cross-origin"),
        pytest.param({"Content-Length": "5"}, 400, "no body", id="with-a-body"),
        pytest.param({"Transfer-Encoding": "chunked"}, 400, "no body", id="chunked-body"),
    ],
)
def test_bad_handshakes_get_a_4xx_with_a_reason(live_server, changes, status, words):
    got, body = handshake(live_server.port, upgrade_head(live_server.port, **changes))
    assert got == status
    assert words in body
    assert "Traceback" not in live_server.log
    assert_still_serving(live_server)


def test_same_origin_and_originless_handshakes_are_accepted(live_server):
    for origin in [f"http://127.0.0.1:{live_server.port}", None]:
        raw = RawClient(live_server.port, origin=origin)
        assert raw.status == 101
        raw.close()


def test_allowed_origins_setting_replaces_the_same_host_rule(start_server, settings):
    server = start_server(replace(settings, allowed_origins=("https://app.example",)))
    assert RawClient(server.port, origin="https://app.example").status == 101
    status, _ = handshake(
        server.port, upgrade_head(server.port, Origin=f"http://127.0.0.1:{server.port}")
    )
    assert status == 403


def test_frame_sent_with_the_handshake_is_not_lost(live_server):
    """A client that does not wait for the 101: its first frame was read with the request."""
    raw = RawClient(live_server.port, early=build_frame(TEXT, b"too eager"))
    assert raw.status == 101
    assert raw.read_frame() == (TEXT, b"too eager")
    raw.send_frame(TEXT, b"and after")
    assert raw.read_frame() == (TEXT, b"and after")
    raw.close()


# Keep-alive


def test_silent_client_is_pinged_then_dropped(start_server, settings):
    server = start_server(replace(settings, ping_interval=0.3, ping_timeout=0.4))
    raw = RawClient(server.port)
    started = time.monotonic()
    assert raw.read_frame()[0] == PING
    # It never answers: the server gives up after the interval and the timeout.
    assert raw.read_close()[0] == 1011
    assert raw.closed_by_server()
    assert time.monotonic() - started < 0.3 + 0.4 + 1.5
    assert_still_serving(server)


def test_client_that_answers_pings_stays_connected(start_server, settings):
    server = start_server(replace(settings, ping_interval=0.2, ping_timeout=0.3))
    raw = RawClient(server.port)
    deadline = time.monotonic() + 1.5  # several ping intervals and timeouts
    pings = 0
    while time.monotonic() < deadline:
        opcode, payload = raw.read_frame()
        assert opcode == PING
        pings += 1
        raw.send_frame(PONG, payload)
    raw.send_frame(TEXT, b"alive")
    assert raw.read_frame() == (TEXT, b"alive")
    assert pings >= 3


# Shutdown


def test_sigterm_sends_going_away_to_websocket_clients(start_server, settings):
    server = start_server(replace(settings, shutdown_timeout=5.0))
    ws = websocket.create_connection(f"{server.ws_url}/websocket", timeout=5)
    ws.send("before shutdown")
    assert ws.recv() == "before shutdown"

    server.process.send_signal(signal.SIGTERM)
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 1001
    assert data[2:] == b"server shutting down"
    ws.send_close(1001)
    assert server.stop() == 0
    assert "Traceback" not in server.log


def test_server_keeps_serving_while_a_client_misbehaves(live_server):
    """A client that stops mid-frame holds only its own connection."""
    raw = RawClient(live_server.port)
    raw.sock.sendall(b"\x81\x85")  # a text frame header, then nothing more
    done = threading.Event()

    def others():
        for _ in range(5):
            assert_still_serving(live_server)
        done.set()

    thread = threading.Thread(target=others)
    thread.start()
    thread.join(10)
    raw.close()
    assert done.is_set()
