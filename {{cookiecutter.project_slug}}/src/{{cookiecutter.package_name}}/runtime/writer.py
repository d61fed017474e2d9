"""Ordered writes to one client socket, from its own greenlet and from others.

A connection's own greenlet writes and waits until the client takes the bytes (`write`). Other
greenlets, such as one that broadcasts a message to thousands of connections, must never wait
on one slow client: `write_nowait` hands the kernel what it takes at once, queues the rest
behind a bounded backlog, and lets a short-lived greenlet send it. So a broadcast to sockets
that can take it costs one system call each and no greenlet switch.

One greenlet writes at a time, so frames never interleave. An idle connection holds nothing
but a few empty slots: no lock, no queue.
"""

import os
import socket
import ssl
from collections import deque

import gevent
import gevent.ssl
from gevent.event import Event

# Sockets whose bytes must pass through TLS (gunicorn's --certfile, say): never the raw fd.
TLS_SOCKETS = (ssl.SSLSocket, gevent.ssl.SSLSocket)


def send_all(sock: socket.socket, data: bytes) -> None:
    """socket.sendall, with one system call in the usual case where the kernel takes it all."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


def send_parts(sock: socket.socket, parts: tuple[bytes, ...]) -> None:
    """send_all of each part in turn, gathered into one system call where the socket allows
    it: a large payload goes out behind its header without a copy to join them."""
    if len(parts) == 1 or isinstance(sock, TLS_SOCKETS):  # an SSLSocket has no sendmsg
        for part in parts:
            send_all(sock, part)
        return
    sent = sock.sendmsg(parts)
    for part in parts:
        if sent < len(part):
            send_all(sock, memoryview(part)[sent:])
            sent = 0
        else:
            sent -= len(part)


def send_nowait(sock: socket.socket, data: bytes) -> int:
    """Write what the kernel takes now, without waiting: gevent keeps every socket non-blocking,
    so os.write returns at once. The count of bytes written (0: the buffer is full, or the
    socket speaks TLS, whose writes may have to wait for the peer: they go the waiting way)."""
    if isinstance(sock, TLS_SOCKETS):
        return 0
    try:
        return os.write(sock.fileno(), data)
    except BlockingIOError:
        return 0


class Writer:
    __slots__ = ("_sock", "_pending", "_writing", "_idle", "lost")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._pending: deque | None = None  # queued by write_nowait, oldest first
        self._writing = False  # a greenlet is writing (and may be waiting for the client)
        self._idle: Event | None = None  # set when that writing ends, for greenlets that wait
        self.lost = False  # a write failed: the connection is gone

    def write(self, *parts: bytes) -> None:
        """Write `parts` after anything queued, waiting for the client; OSError if it is gone."""
        while self._writing:
            if self._idle is None:
                self._idle = Event()
            self._idle.wait()
        if self.lost:
            raise ConnectionResetError("the connection is gone")
        self._writing = True
        try:
            self._drain()
            send_parts(self._sock, parts)
        except OSError:
            self._lose()
            raise
        finally:
            self._done()

    def write_nowait(self, data: bytes, max_backlog: int) -> bool:
        """Write `data` without waiting; False if `max_backlog` writes already wait to be sent
        (the client reads slower than it is written to), True otherwise, also when it is gone."""
        if self.lost:
            return True
        if not self._writing and self._pending is None:
            try:
                sent = send_nowait(self._sock, data)
            except OSError:
                self._lose()
                return True
            if sent == len(data):
                return True
            # The kernel took the start: the rest goes next, whatever the backlog.
            data = data[sent:]
        elif self._pending is not None and len(self._pending) >= max_backlog:
            return False
        if self._pending is None:
            self._pending = deque()
        self._pending.append(data)
        if not self._writing:
            self._writing = True
            gevent.spawn(self._flush)
        return True

    def discard_backlog(self) -> None:
        """Forget what write_nowait queued, but for its oldest write: the kernel may already
        have taken the start of it, and the rest must follow for the stream to stay whole."""
        if self._pending:
            while len(self._pending) > 1:
                self._pending.pop()

    def _flush(self) -> None:
        try:
            self._drain()
        except OSError:
            self._lose()
        finally:
            self._done()

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            send_all(self._sock, pending.popleft())
        self._pending = None

    def _done(self) -> None:
        if self._pending and not self.lost:
            gevent.spawn(self._flush)  # queued by write_nowait while write() was under way
            return
        self._writing = False
        if self._idle is not None:
            self._idle.set()
            self._idle = None

    def _lose(self) -> None:
        self.lost = True
        self._pending = None
