"""One WebSocket connection (RFC 6455): frames, the closing handshake, pings and limits.

gevent-websocket's own WebSocket class drops close codes, accepts unmasked and oversized frames,
and unmasks byte by byte in Python. This class replaces it behind the same small API:
receive(), send(), close() and `closed`.

It is also built to be cheap: it reads the socket in large chunks and parses frames out of its
own buffer, holds no buffer while idle, and does its byte-wide work (unmasking, UTF-8) in C.
"""

import logging
import socket
import struct
import time
from codecs import getincrementaldecoder
from contextlib import suppress

from gevent import Timeout, get_hub
from geventwebsocket.exceptions import WebSocketError

from .writer import Writer

try:  # websockets' unmask in C: a dependency, but its C part may be missing on some platforms.
    from websockets.speedups import apply_mask
except ImportError:
    apply_mask = None

log = logging.getLogger(__name__)

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
KNOWN_OPCODES = {CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG}
# Close codes a peer may send (RFC 6455 section 7.4); 3000-4999 belong to libraries and apps.
PEER_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}

# Bytes asked of the socket per read: many small frames or a 64 KiB one in one system call,
# and small enough that the allocator serves it from the heap rather than with mmap.
RECV_SIZE = 65536
# Frames up to this size are joined to their header and sent with one send(): copying a small
# payload costs less than gathering. Larger ones go out with their header in one sendmsg(),
# not copied (over TLS, in two writes).
COPY_LIMIT = 1 << 14

# Seconds abort() waits to send its close frame to a peer that may not be reading.
ABORT_SEND_TIMEOUT = 1.0
# Seconds a peer gets to answer our close frame before receive() gives up on it.
CLOSE_TIMEOUT = 5.0

_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from
_pack_header = struct.Struct("!BB").pack
_pack_header_16 = struct.Struct("!BBH").pack
_pack_header_64 = struct.Struct("!BBQ").pack
_utf8_decoder = getincrementaldecoder("utf-8")


class ProtocolViolation(Exception):
    """The peer broke the protocol; `code` is the close code that says how."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConnectionLost(Exception):
    """The TCP connection ended without a closing handshake."""


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR `payload` with the repeated 4-byte `mask`.

    websockets' C function takes microseconds for 64 KiB. Without it, one big-integer XOR
    over the whole buffer still runs in C: about 0.2 ms, where a loop over the bytes takes 10.
    """
    length = len(payload)
    if not length:
        return b""
    if apply_mask is not None:
        return apply_mask(payload, mask)
    key = (mask * (length // 4 + 1))[:length]
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return masked.to_bytes(length, "little")


def frame_header(opcode: int, length: int) -> bytes:
    """The header of a final, unmasked frame, as a server sends it."""
    if length < 126:
        return _pack_header(0x80 | opcode, length)
    if length < 1 << 16:
        return _pack_header_16(0x80 | opcode, 126, length)
    return _pack_header_64(0x80 | opcode, 127, length)


def text_frame(text: str) -> bytes:
    """A whole text message as one frame: made once, it can go to any number of sockets."""
    payload = text.encode()
    return frame_header(TEXT, len(payload)) + payload


class WebSocket(Writer):
    """A server-side WebSocket over a (gevent) socket that has finished its handshake.

    `read_ahead` is what the HTTP reader had already received past the handshake. The owner
    calls release() once the connection is over.
    """

    # Slots instead of a __dict__: thousands of these may sit idle at once.
    __slots__ = (
        "environ",
        "_readable",
        "_drained",
        "max_message_size",
        "_buffer",
        "_pos",
        "_decoder",
        "_close_sent",
        "_close_received",
        "close_code",
        "close_reason",
        "last_seen",
        "pinged_at",
    )

    def __init__(
        self, sock: socket.socket, environ: dict, max_message_size: int, read_ahead: bytes = b""
    ) -> None:
        super().__init__(sock)
        self.environ = environ
        # Idle sockets wait for data on a watcher of their own (see _read).
        self._readable = get_hub().loop.io(sock.fileno(), 1)
        self._drained = not read_ahead
        self.max_message_size = max_message_size
        # Received, not yet parsed bytes, and where parsing stands in them.
        self._buffer = read_ahead
        self._pos = 0
        # The UTF-8 decoder of a text message whose bytes are still arriving.
        self._decoder = None
        self._close_sent = False
        self._close_received = False
        self.close_code: int | None = None
        self.close_reason = ""
        # When a frame last arrived, and when we last pinged: the keep-alive loop reads both.
        self.last_seen = self.pinged_at = time.monotonic()

    @property
    def closed(self) -> bool:
        """True once either side has started to close, or the connection is gone: no more
        messages can be sent."""
        return self._close_sent or self._close_received or self.lost

    def receive(self) -> str | bytes | None:
        """The next message: str for text, bytes for binary, None once the connection is over."""
        if self.closed:
            # Once the server has started to close (a bad frame, a shutdown, an app's close()),
            # nothing the peer sends afterwards is delivered as a message.
            return self._drain_until_close() if self._close_sent else None
        try:
            return self._read_message()
        except ProtocolViolation as violation:
            log.info("closing WebSocket %s: %s", self._peer(), violation.reason)
            self._send_close(violation.code, violation.reason)
        except (ConnectionLost, OSError):
            self.close_code = 1006  # abnormal closure: no close frame arrived
        self._close_received = True
        self._buffer = b""
        return None

    def send(self, message: str | bytes, binary: bool | None = None) -> None:
        """Send one message; str goes as text and bytes as binary unless `binary` says otherwise."""
        if isinstance(message, str):
            self._send_frame(BINARY if binary else TEXT, message.encode())
        else:
            self._send_frame(TEXT if binary is False else BINARY, bytes(message))

    def send_frame(self, frame: bytes) -> None:
        """Send a frame made by text_frame(), waiting for the client as send() does."""
        if self._close_sent:
            raise WebSocketError("the WebSocket is closed")
        self._write_bytes(frame)

    def send_frame_nowait(self, frame: bytes, max_backlog: int) -> bool:
        """Send a frame made by text_frame() without waiting, for fan-out to many sockets.

        False if `max_backlog` frames already wait for this client: it reads slower than it is
        written to, and the caller decides what to do (drop it with abort(1013), say).
        """
        return True if self._close_sent else self.write_nowait(frame, max_backlog)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; receive() returns None once the peer has answered."""
        self._send_close(code, reason)

    def ping(self) -> None:
        self.pinged_at = time.monotonic()
        with suppress(WebSocketError):  # closing already; the handler cleans up
            self._send_frame(PING, b"")

    def abort(self, code: int, reason: str) -> None:
        """Send a close frame and drop the connection at once, e.g. for a silent peer.

        A peer that stopped reading leaves a write stuck (the next waits behind it) until the
        write timeout: the close frame gets ABORT_SEND_TIMEOUT, and the connection is dropped
        either way.
        """
        with Timeout(ABORT_SEND_TIMEOUT, False):
            self._send_close(code, reason)
        self._close_received = True
        with suppress(OSError):  # already gone
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a reader or writer waiting on it

    def drop(self, code: int, reason: str) -> None:
        """Close a client that reads too slowly: what waits for it is discarded, the close frame
        goes next (within the write timeout, the client may be stalled), then the connection.
        """
        self.discard_backlog()
        self._send_close(code, reason)
        with suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # ends the route's receive()

    def release(self) -> None:
        """Let go of the socket's watcher: the connection is over."""
        self._readable.close()

    # Reading

    def _read(self, size: int) -> bytes:
        """Up to `size` bytes from the socket, waiting for them if need be; b"" at its end.

        When the last read emptied the socket, wait for data before reading rather than after
        a failed read: one system call per read instead of two, and an idle connection waits
        in the hub with a shorter stack to keep (greenlets save their stack while they wait).
        """
        if self._drained:
            get_hub().wait(self._readable)
        try:
            data = self._sock.recv(size)
        except TimeoutError:  # quiet for longer than the socket's timeout: wait without one
            get_hub().wait(self._readable)
            data = self._sock.recv(size)
        self._drained = len(data) < size
        return data

    def _drain_until_close(self) -> None:
        """After our close frame: discard what arrives until the peer's close frame, the end of
        the connection, or CLOSE_TIMEOUT, whichever comes first."""
        with suppress(ProtocolViolation, ConnectionLost, OSError), Timeout(CLOSE_TIMEOUT, False):
            while self._read_message() is not None:
                pass
        self._close_received = True
        self._buffer = b""

    def _read_message(self) -> str | bytes | None:
        opcode = None  # of a fragmented message being assembled
        parts: list = []
        size = 0
        self._decoder = None
        while True:
            fin, frame_opcode, data, length = self._read_frame(size)
            self.last_seen = time.monotonic()
            if frame_opcode >= CLOSE:
                if frame_opcode == CLOSE:
                    self._on_close_frame(data)
                    return None
                if frame_opcode == PING and not self._close_sent:
                    self._send_frame(PONG, data)
                continue
            if frame_opcode == CONTINUATION:
                if opcode is None:
                    raise ProtocolViolation(1002, "continuation frame with no message to continue")
            elif opcode is not None:
                raise ProtocolViolation(1002, "new message before the previous one ended")
            elif fin:
                return data
            else:
                opcode = frame_opcode
            size += length
            parts.append(data)
            if fin:
                return "".join(parts) if opcode == TEXT else b"".join(parts)

    def _read_frame(self, message_size: int) -> tuple[bool, int, str | bytes, int]:
        """One frame: (fin, opcode, payload, its length in bytes), text payloads decoded."""
        buffer, at = self._buffer, self._pos
        if len(buffer) - at < 2:
            buffer, at = self._fill(2)
        first, second = buffer[at], buffer[at + 1]
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        length = second & 0x7F
        if first & 0x70:
            raise ProtocolViolation(1002, "reserved bits set without an extension")
        if opcode not in KNOWN_OPCODES:
            raise ProtocolViolation(1002, f"unknown opcode {opcode:#x}")
        if not second & 0x80:
            raise ProtocolViolation(1002, "client frames must be masked")
        if opcode >= CLOSE:
            if not fin:
                raise ProtocolViolation(1002, "control frames must not be fragmented")
            if length > 125:
                raise ProtocolViolation(1002, "control frame longer than 125 bytes")
        # Two bytes, the extended length if any, then the 4-byte mask.
        header = 6 if length < 126 else 8 if length == 126 else 14
        if len(buffer) - at < header:
            buffer, at = self._fill(header)
        if length == 126:
            (length,) = _unpack_16(buffer, at + 2)
        elif length == 127:
            (length,) = _unpack_64(buffer, at + 2)
        # Refuse before reading the payload, so an oversized message is never buffered.
        if opcode < CLOSE and message_size + length > self.max_message_size:
            raise ProtocolViolation(1009, f"message larger than {self.max_message_size} bytes")
        if opcode == TEXT:
            self._decoder = None  # a new text message
        text = opcode == TEXT or (opcode == CONTINUATION and self._decoder is not None)
        start = at + header
        mask = buffer[start - 4 : start]
        end = start + length
        if end > len(buffer):
            rest = self._read_rest(memoryview(buffer)[start:], length, mask, text, fin)
            return fin, opcode, rest, length
        payload = unmask(buffer[start:end], mask)
        if end < len(buffer):
            self._pos = end  # more frames follow in the buffer
        else:
            self._buffer, self._pos = b"", 0  # hold nothing while waiting for the next frame
        if text and fin and self._decoder is None:
            payload = self._decode_whole(payload)  # the usual case: a whole message in one frame
        elif text:
            payload = self._decode(payload, fin)
        return fin, opcode, payload, length

    def _fill(self, size: int) -> tuple[bytes, int]:
        """Receive until at least `size` unparsed bytes are buffered; return buffer and position."""
        data = self._buffer[self._pos :]
        while len(data) < size:
            chunk = self._read(RECV_SIZE)
            if not chunk:
                raise ConnectionLost
            data = data + chunk if data else chunk
        self._buffer, self._pos = data, 0
        return data, 0

    def _read_rest(
        self, have: memoryview, length: int, mask: bytes, text: bool, fin: bool
    ) -> str | bytes:
        """Receive the rest of a payload; what arrives after it stays buffered for the next frame.

        Each piece is unmasked as it arrives and, in a text message, checked as UTF-8 at once:
        a client that sends invalid text in the middle of a large frame is closed on the spot,
        not after the rest of the frame has arrived.
        """
        parts = []
        received = 0
        piece = have
        rest = b""
        while True:
            if piece:
                if len(piece) > length - received:  # the next frame's start: kept for it
                    piece, rest = piece[: length - received], piece[length - received :]
                offset = received % 4  # where in the mask this piece starts
                data = unmask(piece, mask[offset:] + mask[:offset])
                received += len(piece)
                parts.append(self._decode(data, fin and received == length) if text else data)
            if received == length:
                break
            # A full-size read, not just the bytes still missing: a short read is what tells
            # _read that the socket is empty, which spares a failed read before the next frame.
            piece = self._read(RECV_SIZE)
            if not piece:
                raise ConnectionLost
        self._buffer, self._pos = bytes(rest), 0
        return "".join(parts) if text else b"".join(parts)

    def _decode_whole(self, payload: bytes) -> str:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation(1007, "text message is not valid UTF-8") from None

    def _decode(self, payload: bytes, final: bool) -> str:
        """Feed part of a text message to its incremental decoder: fail at the first bad byte."""
        if self._decoder is None:
            self._decoder = _utf8_decoder()
        try:
            return self._decoder.decode(payload, final)
        except UnicodeDecodeError:
            raise ProtocolViolation(1007, "text message is not valid UTF-8") from None

    def _on_close_frame(self, payload: bytes) -> None:
        if len(payload) == 1:
            raise ProtocolViolation(1002, "close frame with a 1-byte payload")
        code = int.from_bytes(payload[:2], "big") if payload else 1005  # 1005: no code given
        if payload and not (code in PEER_CLOSE_CODES or 3000 <= code <= 4999):
            raise ProtocolViolation(1002, f"invalid close code {code}")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation(1007, "close reason is not valid UTF-8") from None
        self._close_received = True
        self.close_code, self.close_reason = code, reason
        # Answer with the peer's own code (RFC 6455 section 5.5.1); no code is answered with 1000.
        self._send_close(1000 if code == 1005 else code, "")

    # Writing

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self._close_sent:
            raise WebSocketError("the WebSocket is closed")
        self._write_frame(opcode, payload)

    def _send_close(self, code: int, reason: str) -> None:
        if self._close_sent:
            return
        self._close_sent = True
        self.close_code = self.close_code or code
        # A control frame holds 125 bytes: the code, then at most 123 of reason.
        encoded = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
        with suppress(WebSocketError):  # the peer is gone: nothing left to tell it
            self._write_frame(CLOSE, code.to_bytes(2, "big") + encoded)

    def _write_frame(self, opcode: int, payload: bytes) -> None:
        header = frame_header(opcode, len(payload))
        if len(payload) <= COPY_LIMIT:
            self._write_bytes(header + payload)  # one system call
        else:
            self._write_bytes(header, payload)

    def _write_bytes(self, *parts: bytes) -> None:
        try:
            self.write(*parts)
        except OSError as error:
            self._close_received = True
            raise WebSocketError("connection lost") from error

    def _peer(self) -> str:
        return f"{self.environ.get('REMOTE_ADDR', '?')}:{self.environ.get('REMOTE_PORT', '?')}"
