"""The per-connection handler: pywsgi's, with deadlines and strict request framing, and
WebSocket upgrades for the routes that declare one (gevent-websocket's handler as the base).

What it adds to pywsgi, request by request:

1. The request line and headers must arrive within `header_timeout` (slowloris).
2. Framing is unambiguous or refused, and the connection closed: a malformed HTTP version,
   Transfer-Encoding other than one `chunked`, or Transfer-Encoding with Content-Length or on
   HTTP/1.0 (each a way for a proxy and this server to disagree on where a request ends).
3. The body is read before the app runs, within `body_timeout` and `max_body_size`, de-chunked
   once, and handed to the app as a buffer: a slow body cannot hold the app, and no body is
   read twice or spooled to disk.
4. Only `Upgrade: websocket` on a WebSocket route (routing.py) upgrades; for any other
   request the upgrade headers are dropped, so pywsgi frames its body as usual.
5. Every socket operation may wait at most `write_timeout`: a client that stops reading is
   dropped instead of holding its connection.
6. A plain request's environ has `runtime.client_gone` (ClientGone), so that a long poll can
   notice at once that its client has left.
"""

import io
import logging
import socket
import ssl
from contextlib import suppress
from http import HTTPStatus

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIHandler
from gevent.socket import wait_read
from geventwebsocket.handler import WebSocketHandler

from .handshake import accept_headers, handshake_problem
from .headers import RequestHeaders, framing_problem
from .keepalive import OpenSockets
from .routing import find_websocket_route
from .settings import ServerSettings
from .websocket import RECV_SIZE, WebSocket
from .writer import TLS_SOCKETS

log = logging.getLogger(__name__)
# One line per request, at INFO; server.py hands it to pywsgi.
ACCESS_LOG = logging.getLogger(f"{__package__}.access")

HTTP_VERSIONS = ("HTTP/1.0", "HTTP/1.1")
NO_BODY = io.BytesIO()  # wsgi.input after an upgrade: a handshake has no body

# An answer given instead of running the app: (status, one-line reason, extra headers).
Refusal = tuple[int, str, list[tuple[str, str]]]


class BodyTimeout(Exception):
    """The request body did not arrive within body_timeout."""


class ClientGone:
    """environ["runtime.client_gone"]: for a response that waits (a long poll), an Event set
    once the client closes its side of the connection.

    Watching starts with the first event() call and ends with the response. Bytes the client
    sends meanwhile (a pipelined request) are not a departure: watching then stops. Over TLS
    (gunicorn's --certfile) any record counts as such bytes, so a client that closes with a TLS
    goodbye (close_notify) first is noticed only when the response ends.
    """

    __slots__ = ("socket", "_event", "_watcher")

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self._event: Event | None = None
        self._watcher: gevent.Greenlet | None = None

    def event(self) -> Event:
        if self._event is None:
            self._event = Event()
            self._watcher = gevent.spawn(self._watch)
        return self._event

    def _watch(self) -> None:
        try:
            wait_read(self.socket.fileno())
            if peek(self.socket):
                return  # a pipelined request, not a departure
        except OSError:
            pass  # reset: gone
        self._event.set()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.kill(block=False)


def peek(sock: socket.socket) -> bytes:
    """A byte the client has sent, left for the next read; b"" once it has closed its side.
    A TLS socket refuses recv flags: the TCP bytes beneath it are looked at instead."""
    if not isinstance(sock, TLS_SOCKETS):
        return sock.recv(1, socket.MSG_PEEK)
    plain = socket.socket(fileno=sock.fileno())
    try:
        return plain.recv(1, socket.MSG_PEEK)
    finally:
        plain.detach()  # the descriptor stays open, with its TLS socket


class ConnectionHandler(WebSocketHandler):
    """Configure a subclass with configure(settings, sockets) for each server or worker."""

    settings = ServerSettings()
    sockets = OpenSockets(0, 1)
    MessageClass = RequestHeaders
    headers = RequestHeaders()  # what pywsgi and gunicorn read before a request has been read

    # Per request, set by read_request(): an answer that replaces the app's, and the WebSocket
    # route (its function and URL arguments) when the request upgrades to one.
    refusal: Refusal | None = None
    websocket_route: tuple | None = None
    header_timer: gevent.Timeout | None = None

    @classmethod
    def configure(cls, settings: ServerSettings, sockets: OpenSockets) -> type["ConnectionHandler"]:
        return type(cls.__name__, (cls,), {"settings": settings, "sockets": sockets})

    def log_request(self) -> None:
        # pywsgi's access line (to the server's `log`), not gevent-websocket's logger; formatted
        # only when the access log is on, as pywsgi would format it for every request anyway.
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            WSGIHandler.log_request(self)

    @property
    def peer(self) -> str:
        address = self.client_address
        return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)

    def handle(self) -> None:
        # One timeout for every operation on this socket: a write that waits longer for the
        # client to read fails (handle_error), and so does a read the deadlines below miss.
        self.socket.settimeout(self.settings.write_timeout)
        super().handle()

    def handle_one_request(self):
        self.header_timer = gevent.Timeout.start_new(self.settings.header_timeout)
        try:
            return super().handle_one_request()
        except gevent.Timeout as timeout:
            if timeout is not self.header_timer:
                raise
            log.info(
                "dropped %s: no whole request within %.1f s",
                self.peer,
                self.settings.header_timeout,
            )
            return None  # ends the connection
        finally:
            if self.header_timer is not None:
                self.header_timer.close()

    def read_request(self, raw_requestline: str) -> bool:
        # pywsgi reads "HTTP/1" as a version and fails with a traceback; anything but these
        # two versions is a 400 here (a ValueError is answered 400 without one).
        parts = raw_requestline.rstrip("\r\n").split(" ")
        if len(parts) != 3 or parts[2] not in HTTP_VERSIONS:
            raise ValueError(f"malformed request line {raw_requestline!r}")
        super().read_request(raw_requestline)
        problem = framing_problem(self.headers, self.request_version)
        self.refusal = (*problem, []) if problem else None
        if problem or self.request_version == "HTTP/1.0":
            # After a refused framing nothing on the connection can be trusted (RFC 9112 6.1);
            # HTTP/1.0 gets one request a connection, so a body without a length ends it.
            self.close_connection = True
        self.websocket_route = self.find_websocket_route()
        return True

    def find_websocket_route(self) -> tuple | None:
        """The WebSocket route, (function, URL arguments), if this request upgrades to one.

        pywsgi hands the app the raw, unframed socket reader for any request that asks for an
        upgrade; for one that is not upgraded the upgrade headers go, so its body is framed.
        """
        headers = self.headers
        upgrade = headers.get("upgrade")
        if upgrade is not None and upgrade.strip().lower() == "websocket":
            route = find_websocket_route(self.server.application, self.path)
            if route is not None:
                return route
        if upgrade is not None or "upgrade" in headers.get("connection", "").lower():
            headers.drop_upgrade()
        return None

    def handle_one_response(self) -> None:
        # The response may take as long as it needs; dropping the timer also frees it.
        self.header_timer.close()
        self.header_timer = None
        refusal = self.refusal
        if refusal is None and self.websocket_route is not None:
            refusal = handshake_problem(self.environ, self.settings.allowed_origins)
        elif refusal is None:
            refusal = self.read_body()
        if refusal is not None:
            return self.refuse(*refusal)
        if self.websocket_route is not None:
            return super().handle_one_response()
        gone = self.environ["runtime.client_gone"] = ClientGone(self.socket)
        try:
            return super().handle_one_response()
        finally:
            gone.stop()

    def read_body(self) -> Refusal | None:
        """Read the whole request body and hand the app a buffered copy; a Refusal if it is
        too large, too slow or malformed."""
        environ = self.environ
        chunked = "HTTP_TRANSFER_ENCODING" in environ  # exactly "chunked" by now
        length = self.content_length or 0
        if not chunked and not length:
            return None
        limit = self.settings.max_body_size
        if length > limit:
            return 413, f"the request body is larger than {limit} bytes", []
        body = environ["wsgi.input"]
        try:
            with gevent.Timeout(self.settings.body_timeout, BodyTimeout):
                data = read_chunked(body, limit) if chunked else body.read(length)
        except (BodyTimeout, TimeoutError):
            return (
                408,
                f"the request body did not arrive within {self.settings.body_timeout:g} s",
                [],
            )
        except (OSError, ValueError):
            # pywsgi raises these for a bad chunk size or a body cut short.
            return 400, "the request body is malformed or incomplete", []
        if len(data) > limit:
            return 413, f"the request body is larger than {limit} bytes", []
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        # De-chunked here: an app (Bottle) that saw this header would de-chunk it again.
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return None

    def refuse(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        """Answer with `status` and a one-line reason instead of running the app, then close."""
        line = f"{status} {HTTPStatus(status).phrase}"
        body = f"{line}: {reason}\n".encode()
        head = [f"HTTP/1.1 {line}", *(f"{name}: {value}" for name, value in headers)]
        head += [
            "Content-Type: text/plain; charset=utf-8",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        self.close_connection = True
        log.info(
            "refused %s %s from %s: %s", self.command, self.path, self.peer, body.decode().strip()
        )
        with suppress(OSError):  # the client is gone: nothing to tell it
            self.socket.sendall("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)

    def handle_error(self, t, v, tb) -> None:
        if isinstance(v, TimeoutError):  # this socket's timeout: the client stopped reading
            log.info("dropped %s: it read nothing for %g s", self.peer, self.settings.write_timeout)
            self.close_connection = True
            return
        if isinstance(v, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            # Over TLS, pywsgi sees a departed client as this error, not a reset it ignores.
            log.info("%s left during its response", self.peer)
            self.close_connection = True
            return
        super().handle_error(t, v, tb)

    def run_application(self) -> None:
        if self.websocket_route is None:
            # Plain HTTP: pywsgi's own, past gevent-websocket's (which would try to upgrade).
            return super(WebSocketHandler, self).run_application()
        ws = self.accept()
        self.sockets.add(ws)
        function, arguments = self.websocket_route
        failed = False
        try:
            # Every idle socket keeps a copy of its greenlet's C stack, and a call with
            # **arguments (or through functools.partial) adds a level to it: routes with no URL
            # argument, or one (given by position), are called without.
            if not arguments:
                function(ws)
            elif len(arguments) == 1:
                (value,) = arguments.values()
                function(ws, value)
            else:
                function(ws, **arguments)
        except Exception:
            log.exception("WebSocket route failed for %s", self.environ.get("PATH_INFO"))
            failed = True
        finally:
            self.sockets.discard(ws)
            ws.close(1011, "internal error") if failed else ws.close(1000)
            self.environ["wsgi.websocket"] = None
            ws.release()

    def accept(self) -> WebSocket:
        """Switch protocols: send the 101 and return the connection's WebSocket."""
        ws = WebSocket(
            self.socket,
            self.environ,
            max_message_size=self.settings.max_message_size,
            read_ahead=self.release_http_reader(),
        )
        # gevent-websocket's start_response sees wsgi.websocket and prepares a 101 without a
        # body, Date or keep-alive.
        self.environ.update({"wsgi.websocket": ws, "wsgi.websocket_version": "13"})
        self.start_response("101 Switching Protocols", accept_headers(self.environ))
        self.write(b"")  # sends the 101 now; the route may wait before it speaks
        return ws

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
        self.rfile.close()  # frees its buffer; the socket stays open
        self.environ["wsgi.input"] = NO_BODY
        del self.headers  # back to the empty class-level default (environ has them)
        return read_ahead


def read_chunked(body, limit: int) -> bytes:
    """A chunked body, de-chunked by pywsgi's reader; stops one byte past `limit`."""
    parts = []
    size = 0
    while size <= limit:
        part = body.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)
