"""WebSockets against the real server, frame by frame: handshakes, protocol errors, closes,
keep-alive and shutdown.

Each bad case sends what a broken or hostile client would, asserts the exact status or close
code that comes back, and the fixture then proves that a well-behaved client is still served.
"""

import os
import signal
import socket
import threading
import time

import gevent
import gevent.socket
import gevent.ssl
import pytest
import websocket  # websocket-client: a real client written by someone else
from geventwebsocket.exceptions import WebSocketError

from {{ cookiecutter.package_name }}.runtime import websocket as frames
from {{ cookiecutter.package_name }}.runtime.websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    WebSocket,
    text_frame,
    unmask,
)

from .support import (
    FrameReader,
    RawClient,
    assert_still_serving,
    build_frame,
    exchange,
    read_all,
    statuses,
    upgrade_head,
)


@pytest.fixture
def client(server):
    raw = RawClient(server.port)
    assert raw.status == 101
    yield raw
    raw.close()
    assert_still_serving(server)


# Unmasking


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 65536 + 3])
@pytest.mark.parametrize("path", ["pure Python", "C (websockets)"])
def test_unmask_matches_a_byte_by_byte_xor(monkeypatch, path, size):
    if path == "pure Python":
        monkeypatch.setattr(frames, "apply_mask", None)
    else:
        speedups = pytest.importorskip("websockets.speedups")
        monkeypatch.setattr(frames, "apply_mask", speedups.apply_mask)
    payload, mask = os.urandom(size), os.urandom(4)
    expected = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    assert unmask(payload, mask) == expected


def test_the_c_unmask_is_used_when_installed():
    pytest.importorskip("websockets.speedups")
    assert frames.apply_mask is not None


# Echo, through a real client


def test_echoes_text_and_binary_in_order(server):
    ws = websocket.create_connection(f"{server.ws_url}/echo", timeout=5)
    try:
        sent = [f"message {n} ✓" for n in range(100)] + ["x" * 100_000]
        for message in sent:
            ws.send(message)
        assert [ws.recv() for _ in sent] == sent
        ws.send_binary(b"\x00\x01\xfe\xff")
        assert ws.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"\x00\x01\xfe\xff")
    finally:
        ws.close()


def test_route_gets_its_url_arguments(server):
    ws = websocket.create_connection(f"{server.ws_url}/echo/h%C3%A9llo", timeout=5)
    assert ws.recv() == "héllo"
    ws.close()


# The closing handshake


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_client_close_is_answered_with_its_own_code(client, code):
    client.send_frame(CLOSE, code.to_bytes(2, "big") + b"bye")
    assert client.read_close() == (code, "")
    assert client.closed_by_server()


def test_close_without_a_code_is_answered_with_1000(client):
    client.send_frame(CLOSE)
    assert client.read_close()[0] == 1000


def test_nothing_is_received_after_the_route_closes(server):
    """After the server starts closing, later frames from the client are not delivered."""
    raw = RawClient(server.port, path="/close-after-one")
    raw.send_frame(TEXT, b"first")
    raw.send_frame(TEXT, b"sent after the close began")
    assert raw.read_close() == (4000, "one is enough")
    raw.send_frame(TEXT, b"and after the close frame")
    raw.send_frame(CLOSE, (4000).to_bytes(2, "big"))
    rest, closed = read_all(raw.sock, 5.0)
    assert closed
    assert raw.buffer + rest == b""  # no echo of either message
    raw.close()


def test_server_close_sends_its_code_and_reason():
    server_end, client_end = socket.socketpair()
    ws = WebSocket(server_end, {}, max_message_size=1024)
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
    ws = WebSocket(server_end, {}, max_message_size=1024)

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


def read_texts(reader: FrameReader, count: int) -> list[bytes]:
    """The payloads of the next `count` frames, each of which must be a text frame."""
    frames = [reader.read_frame() for _ in range(count)]
    assert {opcode for opcode, _ in frames} == {TEXT}
    return [payload for _, payload in frames]


def test_fan_out_writes_never_wait_and_keep_their_order():
    """send_frame_nowait() hands the kernel each frame at once; what it cannot take yet queues
    behind a bounded backlog and follows in order, after which the socket takes frames again."""
    server_end, client_end = gevent.socket.socketpair()
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ws = WebSocket(server_end, {}, max_message_size=1024)
    frames = [text_frame(f"message {n:05}") for n in range(2000)]
    taken = []
    with gevent.Timeout(2):  # none of these may wait for the reader
        for frame in frames:
            if not ws.send_frame_nowait(frame, max_backlog=50):
                break
            taken.append(frame)
    assert 50 < len(taken) < len(frames)  # the kernel took some, 50 queued, then: full
    sender = gevent.spawn(ws.send, "after the backlog")  # waits: it goes after the queue
    expected = [f"message {n:05}".encode() for n in range(len(taken))] + [b"after the backlog"]
    reader = FrameReader(client_end)
    with gevent.Timeout(5):
        assert read_texts(reader, len(expected)) == expected
        sender.get()
    assert ws.send_frame_nowait(text_frame("and again"), max_backlog=50)
    with gevent.Timeout(5):
        assert read_texts(reader, 1) == [b"and again"]
    server_end.close()
    client_end.close()


def tls_pair(cert_and_key) -> tuple[socket.socket, socket.socket]:
    """A connected pair of sockets speaking TLS: (server end, client end)."""
    server_end, client_end = gevent.socket.socketpair()
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server_context = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*cert_and_key)
    client_context = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
    client_context.load_verify_locations(cert_and_key[0])
    client_context.check_hostname = False
    with gevent.Timeout(10):
        server = gevent.spawn(server_context.wrap_socket, server_end, server_side=True)
        client = client_context.wrap_socket(client_end)
        return server.get(), client


def test_fan_out_over_tls_goes_through_tls_in_order(tls_files):
    """Under gunicorn with --certfile, a broadcast must not write to the socket's raw file
    descriptor: the frames queue and go through TLS, in order, and the writer never waits."""
    server_end, client_end = tls_pair(tls_files)
    ws = WebSocket(server_end, {}, max_message_size=1024)
    frames = [text_frame(f"secret {n:05}") for n in range(300)]
    with gevent.Timeout(2):
        assert all(ws.send_frame_nowait(frame, max_backlog=500) for frame in frames)
    sender = gevent.spawn(ws.send, "after the backlog")
    expected = [f"secret {n:05}".encode() for n in range(300)] + [b"after the backlog"]
    with gevent.Timeout(5):
        assert read_texts(FrameReader(client_end), len(expected)) == expected
        sender.get()
    server_end.close()
    client_end.close()


@pytest.mark.parametrize("transport", ["plain", "TLS"])
def test_a_large_frame_arrives_whole_when_the_kernel_takes_it_in_parts(transport, request):
    """A large payload goes out behind its header without being copied to join them (sendmsg,
    or two writes over TLS); the kernel takes it a piece at a time and nothing is lost."""
    if transport == "TLS":
        server_end, client_end = tls_pair(request.getfixturevalue("tls_files"))
    else:
        server_end, client_end = gevent.socket.socketpair()
        server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ws = WebSocket(server_end, {}, max_message_size=1024)
    payload = os.urandom(200_003)
    sender = gevent.spawn(ws.send, payload)
    with gevent.Timeout(10):
        assert FrameReader(client_end).read_frame() == (BINARY, payload)
        sender.get()
    server_end.close()
    client_end.close()


def test_fan_out_to_a_vanished_client_is_dropped_quietly():
    server_end, client_end = gevent.socket.socketpair()
    ws = WebSocket(server_end, {}, max_message_size=1024)
    client_end.close()
    assert ws.send_frame_nowait(text_frame("anyone?"), max_backlog=1)
    assert ws.send_frame_nowait(text_frame("still no one"), max_backlog=1)  # not "too slow"
    assert ws.closed
    server_end.close()


def test_failing_route_closes_with_1011_and_is_logged(start_server):
    live = start_server()  # of its own: the shared server's log stays free of tracebacks
    raw = RawClient(live.port, path="/boom")
    raw.send_frame(TEXT, b"boom")
    assert raw.read_close() == (1011, "internal error")  # and no detail
    raw.close()
    assert "WebSocket route failed for /boom" in live.log
    assert "secret detail" in live.log  # the traceback, in the log only
    assert_still_serving(live)


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
        pytest.param([(TEXT, b"caf\xc3", {})], 1007, id="utf8-cut-at-the-end"),
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


@pytest.mark.parametrize("cut", [1, 2, 300], ids=["first-byte", "second-byte", "later"])
def test_invalid_utf8_fails_as_it_arrives_not_at_the_frame_end(client, cut):
    """Autobahn 6.4.3/6.4.4: a large text frame whose first part holds invalid UTF-8 is closed
    with 1007 before the rest of the frame is even sent."""
    payload = "κόσμε".encode()[:cut] + b"\xf4\x90\x80\x80" + b"a" * 1000  # U+110000: invalid
    frame = build_frame(TEXT, payload)
    header = len(frame) - len(payload)
    client.sock.sendall(frame[: header + cut + 4])  # up to the bad sequence, and no further
    assert client.read_close()[0] == 1007


def test_valid_text_split_across_reads_is_echoed_whole(client):
    text = "ünïcödé ✓ " * 7000  # 3-byte characters cut at arbitrary read boundaries
    frame = build_frame(TEXT, text.encode())
    for start in range(0, len(frame), 7919):
        client.sock.sendall(frame[start : start + 7919])
        time.sleep(0.001)
    assert client.read_frame() == (TEXT, text.encode())


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


def test_largest_allowed_message_is_echoed(client):
    payload = os.urandom(1_048_576)
    client.send_frame(BINARY, payload)
    assert client.read_frame() == (BINARY, payload)


def test_frames_behind_a_large_one_in_the_same_write_are_all_echoed(client):
    """A large payload is read in pieces; the bytes after it (the next frames' starts, in the
    same read as its end) must be kept for those frames, whatever their size."""
    sent = [
        (BINARY, os.urandom(70_000)),
        (TEXT, b"right behind"),
        (PING, b"and a ping"),
        (BINARY, os.urandom(frames.COPY_LIMIT)),  # the largest frame sent in one piece
        (BINARY, os.urandom(frames.COPY_LIMIT + 1)),  # the smallest sent header, then payload
        (TEXT, "é".encode() * 100_000),
        (BINARY, b"last"),
    ]
    client.sock.sendall(b"".join(build_frame(opcode, payload) for opcode, payload in sent))
    echoed = [(PONG if opcode == PING else opcode, payload) for opcode, payload in sent]
    assert [client.read_frame() for _ in sent] == echoed


def test_fragmented_text_with_a_ping_between_is_echoed_whole(client):
    client.send_frame(TEXT, "héllo ".encode(), fin=False)
    client.send_frame(PING, b"are you there")
    assert client.read_frame() == (PONG, b"are you there")
    client.send_frame(CONTINUATION, "wörld".encode())
    assert client.read_frame() == (TEXT, "héllo wörld".encode())


def test_frame_sent_with_the_handshake_is_not_lost(server):
    """A client that does not wait for the 101: its first frame was read with the request."""
    raw = RawClient(server.port, early=build_frame(TEXT, b"too eager"))
    assert raw.status == 101
    assert raw.read_frame() == (TEXT, b"too eager")
    raw.send_frame(TEXT, b"and after")
    assert raw.read_frame() == (TEXT, b"and after")
    raw.close()


# The handshake


def answer(response: bytes) -> tuple[int, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    return statuses(head)[0], body.decode()


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
def test_bad_handshakes_get_a_4xx_with_a_reason_and_close(server, changes, status, words):
    response, closed = exchange(server.port, upgrade_head(server.port, **changes))
    assert answer(response)[0] == status
    assert words in answer(response)[1]
    assert closed  # what follows a refused handshake is not HTTP the server can trust
    assert "Traceback" not in server.log
    assert_still_serving(server)


def test_a_handshake_where_no_websocket_route_is_is_not_upgraded(server):
    for path, status in [("/healthz", 200), ("/no-such-page", 404), ("/echo/a/b", 404)]:
        response, _ = exchange(server.port, upgrade_head(server.port, path), wait=0.5)
        assert statuses(response) == [status], (path, response)


def test_a_plain_request_to_a_websocket_route_gets_400_with_a_reason(server):
    response, _ = exchange(
        server.port, b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    status, body = answer(response)
    assert status == 400
    assert "expected a WebSocket handshake (Upgrade: websocket) on /echo" in body


def test_same_origin_and_originless_handshakes_are_accepted(server):
    for origin in [f"http://127.0.0.1:{server.port}", None]:
        raw = RawClient(server.port, origin=origin)
        assert raw.status == 101
        raw.close()


def test_allowed_origins_setting_replaces_the_same_host_rule(start_server):
    live = start_server(allowed_origins="https://app.example")
    assert RawClient(live.port, origin="https://app.example").status == 101
    own = f"http://127.0.0.1:{live.port}"
    response, _ = exchange(live.port, upgrade_head(live.port, Origin=own))
    assert statuses(response) == [403]


# Keep-alive


def test_silent_client_is_pinged_then_dropped(start_server):
    live = start_server(ping_interval=0.3, ping_timeout=0.4)
    raw = RawClient(live.port)
    started = time.monotonic()
    assert raw.read_frame()[0] == PING
    # It never answers: the server gives up after the interval and the timeout.
    assert raw.read_close()[0] == 1011
    assert raw.closed_by_server()
    assert time.monotonic() - started < 0.3 + 0.4 + 1.5
    assert_still_serving(live)


def test_client_that_answers_pings_stays_connected(start_server):
    live = start_server(ping_interval=0.2, ping_timeout=0.3)
    raw = RawClient(live.port)
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


def test_a_quiet_socket_outlives_the_write_timeout(start_server):
    """The socket's timeout bounds writes; an idle WebSocket reading nothing is not dropped."""
    live = start_server(write_timeout=0.3, ping_interval=0)
    raw = RawClient(live.port)
    time.sleep(1.0)
    raw.send_frame(TEXT, b"still here")
    assert raw.read_frame() == (TEXT, b"still here")
    raw.close()


# Shutdown


def test_sigterm_sends_going_away_to_websocket_clients(start_server):
    live = start_server(shutdown_timeout=5.0)
    ws = websocket.create_connection(f"{live.ws_url}/echo", timeout=5)
    ws.send("before shutdown")
    assert ws.recv() == "before shutdown"

    live.process.send_signal(signal.SIGTERM)
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 1001
    assert data[2:] == b"server shutting down"
    ws.send_close(1001)
    assert live.stop() == 0
    assert "Traceback" not in live.log


def test_server_keeps_serving_while_a_client_misbehaves(server):
    """A client that stops mid-frame holds only its own connection."""
    raw = RawClient(server.port)
    raw.sock.sendall(b"\x81\x85")  # a text frame header, then nothing more
    done = threading.Event()

    def others():
        for _ in range(5):
            assert_still_serving(server)
        done.set()

    thread = threading.Thread(target=others)
    thread.start()
    thread.join(10)
    raw.close()
    assert done.is_set()
