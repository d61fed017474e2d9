"""Serve the app with gevent: a greenlet per connection, so thousands may wait at once."""

from gevent import monkey

# Before anything else imports socket, ssl, threading or time: from here on, blocking calls
# yield to other greenlets instead of holding the whole process.
monkey.patch_all()

import logging
import resource
import signal

import gevent
from gevent.event import Event
from gevent.pool import Pool
{%- if cookiecutter.use_websocket %}
from gevent.pywsgi import WSGIServer
{%- else %}
from gevent.pywsgi import WSGIHandler, WSGIServer
{%- endif %}

from .app import create_app
from .settings import Settings
{%- if cookiecutter.use_websocket %}
from .websocket_handler import configure as configure_websocket_handler
{%- endif %}

log = logging.getLogger(__name__)


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
            self._header_timer.cancel()

    def handle_one_response(self):
        self._header_timer.cancel()  # the response may take as long as it needs
        return super().handle_one_response()


def raise_open_file_limit() -> int:
    """Every connection is a file descriptor: use the hard limit, not the often-low soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return hard


class Server:
    """The gevent server and what it runs beside the app: keep-alive pings and shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
{%- if cookiecutter.use_websocket %}
        # Upgrades WebSocket handshakes and hands the socket to the route as wsgi.websocket.
        self.websocket_handler = configure_websocket_handler(settings)
        base_handler = self.websocket_handler
{%- else %}
        base_handler = WSGIHandler
{%- endif %}
        handler = type(
            "Handler",
            (HeaderTimeoutMixin, base_handler),
            {"header_timeout": settings.header_timeout},
        )
        self.wsgi = WSGIServer(
            (settings.host, settings.port),
            create_app(settings),
            handler_class=handler,
            backlog=settings.listen_backlog,
            # A pool caps concurrent connections and lets stop() wait for open requests.
            spawn=Pool(settings.max_connections),
            log=logging.getLogger(f"{__package__}.access"),
            error_log=logging.getLogger(f"{__package__}.errors"),
        )
        self.background: list[gevent.Greenlet] = []

    def start(self) -> None:
        limit = raise_open_file_limit()
        if limit < self.settings.max_connections + 64:
            log.warning(
                "open-file limit %d is below max_connections %d: raise `ulimit -n`",
                limit,
                self.settings.max_connections,
            )
        self.wsgi.start()
{%- if cookiecutter.use_websocket %}
        if self.settings.ping_interval > 0:
            self.background.append(
                gevent.spawn(
                    self.websocket_handler.keep_alive,
                    self.settings.ping_interval,
                    self.settings.ping_timeout,
                )
            )
{%- endif %}
        host, port = self.wsgi.address[:2]
        log.info("listening on http://%s:%d", host, port)

    def shutdown(self) -> None:
        """Stop accepting, tell WebSocket clients, let open requests finish, then stop."""
        timeout = self.settings.shutdown_timeout
        log.info("shutting down; open requests get %.1f s to finish", timeout)
        self.wsgi.close()  # no new connections from here on
{%- if cookiecutter.use_websocket %}
        closing = self.websocket_handler.close_all(1001, "server shutting down")
        if closing:
            log.info("sent 'going away' to %d WebSocket clients", closing)
{%- endif %}
        self.wsgi.stop(timeout=timeout)
        gevent.killall(self.background)
        log.info("stopped")


def serve(settings: Settings) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then shut down gracefully and return."""
    server = Server(settings)
    server.start()
    stop = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stop.set)
    stop.wait()
    server.shutdown()
