"""The WebSocket handshake, the open-socket registry, keep-alive pings and shutdown closes.

gevent-websocket's handler upgrades any request that asks, answers some bad handshakes with a
500, and never checks Origin. This subclass checks every handshake, answers a bad one with a
4xx and a one-line reason, and hands the route our own WebSocket (websocket_connection.py).
"""

import base64
import binascii
import hashlib
import io
import logging
import socket
import time
from contextlib import suppress
from functools import partial
from urllib.parse import urlsplit

import gevent
from geventwebsocket.handler import WebSocketHandler as GeventWebSocketHandler

from .http_handler import send_all
from .settings import Settings
from .websocket_connection import RECV_SIZE, WebSocket

log = logging.getLogger(__name__)

ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # fixed by RFC 6455


NO_BODY = io.BytesIO()  # wsgi.input after an upgrade: a handshake has no body


def _discard(data: bytes) -> None:
    """The write() callable of a WebSocket route's unsent HTTP response."""


class WebSocketHandler(GeventWebSocketHandler):
    """Configure a subclass with configure(settings); each has its own set of open sockets."""

    max_message_size = 1 << 20
    allowed_origins: tuple[str, ...] = ()
    ping_interval = 20.0
    ping_timeout = 20.0
    open_sockets: set[WebSocket] = set()

    def run_application(self) -> None:
        if self.environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            # Plain HTTP: skip gevent-websocket's handler and serve it as pywsgi would.
            return super(GeventWebSocketHandler, self).run_application()
        problem = self.handshake_problem()
        if problem:
            return self.refuse(*problem)
        self.accept()
        self.run_websocket()

    def handshake_problem(self) -> tuple[str, str, list] | None:
        """What is wrong with this handshake, as (status, reason, extra headers), or None."""
        environ = self.environ
        if environ["REQUEST_METHOD"] != "GET":
            return "405 Method Not Allowed", "a WebSocket handshake is a GET", [("Allow", "GET")]
        if "upgrade" not in environ.get("HTTP_CONNECTION", "").lower():
            return "400 Bad Request", "a WebSocket handshake needs 'Connection: Upgrade'", []
        if self.request_version != "HTTP/1.1":
            return "400 Bad Request", "a WebSocket handshake needs HTTP/1.1", []
        if int(environ.get("CONTENT_LENGTH") or 0) or "HTTP_TRANSFER_ENCODING" in environ:
            # Its bytes would be taken for frames.
            return "400 Bad Request", "a WebSocket handshake has no body", []
        if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
            return (
                "426 Upgrade Required",
                "only WebSocket version 13 is supported",
                [("Sec-WebSocket-Version", "13")],
            )
        try:
            key = base64.b64decode(environ.get("HTTP_SEC_WEBSOCKET_KEY", ""), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 16:
            return "400 Bad Request", "Sec-WebSocket-Key must be 16 bytes in base64", []
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not self.origin_allowed(origin):
            log.warning("refused WebSocket from %r to host %r", origin, environ.get("HTTP_HOST"))
            return "403 Forbidden", "cross-origin WebSocket handshakes are not allowed", []
        return None

    def origin_allowed(self, origin: str) -> bool:
        """Browsers always send Origin: allow the listed ones, or by default the page's own host.

        This is the defence against cross-site WebSocket hijacking: a page on another site
        cannot open a socket that rides on this site's cookies.
        """
        if self.allowed_origins:
            return "*" in self.allowed_origins or origin in self.allowed_origins
        return urlsplit(origin).netloc.lower() == self.environ.get("HTTP_HOST", "").lower()

    def refuse(self, status: str, reason: str, headers: list) -> None:
        body = f"{status}: {reason}\n".encode()
        self.start_response(status, [*headers, ("Content-Type", "text/plain; charset=utf-8")])
        self.close_connection = True  # what follows a refused handshake is not HTTP we can trust
        self.result = [body]
        self.process_result()

    def accept(self) -> None:
        key = self.environ["HTTP_SEC_WEBSOCKET_KEY"].strip()
        digest = hashlib.sha1((key + ACCEPT_GUID).encode("ascii")).digest()
        self.websocket = WebSocket(
            self.environ,
            read=self.read_some,
            write=partial(send_all, self.socket),
            abort=self.abort_connection,
            max_message_size=self.max_message_size,
            read_ahead=self.release_http_reader(),
        )
        self.environ.update({"wsgi.websocket": self.websocket, "wsgi.websocket_version": "13"})
        self.start_response(
            "101 Switching Protocols",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", base64.b64encode(digest).decode("ascii")),
            ],
        )
        self.write(b"")  # sends the 101 now; the route may wait before it speaks
        self.response_headers = None  # sent; nothing reads them again

    def release_http_reader(self) -> bytes:
        """Free what only HTTP needed; return any bytes the HTTP reader had read ahead.

        From here on the WebSocket reads the socket itself, so the buffered request reader
        (8 KiB) and the parsed request headers (kept in environ as well) would only weigh on
        every idle connection. A client must wait for the 101 before it sends frames, so the
        read-ahead is normally empty; whatever came early is handed over, not lost.
        """
        timeout = self.socket.gettimeout()
        self.socket.settimeout(0.0)  # take what is there, never wait
        try:
            read_ahead = self.rfile.read1(RECV_SIZE) or b""
        except OSError:
            read_ahead = b""  # the connection is gone; the first receive() will say so
        finally:
            self.socket.settimeout(timeout)
        self.rfile.close()  # the socket stays open
        # Drop every reference to the reader, and the parsed headers (environ has them too).
        self.rfile = self.wsgi_input.rfile = self.environ["wsgi.input"] = NO_BODY
        del self.headers  # back to pywsgi's empty class-level default
        # Idle sockets wait for data on a watcher of their own (see read_some).
        self.readable = gevent.get_hub().loop.io(self.socket.fileno(), 1)
        self.drained = True
        return read_ahead

    def read_some(self, size: int) -> bytes:
        """Up to `size` bytes from the socket, waiting for them if need be.

        When the last read emptied the socket, wait for data before reading rather than after
        a failed read: one system call per read instead of two, and an idle connection waits
        in the hub with a shorter stack to keep (greenlets save their stack while they wait).
        """
        if self.drained:
            gevent.get_hub().wait(self.readable)
        data = self.socket.recv(size)
        self.drained = len(data) < size
        return data

    def run_websocket(self) -> None:
        """Run the route with the socket in environ; its HTTP response, if any, is not sent."""
        ws = self.websocket
        self.open_sockets.add(ws)
        self.route_failed = False
        try:
            # Through __call__ itself: an app object called as a function costs one more C-level
            # call, and every idle WebSocket keeps a copy of its stack (about 0.8 KiB here).
            for _ in self.application.__call__(self.environ, self.route_start_response):
                pass
        except Exception:
            log.exception("WebSocket route failed for %s", self.environ.get("PATH_INFO"))
            self.route_failed = True
        else:
            if self.route_failed:  # Bottle caught it, and logged its traceback to wsgi.errors
                log.error("WebSocket route failed for %s", self.environ.get("PATH_INFO"))
        finally:
            self.open_sockets.discard(ws)
            self.readable.close()
            ws.close(1011, "internal error") if self.route_failed else ws.close(1000)
            self.environ["wsgi.websocket"] = None

    def route_start_response(self, status: str, headers: list, exc_info=None):
        """The route's HTTP response is not sent (the socket speaks WebSocket now); a failure
        (5xx) closes the socket with 1011 instead."""
        self.route_failed = self.route_failed or status.startswith("5")
        return _discard

    def abort_connection(self) -> None:
        with suppress(OSError, AttributeError):  # already gone
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked on this socket

    @classmethod
    def close_all(cls, code: int, reason: str) -> int:
        """Start the closing handshake on every open socket; return how many there were."""
        sockets = list(cls.open_sockets)
        for ws in sockets:
            gevent.spawn(ws.close, code, reason)
        return len(sockets)

    @classmethod
    def start_keep_alive(cls) -> gevent.Greenlet | None:
        """The keep-alive loop in a greenlet of its own, unless pings are turned off."""
        return gevent.spawn(cls.keep_alive) if cls.ping_interval > 0 else None

    @classmethod
    def keep_alive(cls) -> None:
        """Ping sockets quiet for `ping_interval`; drop those silent `ping_timeout` longer.
        Runs forever.

        One loop for all sockets instead of a greenlet each keeps idle connections cheap.
        """
        interval, timeout = cls.ping_interval, cls.ping_timeout
        tick = min(1.0, interval / 4, timeout / 4)
        while True:
            gevent.sleep(tick)
            now = time.monotonic()
            for ws in list(cls.open_sockets):
                quiet = now - ws.last_seen
                if quiet >= interval + timeout:
                    gevent.spawn(ws.abort, 1011, "no answer to ping")
                elif quiet >= interval and ws.pinged_at <= ws.last_seen:
                    ws.pinged_at = now
                    gevent.spawn(ws.ping)


def configure(settings: Settings) -> type[WebSocketHandler]:
    """A handler class with these settings and a registry of its own open sockets."""
    return type(
        "ConfiguredWebSocketHandler",
        (WebSocketHandler,),
        {
            "max_message_size": settings.max_message_size,
            "allowed_origins": settings.allowed_origins,
            "ping_interval": settings.ping_interval,
            "ping_timeout": settings.ping_timeout,
            "open_sockets": set(),
        },
    )
