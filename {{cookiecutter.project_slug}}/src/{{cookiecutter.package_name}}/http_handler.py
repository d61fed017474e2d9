"""The per-connection handler: gevent's pywsgi handler with a deadline for request headers, a
leaner header parser and fewer system calls per response.

Shared by server.py and the gunicorn worker, so both serve connections the same way.
"""

import logging
import re

import gevent
from gevent.pywsgi import WSGIHandler

from .settings import Settings

log = logging.getLogger(__name__)

# A first body chunk up to this size goes out in one write with the headers: copying it is
# cheaper than a second system call. Larger ones (a file, say) are sent as they are.
COPY_LIMIT = 64 * 1024


# "Name: value": a token for a name, no space before the colon, no control characters in the
# value (RFC 9110 section 5).
HEADER_LINE = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*\r?\n"
)


class RequestHeaders:
    """The request's header fields, as pywsgi's `MessageClass` must provide them.

    pywsgi parses headers with http.client, which runs them through the email package: about
    a sixth of the server's CPU time on a short request. This reads the same lines under the
    same limits and is stricter where strictness is safer: a line that is not a header field
    (an obsolete folded line, a space before the colon) or a second Content-Length makes the
    request a 400 (pywsgi refuses a request whose headers have a `status`).
    """

    max_line = 65536
    max_fields = 100

    def __init__(self, fp=None, *_) -> None:
        self.status = ""
        self.headers: list[str] = []  # "Name: value\r\n" lines, read by pywsgi's get_environ()
        self._fields: dict[str, str] = {}  # lower-case name: first value
        if fp is None:
            return
        for _ in range(self.max_fields + 1):
            line = fp.readline(self.max_line + 1)
            if line in (b"\r\n", b"\n", b""):
                return
            match = HEADER_LINE.fullmatch(line) if len(line) <= self.max_line else None
            if match is None:
                self.status = "malformed or too long header line"
                return
            name, value = match.group(1).decode("ascii"), match.group(2).decode("latin-1")
            key = name.lower()
            if key == "content-length" and (key in self._fields or not value.isdecimal()):
                # A second length, or one int() would read loosely ("+5", "5_0"): the ways
                # in which request smuggling makes two servers disagree on a body's end.
                self.status = "bad or repeated Content-Length"
                return
            self._fields.setdefault(key, value)
            self.headers.append(f"{name}: {value}\r\n")
        self.status = f"more than {self.max_fields} header fields"

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._fields.get(name.lower(), default)

    getheader = get

    @property
    def typeheader(self) -> str | None:
        return self.get("content-type")

    def items(self) -> list[tuple[str, str]]:
        return [tuple(line[:-2].split(": ", 1)) for line in self.headers]

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        self._fields.pop(key, None)
        self.headers = [line for line in self.headers if line.split(":", 1)[0].lower() != key]


def send_all(sock, data: bytes) -> None:
    """socket.sendall, without the getsockopt() call gevent's sendall makes on every call.

    A send on a gevent socket waits until it can write at least a byte, so a loop is needed
    only when the kernel's buffer is full.
    """
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


class HeaderTimeoutMixin:
    """Drop a connection that has not sent a whole request head within `header_timeout`.

    pywsgi waits for headers forever, so a slow or silent client (slowloris) could hold a
    connection slot indefinitely. The clock runs while a request line and headers are read,
    on new and on kept-alive connections, and stops once the response begins.
    """

    header_timeout = 10.0

    def handle_one_request(self):
        self._header_timer = gevent.Timeout.start_new(self.header_timeout)
        try:
            return super().handle_one_request()
        except gevent.Timeout as timeout:
            if timeout is not self._header_timer:
                raise
            log.info(
                "dropped %s: no request within %.1f s", self.client_address, self.header_timeout
            )
            return None  # ends the connection
        finally:
            if self._header_timer is not None:
                self._header_timer.close()

    def handle_one_response(self):
        # The response may take as long as it needs. Dropping the timer also frees it: a
        # long-lived response (a stream, a WebSocket) would otherwise hold it to its end.
        self._header_timer.close()
        self._header_timer = None
        return super().handle_one_response()


class LeanRequestsMixin:
    """Parse request headers with RequestHeaders instead of the email package."""

    MessageClass = RequestHeaders
    headers = RequestHeaders()  # what pywsgi expects before a request has been read


class LeanWritesMixin:
    """Send the status line, the headers and the first body chunk in one system call.

    pywsgi sends the headers and the first chunk separately, each through a sendall that
    first asks the kernel about the socket. For a stream of short parts those calls are a
    good share of the server's work per request.
    """

    def _write_with_headers(self, data: bytes) -> None:
        self.headers_sent = True
        self.finalize_headers()
        head = [b"HTTP/1.1 ", self.status, b"\r\n"]
        for name, value in self.response_headers:
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        if data and len(data) <= COPY_LIMIT:
            if self.response_use_chunked:
                head += (b"%x\r\n" % len(data), data, b"\r\n")
            else:
                head.append(data)
            data = b""
        self._sendall(b"".join(head))
        self._write(data)

    def _sendall(self, data: bytes) -> None:
        try:
            send_all(self.socket, data)
        except OSError as error:
            # What pywsgi records for a failed write, so its access log says the same.
            self.status = f"socket error: {error}"
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += len(data)


def make_handler(settings: Settings, base: type = WSGIHandler) -> type:
    """`base` (pywsgi's handler, or the WebSocket one) with the header timeout of `settings`,
    the header parser and the leaner writes."""
    return type(
        "Handler",
        (HeaderTimeoutMixin, LeanRequestsMixin, LeanWritesMixin, base),
        {"header_timeout": settings.header_timeout},
    )
