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
{%- if cookiecutter.use_websocket %}
from geventwebsocket.handler import WebSocketHandler
{%- endif %}

from .app import create_app
from .settings import Settings

log = logging.getLogger(__name__)


def make_server(settings: Settings) -> WSGIServer:
    return WSGIServer(
        (settings.host, settings.port),
        create_app(settings),
{%- if cookiecutter.use_websocket %}
        # Upgrades WebSocket handshakes and hands the socket to the app as wsgi.websocket.
        handler_class=WebSocketHandler,
{%- endif %}
        # A pool caps concurrent connections and lets stop() wait for open requests.
        spawn=Pool(settings.max_connections),
        log=logging.getLogger(f"{__package__}.access"),
        error_log=logging.getLogger(f"{__package__}.errors"),
    )


def serve(settings: Settings) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, then let open requests finish and return."""
    server = make_server(settings)
    server.start()
    host, port = server.address[:2]
    log.info("listening on http://%s:%d", host, port)

    stop = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stop.set)
    stop.wait()

    log.info("shutting down; open requests get %.1f s to finish", settings.shutdown_timeout)
    server.stop(timeout=settings.shutdown_timeout)
    log.info("stopped")
