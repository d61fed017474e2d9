"""Raw-socket clients for the runtime's tests: bytes exactly as a broken or hostile client sends."""

import base64
import json
import os
import re
import socket
import struct
import time

import websocket  # the websocket-client package: a client written by someone else

from {{ cookiecutter.package_name }}.runtime.websocket import CLOSE, unmask


def exchange(port: int, data: bytes, wait: float = 5.0) -> tuple[bytes, bool]:
    """Send `data` on a new connection and read until the server closes it or `wait` passes;
    return what came back and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return read_all(sock, wait)


def read_all(sock: socket.socket, wait: float) -> tuple[bytes, bool]:
    """What arrives on `sock` until it closes (True) or `wait` seconds pass (False)."""
    received = b""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, True
        if not data:
            return received, True
        received += data
    return received, False


def statuses(response: bytes) -> list[int]:
    """The status codes of the responses in `response`, in order."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", response)]


def stats(server) -> dict:
    """The sample server's /stats: its greenlets, open sockets and waiting requests."""
    response, _ = exchange(
        server.port, b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    return json.loads(response.partition(b"\r\n\r\n")[2])


def wait_until(condition, timeout: float = 5.0, message: str = "timed out") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def assert_still_serving(server) -> None:
    """A well-behaved client gets its answer and its WebSocket echo."""
    response, _ = exchange(
        server.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert statuses(response) == [200], response
    ws = websocket.create_connection(f"{server.ws_url}/echo", timeout=5)
    try:
        ws.send("still serving?")
        assert ws.recv() == "still serving?"
    finally:
        ws.close()


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


def upgrade_head(port: int, path: str = "/echo", **changes: str | None) -> bytes:
    """A WebSocket handshake; `changes` replace or (None) remove headers, or set the method or
    http_version."""
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
    lines = [f"{method} {path} {version}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class FrameReader:
    """Reads the frames a server sends over a raw socket, of any length."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            self.buffer += data
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """The next frame: (opcode, payload)."""
        first, second = self._read_exactly(2)
        assert not second & 0x80, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exactly(8))
        return first & 0x0F, self._read_exactly(length)


class RawClient(FrameReader):
    """A WebSocket client that sends whatever frames it is told to, valid or not."""

    def __init__(
        self,
        port: int,
        origin: str | None = None,
        timeout: float = 5.0,
        path: str = "/echo",
        connect=socket.create_connection,
        early: bytes = b"",
    ) -> None:
        super().__init__(connect(("127.0.0.1", port), timeout=timeout))
        # `early`: bytes sent in the same write as the handshake, before the 101 arrives.
        self.sock.sendall(upgrade_head(port, path, Origin=origin) + early)
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

    def send_frame(self, opcode: int, payload: bytes = b"", **options) -> None:
        self.sock.sendall(build_frame(opcode, payload, **options))

    def read_close(self) -> tuple[int, str]:
        """Skip to the close frame; return its code and reason."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == CLOSE:
                return int.from_bytes(payload[:2], "big"), payload[2:].decode()

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the TCP connection."""
        return read_all(self.sock, timeout)[1]

    def close(self) -> None:
        self.sock.close()
