"""Serve the app with gevent: a greenlet per connection, so thousands may wait at once."""

from gevent import monkey

# Before anything else imports socket, ssl, threading or time: from here on, blocking calls
# yield to other greenlets instead of holding the whole process.
monkey.patch_all()

import logging
import signal

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer

from .app import create_app
from .http_handler import make_handler
from .settings import Settings
from .tuning import raise_open_file_limit, tune_process
{%- if cookiecutter.use_websocket %}
from .websocket_handler import configure as configure_websocket_handler
{%- endif %}

log = logging.getLogger(__name__)


class Server:
    """The gevent server and what it runs beside the app: keep-alive pings and shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
{%- if cookiecutter.use_websocket %}
        # Upgrades WebSocket handshakes and hands the socket to the route as wsgi.websocket.
        self.websocket_handler = configure_websocket_handler(settings)
        handler = make_handler(settings, self.websocket_handler)
{%- else %}
        handler = make_handler(settings)
{%- endif %}
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
{%- if cookiecutter.use_websocket %}
        self.keep_alive: gevent.Greenlet | None = None
{%- endif %}
        tune_process()  # last: start-up objects are frozen out of the garbage collector's way

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
        self.keep_alive = self.websocket_handler.start_keep_alive()
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
{%- if cookiecutter.use_websocket %}
        if self.keep_alive is not None:
            self.keep_alive.kill()
{%- endif %}
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
